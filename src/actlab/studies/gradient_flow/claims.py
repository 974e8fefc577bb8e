"""The gradient_flow study's claims, tested on the summary."""

from __future__ import annotations

from actlab.studies.base import ReportContext


def smooth_relus_keep_gradient(summary, rctx: ReportContext):
    """ "Smooth ReLU variants keep gradients alive at least as well as ReLU", tested: per
    seed, the smooth rectifiers' change of gradient across the hidden layers (|log10
    decay|, mean over them and the sweep's depths) minus that of the rectifiers with a zero
    region; a negative difference supports the claim. None when either group is absent."""
    from actlab.activations import has_zero_region, is_smooth_rectifier
    from actlab.stats import paired_comparison
    from actlab.studies.base import Claim
    from actlab.studies.gradient_flow import GradientFlow

    specs, trials = rctx.specs, summary["trials"]
    acts = [a for a in rctx.activations if a in specs]
    smooth = [a for a in acts if is_smooth_rectifier(specs[a])]
    kinked = [a for a in acts if has_zero_region(specs[a])]
    if not smooth or not kinked or trials.empty or trials["log10_decay"].isna().all():
        return None
    if "init" in trials:
        trials = trials[trials["init"] == rctx.config.main_init]
    trials = trials.assign(change=trials["log10_decay"].abs())
    per = trials.groupby(["seed", "activation"])["change"].mean().unstack("activation")
    diff = paired_comparison(
        per.reindex(columns=smooth).mean(axis=1), per.reindex(columns=kinked).mean(axis=1)
    )
    depths = sorted(trials[trials["log10_decay"].notna()]["depth"].unique())
    return Claim(
        "Smooth ReLU variants keep gradients alive at least as well as ReLU.",
        f"decades of gradient change across the hidden layers (|log10 decay|, mean over "
        f"depths {', '.join(str(d) for d in depths)}): {', '.join(smooth)} minus "
        f"{', '.join(kinked)}; below 0 supports",
        diff,
        supports=-1,
        conditions=GradientFlow().conditions(rctx.config)["gradient flow"],
    )
