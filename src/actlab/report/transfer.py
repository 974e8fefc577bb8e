"""Does the toy verdict transfer? The ranking of the activations by each property of the
run's other studies (toy networks) against their ranking by MNIST-1D accuracy in each real
architecture, and the architectures against each other.

A ranking per property: within each block (a seed, or a seed at one setting) the
activations are ranked (1 = best, ties shared), the ranks averaged over a seed's blocks,
then over seeds. Two rankings are compared by Kendall's tau-b over the activations both
rank (+1 the same order, -1 reversed, 0 unrelated), with a 95% percentile interval from
a bootstrap over seeds: the seeds are resampled with replacement, the same resample for
both properties (within a seed every study starts from the same random numbers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

BOOTSTRAP = 2000
TARGET_PREFIX = "MNIST-1D accuracy ("


def seed_ranks(scores, prop: str, better: str, activations: list[str], seeds: list[int]):
    """[seeds, activations] mean within-block rank of one property (NaN where missing)."""
    from scipy.stats import rankdata

    own = scores[scores["property"] == prop]
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


def compare(ra: np.ndarray, rb: np.ndarray, seed: int = 0) -> dict[str, float]:
    """tau of the seed-mean rankings, and its bootstrap interval over seeds."""
    point = kendall_tau_b(nan_mean(ra, 0)[None], nan_mean(rb, 0)[None])[0]
    n = ra.shape[0]
    low = high = math.nan
    if n >= 2:
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, n, size=(BOOTSTRAP, n))
        taus = kendall_tau_b(nan_mean(ra[picks], 1), nan_mean(rb[picks], 1))
        taus = taus[~np.isnan(taus)]
        if taus.size:
            low, high = (float(v) for v in np.percentile(taus, [2.5, 97.5]))
    both = ~np.isnan(nan_mean(ra, 0)) & ~np.isnan(nan_mean(rb, 0))
    return {"tau": float(point), "low": low, "high": high, "n": int(both.sum())}


def tau_text(c: dict[str, float]) -> str:
    if math.isnan(c["tau"]):
        return "–"
    text = f"{c['tau']:+.2f}"
    if not math.isnan(c["low"]):
        text += f" [{c['low']:+.2f}, {c['high']:+.2f}]"
    return text


def transfer_section(parts: dict[str, Any], activations: list[str], verdicts) -> dict | None:
    """The section (title, anchor, markdown, figures), or None without MNIST-1D results or
    with nothing to compare them with."""
    from actlab.report.parts import anchor

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

    def arch(p: str) -> str:
        return p[len(TARGET_PREFIX) : -1]

    title = "Does the toy verdict transfer?"
    lines = [
        "**Question.** Do the rankings from the small networks of the other studies, and "
        "the ranking in one real architecture, predict the ranking in another?",
        "",
        "**Method.** Per property, the activations' mean rank (within each seed and "
        "setting, 1 = best, then over seeds); two rankings are compared by Kendall's tau-b "
        "(+1: the same order, −1: reversed, 0: unrelated) with a 95% percentile interval "
        f"from {BOOTSTRAP} bootstrap resamples of the {len(seeds)} seeds (the same "
        "resample for both properties). An interval that holds 0 does not show a relation.",
        "",
    ]
    if len(seeds) < 2:
        lines += ["*One seed: no intervals; the correlations below are single samples.*", ""]
    found: list[str] = []
    if toys:
        lines += [
            "| property (toy networks) | "
            + " | ".join(f"τ with {arch(t)}" for t in targets)
            + " |",
            "|---" * (len(targets) + 1) + "|",
        ]
        for toy in toys:
            cells = []
            for t in targets:
                c = compare(ranks[toy], ranks[t])
                cells.append(tau_text(c))
                found += relation(toy, f"MNIST-1D accuracy in the {arch(t)}", c, len(seeds))
            lines.append(f"| {toy} | " + " | ".join(cells) + " |")
        lines.append("")
    if len(targets) > 1:
        lines += ["| architectures | τ |", "|---|---|"]
        for i, a in enumerate(targets):
            for b in targets[i + 1 :]:
                c = compare(ranks[a], ranks[b])
                lines.append(f"| {arch(a)} vs {arch(b)} | {tau_text(c)} |")
                found += relation(f"the {arch(a)}'s ranking", f"the {arch(b)}'s", c, len(seeds))
        lines.append("")
    lines += ["**What the data says.**", ""]
    if found:
        lines += [f"- {s}" for s in found]
    elif len(seeds) < MIN_SEEDS or len(activations) < MIN_ACTIVATIONS:
        lines.append(
            f"- With {len(seeds)} seed(s) and {len(activations)} activations no relation is "
            f"stated: that takes at least {MIN_SEEDS} seeds and {MIN_ACTIVATIONS} activations."
        )
    else:
        lines.append(
            "- No correlation's interval excludes 0: at these seeds no ranking is shown to "
            "predict another (nor shown not to)."
        )
    lines += [f"- {s}" for s in shifts(ranks, targets, activations, arch)]
    lines += [f"- {s}" for s in disagreements(verdicts, targets, arch)]
    return {"title": title, "anchor": anchor(title), "markdown": "\n".join(lines), "figures": []}


# Fewer seeds make a bootstrap interval too coarse to state a relation on, and fewer
# activations a ranking too short to correlate.
MIN_SEEDS, MIN_ACTIVATIONS = 5, 3


def relation(a: str, b: str, c: dict[str, float], seeds: int) -> list[str]:
    if math.isnan(c["low"]) or seeds < MIN_SEEDS or c["n"] < MIN_ACTIVATIONS:
        return []
    a = a[:1].upper() + a[1:]
    if c["low"] > 0:
        return [f"{a} agrees with {b}: τ = {tau_text(c)} over {c['n']} activations."]
    if c["high"] < 0:
        return [f"{a} is reversed in {b}: τ = {tau_text(c)} over {c['n']} activations."]
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
