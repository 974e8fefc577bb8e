"""The one training loop of every stack: the tutorial's full-batch regressions, the
real-data classifiers with early stopping, and MNIST-1D's minibatch classifiers.

    train(model, data, loss, optimizer, steps, rule, clip=..., monitors=...)

Each step, read top to bottom:
  1. the step's data: the whole data set, or the next minibatch (feeds.py);
  2. forward, per-member loss (`loss(model, out, y)` -> `[M]`, losses.py);
  3. loss rule: a member whose loss is NaN, infinite or above `loss_limit` has diverged
     and stops here (that loss is not recorded);
  4. record the loss; a monitor with an `after_loss` hook may stop members here, before
     their update (monitors.StopBelow); backward;
  5. gradient rule (optional): a member whose largest |gradient| exceeds `grad_limit`
     has diverged and stops before its update;
  6. gradient-norm clipping (optional, `clip`): each member's gradients are scaled so
     their total L2 norm is at most `clip` (torch.nn.utils.clip_grad_norm_);
  7. update the members still active;
  8. the monitors (monitors.py), after the update: evaluations, early stopping; a
     monitor may stop members;
  9. members that have stopped leave the working stack (compact), which changes no
     number: a member's numbers do not depend on its batch-mates.
After the loop the working stack's parameters and optimizer state are back in `model`,
and each monitor's `finish` runs on it. Inside `reporting(sink)` the loop tells `sink` how
far the batch has got, a few times a second (the command line's progress bar).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import torch

from actlab.engine.protocol import Stack

Loss = Callable[[object, torch.Tensor, torch.Tensor], torch.Tensor]


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


class Working:
    """The stack being trained: `model` holds members `rows` of the caller's stack, with
    their optimizer state; `index` is `rows` as a tensor."""

    def __init__(self, model, optimizer, rows: list[int]) -> None:
        self.model, self.optimizer, self.rows = model, optimizer, rows
        self.index = torch.tensor(rows, dtype=torch.long, device=model.flat.device)


class Training:
    """The loop's state, which the monitors read and change. `active` and `diverged` are
    over the caller's whole stack; `work` is the stack being trained."""

    def __init__(self, model, optimizer, steps: int) -> None:
        m = model.n_members
        device = model.flat.device
        self.model, self.optimizer, self.steps = model, optimizer, steps
        self.work = Working(model, optimizer, list(range(m)))
        self.active = torch.ones(m, dtype=torch.bool, device=device)
        self.diverged = torch.zeros(m, dtype=torch.bool, device=device)
        self.losses = torch.full((m, steps), math.nan, dtype=torch.float64, device=device)
        self.updates = 0  # steps whose update has been applied (to the active members)
        self.seconds = 0.0  # wall time of the training steps, the monitors' excluded

    def work_active(self) -> torch.Tensor:
        """Which members of the working stack still train."""
        return self.active[self.work.index]

    def any_active(self) -> bool:
        return bool(self.active.any())

    def stop(self, mask: torch.Tensor, *, diverged: bool) -> None:
        """Stop the active members of the working stack where `mask` (over it) is true."""
        index = self.work.index
        hit = self.active[index] & mask
        if diverged:
            self.diverged[index[hit]] = True
        self.active[index[hit]] = False

    def record(self, step: int, loss: torch.Tensor) -> None:
        live = self.work_active()
        self.losses[self.work.index[live], step] = loss[live].double()

    def compact(self) -> None:
        """Drop stopped members from the working stack, so no more time is spent on them."""
        work = self.work
        smaller = drop_stopped(
            self.model, self.optimizer, work.model, work.optimizer, work.rows, self.work_active()
        )
        if smaller is not None:
            sub, sub_optimizer, rows, _ = smaller
            self.work = Working(sub, sub_optimizer, rows)

    def finish(self) -> None:
        """Copy the working members' parameters and optimizer state back into the model."""
        work = self.work
        if work.model is not self.model:
            self.model.write_back(work.model, work.rows)
            self.optimizer.write_back(work.optimizer, work.rows)
            self.work = Working(self.model, self.optimizer, list(range(self.model.n_members)))


