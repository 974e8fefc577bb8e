"""The search's figures: survival rung by rung, and the finalists' shapes."""

from __future__ import annotations

from pathlib import Path


def plot_survival(rungs, controls: list[str], path: Path) -> Path:
    """Left: candidates alive entering each rung (log scale). Right: every candidate's rung
    score (holdout accuracy), those that went on in colour, the rest grey; the controls'
    scores as marked points beside each rung."""
    import numpy as np

    from actlab.render.figures import activation_colours, pyplot, save

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.0), width_ratios=[1, 2])
    indices = sorted(rungs["rung"].unique())
    entering = [int(((rungs["rung"] == i) & (rungs["kind"] == "candidate")).sum()) for i in indices]
    finalists = int((rungs[rungs["rung"] == indices[-1]]["went_on"] == 1).sum())
    counts = entering + [finalists]
    steps = list(range(1, len(counts) + 1))
    left.plot(steps, counts, "o-", color="tab:blue")
    for x, n in zip(steps, counts, strict=True):
        left.annotate(str(n), (x, n), textcoords="offset points", xytext=(4, 4), fontsize=8)
    left.set_yscale("log")
    left.set_xlabel("rung")
    left.set_ylabel("candidates")
    left.set_xticks(steps, [str(i + 1) for i in indices] + ["finalists"])
    left.grid(True, alpha=0.3)
    left.set_title("survival", fontsize=10)

    colours = activation_colours(controls)
    rng = np.random.default_rng(0)  # jitter only: fixed so a rebuild draws the same figure
    for i in indices:
        at = rungs[(rungs["rung"] == i) & (rungs["kind"] == "candidate")]
        on = at["went_on"] == 1
        jitter = rng.uniform(-0.25, 0.25, len(at))
        x = np.full(len(at), i + 1.0) + jitter
        right.scatter(x[~on.values], 100 * at["score"][~on], s=6, color="0.7", lw=0)
        right.scatter(x[on.values], 100 * at["score"][on], s=10, color="tab:blue", lw=0)
        for k, name in enumerate(controls):
            row = rungs[(rungs["rung"] == i) & (rungs["name"] == name)]
            if not row.empty:
                right.scatter(
                    i + 1.35 + 0.08 * k,
                    100 * row["score"].iloc[0],
                    marker="D",
                    s=22,
                    color=colours[name],
                    label=name if i == indices[0] else None,
                )
    right.set_xticks([i + 1 for i in indices])
    right.set_xlabel("rung")
    right.set_ylabel("holdout accuracy (%)")
    right.grid(True, axis="y", alpha=0.3)
    right.legend(fontsize=8, loc="lower right")
    right.set_title("rung scores: went on (blue), left (grey), controls (diamonds)", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def plot_shapes(activations: dict, path: Path) -> Path:
    """f and f' of the finalists and controls on [-4, 4]."""
    import torch

    from actlab.render.figures import activation_colours, pyplot, save

    plt = pyplot()
    colours = activation_colours(list(activations))
    x = torch.linspace(-4, 4, 401, dtype=torch.float64)
    fig, (f_ax, d_ax) = plt.subplots(1, 2, figsize=(10, 4.0))
    for name, act in activations.items():
        with torch.no_grad():
            f = act.fn(x.clone())
        d = act.derivative(x.clone())
        style = "--" if act.builtin else "-"
        f_ax.plot(x, f, style, color=colours[name], label=name, lw=1.5)
        d_ax.plot(x, d, style, color=colours[name], lw=1.5)
    for ax, title in ((f_ax, "f(x)"), (d_ax, "f'(x)")):
        ax.axhline(0, color="0.6", lw=0.8)
        ax.axvline(0, color="0.6", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(-4, 4)
        ax.grid(True, alpha=0.3)
    f_ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("finalists (solid) and controls (dashed)")
    fig.tight_layout()
    return save(fig, path)
