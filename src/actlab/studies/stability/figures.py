"""The stability study's figures: loss after training against learning rate and depth,
each cell drawn in its most common state."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def plot(summary: dict[str, Any], activations: list[str], path: Path) -> Path:
    """Left: loss after training per learning rate (grouped bars); right: against depth.
    Each cell shows its most common state's geometric-mean loss: learned = solid, still
    improving = dotted / open triangle, stuck = hatched / open marker, failed =
    cross-hatched / square; a cell where most seeds diverged
    is a cross in the activation's colour (with "k/n" unless all did); partial divergence
    is written beside the cell."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from actlab.render.figures import activation_colours, pyplot, save

    plt = pyplot()
    colours = activation_colours(activations)
    parts = [p for p in ("lr", "depth") if not summary[p].empty]
    fig, axes = plt.subplots(1, len(parts), figsize=(7.5 * len(parts), 4.8), squeeze=False)
    for ax, part in zip(axes.flat, parts, strict=True):
        table = summary[part]
        variance = float(table["variance"].mean())
        ax.axhline(variance, color="grey", ls="--", lw=1)
        ax.set_yscale("log")
        if part == "lr":
            lrs = sorted(table["lr"].unique())
            width = 0.8 / max(len(activations), 1)
            top = ceiling(table)
            for i, act in enumerate(activations):
                rows = table[table["activation"] == act].set_index("lr")
                for j, lr in enumerate(lrs):
                    if lr not in rows.index:
                        continue
                    r = rows.loc[lr]
                    xpos = j - 0.4 + width * (i + 0.5)
                    if r["state"] == "diverged":
                        ax.plot(xpos, top, marker="x", color=colours[act], ms=7, mew=2)
                        if r["diverged"] < r["seeds"]:
                            ax.annotate(
                                f"{r['diverged']}/{r['seeds']}",
                                (xpos, top),
                                fontsize=6,
                                color="red",
                                ha="center",
                                xytext=(0, 5),
                                textcoords="offset points",
                            )
                        continue
                    ax.bar(
                        xpos,
                        r["loss"],
                        width,
                        color=colours[act],
                        hatch=HATCH[r["state"]],
                        edgecolor="black" if HATCH[r["state"]] else colours[act],
                        linewidth=0.5,
                    )
                    if math.isfinite(r["loss_low"]):
                        ax.errorbar(
                            xpos,
                            r["loss"],
                            yerr=[[r["loss"] - r["loss_low"]], [r["loss_high"] - r["loss"]]],
                            color="black",
                            lw=0.7,
                            capsize=1.5,
                        )
                    if r["diverged"]:
                        ax.annotate(
                            f"{r['diverged']}/{r['seeds']} div.",
                            (xpos, r["loss"]),
                            fontsize=6,
                            rotation=90,
                            ha="center",
                            va="bottom",
                            color="red",
                        )
            ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
            ax.set_xlabel("learning rate (SGD)")
            ax.set_title("3a: learning-rate stress")
        else:
            loss_panel(ax, table, "depth", activations, colours, "depth (Adam)")
            ax.set_title("3b: depth stress")
        ax.set_ylabel("loss after training (geometric mean, most common state)")
        ax.grid(True, which="major", alpha=0.3)
    handles = [Patch(color=colours[a], label=a) for a in activations] + [
        Line2D([], [], color="grey", ls="--", label="target variance (constant output)"),
        Patch(facecolor="white", edgecolor="black", hatch="..", label="still improving (bar)"),
        Patch(facecolor="white", edgecolor="black", hatch="//", label="stuck (bar)"),
        Patch(facecolor="white", edgecolor="black", hatch="xx", label="failed (bar)"),
        *marker_legend(),
    ]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(7, len(handles)),
        fontsize=8,
        bbox_to_anchor=(0.5, -0.16),
    )
    fig.suptitle(
        "Loss after training under stress: learned, still improving, stuck, failed and "
        "diverged apart"
    )
    return save(fig, path)


HATCH = {"learned": None, "improving": "..", "stuck": "//", "failed": "xx", "diverged": None}
MARKER = {"learned": "o", "improving": "^", "stuck": "o", "failed": "s"}


def ceiling(table) -> float:
    """Where all-diverged cells are drawn: above every finite loss and the variance."""
    import numpy as np

    losses = table["loss"].to_numpy(dtype=float)
    top = np.nanmax(losses) if np.isfinite(losses).any() else 1.0
    return max(float(top), float(table["variance"].mean())) * 3


def marker_legend() -> list[Any]:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], marker="o", color="black", ls="", label="learned"),
        Line2D(
            [],
            [],
            marker="^",
            color="black",
            markerfacecolor="white",
            ls="",
            label="still improving",
        ),
        Line2D([], [], marker="o", color="black", markerfacecolor="white", ls="", label="stuck"),
        Line2D([], [], marker="s", color="black", markerfacecolor="white", ls="", label="failed"),
        Line2D([], [], marker="x", color="black", ls="", label="diverged in most seeds"),
    ]


