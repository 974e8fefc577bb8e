"""The small pre-norm transformer over MNIST-1D, stacked (reference.Mnist1dTransformer):
patches of `patch` samples become tokens (one linear embedding) plus learned positions,
`layers` blocks h + attention(norm1(h)), h + fc2(f(fc1(norm2(h)))), a final norm, the mean
over tokens, and a linear head.

The fast pass is the reference's arithmetic rearranged for speed, equal to it within float
rounding (and to 1e-14 in float64):
- a norm's affine (gamma, beta) is folded into the linear layer that reads it,
  (n gamma + beta) W^T + b = n (W gamma)^T + (W beta + b): a few operations on the
  weights instead of passes over the activations and reductions over them in the
  backward; the final norm's affine comes after the mean over tokens, on `[M, batch, d]`;
- q, k and v are one linear layer (their weights concatenated), and attention one
  autograd node (_Attention) over members x samples x heads;
- the activation runs on fc1's output without ops.activate's zeroed copies (_Activate);
- an evaluation (no gradients) goes through in slices of EVAL_CHUNK samples.
A member's numbers do not depend on its batch-mates, bit for bit, on one thread
(tests/test_engine_transformer.py): the norms work row by row, the linear layers' matrices
start on aligned boundaries (as StackedLinear's), the attention's per-sample products and
the elementwise work see every member's block the same way.

Where the time goes (24 members, batch 100, one thread, ~100 ms a step): the batched
matmuls are about half; the rest are passes over `[M, batch x tokens, 4 d]` and
`[M, batch x tokens, d]` tensors (activation, norms, the attention's copies and softmax),
each at memory speed.
"""

from __future__ import annotations

import functools
import inspect
import math

import torch
import torch.nn.functional as F

from actlab.engine.kernels import generic_backward, generic_forward
from actlab.engine.nets import StackedNet
from actlab.engine.stack import NORM_EPS, aligned, aligned_empty, as_aligned, linear_grads

EVAL_CHUNK = 100  # samples per slice of a forward pass without gradients


def _reference(activation, **shape):
    from actlab.reference import Mnist1dTransformer

    return Mnist1dTransformer(activation, **shape)


@functools.cache
def _defaults() -> dict:
    """The reference's own shape defaults (length, patch, d_model, heads, layers, ...)."""
    from actlab.reference import Mnist1dTransformer

    parameters = inspect.signature(Mnist1dTransformer).parameters
    return {n: p.default for n, p in parameters.items() if p.default is not inspect.Parameter.empty}


def _shape(shape) -> dict:
    return {**_defaults(), **shape}


def _norm(h: torch.Tensor) -> torch.Tensor:
    """nn.LayerNorm without its affine over the last dimension: each row by itself."""
    return F.layer_norm(h, h.shape[-1:], eps=NORM_EPS)


def _fold(w: torch.Tensor, b: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor):
    """The weights and bias of x -> (n * gamma + beta) W^T + b as a linear layer of n."""
    return w * gamma.unsqueeze(1), b + (w * beta.unsqueeze(1)).sum(dim=2)


