"""The cross-study part of the report, computed from the stored results only:

- rankings: every study's per-seed property scores ranked with paired comparisons,
  giving the best-and-worst table (a difference the seeds cannot resolve is a tie);
- recommendations and a decision guide built from those rankings;
- the folklore checks: common claims tested against this run's numbers, reported only
  where the data contradicts them;
- the summary sheet: the protocol's 3 x 3 figure with computed findings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from actlab.stats import Ranking, rank

# What each property measures, shown in the best-and-worst table.
DESCRIPTIONS = {
    "gradient flow": "log10 of the weakest layer's mean weight gradient at initialisation",
    "dead units": "fraction of units inactive on every input after high-lr SGD",
    "saturated units": "fraction of units with slope ~0 on every input after high-lr SGD",
    "learning-rate robustness": "learning rates (of the sweep) at which the network learned",
    "depth robustness": "depths (of the sweep) at which the network learned",
    "fit (interpolation)": "mean over targets of log10 test MSE inside the training interval",
    "extrapolation": "mean over targets of log10 MSE outside the training interval",
    "real-data accuracy": "mean over data sets and depths of held-out test accuracy",
    "speed": "forward + backward time relative to ReLU on the largest tensor",
}

# Situations of the decision guide and the property that answers each.
GUIDE = (
    ("a deep network (many layers)", "depth robustness"),
    ("a high or untuned learning rate", "learning-rate robustness"),
    ("gradients that must reach the first layers", "gradient flow"),
    ("no dead units", "dead units"),
    ("no saturated units", "saturated units"),
    ("the most accurate fit inside the data range", "fit (interpolation)"),
    ("predictions outside the data range", "extrapolation"),
    ("accuracy on real data", "real-data accuracy"),
    ("the cheapest computation", "speed"),
)


@dataclass
class PropertyRanking:
    property: str
    better: str
    ranking: Ranking


def collect_properties(results: pd.DataFrame, contexts: dict[str, Any]) -> pd.DataFrame:
    from actlab.studies import get_study

    frames = [get_study(name).properties(results, rctx) for name, rctx in contexts.items()]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=["property", "activation", "seed", "score", "better"])
    return pd.concat(frames, ignore_index=True)


def rank_properties(scores: pd.DataFrame) -> list[PropertyRanking]:
    out = []
    for prop, g in scores.groupby("property", sort=False):
        better = g["better"].iloc[0]
        out.append(PropertyRanking(prop, better, rank(g, better)))
    return out


def names(items: list[str]) -> str:
    return ", ".join(items)


def ranking_sentence(pr: PropertyRanking) -> str:
    """One line for the summary sheet."""
    r = pr.ranking
    if len(r.order) > 1 and set(r.best) == set(r.order):
        return f"{pr.property}: all tied ({names(r.order)})"
    return f"{pr.property}: best {names(r.best)}; worst {names(r.worst)}"


def best_worst_table(rankings: list[PropertyRanking], seeds: int) -> str:
    lines = ["| property | how it is measured | best | worst |", "|---|---|---|---|"]
    for pr in rankings:
        r = pr.ranking
        if not r.order:
            continue

        def show(group: list[str], r: Ranking = r) -> str:
            return names([f"{a} ({r.means[a]:.3g})" for a in group])

        how = f"{DESCRIPTIONS.get(pr.property, '')}, {pr.better} is better"
        if len(r.order) > 1 and set(r.best) == set(r.order):
            lines.append(
                f"| {pr.property} | {how} | all tied: the seeds do not separate "
                f"{show(r.order)} | – |"
            )
        else:
            lines.append(f"| {pr.property} | {how} | {show(r.best)} | {show(r.worst)} |")
    note = (
        "Each cell lists the activation with the best (worst) mean and every activation "
        "whose paired difference from it over the seeds is not significant (t-test, "
        "p >= 0.05): those are ties. An activation listed in both columns cannot be told "
        "apart from either end with this many seeds."
        if seeds > 1
        else "One seed: the best and worst are by value only; no difference is tested, so none "
        "of these orderings is established."
    )
    return "\n".join(lines) + "\n\n" + note


def average_ranks(rankings: list[PropertyRanking]) -> list[tuple[str, float, int]]:
    """(activation, mean position over properties (1 = best), properties counted)."""
    positions: dict[str, list[int]] = {}
    for pr in rankings:
        for i, act in enumerate(pr.ranking.order):
            positions.setdefault(act, []).append(i + 1)
    rows = [(a, sum(p) / len(p), len(p)) for a, p in positions.items()]
    return sorted(rows, key=lambda r: r[1])


def recommendations(rankings: list[PropertyRanking], seeds: int) -> list[str]:
    by_name = {pr.property: pr for pr in rankings}
    out = []
    for situation, prop in GUIDE:
        pr = by_name.get(prop)
        if pr is None or not pr.ranking.order:
            continue
        r = pr.ranking
        if r.best == r.order:  # everything tied: the data does not separate them
            out.append(f"For {situation}: no activation separated from the others ({prop}).")
            continue
        avoid = [a for a in r.worst if a not in r.best]
        text = f"For {situation}: {names(r.best)}"
        text += " (tied)" if len(r.best) > 1 else ""
        if avoid:
            text += f"; avoid {names(avoid)}"
        out.append(text + f" (by {prop}).")
    ranks = average_ranks(rankings)
    if ranks:
        top = ", ".join(f"{a} ({mean:.1f})" for a, mean, _ in ranks[:3])
        out.append(
            f"Across all {len(rankings)} properties, the best average positions "
            f"(1 = best) were: {top}. An average hides trade-offs: read the table."
        )
    if seeds == 1:
        out.append(
            "These recommendations rest on a single seed each and are untested; "
            "run with --seeds 3 or more before relying on them."
        )
    return out


def decision_guide(rankings: list[PropertyRanking]) -> str:
    by_name = {pr.property: pr for pr in rankings}
    lines = ["| if you need | consider | measured by |", "|---|---|---|"]
    for situation, prop in GUIDE:
        pr = by_name.get(prop)
        if pr is not None and pr.ranking.order:
            lines.append(f"| {situation} | {names(pr.ranking.best)} | {prop} |")
    return "\n".join(lines)


# -- folklore ------------------------------------------------------------------------------------
def folklore(summaries: dict[str, Any], activations: list[str]) -> list[str]:
    """Common claims tested against this run; one sentence per contradicted claim."""
    checks = (
        bounded_is_stable,
        smooth_fits_smooth,
        relu_dies_most,
        smooth_relus_keep_gradient,
        finite_means_learned,
    )
    out = []
    for check in checks:
        try:
            sentence = check(summaries, activations)
        except (KeyError, IndexError, ValueError):
            sentence = None  # the run lacks what this claim needs
        if sentence:
            out.append(sentence)
    return out


def bounded_is_stable(s, acts):
    lr = s["stability"]["lr"]
    for bounded in ("Tanh", "Sigmoid"):
        if bounded not in acts or "ReLU" not in acts:
            continue
        for rate in sorted(lr["lr"].unique()):
            at = lr[lr["lr"] == rate].set_index("activation")
            if at.loc[bounded, "diverged"] > 0 and at.loc["ReLU", "diverged"] == 0:
                return (
                    f'*"Bounded activations are the stable choice at high learning '
                    f'rates."* Here {bounded} diverged in {at.loc[bounded, "diverged"]} of '
                    f"{at.loc[bounded, 'seeds']} seeds at learning rate {rate:g}, where ReLU "
                    "never diverged."
                )
    return None


def smooth_fits_smooth(s, acts):
    from actlab.stats import paired_comparison

    if not {"Tanh", "ReLU"} <= set(acts):
        return None
    trials = s["capacity"]["trials"]
    sin = trials[trials["target"] == "sin"]
    wide = sin.pivot_table(index="seed", columns="activation", values="log10_test_mse")
    diff = paired_comparison(wide["ReLU"], wide["Tanh"])
    if not diff.mean_diff < 0:
        return None
    if diff.tested and not diff.significant:
        return None
    evidence = (
        f"(paired over {diff.n} seeds, p = {diff.p_value:.2g})"
        if diff.tested
        else "(one seed, untested)"
    )
    return (
        '*"Smooth activations fit smooth functions better than ReLU."* On sin(x), ReLU\'s '
        f"test MSE was {10**-diff.mean_diff:.3g}x lower than Tanh's {evidence}."
    )


def relu_dies_most(s, acts):
    table = s["sparsity"]["table"].set_index("activation")
    if "ReLU" not in table.index:
        return None
    relu = table.loc["ReLU", "dead_rate_mean"]
    worse = [a for a in table.index if a != "ReLU" and table.loc[a, "dead_rate_mean"] > relu]
    if not worse:
        return None
    return (
        '*"Dead units are a ReLU problem."* Here '
        + names([f"{a} ({100 * table.loc[a, 'dead_rate_mean']:.3g}%)" for a in worse])
        + f" had more dead units than ReLU ({100 * relu:.3g}%)."
    )


def smooth_relus_keep_gradient(s, acts):
    ratio = s["gradient_flow"]["ratio"]
    for depth in sorted(ratio["depth"].unique()):
        at = ratio[ratio["depth"] == depth].set_index("activation")
        if "ReLU" not in at.index or at.loc["ReLU", "vanished"] == at.loc["ReLU", "n_seeds"]:
            continue
        lost = [
            a
            for a in ("GELU", "Swish", "Mish")
            if a in at.index and at.loc[a, "vanished"] == at.loc[a, "n_seeds"]
        ]
        if lost:
            return (
                f'*"Smooth ReLU variants keep gradients alive at least as well as ReLU."* '
                f"At depth {depth} the gradients of {names(lost)} vanished in every seed "
                "(every layer below the threshold) while ReLU's did not."
            )
    return None


def finite_means_learned(s, acts):
    depth = s["stability"]["depth"]
    stuck, total = int(depth["stuck"].sum()), int(depth["seeds"].sum())
    if stuck == 0:
        return None
    return (
        f'*"A run that did not diverge is stable."* {stuck} of {total} depth-stress runs '
        "stayed finite yet ended stuck at about the target's variance: they learned nothing."
    )


# -- the summary sheet ---------------------------------------------------------------------------
def summary_sheet(
    summaries: dict[str, Any],
    contexts: dict[str, Any],
    activations: list[str],
    findings: list[str],
    path: Path,
) -> Path:
    from actlab.report.figures import activation_colours, pyplot, save

    plt = pyplot()
    colours = activation_colours(activations)
    fig = plt.figure(figsize=(18, 15))
    grid = fig.add_gridspec(3, 3, height_ratios=[1, 1, 0.75])
    panels = [fig.add_subplot(grid[r, c]) for r in range(2) for c in range(3)]
    drawers = (panel_gradient, panel_sparsity, panel_dead, panel_lr, panel_depth, panel_capacity)
    for ax, draw in zip(panels, drawers, strict=True):
        try:
            draw(ax, summaries, contexts, activations, colours)
        except KeyError:  # the study did not run
            ax.axis("off")
            ax.text(0.5, 0.5, "not run", ha="center", va="center", color="grey")
    text_ax = fig.add_subplot(grid[2, :])
    text_ax.axis("off")
    wrapped = "\n".join(f"• {f}" for f in findings[:12])
    text_ax.text(
        0.0,
        1.0,
        "Key findings (computed from this run)\n\n" + wrapped,
        va="top",
        ha="left",
        fontsize=10,
        wrap=True,
    )
    handles = [plt.Line2D([], [], color=colours[a], lw=3, label=a) for a in activations]
    fig.subplots_adjust(top=0.92, hspace=0.35)
    fig.legend(
        handles=handles,
        loc="upper center",
        ncol=min(len(activations), 10),
        fontsize=9,
        bbox_to_anchor=(0.5, 0.965),
    )
    fig.suptitle("actlab summary sheet", y=0.99, fontsize=14)
    return save(fig, path)


def panel_gradient(ax, s, ctx, acts, colours):
    layers = s["gradient_flow"]["layers"]
    depth = ctx["gradient_flow"].config.report_depth
    if depth not in set(layers["depth"]):
        depth = int(layers["depth"].max())
    at = layers[layers["depth"] == depth]
    for act in acts:
        rows = at[at["activation"] == act].sort_values("layer")
        if not rows.empty:
            ax.plot(rows["layer"], 10 ** rows["mean"], color=colours[act], marker="o", ms=2)
    ax.set_yscale("log")
    ax.set_title(f"Gradient flow at depth {depth}")
    ax.set_xlabel("layer")
    ax.set_ylabel("mean |dW|")


def _bars(ax, table, column, acts, colours, title):
    import numpy as np

    table = table.set_index("activation")
    values = [100 * table.loc[a, column] if a in table.index else np.nan for a in acts]
    ax.bar(range(len(acts)), np.nan_to_num(values), color=[colours[a] for a in acts])
    for i, v in enumerate(values):
        if not math.isfinite(v):
            ax.text(
                i, 0, "diverged", rotation=90, ha="center", va="bottom", fontsize=8, color="red"
            )
    ax.set_xticks(range(len(acts)), acts, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("%")
    ax.set_title(title)


def panel_sparsity(ax, s, ctx, acts, colours):
    _bars(ax, s["sparsity"]["table"], "sparsity_mean", acts, colours, "Sparsity (|a| < 1e-6)")


def panel_dead(ax, s, ctx, acts, colours):
    _bars(ax, s["sparsity"]["table"], "dead_rate_mean", acts, colours, "Dead units")


def _loss_lines(ax, table, key, acts, colours):
    for act in acts:
        rows = table[table["activation"] == act].sort_values(key)
        if rows.empty:
            continue
        ax.plot(rows[key], rows["loss"], color=colours[act], lw=1)
        for _, r in rows.iterrows():
            if r["diverged"] == r["seeds"]:
                ax.plot(r[key], r["variance"] * 30, marker="x", color="red")
            else:
                learned = r["learned"] * 2 > r["seeds"]
                ax.plot(
                    r[key],
                    r["loss"],
                    marker="o",
                    ms=5,
                    color=colours[act],
                    markerfacecolor=colours[act] if learned else "white",
                )
    from matplotlib.ticker import NullFormatter

    ax.axhline(float(table["variance"].mean()), color="grey", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    settings = sorted(table[key].unique())
    ax.set_xticks(settings, [f"{v:g}" for v in settings])
    ax.set_ylabel("loss after training")


def panel_lr(ax, s, ctx, acts, colours):
    _loss_lines(ax, s["stability"]["lr"], "lr", acts, colours)
    ax.set_xlabel("learning rate")
    ax.set_title("Loss vs learning rate (x: diverged, o: stuck)")


def panel_depth(ax, s, ctx, acts, colours):
    _loss_lines(ax, s["stability"]["depth"], "depth", acts, colours)
    ax.set_xlabel("depth")
    ax.set_title("Loss vs depth (x: diverged, o: stuck)")


def panel_capacity(ax, s, ctx, acts, colours):
    from actlab.studies.capacity import draw_heatmap

    cfg = ctx["capacity"].config
    draw_heatmap(
        ax,
        s["capacity"]["cells"],
        acts,
        list(cfg.targets),
        "test_",
        ctx["capacity"].seeds,
        "Capacity: test MSE",
    )
