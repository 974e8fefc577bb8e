"""M MLPs of one shape as one stacked ensemble.

All parameters of all members live in one flat buffer, laid out layer by layer; layer l
is a view `[M, out, in]` (nn.Linear's layout per member) and its bias `[M, out]`. Their
gradients live in a second flat buffer of the same layout, so the optimiser is a few
whole-buffer operations.

Two forward modes:
- fast: one batched matmul per layer, each activation applied once to its run of
  members. Equal to the reference loop within float rounding.
  A member's numbers do not depend on its batch-mates (tests/test_engine.py checks it
  bit for bit): parameters and every matrix handed to BLAS start on aligned boundaries
  (see StackedLinear), and a stack always has at least two members (BLAS multiplies a
  batch of one matrix with another kernel; runner.run_batch pairs a lone trial with a
  copy of itself). Executors also run torch on one thread per worker.
- exact: each member through the very operations the reference loop uses (F.linear on
  its slice), so results are bit-identical to `reference.py`. Slower; it is how the
  stacking, seeding, masking and optimiser machinery is proven correct.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

Params = list[tuple[torch.Tensor, torch.Tensor]]

# Gradients live in padded (not dense) views of the flat gradient buffer on purpose; autograd
# still accumulates into them in place, and only warns that this may be slower.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout")

# Elements per aligned block: a multiple of every CPU vector loop's chunk (2 x 16 floats
# with AVX-512, 2 x 8 doubles), with room to spare.
ALIGN = 64


def aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass
class Captured:
    """Per hidden layer, the tensors seen in one forward pass, each `[M, batch, width]`."""

    pre: list[torch.Tensor] = field(default_factory=list)
    post: list[torch.Tensor] = field(default_factory=list)


def activation_runs(activations: Sequence[Callable]) -> list[tuple[int, int, Callable]]:
    """Contiguous runs of members sharing an activation: [(start, stop, fn), ...]."""
    runs: list[tuple[int, int, Callable]] = []
    for m, act in enumerate(activations):
        if runs and runs[-1][2] is act:
            runs[-1] = (runs[-1][0], m + 1, act)
        else:
            runs.append((m, m + 1, act))
    return runs


def aligned_empty(m: int, rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
    """`[m, rows, cols]` whose member blocks start on ALIGN-element boundaries."""
    buf = torch.empty(m, aligned(rows * cols), dtype=like.dtype, device=like.device)
    return buf[:, : rows * cols].view(m, rows, cols)


def is_aligned(t: torch.Tensor) -> bool:
    rows, cols = t.shape[1:]
    return (
        (t.stride(1), t.stride(2)) == (cols, 1)
        and t.stride(0) % ALIGN == 0
        and (t.storage_offset() % ALIGN == 0)
    )


def as_aligned(t: torch.Tensor) -> torch.Tensor:
    if is_aligned(t):
        return t
    out = aligned_empty(*t.shape, like=t)
    out.copy_(t)
    return out


class StackedLinear(torch.autograd.Function):
    """z[m] = h[m] @ w[m].T + b[m] for every member, with every matrix the BLAS reads or
    writes starting on an aligned boundary, in the forward and the backward pass.

    Why: MKL's batched kernels round differently for a matrix that starts on an unaligned
    address (measured: a member's weight gradient changed with its position in the
    batch, repeating every 4 members), so without this a trial's last bits would depend
    on its batch-mates. Aligned, a member gives the same bits alone (in a stack of two)
    or in any batch, on one thread.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h = as_aligned(h)
        z = aligned_empty(h.shape[0], h.shape[1], w.shape[1], like=h)
        torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2), out=z)
        ctx.save_for_backward(h, w)
        return z

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, w = ctx.saved_tensors
        grad = as_aligned(grad)
        grad_h = None
        if ctx.needs_input_grad[0]:
            grad_h = aligned_empty(*h.shape, like=h)
            torch.bmm(grad, w, out=grad_h)
        grad_w = aligned_empty(*w.shape, like=w)
        torch.bmm(grad.transpose(1, 2), h, out=grad_w)
        return grad_h, grad_w, grad.sum(dim=1)


