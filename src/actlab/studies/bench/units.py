"""Dead and saturated units, and gradient norms per layer, of a benched model: what the
sparsity study measures on its toy networks, on the user's own.

The activation sites are the model's `actlab.nn.Activation` modules (the ones actlab
passed as `act_layer` or put in place of the model's own), in the order the model calls
them: site 1 is nearest the input. At each site the slope f'(z) of the activation at its
input z is taken on a probe of the test split; a unit is a feature of a Linear layer's
output or a channel of a convolution's (dimension 1, PyTorch's layout; for a model whose
features come last in a [batch, tokens, features] tensor, dimension 1 is the tokens):
  zero_slope_rate  the fraction of the site's units whose slope is exactly 0 on every
                   probe sample and position: dead, no gradient passes at all
  saturated_rate   the fraction whose |slope| is below SATURATION on every one (dead
                   units included, as in the sparsity study)
Both on the initial weights (`<metric>_init`) and after training, per site (`layer` =
the site) and over all the model's units (no `layer`: the sites weighted by their units);
probe_samples: the test samples the slopes were taken on.

grad_norm_init and grad_norm: each parameterised module's gradient norm (the norm over
its parameters; `layer` = the module's place among them, 1 nearest the input in
definition order) at the first training step and at the last.
"""

from __future__ import annotations

from typing import Any

SATURATION = 1e-3  # the sparsity study's saturation_threshold
PROBE = 512  # test samples the slopes are taken on


def site_slopes(model, x, params: dict | None = None) -> list[tuple[float, float, int]]:
    """(zero_slope_rate, saturated_rate, units) per activation site of `model` on input x,
    with `params` in place of the model's own when given (a member of a torch.func stack)."""
    import torch
    from torch.func import functional_call

    from actlab.nn import Activation

    found: list[tuple[float, float, int]] = []

    def hook(module, inputs, _output):
        with torch.enable_grad():
            z = inputs[0].detach().requires_grad_(True)
            # forward, not the module's call: the call would run this hook again
            (slope,) = torch.autograd.grad(module.forward(z).sum(), z)
        flat = (
            slope.detach().abs().movedim(1, 0).reshape(slope.shape[1], -1)
            if z.dim() > 1
            else slope.abs().reshape(1, -1)
        )
        zero = (flat == 0).all(dim=1).float().mean().item()
        saturated = (flat < SATURATION).all(dim=1).float().mean().item()
        found.append((zero, saturated, flat.shape[0]))

    sites = [m for m in model.modules() if isinstance(m, Activation)]
    handles = [m.register_forward_hook(hook) for m in sites]
    try:
        with torch.no_grad():
            if params is None:
                model(x)
            else:
                functional_call(model, params, (x,))
    finally:
        for h in handles:
            h.remove()
    return found


def slope_rows(per_site: list[tuple[float, float, int]], suffix: str = "") -> list[dict]:
    """Rows for one member: per site, and over all its units (each site by its units)."""
    rows = []
    for i, (zero, saturated, _) in enumerate(per_site, start=1):
        rows += [
            {"metric": f"zero_slope_rate{suffix}", "layer": i, "value": zero},
            {"metric": f"saturated_rate{suffix}", "layer": i, "value": saturated},
        ]
    units = sum(u for _, _, u in per_site)
    if units:
        rows += [
            {
                "metric": f"zero_slope_rate{suffix}",
                "value": sum(z * u for z, _, u in per_site) / units,
            },
            {
                "metric": f"saturated_rate{suffix}",
                "value": sum(s * u for _, s, u in per_site) / units,
            },
        ]
    return rows


def module_of(name: str) -> str:
    """The module a parameter belongs to: 'features.0.weight' -> 'features.0'."""
    return name.rsplit(".", 1)[0] if "." in name else ""


def layer_grad_norms(named_grads, members: int):
    """[members, modules] gradient norms from (name, grad [members, ...] or None) pairs,
    the parameters of one module pooled; modules in the order their parameters come."""
    import torch

    order: list[str] = []
    squares: dict[str, Any] = {}
    for name, grad in named_grads:
        module = module_of(name)
        if module not in squares:
            order.append(module)
            squares[module] = torch.zeros(members)
        if grad is not None:
            squares[module] += grad.detach().reshape(members, -1).pow(2).sum(1).cpu()
    if not order:
        return torch.zeros(members, 0)
    return torch.stack([squares[m] for m in order], dim=1).sqrt()


def grad_rows(norms, metric: str) -> list[dict[str, Any]]:
    """Rows for one member's per-module gradient norms (a 1-D tensor)."""
    return [
        {"metric": metric, "layer": i, "value": float(v)}
        for i, v in enumerate(norms.tolist(), start=1)
    ]
