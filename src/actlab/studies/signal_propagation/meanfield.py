"""Mean-field theory's numbers for the signal_propagation study (through actlab.theory):
the q-map trajectory and the gradient growth it predicts, the gradient-flow protocol's
factor, and the edge of chaos and phase diagram the figures draw."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from actlab.studies.signal_propagation.config import (
    EDGE_Q,
    PHASE_SIGMA_B,
    PHASE_SIGMA_W,
    Q_LIMIT,
    STATUS_CODES,
)


def born_dead_probability(width: int, depth: int) -> float:
    """P(a ReLU network is born dead): zero biases, symmetric weights, one positive scalar input,
    ``depth`` hidden layers of ``width`` units. Each layer is entirely inactive with probability
    2^-width whatever came before (while the layer below is alive), so P = 1 - (1 - 2^-N)^L
    (Lu et al. 2019)."""
    if width < 1 or depth < 0:
        raise ValueError("width must be >= 1 and depth >= 0")
    return -math.expm1(depth * math.log1p(-(2.0**-width)))


def q_trajectory(
    activation: Any, q1: float, sigma_w: float, sigma_b: float, depth: int
) -> tuple[list[float], list[float]]:
    """(q_l, chi(q_l)) for l = 1 .. depth: the q-map iterated from q_1 and the per-layer
    gradient growth it predicts. NaN once q leaves [0, 1e300] (unbounded growth)."""
    from actlab import theory

    prep = theory.prepare(activation)
    qs, chis = [], []
    q = q1
    for _ in range(depth):
        if not (math.isfinite(q) and 0 <= q <= Q_LIMIT):
            q = math.nan
        qs.append(q)
        if math.isnan(q):
            chis.append(math.nan)
            continue
        chis.append(theory.chi_1(prep, q, sigma_w))
        q = theory.variance_map(prep, q, sigma_w, sigma_b)
    return qs, chis


def predictions(
    activation: Any, q1: float, sigma_w: float, sigma_b: float, depth: int
) -> dict[str, Any]:
    """The theory's numbers for one (activation, point, shape)."""
    from actlab import theory

    prep = theory.prepare(activation)
    qs, chis = q_trajectory(prep, q1, sigma_w, sigma_b, depth)
    fp = theory.variance_fixed_point(prep, sigma_w, sigma_b, q0=q1)
    chi1 = math.nan if fp.q is None else theory.chi_1(prep, fp.q, sigma_w)
    return {
        "pred_q": qs,
        "pred_growth": chis[:-1],
        "pred_q_star": math.nan if fp.q is None else fp.q,
        "pred_q_status": float(STATUS_CODES[fp.status]),
        "pred_q_slope": math.nan if fp.slope is None else fp.slope,
        "pred_chi_1": chi1,
    }


def protocol_dw_factor(activation: Any, width: int, depth: int) -> float:
    """Mean-field (last / first mean |dW|)^(1 / depth) of the gradient-flow protocol's network
    (1 input, Xavier-uniform, zero biases, 1 output) for one input x ~ N(0, 1); see the module
    docstring."""
    from actlab import theory

    prep = theory.prepare(activation)
    qs, chis = q_trajectory(prep, 2.0 / (width + 1), 1.0, 0.0, depth)
    q_last = qs[-1]
    if not math.isfinite(q_last):
        return math.nan
    m2 = theory.variance_map(prep, q_last, 1.0, 0.0)  # E[phi(z_L)^2]
    d2 = theory.chi_1(prep, q_last, 1.0)  # E[phi'(z_L)^2]
    logs = [math.log(2.0 / (width + 1)), _log(d2), *(_log(c) for c in chis[:-1])]
    log_ratio = 0.5 * (_log(m2) - sum(logs))
    return math.exp(log_ratio / depth) if math.isfinite(log_ratio) else math.nan


def _log(x: float) -> float:
    return math.log(x) if x > 0 and math.isfinite(x) else math.nan


def edge_point(activation: Any, q_star: float) -> tuple[float, float, float]:
    """(sigma_w, sigma_b, dq'/dq) of the edge-of-chaos point whose variance fixed point is
    q_star: chi_1 = 1 gives sigma_w^2 = 1 / E[phi'^2], and q* = sigma_w^2 E[phi^2] + sigma_b^2
    gives sigma_b^2 = q* - E[phi^2] / E[phi'^2]. NaN where that sigma_b^2 is negative."""
    from actlab import theory

    prep = theory.prepare(activation)
    d2 = theory.expectation(prep, q_star, derivative=True, power=2)
    m2 = theory.expectation(prep, q_star, power=2)
    if not (d2 > 0 and math.isfinite(d2) and math.isfinite(m2)):
        return math.nan, math.nan, math.nan
    sw = 1.0 / math.sqrt(d2)
    sb2 = q_star - m2 / d2
    if sb2 < -1e-9 * max(q_star, 1e-300):
        return math.nan, math.nan, math.nan
    slope = theory.variance_map_slope(prep, q_star, sw)
    return sw, math.sqrt(max(sb2, 0.0)), slope


@lru_cache(maxsize=64)
def edge_curve(activation: str) -> tuple[tuple[float, float, float], ...]:
    """The edge of chaos traced through its variance fixed points q* (``EDGE_Q``), including
    unstable ones: (sigma_w, sigma_b, dq'/dq) per q*. Cached (deterministic)."""
    return tuple(edge_point(activation, q) for q in EDGE_Q)


@lru_cache(maxsize=8)
def phase_background(activation: str):
    from actlab import theory

    return theory.phase_diagram(activation, PHASE_SIGMA_W, PHASE_SIGMA_B)
