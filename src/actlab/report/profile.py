"""The profile section: one activation (the run's `focus`) against its baselines.

Everything is read from the run's rankings and the mean-field theory; nothing is
written in advance.
"""

from __future__ import annotations

import math
from typing import Any


def rank_line(pr, focus: str, seeds: int) -> str | None:
    r = pr.ranking
    if focus not in r.order:
        return None
    position = r.order.index(focus) + 1
    where = f"{position} of {len(r.order)}"
    if focus in r.best and len(r.best) > 1 and seeds > 1:
        verdict = f"tied with the best ({', '.join(a for a in r.best if a != focus)})"
    elif focus in r.best:
        verdict = "the best" if seeds > 1 else "first by value (one seed: untested)"
    elif focus in r.worst and seeds > 1:
        verdict = "among the worst"
    else:
        verdict = "between the best and the worst"
    p = r.p_values.get(focus, math.nan)
    vs_best = "" if math.isnan(p) or focus == r.order[0] else f"; vs {r.order[0]}: p = {p:.2g}"
    return f"| {pr.property} | {where} | {r.means[focus]:.3g} | {verdict}{vs_best} |"


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


def profile_markdown(focus: str, activation: Any, rankings: list, seeds: int) -> str:
    rows = [line for pr in rankings if (line := rank_line(pr, focus, seeds))]
    lines = [
        f"How **{focus}** compares with the other activations of this run, property by "
        "property (position by mean; a difference the seeds cannot resolve is a tie), and "
        "what mean-field theory predicts for it.",
        "",
        "| property | position | its mean | verdict |",
        "|---|---|---|---|",
        *rows,
        "",
        "**Theory** (infinitely wide networks; see the signal-propagation study for how well "
        "finite ones follow it):",
        "",
        *theory_lines(activation),
    ]
    if seeds == 1:
        lines += ["", "*One seed: positions are by value only and untested.*"]
    return "\n".join(lines)
