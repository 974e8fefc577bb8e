"""Stacked operations shared by the architectures: every tensor is `[M, ...]`, one slice
per member, and a member's numbers do not depend on its batch-mates (stack.py explains
how: aligned blocks handed to BLAS, activations on whole padded member blocks).

Convolutions are im2col products: the windows of each member's input, gathered as rows,
times its kernel as a matrix, through the same aligned batched matmul as a linear layer.
(The transformer's layer norms and attention live in transformer.py, written for it.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from actlab.engine.kernels import KERNELS
from actlab.engine.stack import RunActivations, StackedLinear, activation_runs


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


class _Windows(torch.autograd.Function):
    """im2col for conv1d, channels last: h `[M, batch, length, in]` -> `[M, batch x
    length_out, k x in]`, row (sample, t) holding input positions stride x t - padding + j
    for j < k (zero outside the sequence), tap-major: in a padded copy of h, a window is
    k x in contiguous numbers, and the rows are one strided copy of them into an aligned
    buffer (StackedLinear takes it as it is). The backward writes each input position's
    gradient from the taps that read it, copying the first and adding the others in tap
    order, so every element sums its terms in one fixed order whatever the batch-mates
    (unfold's generic backward was most of a CNN step)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, k: int, stride: int, padding: int) -> torch.Tensor:
        from actlab.engine.stack import aligned_empty

        m, batch, length, channels = h.shape
        padded = length + 2 * padding
        length_out = (padded - k) // stride + 1
        hp = F.pad(h, (0, 0, padding, padding)).reshape(m, batch, padded * channels)
        rows = aligned_empty(m, batch * length_out, k * channels, like=h)
        windows = hp.unfold(2, k * channels, stride * channels)
        rows.view(m, batch, length_out, k * channels).copy_(windows)
        spans = []
        for j in range(k):
            # outputs t whose tap j lands inside: 0 <= stride x t + j - padding < length
            lo = max(0, -(-(padding - j) // stride))
            hi = min(length_out, (length - 1 + padding - j) // stride + 1)
            spans.append((lo, hi, stride * lo + j - padding))
        ctx.geometry = (h.shape, length_out, k, stride, spans)
        return rows

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        shape, length_out, k, stride, spans = ctx.geometry
        m, batch, _, channels = shape
        taps = grad.reshape(m, batch, length_out, k, channels)
        grad_h = grad.new_empty(shape)
        written: set[int] = set()  # residues (position mod stride) already written
        for j, (lo, hi, start) in enumerate(spans):
            if lo >= hi:
                continue
            end = start + stride * (hi - lo)
            target, source = grad_h[:, :, start:end:stride], taps[:, :, lo:hi, j]
            residue = start % stride
            if residue in written:
                target.add_(source)
                continue
            written.add(residue)
            target.copy_(source)
            grad_h[:, :, residue:start:stride].zero_()
            grad_h[:, :, end::stride].zero_()
        for residue in set(range(stride)) - written:
            grad_h[:, :, residue::stride].zero_()
        return grad_h, None, None, None


def conv1d(
    h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: int, padding: int
) -> torch.Tensor:
    """A 1-d convolution, channels last: h `[M, batch, length, in]` (or `[batch, length,
    in]` shared by all members), w `[M, out, in, k]` (nn.Conv1d's layout), b `[M, out]`;
    returns `[M, batch, length_out, out]`. The im2col rows are tap-major (k x in), so the
    kernel enters as `[M, out, k, in]`; a shared input without gradient has its windows
    gathered once for all members."""
    m, out, channels, k = w.shape
    batch = h.shape[-3]
    if h.dim() == 3 and not h.requires_grad:
        from actlab.engine.stack import aligned_empty

        with torch.no_grad():
            shared = _Windows.apply(h.unsqueeze(0), k, stride, padding)
        rows = aligned_empty(m, *shared.shape[1:], like=shared).copy_(shared.expand(m, -1, -1))
    else:
        if h.dim() == 3:
            h = h.expand(m, *h.shape)
        rows = _Windows.apply(h, k, stride, padding)
    kernel = w.permute(0, 1, 3, 2).reshape(m, out, k * channels)
    z = StackedLinear.apply(rows, kernel, b)
    return z.view(m, batch, -1, out)
