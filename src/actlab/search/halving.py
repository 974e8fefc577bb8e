"""Successive halving, as a pure function of a scoring callback.

Rung by rung, every surviving candidate (and every control) is scored with more training
steps and more seeds; the best 1/eta of the candidates go on, never fewer than `keep`.
Controls are scored in every rung so each rung can be read against them, but they take no
candidate's place and never leave. Ties are broken by name, and a candidate that scored
NaN (diverged on every seed) ranks last, so the outcome depends only on the scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rung:
    steps: int  # training steps per network
    seeds: int  # seeds per candidate


@dataclass(frozen=True)
class RungResult:
    rung: int
    spec: Rung
    scores: dict[str, float]  # candidates and controls
    survivors: tuple[str, ...]  # candidates going on, best first


def ranked(scores: dict[str, float]) -> list[str]:
    """Names best first: higher score first, NaN last, ties by name."""
    return sorted(
        scores,
        key=lambda n: (math.isnan(scores[n]), -scores[n] if not math.isnan(scores[n]) else 0, n),
    )


def survivors_of(scores: dict[str, float], eta: float, keep: int) -> list[str]:
    count = max(min(keep, len(scores)), math.ceil(len(scores) / eta))
    return ranked(scores)[:count]


def successive_halving(
    candidates: Sequence[str],
    rungs: Sequence[Rung],
    score: Callable[[int, Rung, list[str]], dict[str, float]],
    *,
    controls: Sequence[str] = (),
    eta: float = 3.0,
    keep: int = 5,
) -> list[RungResult]:
    """Run the rungs; `score(rung_index, rung, names)` returns a score per name (higher is
    better) for the candidates and controls given. The last rung's survivors are the
    finalists."""
    if eta <= 1:
        raise ValueError(f"eta must be above 1, got {eta}")
    alive = list(dict.fromkeys(candidates))
    results = []
    for index, rung in enumerate(rungs):
        names = alive + [c for c in controls if c not in alive]
        scores = score(index, rung, names)
        missing = [n for n in names if n not in scores]
        if missing:
            raise ValueError(f"rung {index}: no score for {missing[:3]}")
        own = {n: float(scores[n]) for n in alive}
        last = index == len(rungs) - 1
        alive = survivors_of(own, eta, keep) if not last else ranked(own)[: min(keep, len(own))]
        results.append(RungResult(index, rung, {n: float(scores[n]) for n in names}, tuple(alive)))
    return results