class _Linear(torch.autograd.Function):
    """StackedLinear (z[m] = h[m] w[m]^T + b[m], every matrix handed to BLAS aligned), its
    bias added in place after the product, or left to the caller (b None): baddbmm first
    copies the broadcast bias over the whole output, a slower pass than the addition."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        h = as_aligned(h)
        z = aligned_empty(h.shape[0], h.shape[1], w.shape[1], like=h)
        torch.bmm(h, w.transpose(1, 2), out=z)
        if b is not None:
            z.add_(b.unsqueeze(1))
        ctx.save_for_backward(h, w)
        ctx.bias = b is not None
        return z

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = as_aligned(grad)
        grad_h, grad_w = linear_grads(grad, *ctx.saved_tensors, ctx.needs_input_grad[0])
        return grad_h, grad_w, grad.sum(dim=1) if ctx.bias else None


def _linear(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """h `[M, n, in]` (or `[n, in]` shared by all members), w `[M, out, in]`, b `[M, out]`."""
    if h.dim() == 2:
        h = h.expand(w.shape[0], *h.shape)
    return _Linear.apply(h, w, b)


class _Attention(torch.autograd.Function):
    """softmax(q k^T / sqrt(size)) v per member, sample and head, from the fused projection
    qkv `[M, batch x tokens, 3 d]` without its bias (q, k, v side by side, heads side by
    side within each, as the reference splits them) and that bias `[M, 3 d]`, to
    `[M, batch x tokens, d]` (aligned, as the output projection wants its input).

    q, k and v are copied once, the bias added on the way, into
    `[3, M x batch x heads, tokens, size]`, where every (member, sample, head) matrix is a
    contiguous block the batched matmuls read directly; 1 / sqrt(size) is the scores
    matmul's alpha (exact for a power-of-two size, as the default 16). The softmax is
    written out (max, exp, sum), its backward too.

    Tried and dropped: q, k, v as three linear layers viewed per sample as
    `[tokens x heads, size]` rows, all heads' scores in one product with the cross-head
    ones masked to -inf (no copies at all): exp of -inf takes a slow path, and the masked
    softmax over twice the entries cost more than the copies save."""

    @staticmethod
    def forward(
        ctx, qkv: torch.Tensor, bias: torch.Tensor, batch: int, tokens: int, heads: int
    ) -> torch.Tensor:
        m, n, f = qkv.shape
        d = f // 3
        size = d // heads
        g = m * batch * heads
        parts = torch.empty(3, m, batch, heads, tokens, size, dtype=qkv.dtype, device=qkv.device)
        torch.add(
            qkv.view(m, batch, tokens, 3, heads, size).permute(3, 0, 1, 4, 2, 5),
            bias.view(m, 3, heads, size).transpose(0, 1)[:, :, None, :, None, :],
            out=parts,
        )
        q, k, v = parts.view(3, g, tokens, size)
        scale = 1 / math.sqrt(size)
        p = torch.empty(g, tokens, tokens, dtype=qkv.dtype, device=qkv.device)
        torch.baddbmm(p, q, k.transpose(1, 2), beta=0, alpha=scale, out=p)
        p.sub_(p.amax(dim=2, keepdim=True)).exp_()
        p.div_(p.sum(dim=2, keepdim=True))
        mixed = torch.bmm(p, v)
        out = aligned_empty(m, n, d, like=qkv)
        out.view(m, batch, tokens, heads, size).copy_(
            mixed.view(m, batch, heads, tokens, size).transpose(2, 3)
        )
        ctx.save_for_backward(parts, p)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        parts, p = ctx.saved_tensors
        _, m, batch, heads, tokens, size = parts.shape
        g = m * batch * heads
        q, k, v = parts.view(3, g, tokens, size)
        grad_mixed = torch.empty(m, batch, heads, tokens, size, dtype=p.dtype, device=p.device)
        grad_mixed.copy_(grad.view(m, batch, tokens, heads, size).transpose(2, 3))
        grad_mixed = grad_mixed.view(g, tokens, size)
        grads = torch.empty_like(parts)
        grad_q, grad_k, grad_v = grads.view(3, g, tokens, size)
        torch.bmm(p.transpose(1, 2), grad_mixed, out=grad_v)
        grad_p = torch.bmm(grad_mixed, v.transpose(1, 2))
        # The softmax's backward: p * (dL/dp - sum(dL/dp * p)).
        grad_s = grad_p.sub_((grad_p * p).sum(dim=2, keepdim=True)).mul_(p)
        torch.baddbmm(grad_q, grad_s, k, beta=0, alpha=ctx.scale, out=grad_q)
        torch.baddbmm(grad_k, grad_s.transpose(1, 2), q, beta=0, alpha=ctx.scale, out=grad_k)
        n, d = batch * tokens, heads * size
        grad_qkv = aligned_empty(m, n, 3 * d, like=p)
        grad_qkv.view(m, batch, tokens, 3, heads, size).copy_(grads.permute(1, 2, 4, 0, 3, 5))
        return grad_qkv, grad_qkv.sum(dim=1), None, None, None


def _blocks(t: torch.Tensor) -> torch.Tensor:
    """An aligned `[M, rows, width]` as its whole member blocks `[M, aligned(rows x width)]`
    (the padding included), contiguous for any run of members."""
    m, rows, width = t.shape
    return t.as_strided((m, aligned(rows * width)), (t.stride(0), 1))


class _Activate(torch.autograd.Function):
    """ops.activate for a `[M, rows, width]` pre-activation, without its zeroed buffers:
    each run of members sharing an activation on the run's whole member blocks (the
    padding too, whatever it holds), with the kernels the other paths use (kernels.py);
    a run always sees contiguous blocks, whether it has one member or many. The backward
    pass writes into the incoming gradient (here always fc2's fresh input gradient, used
    by nothing else), as the fused MLP's does: one big buffer fewer per block and step."""

    @staticmethod
    def forward(ctx, runs: list[tuple], z: torch.Tensor, record: bool) -> torch.Tensor:
        z = as_aligned(z)
        a = aligned_empty(*z.shape, like=z)
        zb, ab = _blocks(z), _blocks(a)
        graphs = []
        for span, fn, kernel in runs:
            if kernel is None:
                graphs.append(generic_forward(fn, zb[span], ab[span], record))
            else:
                kernel.forward(zb[span], ab[span])
                graphs.append(None)
        ctx.runs, ctx.graphs = runs, graphs
        ctx.save_for_backward(z, a)
        return a

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        z, a = ctx.saved_tensors
        grad = as_aligned(grad)
        zb, ab, gb = _blocks(z), _blocks(a), _blocks(grad)
        for (span, _, kernel), graph in zip(ctx.runs, ctx.graphs, strict=True):
            if kernel is None:
                generic_backward(graph, gb[span], gb[span])
            else:
                kernel.backward(gb[span], zb[span], ab[span], gb[span])
        ctx.graphs = None
        return None, grad, None


