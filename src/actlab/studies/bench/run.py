"""Training a batch of bench trials: one activation's seeds, as one stack where the model
allows it.

Stacked with the library: the members' parameters are stacked by
`torch.func.stack_module_state` and the model is called once for all of them through
`vmap(functional_call)`. Adam, AdamW and SGD update each element on its own, so one
optimiser over the stacked tensors is each member's own optimiser; the loss is the sum of
the members' mean losses, so each member's gradient is its own; gradient clipping is by
each member's norm. A model with buffers (batch-norm statistics) is trained one member
at a time (`torch.func` would not update the statistics in place): the same loop, members
called in turn.

Data order: each seed draws its batches from its own generator (not the activation's),
so every activation of a seed sees the same batches in the same order.

Rows per trial: test_accuracy (classification), test_loss, train_loss (on the whole
training split), diverged, steps, stacked (1 if trained in a stack), seconds_per_step (the
stack's step time over its members); per evaluation step: test_loss, test_accuracy and
loss (the training batch's); sites (activation modules in the model) and replaced (how
many replaced the model's own; absent with act_layer). Per activation site and parameterised module (units.py):
zero_slope_rate and saturated_rate on the initial weights (`_init`) and after training,
grad_norm_init (the first step's gradients) and grad_norm (the last step's).
"""

from __future__ import annotations

import math
import time
from typing import Any

from actlab.studies.base import RunContext, Trial, nan_if
from actlab.studies.bench.units import (
    PROBE,
    grad_rows,
    layer_grad_norms,
    site_slopes,
    slope_rows,
)

EVAL_CHUNK = 4096  # test samples evaluated at once


