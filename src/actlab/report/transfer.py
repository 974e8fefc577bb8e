"""Does the toy verdict transfer? The ranking of the activations by each property of the
run's other studies (toy networks) against their ranking by MNIST-1D accuracy in each real
architecture, and the architectures against each other.

A ranking per property: within each block (a seed, or a seed at one setting) the
activations are ranked (1 = best, ties shared; a diverged run is the worst outcome, below
every run that did not diverge, in the toy studies and MNIST-1D alike), the ranks averaged
over a seed's blocks, then over seeds. Two rankings are compared by Kendall's tau-b over the
activations both rank (+1 the same order, -1 reversed, 0 unrelated), with two measures of
uncertainty that answer different questions:

- a permutation test over activations: one ranking's seed-mean ranks shuffled among the
  activations (every order up to EXACT_UP_TO activations, else PERMUTATIONS shuffles),
  Holm-adjusted over the section's correlations; the activations are the sample, so it
  asks whether the relation would hold for other activations like these;
- a 95% percentile interval from a bootstrap over seeds, the activations fixed: the seeds
  resampled with replacement, the same resample for both properties (within a seed every
  study starts from the same random numbers); it covers the seed noise of these
  activations' ranks only.

A relation is stated only where both say so.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

BOOTSTRAP = 2000
TARGET_PREFIX = "MNIST-1D accuracy ("
# Fewer distinct bootstrap values than this: the interval is a coarse step, and is shown as
# the values it takes, not as a continuous interval.
COARSE = 20
# Up to this many activations the permutation test enumerates every order (8! = 40,320);
# above it, a fixed-seed sample of PERMUTATIONS shuffles (deterministic).
EXACT_UP_TO = 8
PERMUTATIONS = 20_000
ALPHA = 0.05


def seed_ranks(scores, prop: str, better: str, activations: list[str], seeds: list[int]):
    """[seeds, activations] mean within-block rank of one property (NaN where missing). A
    run whose outcome is "diverged" and has no score scores the worst value there is
    (-inf where higher is better, +inf where lower is): ranked below every run that did
    not diverge, ties among the diverged shared. One with a score keeps it, as in the
    verdicts (report/verdicts.py diverged_is_worst): a share learned of 0 ties with a
    stuck run's."""
    from scipy.stats import rankdata

    own = scores[scores["property"] == prop]
    if "outcome" in own:
        worst = -math.inf if better == "higher" else math.inf
        gone = own["outcome"].eq("diverged") & own["score"].isna()
        own = own.assign(score=own["score"].where(~gone, worst))
    out = np.full((len(seeds), len(activations)), np.nan)
    col = {a: j for j, a in enumerate(activations)}
    row = {s: i for i, s in enumerate(seeds)}
    sums = np.zeros_like(out)
    counts = np.zeros_like(out)
    for (seed, _), block in own.groupby(["seed", "setting"], sort=False):
        block = block[block["score"].notna() & block["activation"].isin(col)]
        if len(block) < 2 or seed not in row:
            continue
        values = block["score"].to_numpy(dtype=float)
        ranks = rankdata(-values if better == "higher" else values)
        idx = [col[a] for a in block["activation"]]
        sums[row[seed], idx] += ranks
        counts[row[seed], idx] += 1
    with np.errstate(invalid="ignore"):
        out = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out


def diverged_runs(scores, prop: str) -> int:
    """How many of a property's rows are diverged runs (each ranked last in its block)."""
    if "outcome" not in scores:
        return 0
    own = scores[scores["property"] == prop]
    return int((own["outcome"] == "diverged").sum())


