"""Training a batch of mnist1d trials: one architecture, stacked, the repository's protocol."""

from __future__ import annotations

import math
import time
from typing import Any

from actlab.studies.base import RunContext, Trial, applied, learned_rows, nan_if

# Per activation, its members' training step is timed this often, in steps after a warm-up.
TIMED_STEPS, TIMED_REPEATS, WARM_STEPS = 5, 3, 2


def dataset(ctx: RunContext) -> dict:
    from actlab.data import mnist1d_dataset

    data = mnist1d_dataset(**ctx.config.data)
    held = ctx.config.holdout
    if held:  # the last `held` training samples become the evaluation set
        data = {
            "x": data["x"][:-held],
            "y": data["y"][:-held],
            "x_test": data["x"][-held:],
            "y_test": data["y"][-held:],
        }
    return {
        k: v.to(ctx.device, ctx.torch_dtype) if v.is_floating_point() else v.to(ctx.device)
        for k, v in data.items()
    }


def init_seed(run_seed: int, architecture: str, shape: dict, seed: int) -> int:
    """The stream a network's initial weights are drawn from: not the activation's, so every
    activation of a seed starts from the same weights (common random numbers)."""
    from actlab.engine import derive_seed

    return derive_seed(run_seed, "mnist1d", "init", architecture, sorted(shape.items()), seed)


def build(trials: list[Trial], ctx: RunContext):
    """The stack of a batch: every trial's network from its seed's initial weights (the same
    for every activation within a seed: common random numbers, so comparisons are paired)."""
    from actlab.engine.architectures import get_architecture

    name = trials[0].params["architecture"]
    arch = get_architecture(name)
    shape = ctx.config.shape(name)
    acts = [applied(ctx.activations[t.activation]) for t in trials]
    members = [
        arch.initial(shape, init_seed(ctx.run_seed, name, shape, t.seed), ctx.torch_dtype, act)
        for t, act in zip(trials, acts, strict=True)
    ]
    return arch(shape, members, acts, exact=ctx.exact, device=ctx.device)


def stack_groups(trials: list[Trial], ctx: RunContext) -> list[list[int]]:
    """Indices of the trials that can share one stack: fixed activations together, each
    learnable parameter signature apart (their parameters must have one layout)."""
    groups: dict[tuple | None, list[int]] = {}
    for i, t in enumerate(trials):
        family = ctx.activations[t.activation].learnable
        groups.setdefault(None if family is None else family.signature(), []).append(i)
    return list(groups.values())


def step_seconds(net, trials: list[Trial], data: dict, ctx: RunContext) -> dict[str, float]:
    """Per activation: seconds of one training step (forward, backward, Adam) per network,
    timed on a stack of that activation's members of the batch (a copy: the trained
    parameters are not touched), median of TIMED_REPEATS runs of TIMED_STEPS steps."""
    rows_of: dict[str, list[int]] = {}
    for m, t in enumerate(trials):
        rows_of.setdefault(t.activation, []).append(m)
    return {
        act: timed_step(net.subset(rows if len(rows) > 1 else rows * 2), data, ctx.config)
        for act, rows in rows_of.items()
    }


def timed_step(stack, data: dict, cfg) -> float:
    import statistics

    import torch

    from actlab.engine.feeds import batch_rows
    from actlab.engine.losses import cross_entropy
    from actlab.engine.optim import StackedAdam

    x, y = data["x"], data["y"]
    optimizer = StackedAdam(stack, cfg.lr)
    active = torch.ones(stack.n_members, dtype=torch.bool)

    def step(k: int) -> None:
        r = batch_rows(len(x), cfg.batch, k)
        stack.zero_grad()
        cross_entropy(stack.forward(x[r]), y[r], stack.exact).sum().backward()
        optimizer.step(active)

    for k in range(WARM_STEPS):
        step(k)
    times = []
    for _ in range(TIMED_REPEATS):
        clock = time.perf_counter()
        for k in range(TIMED_STEPS):
            step(k)
        times.append((time.perf_counter() - clock) / TIMED_STEPS / stack.n_members)
    return statistics.median(times)


def window_means(losses, eval_steps: list[int]) -> list[float]:
    """The mean recorded training loss over the steps since the previous evaluation."""
    import numpy as np

    out, start = [], 0
    for stop in eval_steps:
        window = losses[start:stop]
        window = window[~np.isnan(window)]
        out.append(float(window.mean()) if window.size else math.nan)
        start = stop
    return out


def best(values) -> float:
    import numpy as np

    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else math.nan


def run_trials(trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
    from actlab.engine.train import share

    data = dataset(ctx)
    out: list[list[dict[str, Any]]] = [[] for _ in trials]
    begun = 0  # trials of the batch trained so far: each stack's share of its progress
    for group in stack_groups(trials, ctx):
        with share(begun / len(trials), (begun + len(group)) / len(trials)):
            rows = train_stack([trials[i] for i in group], data, ctx)
        begun += len(group)
        for i, r in zip(group, rows, strict=True):
            out[i] = r
    return out


def train_stack(trials: list[Trial], data: dict, ctx: RunContext) -> list[list[dict[str, Any]]]:
    import numpy as np

    from actlab.engine.classify import train_classifier

    cfg = ctx.config
    net = build(trials, ctx)
    result = train_classifier(
        net,
        data,
        cfg.steps,
        lr=cfg.lr,
        batch=cfg.batch,
        eval_every=cfg.eval_every,
        loss_limit=cfg.loss_limit,
    )
    seconds = step_seconds(net, trials, data, ctx) if cfg.time_steps else None
    out = []
    for m, trial in enumerate(trials):
        diverged = bool(result.diverged[m])
        accuracy = result.test_accuracy[m]
        recorded = result.losses[m][~np.isnan(result.losses[m])]
        final_window = result.losses[m][-min(cfg.eval_every, cfg.steps) :]
        rows = [
            {"metric": "test_accuracy", "value": nan_if(diverged, accuracy[-1])},
            {"metric": "best_test_accuracy", "value": nan_if(diverged, best(accuracy))},
            {"metric": "final_loss", "value": nan_if(diverged, np.mean(final_window))},
            {"metric": "diverged", "value": float(diverged)},
            {"metric": "steps_run", "value": float(recorded.size)},
        ]
        if seconds is not None:
            rows.append({"metric": "step_time", "value": seconds[trial.activation]})
        rows += learned_rows(net, m, diverged)
        rows += [
            {"metric": "test_accuracy", "step": step, "value": float(v)}
            for step, v in zip(result.eval_steps, accuracy, strict=True)
            if not math.isnan(v)
        ]
        rows += [
            {"metric": "train_loss", "step": step, "value": v}
            for step, v in zip(
                result.eval_steps, window_means(result.losses[m], result.eval_steps), strict=True
            )
            if not math.isnan(v)
        ]
        out.append(rows)
    return out
