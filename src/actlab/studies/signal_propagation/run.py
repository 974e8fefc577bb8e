"""Measuring a batch of signal_propagation trials: one activation at one point, one forward
and one backward pass per network, and the rows each trial gets."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from actlab.studies.base import RunContext, Trial
from actlab.studies.signal_propagation.config import NAME, STATUS_CODES, XAVIER, Config
from actlab.studies.signal_propagation.meanfield import predictions, protocol_dw_factor


def run_group(trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
    """Rows per trial for trials of one batch key (one activation, point and width),
    measured as one stack."""
    import torch

    from actlab import theory
    from actlab.engine import StackedMLP, generator, init_mlp_params, layer_sizes
    from actlab.engine.stack import Captured
    from actlab.errors import UserError

    cfg: Config = ctx.config
    p = trials[0].params
    act = ctx.activations[trials[0].activation]
    width, depth, sb = p["width"], p["depth"], float(p["sigma_b"])
    # Theory failures (a custom function the quadrature cannot handle) leave NaN
    # predictions; the measurement still runs wherever sigma_w is known.
    theory_errors = (UserError, ValueError, ArithmeticError)
    extra: dict[str, float] = {}
    if p["init"] == XAVIER:
        sizes = layer_sizes(1, width, depth, out_dim=1)
        sw, q1, scheme = 1.0, 2.0 / (1 + width), XAVIER
        try:
            extra["pred_dw_factor"] = protocol_dw_factor(act, width, depth)
        except theory_errors:
            extra["pred_dw_factor"] = math.nan
    else:
        sizes = layer_sizes(width, width, depth, out_dim=width)
        scheme = "gaussian"
        sw = p["sigma_w"]
        if sw is None or (isinstance(sw, float) and math.isnan(sw)):
            try:
                edge = theory.edge_of_chaos(act, sb)
            except theory_errors:
                edge = None
            extra["critical_status"] = (
                math.nan if edge is None else float(STATUS_CODES[edge.status])
            )
            if edge is None or edge.sigma_w is None:
                candidate = next(iter(edge.candidates), None) if edge else None
                if candidate is not None:
                    extra["critical_candidate_sigma_w"] = candidate.sigma_w
                    extra["critical_candidate_q_star"] = candidate.q_star
                rows = [{"metric": "sigma_w", "value": math.nan}]
                rows += [{"metric": "sigma_b", "value": sb}]
                rows += [{"metric": k, "value": v} for k, v in extra.items()]
                return [list(rows) for _ in trials]
            sw = edge.sigma_w
        sw = float(sw)
        q1 = sw * sw + sb * sb
    try:
        pred = predictions(act, q1, sw, sb, depth)
    except theory_errors:
        pred = {
            "pred_q": [math.nan] * depth,
            "pred_growth": [math.nan] * (depth - 1),
            "pred_q_star": math.nan,
            "pred_q_status": math.nan,
            "pred_q_slope": math.nan,
            "pred_chi_1": math.nan,
        }

    dtype = ctx.torch_dtype
    in_dim, out_dim = sizes[0][0], sizes[-1][1]
    members = [
        init_mlp_params(
            sizes,
            # Keyed by shape, point and seed, not by activation (common random numbers);
            # every activation's critical point at one sigma_b shares the standard-normal
            # draws, each scaled by its own sigma_w.
            generator(ctx.run_seed, f"{NAME}/init", f"sizes={sizes}", p["point"], t.seed),
            scheme=scheme,
            gain=sw if scheme == "gaussian" else 1.0,
            bias_std=sb if scheme == "gaussian" else 0.0,
            dtype=dtype,
        )
        for t in trials
    ]
    model = StackedMLP(members, [act.fn] * len(trials), exact=ctx.exact, device=ctx.device)
    n = cfg.n_samples
    x = torch.stack(
        [
            torch.randn(
                n,
                in_dim,
                dtype=dtype,
                generator=generator(ctx.run_seed, f"{NAME}/input", n, in_dim, t.seed),
            )
            for t in trials
        ]
    ).to(ctx.device)
    capture = Captured()
    with torch.no_grad():
        model.forward(x, capture)
        out = []
        for m, t in enumerate(trials):
            r = torch.randn(
                n,
                out_dim,
                dtype=dtype,
                generator=generator(ctx.run_seed, f"{NAME}/output", n, out_dim, t.seed),
            ).to(ctx.device)
            preact_var, grad_sq = member_profile(
                [z[m] for z in capture.pre], [w[m] for w in model.weights], r, act
            )
            out.append(trial_rows(preact_var, grad_sq, pred, sw, sb, extra))
    return out


def member_profile(pre: list, weights: list, r, act) -> tuple[list[float], list[float]]:
    """One network's per-layer mean z_l^2 and mean (dloss/dz_l)^2 for loss = sum(out * r).

    ``pre``: its captured pre-activations [n, width] per hidden layer; ``weights``: its
    weight matrices [out, in], the output layer last. The backward pass: dloss/dout = r,
    then g_l = phi'(z_l) * (g_{l+1} W_{l+1}) down to the first layer. Means in float64."""
    preact_var = [float(z.double().square().mean()) for z in pre]
    grad_sq = [0.0] * len(pre)
    g = r
    for layer in range(len(pre) - 1, -1, -1):
        upstream = g @ weights[layer + 1]
        g = upstream * act.derivative(pre[layer])
        grad_sq[layer] = float(g.double().square().mean())
    return preact_var, grad_sq


