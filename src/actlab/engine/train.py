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
  6. update the members still active;
  7. members that have stopped leave the working stack (compact), which changes no number.
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
    """x and y are shared by all members (`[batch, n]`) or per member (`[M, batch, n]`)."""
    m = model.n_members
    device = model.flat.device
    diverged = torch.zeros(m, dtype=torch.bool, device=device)
    losses = torch.full((m, steps), math.nan, dtype=torch.float64, device=device)
    # The members still training: `work` is the model, or a smaller stack of some of its
    # members (rows) once others have stopped; see compact().
    work = Working(model, optimizer, list(range(m)), x, y)
    active = torch.ones(m, dtype=torch.bool, device=device)  # per member of work

    for t in range(steps):
        work.model.zero_grad()
        loss = work.model.mse(work.model.forward(work.x), work.y)
        detached = loss.detach()
        bad = active & loss_is_bad(detached, rule.loss_limit)
        diverged[work.index[bad]] = True
        active &= ~bad
        if not bool(active.any()):
            break
        losses[work.index[active], t] = detached[active].double()
        loss.sum().backward()
        if rule.grad_limit is not None:
            too_big = active & ~(work.model.grad_abs_max() <= rule.grad_limit)
            diverged[work.index[too_big]] = True
            active &= ~too_big
            if not bool(active.any()):
                break
        if clip is not None:
            work.model.clip_grad_norm(clip)
        work.optimizer.step(active)
        if t + 1 < steps:
            work, active = compact(work, active, model, optimizer, x, y)
    work.finish(model, optimizer)

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


class Working:
    """The stack being trained: `model` holds members `rows` of the caller's stack, with
    their optimizer state and data."""

    def __init__(self, model: StackedMLP, optimizer, rows: list[int], x, y) -> None:
        self.model, self.optimizer, self.rows = model, optimizer, rows
        self.index = torch.tensor(rows, dtype=torch.long, device=model.flat.device)
        self.x = x if x.dim() == 2 else x[self.index]
        self.y = y if y.dim() == 2 else y[self.index]

    def finish(self, model: StackedMLP, optimizer) -> None:
        """Copy the members' parameters and optimizer state back into the caller's stack."""
        if self.model is not model:
            model.write_back(self.model, self.rows)
            optimizer.write_back(self.optimizer, self.rows)


def compact(work: Working, active: torch.Tensor, model: StackedMLP, optimizer, x, y):
    """Drop stopped members from the working stack, so no more time is spent computing
    them (see drop_stopped)."""
    smaller = drop_stopped(model, optimizer, work.model, work.optimizer, work.rows, active)
    if smaller is None:
        return work, active
    sub, sub_optimizer, rows, keep = smaller
    return Working(sub, sub_optimizer, rows, x, y), active[keep]


def drop_stopped(model: StackedMLP, optimizer, work, work_optimizer, rows, active):
    """A stack of the still-active members of `work` (which holds members `rows` of
    `model`), or None when it would not be smaller. `work`'s parameters and optimizer
    state are first written back into `model`. Returns (stack, optimizer, its rows, the
    indices into work kept).

    A member's numbers do not depend on its batch-mates (stack.py), so this changes no
    result. A stack keeps two members (a stack of one rounds differently): the last active
    member keeps one stopped companion."""
    if len(rows) <= 2:
        return None
    keep = [i for i, a in enumerate(active.tolist()) if a]
    if len(keep) == 1:
        keep.append(next(i for i in range(len(rows)) if i != keep[0]))
        keep.sort()
    if len(keep) == len(rows):
        return None
    if work is not model:
        model.write_back(work, rows)
        optimizer.write_back(work_optimizer, rows)
    kept_rows = [rows[i] for i in keep]
    sub = model.subset(kept_rows)
    return sub, optimizer.subset(sub, kept_rows), kept_rows, keep


def last_finite(losses: np.ndarray) -> np.ndarray:
    """The last recorded (non-NaN) value of each row; inf for a row with none."""
    out = np.full(losses.shape[0], np.inf)
    for m, row in enumerate(losses):
        recorded = row[~np.isnan(row)]
        if recorded.size:
            out[m] = recorded[-1]
    return out
