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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from actlab.stats import SIGNIFICANCE, p_text, permutation_p_text
from actlab.studies.base import FAILURES


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
    """Why a property has no best and worst: its ranking separated nothing at these seeds,
    or there is no ranking at all (one activation or none could be ranked: no number of
    seeds would separate anything)."""
    ranked = v[v["mean_rank"].notna()]["activation"].tolist()
    if len(ranked) < 2:
        only = f"only {ranked[0]} could be ranked" if ranked else "nothing could be ranked"
        return f"no ranking: {only}"
    n = seeds_of(v)
    return f"not separated by {n} seed{'s' if n != 1 else ''}"


def short_test(v: pd.DataFrame) -> str:
    r = v.iloc[0]
    if not math.isfinite(r["friedman_p"]):
        return "untested"
    p = permutation_p_text(r["friedman_p"])
    return f"Friedman + Nemenyi over {int(r['n_blocks'])} seeds, {p}"


def separated(v: pd.DataFrame) -> bool:
    return bool(v["group"].isin(["best", "worst", "middle"]).any())


def why_not_separated(v: pd.DataFrame) -> str | None:
    """Why a property separates nothing, when that needs saying: its seeds cannot reach
    p < 0.05 for any pair, or Friedman's test found a difference that no pair carries."""
    ranked = v[v["mean_rank"].notna()]
    if len(ranked) < 2 or separated(v):
        return None
    r = ranked.iloc[0]
    k, n, cd = len(ranked), int(r["n_blocks"]), float(r["critical_difference"])
    from actlab.stats import blocks_for_friedman, blocks_for_gap, friedman_floor

    # Nemenyi's test runs only where Friedman's finds a difference: both must be able to.
    nemenyi_cannot = math.isfinite(r["smallest_p"]) and r["smallest_p"] >= SIGNIFICANCE
    friedman_cannot = friedman_floor(n, k) >= SIGNIFICANCE
    if nemenyi_cannot or friedman_cannot:
        need = max(int(blocks_for_gap(k - 1, k)), blocks_for_friedman(k))
        floors = []
        if nemenyi_cannot:
            floors.append(f"Nemenyi p is {r['smallest_p']:.2g}")
        if friedman_cannot:
            floors.append(f"Friedman p is {friedman_floor(n, k):.2g}")
        return (
            f"with {n} seeds and {k} activations no pair can be separated whatever the data "
            f"(the smallest attainable {' and '.join(floors)}); {need} seeds would be needed"
        )
    if math.isfinite(r["friedman_p"]) and r["friedman_p"] < SIGNIFICANCE:
        gap = float(ranked["mean_rank"].max() - ranked["mean_rank"].min())
        return (
            f"Friedman's test finds that the activations differ somewhere "
            f"({permutation_p_text(r['friedman_p'])}), but no pair is far enough apart for "
            f"Nemenyi's test, which holds the 5% error over all {k * (k - 1) // 2} pairs: "
            f"the largest mean-rank gap, {gap:.2f}, is below the critical difference, {cd:.2f}"
        )
    return None


def runner_up_power(v: pd.DataFrame) -> str:
    """Whether the best-ranked activation is separated from the runner-up, or how many
    seeds that would need at their observed mean ranks."""
    ranked = v[v["mean_rank"].notna()]
    if len(ranked) < 2:
        return "–"
    first, second = ranked.iloc[0], ranked.iloc[1]
    if first["mean_rank"] == second["mean_rank"]:
        return (
            f"never at these mean ranks ({first['activation']} and {second['activation']} "
            "have the same)"
        )
    if separated(v) and first["nemenyi_p_vs_next"] < SIGNIFICANCE:
        return f"separated (Nemenyi {p_text(first['nemenyi_p_vs_next'])})"
    need = second["seeds_to_separate"]
    if not math.isfinite(need):
        return f"never at these mean ranks ({first['activation']} vs {second['activation']})"
    if need > 1000:
        return f"more than 1,000 ({first['activation']} vs {second['activation']})"
    return f"about {int(need)} seeds ({first['activation']} vs {second['activation']})"


