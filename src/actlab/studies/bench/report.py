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
    from actlab.stats import paired_by_seed, test_text, tests_reach, with_holm

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
        f"{cfg.optimizer} at lr {cfg.lr:g}, {cfg.steps} steps of batch {cfg.batch}. A "
        "network step's time is its batch's training time over its steps and networks "
        "(a stack shares its time among them). " + placement_words(summary["trials"]),
        "",
        f"| activation | {words} [95% CI] | test loss | diverged | time per network step "
        f"(median over batches) | against {best} |",
        "|---|---|---|---|---|---|",
    ]
    against = dict(zip(ranked[1:], tests, strict=True))
    for name in ranked:
        c = cells.loc[name]
        test = against.get(name)
        family = (
            f"the {plural(len(tests), 'comparison')} with {best}"
            if len(tests) > 1
            else f"the one comparison with {best}"
        )
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
    reach = tests_reach(tests, f"the paired tests against {best}")
    lines += [
        "",
        *([reach, ""] if reach else []),
        f"**What the data says.** {best} has the best mean {words}"
        + (
            f"; it is better than {', '.join(separated)} (paired sign-flip test, Holm)."
            if separated
            else f", but no other activation is separated from it by these {rctx.seeds} seeds"
            + (" (they cannot be: see above)." if reach else ".")
        ),
        "",
    ]
    probe = summary["trials"]["probe_samples"].dropna()
    probe_n = int(probe.iloc[0]) if not probe.empty else None
    lines += units_lines(summary.get("units"), summary.get("grads"), names, probe_n)
    figures = []
    curves = summary["curves"]
    if not curves.empty:
        figure = plot_curves(curves, names, metric, figure_dir / "bench_curves.png")
        figures.append(figure)
        lines += [f"![training curves](figures/{figure.name})", ""]
    return "\n".join(lines), figures


def share(x: float) -> str:
    return f"{100 * x:.1f}%" if math.isfinite(x) else "–"


def units_lines(units, grads, names: list[str], probe: int | None = None) -> list[str]:
    """Dead and saturated units at the activation sites, on the initial weights and after
    training, and the gradient norm of the first and last parameterised module at the
    first and last step: medians and means over seeds, no ranking (descriptive)."""
    if units is None or units.dropna(how="all").empty:
        return []
    lines = [
        "**Units and gradients** (descriptive: no test is run on these). At each activation "
        f"actlab placed, on {f'{probe} test samples' if probe else 'the test samples'}: the "
        "share of the model's units (features of a Linear layer, channels of a convolution) "
        "whose slope is exactly 0 on every sample (dead) and whose |slope| is below 1e-3 on "
        "every sample (saturated, dead ones included), on the initial weights and after "
        "training, over all the sites' units, mean over seeds (results.csv has each site); "
        "and the gradient norm of the first and the last "
        "parameterised module (nearest the input, nearest the output) at the first step and "
        "at the last, median over seeds.",
        "",
        "| activation | dead: initial → trained | saturated: initial → trained | "
        "gradient norm, first / last module: step 1 | at the last step |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        if name not in units.index:
            continue
        u = units.loc[name]
        lines.append(
            f"| {name} | {share(u['zero_slope_rate_init'])} → {share(u['zero_slope_rate'])} | "
            f"{share(u['saturated_rate_init'])} → {share(u['saturated_rate'])} | "
            f"{ends(grads, name, 'grad_norm_init')} | {ends(grads, name, 'grad_norm')} |"
        )
    return [*lines, ""]


def ends(grads, name: str, metric: str) -> str:
    """'first / last' of one activation's per-module gradient norms."""
    if grads is None or (name, metric) not in grads.index.droplevel("layer"):
        return "–"
    per_layer = grads.loc[(name, metric)].sort_index()
    return f"{per_layer.iloc[0]:.3g} / {per_layer.iloc[-1]:.3g}"


def placement_words(trials) -> str:
    """How the activations went into the model, from the stored counts."""
    sites = trials["sites"].dropna()
    if sites.empty:
        return ""
    n = int(sites.iloc[0])
    where = f"{n} activation module{'s' if n != 1 else ''}"
    replaced = trials["replaced"].dropna()
    if replaced.empty:
        return f"Each activation was passed to the model as `act_layer`: {where}."
    return f"Each activation replaced the model's own: {where}."
