"""Shared figure helpers: one colour per activation across every figure of a run, and
byte-reproducible PNG output (so `actlab report` rebuilds identical files).

Each figure is drawn once, as PNG: the report links it and report.html embeds it. An SVG
copy used to be written beside each, at about as much again as the PNG's cost, and
nothing read it but the HTML's choice of the smaller file."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot with a file-only backend (no display on servers or in CI)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def warm_up() -> None:
    """Draw a small figure: the first one a process draws loads fonts and fills caches
    (about half a second), better spent while nothing waits for it."""
    import io

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_yscale("log")
    ax.plot([1, 2], [1, 10], label="warm")
    ax.set_title("warm")
    ax.legend()
    fig.savefig(io.BytesIO(), format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def activation_colours(names: list[str]) -> dict[str, tuple]:
    plt = pyplot()
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def save(fig, path: Path) -> Path:
    """Write `path` as PNG; returns its path."""
    path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    # No dates or software versions in the files: a rebuild gives the same bytes.
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    pyplot().close(fig)
    return path


# -- training curves (stability, capacity) --------------------------------------------------


def median_band(values, x: str = "step", value: str = "value"):
    """Per `x` (sorted): the median of the finite `value`s there, their lowest and highest
    (the range over seeds) and how many there were (`n`). Non-finite values (a diverged
    run's NaN or inf) are left out, and an `x` with none is dropped. A pure function of
    the rows: the training-curve figures draw exactly these numbers."""
    import numpy as np

    finite = values[np.isfinite(values[value].to_numpy(dtype=float))]
    return (
        finite.groupby(x, sort=True)[value]
        .agg(median="median", low="min", high="max", n="count")
        .reset_index()
    )


def draw_loss_curves(ax, curves, activations: list[str], colours) -> None:
    """Training loss against step on a log y axis, one colour per activation: the median
    over seeds as a line and their range as a shaded band (`median_band`), and an x at the
    last finite loss of each run that diverged (rows with `diverged` 1). `curves`: rows of
    activation, seed, step, value and diverged for one setting."""
    import numpy as np

    for act in activations:
        rows = curves[curves["activation"] == act]
        band = median_band(rows)
        if band.empty:
            continue
        colour = colours[act]
        ax.fill_between(band["step"], band["low"], band["high"], color=colour, alpha=0.18, lw=0)
        ax.plot(band["step"], band["median"], color=colour, lw=1.3, label=act)
        lost = rows[(rows["diverged"] == 1) & np.isfinite(rows["value"].to_numpy(dtype=float))]
        if not lost.empty:
            ends = lost.sort_values("step").groupby("seed").tail(1)
            ax.plot(ends["step"], ends["value"], ls="", marker="x", ms=6, mew=1.8, color=colour)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.grid(True, which="major", alpha=0.3)


def loss_curves_legend(fig, activations: list[str], colours, panel_width: float, cols: int):
    """The legend of a figure of `draw_loss_curves` panels, below them: each activation's
    colour, then what the line, the band, the x and the dashed line (the target's variance)
    mean; as many entries a row as the figure's width holds."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color=colours[a], label=a) for a in activations] + [
        Line2D([], [], color="black", lw=1.3, label="median over seeds"),
        Patch(color="black", alpha=0.18, label="range over seeds"),
        Line2D([], [], color="black", ls="", marker="x", label="diverged (last finite loss)"),
        Line2D([], [], color="grey", ls="--", label="target variance"),
    ]
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=max(3, min(len(handles), int(panel_width * cols / 1.35))),
        fontsize=8,
        frameon=False,
    )
