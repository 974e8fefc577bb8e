"""The plain reference: one network at a time, nn.Sequential and torch.optim.

This is what the tutorial did, written to be read. It is the oracle the stacked engine
is tested against (bit for bit in exact mode) and the baseline it is benchmarked against.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from actlab.engine.train import DivergenceRule, TrainResult

Params = list[tuple[torch.Tensor, torch.Tensor]]


class Act(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class LearnableAct(nn.Module):
    """A learnable activation at one site: its parameters as nn.Parameters (one value per
    layer, or one per unit along `unit_dim`), trained with the weights."""

    def __init__(self, family, units: int, unit_dim: int = -1, dtype=None) -> None:
        super().__init__()
        self.family, self.units, self.unit_dim = family, units, unit_dim
        for name, value in self.initial_values(dtype or torch.get_default_dtype()).items():
            self.register_parameter(name, nn.Parameter(value))

    def initial_values(self, dtype) -> dict[str, torch.Tensor]:
        """The declared initial values in `dtype` (not rounded through another dtype)."""
        return {spec.name: spec.initial(self.units, dtype) for spec in self.family.params}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {spec.name: getattr(self, spec.name) for spec in self.family.params}
        if self.unit_dim in (-1, x.dim() - 1):
            return self.family.apply(x, values)
        moved = x.movedim(self.unit_dim, -1)  # units last, where the values broadcast
        return self.family.apply(moved, values).movedim(-1, self.unit_dim)


def site_act(activation, units: int, unit_dim: int = -1, dtype=None) -> nn.Module:
    """The module of one activation site: a learnable family (learnable.Family) gets its
    own parameters there; a fixed function is applied as it is. Neither draws random
    numbers, so the weights drawn after it are the same for every activation."""
    from actlab.learnable import Family

    if isinstance(activation, Family):
        return LearnableAct(activation, units, unit_dim, dtype)
    return Act(activation)


class Residual(nn.Module):
    """x + block(x)."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def build_mlp(
    params: Params,
    activation: Callable[[torch.Tensor], torch.Tensor],
    *,
    norm: str | None = None,
    residual: bool = False,
) -> nn.Sequential:
    """Linear -> [norm ->] activation blocks, then a final Linear, loaded with the given
    parameters. norm: "batch" (BatchNorm1d, always in training mode: full-batch training
    and evaluation both use the batch statistics) or "layer" (LayerNorm over the width).
    residual: every hidden block after the first becomes x + block(x)."""
    layers: list[nn.Module] = []
    for i, (w, b) in enumerate(params):
        linear = nn.Linear(w.shape[1], w.shape[0], dtype=w.dtype)
        with torch.no_grad():
            linear.weight.copy_(w)
            linear.bias.copy_(b)
        if i == len(params) - 1:
            layers.append(linear)
            break
        block: list[nn.Module] = [linear]
        if norm == "batch":
            block.append(nn.BatchNorm1d(w.shape[0], dtype=w.dtype, track_running_stats=False))
        elif norm == "layer":
            block.append(nn.LayerNorm(w.shape[0], dtype=w.dtype))
        elif norm is not None:
            raise ValueError(f"unknown norm {norm!r}")
        block.append(site_act(activation, w.shape[0], dtype=w.dtype))
        if residual and i > 0:
            layers.append(Residual(nn.Sequential(*block)))
        else:
            layers.extend(block)
    return nn.Sequential(*layers)


def linears(model: nn.Module) -> list[nn.Linear]:
    return [layer for layer in model.modules() if isinstance(layer, nn.Linear)]


def norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.LayerNorm)]


def gradient_flow(params: Params, activation, x: torch.Tensor) -> list[float]:
    """Protocol experiment 1: loss = mean output, one backward; mean |dW| per layer."""
    model = build_mlp(params, activation)
    model(x).mean().backward()
    return [layer.weight.grad.abs().mean().item() for layer in linears(model)]


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    rule: DivergenceRule = DivergenceRule(),
    clip: float | None = None,
) -> tuple[list[float], bool, int]:
    """The protocol's training loop for one network, and nothing more: the loss is read
    once per step (one `.item()`) and judged in Python, as the original script does.
    Returns the recorded losses, whether the run diverged, and the updates applied. `clip`: the total gradient
    norm is clipped to this after the divergence checks, before the update."""
    losses: list[float] = []
    for t in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        value = loss.item()
        if not value <= rule.loss_limit:  # NaN, infinite or above the limit
            return losses, True, t
        losses.append(value)
        loss.backward()
        if rule.grad_limit is not None:
            largest = max(p.grad.abs().max().item() for p in model.parameters())
            if not largest <= rule.grad_limit:
                return losses, True, t
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip, foreach=False)
        optimizer.step()
    return losses, False, steps


def make_optimizer(model: nn.Module, optimizer: str, lr: float) -> torch.optim.Optimizer:
    opt_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer.lower()]
    return opt_cls(model.parameters(), lr=lr)


def train(
    params: Params,
    activation,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: str,
    lr: float,
    steps: int,
    rule: DivergenceRule = DivergenceRule(),
    *,
    norm: str | None = None,
    residual: bool = False,
    clip: float | None = None,
) -> tuple[TrainResult, nn.Sequential]:
    """`fit` one network built from `params`, then the oracle's bookkeeping: the loss
    after the last update (one more forward) and the engine's TrainResult shape."""
    model = build_mlp(params, activation, norm=norm, residual=residual)
    opt = make_optimizer(model, optimizer, lr)
    recorded, diverged, updates = fit(model, opt, x, y, steps, rule, clip)
    with torch.no_grad():
        loss_after = nn.functional.mse_loss(model(x), y).item()
    losses = np.full(steps, math.nan)
    losses[: len(recorded)] = recorded
    result = TrainResult(
        losses=losses[None, :],
        diverged=np.array([diverged]),
        steps_completed=np.array([updates]),
        last_recorded_loss=np.array([recorded[-1] if recorded else math.inf]),
        loss_after=np.array([loss_after]),
    )
    return result, model


