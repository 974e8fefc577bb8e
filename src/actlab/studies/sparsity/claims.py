"""The sparsity study's claims, tested on the summary."""

from __future__ import annotations

from actlab.studies.base import ReportContext


def rectifiers_die_most(summary, rctx: ReportContext, conditions: str):
    """ "Dead units are a ReLU problem", tested: per seed, the share of units that pass
    (almost) no gradient on any input (slope below the saturation threshold everywhere:
    dead or saturated, after training) of the rectifiers with a zero region minus that of
    the other non-linear activations; a positive difference supports the claim. Counting
    only exact zeros would make the claim true by construction, so flat slopes count too.

    Divergence is handled one way: a diverged network has no units to count, so a seed in
    which any activation of either group diverged is left out of both sides (never a group
    mean over the activations that happened to survive, which would change the comparison
    from seed to seed), and the measurement says how many seeds were left out and why."""
    import numpy as np

    from actlab.activations import has_zero_region, is_affine
    from actlab.stats import paired_comparison
    from actlab.studies.base import Claim

    specs, trials = rctx.specs, summary["trials"]
    acts = [a for a in rctx.activations if a in specs and not is_affine(specs[a])]
    kinked = [a for a in acts if has_zero_region(specs[a])]
    others = [a for a in acts if not has_zero_region(specs[a])]
    if not kinked or not others or trials.empty:
        return None
    both = [*kinked, *others]
    per = trials.pivot_table(
        index="seed", columns="activation", values="saturated_rate", dropna=False
    ).reindex(columns=both)
    diverged = (
        trials.pivot_table(index="seed", columns="activation", values="diverged", dropna=False)
        .reindex(index=per.index, columns=both)
        .fillna(0)
        .eq(1)
    )
    # A seed counts only when every activation of both groups has a value in it.
    whole = per.notna().all(axis=1) & ~diverged.any(axis=1)
    k = per[kinked].mean(axis=1, skipna=False).where(whole)
    o = per[others].mean(axis=1, skipna=False).where(whole)
    lost = int((~whole).sum())
    left_out = ""
    if lost:
        counts = diverged[~whole].sum(axis=0)
        who = ", ".join(f"{a} diverged in {int(n)}" for a, n in counts.items() if n)
        why = f"{who}, and a diverged network has no units to count" if who else "of a missing run"
        left_out = (
            f"; {lost} of {len(per)} seeds left out of both groups because {why} (a group "
            "mean over the survivors would change the comparison from seed to seed)"
        )
    return Claim(
        "Dead units are a ReLU problem.",
        f"share of units with slope below {rctx.config.saturation_threshold:g} on every input "
        f"after training (dead or saturated): {', '.join(kinked)} minus {', '.join(others)}; "
        f"above 0 supports{left_out}",
        paired_comparison(np.asarray(k), np.asarray(o)),
        supports=1,
        conditions=conditions,
    )
