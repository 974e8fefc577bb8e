"""The capacity study's figures: MSE heatmaps and the predictions per target."""

from __future__ import annotations

import math
from pathlib import Path

from actlab.studies.capacity.config import TARGETS, Config, target_fn
from actlab.studies.capacity.report import cell_text
from actlab.studies.capacity.run import grid_extrap, grid_test
from actlab.studies.capacity.summary import cell_lookup


def draw_heatmap(ax, cells, activations, targets, prefix: str, seeds: int, title: str):
    """One heatmap of log10 MSE (rows activations, columns targets) annotated with the
    geometric-mean MSE and its interval; a cell where most seeds diverged is grey, like one
    where all did (a diverged run is the worst outcome, not a gap). Returns the image for a
    colour bar."""
    import numpy as np

    table = cell_lookup(cells, prefix)
    grid = np.full((len(activations), len(targets)), np.nan)
    for i, act in enumerate(activations):
        for j, t in enumerate(targets):
            if (act, t) in table.index:
                row = table.loc[(act, t)]
                if 2 * row["diverged"] <= row["n_seeds"]:
                    grid[i, j] = row[f"{prefix}mean"]
    finite = grid[np.isfinite(grid)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    masked = np.ma.masked_invalid(grid)
    image = ax.imshow(masked, cmap="viridis", vmin=lo, vmax=hi, aspect="auto")
    ax.set_facecolor("0.85")  # diverged / missing cells
    ax.set_xticks(range(len(targets)), [f"{t}\n{TARGETS[t][0]}" for t in targets], fontsize=8)
    ax.set_yticks(range(len(activations)), activations, fontsize=8)
    for i, act in enumerate(activations):
        for j, t in enumerate(targets):
            if (act, t) not in table.index:
                continue
            text = cell_text(table.loc[(act, t)], seeds, newline="\n")
            value = grid[i, j]
            dark = math.isfinite(value) and (value - lo) / (hi - lo) < 0.6
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=6.5 if seeds > 1 else 7.5,
                color="white" if dark else "black",
            )
    ax.set_title(title, fontsize=10)
    return image


def plot_heatmaps(cells, activations, targets, seeds: int, path: Path) -> Path:
    from actlab.render.figures import pyplot, save

    plt = pyplot()
    width = 1.25 * len(targets) + 2.0
    height = 0.55 * len(activations) + 1.8
    fig, axes = plt.subplots(1, 2, figsize=(2 * width, height), squeeze=False)
    for ax, prefix, title in (
        (axes[0, 0], "test_", "log10 test MSE (interpolation)"),
        (axes[0, 1], "extrap_", "log10 extrapolation MSE"),
    ):
        image = draw_heatmap(ax, cells, activations, targets, prefix, seeds, title)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="log10 MSE")
    note = "geometric mean over seeds [95% interval]" if seeds > 1 else "one seed"
    fig.suptitle(f"Representational capacity: MSE per activation and target ({note})")
    fig.tight_layout()
    return save(fig, path)


def plot_predictions(predictions, activations, targets, cfg: Config, path: Path) -> Path:
    import numpy as np
    import torch

    from actlab.render.figures import activation_colours, pyplot, save

    plt = pyplot()
    cols = min(3, len(targets))
    rows = math.ceil(len(targets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 3.8 * rows), squeeze=False)
    colours = activation_colours(activations)
    x_test = grid_test(cfg, torch.float64).squeeze(1).numpy()
    x_ext = grid_extrap(cfg, torch.float64).squeeze(1).numpy()
    n = cfg.n_extrap
    lo, hi = cfg.x_min - cfg.extrap_margin, cfg.x_max + cfg.extrap_margin
    dense = torch.linspace(lo, hi, 1201, dtype=torch.float64)
    for ax, target in zip(axes.flat, targets, strict=False):
        truth = target_fn(target)(dense).numpy()
        ax.axvspan(cfg.x_min, cfg.x_max, color="0.92", zorder=0, label="training interval")
        ax.plot(dense.numpy(), truth, color="black", lw=2.2, ls="--", label="target", zorder=3)
        for act in activations:
            at = predictions[(predictions["activation"] == act) & (predictions["target"] == target)]
            test = at[at["metric"] == "prediction"].sort_values("step")
            ext = at[at["metric"] == "extrap_prediction"].sort_values("step")
            style = {"color": colours[act], "lw": 1.1, "zorder": 4}
            if len(test) == len(x_test):
                ax.plot(x_test, test["value"].to_numpy(), label=act, **style)
            if len(ext) == len(x_ext):
                values = ext["value"].to_numpy()
                ax.plot(x_ext[:n], values[:n], **style)
                ax.plot(x_ext[n:], values[n:], **style)
        span = float(np.max(truth) - np.min(truth)) or 1.0
        ax.set_ylim(np.min(truth) - 0.3 * span, np.max(truth) + 0.3 * span)
        ax.set_xlim(lo, hi)
        ax.set_title(f"{target}: {TARGETS[target][0]}", fontsize=10)
        ax.set_xlabel("x")
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(targets) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False
    )
    fig.suptitle(
        "Predictions (mean over seeds that did not diverge); shaded: training interval, "
        "outside it: extrapolation"
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save(fig, path)


def plot_curves(curves, cells, activations, targets, path: Path) -> Path | None:
    """Training loss per step, one panel per target: each activation's median over seeds
    as a line, the range over seeds as a shaded band, an x at the last finite loss of a run
    that diverged (render.figures.draw_loss_curves); dashed: the target's variance on the
    test grid (about a constant output's loss). None when no training losses are stored
    (runs made before they were)."""
    from actlab.render.figures import (
        activation_colours,
        draw_loss_curves,
        loss_curves_legend,
        pyplot,
        save,
    )

    if curves.empty:
        return None
    plt = pyplot()
    colours = activation_colours(activations)
    cols = min(3, len(targets))
    rows = math.ceil(len(targets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.3 * rows), squeeze=False)
    for ax, target in zip(axes.flat, targets, strict=False):
        draw_loss_curves(ax, curves[curves["target"] == target], activations, colours)
        variance = cells[cells["target"] == target]["variance"].mean()
        if math.isfinite(variance):
            ax.axhline(variance, color="grey", ls="--", lw=1)
        ax.set_title(f"{target}: {TARGETS[target][0]}", fontsize=10)
        ax.set_ylabel("training MSE (log)")
    for ax in list(axes.flat)[len(targets) :]:
        ax.set_visible(False)
    fig.suptitle("Training loss per step (median and range over seeds)")
    fig.tight_layout()
    loss_curves_legend(fig, activations, colours, 4.6, cols)
    return save(fig, path)