def _geo_mean(values: list[float]) -> float:
    x = np.asarray(values, dtype=float)
    if x.size == 0 or not np.all(np.isfinite(x)) or not np.all(x > 0):
        return math.nan
    return float(np.exp(np.mean(np.log(x))))


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b != 0 else math.nan


def trial_rows(
    preact_var: list[float],
    grad_sq: list[float],
    pred: dict[str, Any],
    sigma_w: float,
    sigma_b: float,
    extra: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """A trial's rows from its measured profiles and the theory's predictions."""
    depth = len(preact_var)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = [
            float(np.float64(grad_sq[i]) / np.float64(grad_sq[i + 1])) for i in range(depth - 1)
        ]
    rows: list[dict[str, Any]] = []
    for metric, values in (
        ("preact_var", preact_var),
        ("grad_sq", grad_sq),
        ("grad_growth", growth),
        ("pred_q", pred["pred_q"]),
        ("pred_growth", pred["pred_growth"]),
    ):
        rows += [
            {"metric": metric, "layer": i + 1, "value": float(v)} for i, v in enumerate(values)
        ]
    var_layers = slice(depth // 2, depth)  # layers l > depth // 2
    growth_layers = slice((depth - 1) // 2, depth - 1)  # layers l > (depth - 1) // 2
    growth_mean = _geo_mean(growth[growth_layers])
    pred_growth_mean = _geo_mean(pred["pred_growth"][growth_layers])
    var_mean = _geo_mean(preact_var[var_layers])
    pred_var_mean = _geo_mean(pred["pred_q"][var_layers])
    scalars = {
        "sigma_w": sigma_w,
        "sigma_b": sigma_b,
        "pred_q_star": pred["pred_q_star"],
        "pred_q_status": pred["pred_q_status"],
        "pred_q_slope": pred["pred_q_slope"],
        "pred_chi_1": pred["pred_chi_1"],
        "growth_mean": growth_mean,
        "pred_growth_mean": pred_growth_mean,
        "growth_ratio": _ratio(growth_mean, pred_growth_mean),
        "growth_vs_chi_1": _ratio(growth_mean, pred["pred_chi_1"]),
        "var_mean": var_mean,
        "pred_var_mean": pred_var_mean,
        "var_ratio": _ratio(var_mean, pred_var_mean),
        **(extra or {}),
    }
    rows += [{"metric": k, "value": float(v)} for k, v in scalars.items()]
    return rows
