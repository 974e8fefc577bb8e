"""The bench's part of the report: each activation on the user's model, with intervals,
the paired tests against the best, the training curves and the time per step."""

from __future__ import annotations

import math
from pathlib import Path


def value_text(mean: float, low: float, high: float, share: bool) -> str:
    if not math.isfinite(mean):
        return "–"
    if share:  # a share's interval stays within [0, 1]
        low, high = max(low, 0.0), min(high, 1.0)
        inner = f" [{100 * low:.1f}, {100 * high:.1f}]" if math.isfinite(low) else ""
        return f"{100 * mean:.1f}%{inner}"
    inner = f" [{low:.4g}, {high:.4g}]" if math.isfinite(low) else ""
    return f"{mean:.4g}{inner}"


def plot_curves(curves, activations: list[str], metric: str, path: Path) -> Path:
    from actlab.render.figures import activation_colours, median_band, pyplot, save

    plt = pyplot()
    colours = activation_colours(activations)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, (name, label) in zip(
        axes, ((metric, metric.replace("_", " ")), ("loss", "training loss (batch)")), strict=True
    ):
        for act in activations:
            band = median_band(curves[(curves["activation"] == act) & (curves["metric"] == name)])
            if band.empty:
                continue
            ax.plot(band["step"], band["median"], color=colours[act], lw=1.3, label=act)
            ax.fill_between(band["step"], band["low"], band["high"], color=colours[act], alpha=0.18)
        ax.set_xlabel("step")
        ax.set_title(f"{label}: median and range over seeds", fontsize=9)
        if name == "loss":
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    return save(fig, path)


def report_markdown(summary, rctx, figure_dir: Path) -> tuple[str, list[Path]]:
    from actlab.render.text import plural
    from actlab.stats import paired_by_seed, test_text, with_holm

    cfg = rctx.config
    cells = summary["cells"].set_index("activation")
    names = [a for a in rctx.activations if a in cells.index]
    metric = summary["metric"]
    share = metric == "test_accuracy"
    better = 1 if share else -1
    ranked = sorted(names, key=lambda a: -better * cells.loc[a, "mean"])
    best = ranked[0]
    trials = summary["trials"].assign(score=lambda t: better * t[metric])
    tests = with_holm([paired_by_seed(trials, "score", best, other) for other in ranked[1:]])
    words = "test accuracy" if share else "test loss"
    lines = [
        f"**Question.** Which activation for `{cfg.model}` on `{cfg.data}`? Each activation "
        f"trained on the same {rctx.seeds} seeds: within a seed every member starts from the "
        "same initial weights and sees the same batches, so the comparisons are paired. "
        f"{cfg.optimizer} at lr {cfg.lr:g}, {cfg.steps} steps of batch {cfg.batch}.",
        "",
        f"| activation | {words} [95% CI] | test loss | diverged | time per step | against {best} |",
        "|---|---|---|---|---|---|",
    ]
    against = dict(zip(ranked[1:], tests, strict=True))
    for name in ranked:
        c = cells.loc[name]
        test = against.get(name)
        family = f"the {plural(len(tests), 'comparison')} with {best}"
        vs = "–" if test is None else test_text(test, family=family)
        how = "stacked" if c["stacked"] == 1 else "one at a time"
        seconds = c["step_seconds"]
        ms = f"{1000 * seconds:.2f} ms ({how})" if seconds > 0 else "–"
        lines.append(
            f"| {name} | {value_text(c['mean'], c['ci_low'], c['ci_high'], share)} | "
            f"{c['test_loss']:.4g} | {int(c['diverged'])} of {int(c['n_seeds'])} | "
            f"{ms} | {vs} |"
        )
    separated = [n for n, t in against.items() if t.significant]
    lines += [
        "",
        f"**What the data says.** {best} has the best mean {words}"
        + (
            f"; it is better than {', '.join(separated)} (paired sign-flip test, Holm)."
            if separated
            else f", but no other activation is separated from it by these {rctx.seeds} seeds."
        ),
        "",
    ]
    figures = []
    curves = summary["curves"]
    if not curves.empty:
        figure = plot_curves(curves, names, metric, figure_dir / "bench_curves.png")
        figures.append(figure)
        lines += [f"![training curves](figures/{figure.name})", ""]
    return "\n".join(lines), figures
