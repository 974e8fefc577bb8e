"""Statistics over seeds: mean, spread and a t-based 95% confidence interval.

With one seed there is no spread to estimate: the interval is NaN and the report says
the numbers carry no error bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, df=n - 1))


def summarize(values, confidence: float = CONFIDENCE) -> Summary:
    """Mean, sample standard deviation and t interval of the finite values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Summary(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Summary(mean, math.nan, 1, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = t_quantile(n, confidence) * std / math.sqrt(n)
    return Summary(mean, std, n, mean - half, mean + half)


def describe(df: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """One row per group: mean, std, n, ci_low, ci_high of `value`."""
    rows = []
    for keys, group in df.groupby(by, sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        s = summarize(group[value])
        rows.append(
            {
                **dict(zip(by, keys, strict=True)),
                "mean": s.mean,
                "std": s.std,
                "n": s.n,
                "ci_low": s.ci_low,
                "ci_high": s.ci_high,
            }
        )
    return pd.DataFrame(rows)


# -- paired comparisons and rankings ----------------------------------------------------------
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Paired:
    """A - B over the seeds where both have a value."""

    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float  # two-sided paired t-test; NaN with fewer than 2 pairs
    n: int

    @property
    def tested(self) -> bool:
        return self.n >= 2 and not math.isnan(self.p_value)

    @property
    def significant(self) -> bool:
        return self.tested and self.p_value < SIGNIFICANCE


def paired_comparison(a, b) -> Paired:
    """Paired t-test of a against b (aligned by seed; pairs with a non-finite side dropped)."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    s = summarize(d)
    if s.n < 2:
        return Paired(s.mean, math.nan, math.nan, math.nan, s.n)
    if s.std == 0:  # identical differences: no noise to test against
        p = 1.0 if s.mean == 0 else 0.0
    else:
        p = float(stats.ttest_rel(a[keep], b[keep]).pvalue)
    return Paired(s.mean, s.ci_low, s.ci_high, p, s.n)


@dataclass(frozen=True)
class Ranking:
    """Activations ordered best first for one property, with who is tied with the best
    and the worst (a difference not significant in a paired test over seeds is a tie)."""

    order: list[str]
    means: dict[str, float]
    best: list[str]  # the best and every activation tied with it
    worst: list[str]  # the worst and every activation tied with it
    tested: bool  # False with one seed: no comparison could be tested
    p_values: dict[str, float]  # each activation against the single best


def rank(scores: pd.DataFrame, better: str) -> Ranking:
    """Rank activations on per-seed scores (columns activation, seed, score)."""
    wide = scores.pivot_table(
        index="seed", columns="activation", values="score", aggfunc="mean", dropna=False
    )
    means = {
        a: float(np.nanmean(wide[a])) if np.isfinite(wide[a]).any() else math.nan
        for a in wide.columns
    }
    valid = [a for a in wide.columns if not math.isnan(means[a])]
    sign = -1.0 if better == "higher" else 1.0
    order = sorted(valid, key=lambda a: sign * means[a])
    if not order:
        return Ranking([], means, [], [], False, {})
    top, bottom = order[0], order[-1]
    vs_top = {a: paired_comparison(wide[a], wide[top]) for a in order}
    vs_bottom = {a: paired_comparison(wide[a], wide[bottom]) for a in order}
    # An untested pair (too few seeds with values) cannot be called different: it ties.
    tested = any(p.tested for a, p in vs_top.items() if a != top)
    best = [a for a in order if a == top or not vs_top[a].significant]
    worst = [a for a in order if a == bottom or not vs_bottom[a].significant]
    if not tested:  # no test possible: name only the single best and worst
        best, worst = [top], [bottom]
    return Ranking(order, means, best, worst, tested, {a: vs_top[a].p_value for a in order})


def versus_runner_up(best: str, paired: Paired, detail: str = "") -> str:
    """'BEST is better than / tied with the runner-up (...)', or why it cannot be tested;
    `detail` (e.g. the difference with its interval) goes before the test's numbers."""
    if not paired.tested:
        return f"the difference cannot be tested ({paired.n} paired seed(s))"
    word = "better than" if paired.significant else "tied with"
    test = f"paired t-test over {paired.n} seeds, p = {paired.p_value:.2g}"
    return f"{best} is {word} the runner-up ({detail + ', ' if detail else ''}{test})"
