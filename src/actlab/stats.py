"""Statistics over seeds: mean, spread and a t-based 95% confidence interval.

With one seed there is no spread to estimate: the interval is NaN and the report says
the numbers carry no error bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

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


# -- paired comparisons --------------------------------------------------------------------------
SIGNIFICANCE = 0.05
# Up to this many pairs the sign-flip test enumerates every assignment (2^16 = 65,536);
# above it, a fixed-seed Monte Carlo sample of this many assignments (deterministic).
EXACT_SIGN_FLIPS = 16
PERMUTATIONS = 20_000
# Exact zeros (a gradient or an error of exactly 0) have no logarithm: they are floored
# here, counted and flagged, never dropped. 1e-45 is below float32's smallest subnormal.
LOG_FLOOR = 1e-45


def sign_flip_p(d) -> float:
    """Two-sided p of the paired sign-flip permutation test on differences `d`: the share
    of the 2^n ways of flipping the differences' signs whose mean is at least as far from
    zero as the observed one. Distribution-free, exact for n <= EXACT_SIGN_FLIPS; a
    constant difference over n pairs gives 2 / 2^n (0.25 for three), never 0."""
    d = np.asarray(d, dtype=float)
    n = d.size
    if n == 0:
        return math.nan
    observed = abs(d.sum())
    if n <= EXACT_SIGN_FLIPS:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        sums = np.abs(signs @ d)
        # relative tolerance: sums equal to the observed one up to rounding count as equal
        return float(np.mean(sums >= observed * (1 - 1e-12)))
    rng = np.random.default_rng(0)
    signs = rng.choice([-1.0, 1.0], size=(PERMUTATIONS, n))
    hits = int(np.sum(np.abs(signs @ d) >= observed * (1 - 1e-12)))
    return (1 + hits) / (1 + PERMUTATIONS)


def smallest_p(n: int) -> float:
    """The smallest two-sided p the sign-flip test can give with n pairs."""
    return 2.0 / 2**n if n > 0 else math.nan


def smallest_adjusted_p(n: int, m: int) -> float:
    """The smallest p a family of m sign-flip tests over n seeds can give after Holm's
    correction: the best case, every pair of seeds agreeing, is m x 2 / 2^n. At or above
    SIGNIFICANCE the family cannot separate anything, whatever the data."""
    return min(1.0, max(m, 1) * smallest_p(n)) if n > 0 else math.nan


def seeds_for_family(m: int, alpha: float = SIGNIFICANCE) -> int:
    """The fewest seeds at which a family of m sign-flip tests (Holm) can reach p < alpha."""
    n = 1
    while smallest_adjusted_p(n, m) >= alpha:
        n += 1
    return n


def tests_reach(tests, what: str) -> str | None:
    """family_reach for a family of paired tests (stats.Paired): its tested members, at the
    most seeds any of them had; None when none was tested or the family can answer."""
    tested = [t for t in tests if t.tested]
    return family_reach(max(t.n for t in tested), len(tested), what) if tested else None


def family_reach(n: int, m: int, what: str) -> str | None:
    """One sentence, said before the family's results, when its tests cannot reach p < 0.05
    at these seeds (None when they can): the floor and the seeds that would be needed."""
    floor = smallest_adjusted_p(n, m)
    if not floor >= SIGNIFICANCE:
        return None
    over = f"Holm's correction over {m} comparisons" if m > 1 else "one comparison"
    return (
        f"With {n} seed{'s' if n != 1 else ''} and {over}, {what} cannot reach p < "
        f"{SIGNIFICANCE:g} whatever the data (the smallest attainable p is {floor:.2g}); "
        f"{seeds_for_family(m)} seeds would be needed, so 'not separated' here says nothing "
        "about the activations."
    )


P_FLOOR = 1e-15


def p_text(p: float) -> str:
    """'p = 0.012', or 'p < 1e-15' below what double precision resolves (a p of 1.1e-16 is
    rounding, not a value)."""
    if math.isnan(p):
        return "p untested"
    return f"p < {P_FLOOR:g}" if p < P_FLOOR else f"p = {p:.2g}"


def holm(p_values) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaNs left out and kept NaN)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = [i for i in np.argsort(p, kind="stable") if not math.isnan(p[i])]
    m, running = len(idx), 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


@dataclass(frozen=True)
class Paired:
    """A - B over the seeds where both have a value, with the sign-flip test's p."""

    mean_diff: float
    ci_low: float  # t interval of the mean difference (descriptive)
    ci_high: float
    p_value: float  # two-sided sign-flip permutation test; NaN with fewer than 2 pairs
    n: int
    p_adjusted: float = math.nan  # after Holm's correction within its family; NaN if none

    TEST = "paired sign-flip permutation test"

    @property
    def tested(self) -> bool:
        return self.n >= 2 and not math.isnan(self.p_value)

    @property
    def p_decisive(self) -> float:
        """The p that decides: the adjusted one when the test belongs to a family."""
        return self.p_value if math.isnan(self.p_adjusted) else self.p_adjusted

    @property
    def significant(self) -> bool:
        return self.tested and self.p_decisive < SIGNIFICANCE