def train(
    model: Stack,
    data,
    loss: Loss,
    optimizer,
    steps: int,
    rule: DivergenceRule = DivergenceRule(),
    *,
    clip: float | None = None,
    monitors: Sequence = (),
) -> Training:
    run = Training(model, optimizer, steps)
    meter = _meter.get()  # progress of the batch, for the command line (StepMeter)
    for monitor in monitors:
        monitor.start(run)
    loss_hooks = [m.after_loss for m in monitors if hasattr(m, "after_loss")]
    for t in range(steps):
        started = time.perf_counter()
        work = run.work
        x, y = data.batch(t, work.index)
        work.model.zero_grad()
        value = loss(work.model, work.model.forward(x), y)
        detached = value.detach()
        run.stop(loss_is_bad(detached, rule.loss_limit), diverged=True)
        if not run.any_active():
            run.seconds += time.perf_counter() - started
            break
        run.record(t, detached)
        if loss_hooks:
            for hook in loss_hooks:
                hook(run, t)
            if not run.any_active():
                run.seconds += time.perf_counter() - started
                break
        value.sum().backward()
        if rule.grad_limit is not None:
            run.stop(~(work.model.grad_abs_max() <= rule.grad_limit), diverged=True)
            if not run.any_active():
                run.seconds += time.perf_counter() - started
                break
        if clip is not None:
            work.model.clip_grad_norm(clip)
        work.optimizer.step(run.work_active())
        run.updates = t + 1
        run.seconds += time.perf_counter() - started
        if meter is not None:
            meter.step(t + 1, steps)
        for monitor in monitors:
            monitor.after_update(run)
        if not run.any_active():
            break
        if t + 1 < steps:
            run.compact()
    run.finish()
    for monitor in monitors:
        monitor.finish(run)
    return run


# -- progress within a batch ------------------------------------------------------------------
class StepMeter:
    """How far the batch being trained in this process has got, told to `sink` as a
    fraction (0 to 1) at most every `every` seconds; the executors pass it on to the
    command line's progress (executors.py). It reads the clock only: no number depends on
    it. A batch that trains several stacks one after another gives each its share
    (`share`); otherwise one `train` is the whole batch."""

    def __init__(self, sink: Callable[[float], None], every: float):
        self.sink, self.every = sink, every
        self.base, self.span = 0.0, 1.0  # the part of the batch the current `train` covers
        self.due = time.monotonic() + every

    def step(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now >= self.due:
            self.due = now + self.every
            self.sink(self.base + self.span * done / max(total, 1))


_meter: ContextVar[StepMeter | None] = ContextVar("actlab_step_meter", default=None)


@contextmanager
def reporting(sink: Callable[[float], None], every: float) -> Iterator[StepMeter]:
    """Every `train` inside the block tells `sink` how far the batch has got, at most
    every `every` seconds."""
    token = _meter.set(StepMeter(sink, every))
    try:
        yield _meter.get()
    finally:
        _meter.reset(token)


@contextmanager
def share(start: float, stop: float) -> Iterator[None]:
    """Inside the block, training covers the fraction `start` to `stop` of the batch (of
    the part that the enclosing block covers, if any)."""
    meter = _meter.get()
    if meter is None:
        yield
        return
    base, span = meter.base, meter.span
    meter.base, meter.span = base + span * start, span * (stop - start)
    try:
        yield
    finally:
        meter.base, meter.span = base, span


def mse(model, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return model.mse(out, y)


def train_regression(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer,
    steps: int,
    rule: DivergenceRule = DivergenceRule(),
    clip: float | None = None,
    monitors: Sequence = (),
) -> TrainResult:
    """The tutorial's protocol: full-batch mean squared error. x and y are shared by all
    members (`[batch, n]`) or per member (`[M, batch, n]`). After the last step one more
    forward gives the loss after the final update, which the protocol's "last recorded
    loss" misses. `monitors` run as in `train` (e.g. monitors.StopBelow, monitors.Plateau)."""
    from actlab.engine.feeds import FullBatch

    data = FullBatch(x, y, per_member=(x.dim() == 3, y.dim() == 3))
    run = train(model, data, mse, optimizer, steps, rule, clip=clip, monitors=monitors)
    with torch.no_grad():
        loss_after = model.mse(model.forward(x), y).double().cpu().numpy()
    losses = run.losses.cpu().numpy()
    return TrainResult(
        losses=losses,
        diverged=run.diverged.cpu().numpy(),
        steps_completed=np.asarray(optimizer.steps, dtype=np.int64),
        last_recorded_loss=last_finite(losses),
        loss_after=loss_after,
    )


def drop_stopped(model, optimizer, work, work_optimizer, rows, active):
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
