"""Verdicts as data: every study's property scores ranked into one table, `verdicts.csv`.

One row per property x activation. Activations are ranked per property by Demšar's
procedure (Friedman's test over blocks, then Nemenyi's post-hoc test on the mean ranks;
`stats.friedman_nemenyi`), where a block is one seed: seeds are the independent unit.
When a property spans a sweep (learning rates, depths, targets, data sets), the
settings of one seed share its initial weights and data, so they are not independent
blocks: each setting's scores are ranked, and a seed's ranks are averaged over its
settings before the seeds are ranked. A diverged trial is the worst outcome wherever it
occurs (its score, if missing, becomes the worst possible one; where the score is whether
a run learned it keeps its 0, like a stuck run); it is counted in `outcomes`, never
dropped. The groups follow from the mean ranks and one critical
difference, so they are contiguous in rank order: an activation ranked above a member of
the best group is in the best group too.

- `best`: its mean rank is within the critical difference of the best mean rank, and
  more than that from the worst;
- `worst`: the same, from the other end;
- `middle`: separated from both ends;
- `not separated`: within the critical difference of both ends, or Friedman's test found
  no difference at all (then every activation is `not separated`);
- `not ranked`: it lacks a score in too many blocks (e.g. it diverged there) to enter the
  largest complete table of scores (see `rankable`).

The best-and-worst table, the recommendations, the decision guide and the summary
sheet's findings are all built from this table alone (`report/summary.py`).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from actlab.stats import (
    SIGNIFICANCE,
    RankTest,
    friedman_nemenyi,
    permutation_p_text,
    summarize,
)
from actlab.studies.base import FAILURES

VERDICT_COLUMNS = (
    "property",
    "activation",
    "better",
    "n_seeds",  # seeds whose every setting has a finite score: the mean's sample
    "n_blocks",  # blocks (seed x setting) the ranking used
    "blocks",  # what a block is, in words
    "mean",  # mean over seeds of the per-seed mean score over settings
    "ci_low",  # t-based 95% interval of that mean (NaN with fewer than 2 seeds)
    "ci_high",
    "mean_rank",  # 1 = best, mid-ranks for ties
    "group",  # best / worst / middle / not separated / not ranked
    "test",
    "friedman_p",
    "critical_difference",
    "nemenyi_p_vs_best",  # Nemenyi's p against the best-ranked activation (family-wise)
    "nemenyi_p_vs_worst",  # Nemenyi's p against the worst-ranked activation
    "nemenyi_p_vs_next",  # Nemenyi's p against the activation ranked just below it
    "smallest_p",  # the smallest Nemenyi p these seeds allow (first vs last in every seed)
    "seeds_to_separate",  # seeds at which its gap to the best would reach the CD
    "outcomes",  # counts of the trials' states, e.g. "learned 4, diverged 2"
    "zeros_floored",  # exact zeros whose logarithm was floored (stats.LOG_FLOOR)
    "regime",  # the setting a recommendation must not fail in ("" for none)
    "regime_failures",  # blocks at that setting whose outcome is a failure
    "regime_runs",
    "conditions",  # what the verdict holds under: initialisation, optimiser, steps, ...
    "all_failed",  # settings at which every activation failed in every seed ("" for none)
    "failed_where_others_did_not",  # settings it failed in most seeds, another in few
)

GROUPS = ("best", "middle", "worst", "not separated", "not ranked")


def verdict_rows(
    scores: pd.DataFrame, specs: dict[str, Any], conditions: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The verdict rows of every property in `scores` (rows as `Study.properties` returns
    them), in the order the properties first appear; `specs` maps a property's name to its
    PropertySpec, `conditions` to what its verdict holds under. Each property is ranked on
    its own."""
    rows: list[dict[str, Any]] = []
    conditions = conditions or {}
    for prop in dict.fromkeys(scores["property"]):
        rows += property_verdicts(
            scores[scores["property"] == prop], specs[prop], conditions.get(prop, "")
        )
    return rows


def verdict_table(
    scores: pd.DataFrame, specs: dict[str, Any], conditions: dict[str, str] | None = None
) -> pd.DataFrame:
    return verdicts_frame(verdict_rows(scores, specs, conditions))


def verdicts_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))


def block_label(spec, n_settings: int, n_seeds: int) -> str:
    seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    if n_settings < 2:
        return seeds
    return f"{seeds}, each the mean of its ranks over {n_settings} {spec.settings or 'settings'}"


