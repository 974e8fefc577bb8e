"""The stability study's report section: the state tables, the steps-to-learn tables and
the findings, every sentence computed from the summary."""

from __future__ import annotations

import math
from typing import Any

from actlab.render.text import curves_divergence, interval, sci
from actlab.studies.base import OPTIMIZER_NAMES, ReportContext, init_words
from actlab.studies.capacity.config import PATIENCE
from actlab.studies.stability.config import (
    FINITE_STATES,
    STATES,
    Config,
    improving_words,
    judged,
    words,
)


def cell(r) -> str:
    """One table cell: each state's count ("still improving" for a stuck run still
    improving when its budget ran out), and for each finite state the geometric mean of its
    runs' loss after training (95% interval with two or more runs), every loss and bound
    in one notation (`sci`: losses span decades, 1e-12 to 3e4)."""
    parts = []
    for state in STATES:
        n = int(r.get(state, 0))
        if not n:
            continue
        text = f"{n} {words(state)}"
        if state in FINITE_STATES and math.isfinite(r[f"loss_{state}"]):
            text += f" {sci(r[f'loss_{state}'])}"
            text += interval(r[f"loss_{state}_low"], r[f"loss_{state}_high"], form=sci)
        parts.append(text)
    if r.get("zeros", 0):
        parts.append(f"{int(r['zeros'])} exact zero(s) floored at 1e-45")
    return "; ".join(parts)


def report_markdown(
    summary: dict[str, Any],
    rctx: ReportContext,
    figure_name: str,
    curves_name: str | None = None,
) -> str:
    """The section's text; `curves_name`, the training-curve figure, with its caption
    (curves_caption) when one was drawn."""
    cfg: Config = rctx.config
    lines = [
        "**Question.** Does training stay stable when the learning rate is too high, or the "
        "network too deep, and does a run that stays finite actually learn?",
        "",
        f"**Method.** Target y = sin(pi x) on {cfg.n_points} evenly spaced points of [-2, 2]; "
        f"width {cfg.width}, {init_words(cfg.init, cfg.sigma_b)}. 3a: depth {cfg.lr_depth}, "
        f"{OPTIMIZER_NAMES[cfg.lr_optimizer]} for up to {cfg.lr_steps} steps at learning "
        f"rates {', '.join(f'{lr:g}' for lr in cfg.lrs)}; a run diverges when its loss is "
        f"NaN, infinite or above {cfg.loss_limit:g}, or a gradient entry exceeds "
        f"{cfg.grad_limit:g}. 3b: depths {', '.join(map(str, cfg.depths))}, "
        f"{OPTIMIZER_NAMES[cfg.depth_optimizer]} at learning rate {cfg.depth_lr:g} for up to "
        f"{cfg.depth_steps} steps, loss rule only. A run that does not diverge has *learned* "
        f"when its loss after the last update is below {cfg.learned_below:g} x the target's "
        f"variance, has *failed* when that loss is above {cfg.failed_above:g} x the variance "
        "(finite, yet far worse than a constant output, which scores exactly the variance), "
        "and is *stuck* in between. A stuck run is *still improving* at the end of the budget "
        f"when {improving_words()} (the capacity study's plateau rule): it was slow, not "
        "stuck, and a longer budget may make it learn." + unjudged_words(cfg),
        "",
    ]
    if cfg.until == "learned":
        lines += [
            "Each run stops at the first step whose loss is below the *learned* threshold, "
            "before that step's update: a learned run's loss after training is that loss, "
            "just under the threshold, so it says only that the run learned; how fast it "
            "did is in the steps-to-learn tables.",
            "",
        ]
    lines += [f"![Stability under stress](figures/{figure_name})", ""]
    if curves_name:
        lines += [
            f"![Training loss per step](figures/{curves_name})",
            "",
            curves_caption(summary, cfg, rctx.seeds),
            "",
        ]
    if rctx.seeds == 1:
        lines += ["*One seed: these numbers are single samples and carry no error bar.*", ""]
    for part, label, key in (("lr", "learning rate", "lr"), ("depth", "depth", "depth")):
        table = summary[part]
        if table.empty:
            continue
        settings = sorted(table[key].unique())
        title = "3a, learning-rate stress" if part == "lr" else "3b, depth stress"
        lines += [
            f"**{title}**: runs in each state (of {rctx.seeds} seed(s)), each finite state "
            "with the geometric mean of its own runs' loss after training"
            + ("" if rctx.seeds == 1 else " [95% interval, from two or more runs]")
            + (
                "; *still improving*: still improving at the end of the budget"
                if table.get("improving", 0).sum()
                else ""
            )
            + ":",
            "",
            *grid(table, key, label, settings, rctx.activations, cell),
            "",
        ]
        if "steps_median" in table and table["steps_median"].notna().any():
            budget = int(table["budget"].max())
            lines += [
                f"**{title[:2]}, steps to learn**: the median over {rctx.seeds} seed(s) of "
                f"the updates a run took until its loss was below {cfg.learned_below:g} x "
                f"the target's variance, a seed that did not end learned counting as beyond "
                f'the budget of {budget} steps ("> {budget}": half the seeds or more did '
                "not learn), and how many seeds ended learned:",
                "",
                *grid(table, key, label, settings, rctx.activations, steps_cell),
                "",
            ]
    lines += ["**What the data says.**", ""]
    lines += [f"- {f}" for f in findings(summary, rctx.activations)]
    return "\n".join(lines)


