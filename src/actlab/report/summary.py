"""The cross-study part of the report, built from the verdicts table (`verdicts.py`) alone:

- the best-and-worst table, one row per property, with its test and a power estimate;
- recommendations and a decision guide: the best group of each property, less any
  activation that failed in the regime the recommendation is about;
- the summary sheet: every study's own panels on one page, with the computed findings.

Nothing here reads a study's results or names an activation: studies supply their
property scores, claims and sheet panels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from actlab.stats import permutation_p_text


def names(items) -> str:
    return ", ".join(items)


def of_property(verdicts: pd.DataFrame, prop: str) -> pd.DataFrame:
    v = verdicts[verdicts["property"] == prop]
    return v.sort_values("mean_rank", kind="stable", na_position="last")


def group(v: pd.DataFrame, which: str) -> list[str]:
    return v[v["group"] == which]["activation"].tolist()


def seeds_of(v: pd.DataFrame) -> int:
    """The number of seeds the property was measured over (from its block description)."""
    return int(str(v["blocks"].iloc[0]).split(" ")[0])


def not_separated_words(v: pd.DataFrame) -> str:
    n = seeds_of(v)
    return f"not separated by {n} seed{'s' if n != 1 else ''}"


def short_test(v: pd.DataFrame) -> str:
    r = v.iloc[0]
    if not math.isfinite(r["friedman_p"]):
        return "untested"
    p = permutation_p_text(r["friedman_p"])
    return f"Friedman + Nemenyi over {int(r['n_blocks'])} blocks, {p}"


def separated(v: pd.DataFrame) -> bool:
    return bool(v["group"].isin(["best", "worst", "middle"]).any())


def runner_up_power(v: pd.DataFrame) -> str:
    """How many seeds the best and the runner-up would need, at their observed mean ranks."""
    ranked = v[v["mean_rank"].notna()]
    if len(ranked) < 2:
        return "–"
    first, second = ranked.iloc[0], ranked.iloc[1]
    if first["group"] != second["group"] or first["group"] == "middle":
        return "separated"
    need = second["seeds_to_separate"]
    if not math.isfinite(need):
        return (
            f"never at these mean ranks ({first['activation']} and {second['activation']} "
            "have the same)"
        )
    return f"about {int(need)} ({first['activation']} vs {second['activation']})"


# -- the best-and-worst table ------------------------------------------------------------------
def best_worst_table(verdicts: pd.DataFrame, specs: dict[str, Any]) -> str:
    lines = [
        "| property | how it is measured | best | worst | not separated from either end | "
        "test | seeds to separate the top two |",
        "|---|---|---|---|---|---|---|",
    ]
    unranked = []
    for prop in dict.fromkeys(verdicts["property"]):
        v = of_property(verdicts, prop)
        spec = specs[prop]

        def show(acts: list[str], v: pd.DataFrame = v) -> str:
            ranks = v.set_index("activation")["mean_rank"]
            return names(f"{a} ({ranks[a]:.2g})" for a in acts) or "–"

        how = f"{spec.description}; {spec.better} is better; blocks: {v['blocks'].iloc[0]}"
        middle = group(v, "not separated")
        if not separated(v):
            best, worst = f"– ({not_separated_words(v)})", "–"
        else:
            best, worst = show(group(v, "best")), show(group(v, "worst"))
        lines.append(
            f"| {prop} | {how} | {best} | {worst} | {show(middle)} | {short_test(v)} | "
            f"{runner_up_power(v)} |"
        )
        missing = v[v["group"] == "not ranked"]
        if not missing.empty:
            unranked.append(
                f"{prop}: "
                + names(
                    f"{r.activation} ({r.outcomes or 'no score'})" for r in missing.itertuples()
                )
            )
    notes = [
        "",
        "Activations are ranked per property by Friedman's test over blocks (a block is one "
        "seed, or one seed at one setting of a sweep), then Nemenyi's test on the mean ranks "
        "(1 = best; in brackets), which holds the error rate at 5% over all pairs (Demšar "
        "2006). The best group holds every activation whose mean rank is within the critical "
        "difference (CD) of the best one and not of the worst, the worst group likewise; "
        "an activation within the CD of both ends is not separated from either. When "
        "Friedman's test finds no difference, nothing is separated. The last column "
        "estimates how many seeds would separate the two best-ranked activations if their "
        "mean ranks stayed as observed. Every number behind this table is in `verdicts.csv`.",
    ]
    if unranked:
        notes += [
            "",
            "Not ranked (no score in some blocks, e.g. diverged there): "
            + "; ".join(unranked)
            + ".",
        ]
    return "\n".join(lines + notes)


# -- recommendations ---------------------------------------------------------------------------
@dataclass
class Advice:
    situation: str
    property: str
    recommended: list[str]
    failed_regime: list[tuple[str, int, int]]  # (activation, failures, runs) in the best group
    avoid: list[str]
    regime: str
    verdicts: pd.DataFrame

    @property
    def untested_or_flat(self) -> bool:
        return not separated(self.verdicts)


def advice(verdicts: pd.DataFrame, specs: dict[str, Any]) -> list[Advice]:
    out = []
    for prop in dict.fromkeys(verdicts["property"]):
        spec = specs[prop]
        if not spec.situation:
            continue
        v = of_property(verdicts, prop)
        rows = v.set_index("activation")
        best = group(v, "best")
        failed = [
            (a, int(rows.loc[a, "regime_failures"]), int(rows.loc[a, "regime_runs"]))
            for a in best
            if rows.loc[a, "regime_failures"] > 0
        ]
        ok = [a for a in best if a not in {f[0] for f in failed}]
        regime = str(v["regime"].iloc[0]) if isinstance(v["regime"].iloc[0], str) else ""
        out.append(Advice(spec.situation, prop, ok, failed, group(v, "worst"), regime, v))
    return out


def recommendation_sentence(a: Advice) -> str:
    v = a.verdicts
    if a.untested_or_flat:
        return (
            f"For {a.situation}: no recommendation; the activations are "
            f"{not_separated_words(v)} by {a.property} ({short_test(v)})."
        )
    failed = ", ".join(
        f"{name} in {k} of {n} runs" if i == 0 else f"{name} in {k} of {n}"
        for i, (name, k, n) in enumerate(a.failed_regime)
    )
    if a.recommended:
        text = f"For {a.situation}: {names(a.recommended)}"
        if a.failed_regime:
            text += (
                f" (also in the best group but not recommended, having not learned at "
                f"{a.regime}: {failed})"
            )
    elif a.failed_regime:
        text = (
            f"For {a.situation}: no recommendation; every activation of the best group failed "
            f"at {a.regime} (did not learn there: {failed})"
        )
    else:
        text = f"For {a.situation}: no activation was separated from the rest at the top"
    if a.avoid:
        text += f"; avoid {names(a.avoid)}"
    return text + f" (by {a.property}: {short_test(v)})."


def recommendations(verdicts: pd.DataFrame, specs: dict[str, Any], seeds: int) -> list[str]:
    out = [recommendation_sentence(a) for a in advice(verdicts, specs)]
    average = average_ranks(verdicts)
    if average:
        count, rows = average
        listed = ", ".join(f"{a} {r:.2f}" for a, r in rows[:3])
        out.append(
            f"Averaged over the {count} properties in which every activation was ranked, the "
            f"lowest mean ranks (1 = best) were: {listed}. This average is descriptive and "
            "untested, and it hides trade-offs: read the table."
        )
    if seeds == 1:
        out.append(
            "One seed: a property measured at one setting cannot be tested, and a ranking "
            "over a sweep's settings says nothing about other seeds; run with more seeds "
            "before relying on these."
        )
    return out


def average_ranks(verdicts: pd.DataFrame) -> tuple[int, list[tuple[str, float]]] | None:
    """(properties used, [(activation, mean of its mean ranks)] lowest first) over the
    properties in which every activation was ranked; exact ties keep the run's order."""
    ranked = verdicts[verdicts["mean_rank"].notna()]
    everyone = set(verdicts["activation"])
    common = [
        p for p, g in ranked.groupby("property", sort=False) if set(g["activation"]) == everyone
    ]
    if len(common) < 2:
        return None
    sub = ranked[ranked["property"].isin(common)]
    means = sub.groupby("activation", sort=False)["mean_rank"].mean()
    return len(common), sorted(means.items(), key=lambda kv: kv[1])


