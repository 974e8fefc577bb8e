"""The mnist1d study's figures."""

from __future__ import annotations

from pathlib import Path


def plot_accuracy(cells, activations, architectures, seeds: int, paper: dict, path: Path) -> Path:
    """Final test accuracy per activation, one panel per architecture: the mean over seeds
    with its 95% interval; the paper's number for the architecture as a dashed line and
    the authors' notebook's as a dotted one (each a single run)."""
    from actlab.render.figures import activation_colours, pyplot, save
    from actlab.studies.mnist1d.config import NOTEBOOK

    plt = pyplot()
    colours = activation_colours(activations)
    fig, axes = plt.subplots(
        1, len(architectures), figsize=(4.2 * len(architectures), 4.0), squeeze=False
    )
    for ax, arch in zip(axes.flat, architectures, strict=True):
        at = cells[cells["architecture"] == arch].set_index("activation")
        for i, act in enumerate(activations):
            if act not in at.index or not at.loc[act, "acc_mean"] == at.loc[act, "acc_mean"]:
                continue
            row = at.loc[act]
            mean = 100 * row["acc_mean"]
            low, high = 100 * row["acc_ci_low"], 100 * row["acc_ci_high"]
            err = None
            if seeds > 1 and low == low:
                err = [[mean - low], [high - mean]]
            ax.errorbar(i, mean, yerr=err, fmt="o", color=colours[act], capsize=3)
        if arch in paper:
            ax.axhline(
                100 * paper[arch], color="grey", ls="--", lw=1, label="paper (ReLU, one run)"
            )
            if arch in NOTEBOOK:
                ax.axhline(
                    100 * NOTEBOOK[arch],
                    color="grey",
                    ls=":",
                    lw=1,
                    label="authors' notebook (ReLU, one run)",
                )
            ax.legend(fontsize=8, loc="best")
        ax.set_xticks(range(len(activations)), activations, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(arch, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    note = "mean over seeds, 95% interval" if seeds > 1 else "one seed, no error bars"
    fig.suptitle(f"MNIST-1D test accuracy after training ({note})")
    fig.tight_layout()
    return save(fig, path)


def plot_curves(curves, activations, architectures, path: Path) -> Path:
    """Test accuracy during training, one panel per architecture."""
    from actlab.render.figures import activation_colours, pyplot, save

    plt = pyplot()
    colours = activation_colours(activations)
    fig, axes = plt.subplots(
        1, len(architectures), figsize=(4.2 * len(architectures), 3.8), squeeze=False
    )
    for ax, arch in zip(axes.flat, architectures, strict=True):
        at = curves[curves["architecture"] == arch]
        for act in activations:
            rows = at[at["activation"] == act].sort_values("step")
            if not rows.empty:
                ax.plot(
                    rows["step"], 100 * rows["test_accuracy"], lw=1.2, color=colours[act], label=act
                )
        ax.set_xlabel("training step")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(arch, fontsize=10)
        ax.grid(True, alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 9), fontsize=8, frameon=False
    )
    fig.suptitle("Test accuracy during training (mean over the seeds that did not diverge)")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return save(fig, path)
