"""Monitors: what the training loop (train.py) runs after each update, beside training.

A monitor has three methods, each given the loop's state (train.Training):
  start(run)          before the first step, on the whole stack
  after_update(run)   after each step's update, on the working stack (`run.work`); it
                      may stop members (`run.stop`)
  finish(run)         after the loop, on the whole stack holding the final parameters
and may have a fourth:
  after_loss(run, t)  after step t's loss is recorded, before the backward pass and the
                      update; a member it stops keeps the parameters that loss belongs to

Evaluate       a metric every `every` updates and after the last (MNIST-1D's test accuracy)
EarlyStopping  the lowest validation loss's parameters kept and restored, a member
               stopped after `patience` updates without a new lowest (real_data)
StopBelow      a member stopped, before its update, at the first step whose training loss
               is below a threshold (stability: train until learned)
Plateau        whether a member's training loss has stopped improving (no relative fall of
               `min_improvement` in `patience` updates); stops it there (if its loss is
               below a given level), or only records it (capacity: train to a plateau, or
               label how a fixed budget ended)

StopBelow and Plateau read the loss the loop recorded (the loss before that step's update),
so they cost no extra forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from actlab.engine.train import Training, loss_is_bad


class Evaluate:
    """`metric(model)` -> `[members]` every `every` updates (0: only after the last), and
    after the last step when that is not already one; NaN for a member not training at
    the time (the final one: a member that diverged). `steps` and `values` `[M, evals]`
    hold the results."""

    def __init__(self, metric: Callable[[object], torch.Tensor], every: int) -> None:
        self.metric, self.every = metric, every
        self.steps: list[int] = []
        self._columns: list[np.ndarray] = []

    @property
    def values(self) -> np.ndarray:
        return np.stack(self._columns, axis=1)

    def start(self, run: Training) -> None:
        self.steps, self._columns = [], []

    def after_update(self, run: Training) -> None:
        if self.every and run.updates % self.every == 0:
            self._measure(run, run.updates)

    def finish(self, run: Training) -> None:
        if not self.steps or self.steps[-1] != run.steps:
            self._measure(run, run.steps)

    def _measure(self, run: Training, step: int) -> None:
        work = run.work
        with torch.no_grad():
            value = self.metric(work.model).double().cpu()
        column = np.full(run.model.n_members, math.nan)
        live = run.work_active().cpu()
        column[work.index.cpu()[live].numpy()] = value[live].numpy()
        self.steps.append(step)
        self._columns.append(column)


class EarlyStopping:
    """Keeps each member's parameters with the lowest validation loss so far (the initial
    parameters count, unless their loss is bad) and stops a member when `patience` updates
    pass without a new lowest. A member whose validation loss is NaN, infinite or above
    `loss_limit` has diverged and stops at once. `validate(model, index)` gives the
    validation loss and accuracy (`[members]`, float64) of a stack holding the members
    `index`. At the end the best parameters are restored into the model.

    After training: `best_step` (0: the initial parameters), `last_flat` (the parameters
    each member stopped with) and `history` (per member, the validation accuracy after
    0, 1, ... updates, while it trained)."""

    def __init__(
        self,
        validate: Callable[[object, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        patience: int,
        loss_limit: float,
    ) -> None:
        self.validate, self.patience, self.loss_limit = validate, patience, loss_limit

    def start(self, run: Training) -> None:
        model = run.model
        self.best_flat = model.flat.detach().clone()
        self.best_step = torch.zeros(model.n_members, dtype=torch.long, device=model.flat.device)
        loss, accuracy = self.validate(model, run.work.index)
        self.best_loss = torch.where(loss_is_bad(loss, self.loss_limit), math.inf, loss)
        self.history = [[float(a)] for a in accuracy.cpu().tolist()]

    def after_update(self, run: Training) -> None:
        work = run.work
        index = work.index
        loss, accuracy = self.validate(work.model, index)
        run.stop(loss_is_bad(loss, self.loss_limit), diverged=True)
        live = run.work_active()
        for k in torch.nonzero(live).flatten().tolist():
            self.history[work.rows[k]].append(float(accuracy[k]))
        improved = live & (loss < self.best_loss[index])
        self.best_loss[index[improved]] = loss[improved]
        self.best_step[index[improved]] = run.updates
        self.best_flat[index[improved]] = work.model.flat[improved]
        run.stop((run.updates - self.best_step[index]) >= self.patience, diverged=False)

    def finish(self, run: Training) -> None:
        self.last_flat = run.model.flat.detach().clone()
        with torch.no_grad():
            run.model.flat.copy_(self.best_flat)


class StopBelow:
    """Stops a member (not diverged) at the first step whose recorded loss is below
    `threshold` (a number, or `[M]` per member), before that step's update: its final
    parameters are the ones whose loss fell below, and its updates applied are the step's
    index. `stopped[m]` says whether it stopped member m."""

    def __init__(self, threshold: float | torch.Tensor) -> None:
        self.threshold = threshold

    def start(self, run: Training) -> None:
        model = run.model
        device = model.flat.device
        limit = torch.as_tensor(self.threshold, dtype=torch.float64, device=device)
        self._limit = limit.expand(model.n_members).clone()
        self.stopped = torch.zeros(model.n_members, dtype=torch.bool, device=device)

    def after_loss(self, run: Training, step: int) -> None:
        index = run.work.index
        hit = run.work_active() & (run.losses[index, step] < self._limit[index])
        self.stopped[index[hit]] = True
        run.stop(hit, diverged=False)

    def after_update(self, run: Training) -> None:
        pass

    def finish(self, run: Training) -> None:
        pass


class Plateau:
    """A member's training loss has plateaued when `patience` updates have passed since it
    last fell below (1 - `min_improvement`) x its mark, the loss that last did so (the first
    recorded loss sets the mark). With `stop`, such a member stops there (not diverged) if
    its loss is below `stop_below` (a number or `[M]`; None: at any loss), so that a member
    resting on a plateau above it (e.g. a constant output's loss, which a network may yet
    leave) trains on; without `stop`, nothing changes.

    After training, per member: `plateaued` (it stopped on a plateau, or the rule held at
    its last step; never for a member that diverged) and `mark_step` (the step, 0-based,
    whose recorded loss set the last mark)."""

    def __init__(
        self,
        patience: int,
        min_improvement: float,
        *,
        stop: bool = True,
        stop_below: float | torch.Tensor | None = None,
    ) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1 (got {patience})")
        if not 0 <= min_improvement < 1:
            raise ValueError(f"min_improvement must be in [0, 1) (got {min_improvement})")
        self.patience, self.min_improvement, self.stop = patience, min_improvement, stop
        self.stop_below = stop_below

    def start(self, run: Training) -> None:
        model = run.model
        device = model.flat.device
        m = model.n_members
        self.mark = torch.full((m,), math.inf, dtype=torch.float64, device=device)
        self.mark_step = torch.zeros(m, dtype=torch.long, device=device)
        self.stopped = torch.zeros(m, dtype=torch.bool, device=device)
        self._below = None
        if self.stop_below is not None:
            below = torch.as_tensor(self.stop_below, dtype=torch.float64, device=device)
            self._below = below.expand(m).clone()

    def after_update(self, run: Training) -> None:
        step = run.updates - 1
        index = run.work.index
        live = run.work_active()
        loss = run.losses[index, step]
        improved = live & (loss < self.mark[index] * (1 - self.min_improvement))
        self.mark[index[improved]] = loss[improved]
        self.mark_step[index[improved]] = step
        if self.stop:
            flat = live & (step - self.mark_step[index] >= self.patience)
            if self._below is not None:
                flat &= loss < self._below[index]
            self.stopped[index[flat]] = True
            run.stop(flat, diverged=False)

    def finish(self, run: Training) -> None:
        held = run.updates - 1 - self.mark_step >= self.patience
        self.plateaued = self.stopped | (run.active & ~run.diverged & held)