# -- the best-and-worst table ------------------------------------------------------------------
def best_worst_table(verdicts: pd.DataFrame, specs: dict[str, Any]) -> str:
    lines = [
        "| property | how it is measured | conditions | best | worst | "
        "not separated from either end | test | top two |",
        "|---|---|---|---|---|---|---|---|",
    ]
    unranked, unseparated, regimes = [], [], []
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
            f"| {prop} | {how} | {conditions_of(v) or '–'} | {best} | {worst} | {show(middle)} "
            f"| {short_test(v)} | {runner_up_power(v)} |"
        )
        why = why_not_separated(v)
        if why:
            unseparated.append(f"{prop}: {why}")
        dead_end = failed_everywhere(v)
        if dead_end:
            regimes.append(f"{prop}: {dead_end}")
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
        "Seeds are the independent unit: within a seed every activation starts from the "
        "same random numbers, so the settings of a sweep (learning rates, depths, targets) "
        "are ranked one by one and a seed's ranks averaged over them; Friedman's test then "
        "runs over the seeds, and Nemenyi's test on the mean ranks (1 = best; in brackets) "
        "holds the error rate at 5% over all pairs (Demšar 2006). A diverged run without "
        "a score ranks last in its setting; where the score is whether a run learned, "
        "diverged, stuck and failed runs score alike (none learned), here and in the "
        "transfer section. The best group holds every activation whose mean rank is "
        "within the critical difference (CD) of the best one and not of the worst, the worst "
        "group likewise; an activation within the CD of both ends is not separated from "
        "either. When Friedman's test finds no difference, nothing is separated. The last "
        "column says whether the two best-ranked activations are separated from each other, "
        "or how many seeds would separate them if their mean ranks stayed as observed: "
        "being in the best group says only that an activation is separated from the worst. "
        "Every number behind this table is in `verdicts.csv`.",
    ]
    if regimes:
        notes += [
            "",
            "Settings at which every activation failed in every seed (the ranking there is "
            "among failures, so each verdict rests on the other settings): "
            + "; ".join(regimes)
            + ".",
        ]
    if unseparated:
        notes += ["", "Why nothing is separated: " + "; ".join(unseparated) + "."]
    if unranked:
        notes += [
            "",
            "Not ranked (no score in some blocks): " + "; ".join(unranked) + ".",
        ]
    return "\n".join(lines + notes)


def failed_everywhere(v: pd.DataFrame) -> str:
    """The settings at which every activation failed, in words ("" for none)."""
    if "all_failed" not in v:
        return ""
    value = v["all_failed"].iloc[0]
    return value if isinstance(value, str) else ""


def conditions_of(v: pd.DataFrame) -> str:
    c = v["conditions"].iloc[0] if "conditions" in v else ""
    return c if isinstance(c, str) else ""


# -- what the protocol cannot answer -----------------------------------------------------------
def protocol_limits(verdicts: pd.DataFrame, limits: dict[str, str]) -> list[str]:
    """One line per property whose protocol cannot show what its name claims: the studies'
    own statements for their settings (`Study.limits`), and, from the data, properties
    whose runs mostly did not learn (the ranking then describes failed networks)."""
    out = []
    for prop in dict.fromkeys(verdicts["property"]):
        v = of_property(verdicts, prop)
        parts = [limits[prop]] if prop in limits else []
        failed = total = 0
        for outcomes in v["outcomes"]:
            f, t = failure_share(outcomes)
            failed, total = failed + f, total + t
        if total and 2 * failed > total:
            states = sorted(
                {
                    part.rpartition(" ")[0]
                    for outcomes in v["outcomes"]
                    for part in str(outcomes).split(", ")
                }
                & set(FAILURES)
            )
            parts.append(
                f"{failed} of {total} of its runs ended {', '.join(states)}, so its ranking "
                "is mostly among failures"
            )
        if parts:
            out.append(f"{prop}: " + "; ".join(parts) + ".")
    return out


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
    # best-group members left out because they fail a property the situation rests on:
    # (activation, why)
    fails_elsewhere: list[tuple[str, str]] = field(default_factory=list)
    # within the CD of the top but also of the worst: not separated from the top either
    also_top: list[str] = field(default_factory=list)
    # worst-group members not separated from some recommended activation: (name, those)
    unseparated_worst: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def untested_or_flat(self) -> bool:
        return not separated(self.verdicts)


