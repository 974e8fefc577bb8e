"""Minibatch classification training of a stack: the MNIST-1D repository's protocol.

Each step, read top to bottom (reference.classify is the same loop for one network):
  1. the next `batch` training samples, taken in order and wrapping around;
  2. forward, per-member cross-entropy;
  3. divergence rule: a member whose loss is NaN, infinite or above `loss_limit` has
     diverged and stops here (its loss is not recorded, its parameters are frozen);
  4. record the loss, backward, an Adam update of the members still active;
  5. every `eval_every` steps, and after the last, each active member's test accuracy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from actlab.engine.losses import accuracy, cross_entropy
from actlab.engine.optim import StackedAdam


@dataclass
class ClassifyResult:
    losses: np.ndarray  # [M, steps] training loss per step, NaN once stopped
    eval_steps: list[int]  # the steps after which the test accuracy was measured
    test_accuracy: np.ndarray  # [M, len(eval_steps)] fractions, NaN once diverged
    diverged: np.ndarray  # bool [M]
    seconds: float  # wall time of the training steps (evaluations excluded)


def batches(n: int, batch: int, step: int) -> slice:
    start = (step * batch) % n
    return slice(start, start + batch)


def train_classifier(
    model,
    data: dict,
    steps: int,
    *,
    lr: float = 1e-2,
    batch: int = 100,
    eval_every: int = 250,
    loss_limit: float = 1e6,
) -> ClassifyResult:
    x, y, x_test, y_test = data["x"], data["y"], data["x_test"], data["y_test"]
    m = model.n_members
    optimizer = StackedAdam(model, lr)
    active = torch.ones(m, dtype=torch.bool)
    losses = np.full((m, steps), math.nan)
    eval_steps: list[int] = []
    evaluations: list[np.ndarray] = []
    seconds = 0.0

    def evaluate(step: int) -> None:
        with torch.no_grad():
            hits = accuracy(model.forward(x_test), y_test).cpu().numpy()
        eval_steps.append(step)
        evaluations.append(np.where(active.numpy(), hits, math.nan))

    for step in range(steps):
        started = time.perf_counter()
        rows = batches(len(x), batch, step)
        model.zero_grad()
        loss = cross_entropy(model.forward(x[rows]), y[rows], model.exact)
        value = loss.detach()
        active &= torch.isfinite(value) & (value <= loss_limit)
        if not bool(active.any()):
            seconds += time.perf_counter() - started
            break
        losses[:, step] = np.where(active.numpy(), value.double().numpy(), math.nan)
        loss.sum().backward()
        optimizer.step(active)
        seconds += time.perf_counter() - started
        if eval_every and (step + 1) % eval_every == 0:
            evaluate(step + 1)
    if not eval_steps or eval_steps[-1] != steps:
        evaluate(steps)
    return ClassifyResult(
        losses=losses,
        eval_steps=eval_steps,
        test_accuracy=np.stack(evaluations, axis=1),
        diverged=~active.numpy(),
        seconds=seconds,
    )
