"""The gradient_flow study's claims, tested on the summary."""

from __future__ import annotations

from actlab.studies.base import ReportContext


def smooth_relus_keep_gradient(summary, rctx: ReportContext, conditions: str):
    """ "Smooth ReLU variants keep gradients alive at least as well as ReLU", tested: per
    seed, the share of the sweep's depths at which the gradient stayed alive (neither
    vanished, exploded, collapsed nor faint: state "ok"), mean over the smooth rectifiers
    minus the mean over the rectifiers with a zero region; a positive difference supports
    the claim. A flat profile of 1e-17 has a small decay but is not alive, so the decay
    alone cannot carry this claim. None when either group is absent."""
    from actlab.activations import has_zero_region, is_smooth_rectifier
    from actlab.stats import paired_comparison
    from actlab.studies.base import Claim

    specs, trials = rctx.specs, summary["trials"]
    acts = [a for a in rctx.activations if a in specs]
    smooth = [a for a in acts if is_smooth_rectifier(specs[a])]
    kinked = [a for a in acts if has_zero_region(specs[a])]
    if not smooth or not kinked or trials.empty or trials["log10_decay"].isna().all():
        return None
    if "init" in trials:
        trials = trials[trials["init"] == rctx.config.main_init]
    trials = trials[trials["log10_decay"].notna()]
    trials = trials.assign(alive=(trials["state"] == "ok").astype(float))
    per = trials.groupby(["seed", "activation"])["alive"].mean().unstack("activation")
    diff = paired_comparison(
        per.reindex(columns=smooth).mean(axis=1), per.reindex(columns=kinked).mean(axis=1)
    )
    depths = sorted(trials["depth"].unique())
    return Claim(
        "Smooth ReLU variants keep gradients alive at least as well as ReLU.",
        f"share of depths ({', '.join(str(d) for d in depths)}) at which the gradient stayed "
        "alive (within 1000x across the hidden layers, and neither collapsed below 1e-8 nor "
        f"faint beside the field): {', '.join(smooth)} minus {', '.join(kinked)}; "
        "above 0 supports",
        diff,
        supports=1,
        conditions=conditions,
    )
