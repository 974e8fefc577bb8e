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