def failure_share(outcomes: str) -> tuple[int, int]:
    """(failed runs, runs) from a verdict row's outcome counts ("learned 4, stuck 2")."""
    failed = total = 0
    for part in str(outcomes or "").split(", "):
        if not part or part == "nan":
            continue
        state, _, count = part.rpartition(" ")
        total += int(count)
        failed += int(count) if state in FAILURES else 0
    return failed, total


def failing_elsewhere(verdicts: pd.DataFrame, spec, activation: str) -> str | None:
    """Why `activation` must not be recommended for spec's situation: it failed most of its
    runs of the property itself (stuck, failed, diverged, vanished, ...), or most seeds
    of a setting where another activation did not, or sits in the worst group of a
    property the situation rests on, or failed there in those ways."""
    for prop in (spec.name, *spec.rests_on):
        v = verdicts[(verdicts["property"] == prop) & (verdicts["activation"] == activation)]
        if v.empty:
            continue
        row = v.iloc[0]
        if row["group"] == "worst" and prop != spec.name:
            return f"worst group of {prop}"
        failed, total = failure_share(row["outcomes"])
        if total and 2 * failed > total:
            whose = "of its own runs" if prop == spec.name else f"runs of {prop}"
            return f"{failed} of {total} {whose} ended {failure_states(row['outcomes'])}"
        alone = row.get("failed_where_others_did_not", "")
        if isinstance(alone, str) and alone:
            where = f" of {prop}" if prop != spec.name else ""
            return f"most seeds did not succeed at {alone}{where}, where others did"
    return None


def failure_states(outcomes: str) -> str:
    """The failure states of a verdict row's outcome counts, in words: "stuck" or
    "stuck (12) or diverged (6)" (each study's own word, never a generic "failed")."""
    states = []
    for part in str(outcomes or "").split(", "):
        state, _, count = part.rpartition(" ")
        if state in FAILURES:
            states.append((state, count))
    if len(states) == 1:
        return states[0][0]
    return " or ".join(f"{state} ({count})" for state, count in states)


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
        elsewhere = [
            (a, why)
            for a in best
            if a not in {f[0] for f in failed}
            and (why := failing_elsewhere(verdicts, spec, a)) is not None
        ]
        left_out = {f[0] for f in failed} | {e[0] for e in elsewhere}
        ok = [a for a in best if a not in left_out]
        regime = str(v["regime"].iloc[0]) if isinstance(v["regime"].iloc[0], str) else ""
        also = [
            a
            for a in group(v, "not separated")
            if separated(v) and rows.loc[a, "nemenyi_p_vs_best"] >= SIGNIFICANCE
        ]
        # judged against those recommended, or the best group when every one is set apart
        avoid, unseparated = split_avoid(v, group(v, "worst"), ok or best)
        out.append(
            Advice(
                spec.situation,
                prop,
                ok,
                failed,
                avoid,
                regime,
                v,
                elsewhere,
                also,
                unseparated,
            )
        )
    return out


