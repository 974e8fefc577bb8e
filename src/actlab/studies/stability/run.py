"""The stability study's per-trial measurements, from one training run's result."""

from __future__ import annotations

import math
from typing import Any

from actlab.studies.base import learned_rows
from actlab.studies.capacity.config import MIN_IMPROVEMENT, PATIENCE, plateaued_at_end
from actlab.studies.outcomes import classify, outcome_rows
from actlab.studies.stability.config import Config, judged


def trial_rows(result, m: int, model, variance: float, cfg: Config) -> list[dict[str, Any]]:
    """Member m's rows: its state and losses (outcomes.py), `steps_to_learn`,
    `still_improving` where it applies, and any learned activation parameters."""
    threshold = cfg.learned_below * variance
    return (
        outcome_rows(result, m, variance, cfg.learned_below, cfg.failed_above)
        + [{"metric": "steps_to_learn", "value": steps_to_learn(result, m, threshold)}]
        + still_improving_rows(result, m, variance, cfg)
        + learned_rows(model, m, bool(result.diverged[m]))
    )


def steps_to_learn(result, m: int, threshold: float) -> float:
    """Updates member m took until its loss was first below `threshold` (0: it started
    there): the first recorded loss below it (recorded after that many updates), else the
    loss after the last update when that is below it and the run did not diverge; NaN if
    never. A run that fell below and then rose again (or diverged) keeps its first time."""
    import numpy as np

    below = np.flatnonzero(result.losses[m] < threshold)  # NaN compares False
    if below.size:
        return float(below[0])
    if not result.diverged[m] and result.loss_after[m] < threshold:
        return float(result.steps_completed[m])
    return math.nan


def still_improving_rows(result, m: int, variance: float, cfg: Config) -> list[dict[str, Any]]:
    """For a run that stayed finite and did not learn (stuck or failed): `still_improving`,
    1 if its loss was still falling when its step budget ran out and 0 if it had flattened,
    by capacity's plateau rule on the losses it recorded (capacity.config.plateaued_at_end,
    patience PATIENCE updates, relative fall MIN_IMPROVEMENT). Nothing for a run that
    learned or diverged, nor for one of PATIENCE updates or fewer, which the rule cannot
    judge (it stays stuck)."""
    loss_after = float(result.loss_after[m])
    state = classify(
        bool(result.diverged[m]), loss_after, variance, cfg.learned_below, cfg.failed_above
    )
    updates = int(result.steps_completed[m])
    if state not in ("stuck", "failed") or not judged(updates):
        return []
    flat = plateaued_at_end(result.losses[m][:updates], PATIENCE, MIN_IMPROVEMENT)
    return [{"metric": "still_improving", "value": float(not flat)}]
