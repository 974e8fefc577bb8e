"""Minibatch classification training of a stack: the MNIST-1D repository's protocol,
run by the one training loop (train.py):
  - the next `batch` training samples each step, taken in order and wrapping around
    (feeds.Minibatches);
  - per-member cross-entropy (losses.py), Adam;
  - the loss rule: a member whose loss is NaN, infinite or above `loss_limit` has diverged
    and stops there (its loss is not recorded, its parameters are frozen);
  - every `eval_every` steps, and after the last, each active member's test accuracy
    (monitors.Evaluate).
reference.classify is the same loop for one network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actlab.engine.feeds import Minibatches
from actlab.engine.losses import accuracy, cross_entropy
from actlab.engine.monitors import Evaluate
from actlab.engine.optim import StackedAdam
from actlab.engine.train import DivergenceRule, train


@dataclass
class ClassifyResult:
    losses: np.ndarray  # [M, steps] training loss per step, NaN once stopped
    eval_steps: list[int]  # the steps after which the test accuracy was measured
    test_accuracy: np.ndarray  # [M, len(eval_steps)] fractions, NaN once diverged
    diverged: np.ndarray  # bool [M]
    seconds: float  # wall time of the training steps (evaluations excluded)


def member_cross_entropy(model, out, y):
    return cross_entropy(out, y, model.exact)


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
    x_test, y_test = data["x_test"], data["y_test"]
    test = Evaluate(lambda net: accuracy(net.forward(x_test), y_test), eval_every)
    run = train(
        model,
        Minibatches(data["x"], data["y"], batch),
        member_cross_entropy,
        StackedAdam(model, lr),
        steps,
        DivergenceRule(loss_limit=loss_limit),
        monitors=[test],
    )
    return ClassifyResult(
        losses=run.losses.cpu().numpy(),
        eval_steps=test.steps,
        test_accuracy=test.values,
        diverged=run.diverged.cpu().numpy(),
        seconds=run.seconds,
    )