class StackedMLP:
    def __init__(
        self,
        members: Sequence[Params],
        activations: Sequence[Callable[[torch.Tensor], torch.Tensor]],
        *,
        exact: bool = False,
        device: str | torch.device = "cpu",
    ) -> None:
        if len(members) != len(activations) or not members:
            raise ValueError("need one activation per member, and at least one member")
        self.n_members = len(members)
        self.exact = exact
        self.activations = list(activations)
        self.runs = activation_runs(self.activations)
        shapes = [tuple(w.shape) for w, _ in members[0]]
        for params in members:
            if [tuple(w.shape) for w, _ in params] != shapes:
                raise ValueError("all members of a stack must have the same layer shapes")
        dtype = members[0][0][0].dtype
        m = self.n_members
        # Member-major: row k of `flat` holds all of member k's parameters, each tensor in a
        # block starting on an ALIGN-element boundary. Per-member scalars (learning rate,
        # active mask) then broadcast as [M, 1] over whole-buffer operations, and every
        # member's block is split into the same vector chunks whatever the number of
        # members (a vector path and its scalar tail round differently).
        shapes_flat = [shape for o, i in shapes for shape in ((o, i), (o,))]
        offsets, width = [], 0
        for shape in shapes_flat:
            offsets.append(width)
            width += aligned(math.prod(shape))
        self.flat = torch.zeros(m, width, dtype=dtype, device=device)
        self.flat_grad = torch.zeros(m, width, dtype=dtype, device=device)
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        for k, (shape, offset) in enumerate(zip(shapes_flat, offsets, strict=True)):
            span = slice(offset, offset + math.prod(shape))
            view = self.flat[:, span].view(m, *shape)
            with torch.no_grad():
                for member, params in enumerate(members):
                    view[member].copy_(params[k // 2][k % 2])
            leaf = view.detach().requires_grad_()
            leaf.grad = self.flat_grad[:, span].view(m, *shape)
            (self.weights if k % 2 == 0 else self.biases).append(leaf)

    @property
    def depth(self) -> int:
        """Number of hidden blocks (the output layer is not counted)."""
        return len(self.weights) - 1

    def parameters(self) -> list[torch.Tensor]:
        """Leaves in the reference loop's order: w1, b1, w2, b2, ..."""
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    def member_params(self, m: int) -> Params:
        return [
            (w[m].detach().clone(), b[m].detach().clone())
            for w, b in zip(self.weights, self.biases, strict=True)
        ]

    def zero_grad(self) -> None:
        self.flat_grad.zero_()

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, capture: Captured | None = None) -> torch.Tensor:
        """x is `[batch, in]` (shared by all members) or `[M, batch, in]`; returns `[M, batch, out]`."""
        if self.exact:
            return self._forward_exact(x, capture)
        h = x.expand(self.n_members, *x.shape) if x.dim() == 2 else x
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = StackedLinear.apply(h, w, b)
            if layer == len(self.weights) - 1:
                return z
            h = self._activate(z)
            if capture is not None:
                capture.pre.append(z)
                capture.post.append(h)
        raise AssertionError("unreachable")

    def _activate(self, z: torch.Tensor) -> torch.Tensor:
        if len(self.runs) == 1:
            return self.runs[0][2](z)
        # split, not slicing: the backward of a split is one concatenation, where each
        # slice's backward would fill and add a full-size zero tensor.
        parts = z.split([stop - start for start, stop, _ in self.runs])
        return torch.cat([act(part) for part, (_, _, act) in zip(parts, self.runs, strict=True)])

    def _forward_exact(self, x: torch.Tensor, capture: Captured | None) -> torch.Tensor:
        outputs, pres, posts = [], [], []
        last = len(self.weights) - 1
        for m, act in enumerate(self.activations):
            h = x if x.dim() == 2 else x[m]
            pre_m, post_m = [], []
            for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
                h = F.linear(h, w[m], b[m])
                if layer < last:
                    pre_m.append(h)
                    h = act(h)
                    post_m.append(h)
            outputs.append(h)
            pres.append(pre_m)
            posts.append(post_m)
        if capture is not None:
            for layer in range(last):
                capture.pre.append(torch.stack([p[layer] for p in pres]))
                capture.post.append(torch.stack([p[layer] for p in posts]))
        return torch.stack(outputs)

    # -- losses and gradient read-outs ---------------------------------------------------------
    # Losses are one reduction per member, in both modes: a reduction over a whole tensor
    # and over the rows of a stack take different summation orders.
    def mse(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-member mean squared error, `[M]` (the reference's F.mse_loss, member by member)."""
        return torch.stack(
            [F.mse_loss(out[m], y if y.dim() == 2 else y[m]) for m in range(self.n_members)]
        )

    def output_mean(self, out: torch.Tensor) -> torch.Tensor:
        """Per-member mean of the output (the gradient-flow protocol's loss), `[M]`."""
        return torch.stack([out[m].mean() for m in range(self.n_members)])

    def weight_grad_mean_abs(self) -> torch.Tensor:
        """Mean |dW| per member and layer, `[M, layers]` (input side first)."""
        if self.exact:
            return torch.stack(
                [
                    torch.stack([w.grad[m].abs().mean() for w in self.weights])
                    for m in range(self.n_members)
                ]
            )
        return torch.stack([w.grad.abs().mean(dim=(1, 2)) for w in self.weights], dim=1)

    def grad_abs_max(self) -> torch.Tensor:
        """Largest absolute gradient entry of any parameter, per member, `[M]`."""
        per_param = [p.grad.abs().flatten(1).amax(dim=1) for p in self.parameters()]
        return torch.stack(per_param, dim=1).amax(dim=1)
