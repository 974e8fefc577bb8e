"""One backward pass per network: the gradient_flow study's per-trial measurements."""

from __future__ import annotations

import math
from typing import Any

from actlab.studies.base import RunContext, critical_sigma_w
from actlab.studies.gradient_flow.config import Config


def has_edge(ctx: RunContext, activation: str, cfg: Config) -> bool:
    """Whether the mean-field theory gives the activation a usable edge of chaos."""
    from actlab.errors import UserError

    try:
        critical_sigma_w(ctx.activations[activation], cfg.sigma_b)
    except UserError:
        return False
    return True


def trial_rows(per_layer: list[float], vanish_threshold: float) -> list[dict[str, Any]]:
    """The protocol's metrics for one network, from its per-layer mean |dW| (input first)."""
    first, last = per_layer[0], per_layer[-1]
    rows = [
        {"metric": "grad_mean_abs", "layer": i + 1, "value": g} for i, g in enumerate(per_layer)
    ]
    rows += [
        {"metric": "grad_ratio", "value": honest_ratio(last, first)},
        {"metric": "grad_log10_ratio", "value": log10(last) - log10(first)},
        {"metric": "grad_min", "value": min(per_layer)},
        {"metric": "grad_max", "value": max(per_layer)},
        {"metric": "grad_collapsed", "value": float(max(per_layer) < vanish_threshold)},
    ]
    return rows


def log10(value: float) -> float:
    return math.log10(value) if value > 0 else -math.inf


def honest_ratio(last: float, first: float) -> float:
    """last / first with no arbitrary floor: inf only when first is exactly zero."""
    if first == 0:
        return math.nan if last == 0 else math.inf
    return last / first
