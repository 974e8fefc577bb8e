"""Activations compared within one setting (an architecture; a data set and depth): every
pair tested, paired over seeds, with Holm's correction over all the setting's pairs; a table
read against a reference named before the data; an exact tie for the top called a tie; and
"the best" said only of an activation the tests separate from every other. The one home of
the sentence that says which activation is the best, for every study that ranks activations
by a mean over seeds (mnist1d, real_data)."""

from __future__ import annotations

import math

from actlab.render.text import pct
from actlab.stats import SIGNIFICANCE, p_text, seeds_for_family, smallest_adjusted_p

# Means this close (relative) are one number: accuracies are counts of correct test
# samples, so two equal counts whose means differ in the last bits of a float are a tie.
TIE_REL = 1e-9


def same(a: float, b: float) -> bool:
    """Whether two means are one number (to TIE_REL)."""
    return math.isclose(a, b, rel_tol=TIE_REL, abs_tol=0.0)


def top_group(means: dict[str, float]) -> list[str]:
    """The activations whose mean equals the highest one (to TIE_REL), in the given order:
    one name, or every name of an exact tie for the top. For a lower-is-better quantity,
    pass the negated means."""
    finite = {a: m for a, m in means.items() if m == m}
    if not finite:
        return []
    top = max(finite.values())
    return [a for a, m in finite.items() if same(m, top)]


def reference_activation(activations: list[str]) -> str:
    """The pre-named reference a table of paired tests is read against: ReLU when the run
    has it, else the run's first activation (never one the data picked)."""
    return "ReLU" if "ReLU" in activations else activations[0]


def all_pairs(table, column: str, names: list[str]) -> dict:
    """For every pair (a, b) of `names`, a before b: the paired sign-flip test of a - b on
    `column` of a per-trial `table` (columns activation, seed, column), aligned by seed,
    Holm-adjusted over all the pairs. No reference is picked from the data."""
    from actlab.stats import paired_by_seed, with_holm

    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    tests = with_holm([paired_by_seed(table, column, a, b) for a, b in pairs])
    return dict(zip(pairs, tests, strict=True))


def versus(tests: dict, a: str, b: str):
    """The test of a against b from all_pairs, oriented so that mean_diff is a - b."""
    from dataclasses import replace

    if (a, b) in tests:
        return tests[(a, b)]
    t = tests[(b, a)]
    return replace(t, mean_diff=-t.mean_diff, ci_low=-t.ci_high, ci_high=-t.ci_low)


def family_floor(tests: dict) -> tuple[int, float]:
    """(m, smallest p): the number of tested pairs and the smallest Holm-adjusted p their
    sign-flip tests can give at the seeds they pair (m x 2 / 2^n)."""
    tested = [t for t in tests.values() if t.tested]
    if not tested:
        return 0, math.nan
    return len(tested), smallest_adjusted_p(max(t.n for t in tested), len(tested))


