"""Full-batch training of a stack, with the tutorial protocol's divergence rules per member.

Each step, read top to bottom:
  1. forward, per-member loss;
  2. loss rule: a member whose loss is NaN, infinite or above `loss_limit` has diverged
     and stops here (that loss is not recorded);
  3. record the loss, backward;
  4. gradient rule (optional): a member whose largest |gradient| exceeds `grad_limit`
     has diverged and stops before its update;
  5. gradient-norm clipping (optional, `clip`): each member's gradients are scaled so
     their total L2 norm is at most `clip` (torch.nn.utils.clip_grad_norm_);
  6. update the members still active.
After the last step one more forward gives the loss after the final update, which the
protocol's "last recorded loss" misses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from actlab.engine.stack import StackedMLP


@dataclass(frozen=True)
class DivergenceRule:
    loss_limit: float = 1e6
    grad_limit: float | None = None  # None: the loss rule only


@dataclass
class TrainResult:
    """Per member: `losses[m, t]` is the loss recorded at step t (NaN once stopped)."""

    losses: np.ndarray
    diverged: np.ndarray  # bool [M]
    steps_completed: np.ndarray  # int [M], updates applied
    last_recorded_loss: np.ndarray  # [M], the protocol's final loss; inf if none recorded
    loss_after: np.ndarray  # [M], loss of the final parameters (NaN/inf kept as they are)


def loss_is_bad(loss: torch.Tensor, limit: float) -> torch.Tensor:
    return ~torch.isfinite(loss) | (loss > limit)


def train(
    model: StackedMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer,
    steps: int,
    rule: DivergenceRule = DivergenceRule(),
    clip: float | None = None,
) -> TrainResult:
    m = model.n_members
    device = model.flat.device
    active = torch.ones(m, dtype=torch.bool, device=device)
    diverged = torch.zeros(m, dtype=torch.bool, device=device)
    losses = torch.full((m, steps), math.nan, dtype=torch.float64, device=device)

    for t in range(steps):
        model.zero_grad()
        loss = model.mse(model.forward(x), y)
        detached = loss.detach()
        bad = active & loss_is_bad(detached, rule.loss_limit)
        diverged |= bad
        active &= ~bad
        if not bool(active.any()):
            break
        losses[active, t] = detached[active].double()
        loss.sum().backward()
        if rule.grad_limit is not None:
            too_big = active & ~(model.grad_abs_max() <= rule.grad_limit)
            diverged |= too_big
            active &= ~too_big
            if not bool(active.any()):
                break
        if clip is not None:
            model.clip_grad_norm(clip)
        optimizer.step(active)

    with torch.no_grad():
        loss_after = model.mse(model.forward(x), y).double().cpu().numpy()
    losses_np = losses.cpu().numpy()
    return TrainResult(
        losses=losses_np,
        diverged=diverged.cpu().numpy(),
        steps_completed=np.asarray(optimizer.steps, dtype=np.int64),
        last_recorded_loss=last_finite(losses_np),
        loss_after=loss_after,
    )


def last_finite(losses: np.ndarray) -> np.ndarray:
    """The last recorded (non-NaN) value of each row; inf for a row with none."""
    out = np.full(losses.shape[0], np.inf)
    for m, row in enumerate(losses):
        recorded = row[~np.isnan(row)]
        if recorded.size:
            out[m] = recorded[-1]
    return out
