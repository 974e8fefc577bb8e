"""Data and measurements of the sparsity study: training data, and the unit counts and
pooled post-activation statistics of one forward pass."""

from __future__ import annotations

import math
from typing import Any

from actlab.studies.base import RunContext, Trial
from actlab.studies.outcomes import FINITE_STATES
from actlab.studies.sparsity.config import LAYER_METRICS, Config


def make_data(ctx: RunContext, cfg: Config, in_dim: int, seed: int):
    """x ~ N(0, I) [n, in_dim], y = sin(sum of x) + noise * N(0, 1) [n, 1]; keyed by seed only."""
    import torch

    from actlab.engine import generator

    gen = generator(ctx.run_seed, "sparsity/data", cfg.n_samples, in_dim, seed)
    x = torch.randn(cfg.n_samples, in_dim, dtype=ctx.torch_dtype, generator=gen)
    eps = torch.randn(cfg.n_samples, 1, dtype=ctx.torch_dtype, generator=gen)
    y = torch.sin(x.sum(dim=1, keepdim=True)) + cfg.noise * eps
    return x, y


def unit_measures(model, x, trials: list[Trial], ctx: RunContext, cfg: Config):
    """(per metric a `[M, depth]` array, each hidden layer's post-activations) of one
    forward pass over x with the stack's current weights."""
    import torch

    from actlab.engine.stack import Captured

    capture = Captured()
    with torch.no_grad():
        model.forward(x, capture)
    # Slopes per member (each with its own activation), one layer at a time: a generator,
    # so only one layer's derivatives are held at once. A learnable activation's slope is
    # its learned function's, layer by layer.
    derivs = (
        torch.cat(
            [
                model.learned_derivative(z[m : m + 1], layer, m)
                if model.learnable
                else ctx.activations[trials[m].activation].derivative(z[m : m + 1])
                for m in range(len(trials))
            ]
        )
        for layer, z in enumerate(capture.pre)
    )
    return layer_metrics(
        capture.post, derivs, cfg.zero_threshold, cfg.saturation_threshold
    ), capture.post


def sparsity(post, zero_threshold: float = 1e-6):
    """Fraction of values with |a| < threshold, per member: `[M, n, width]` -> `[M]` (float64)."""
    zeros = (post.abs() < zero_threshold).flatten(1).sum(dim=1)
    return zeros.double() / post[0].numel()


def dead_rate(post, zero_threshold: float = 1e-6):
    """Fraction of units with |a| <= threshold for every sample: `[M, n, width]` -> `[M]`."""
    dead = (post.abs() <= zero_threshold).all(dim=1).sum(dim=1)
    return dead.double() / post.shape[2]


def saturated_rate(deriv, saturation_threshold: float = 1e-3):
    """Fraction of units with |f'(z)| < threshold for every sample: `[M, n, width]` -> `[M]`."""
    flat = (deriv.abs() < saturation_threshold).all(dim=1).sum(dim=1)
    return flat.double() / deriv.shape[2]


def zero_slope_rate(deriv):
    """Fraction of units with f'(z) exactly 0 for every sample: `[M, n, width]` -> `[M]`."""
    flat = (deriv == 0).all(dim=1).sum(dim=1)
    return flat.double() / deriv.shape[2]


def layer_metrics(posts, derivs, zero_threshold: float, saturation_threshold: float):
    """Per metric, a `[M, depth]` float64 numpy array (layer 1 = input side), from each
    layer's post-activations and slopes f'(z) (`derivs` may be any iterable)."""
    import torch

    saturated, zero_slope = [], []
    for d in derivs:
        saturated.append(saturated_rate(d, saturation_threshold))
        zero_slope.append(zero_slope_rate(d))
    return {
        "sparsity": torch.stack([sparsity(a, zero_threshold) for a in posts], 1).cpu().numpy(),
        "dead_rate": torch.stack([dead_rate(a, zero_threshold) for a in posts], 1).cpu().numpy(),
        "saturated_rate": torch.stack(saturated, 1).cpu().numpy(),
        "zero_slope_rate": torch.stack(zero_slope, 1).cpu().numpy(),
    }


def pooled_stats(posts, bins: int, clip: float) -> dict[str, list]:
    """Per member, over all hidden layers' finite post-activations: mean, std (ddof 0),
    and the histogram counts of the values clipped to [-clip, clip]."""
    import torch

    means, stds, hists = [], [], []
    for m in range(posts[0].shape[0]):
        values = torch.cat([a[m].flatten() for a in posts]).double()
        values = values[torch.isfinite(values)]
        if values.numel() == 0:
            means.append(math.nan)
            stds.append(math.nan)
            hists.append(torch.zeros(bins, dtype=torch.float64))
            continue
        means.append(float(values.mean()))
        stds.append(float(values.std(correction=0)))
        hists.append(torch.histc(values.clamp(-clip, clip), bins=bins, min=-clip, max=clip).cpu())
    return {"mean": means, "std": stds, "hist": hists}


def trial_rows(
    per_layer: dict[str, list[float]],
    at_init: dict[str, list[float]],
    *,
    act_mean: float,
    act_std: float,
    hist: list[float],
    diverged: bool,
    final_loss: float,
    steps_completed: int,
    target_var: float,
    state: str,
) -> list[dict[str, Any]]:
    """One trial's rows. A diverged trial's network measurements after training are all NaN;
    those at initialisation stand."""

    def value(v: float) -> float:
        return math.nan if diverged else float(v)

    rows: list[dict[str, Any]] = []
    for metric in LAYER_METRICS:
        values = per_layer[metric]
        rows += [
            {"metric": metric, "layer": i + 1, "value": value(v)} for i, v in enumerate(values)
        ]
        rows.append({"metric": metric, "value": value(sum(values) / len(values))})
    for metric, values in at_init.items():
        name = f"{metric}_init"
        rows += [{"metric": name, "layer": i + 1, "value": float(v)} for i, v in enumerate(values)]
        rows.append({"metric": name, "value": float(sum(values) / len(values))})
    rows += [
        {"metric": "act_mean", "value": value(act_mean)},
        {"metric": "act_std", "value": value(act_std)},
        {"metric": "diverged", "value": float(diverged)},
        {"metric": "final_loss", "value": value(final_loss)},
        {"metric": "steps_completed", "value": float(steps_completed)},
        {"metric": "target_var", "value": float(target_var)},
    ]
    rows += [{"metric": s, "value": float(state == s)} for s in FINITE_STATES]
    rows += [{"metric": "hist_count", "step": b, "value": value(c)} for b, c in enumerate(hist)]
    return rows
