"""The capacity study's claim, tested on the summary."""

from __future__ import annotations

from actlab.studies.base import ReportContext
from actlab.studies.capacity.config import condition_words

SMOOTH_TARGETS = ("sin", "step", "sin10", "cubic")  # every target but |x|, which has a kink


def smooth_fits_smooth(summary, rctx: ReportContext):
    """ "Smooth activations fit smooth functions better than ReLU", tested: per seed, the
    log10 test MSE on the smooth targets (mean over targets and activations) of the
    unbounded activations with a kink (ReLU and kin) minus that of the smooth ReLU variants
    (GELU, Swish, ...; not Sigmoid or Tanh, which are no variant of ReLU), by a paired
    sign-flip test over seeds; a positive difference supports the claim. A diverged run is the worst fit (+inf): a seed where one diverged has an
    infinite mean and leaves the test, and the measurement says how many seeds did."""
    import numpy as np

    from actlab.activations import INF, is_affine, is_smooth_rectifier
    from actlab.stats import paired_comparison
    from actlab.studies.base import Claim

    specs, wide = rctx.specs, summary["trials"]
    acts = [a for a in rctx.activations if a in specs and not is_affine(specs[a])]
    # The claim sets the smooth variants of ReLU against ReLU and its kinked kin: bounded
    # smooth functions (Sigmoid, Tanh) are neither, and would decide it on their own.
    smooth = [a for a in acts if is_smooth_rectifier(specs[a])]
    rough = [a for a in acts if not specs[a].smooth and specs[a].output_range[1] == INF]
    on = wide[wide["target"].isin(SMOOTH_TARGETS) & wide["activation"].isin(acts)]
    if not smooth or not rough or on.empty:
        return None
    on = on.assign(_log=np.where(on["diverged"] == 1, np.inf, on["log10_test_mse"]))
    per = on.groupby(["seed", "activation"])["_log"].mean().unstack("activation")
    r, sm = per.reindex(columns=rough).mean(axis=1), per.reindex(columns=smooth).mean(axis=1)
    targets = ", ".join(t for t in SMOOTH_TARGETS if t in set(on["target"]))
    lost = int((~(np.isfinite(r) & np.isfinite(sm))).sum())
    left_out = f" ({lost} of {len(per)} seeds with a diverged run left out)" if lost else ""
    return Claim(
        "Smooth activations fit smooth functions better than ReLU.",
        f"log10 test MSE on the smooth targets ({targets}), mean over targets, per seed: "
        f"{', '.join(rough)} minus {', '.join(smooth)}; above 0 supports{left_out}; "
        + smoothness_words([specs[a] for a in rough]),
        paired_comparison(r, sm),
        supports=1,
        conditions=condition_words(rctx.config)[0],
    )


def smoothness_words(rough) -> str:
    """The convention the grouping follows, said where it is not obvious: smooth means
    infinitely differentiable, so an activation whose slope is continuous at 0 but whose
    second derivative jumps there (ELU at alpha = 1) is counted with the kinked ones."""
    import torch

    near = torch.tensor([-1e-6, 1e-6], dtype=torch.float64)
    c1 = [a.name for a in rough if abs(float(torch.diff(a.derivative(near))[0])) < 1e-4]
    text = "smooth = infinitely differentiable (a jump in any derivative counts as a kink)"
    if c1:
        text += (
            f", so {', '.join(c1)}, whose slope is continuous at 0 but not its curvature, "
            "is with the kinked ones"
        )
    return text
