"""Stacked operations shared by the architectures: every tensor is `[M, ...]`, one slice
per member, and a member's numbers do not depend on its batch-mates (stack.py explains
how: aligned blocks handed to BLAS, activations on whole padded member blocks).

Convolutions are im2col products: the windows of each member's input, gathered as rows,
times its kernel as a matrix, through the same aligned batched matmul as a linear layer.
Attention is a batched matmul over members x samples x heads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from actlab.engine.kernels import KERNELS
from actlab.engine.stack import RunActivations, StackedLayerNorm, StackedLinear, activation_runs


def kernel_runs(activations: Sequence[Callable]) -> list[tuple[slice, Callable, object]]:
    """[(member slice, fn, kernel or None), ...] per run of members sharing an activation."""
    return [(slice(a, b), fn, KERNELS.get(fn)) for a, b, fn in activation_runs(activations)]


def linear(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h `[M, n, in]` (or `[n, in]` shared by all members), w `[M, out, in]`, b `[M, out]`."""
    if h.dim() == 2:
        h = h.expand(w.shape[0], *h.shape)
    return StackedLinear.apply(h, w, b)


def activate(runs: list[tuple], z: torch.Tensor) -> torch.Tensor:
    """Each member's activation on its slice of z (any shape `[M, ...]`)."""
    flat = z.reshape(z.shape[0], 1, -1)
    return RunActivations.apply(runs, flat).view(z.shape)


def layer_norm(z: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Layer norm over the last dimension of `[M, ..., d]` (eps 1e-5, biased variance)."""
    shape = z.shape
    return StackedLayerNorm.apply(z.reshape(shape[0], -1, shape[-1]), gamma, beta).view(shape)


def conv1d(
    h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: int, padding: int
) -> torch.Tensor:
    """A 1-d convolution, channels last: h `[M, batch, length, in]`, w `[M, out, in, k]`
    (nn.Conv1d's layout), b `[M, out]`; returns `[M, batch, length_out, out]`."""
    m, batch, _, channels = h.shape
    k = w.shape[-1]
    if padding:
        h = F.pad(h, (0, 0, padding, padding))
    windows = h.unfold(2, k, stride)  # [M, batch, length_out, in, k]
    length_out = windows.shape[2]
    rows = windows.reshape(m, batch * length_out, channels * k)
    z = StackedLinear.apply(rows, w.reshape(m, w.shape[1], channels * k), b)
    return z.view(m, batch, length_out, w.shape[1])


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Softmax attention per member, sample and head: q, k, v `[M, batch, tokens, d]`."""
    m, batch, tokens, d = q.shape
    size = d // heads

    def split(t: torch.Tensor) -> torch.Tensor:  # -> [M x batch x heads, tokens, size]
        return t.reshape(m, batch, tokens, heads, size).transpose(2, 3).reshape(-1, tokens, size)

    scores = torch.bmm(split(q), split(k).transpose(1, 2)) / math.sqrt(size)
    mixed = torch.bmm(torch.softmax(scores, dim=-1), split(v))
    return mixed.view(m, batch, heads, tokens, size).transpose(2, 3).reshape(m, batch, tokens, d)
