"""Training a batch of real_data trials: full batch, early stopping with the best
parameters restored, and the rows each trial gets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from actlab.studies.base import RunContext, Trial, build_stack, learned_rows, nan_if
from actlab.studies.real_data.config import DATASETS, Config
from actlab.studies.real_data.data import stacked_data


@dataclass
class Fit:
    """A trained stack with each member's best-validation parameters restored."""

    model: Any  # StackedMLP, best parameters restored
    last_flat: Any  # [M, P] the parameters when each member stopped
    data: dict[str, Any]  # split -> (x [M, n, in], y [M, n])
    diverged: Any  # bool [M] numpy
    best_epoch: Any  # int [M]
    epochs_run: Any  # int [M]
    val_accuracy: list[list[float]]  # per member, epochs 0 .. its last


def member_losses(model, logits, y):
    """Per-member mean cross-entropy, [M]: one reduction per member (batch invariant)."""
    import torch
    import torch.nn.functional as F

    return torch.stack([F.cross_entropy(logits[m], y[m]) for m in range(model.n_members)])


def evaluate(model, x, y):
    """(loss float64 [M], accuracy float64 [M]) under no_grad."""
    import torch

    with torch.no_grad():
        logits = model.forward(x)
        loss = member_losses(model, logits, y).double()
        accuracy = (logits.argmax(dim=2) == y).double().mean(dim=1)
    return loss, accuracy


def fit(trials: list[Trial], ctx: RunContext) -> Fit:
    """Train every trial of a batch with early stopping; see the package docstring."""
    import numpy as np

    from actlab.engine import DivergenceRule, layer_sizes, make_optimizer, train
    from actlab.engine.feeds import FullBatch
    from actlab.engine.monitors import EarlyStopping

    cfg: Config = ctx.config
    p = trials[0].params
    info = DATASETS[p["dataset"]]
    data = stacked_data(trials, ctx)
    model = build_stack(
        trials, ctx, layer_sizes(info.features, p["width"], p["depth"], out_dim=info.classes)
    )
    optimizer = make_optimizer(p["optimizer"], model, [t.params["lr"] for t in trials])
    validation = FullBatch(*data["val"], per_member=True)

    def validate(stack, index):
        return evaluate(stack, *validation.batch(0, index))

    stopping = EarlyStopping(validate, cfg.patience, cfg.loss_limit)
    run = train(
        model,
        FullBatch(*data["train"], per_member=True),
        member_losses,
        optimizer,
        cfg.max_epochs,
        DivergenceRule(loss_limit=cfg.loss_limit),
        monitors=[stopping],
    )
    return Fit(
        model=model,
        last_flat=stopping.last_flat,
        data=data,
        diverged=run.diverged.cpu().numpy(),
        best_epoch=stopping.best_step.cpu().numpy(),
        epochs_run=np.asarray(optimizer.steps),
        val_accuracy=stopping.history,
    )


def first_reaching(history: list[float], target: float) -> float:
    """The first epoch whose validation accuracy is at least the target; NaN if none."""
    return next((float(e) for e, a in enumerate(history) if a >= target), math.nan)


def run_trials(trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
    """Rows per trial: the scalar metrics, the learned parameters and the validation
    accuracy per epoch."""
    cfg: Config = ctx.config
    result = fit(trials, ctx)
    test_loss, test_acc = evaluate(result.model, *result.data["test"])
    train_loss, _ = evaluate(result.model, *result.data["train"])
    rows = []
    for m in range(len(trials)):
        diverged = bool(result.diverged[m])
        history = result.val_accuracy[m]
        trial_rows = [
            {"metric": "test_accuracy", "value": nan_if(diverged, test_acc[m])},
            {"metric": "test_loss", "value": nan_if(diverged, test_loss[m])},
            {"metric": "final_loss", "value": nan_if(diverged, train_loss[m])},
            {"metric": "best_epoch", "value": nan_if(diverged, result.best_epoch[m])},
            {
                "metric": "epochs_to_target",
                "value": nan_if(diverged, first_reaching(history, cfg.target_accuracy)),
            },
            {"metric": "epochs_run", "value": float(result.epochs_run[m])},
            {"metric": "diverged", "value": float(diverged)},
        ]
        trial_rows += learned_rows(result.model, m, diverged)
        trial_rows += [
            {"metric": "val_accuracy", "step": epoch, "value": float(v)}
            for epoch, v in enumerate(history)
        ]
        rows.append(trial_rows)
    return rows
