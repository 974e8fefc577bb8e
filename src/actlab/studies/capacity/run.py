"""The capacity study's grids and its training: one stack of networks per shape, every
target's trials in it, and the per-trial metrics of the module docstring."""

from __future__ import annotations

import math
from typing import Any

from actlab.studies.base import DEFAULT_INIT, RunContext, Trial, build_stack, learned_rows, nan_if
from actlab.studies.capacity.config import Config, target_fn


def grid_train(cfg: Config, dtype=None):
    """`[n_train, 1]` evenly spaced points on [x_min, x_max], ends included."""
    import torch

    return torch.linspace(cfg.x_min, cfg.x_max, cfg.n_train, dtype=dtype).unsqueeze(1)


def grid_test(cfg: Config, dtype=None):
    """`[n_test, 1]` evenly spaced points on [x_min, x_max]: the protocol's test set."""
    import torch

    return torch.linspace(cfg.x_min, cfg.x_max, cfg.n_test, dtype=dtype).unsqueeze(1)


def grid_extrap(cfg: Config, dtype=None):
    """`[2 n_extrap, 1]`: n_extrap evenly spaced points on [x_min - margin, x_min), then as
    many on (x_max, x_max + margin]; the training interval's ends are excluded."""
    import torch

    n, margin = cfg.n_extrap, cfg.extrap_margin
    left = torch.linspace(cfg.x_min - margin, cfg.x_min, n + 1, dtype=dtype)[:-1]
    right = torch.linspace(cfg.x_max, cfg.x_max + margin, n + 1, dtype=dtype)[1:]
    return torch.cat([left, right]).unsqueeze(1)


def train_trials(trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
    """Train one stack holding `trials` (one shape, any targets) and give each its rows."""
    import torch

    from actlab.engine import DivergenceRule, layer_sizes, make_optimizer, train_regression
    from actlab.engine.monitors import Plateau

    cfg: Config = ctx.config
    p = trials[0].params
    dtype = ctx.torch_dtype
    sizes = layer_sizes(1, p["width"], p["depth"])
    model = build_stack(trials, ctx, sizes, p.get("init", DEFAULT_INIT))
    grids = {
        "train": grid_train(cfg, dtype),
        "test": grid_test(cfg, dtype),
        "extrap": grid_extrap(cfg, dtype),
    }
    # y per member, [M, n, 1]: members may have different targets.
    ys = {
        k: torch.stack([target_fn(t.params["target"])(x) for t in trials]).to(ctx.device)
        for k, x in grids.items()
    }
    xs = {k: x.to(ctx.device) for k, x in grids.items()}
    optimizer = make_optimizer(p["optimizer"], model, p["lr"])
    line = cfg.learned_below * ys["train"].double().var(dim=1, unbiased=False).squeeze(1)
    # With until = "steps" the monitor only watches: every run takes every step.
    plateau = Plateau(
        cfg.patience,
        cfg.min_improvement,
        stop=p.get("until") == "plateau",
        stop_below=line,
    )
    result = train_regression(
        model,
        xs["train"],
        ys["train"],
        optimizer,
        p["steps"],
        DivergenceRule(),
        monitors=[plateau],
    )
    plateaued = plateau.plateaued.cpu().tolist()
    fitted = (torch.as_tensor(result.loss_after, device=line.device) < line).cpu().tolist()
    variances = ys["test"].double().var(dim=1, unbiased=False).squeeze(1).cpu().tolist()
    with torch.no_grad():
        outputs = {k: model.forward(xs[k]) for k in ("test", "extrap")}
        test_mse = model.mse(outputs["test"], ys["test"]).double().cpu().tolist()
        extrap_mse = model.mse(outputs["extrap"], ys["extrap"]).double().cpu().tolist()
        preds = {k: v.squeeze(2).double().cpu().tolist() for k, v in outputs.items()}
    rows = []
    for m in range(len(trials)):
        diverged = bool(result.diverged[m])
        trial_rows = [
            {"metric": "test_mse", "value": nan_if(diverged, test_mse[m])},
            {"metric": "extrap_mse", "value": nan_if(diverged, extrap_mse[m])},
            {"metric": "train_mse", "value": nan_if(diverged, result.loss_after[m])},
            {"metric": "diverged", "value": float(diverged)},
            {"metric": "steps_completed", "value": float(result.steps_completed[m])},
            {"metric": "ended_plateau", "value": nan_if(diverged, plateaued[m])},
            {"metric": "fitted", "value": nan_if(diverged, fitted[m])},
            {"metric": "target_variance", "value": variances[m]},
        ]
        trial_rows += learned_rows(model, m, diverged)
        # The training loss at each step the loop recorded (before that step's update), as
        # stability stores it; none after a run stopped (diverged, or on its plateau).
        trial_rows += [
            {"metric": "loss", "step": t + 1, "value": float(v)}
            for t, v in enumerate(result.losses[m])
            if not math.isnan(v)
        ]
        for metric, key in (("prediction", "test"), ("extrap_prediction", "extrap")):
            trial_rows += [
                {"metric": metric, "step": i, "value": nan_if(diverged, v)}
                for i, v in enumerate(preds[key][m])
            ]
        rows.append(trial_rows)
    return rows