def listed(names: list[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def versus_text(c, scale: float) -> str:
    """A table cell for one paired test of fractions: the mean difference in points, its
    p and whether it separates ('+1.2 points, p = 0.031 (separated)'); an exact tie (a
    difference within TIE_REL of `scale`, the size of the means) reads '0.0 points' and
    '(equal means)', never a signed zero; '–' when untested."""
    if not c.tested:
        return "–"
    if abs(c.mean_diff) <= TIE_REL * abs(scale):
        return f"0.0 points, {p_text(c.p_decisive)} (equal means)"
    return f"{100 * c.mean_diff:+.1f} points, {p_text(c.p_decisive)}" + (
        " (separated)" if c.significant else " (not separated)"
    )


def top_sentence(
    label: str,
    names: list[str],
    tests: dict,
    means: dict[str, float],
    seeds: int,
    *,
    samples: str = "test samples",
    reach_noted: bool = False,
) -> str:
    """Which activation has the highest mean test accuracy, called the best only where the
    paired tests over all pairs separate it from every other; an exact tie for the top is
    named a tie, never a winner. `names`: the activations with a mean, in the run's order;
    `tests`: all_pairs over them; `samples`: what the accuracy counts; `reach_noted`: the
    section has already said (stats.family_reach) that its families cannot reach p < 0.05,
    so the sentence points there instead of repeating it."""
    means = {a: float(means[a]) for a in names}
    top = top_group(means)
    value = f"{pct(means[top[0]], 1)}%"
    it = "them" if len(top) > 1 else "it"
    if len(names) == 1:
        return f"{label}: {top[0]}'s mean test accuracy is {value}; no other activation has one."
    if len(top) > 1:
        head = (
            f"{label}: {listed(top)} tie at {value} mean test accuracy (means equal to the "
            f"data's resolution: as many correct {samples}), so none of them is the best"
        )
    else:
        head = f"{label}: the highest mean test accuracy is {top[0]}'s ({value})"
    others = [a for a in names if a not in top]
    if not others:
        return head + "."
    m, floor = family_floor(tests)
    test = (
        "a paired sign-flip test over seeds (one pair: nothing to adjust)"
        if m == 1
        else f"paired sign-flip tests over seeds, Holm-adjusted over all {m} pairs"
    )
    why = None
    if seeds < 2:
        why = "one seed, so nothing is tested"
    elif m == 0:
        why = "no pair of activations has two seeds with values, so nothing is tested"
    elif not floor < SIGNIFICANCE and reach_noted:
        why = (
            f"the {m} paired tests cannot reach p < {SIGNIFICANCE:g} at these seeds after "
            "Holm's correction (see above)"
        )
    elif not floor < SIGNIFICANCE:
        why = (
            f"with {seeds} seeds and {m} pairs the paired sign-flip tests cannot reach "
            f"p < {SIGNIFICANCE:g} after Holm's correction (the smallest adjusted p is "
            f"{floor:.2g}; {seeds_for_family(m)} seeds are the fewest that can separate two)"
        )
    if why is not None:
        return head + f"; {why}: no activation is separated from {it} ({', '.join(others)})."
    below = [
        a
        for a in others
        if all(versus(tests, t, a).significant and versus(tests, t, a).mean_diff > 0 for t in top)
    ]
    near = [a for a in others if a not in below]
    if len(top) > 1:
        text = head + f" ({test})"
        if near:
            text += f"; not separated from {it}: {', '.join(near)}"
        if below:
            text += f"; below {it}: {', '.join(below)}"
        return text + "."
    if not near:
        return (
            f"{label}: {top[0]} has the highest mean test accuracy ({value}), separated from "
            f"every other activation ({test})."
        )
    text = (
        f"{label}: no activation is shown best: {top[0]} has the highest mean ({value}) but "
        f"is not separated from {', '.join(near)} ({test})"
    )
    if below:
        text += f"; below it: {', '.join(below)}"
    return text + "."


def mean_ranks(table, column: str, names: list[str]) -> dict[str, float]:
    """Mean rank over seeds of `names` on `column` (higher is better) of a per-trial table
    (columns activation, seed, column, and diverged where runs can diverge): rank 1 is the
    best in each seed, ties share their mean rank, a diverged run ranks below every other
    (the ranking the best-and-worst table uses). Only seeds where every activation has a
    run count; {} when there is none."""
    import numpy as np

    from actlab.stats import block_ranks

    own = table[table["activation"].isin(names)]
    if own.empty:
        return {}
    score = own[column].astype(float)
    if "diverged" in own:
        score = score.where(own["diverged"] != 1, -np.inf)
    wide = own.assign(_score=score).pivot_table(
        index="seed", columns="activation", values="_score", dropna=False
    )
    wide = wide.reindex(columns=names).dropna()
    if wide.empty:
        return {}
    ranks = block_ranks(wide.to_numpy(dtype=float), higher_is_better=True)
    return {a: float(r) for a, r in zip(names, ranks.mean(axis=0), strict=True)}