def split_avoid(
    v: pd.DataFrame, worst: list[str], recommended: list[str]
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The worst group's members to avoid: those separated (Nemenyi: a mean-rank gap of at
    least the critical difference) from every recommended activation. The groups are
    drawn against the single first and last activations, so a member of the worst group
    can sit within the critical difference of a recommended one; "recommend A, avoid B"
    would then claim a difference the test did not find. Such members are returned apart,
    each with the recommended activations it is not separated from."""
    if not recommended:
        return worst, []
    rank = v.set_index("activation")["mean_rank"]
    cd = float(v["critical_difference"].iloc[0])
    avoid, unseparated = [], []
    for w in worst:
        close = [r for r in recommended if rank[w] - rank[r] < cd]
        if close:
            unseparated.append((w, close))
        else:
            avoid.append(w)
    return avoid, unseparated


def top_words(a: Advice) -> str:
    """What the best group's ranking rests on: whether its first is separated from the
    runner-up, and who else the top does not separate itself from."""
    ranked = a.verdicts[a.verdicts["mean_rank"].notna()]
    first = ranked.iloc[0]
    out = []
    if len(ranked) > 1 and first["mean_rank"] == ranked.iloc[1]["mean_rank"]:
        tied = ranked[ranked["mean_rank"] == first["mean_rank"]]["activation"].tolist()
        out.append(f"{names(tied)} share the first mean rank (a tie, not a win)")
    elif len(ranked) > 1 and not first["nemenyi_p_vs_next"] < SIGNIFICANCE:
        out.append(
            f"{first['activation']} ranks first but is not separated from "
            f"{ranked.iloc[1]['activation']} (Nemenyi {p_text(first['nemenyi_p_vs_next'])})"
        )
    if a.also_top:
        out.append(f"not separated from the best either, nor from the worst: {names(a.also_top)}")
    return "; ".join(out)


def recommendation_sentence(a: Advice) -> str:
    v = a.verdicts
    held = conditions_of(v)
    under = f" ({held})" if held else ""
    ranked = v[v["mean_rank"].notna()]
    if len(ranked) < 2:
        left = v[v["mean_rank"].isna()]
        only = (
            f"only {names(ranked['activation'])} could be ranked"
            if len(ranked)
            else "nothing could be ranked"
        )
        return (
            f"For {a.situation}: no recommendation; {only} by {a.property}, so there is no "
            "ranking (not ranked: "
            + names(f"{r.activation}, {r.outcomes or 'no score'}" for r in left.itertuples())
            + ")."
        )
    if a.untested_or_flat:
        why = why_not_separated(v)
        return (
            f"For {a.situation}: no recommendation; the activations are "
            f"{not_separated_words(v)} by {a.property} ({short_test(v)}"
            + (f"; {why}" if why else "")
            + ")."
        )
    failed = ", ".join(
        f"{name} in {k} of {n} runs" if i == 0 else f"{name} in {k} of {n}"
        for i, (name, k, n) in enumerate(a.failed_regime)
    )
    set_apart = []
    if a.failed_regime:
        set_apart.append(f"having not learned at {a.regime}: {failed}")
    if a.fails_elsewhere:
        set_apart.append(
            "failing its own runs or what this rests on: "
            + ", ".join(f"{n} ({why})" for n, why in a.fails_elsewhere)
        )
    if a.recommended:
        text = f"For {a.situation}: {names(a.recommended)}"
        if set_apart:
            text += " (also in the best group but not recommended, " + "; ".join(set_apart) + ")"
    elif set_apart:
        text = (
            f"For {a.situation}: no recommendation; every activation of the best group is set "
            "apart (" + "; ".join(set_apart) + ")"
        )
    else:
        text = f"For {a.situation}: no activation was separated from the rest at the top"
    top = top_words(a)
    if top:
        text += f"; {top}"
    dead_end = failed_everywhere(v)
    if dead_end:
        text += (
            f"; no activation succeeded at {dead_end} in any seed, so this rests on the "
            "other settings"
        )
    if a.avoid:
        text += f"; avoid {names(a.avoid)}"
        text += rank_not_mean_words(v, a.avoid)
    if a.unseparated_worst:
        by_close: dict[tuple[str, ...], list[str]] = {}
        for w, close in a.unseparated_worst:
            by_close.setdefault(tuple(close), []).append(w)
        text += "; " + "; ".join(
            f"{names(ws)} {'ranks' if len(ws) == 1 else 'rank'} in the worst group but "
            f"{'is' if len(ws) == 1 else 'are'} not separated from {names(close)}, so not "
            "to be avoided on this evidence"
            for close, ws in by_close.items()
        )
    return text + f" (by {a.property}: {short_test(v)}). Holds for{under or ' this protocol'}."


def rank_not_mean_words(v: pd.DataFrame, avoid: list[str]) -> str:
    """Where an activation to avoid has a better mean score than one not avoided: the
    verdict is by rank (how often it came last, block by block), the mean by size (one
    huge error pulls a mean), so the two can disagree; say so rather than leave the table's
    mean column to contradict the sentence."""
    scored = v[v["mean"].notna()].set_index("activation")
    sign = 1.0 if (v["better"].iloc[0] if len(v) else "lower") == "lower" else -1.0
    kept = [a for a in scored.index if a not in avoid]
    out = []
    for a in avoid:
        if a not in scored.index:
            continue
        beaten = [b for b in kept if sign * scored.loc[a, "mean"] < sign * scored.loc[b, "mean"]]
        if beaten:
            out.append(f"{a}'s mean score is better than {names(beaten)}'s")
    if not out:
        return ""
    return (
        f" (a verdict by rank, block by block, though {'; '.join(out)}: a mean weighs how "
        "far a few runs fell, a rank only how often each placed lower)"
    )


def recommendations(verdicts: pd.DataFrame, specs: dict[str, Any], seeds: int) -> list[str]:
    out = [recommendation_sentence(a) for a in advice(verdicts, specs)]
    if seeds == 1:
        out.append(
            "One seed: no property can be tested (seeds are the blocks of every ranking); "
            "run with more seeds before relying on these."
        )
    return out


def top_note(a: Advice) -> str:
    """A short note after the recommended names when the top is not clear-cut: several
    not separated from one another, a first that is set apart, or one recommendation not
    separated from the runner-up; "" when the first is separated from the rest."""
    if not top_words(a):
        return ""
    ranked = a.verdicts[a.verdicts["mean_rank"].notna()]
    first = ranked.iloc[0]["activation"]
    if len(a.recommended) > 1:
        return " (not separated from one another at the top)"
    if first not in a.recommended:
        return f" ({first} ranks first but is set apart)"
    runner_up = ranked.iloc[1]["activation"] if len(ranked) > 1 else None
    return f" (first, but not separated from {runner_up})" if runner_up else ""


def decision_guide(verdicts: pd.DataFrame, specs: dict[str, Any]) -> str:
    lines = ["| if you need | consider | measured by | under |", "|---|---|---|---|"]
    for a in advice(verdicts, specs):
        if a.untested_or_flat:
            consider = f"no recommendation ({not_separated_words(a.verdicts)})"
        elif not a.recommended:
            consider = "no recommendation"
        else:
            consider = names(a.recommended) + top_note(a)
        lines.append(
            f"| {a.situation} | {consider} | {a.property} | {conditions_of(a.verdicts) or '–'} |"
        )
    return "\n".join(lines)


# -- answers first ------------------------------------------------------------------------------
def answers(verdicts: pd.DataFrame, specs: dict[str, Any], evidence: dict[str, str]) -> list[str]:
    """The report's opening: per situation a user comes with, one line with the answer
    (the activations recommended, or why there is none), the property and conditions it
    rests on, and a link to the section with the evidence (`evidence`: property -> the
    anchor of its study's section). The same advice as the Recommendations, shortened."""
    out = []
    for a in advice(verdicts, specs):
        if a.untested_or_flat:
            answer = f"no recommendation ({not_separated_words(a.verdicts)})"
        elif not a.recommended:
            answer = "no recommendation (every activation of the best group is set apart)"
        else:
            answer = names(a.recommended) + top_note(a)
        conditions = conditions_of(a.verdicts)
        where = f" under {conditions}" if conditions else ""
        link = f" ([evidence](#{evidence[a.property]}))" if a.property in evidence else ""
        out.append(f"**For {a.situation}:** {answer}. By {a.property}{where}.{link}")
    return out


# -- the summary sheet ---------------------------------------------------------------------------
def sheet_findings(verdicts: pd.DataFrame) -> list[str]:
    """The summary sheet's lines: per property its best and worst groups (best = separated
    from the worst, not from one another), the settings where no activation succeeded,
    and a last line saying where each verdict's conditions and set-apart rulings are."""
    out = []
    for prop in dict.fromkeys(verdicts["property"]):
        v = of_property(verdicts, prop)
        dead_end = failed_everywhere(v)
        nowhere = f"; no activation succeeded at {dead_end}" if dead_end else ""
        if not separated(v):
            out.append(f"{prop}: {not_separated_words(v)}{nowhere} ({short_test(v)})")
            continue
        text = f"{prop}: best {names(group(v, 'best')) or '–'}; worst {names(group(v, 'worst')) or '–'}"
        both = group(v, "not separated")
        if both:
            text += f"; not separated from either end: {names(both)}"
        out.append(text + nowhere + f" ({short_test(v)})")
    if out:
        out.append(
            "Each verdict holds only under its own protocol (initialisation, optimiser, "
            "steps, depth, learning rate: the report's best-and-worst table and "
            "verdicts.csv); the report's Recommendations set apart activations that fail "
            "elsewhere"
        )
    return out


Panel = Callable[[Any], None]


def summary_sheet(
    panels: list[Panel], activations: list[str], findings: list[str], path: Path
) -> Path:
    """The studies' panels in rows of three, then the findings, under one legend."""
    from actlab.render.figures import activation_colours, pyplot, save

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