def kendall_tau_b(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Tau-b of each row pair of a and b ([n, k]); NaN entries leave their pairs out."""
    da = a[:, :, None] - a[:, None, :]
    db = b[:, :, None] - b[:, None, :]
    k = a.shape[1]
    upper = np.triu(np.ones((k, k), dtype=bool), 1)
    sa, sb = np.sign(da), np.sign(db)
    valid = ~(np.isnan(sa) | np.isnan(sb)) & upper
    sa, sb = np.where(valid, sa, 0.0), np.where(valid, sb, 0.0)
    s = (sa * sb).sum(axis=(1, 2))
    n1 = (sa != 0).sum(axis=(1, 2))
    n2 = (sb != 0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n1 > 0) & (n2 > 0), s / np.sqrt(n1 * n2), np.nan)


def nan_mean(x: np.ndarray, axis: int) -> np.ndarray:
    counts = (~np.isnan(x)).sum(axis=axis)
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, np.nansum(x, axis=axis) / np.maximum(counts, 1), np.nan)


def permutation_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p of tau-b(a, b) with the activations as the sample: the share of the
    orders of b over the activations whose |tau-b| is at least the observed one (exact up
    to EXACT_UP_TO activations; above, (1 + hits) / (1 + PERMUTATIONS) from a fixed-seed
    sample). NaN with fewer than 2 activations or an undefined tau."""
    n = a.size
    if n < 2:
        return math.nan
    observed = kendall_tau_b(a[None], b[None])[0]
    if math.isnan(observed):
        return math.nan
    orders = shuffles(n)
    # tau-b's denominator does not change when b is reordered: only the concordance sum
    sa = np.triu(np.sign(a[:, None] - a[None, :]), 1)
    sb = np.sign(b[:, None] - b[None, :])
    n1, n2 = np.count_nonzero(sa), np.count_nonzero(np.triu(sb, 1))
    threshold = abs(observed) * math.sqrt(n1 * n2) * (1 - 1e-12)  # equal up to rounding
    hits = 0
    for start in range(0, len(orders), 8192):
        chunk = orders[start : start + 8192]
        moved = sb[chunk[:, :, None], chunk[:, None, :]]
        hits += int(np.sum(np.abs((moved * sa).sum(axis=(1, 2))) >= threshold))
    if n <= EXACT_UP_TO:
        return hits / len(orders)
    return (1 + hits) / (1 + PERMUTATIONS)


@functools.cache
def shuffles(n: int) -> np.ndarray:
    """The orders the permutation test tries: all n! up to EXACT_UP_TO, else a fixed-seed
    sample of PERMUTATIONS."""
    if n <= EXACT_UP_TO:
        from itertools import permutations

        return np.array(list(permutations(range(n))))
    rng = np.random.default_rng(0)
    return rng.permuted(np.tile(np.arange(n), (PERMUTATIONS, 1)), axis=1)


def smallest_permutation_p(n: int) -> float:
    """The smallest p the permutation test can give over n activations (no ties)."""
    if n < 2:
        return math.nan
    return 2 / math.factorial(n) if n <= EXACT_UP_TO else 1 / (1 + PERMUTATIONS)


def compare(ra: np.ndarray, rb: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """tau of the seed-mean rankings over the activations both rank (`n`, `kept`: their
    indices), the permutation test's p over those activations (`p`), and the bootstrap over
    seeds: its 95% percentile interval (`low`, `high`) and how many distinct values it took
    (`distinct`; `coarse` when fewer than COARSE)."""
    ma, mb = nan_mean(ra, 0), nan_mean(rb, 0)
    both = ~np.isnan(ma) & ~np.isnan(mb)
    point = kendall_tau_b(ma[None], mb[None])[0]
    n = ra.shape[0]
    low = high = math.nan
    distinct = 0
    if n >= 2:
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, n, size=(BOOTSTRAP, n))
        taus = kendall_tau_b(nan_mean(ra[picks], 1), nan_mean(rb[picks], 1))
        taus = taus[~np.isnan(taus)]
        if taus.size:
            low, high = (float(v) for v in np.percentile(taus, [2.5, 97.5]))
            distinct = int(np.unique(np.round(taus, 12)).size)
    return {
        "tau": float(point),
        "low": low,
        "high": high,
        "n": int(both.sum()),
        "kept": np.flatnonzero(both).tolist(),
        "p": permutation_p(ma[both], mb[both]),
        "p_holm": math.nan,
        "distinct": distinct,
        "coarse": 0 < distinct < COARSE,
    }


def bootstrap_text(c: dict[str, Any]) -> str:
    """'[low, high]', or for a coarse bootstrap 'low to high, k values' (its 2.5 and 97.5
    percentiles among only k distinct values: a step, not a continuous interval)."""
    if math.isnan(c["low"]):
        return "–"
    if c.get("coarse"):
        values = "1 value" if c["distinct"] == 1 else f"{c['distinct']} values"
        if c["low"] == c["high"]:
            return f"{c['low']:+.2f} only, {values}"
        return f"{c['low']:+.2f} to {c['high']:+.2f}, {values}"
    return f"[{c['low']:+.2f}, {c['high']:+.2f}]"


def p_cell(c: dict[str, Any]) -> str:
    if math.isnan(c["p"]):
        return "–"
    return f"{c['p']:.2g} (Holm {c['p_holm']:.2g})"


def left_out(c: dict[str, Any], activations: list[str], ma, mb, name_a: str, name_b: str) -> str:
    """The activations a tau leaves out and why: no score at all in one property."""
    parts = []
    for j, act in enumerate(activations):
        if j in c["kept"]:
            continue
        missing = [p for p, m in ((name_a, ma), (name_b, mb)) if math.isnan(m[j])]
        parts.append(f"{act} (no score in {' or '.join(missing)})")
    return "; ".join(parts) if parts else "none"


def transfer_section(parts: dict[str, Any], activations: list[str], verdicts) -> dict | None:
    """The section (title, anchor, markdown, figures), or None without MNIST-1D results or
    with nothing to compare them with."""
    from actlab.report.parts import anchor
    from actlab.stats import holm

    if "mnist1d" not in parts:
        return None
    specs, frames = {}, []
    for part in parts.values():
        specs.update(part.specs)
        if part.scores is not None and not part.scores.empty:
            frames.append(part.scores)
    import pandas as pd

    scores = pd.concat(frames, ignore_index=True) if frames else None
    if scores is None:
        return None
    present = [p for p in specs if (scores["property"] == p).any()]
    targets = [p for p in present if p.startswith(TARGET_PREFIX)]
    toys = [p for p in present if not p.startswith(TARGET_PREFIX)]
    if not targets or (not toys and len(targets) < 2):
        return None
    seeds = sorted(int(s) for s in scores["seed"].unique())
    ranks = {p: seed_ranks(scores, p, specs[p].better, activations, seeds) for p in targets + toys}
    means = {p: nan_mean(r, 0) for p, r in ranks.items()}

    def arch(p: str) -> str:
        return p[len(TARGET_PREFIX) : -1]

    # Every correlation of the section, then Holm over their permutation p-values.
    pairs = [(toy, t) for toy in toys for t in targets]
    pairs += [(a, b) for i, a in enumerate(targets) for b in targets[i + 1 :]]
    found_c = {pair: compare(ranks[pair[0]], ranks[pair[1]]) for pair in pairs}
    for c, q in zip(found_c.values(), holm([c["p"] for c in found_c.values()]), strict=True):
        c["p_holm"] = q
    family = len(pairs)

    title = "Does the toy verdict transfer?"
    lines = [
        "**Question.** Do the rankings from the small networks of the other studies, and "
        "the ranking in one real architecture, predict the ranking in another?",
        "",
        "**Method.** Per property, the activations' mean rank (within each seed and "
        "setting, 1 = best, then over seeds). A diverged run is the worst outcome: it ranks "
        "below every run that did not diverge in its block, in the toy studies and MNIST-1D "
        "alike; an activation with no score at all in a property is left out of that "
        "property's correlations (n below counts the activations each uses). Two rankings "
        "are compared by Kendall's tau-b (+1: the same order, −1: reversed, 0: unrelated) "
        "with two measures of uncertainty that answer different questions. *p over "
        "activations*: a permutation test with the activations as the sample (one ranking "
        f"shuffled among the activations: every order up to {EXACT_UP_TO} activations, "
        f"else {PERMUTATIONS:,} shuffles), Holm-adjusted over the section's {family} "
        "correlations; it asks whether the relation would hold for other activations like "
        f"these. *Seed bootstrap*: a 95% percentile interval from {BOOTSTRAP} resamples of "
        f"the {len(seeds)} seeds (the same resample for both properties) with these "
        "activations fixed; it covers only the seed noise of their ranks, not other "
        f"activations. A relation is stated only where the Holm-adjusted p < {ALPHA:g} and "
        "the seed interval excludes 0. Where the bootstrap took fewer than "
        f"{COARSE} distinct values (few seeds, or ranks that barely move between seeds) it "
        "is shown as 'a to b, k values': its 2.5 and 97.5 percentiles among k values, a "
        "coarse step rather than a continuous interval.",
        "",
    ]
    diverged = [
        f"{p}: {diverged_runs(scores, p)}" for p in targets + toys if diverged_runs(scores, p)
    ]
    if diverged:
        lines += ["Diverged runs, each ranked last in its block: " + "; ".join(diverged) + ".", ""]
    if len(seeds) < 2:
        lines += ["*One seed: no seed bootstrap; the correlations below are single samples.*", ""]
    head = "| n | τ | p over activations | seed bootstrap 95% | left out |"
    found: list[str] = []
    if toys:
        lines += [
            "| property (toy networks) | MNIST-1D architecture " + head,
            "|---" * 7 + "|",
        ]
        for toy in toys:
            for t in targets:
                c = found_c[(toy, t)]
                out = left_out(c, activations, means[toy], means[t], toy, t)
                lines.append(f"| {toy} | {arch(t)} | {row_cells(c)} | {out} |")
                found += relation(toy, f"MNIST-1D accuracy in the {arch(t)}", c, len(seeds))
        lines.append("")
    if len(targets) > 1:
        lines += ["| architectures " + head, "|---" * 6 + "|"]
        for i, a in enumerate(targets):
            for b in targets[i + 1 :]:
                c = found_c[(a, b)]
                out = left_out(c, activations, means[a], means[b], arch(a), arch(b))
                lines.append(f"| {arch(a)} vs {arch(b)} | {row_cells(c)} | {out} |")
                found += relation(f"the {arch(a)}'s ranking", f"the {arch(b)}'s", c, len(seeds))
        lines.append("")
    lines += ["**What the data says.**", ""]
    largest_n = max((c["n"] for c in found_c.values()), default=0)
    if found:
        lines += [f"- {s}" for s in found]
    else:
        lines += [f"- {s}" for s in nothing_stated(len(seeds), largest_n, family)]
    lines += [f"- {s}" for s in shifts(ranks, targets, activations, arch)]
    lines += [f"- {s}" for s in disagreements(verdicts, targets, arch)]
    return {"title": title, "anchor": anchor(title), "markdown": "\n".join(lines), "figures": []}


def nothing_stated(seeds: int, n: int, family: int) -> list[str]:
    """Why no relation is stated: too few seeds for the bootstrap, a permutation test that
    cannot reach ALPHA at n activations after Holm, or neither test agreeing."""
    out = []
    if seeds < MIN_SEEDS:
        out.append(
            f"With {seeds} seed(s) no relation is stated: the seed bootstrap takes at least "
            f"{MIN_SEEDS} seeds."
        )
    floor = min(1.0, family * smallest_permutation_p(n)) if n >= 2 else math.nan
    if not floor < ALPHA:
        out.append(
            f"With {n} activations and Holm's correction over {family} correlation(s) the "
            f"permutation test over activations cannot reach p < {ALPHA:g} whatever the data "
            + (f"(its smallest adjusted p is {floor:.2g})" if floor == floor else "(none ranked)")
            + ": more activations are needed to state a relation that generalises."
        )
    if not out:
        out.append(
            f"No correlation has both a Holm-adjusted p < {ALPHA:g} over activations and a "
            "seed interval that excludes 0: at these activations and seeds no ranking is "
            "shown to predict another (nor shown not to)."
        )
    return out


def row_cells(c: dict[str, Any]) -> str:
    tau = "–" if math.isnan(c["tau"]) else f"{c['tau']:+.2f}"
    return f"{c['n']} | {tau} | {p_cell(c)} | {bootstrap_text(c)}"


# Fewer seeds make a bootstrap interval too coarse to state a relation on, and fewer
# activations a ranking too short to correlate.
MIN_SEEDS, MIN_ACTIVATIONS = 5, 3


def relation(a: str, b: str, c: dict[str, Any], seeds: int) -> list[str]:
    """A sentence where both tests say so: the permutation test over activations
    (Holm-adjusted p < ALPHA) and the seed bootstrap (its interval excludes 0)."""
    if math.isnan(c["low"]) or seeds < MIN_SEEDS or c["n"] < MIN_ACTIVATIONS:
        return []
    if not c["p_holm"] < ALPHA:
        return []
    a = a[:1].upper() + a[1:]
    evidence = (
        f"τ = {c['tau']:+.2f} over {c['n']} activations (permutation p over activations "
        f"{c['p']:.2g}, Holm-adjusted {c['p_holm']:.2g}; seed bootstrap "
        f"{bootstrap_text(c)})"
    )
    if c["low"] > 0 and c["tau"] > 0:
        return [f"{a} agrees with {b}: {evidence}."]
    if c["high"] < 0 and c["tau"] < 0:
        return [f"{a} is reversed in {b}: {evidence}."]
    return []


SHIFT = 3  # places in the ranking that count as a large move between architectures


def shifts(ranks: dict, targets: list[str], activations: list[str], arch) -> list[str]:
    """The first architecture's order against each other's, in places (descriptive): the
    top activation of each, and the activations that move SHIFT places or more."""
    from scipy.stats import rankdata

    if len(targets) < 2:
        return []
    order = {}
    for t in targets:
        means = nan_mean(ranks[t], 0)
        keep = ~np.isnan(means)
        places = np.full(len(activations), np.nan)
        places[keep] = rankdata(means[keep], method="min")
        order[t] = places
    first, out = targets[0], []
    tops = {
        arch(t): [a for a, p in zip(activations, order[t], strict=True) if p == 1] for t in targets
    }
    if len({tuple(v) for v in tops.values()}) > 1:
        out.append(
            "The top activation by mean rank differs between architectures (descriptive): "
            + "; ".join(f"{a} {', '.join(v)}" for a, v in tops.items())
            + "."
        )
    for t in targets[1:]:
        moved = [
            f"{a} ({int(p)} in the {arch(first)}, {int(q)} in the {arch(t)})"
            for a, p, q in zip(activations, order[first], order[t], strict=True)
            if not (np.isnan(p) or np.isnan(q)) and abs(p - q) >= SHIFT
        ]
        if moved:
            out.append(
                f"Places that move by {SHIFT} or more between the {arch(first)} and the "
                f"{arch(t)} (descriptive): " + "; ".join(moved) + "."
            )
    return out


def disagreements(verdicts, targets: list[str], arch) -> list[str]:
    """Where the architectures' verdicts (the best and worst groups of verdicts.csv)
    disagree, in words."""
    if verdicts is None or verdicts.empty:
        return []
    own = verdicts[verdicts["property"].isin(targets)]
    groups = {
        t: own[own["property"] == t].set_index("activation")["group"].to_dict() for t in targets
    }
    out = []
    clashes = []
    for i, a in enumerate(targets):
        for b in targets[i + 1 :]:
            for act, g in groups[a].items():
                h = groups[b].get(act)
                if {g, h} == {"best", "worst"}:
                    clashes.append(
                        f"{act} is in the {g} group in the {arch(a)} and the {h} group in the "
                        f"{arch(b)}"
                    )
    separated = any(g in ("best", "worst") for d in groups.values() for g in d.values())
    if clashes:
        out.append("The verdicts disagree: " + "; ".join(clashes) + ".")
    elif separated:
        out.append(
            "No activation is in the best group of one architecture and the worst of another."
        )
    else:
        out.append(
            "No architecture's test separated a best or worst group, so no disagreement "
            "between the verdicts can be stated."
        )
    return out
