"""The gradient_flow study's figures."""

from __future__ import annotations

import math
from pathlib import Path

from actlab.studies.base import ReportContext
from actlab.studies.gradient_flow.summary import main_layers


def plot(layer_stats, activations: list[str], path: Path) -> Path:
    from actlab.render.figures import activation_colours, pyplot, save

    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    depths = sorted(layer_stats["depth"].unique())
    cols = 2 if len(depths) > 1 else 1
    rows = math.ceil(len(depths) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.2 * rows), squeeze=False)
    colours = activation_colours(activations)
    for ax, depth in zip(axes.flat, depths, strict=False):
        at_depth = layer_stats[layer_stats["depth"] == depth]
        for act in activations:
            s = at_depth[at_depth["activation"] == act].sort_values("layer")
            if s.empty:
                continue
            ax.plot(s["layer"], 10 ** s["mean"], marker="o", ms=3, label=act, color=colours[act])
            if s["n"].max() > 1:
                ax.fill_between(
                    s["layer"],
                    10 ** s["ci_low"],
                    10 ** s["ci_high"],
                    alpha=0.2,
                    color=colours[act],
                    linewidth=0,
                )
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"depth {depth}")
        ax.set_xlabel("layer (1 = input side)")
        ax.set_ylabel("mean |dW| (geometric mean over seeds)")
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(depths) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8, ncol=2)
    fig.suptitle("Gradient magnitude per layer at initialisation (band: 95% interval over seeds)")
    return save(fig, path)


def panel(ax, summary, rctx: ReportContext, colours) -> None:
    """The summary sheet's panel: per-layer gradient at the report depth, with its band."""
    layers = main_layers(summary, rctx.config)
    depth = rctx.config.report_depth
    if depth not in set(layers["depth"]):
        depth = int(layers["depth"].max())
    at = layers[layers["depth"] == depth]
    for act in rctx.activations:
        rows = at[at["activation"] == act].sort_values("layer")
        if rows.empty:
            continue
        ax.plot(rows["layer"], 10 ** rows["mean"], color=colours[act], marker="o", ms=2)
        if rows["n"].max() > 1:
            ax.fill_between(
                rows["layer"],
                10 ** rows["ci_low"],
                10 ** rows["ci_high"],
                color=colours[act],
                alpha=0.15,
                linewidth=0,
            )
    from matplotlib.ticker import MaxNLocator

    ax.axhline(rctx.config.vanish_threshold, color="grey", ls=":", lw=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_yscale("log")
    ax.set_title(f"Gradient flow at depth {depth} (dotted: vanishing threshold)")
    ax.set_xlabel("layer")
    ax.set_ylabel("mean |dW| (geometric mean, 95% band)")