def curves_caption(summary: dict[str, Any], cfg: Config, seeds: int) -> str:
    """What the training-curve figure draws: the median and range over how many seeds, the
    log scale, each row's conditions, and how many runs diverged (their curves end)."""
    per = "a single run" if seeds == 1 else f"the median over {seeds} seeds"
    band = "" if seeds == 1 else " and the range over seeds (lowest to highest) as a shaded band"
    rows = []
    if "lr" in cfg.parts:
        rows.append(
            f"3a, {OPTIMIZER_NAMES[cfg.lr_optimizer]} at each learning rate of the sweep, "
            f"depth {cfg.lr_depth}, up to {cfg.lr_steps} steps"
        )
    if "depth" in cfg.parts:
        rows.append(
            f"3b, {OPTIMIZER_NAMES[cfg.depth_optimizer]} at learning rate {cfg.depth_lr:g} at "
            f"each depth, up to {cfg.depth_steps} steps"
        )
    text = (
        f"*Training curves: the training loss (MSE on the {cfg.n_points} points, recorded "
        "before each update) against step, log scale; for each activation "
        f"{per} as a line{band}. "
        + ("Top row " + rows[0] + "; bottom row " + rows[1] if len(rows) == 2 else rows[0])
        + f"; width {cfg.width}. Dashed: the target's variance (a constant output's loss)."
    )
    parts = [summary[p] for p in ("lr", "depth") if not summary[p].empty]
    diverged = sum(int(t["diverged"].sum()) for t in parts)
    total = sum(int(t["seeds"].sum()) for t in parts)
    text += curves_divergence(diverged, total)
    if cfg.until == "learned":
        text += (
            " A run stops once it has learned, so later steps show only the seeds still training."
        )
    return text + "*"


def unjudged_words(cfg: Config) -> str:
    """ " 3a's runs of 100 steps are too short for the rule (...)" for the parts whose step
    budget the plateau rule cannot judge (config.judged); "" when it judges every part."""
    short = [
        (title, steps)
        for part, title, steps in (("lr", "3a", cfg.lr_steps), ("depth", "3b", cfg.depth_steps))
        if part in cfg.parts and not judged(steps)
    ]
    if not short:
        return ""
    runs = " and ".join(f"{title}'s runs of {steps} steps" for title, steps in short)
    return (
        f" {runs} are too short for the rule, which needs more than {PATIENCE} updates: "
        "there a run that did not learn is called *stuck* though it may be slow."
    )


def grid(table, key: str, label: str, settings, activations: list[str], text) -> list[str]:
    """A markdown table: one row per activation, one column per setting, `text(row)` in
    each cell ("–" where the activation has no runs at the setting)."""
    lines = [
        "| activation | " + " | ".join(f"{label} {s:g}" for s in settings) + " |",
        "|---|" + "---|" * len(settings),
    ]
    for act in activations:
        rows = table[table["activation"] == act].set_index(key)
        if rows.empty:
            continue
        lines.append(
            f"| {act} | "
            + " | ".join(text(rows.loc[s]) if s in rows.index else "–" for s in settings)
            + " |"
        )
    return lines


def steps_cell(r) -> str:
    """'120 (6/6 learned)', '> 1000 (2/6 learned; 1 diverged)', or '–' without the data."""
    median = r["steps_median"]
    if math.isnan(median):
        return "–"
    text = f"{median:g}" if math.isfinite(median) else f"> {int(r['budget'])}"
    text += f" ({int(r['learned'])}/{int(r['seeds'])} learned"
    if r["diverged"]:
        text += f"; {int(r['diverged'])} diverged"
    return text + ")"


