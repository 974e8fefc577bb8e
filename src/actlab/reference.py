"""The plain reference: one network at a time, nn.Sequential and torch.optim.

This is what the tutorial did, written to be read. It is the oracle the stacked engine
is tested against (bit for bit in exact mode) and the baseline it is benchmarked against.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from actlab.engine.train import DivergenceRule, TrainResult

Params = list[tuple[torch.Tensor, torch.Tensor]]


class Act(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class Residual(nn.Module):
    """x + block(x)."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def build_mlp(
    params: Params,
    activation: Callable[[torch.Tensor], torch.Tensor],
    *,
    norm: str | None = None,
    residual: bool = False,
) -> nn.Sequential:
    """Linear -> [norm ->] activation blocks, then a final Linear, loaded with the given
    parameters. norm: "batch" (BatchNorm1d, always in training mode: full-batch training
    and evaluation both use the batch statistics) or "layer" (LayerNorm over the width).
    residual: every hidden block after the first becomes x + block(x)."""
    layers: list[nn.Module] = []
    for i, (w, b) in enumerate(params):
        linear = nn.Linear(w.shape[1], w.shape[0], dtype=w.dtype)
        with torch.no_grad():
            linear.weight.copy_(w)
            linear.bias.copy_(b)
        if i == len(params) - 1:
            layers.append(linear)
            break
        block: list[nn.Module] = [linear]
        if norm == "batch":
            block.append(nn.BatchNorm1d(w.shape[0], dtype=w.dtype, track_running_stats=False))
        elif norm == "layer":
            block.append(nn.LayerNorm(w.shape[0], dtype=w.dtype))
        elif norm is not None:
            raise ValueError(f"unknown norm {norm!r}")
        block.append(Act(activation))
        if residual and i > 0:
            layers.append(Residual(nn.Sequential(*block)))
        else:
            layers.extend(block)
    return nn.Sequential(*layers)


def linears(model: nn.Module) -> list[nn.Linear]:
    return [layer for layer in model.modules() if isinstance(layer, nn.Linear)]


def norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.LayerNorm)]


def gradient_flow(params: Params, activation, x: torch.Tensor) -> list[float]:
    """Protocol experiment 1: loss = mean output, one backward; mean |dW| per layer."""
    model = build_mlp(params, activation)
    model(x).mean().backward()
    return [layer.weight.grad.abs().mean().item() for layer in linears(model)]


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    rule: DivergenceRule = DivergenceRule(),
    clip: float | None = None,
) -> tuple[list[float], bool, int]:
    """The protocol's training loop for one network, and nothing more: the loss is read
    once per step (one `.item()`) and judged in Python, as the original script does.
    Returns the recorded losses, whether the run diverged, and the updates applied. `clip`: the total gradient
    norm is clipped to this after the divergence checks, before the update."""
    losses: list[float] = []
    for t in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        value = loss.item()
        if not value <= rule.loss_limit:  # NaN, infinite or above the limit
            return losses, True, t
        losses.append(value)
        loss.backward()
        if rule.grad_limit is not None:
            largest = max(p.grad.abs().max().item() for p in model.parameters())
            if not largest <= rule.grad_limit:
                return losses, True, t
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip, foreach=False)
        optimizer.step()
    return losses, False, steps


def make_optimizer(model: nn.Module, optimizer: str, lr: float) -> torch.optim.Optimizer:
    opt_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer.lower()]
    return opt_cls(model.parameters(), lr=lr)


def train(
    params: Params,
    activation,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: str,
    lr: float,
    steps: int,
    rule: DivergenceRule = DivergenceRule(),
    *,
    norm: str | None = None,
    residual: bool = False,
    clip: float | None = None,
) -> tuple[TrainResult, nn.Sequential]:
    """`fit` one network built from `params`, then the oracle's bookkeeping: the loss
    after the last update (one more forward) and the engine's TrainResult shape."""
    model = build_mlp(params, activation, norm=norm, residual=residual)
    opt = make_optimizer(model, optimizer, lr)
    recorded, diverged, updates = fit(model, opt, x, y, steps, rule, clip)
    with torch.no_grad():
        loss_after = nn.functional.mse_loss(model(x), y).item()
    losses = np.full(steps, math.nan)
    losses[: len(recorded)] = recorded
    result = TrainResult(
        losses=losses[None, :],
        diverged=np.array([diverged]),
        steps_completed=np.array([updates]),
        last_recorded_loss=np.array([recorded[-1] if recorded else math.inf]),
        loss_after=np.array([loss_after]),
    )
    return result, model
