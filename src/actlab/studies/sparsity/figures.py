"""The sparsity study's figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from actlab.studies.base import ReportContext
from actlab.studies.sparsity.config import Config

TITLES = {
    "sparsity": "Exact zeros (|a| < threshold), % of values",
    "dead_rate": "Units with output ~0 on every input, %",
    "zero_slope_rate": "Dead units (zero slope on every input), %",
    "saturated_rate": "Saturated units (|f'| ~ 0 for every input), %",
}


def dead_metric(table) -> str:
    """The metric drawn as dead units: the zero-slope rate (slope exactly 0 on every
    input, the report's definition); the output count only for runs stored before the
    zero-slope rate existed, under its own title."""
    if "zero_slope_rate_n" in table and (table["zero_slope_rate_n"] > 0).any():
        return "zero_slope_rate"
    return "dead_rate"


def bar_panel(ax, table, names: list[str], metric: str, colours) -> None:
    """One metric's bars (mean over layers and non-diverged seeds) with 95% error bars; a
    hatched bar for an activation that diverged in every seed, and "k/n diverged" over one
    that diverged in some."""
    t = table.set_index("activation").loc[names]
    mean = 100 * t[f"{metric}_mean"]
    high = 100 * t[f"{metric}_high"]
    top = max(5.0, float(max(mean.max(skipna=True), high.max(skipna=True), 0) or 0) * 1.2)
    top = min(top, 105.0) if math.isfinite(top) else 105.0
    for i, act in enumerate(names):
        r = t.loc[act]
        if r[f"{metric}_n"] == 0:  # every seed diverged: no value to draw
            ax.bar(
                i, top, color="none", edgecolor="0.6", hatch="///", linestyle="--", linewidth=0.8
            )
            ax.text(i, top / 2, "diverged", rotation=90, ha="center", va="center", fontsize=9)
            continue
        yerr = None
        if math.isfinite(r[f"{metric}_low"]):
            low = 100 * r[f"{metric}_low"]
            yerr = [[max(mean[act] - low, 0)], [max(high[act] - mean[act], 0)]]
        ax.bar(i, mean[act], color=colours[act], yerr=yerr, capsize=3)
        if r["diverged"]:
            ax.text(
                i,
                mean[act] + top * 0.02,
                f"{int(r['diverged'])}/{int(r['n_seeds'])}\ndiverged",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set_ylim(0, top)
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
    ax.set_title(TITLES[metric], fontsize=10)
    ax.set_ylabel("% (mean over layers)")
    ax.grid(True, axis="y", alpha=0.3)


def plot_bars(table, activations: list[str], path: Path) -> Path:
    from actlab.render.figures import activation_colours, pyplot, save

    plt = pyplot()
    colours = activation_colours(activations)
    names = [a for a in activations if a in set(table["activation"])]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for ax, metric in zip(axes, ("sparsity", dead_metric(table), "saturated_rate"), strict=True):
        bar_panel(ax, table, names, metric, colours)
    many = (table["n_seeds"] > 1).any()
    bars = "error bars: 95% interval" if many else "one seed: no error bars"
    fig.suptitle(f"After training: mean over layers and non-diverged seeds ({bars})")
    fig.tight_layout()
    return save(fig, path)


def plot_histograms(histograms: dict[str, Any], rctx: ReportContext, path: Path) -> Path:
    import numpy as np

    from actlab.render.figures import activation_colours, pyplot, save

    cfg: Config = rctx.config
    plt = pyplot()
    colours = activation_colours(rctx.activations)
    names = [a for a in rctx.activations if a in histograms]
    cols = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    for ax, act in zip(axes.flat, names, strict=False):
        h = histograms[act]
        ax.set_title(act)
        if h["counts"] is None:
            ax.text(
                0.5,
                0.5,
                "diverged\n(every seed)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=11,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        counts = h["counts"]
        edges = np.linspace(-cfg.clip, cfg.clip, len(counts) + 1)
        total = counts.sum()
        density = counts / (total * np.diff(edges)) if total > 0 else counts
        ax.stairs(density, edges, fill=True, color=colours[act], alpha=0.8)
        ax.set_xlim(-cfg.clip, cfg.clip)
        ax.text(
            0.97,
            0.95,
            f"mean {h['mean']:.3f}\nstd {h['std']:.3f}",
            ha="right",
            va="top",
            transform=ax.transAxes,
            fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"},
        )
        ax.set_xlabel("post-activation value")
        ax.set_ylabel("density")
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"Post-activation values, all hidden layers pooled, clipped to [-{cfg.clip:g}, "
        f"{cfg.clip:g}] (seeds that diverged left out)"
    )
    fig.tight_layout()
    return save(fig, path)
