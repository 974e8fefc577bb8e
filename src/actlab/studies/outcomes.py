"""The states a training run ends in, one classifier for every study that trains to a
regression target (stability, remedies):

  learned   finite, and the loss after the last update below `learned_below` x the target's
            variance (a constant output scores exactly the variance)
  stuck     finite, between the two: it learned little or nothing
  failed    finite, but above `failed_above` x the variance: far worse than a constant
            output, blown up without tripping the divergence rule
  diverged  stopped by the divergence rule (NaN, inf, or a loss / gradient over its limit)
"""

from __future__ import annotations

import math
from typing import Any

STATES = ("learned", "stuck", "failed", "diverged")
FINITE_STATES = ("learned", "stuck", "failed")


def classify(
    diverged: bool,
    loss_after: float,
    target_variance: float,
    learned_below: float,
    failed_above: float = 10.0,
) -> str:
    """learned / stuck / failed / diverged for one trial."""
    if diverged:
        return "diverged"
    if math.isfinite(loss_after) and loss_after < learned_below * target_variance:
        return "learned"
    if not math.isfinite(loss_after) or loss_after > failed_above * target_variance:
        return "failed"
    return "stuck"


def outcome_rows(
    result, m: int, variance: float, learned_below: float, failed_above: float = 10.0
) -> list[dict[str, Any]]:
    diverged = bool(result.diverged[m])
    loss_after = float(result.loss_after[m])
    state = classify(diverged, loss_after, variance, learned_below, failed_above)
    rows = [
        {"metric": "diverged", "value": float(diverged)},
        {"metric": "final_loss", "value": float(result.last_recorded_loss[m])},
        {"metric": "loss_after_training", "value": loss_after},
        {"metric": "steps_completed", "value": float(result.steps_completed[m])},
        {"metric": "target_variance", "value": variance},
    ]
    rows += [{"metric": s, "value": float(state == s)} for s in FINITE_STATES]
    rows += [
        {"metric": "loss", "step": t + 1, "value": float(v)}
        for t, v in enumerate(result.losses[m])
        if not math.isnan(v)
    ]
    return rows