def run_trials(trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
    import torch

    from actlab.studies.bench.model import build_model, load_object

    cfg = ctx.config
    data = cached_data(cfg.data, cfg.task)
    factory = load_object(cfg.model, "model")
    activation = ctx.activations[trials[0].activation]
    seeds = [member_seeds(ctx.run_seed, t.seed) for t in trials]
    built = [build_model(factory, activation, init, cfg.replace) for init, _ in seeds]
    device = torch.device(ctx.device)
    models = [m.to(device) for m, _ in built]
    placed = placement_rows(models[0], built[0][1])
    if cfg.train:
        train_fn = load_object(cfg.train, "train function")
        return [
            user_trained(train_fn, m, data, t.seed, ctx.device) + placed
            for m, t in zip(models, trials, strict=True)
        ]
    orders = [torch.Generator().manual_seed(order) for _, order in seeds]
    probe = data.x_test[:PROBE].to(device)
    at_init = InTurn(models).slopes(probe)  # before the stack copies the weights
    members = Stack(models) if cfg.stack and stackable(models[0]) else InTurn(models)
    trained = train(members, data, orders, cfg, device)
    return [
        rows + slope_rows(s, "_init") + placed for rows, s in zip(trained, at_init, strict=True)
    ]


def placement_rows(model, replaced: int | None) -> list[dict[str, Any]]:
    """How the activation went in: `sites`, the activation modules in the model, and
    `replaced`, how many of them replaced the model's own (none where act_layer took it)."""
    from actlab.nn import Activation

    rows = [
        {"metric": "sites", "value": float(sum(isinstance(m, Activation) for m in model.modules()))}
    ]
    if replaced is not None:
        rows.append({"metric": "replaced", "value": float(replaced)})
    return rows


_DATA: dict[tuple, Any] = {}


def cached_data(spec: str, task: str):
    """The data, loaded once per process (a worker trains many batches)."""
    from actlab.studies.bench.data import load_data

    key = (spec, task)
    if key not in _DATA:
        _DATA[key] = load_data(spec, task)
    return _DATA[key]


def member_seeds(run_seed: int, seed: int) -> tuple[int, int]:
    """(the torch seed set before the factory, the seed of the batch order's generator) of
    seed `seed` in a run with `run_seed`: the run's and the seed's, not the activation's
    (common random numbers), so every activation of a seed gets the same two."""
    from actlab.engine.seeding import derive_seed

    return (
        derive_seed(run_seed, "bench", "init", seed) % 2**31,
        derive_seed(run_seed, "bench", "order", seed) % 2**31,
    )


def stackable(model) -> bool:
    return not any(True for _ in model.buffers())


class Stack:
    """The members as one model over stacked parameters (torch.func)."""

    stacked = True

    def __init__(self, models) -> None:
        import copy

        from torch.func import stack_module_state

        self.n = len(models)
        params, _ = stack_module_state(models)
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        self.base = copy.deepcopy(models[0]).to("meta")
        self.template = models[0]  # a real module to call one member's parameters in

    def parameters(self) -> list:
        return list(self.params.values())

    def __call__(self, x):
        """x: [members, batch, ...] -> [members, batch, ...]."""
        from torch.func import functional_call, vmap

        def one(params, xs):
            return functional_call(self.base, params, (xs,))

        return vmap(one, randomness="different")(self.params, x)

    def member_norms(self):
        import torch

        total = torch.zeros(self.n)
        for p in self.params.values():
            if p.grad is not None:
                total += p.grad.detach().reshape(self.n, -1).pow(2).sum(1).cpu()
        return total.sqrt()

    def scale_grads(self, factors) -> None:
        for p in self.params.values():
            if p.grad is not None:
                shape = (self.n,) + (1,) * (p.dim() - 1)
                p.grad.mul_(factors.to(p.grad.device, p.grad.dtype).reshape(shape))

    def named_grads(self):
        return [(k, p.grad) for k, p in self.params.items()]

    def slopes(self, x) -> list:
        return [
            site_slopes(self.template, x, {k: v[i].detach() for k, v in self.params.items()})
            for i in range(self.n)
        ]

    def train(self, mode: bool) -> None:
        self.base.train(mode)
        self.template.train(mode)


class InTurn:
    """The members called one after another (a model torch.func cannot stack)."""

    stacked = False

    def __init__(self, models) -> None:
        self.models, self.n = models, len(models)

    def parameters(self) -> list:
        return [p for m in self.models for p in m.parameters()]

    def __call__(self, x):
        import torch

        return torch.stack([m(x[i]) for i, m in enumerate(self.models)])

    def member_norms(self):
        import torch

        norms = []
        for m in self.models:
            sq = sum(
                float(p.grad.detach().pow(2).sum()) for p in m.parameters() if p.grad is not None
            )
            norms.append(math.sqrt(sq))
        return torch.tensor(norms)

    def scale_grads(self, factors) -> None:
        for m, f in zip(self.models, factors.tolist(), strict=True):
            for p in m.parameters():
                if p.grad is not None:
                    p.grad.mul_(f)

    def named_grads(self):
        import torch

        grads = []
        for name, first in self.models[0].named_parameters():
            each = [dict(m.named_parameters())[name].grad for m in self.models]
            if all(g is None for g in each):
                grads.append((name, None))
            else:
                zero = torch.zeros_like(first)
                grads.append((name, torch.stack([zero if g is None else g for g in each])))
        return grads

    def slopes(self, x) -> list:
        self.train(False)
        found = [site_slopes(m, x) for m in self.models]
        self.train(True)
        return found

    def train(self, mode: bool) -> None:
        for m in self.models:
            m.train(mode)


def optimizer(members, cfg):
    import torch

    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    extra = {"momentum": cfg.momentum} if cfg.optimizer == "sgd" else {}
    return kinds[cfg.optimizer](
        members.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **extra
    )


def losses(out, y, task: str):
    """Per member mean loss: out [M, B, ...], y [M, B, ...] -> [M]."""
    import torch.nn.functional as F

    if task == "classification":
        m, b = out.shape[:2]
        per = F.cross_entropy(out.reshape(m * b, -1), y.reshape(-1), reduction="none")
        return per.reshape(m, b).mean(1)
    out = out.reshape(y.shape) if out.numel() == y.numel() else out
    return (out - y).pow(2).reshape(out.shape[0], -1).mean(1)


def evaluate(members, x, y, task: str):
    """Per member (loss, accuracy or NaN) on (x, y), in chunks, without gradients."""
    import torch

    members.train(False)
    total_loss = torch.zeros(members.n)
    correct = torch.zeros(members.n)
    with torch.no_grad():
        for start in range(0, len(x), EVAL_CHUNK):
            xb, yb = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
            out = members(xb.expand(members.n, *xb.shape))
            ys = yb.expand(members.n, *yb.shape)
            total_loss += losses(out, ys, task).cpu() * len(xb)
            if task == "classification":
                correct += (out.argmax(-1) == ys).sum(1).cpu().float()
    members.train(True)
    accuracy = correct / len(x) if task == "classification" else torch.full((members.n,), math.nan)
    return total_loss / len(x), accuracy


def batches(n: int, size: int, generator):
    """Endless batches of indices: a fresh permutation of the n samples each epoch."""
    import torch

    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - size + 1 if n >= size else 1, size):
            yield order[start : start + size]


