"""The stability study's claims, tested on the summary."""

from __future__ import annotations

from typing import Any

from actlab.studies.base import ReportContext
from actlab.studies.stability.config import condition_words


def bounded_is_stable(summary: dict[str, Any], rctx: ReportContext):
    """ "Bounded activations are the stable choice at high learning rates", tested: per seed,
    the number of the sweep's learning rates at which a run diverged, averaged over the
    bounded activations, minus that of the unbounded non-linear ones (one paired sign-flip
    test over seeds); a negative difference supports the claim."""
    from actlab.activations import is_affine, is_bounded
    from actlab.stats import paired_comparison
    from actlab.studies.base import Claim

    trials = summary["trials"]
    trials = trials[trials["part"] == "lr"] if not trials.empty else trials
    specs = rctx.specs
    if trials.empty or not specs:
        return None
    acts = [a for a in rctx.activations if a in specs and not is_affine(specs[a])]
    bounded = [a for a in acts if is_bounded(specs[a])]
    unbounded = [a for a in acts if not is_bounded(specs[a])]
    if not bounded or not unbounded:
        return None
    # Stable means neither diverged nor blown up to a finite loss far above a constant
    # output's (failed): a run at 1e4 x the target's variance is no stable choice.
    blown = trials["outcome"].isin(["diverged", "failed"])
    per = blown.groupby([trials["activation"], trials["seed"]]).sum()
    per = per.unstack("activation")
    b = per.reindex(columns=bounded).mean(axis=1)
    u = per.reindex(columns=unbounded).mean(axis=1)
    return Claim(
        "Bounded activations are the stable choice at high learning rates.",
        f"learning rates (of {trials['lr'].nunique()}) at which a run diverged or failed "
        f"(finite, above {rctx.config.failed_above:g}x the target's variance), per seed: "
        f"{', '.join(bounded)} minus {', '.join(unbounded)}; below 0 supports",
        paired_comparison(b, u),
        supports=-1,
        conditions=condition_words(rctx.config)[0],
    )


def finite_means_learned(summary: dict[str, Any], rctx: ReportContext):
    """ "A run that did not diverge is stable", tested: per seed, the share of depth-stress
    runs that stayed finite yet did not learn (still improving, stuck or failed), against
    none (a sign-flip test of the share against 0); a share above 0 contradicts the
    claim."""
    import pandas as pd

    from actlab.stats import paired_comparison
    from actlab.studies.base import Claim

    trials = summary["trials"]
    trials = trials[trials["part"] == "depth"] if not trials.empty else trials
    if trials.empty:
        return None
    unlearned = trials["outcome"].isin(["improving", "stuck", "failed"])
    share = unlearned.groupby(trials["seed"]).mean()
    return Claim(
        "A run that did not diverge is stable.",
        "share of depth-stress runs that stayed finite yet did not learn (still improving, "
        "stuck or failed), per seed, minus 0; above 0 contradicts",
        paired_comparison(share, pd.Series(0.0, index=share.index)),
        supports=-1,
        conditions=condition_words(rctx.config)[1],
    )
