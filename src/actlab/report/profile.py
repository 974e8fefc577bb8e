"""The profile section: one activation (the run's `focus`) against its baselines.

Everything is read from the run's verdicts and the mean-field theory; nothing is
written in advance.
"""

from __future__ import annotations

import math
from typing import Any

from actlab.stats import p_text

GROUP_WORDS = {
    "best": "in the best group",
    "worst": "in the worst group",
    "middle": "separated from both the best and the worst",
    "not separated": "not separated from either end",
    "not ranked": "not ranked",
}


def positional(value: float, digits: int = 3) -> str:
    """`digits` significant digits in positional notation, never e-notation, so that a
    column of means on different scales (a log10 MSE, a fraction of units, a time ratio)
    reads in one format: -3.42, 0.941, 0.0000120; "–" when missing or infinite."""
    if not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def rank_line(v, focus: str) -> str | None:
    """One row of the profile table from a property's verdicts."""
    from actlab.report.summary import short_test

    v = v.sort_values("mean_rank", kind="stable", na_position="last")
    rows = v.set_index("activation")
    if focus not in rows.index:
        return None
    r = rows.loc[focus]
    ranked = v[v["mean_rank"].notna()]
    where = (
        f"mean rank {r['mean_rank']:.1f} of {len(ranked)}"
        if math.isfinite(r["mean_rank"])
        else f"not ranked ({r['outcomes'] or 'no score'})"
    )
    verdict = GROUP_WORDS[r["group"]]
    if r["group"] == "not separated" and not v["group"].isin(["best", "worst", "middle"]).any():
        verdict = "no activation separated"
    p = r["nemenyi_p_vs_best"]
    vs_best = (
        "" if not math.isfinite(p) else f"; vs {ranked.iloc[0]['activation']}: Nemenyi {p_text(p)}"
    )
    mean = positional(r["mean"])
    return f"| {r['property']} | {where} | {mean} | {verdict}{vs_best} ({short_test(v)}) |"


def theory_lines(activation: Any) -> list[str]:
    from actlab.theory import summarise

    lines = []
    for sigma_w, sigma_b, label in ((1.0, 0.0, "Xavier/LeCun scale (sigma_w = 1, sigma_b = 0)"),):
        s = summarise(activation, sigma_w, sigma_b)
        mf = s.mean_field
        lines.append(
            f"- At the {label}: q* = {mf.q_star:.4g} "
            f"({'stable' if mf.q_star_stable else 'not stable'}), chi_1 = "
            f"{mf.chi_1:.4g} ({'ordered: gradients shrink with depth' if mf.chi_1 < 1 else 'chaotic: gradients grow with depth' if mf.chi_1 > 1 else 'critical'})."
        )
        if s.gain is not None:
            lines.append(f"- Variance-preserving gain at unit input variance: {s.gain:.4g}.")
    for sigma_b in (0.0, 0.05):
        edge = summarise(activation, 1.0, sigma_b).edge
        if edge.sigma_w is not None:
            lines.append(
                f"- Edge of chaos at sigma_b = {sigma_b:g}: sigma_w = {edge.sigma_w:.4g} "
                f"(q* = {edge.q_star:.4g}, {edge.status})."
            )
        else:
            lines.append(
                f"- Edge of chaos at sigma_b = {sigma_b:g}: no usable critical "
                f"initialisation ({edge.status}: {edge.note})."
            )
    return lines


def mnist1d_lines(focus: str, summary) -> list[str]:
    """The focus against each other activation in each MNIST-1D architecture: the paired
    difference in test accuracy over seeds, Holm-adjusted over the whole table. Equal means
    (as many correct test sequences) are a tie, never 'better' or 'worse' by float rounding
    nor a signed zero; p-values are written by stats.p_text."""
    from actlab.stats import paired_by_seed, with_holm
    from actlab.studies.compare import TIE_REL

    wide = summary["trials"]
    if focus not in set(wide["activation"]):
        return []
    pairs = [
        (arch, other)
        for arch in dict.fromkeys(wide["architecture"])
        for other in dict.fromkeys(wide["activation"])
        if other != focus
    ]
    if not pairs:
        return []
    tests = with_holm(
        [
            paired_by_seed(wide[wide["architecture"] == arch], "test_accuracy", focus, other)
            for arch, other in pairs
        ]
    )
    lines = [
        f"**MNIST-1D.** {focus}'s test accuracy minus each other activation's, paired over "
        f"seeds (mean difference in points [95% interval]; sign-flip test, Holm-adjusted over "
        f"the {len(pairs)} comparisons):",
        "",
        "| architecture | against | difference | test | verdict |",
        "|---|---|---|---|---|",
    ]
    for (arch, other), c in zip(pairs, tests, strict=True):
        if not c.tested:
            seeds = f"{c.n} paired seed{'' if c.n == 1 else 's'}"
            lines.append(f"| {arch} | {other} | – | – | not tested ({seeds}) |")
            continue
        own = wide[(wide["architecture"] == arch) & (wide["activation"] == focus)]
        if abs(c.mean_diff) <= TIE_REL * abs(own["test_accuracy"].mean()):
            diff, verdict = "0.0", "tie (equal means)"
        else:
            diff = f"{100 * c.mean_diff:+.1f}"
            verdict = (
                ("better" if c.mean_diff > 0 else "worse") if c.significant else "not separated"
            )
        lines.append(
            f"| {arch} | {other} | {diff} [{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}] | "
            f"{p_text(c.p_decisive)} | {verdict} |"
        )
    return [*lines, ""]


def profile_markdown(focus: str, activation: Any, verdicts, mnist1d=None) -> str:
    rows = [
        line
        for prop in dict.fromkeys(verdicts["property"])
        if (line := rank_line(verdicts[verdicts["property"] == prop], focus))
    ]
    lines = [
        f"How **{focus}** compares with the other activations of this run, property by "
        "property (its mean rank, 1 = best, and its group in the best-and-worst table: "
        "Friedman's test, then Nemenyi's), and what mean-field theory predicts for it.",
        "",
        "| property | position | its mean | verdict |",
        "|---|---|---|---|",
        *rows,
        "",
        *(mnist1d_lines(focus, mnist1d) if mnist1d is not None else []),
        "**Theory** (infinitely wide networks; see the signal-propagation study for how well "
        "finite ones follow it):",
        "",
        *theory_lines(activation),
    ]
    return "\n".join(lines)