def train(members, data, orders, cfg, device) -> list[list[dict[str, Any]]]:
    """The loop, read top to bottom: draw each member's batch, one step for all, clip by
    member, evaluate every `eval_every` steps; a member whose loss is not finite or passes
    `loss_limit` has diverged (its later steps do not count)."""
    import torch

    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    opt = optimizer(members, cfg)
    streams = [batches(len(x_train), min(cfg.batch, len(x_train)), g) for g in orders]
    diverged = torch.zeros(members.n, dtype=torch.bool)
    curves: list[list[dict[str, Any]]] = [[] for _ in range(members.n)]
    members.train(True)
    seconds = 0.0
    for step in range(1, cfg.steps + 1):
        # 1. each member's batch, by its seed's order
        index = torch.stack([next(s) for s in streams]).to(device)
        xb, yb = x_train[index], y_train[index]
        # 2. one step for every member: the sum of their losses
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = losses(members(xb), yb, data.task)
        loss.sum().backward()
        if step in (1, cfg.steps):  # each module's gradient, before clipping
            grad_last = layer_grad_norms(members.named_grads(), members.n)
            if step == 1:
                grad_first = grad_last
        # 3. clip by each member's own gradient norm
        if cfg.clip:
            norms = members.member_norms()
            members.scale_grads((cfg.clip / (norms + 1e-6)).clamp(max=1.0))
        opt.step()
        seconds += time.perf_counter() - start
        # 4. divergence and the curves
        step_loss = loss.detach().cpu()
        diverged |= ~torch.isfinite(step_loss) | (step_loss > cfg.loss_limit)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            test_loss, test_acc = evaluate(members, x_test, y_test, data.task)
            for m in range(members.n):
                if diverged[m]:
                    continue
                curves[m] += [
                    {"metric": "loss", "step": step, "value": float(step_loss[m])},
                    {"metric": "test_loss", "step": step, "value": float(test_loss[m])},
                ]
                if data.task == "classification":
                    curves[m].append(
                        {"metric": "test_accuracy", "step": step, "value": float(test_acc[m])}
                    )
    # 5. the final measurements
    test_loss, test_acc = evaluate(members, x_test, y_test, data.task)
    train_loss, _ = evaluate(members, x_train, y_train, data.task)
    members.train(False)
    slopes = members.slopes(x_test[:PROBE])
    members.train(True)
    out = []
    for m in range(members.n):
        gone = bool(diverged[m]) or not math.isfinite(float(test_loss[m]))
        rows = [
            {"metric": "test_loss", "value": nan_if(gone, test_loss[m])},
            {"metric": "train_loss", "value": nan_if(gone, train_loss[m])},
            {"metric": "diverged", "value": float(gone)},
            {"metric": "steps", "value": float(cfg.steps)},
            {"metric": "stacked", "value": float(members.stacked)},
            {"metric": "seconds_per_step", "value": seconds / cfg.steps / members.n},
        ]
        if data.task == "classification":
            rows.append({"metric": "test_accuracy", "value": nan_if(gone, test_acc[m])})
        rows += grad_rows(grad_first[m], "grad_norm_init")
        if not gone:  # a diverged network's units and gradients are not measurements
            rows += grad_rows(grad_last[m], "grad_norm") + slope_rows(slopes[m])
        rows.append({"metric": "probe_samples", "value": float(len(x_test[:PROBE]))})
        out.append(rows + curves[m])
    return out


def user_trained(train_fn, model, data, seed: int, device: str) -> list[dict[str, Any]]:
    """A user's train function `(model, data, seed, device) -> {metric: value}`: its
    numbers as rows; a non-finite one marks the member diverged."""
    from actlab.errors import UserError

    start = time.perf_counter()
    metrics = train_fn(model, data, seed, device)
    took = time.perf_counter() - start
    if not isinstance(metrics, dict) or not metrics:
        raise UserError(
            f"train function returned a {type(metrics).__name__}; return a dict of metric "
            "names to numbers, e.g. {'test_accuracy': 0.93}"
        )
    values = {str(k): float(v) for k, v in metrics.items()}
    gone = not all(math.isfinite(v) for v in values.values())
    rows = [{"metric": k, "value": nan_if(gone, v)} for k, v in values.items()]
    return rows + [
        {"metric": "diverged", "value": float(gone)},
        {"metric": "stacked", "value": 0.0},
        {"metric": "seconds", "value": took},
    ]