def loss_panel(ax, table, key: str, activations: list[str], colours, label: str) -> None:
    """Loss after training against a setting (log x), one line per activation through its
    cells' most common state, with its 95% interval. Activations sit side by side at each
    setting, and a cell where most seeds diverged is a cross in the activation's colour in
    a band above the data, one row per activation, so that no mark hides another's;
    divergence short of all seeds is written as "k/n" beside the mark."""
    import numpy as np
    from matplotlib.ticker import NullFormatter

    top = ceiling(table)
    settings = sorted(table[key].unique())
    # Side by side within 60% of the narrowest gap between settings (in log x).
    gap = float(np.min(np.diff(np.log10(settings)))) if len(settings) > 1 else 0.3
    step = 0.6 * gap / max(len(activations) - 1, 1)
    for i, act in enumerate(activations):
        rows = table[table["activation"] == act].sort_values(key)
        if rows.empty:
            continue
        shift = 10 ** (step * (i - (len(activations) - 1) / 2))
        x = rows[key].to_numpy(dtype=float) * shift
        finite = rows["state"] != "diverged"
        ax.plot(x[finite.to_numpy()], rows["loss"][finite], color=colours[act], lw=1)
        for xi, (_, r) in zip(x, rows.iterrows(), strict=True):
            if r["state"] == "diverged":  # one row per activation in the band above
                band = top * 10 ** (0.12 * i)
                ax.plot(xi, band, marker="x", color=colours[act], ms=6, mew=2)
                if r["diverged"] < r["seeds"]:
                    ax.annotate(
                        f"{r['diverged']}/{r['seeds']}",
                        (xi, band),
                        fontsize=6,
                        color="red",
                        xytext=(2, 2),
                        textcoords="offset points",
                    )
                continue
            filled = colours[act] if r["state"] == "learned" else "white"
            ax.plot(
                xi,
                r["loss"],
                marker=MARKER[r["state"]],
                ms=5,
                color=colours[act],
                markerfacecolor=filled,
            )
            if math.isfinite(r["loss_low"]):
                ax.plot([xi, xi], [r["loss_low"], r["loss_high"]], color=colours[act], lw=0.8)
            if r["diverged"]:
                ax.annotate(
                    f"{r['diverged']}/{r['seeds']}",
                    (xi, r["loss"]),
                    fontsize=6,
                    color="red",
                    xytext=(2, 2),
                    textcoords="offset points",
                )
    ax.axhline(float(table["variance"].mean()), color="grey", ls="--", lw=1)
    ax.axhline(top, color="0.8", lw=0.5)
    ax.text(
        0.01,
        top,
        "diverged",
        transform=ax.get_yaxis_transform(),
        fontsize=7,
        va="bottom",
        color="0.4",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(settings, [f"{v:g}" for v in settings])
    ax.set_xlabel(label)
    ax.set_ylabel("loss after training")
    ax.set_title(
        f"Loss vs {label} (o learned, open triangle still improving, open stuck, square "
        "failed, x diverged)",
        fontsize=9,
    )


def plot_curves(summary: dict[str, Any], activations: list[str], path: Path) -> Path | None:
    """Training loss per step, small multiples: top row 3a, one panel per learning rate;
    bottom row 3b, one panel per depth. Each activation's median over seeds is a line, the
    range over seeds a shaded band, an x the last finite loss of a run that diverged
    (render.figures.draw_loss_curves); dashed: the target's variance. None when no
    training losses are stored."""
    from actlab.render.figures import (
        activation_colours,
        draw_loss_curves,
        loss_curves_legend,
        pyplot,
        save,
    )
    from actlab.studies.base import OPTIMIZER_NAMES

    curves = summary["curves"]
    if curves.empty:
        return None
    plt = pyplot()
    colours = activation_colours(activations)
    rows = [
        (part, key, sorted(curves[curves["part"] == part][key].unique()))
        for part, key in (("lr", "lr"), ("depth", "depth"))
        if (curves["part"] == part).any()
    ]
    cols = max(len(settings) for *_, settings in rows)
    fig, axes = plt.subplots(
        len(rows), cols, figsize=(3.3 * cols, 2.9 * len(rows)), squeeze=False, sharey="row"
    )
    for (part, key, settings), line in zip(rows, axes, strict=True):
        at_part = curves[curves["part"] == part]
        table = summary[part]
        variance = float(table["variance"].mean()) if not table.empty else math.nan
        for ax, value in zip(line, settings, strict=False):
            at = at_part[at_part[key] == value]
            draw_loss_curves(ax, at, activations, colours)
            if math.isfinite(variance):
                ax.axhline(variance, color="grey", ls="--", lw=1)
            optimizer = OPTIMIZER_NAMES.get(at["optimizer"].iloc[0], at["optimizer"].iloc[0])
            if part == "lr":
                title = f"3a: {optimizer}, lr {value:g}, depth {int(at['depth'].iloc[0])}"
            else:
                title = f"3b: {optimizer}, lr {at['lr'].iloc[0]:g}, depth {int(value)}"
            ax.set_title(title, fontsize=9)
        line[0].set_ylabel("training loss (log)")
        for ax in line[len(settings) :]:
            ax.set_visible(False)
    fig.suptitle("Training loss per step under stress (median and range over seeds)")
    fig.tight_layout()
    loss_curves_legend(fig, activations, colours, 3.3, cols)
    return save(fig, path)