def findings(summary: dict[str, Any], activations: list[str]) -> list[str]:
    """Sentences computed from the state counts; nothing written in advance. Every count
    is over all seeds: a diverged run is counted as diverged, never left out."""
    out = []
    lr = summary["lr"]
    if not lr.empty:
        for rate in sorted(lr["lr"].unique()):
            at = lr[lr["lr"] == rate]
            for state in ("diverged", "failed"):
                hit = at[at[state] > 0]
                if hit.empty:
                    continue
                listed = ", ".join(
                    f"{r.activation} ({r[state]}/{r.seeds})" for _, r in hit.iterrows()
                )
                out.append(
                    f"At learning rate {rate:g} these {state} in some or all seeds: {listed}."
                )
            # Slow, not unstable: most seeds did not learn here and none blew up, yet most
            # learned at a higher rate of the sweep.
            higher = lr[(lr["lr"] > rate) & (2 * lr["learned"] > lr["seeds"])]["activation"]
            slow = at[
                (2 * at["learned"] <= at["seeds"])
                & (at["diverged"] + at["failed"] == 0)
                & at["activation"].isin(set(higher) & set(activations))
            ]
            if not slow.empty:
                listed = ", ".join(
                    f"{r.activation} ({r.learned}/{r.seeds})" for _, r in slow.iterrows()
                )
                out.append(
                    f"At learning rate {rate:g} these learned in at most half of the seeds "
                    f"within {int(slow['budget'].max())} steps, none diverged or failed, and "
                    f"they learned at a higher rate: {listed}; too slow for the budget at this "
                    "rate, not unstable."
                )
        majority = lr[2 * lr["learned"] > lr["seeds"]]["activation"]
        never = [a for a in activations if a in set(lr["activation"]) - set(majority)]
        if never:
            out.append(
                "Learned in most seeds at no learning rate of the sweep (still improving, "
                f"stuck, failed or diverged at every one): {', '.join(never)}."
            )
        learned_all = [
            a
            for a in activations
            if not lr[lr["activation"] == a].empty
            and (lr[lr["activation"] == a]["learned"] == lr[lr["activation"] == a]["seeds"]).all()
        ]
        if learned_all:
            out.append(f"Learned at every learning rate in every seed: {', '.join(learned_all)}.")
        out += improving_finding(lr, "lr", "learning-rate", activations)
    depth = summary["depth"]
    if not depth.empty:
        for act in activations:
            rows = depth[depth["activation"] == act].sort_values("depth")
            failing = rows[rows["learned"] < rows["seeds"]]
            if not rows.empty and not failing.empty:
                first = failing.iloc[0]
                what = ", ".join(
                    f"{int(first.get(s, 0))} {words(s)}"
                    for s in ("improving", "stuck", "failed", "diverged")
                    if first.get(s, 0)
                )
                out.append(
                    f"{act} first fails to learn at depth {int(first['depth'])} "
                    f"({what} of {first['seeds']} seeds)."
                )
        stuck = int(depth["stuck"].sum())
        if stuck:
            out.append(
                f"{stuck} of {int(depth['seeds'].sum())} depth-stress runs stayed finite but "
                "ended stuck at about the target's variance: the original tutorial counted "
                "these as stable."
            )
        out += improving_finding(depth, "depth", "depth-stress", activations)
    return out or ["Every run learned: no divergence, no stuck and no failed run."]


def improving_finding(table, key: str, part: str, activations: list[str]) -> list[str]:
    """How many of a part's runs that stayed finite without learning were still improving
    at the end of the budget, and where: a longer budget may make them learn. Nothing when
    none was (or the runs were stored before the record, or too short for the rule)."""
    if "improving" not in table or not table["improving"].sum():
        return []
    improving = int(table["improving"].sum())
    unlearned = int((table["improving"] + table["stuck"] + table["failed"]).sum())
    hit = table[(table["improving"] > 0) & table["activation"].isin(activations)]
    hit = hit.assign(_order=hit["activation"].map(activations.index)).sort_values(["_order", key])
    listed = ", ".join(
        f"{r.activation} at {'learning rate' if key == 'lr' else 'depth'} {r[key]:g} "
        f"({int(r.improving)}/{int(r.seeds)})"
        for _, r in hit.iterrows()
    )
    return [
        f"{improving} of the {unlearned} {part} runs that stayed finite without learning were "
        f"still improving at the end of the budget of {int(table['budget'].max())} steps "
        f"({improving_words('their')}): slow rather than stuck, so a longer budget may make them "
        f"learn: {listed}."
    ]
