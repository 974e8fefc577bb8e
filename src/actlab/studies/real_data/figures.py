"""The real_data study's figures."""

from __future__ import annotations

from pathlib import Path

from actlab.studies.real_data.config import DATASETS, Config


def plot_accuracy(cells, activations, datasets, seeds: int, path: Path) -> Path:
    """Test accuracy against depth, one line per activation with its 95% band, one panel
    per data set; the dashed line is the share of the largest class."""
    from actlab.render.figures import activation_colours, pyplot, save

    plt = pyplot()
    colours = activation_colours(activations)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=True):
        at = cells[cells["dataset"] == dataset]
        info = DATASETS[dataset]
        for act in activations:
            rows = at[at["activation"] == act].sort_values("depth")
            rows = rows[rows["acc_mean"].notna()]
            if rows.empty:
                continue
            ax.plot(
                rows["depth"],
                100 * rows["acc_mean"],
                marker="o",
                ms=4,
                lw=1.3,
                color=colours[act],
                label=act,
            )
            if seeds > 1 and rows["acc_ci_low"].notna().any():
                ax.fill_between(
                    rows["depth"],
                    100 * rows["acc_ci_low"],
                    100 * rows["acc_ci_high"],
                    color=colours[act],
                    alpha=0.15,
                    lw=0,
                )
        ax.axhline(100 * info.majority, color="grey", ls="--", lw=1, label="largest class")
        depths = sorted(int(d) for d in at["depth"].unique())
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.set_xlabel("depth (hidden layers)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(top=101)
        ax.set_title(f"{dataset} ({info.classes} classes)", fontsize=10)
        ax.grid(True, alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 9), fontsize=8, frameon=False
    )
    note = "mean over seeds, 95% band" if seeds > 1 else "one seed, no error bars"
    fig.suptitle(f"Test accuracy on held-out data ({note})")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return save(fig, path)


def plot_curves(curves, activations, datasets, cfg: Config, path: Path) -> Path:
    """Mean validation accuracy against epoch at the deepest depth, one panel per data set."""
    from matplotlib.ticker import MaxNLocator

    from actlab.render.figures import activation_colours, pyplot, save

    plt = pyplot()
    colours = activation_colours(activations)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=True):
        at = curves[curves["dataset"] == dataset]
        if at.empty:
            ax.set_title(f"{dataset}: every run diverged", fontsize=10)
            continue
        depth = int(at["depth"].max())
        at = at[at["depth"] == depth]
        for act in activations:
            rows = at[at["activation"] == act].sort_values("epoch")
            if rows.empty:
                continue
            ax.plot(
                rows["epoch"], 100 * rows["val_accuracy"], lw=1.2, color=colours[act], label=act
            )
        ax.axhline(100 * cfg.target_accuracy, color="grey", ls="--", lw=1, label="target accuracy")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch (one full-batch step each)")
        ax.set_ylabel("validation accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{dataset}, depth {depth}", fontsize=10)
        ax.grid(True, alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 9), fontsize=8, frameon=False
    )
    fig.suptitle(
        "Validation accuracy during training at the deepest depth\n(mean over the seeds "
        "that did not diverge; a run stopped early keeps its last value)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return save(fig, path)
