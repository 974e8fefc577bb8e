"""The sparsity study's claims, tested on the summary."""

from __future__ import annotations

from actlab.studies.base import ReportContext


def rectifiers_die_most(summary, rctx: ReportContext):
    """ "Dead units are a ReLU problem", tested: per seed, the share of units that pass
    (almost) no gradient on any input (slope below the saturation threshold everywhere:
    dead or saturated, after training) of the rectifiers with a zero region minus that of
    the other non-linear activations, over the seeds where neither group diverged
    entirely; a positive difference supports the claim. Counting only exact zeros would
    make the claim true by construction, so flat slopes count too."""
    from actlab.activations import has_zero_region, is_affine
    from actlab.stats import paired_comparison
    from actlab.studies.base import Claim
    from actlab.studies.sparsity import Sparsity

    specs, trials = rctx.specs, summary["trials"]
    acts = [a for a in rctx.activations if a in specs and not is_affine(specs[a])]
    kinked = [a for a in acts if has_zero_region(specs[a])]
    others = [a for a in acts if not has_zero_region(specs[a])]
    if not kinked or not others or trials.empty:
        return None
    per = trials.pivot_table(
        index="seed", columns="activation", values="saturated_rate", dropna=False
    )
    k, o = per.reindex(columns=kinked).mean(axis=1), per.reindex(columns=others).mean(axis=1)
    return Claim(
        "Dead units are a ReLU problem.",
        f"share of units with slope below {rctx.config.saturation_threshold:g} on every input "
        f"after training (dead or saturated): {', '.join(kinked)} minus {', '.join(others)}; "
        "above 0 supports",
        paired_comparison(k, o),
        supports=1,
        conditions=Sparsity().conditions(rctx.config)["dead units"],
    )