# -- MNIST-1D: the repository's models and training protocol, one network at a time --------
# (Greydanus & Kobak 2020, github.com/greydanus/mnist1d, notebooks/models.py and train.py),
# with the activation under test in place of ReLU, and a small transformer of our own (the
# repository has none). They are the oracle the stacked
# architectures will be tested against, and the baseline they are benchmarked against.


class Mnist1dMLP(nn.Module):
    """40 -> hidden -> hidden (residual: h + f(W h + b)) -> 10."""

    def __init__(self, activation, hidden: int = 100, inputs: int = 40, classes: int = 10):
        super().__init__()
        self.act1 = site_act(activation, hidden)
        self.act2 = site_act(activation, hidden)
        self.linear1 = nn.Linear(inputs, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.linear1(x))
        h = h + self.act2(self.linear2(h))
        return self.linear3(h)


class Mnist1dCNN(nn.Module):
    """Three Conv1d layers (kernels 5, 3, 3; stride 2; padding 1), then a linear layer from
    the flattened features (channels x 5 for sequences of 40) to the classes."""

    def __init__(self, activation, channels: int = 25, length: int = 40, classes: int = 10):
        super().__init__()
        # One site per convolution; a unit is a channel (dimension 1 of [batch, channels, t]).
        self.act1, self.act2, self.act3 = (site_act(activation, channels, 1) for _ in range(3))
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        for conv in (self.conv1, self.conv2, self.conv3):
            length = (length + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
        self.linear = nn.Linear(channels * length, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.view(x.shape[0], 1, x.shape[-1])
        h = self.act1(self.conv1(h))
        h = self.act2(self.conv2(h))
        h = self.act3(self.conv3(h))
        return self.linear(h.flatten(1))


class SelfAttention(nn.Module):
    """Multi-head self-attention written out (q, k, v and output projections, softmax of
    scaled dot products per head), the form a stack of members can batch as one matmul over
    members x heads."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        if d_model % heads:
            from actlab.errors import UserError

            raise UserError(f"d_model {d_model} is not divisible by {heads} heads")
        self.heads = heads
        self.q, self.k, self.v = (nn.Linear(d_model, d_model) for _ in range(3))
        self.out = nn.Linear(d_model, d_model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n, t, d = h.shape

        def split(x: torch.Tensor) -> torch.Tensor:  # [n, t, d] -> [n, heads, t, d / heads]
            return x.view(n, t, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(n, t, d))


class EncoderBlock(nn.Module):
    """Pre-norm: h + attention(norm(h)), then h + W2 f(W1 norm(h)) with the activation
    under test in the MLP."""

    def __init__(self, activation, d_model: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = SelfAttention(d_model, heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, mlp_ratio * d_model)
        self.act = site_act(activation, mlp_ratio * d_model)
        self.fc2 = nn.Linear(mlp_ratio * d_model, d_model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.attention(self.norm1(h))
        return h + self.fc2(self.act(self.fc1(self.norm2(h))))


class Mnist1dTransformer(nn.Module):
    """A small encoder over the sequence: patches of `patch` samples become tokens (one
    linear embedding) plus learned positions, `layers` pre-norm blocks, a final norm, the
    mean over tokens, and a linear head."""

    def __init__(
        self,
        activation,
        length: int = 40,
        patch: int = 4,
        d_model: int = 32,
        heads: int = 2,
        layers: int = 2,
        mlp_ratio: int = 4,
        classes: int = 10,
    ) -> None:
        super().__init__()
        if patch < 1 or length % patch:
            from actlab.errors import UserError

            raise UserError(
                f"patch size {patch} does not divide the sequence length {length}; "
                "use a divisor of it (e.g. 4 or 5 for 40)"
            )
        self.patch = patch
        self.embed = nn.Linear(patch, d_model)
        self.position = nn.Parameter(0.02 * torch.randn(length // patch, d_model))
        self.blocks = nn.ModuleList(
            EncoderBlock(activation, d_model, heads, mlp_ratio) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.view(x.shape[0], -1, self.patch)) + self.position
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h).mean(dim=1))


def classify(
    model: nn.Module,
    data: dict,
    steps: int,
    lr: float = 1e-2,
    batch: int = 100,
    eval_every: int = 250,
) -> dict[str, list]:
    """The repository's protocol: Adam, cross-entropy, batches of `batch` taken in order
    (wrapping around the training set), test accuracy (a fraction) every `eval_every`
    steps and after the last. Returns the training losses, the evaluated steps and their
    test accuracies."""
    x, y, x_test, y_test = data["x"], data["y"], data["x_test"], data["y_test"]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    evaluated: list[int] = []
    accuracy: list[float] = []

    def evaluate(step: int) -> None:
        with torch.no_grad():
            hits = (model(x_test).argmax(-1) == y_test).double().mean().item()
        evaluated.append(step)
        accuracy.append(hits)

    for step in range(steps):
        start = (step * batch) % len(x)
        loss = nn.functional.cross_entropy(
            model(x[start : start + batch]), y[start : start + batch]
        )
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if eval_every and (step + 1) % eval_every == 0:
            evaluate(step + 1)
    if not evaluated or evaluated[-1] != steps:
        evaluate(steps)
    return {"losses": losses, "steps": evaluated, "test_accuracy": accuracy}