class StackedTransformer(StackedNet):
    name = "transformer"
    reference = staticmethod(_reference)

    @classmethod
    def shape_for(cls, length: int, patch: int) -> dict:
        """The reference module's keyword arguments for sequences of `length`."""
        return {"length": length, "patch": patch}

    def __init__(self, shape, members, activations, **options) -> None:
        # The reference's own checks, e.g. a patch size that does not divide the length.
        type(self).n_params(shape)
        super().__init__(shape, members, activations, **options)

    def _fast(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or len(x) <= EVAL_CHUNK:
            return self._forward(x)
        # An evaluation (nothing kept for a backward pass): in slices of samples, whose
        # tensors stay small (on the whole test set, 24 members' fc1 outputs are 120 MB
        # each and the pass took 1.5 to 2 times as long).
        parts = [self._forward(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)]
        return torch.cat(parts, dim=1)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        p, s, m = self.params, _shape(self.shape), self.n_members
        batch, d, patch = x.shape[0], s["d_model"], s["patch"]
        tokens = s["length"] // patch
        n = batch * tokens
        h = _linear(x.reshape(n, patch), p["embed.weight"], p["embed.bias"])
        h = (h.view(m, batch, tokens, d) + p["position"].unsqueeze(1)).view(m, n, d)
        for layer in range(s["layers"]):
            b = f"blocks.{layer}."
            gamma, beta = p[b + "norm1.weight"], p[b + "norm1.bias"]
            names = [b + f"attention.{t}" for t in "qkv"]
            w = torch.cat([p[t + ".weight"] for t in names], dim=1)
            bias = torch.cat([p[t + ".bias"] for t in names], dim=1)
            w, bias = _fold(w, bias, gamma, beta)
            mixed = _Attention.apply(_linear(_norm(h), w, None), bias, batch, tokens, s["heads"])
            h = h + _linear(mixed, p[b + "attention.out.weight"], p[b + "attention.out.bias"])
            gamma, beta = p[b + "norm2.weight"], p[b + "norm2.bias"]
            z = _linear(_norm(h), *_fold(p[b + "fc1.weight"], p[b + "fc1.bias"], gamma, beta))
            if self.learnable:
                a = self.act(b + "act", z)
            else:
                a = _Activate.apply(self.runs, z, torch.is_grad_enabled())
            h = h + _linear(a, p[b + "fc2.weight"], p[b + "fc2.bias"])
        pooled = _norm(h).view(m, batch, tokens, d).mean(dim=2)
        pooled = pooled * p["norm.weight"].unsqueeze(1) + p["norm.bias"].unsqueeze(1)
        return _linear(pooled, p["head.weight"], p["head.bias"])

    @classmethod
    def flops(cls, shape) -> float:
        s = _shape(shape)
        d, tokens = s["d_model"], s["length"] // s["patch"]
        hidden = s["mlp_ratio"] * d
        block = tokens * (4 * d * d + 2 * d * hidden) + 2 * tokens * tokens * d
        return tokens * s["patch"] * d + s["layers"] * block + d * s["classes"]

    @classmethod
    def bytes(cls, shape, batch: int) -> int:
        s = _shape(shape)
        d, tokens = s["d_model"], s["length"] // s["patch"]
        hidden = s["mlp_ratio"] * d
        # Kept per token and block: two norms' inputs and outputs, q, k, v, the attention
        # output, fc1's pre- and post-activation; per sample and head the softmax weights.
        block = tokens * (10 * d + 2 * hidden) + s["heads"] * tokens * tokens
        kept = batch * (tokens * 3 * d + s["layers"] * block)
        return 4 * (kept + 4 * cls.n_params(shape))