def paired_comparison(a, b) -> Paired:
    """Sign-flip test of a against b (aligned by seed; pairs with a non-finite side dropped)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    s = summarize(d)
    if s.n < 2:
        return Paired(s.mean, math.nan, math.nan, math.nan, s.n)
    return Paired(s.mean, s.ci_low, s.ci_high, sign_flip_p(d), s.n)


def paired_by_seed(table: pd.DataFrame, column: str, a: str, b: str) -> Paired:
    """Paired comparison of activations a and b on `column` of a per-trial table (columns
    activation, seed, column), aligned by seed."""
    x = table[table["activation"] == a].set_index("seed")[column]
    y = table[table["activation"] == b].set_index("seed")[column]
    both = x.to_frame("a").join(y.to_frame("b"), how="inner")
    return paired_comparison(both["a"], both["b"])


def with_holm(family: list[Paired]) -> list[Paired]:
    """The family's comparisons with their Holm-adjusted p-values filled in."""
    from dataclasses import replace

    adjusted = holm([p.p_value for p in family])
    return [replace(p, p_adjusted=q) for p, q in zip(family, adjusted, strict=True)]


def test_text(p: Paired, family: str = "") -> str:
    """'sign-flip test over n seeds, p = .. (Holm-adjusted over FAMILY: ..)'."""
    text = f"{p.TEST} over {p.n} seeds, {p_text(p.p_value)}"
    if not math.isnan(p.p_adjusted) and family:
        text += f", Holm-adjusted over {family} {p_text(p.p_adjusted)}"
    return text


def versus_runner_up(
    best: str, runner: str, paired: Paired, detail: str = "", family: str = ""
) -> str:
    """'BEST is better than RUNNER (...)', 'BEST and RUNNER are not separated by n seeds
    (...)', or why the difference cannot be tested; `detail` (e.g. the difference with its
    interval) goes before the test's numbers."""
    if not paired.tested:
        return f"the difference from {runner} cannot be tested ({paired.n} paired seed(s))"
    inside = f"{detail + '; ' if detail else ''}{test_text(paired, family)}"
    if paired.significant:
        return f"{best} is better than {runner} ({inside})"
    return f"{best} and {runner} are not separated by {paired.n} seeds ({inside})"


# -- ranking several activations over blocks (Demšar 2006) ----------------------------------------
@dataclass(frozen=True)
class RankTest:
    """Friedman's test over blocks (seeds, or seed x setting), then Nemenyi's post-hoc test
    on the mean ranks (Demšar, "Statistical comparisons of classifiers over multiple data
    sets", JMLR 2006). Rank 1 is the best; tied scores share the mean of their ranks."""

    names: list[str]  # best mean rank first
    mean_ranks: dict[str, float]
    n_blocks: int
    friedman_p: float  # permutation p of Friedman's statistic (ranks shuffled within blocks)
    critical_difference: float  # Nemenyi: mean ranks this far apart differ at the 5% level
    alpha: float = SIGNIFICANCE

    TEST = "Friedman + Nemenyi"

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def separates(self) -> bool:
        """Whether the omnibus test found any difference at all (the post-hoc test's gate)."""
        return self.k > 1 and self.n_blocks > 1 and self.friedman_p < self.alpha

    def nemenyi_p(self, a: str, b: str) -> float:
        """Nemenyi's p for the difference of two mean ranks (family-wise over all pairs)."""
        if a == b or self.k < 2 or self.n_blocks < 1:
            return math.nan
        from scipy.stats import studentized_range

        se = math.sqrt(self.k * (self.k + 1) / (6 * self.n_blocks))
        z = abs(self.mean_ranks[a] - self.mean_ranks[b]) / se
        return float(min(1.0, studentized_range.sf(z * math.sqrt(2), self.k, np.inf)))

    def smallest_nemenyi_p(self) -> float:
        """The smallest Nemenyi p these blocks allow: the best and the worst activation
        ranked first and last in every block (a mean-rank gap of k - 1)."""
        if self.k < 2 or self.n_blocks < 1:
            return math.nan
        from scipy.stats import studentized_range

        se = math.sqrt(self.k * (self.k + 1) / (6 * self.n_blocks))
        z = (self.k - 1) / se
        return float(min(1.0, studentized_range.sf(z * math.sqrt(2), self.k, np.inf)))

    def different(self, a: str, b: str) -> bool:
        if not self.separates or a == b:
            return False
        return abs(self.mean_ranks[a] - self.mean_ranks[b]) >= self.critical_difference

    def blocks_to_separate(self, a: str, b: str) -> float:
        """Blocks needed for the observed mean-rank difference of a and b to reach Nemenyi's
        critical difference (if the mean ranks stayed as observed); inf when they are equal."""
        gap = abs(self.mean_ranks[a] - self.mean_ranks[b])
        return blocks_for_gap(gap, self.k, self.alpha)


def permutation_p_text(p: float) -> str:
    """'p = 0.012', or 'p < 0.0001' when no shuffle reached the observed statistic: the
    permutation p's floor, 1 / (1 + PERMUTATIONS), is its resolution, not its value."""
    if p <= 1.5 / (1 + PERMUTATIONS):
        return f"p < {10 ** math.ceil(math.log10(2 / (1 + PERMUTATIONS))):g}"
    return f"p = {p:.2g}"


