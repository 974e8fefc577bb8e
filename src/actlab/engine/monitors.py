"""Monitors: what the training loop (train.py) runs after each update, beside training.

A monitor has three methods, each given the loop's state (train.Training):
  start(run)          before the first step, on the whole stack
  after_update(run)   after each step's update, on the working stack (`run.work`); it
                      may stop members (`run.stop`)
  finish(run)         after the loop, on the whole stack holding the final parameters

Evaluate       a metric every `every` updates and after the last (MNIST-1D's test accuracy)
EarlyStopping  the lowest validation loss's parameters kept and restored, a member
               stopped after `patience` updates without a new lowest (real_data)
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