def rankable(wide: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
    """The largest complete table (activations x blocks) that the ranking can use: for each
    way of leaving out the activations that lack a score in the most blocks, the blocks in
    which all the others have one; the one with most cells wins (ties: more activations).
    So one missing score of one activation costs that activation, not every activation
    that block, unless it is missing too little to matter."""
    missing = wide.isna().sum(axis=0)
    best: tuple[int, int, list[str]] = (-1, -1, [])
    for limit in sorted(set(missing)):
        names = [a for a in wide.columns if missing[a] <= limit and missing[a] < len(wide)]
        blocks = int(wide[names].notna().all(axis=1).sum()) if names else 0
        candidate = (len(names) * blocks, len(names), names)
        if candidate[:2] > best[:2]:
            best = candidate
    names = best[2]
    return names, wide[names].dropna(axis=0, how="any")


def diverged_is_worst(df: pd.DataFrame, higher: bool) -> pd.DataFrame:
    """A diverged trial without a score gets the worst possible one (-inf or +inf), so it
    ranks last in its block instead of leaving the ranking. One with a score keeps it:
    where the score is whether a run learned, a diverged run did not learn, like a stuck
    or failed one, and ranking it below them would make "did not diverge" the property
    (a Sigmoid that never learned ranked first on learning-rate robustness for failing
    finitely where the others diverged). The transfer section ranks the same way."""
    gone = df["outcome"].eq("diverged") & df["score"].isna()
    if not gone.any():
        return df
    df = df.copy()
    df.loc[gone, "score"] = -math.inf if higher else math.inf
    return df


def seed_ranks(complete: pd.DataFrame, higher: bool) -> pd.DataFrame:
    """[seed x activation]: each block (seed, setting) ranked (1 = best, ties shared), then
    a seed's ranks averaged over its settings."""
    from actlab.stats import block_ranks

    ranks = block_ranks(complete.to_numpy(dtype=float), higher)
    ranked = pd.DataFrame(ranks, index=complete.index, columns=complete.columns)
    return ranked.groupby(level="seed", sort=True).mean()


def property_verdicts(df: pd.DataFrame, spec, conditions: str = "") -> list[dict[str, Any]]:
    higher = spec.better == "higher"
    df = diverged_is_worst(df, higher)
    activations = list(dict.fromkeys(df["activation"]))
    settings = list(dict.fromkeys(df["setting"]))
    wide = df.pivot_table(
        index=["seed", "setting"], columns="activation", values="score", dropna=False
    ).reindex(columns=activations)
    names, complete = rankable(wide)
    per_seed = seed_ranks(complete, higher) if len(complete) else complete
    test = friedman_nemenyi(per_seed.to_numpy(dtype=float), names, higher_is_better=False)
    groups = assign_groups(test)
    best = test.names[0] if test.names else None
    worst = test.names[-1] if test.names else None
    following = dict(zip(test.names, test.names[1:], strict=False))
    n_settings = max(len(settings), 1)
    smallest = test.smallest_nemenyi_p()
    all_failed = ", ".join(everyone_failed(df))
    alone = failed_where_others_did_not(df)
    rows = []
    by_activation = dict(tuple(df.groupby("activation", sort=False)))
    for act in activations:
        own = by_activation[act]
        mean = per_seed_mean(own, n_settings)
        ranked = act in test.mean_ranks
        regime = own[own["regime"].astype(bool)]
        to_separate = test.blocks_to_separate(act, best) if ranked and act != best else math.nan
        rows.append(
            {
                "property": spec.name,
                "activation": act,
                "better": spec.better,
                "n_seeds": mean.n,
                "n_blocks": test.n_blocks if ranked else 0,
                "blocks": block_label(spec, len(settings), test.n_blocks),
                "mean": mean.mean,
                "ci_low": mean.ci_low,
                "ci_high": mean.ci_high,
                "mean_rank": test.mean_ranks.get(act, math.nan),
                "group": groups.get(act, "not ranked"),
                "test": test_words(test),
                "friedman_p": test.friedman_p,
                "critical_difference": test.critical_difference,
                "nemenyi_p_vs_best": test.nemenyi_p(act, best)
                if ranked and act != best
                else math.nan,
                "nemenyi_p_vs_worst": (
                    test.nemenyi_p(act, worst) if ranked and act != worst else math.nan
                ),
                "nemenyi_p_vs_next": (
                    test.nemenyi_p(act, following[act]) if act in following else math.nan
                ),
                "smallest_p": smallest,
                "seeds_to_separate": to_separate if math.isfinite(to_separate) else math.nan,
                "outcomes": outcome_counts(own["outcome"]),
                "zeros_floored": int(own["floored"].astype(bool).sum()),
                "regime": spec.regime and ", ".join(dict.fromkeys(regime["setting"])),
                "regime_failures": int(regime["outcome"].isin(FAILURES).sum()),
                "regime_runs": len(regime),
                "conditions": conditions,
                "all_failed": all_failed,
                "failed_where_others_did_not": ", ".join(alone.get(act, [])),
            }
        )
    return rows


def failed_where_others_did_not(df: pd.DataFrame) -> dict[str, list[str]]:
    """Per activation, the settings at which it failed in most seeds while another
    activation succeeded in most of its seeds there: a setting the activation cannot
    handle and others can (ELU never fitting sin10, Swish fitting it in 1 of 6 seeds, GELU
    collapsed at depth 50), which an average over the settings hides."""
    failed = df.assign(_failed=df["outcome"].isin(FAILURES))
    share = failed.groupby(["setting", "activation"], sort=False)["_failed"].mean()
    out: dict[str, list[str]] = {}
    for setting, g in share.groupby(level="setting", sort=False):
        g = g.droplevel("setting")
        if not (g < 0.5).any():
            continue
        for act in g[g > 0.5].index:
            out.setdefault(act, []).append(str(setting))
    return out


def everyone_failed(df: pd.DataFrame) -> list[str]:
    """The settings of a sweep at which every trial of every activation failed (stuck,
    failed, diverged or vanished): the ranking there is among failures, and a verdict
    rests on the other settings."""
    if df["setting"].nunique() < 2:
        return []
    failed = df["outcome"].isin(FAILURES)
    return [s for s, g in failed.groupby(df["setting"], sort=False) if len(g) and g.all()]


def assign_groups(test: RankTest) -> dict[str, str]:
    if not test.names:
        return {}
    if not test.separates:
        return {a: "not separated" for a in test.names}
    top, bottom = test.mean_ranks[test.names[0]], test.mean_ranks[test.names[-1]]
    cd = test.critical_difference
    out = {}
    for a, r in test.mean_ranks.items():
        near_best, near_worst = r - top < cd, bottom - r < cd
        out[a] = (
            "not separated"
            if near_best and near_worst
            else "best"
            if near_best
            else "worst"
            if near_worst
            else "middle"
        )
    return out


def per_seed_mean(own: pd.DataFrame, n_settings: int):
    """Mean and t interval over seeds of each seed's mean score over the settings, using
    only seeds with a finite score at every setting."""
    import numpy as np

    seeds = own["seed"].to_numpy()
    scores = own["score"].to_numpy(dtype=float)
    values = []
    for seed in sorted(set(seeds.tolist())):
        x = scores[seeds == seed]
        if len(x) == n_settings and np.isfinite(x).all():
            values.append(float(x.mean()))
    return summarize(values)


def outcome_counts(outcomes: pd.Series) -> str:
    from collections import Counter

    counts = Counter(o for o in outcomes.tolist() if o != "")
    order = ["learned", "ok", "stuck", "failed", "vanished", "diverged"]
    keys = [k for k in order if k in counts] + sorted(set(counts) - set(order))
    return ", ".join(f"{k} {int(counts[k])}" for k in keys)


def test_words(test: RankTest) -> str:
    if test.k < 2:
        return "untested: fewer than two activations ranked"
    if test.n_blocks < 2:
        return f"untested: {test.n_blocks} seed"
    verdict = "differences found" if test.separates else "no difference found"
    return (
        f"Friedman {permutation_p_text(test.friedman_p)} ({verdict}) over {test.n_blocks} "
        "seeds; "
        f"Nemenyi CD = {test.critical_difference:.2f} mean ranks at the "
        f"{SIGNIFICANCE:.0%} level"
    )


def save_verdicts(verdicts: pd.DataFrame, run_path) -> Any:
    """Write verdicts.csv into the run directory (atomically: a reader never sees half)."""
    from pathlib import Path

    path = Path(run_path) / "verdicts.csv"
    tmp = path.with_suffix(".csv.tmp")
    verdicts.to_csv(tmp, index=False, float_format="%.6g")
    tmp.replace(path)
    return path
