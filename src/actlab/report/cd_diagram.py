"""Critical-difference diagrams (Demšar 2006, figure 1), one panel per property, drawn
from verdicts.csv alone.

Each panel is an axis of mean ranks (1 = best, on the left); every ranked activation
hangs from its mean rank by a line to its name; a bar of the critical difference's length
is drawn above the axis; thick bars below it join the activations that Nemenyi's test
cannot tell apart (the maximal runs of consecutive activations whose mean ranks differ by
less than the critical difference). When Friedman's test finds no difference one bar joins
them all.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from actlab.stats import permutation_p_text


def cliques(ranks: list[float], cd: float, separated: bool) -> list[tuple[int, int]]:
    """(first, last) indices into sorted mean ranks of the maximal runs not separated."""
    n = len(ranks)
    if n < 2:
        return []
    if not separated:
        return [(0, n - 1)]
    runs = []
    for i in range(n):
        j = i
        while j + 1 < n and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in runs):
            runs.append((i, j))
    return runs


def draw_panel(ax, v: pd.DataFrame) -> None:
    ranked = v[v["mean_rank"].notna()].sort_values("mean_rank", kind="stable")
    k = len(ranked)
    prop = str(v["property"].iloc[0])
    ax.set_axis_off()
    if k < 2:
        ax.set_title(f"{prop}: fewer than two activations ranked", fontsize=9)
        return
    names = ranked["activation"].tolist()
    ranks = ranked["mean_rank"].astype(float).tolist()
    cd = float(ranked["critical_difference"].iloc[0])
    friedman = float(ranked["friedman_p"].iloc[0])
    separated = bool(ranked["group"].isin(["best", "worst", "middle"]).any())
    ax.set_xlim(0.5, k + 0.5)
    half = math.ceil(k / 2)
    ax.set_ylim(-(half + 1.5), 2.2)
    ax.plot([1, k], [0, 0], color="black", lw=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.15], color="black", lw=1)
        ax.text(r, 0.3, str(r), ha="center", va="bottom", fontsize=7)
    if math.isfinite(cd):
        ax.plot([1, 1 + cd], [1.3, 1.3], color="black", lw=1.5)
        ax.text(1 + cd / 2, 1.45, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=7)
    for i, (name, r) in enumerate(zip(names, ranks, strict=True)):
        left = i < half
        level = -(i + 1) if left else -(k - i)
        end = 0.55 if left else k + 0.45
        ax.plot([r, r, end], [0, level, level], color="0.3", lw=0.8)
        ax.text(
            end,
            level,
            f"{name} ({r:.2f})" if left else f"({r:.2f}) {name}",
            ha="left" if left else "right",
            va="bottom",
            fontsize=7,
        )
    for n, (a, b) in enumerate(cliques(ranks, cd, separated)):
        y = -0.35 - 0.25 * n
        ax.plot([ranks[a] - 0.05, ranks[b] + 0.05], [y, y], color="black", lw=3)
    verdict = "" if separated else ": no pair separated"
    p = f"Friedman {permutation_p_text(friedman)}" if math.isfinite(friedman) else "untested"
    ax.set_title(f"{prop} ({v['blocks'].iloc[0]}; {p}{verdict})", fontsize=9)
    unranked = v[v["mean_rank"].isna()]["activation"].tolist()
    if unranked:
        ax.text(
            k + 0.5, -(half + 1.3), "not ranked: " + ", ".join(unranked), ha="right", fontsize=7
        )


def plot_cd_diagrams(verdicts: pd.DataFrame, path: Path) -> Path:
    from actlab.render.figures import pyplot, save

    plt = pyplot()
    props = list(dict.fromkeys(verdicts["property"]))
    k = int(verdicts.groupby("property")["activation"].count().max())
    cols = 2 if len(props) > 1 else 1
    rows = math.ceil(len(props) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(7.0 * cols, (0.3 * k + 1.6) * rows), squeeze=False
    )
    for ax, prop in zip(axes.flat, props, strict=False):
        draw_panel(ax, verdicts[verdicts["property"] == prop])
    for ax in list(axes.flat)[len(props) :]:
        ax.set_visible(False)
    fig.suptitle(
        "Mean ranks per property (1 = best); a thick bar joins activations Nemenyi's test "
        "cannot separate"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return save(fig, path)