def decision_guide(verdicts: pd.DataFrame, specs: dict[str, Any]) -> str:
    lines = ["| if you need | consider | measured by |", "|---|---|---|"]
    for a in advice(verdicts, specs):
        if a.untested_or_flat:
            consider = f"no recommendation ({not_separated_words(a.verdicts)})"
        elif not a.recommended:
            consider = "no recommendation"
        else:
            consider = names(a.recommended)
        lines.append(f"| {a.situation} | {consider} | {a.property} |")
    return "\n".join(lines)


# -- the summary sheet ---------------------------------------------------------------------------
def sheet_findings(verdicts: pd.DataFrame) -> list[str]:
    out = []
    for prop in dict.fromkeys(verdicts["property"]):
        v = of_property(verdicts, prop)
        if not separated(v):
            out.append(f"{prop}: {not_separated_words(v)} ({short_test(v)})")
            continue
        text = f"{prop}: best {names(group(v, 'best')) or '–'}; worst {names(group(v, 'worst')) or '–'}"
        both = group(v, "not separated")
        if both:
            text += f"; not separated from either end: {names(both)}"
        out.append(text + f" ({short_test(v)})")
    return out


Panel = Callable[[Any], None]


def summary_sheet(
    panels: list[Panel], activations: list[str], findings: list[str], path: Path
) -> Path:
    """The studies' panels in rows of three, then the findings, under one legend."""
    from actlab.report.figures import activation_colours, pyplot, save

    plt = pyplot()
    colours = activation_colours(activations)
    rows = max(1, math.ceil(len(panels) / 3))
    fig = plt.figure(figsize=(18, 5 * rows + 4.5))
    grid = fig.add_gridspec(rows + 1, 3, height_ratios=[1] * rows + [0.85])
    for i, draw in enumerate(panels):
        draw(fig.add_subplot(grid[i // 3, i % 3]))
    text_ax = fig.add_subplot(grid[rows, :])
    text_ax.axis("off")
    wrapped = "\n".join(f"• {f}" for f in findings[:14])
    text_ax.text(
        0.0,
        1.0,
        "Key findings (computed from this run)\n\n" + wrapped,
        va="top",
        ha="left",
        fontsize=9,
        wrap=True,
    )
    handles = [plt.Line2D([], [], color=colours[a], lw=3, label=a) for a in activations]
    fig.subplots_adjust(top=0.92, hspace=0.45)
    fig.legend(
        handles=handles,
        loc="upper center",
        ncol=min(len(activations), 10),
        fontsize=9,
        bbox_to_anchor=(0.5, 0.965),
    )
    fig.suptitle("actlab summary sheet", y=0.99, fontsize=14)
    return save(fig, path)