@cache  # the studentized range's quantile is a numerical inversion: ~5 ms a call
def nemenyi_q(k: int, alpha: float = SIGNIFICANCE) -> float:
    """q_alpha of Demšar's Table 5: the studentized range quantile over sqrt(2)."""
    from scipy.stats import studentized_range

    return float(studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def critical_difference(k: int, n_blocks: int, alpha: float = SIGNIFICANCE) -> float:
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6 * n_blocks))


def friedman_floor(n: int, k: int) -> float:
    """The smallest p Friedman's permutation test can give over n blocks of k: every block
    ranking the activations alike, which k! of the (k!)^n shuffles match (0.0625 for two
    activations over five seeds, so two need six)."""
    return float(math.factorial(k)) ** (1 - n) if k >= 2 and n >= 1 else math.nan


def blocks_for_friedman(k: int, alpha: float = SIGNIFICANCE) -> int:
    """The fewest blocks at which Friedman's permutation test can reach p < alpha."""
    n = 2
    while not friedman_floor(n, k) < alpha:
        n += 1
    return n


def blocks_for_gap(gap: float, k: int, alpha: float = SIGNIFICANCE) -> float:
    """The fewest blocks at which a mean-rank gap reaches the critical difference."""
    if k < 2 or not gap > 0:
        return math.inf
    return float(math.ceil(nemenyi_q(k, alpha) ** 2 * k * (k + 1) / (6 * gap**2) - 1e-9))


def block_ranks(scores: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Ranks within each row (block), 1 = best, ties sharing their mean rank; +-inf scores
    rank at their end (a diverged run below every finite one)."""
    from scipy.stats import rankdata

    return rankdata(-scores if higher_is_better else scores, axis=1, method="average")


def friedman_statistic(ranks: np.ndarray) -> float:
    """Friedman's chi-square with the correction for ties (0 when every block is all ties)."""
    n, k = ranks.shape
    chi2 = float(friedman_uncorrected(ranks.sum(axis=0), n, k))
    ties = 0.0
    for row in ranks:
        _, counts = np.unique(row, return_counts=True)
        ties += float(np.sum(counts**3 - counts))
    correction = 1.0 - ties / (n * (k**3 - k))
    return 0.0 if correction <= 1e-12 else max(chi2 / correction, 0.0)


def friedman_nemenyi(
    scores: np.ndarray, names: list[str], higher_is_better: bool, alpha: float = SIGNIFICANCE
) -> RankTest:
    """Rank k activations (columns) over n complete blocks (rows) of scores.

    Friedman's p comes from PERMUTATIONS random shuffles of the ranks within each block
    (fixed seed, so it is reproducible), which stays valid for few blocks and many ties
    where the chi-square approximation does not; it is never 0."""
    scores = np.asarray(scores, dtype=float)
    n, k = scores.shape
    if n == 0 or k == 0:
        return RankTest([], {}, 0, math.nan, math.nan, alpha)
    ranks = block_ranks(scores, higher_is_better)
    mean = ranks.mean(axis=0)
    mean_ranks = {a: float(r) for a, r in zip(names, mean, strict=True)}
    order = [names[i] for i in np.argsort(mean, kind="stable")]
    if k < 2 or n < 2:
        return RankTest(order, mean_ranks, n, math.nan, math.nan, alpha)
    if friedman_statistic(ranks) == 0:  # every block all ties, or no difference at all
        p = 1.0
    else:
        # Shuffling within blocks keeps each block's ties, so the tie correction is the
        # same for every shuffle and the uncorrected statistic orders them alike.
        threshold = friedman_uncorrected(ranks.sum(axis=0), n, k) * (1 - 1e-12)
        rng = np.random.default_rng(0)
        hits = 0
        for _ in range(PERMUTATIONS // 500):  # 500 shuffles at a time: bounded memory
            order_ = np.argsort(rng.random((500, n, k)), axis=2)
            shuffled = np.take_along_axis(np.broadcast_to(ranks, order_.shape), order_, axis=2)
            hits += int(np.sum(friedman_uncorrected(shuffled.sum(axis=1), n, k) >= threshold))
        p = (1 + hits) / (1 + PERMUTATIONS)
    return RankTest(order, mean_ranks, n, p, critical_difference(k, n, alpha), alpha)


def friedman_uncorrected(rank_sums, n: int, k: int):
    """Friedman's chi-square from the rank sums (last axis: the k activations)."""
    sums = np.asarray(rank_sums, dtype=float)
    return 12.0 / (n * k * (k + 1)) * np.sum(sums**2, axis=-1) - 3.0 * n * (k + 1)


def log10_floored(values) -> tuple[np.ndarray, int]:
    """log10 of non-negative values with exact zeros floored at LOG_FLOOR (returned with
    their count, for the caller to flag); NaN and inf pass through."""
    x = np.asarray(values, dtype=float)
    zeros = int(np.sum(x == 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.where(x == 0, LOG_FLOOR, x)), zeros
