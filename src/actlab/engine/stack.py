"""M MLPs of one shape as one stacked ensemble.

All parameters of all members live in one flat buffer, laid out layer by layer; layer l
is a view `[M, out, in]` (nn.Linear's layout per member) and its bias `[M, out]`. Their
gradients live in a second flat buffer of the same layout, so the optimiser is a few
whole-buffer operations.

Two forward modes:
- fast: one batched matmul per layer, each activation applied once to its run of
  members. Equal to the reference loop within float rounding. A plain MLP (no norm, no
  residual) runs as one fused autograd node over reusable buffers (_FusedMLP), with the
  same operations and bits as the layer-by-layer autograd path that norms and residual
  connections use.
  A member's numbers do not depend on its batch-mates (tests/test_engine.py checks it
  bit for bit): parameters and every matrix handed to BLAS start on aligned boundaries
  (see StackedLinear), and a stack always has at least two members (BLAS multiplies a
  batch of one matrix with another kernel; runner.run_batch pairs a lone trial with a
  copy of itself). Executors also run torch on one thread per worker.
- exact: each member through the very operations the reference loop uses (F.linear on
  its slice), so results are bit-identical to `reference.py`. Slower; it is how the
  stacking, seeding, masking and optimiser machinery is proven correct.

Options for the remedies study (defaults = a plain MLP):
- norm="batch" | "layer": each hidden pre-activation is normalised before its activation
  (batch norm in training mode: statistics over the samples, biased variance; layer norm
  over the width; eps 1e-5; learnable gamma = 1, beta = 0 at the start, stored in the flat
  buffer after the layer's bias, so the optimisers update them like any other parameter);
- residual=True: hidden block l >= 2 computes h_l = h_{l-1} + act(norm(z_l)) (the first
  block has no skip: its input width differs).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from actlab.activations import identity
from actlab.engine.kernels import KERNELS, generic_backward, generic_forward
from actlab.engine.learnable_sites import check_families, member_values

Params = list[tuple[torch.Tensor, torch.Tensor]]

NORMS = (None, "batch", "layer")
NORM_EPS = 1e-5
BN_MOMENTUM = 0.1  # nn.BatchNorm1d's default; it touches only running statistics

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


def padded_zeros(m: int, rows: int, cols: int, like: torch.Tensor):
    """`[m, rows, cols]` with aligned member blocks, and the whole zeroed block
    `[m, aligned(rows x cols)]` it views, which is contiguous for any run of members."""
    base = torch.zeros(m, aligned(rows * cols), dtype=like.dtype, device=like.device)
    return base[:, : rows * cols].view(m, rows, cols), base


def padded_empty(m: int, rows: int, cols: int, like: torch.Tensor):
    """As padded_zeros, but only the padding after each member's `rows x cols` numbers is
    zeroed: for buffers whose used part is written next (zeroing all of it was a fifth of
    a stacked CNN step)."""
    base = torch.empty(m, aligned(rows * cols), dtype=like.dtype, device=like.device)
    base[:, rows * cols :].zero_()
    return base[:, : rows * cols].view(m, rows, cols), base


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
        grad = as_aligned(grad)
        grad_h, grad_w = linear_grads(grad, *ctx.saved_tensors, ctx.needs_input_grad[0])
        return grad_h, grad_w, grad.sum(dim=1)


def linear_grads(grad: torch.Tensor, h: torch.Tensor, w: torch.Tensor, wants_h: bool):
    """(dL/dh or None, dL/dw) of z = h w^T per member, from an aligned dL/dz, into aligned
    buffers."""
    grad_h = None
    if wants_h:
        grad_h = aligned_empty(*h.shape, like=h)
        torch.bmm(grad, w, out=grad_h)
    grad_w = aligned_empty(*w.shape, like=w)
    torch.bmm(grad.transpose(1, 2), h, out=grad_w)
    return grad_h, grad_w


def _sum_rows(t: torch.Tensor) -> torch.Tensor:
    """Per member, the sum over the samples: `[M, B, W] -> [M, 1, W]`, as an aligned
    batched product with a ones vector (a reduction kernel splits a member's numbers
    differently with its position in the batch; the aligned BLAS call does not)."""
    m, b, _ = t.shape
    ones = aligned_empty(m, 1, b, like=t).fill_(1.0)
    out = aligned_empty(m, 1, t.shape[2], like=t)
    return torch.bmm(ones, as_aligned(t), out=out)


def _sum_cols(t: torch.Tensor) -> torch.Tensor:
    """Per member and sample, the sum over the width: `[M, B, W] -> [M, B, 1]`."""
    m, _, w = t.shape
    ones = aligned_empty(m, w, 1, like=t).fill_(1.0)
    out = aligned_empty(m, t.shape[1], 1, like=t)
    return torch.bmm(as_aligned(t), ones, out=out)


def _affine(xhat: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    out = aligned_empty(*xhat.shape, like=xhat)
    torch.mul(xhat, gamma.unsqueeze(1), out=out)
    return out.add_(beta.unsqueeze(1))


class _StackedNorm(torch.autograd.Function):
    """y = gamma * (z - mean) / sqrt(var + eps) + beta per member, statistics over the
    samples (batch norm) or over the width (layer norm), biased variance. Written out, with
    its reductions as aligned BLAS calls and only correctly rounded elementwise operations
    otherwise, so a member's bits do not depend on its batch-mates; the output is aligned
    like StackedLinear's."""

    over_samples: bool

    @classmethod
    def _mean(cls, t: torch.Tensor) -> torch.Tensor:
        if cls.over_samples:
            return _sum_rows(t) / t.shape[1]
        return _sum_cols(t) / t.shape[2]

    @classmethod
    def forward(cls, ctx, z, gamma, beta):
        xc = z - cls._mean(z)
        std = torch.sqrt(cls._mean(xc * xc) + NORM_EPS)
        xhat = xc / std
        ctx.save_for_backward(xhat, std, gamma)
        return _affine(xhat, gamma, beta)

    @classmethod
    def backward(cls, ctx, grad):
        xhat, std, gamma = ctx.saved_tensors
        d_beta = _sum_rows(grad).squeeze(1)
        d_gamma = _sum_rows(grad * xhat).squeeze(1)
        d_xhat = grad * gamma.unsqueeze(1)
        d_z = (d_xhat - cls._mean(d_xhat) - xhat * cls._mean(d_xhat * xhat)) / std
        return d_z, d_gamma, d_beta


class StackedBatchNorm(_StackedNorm):
    over_samples = True


class StackedLayerNorm(_StackedNorm):
    over_samples = False


@dataclass
class _Layer:
    """One hidden layer's buffers, and per activation run its slices of them (made once:
    slicing anew at every step was a measurable cost on mixed stacks)."""

    z: torch.Tensor  # pre-activation
    a: torch.Tensor  # activation
    grad_h: torch.Tensor | None  # dL/da
    grad_z: torch.Tensor | None  # dL/dz: the same buffer (the backward runs in place)
    runs: list[tuple]  # (fn, kernel, z, a, grad_h, grad_z) per run of members, each the
    # run's whole padded blocks `[members, aligned(batch x width)]` (see _new_workspace)


@dataclass
class _Workspace:
    """The aligned buffers of one plain forward and backward pass, kept by the stack and
    reused step after step (allocating them was a measurable part of a step on the
    tutorial's thin layers)."""

    h0: torch.Tensor | None  # the input, copied here when it is not aligned
    layers: list[_Layer]
    grad_w: list[torch.Tensor]  # per layer, output layer included
    busy: bool = False


class _FusedMLP(torch.autograd.Function):
    """A plain stack (no norm, no residual) as one autograd node: the forward pass writes
    every layer into aligned buffers, the backward pass is written out layer by layer and
    adds each parameter's gradient into its `.grad` (a view of the flat gradient buffer),
    as autograd's accumulation would.

    Why: per layer, the layered path makes a matmul node, a split, one node per activation
    run and a concatenation, and allocates every tensor anew; on the tutorial's thin layers
    that bookkeeping cost about as much as the arithmetic. The operations here are the ones
    autograd runs on that path (the activation backwards are the aten kernels autograd
    calls, engine/kernels.py), so the numbers are bit-identical to it (tests/test_kernels.py).
    Gradients reach the parameters only through `.grad` (loss.backward()), once per forward
    pass; torch.autograd.grad with respect to them is not supported.
    """

    @staticmethod
    def forward(ctx, model: StackedMLP, x: torch.Tensor, *params: torch.Tensor):
        ws = model._workspace(x)
        h0, graphs, out = model._forward_plain(x, ws, record=True)
        ctx.model, ctx.ws, ctx.h0, ctx.graphs = model, ws, h0, graphs
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        model, ws, graphs = ctx.model, ctx.ws, ctx.graphs
        if ws is None:
            raise RuntimeError("a stack's forward pass was back-propagated twice; run it again")
        inputs = [ctx.h0] + [buffers.a for buffers in ws.layers]
        g = as_aligned(grad)
        for layer in range(len(inputs) - 1, -1, -1):
            torch.bmm(g.transpose(1, 2), inputs[layer], out=ws.grad_w[layer])
            model.weights[layer].grad.add_(ws.grad_w[layer])
            model.biases[layer].grad.add_(g.sum(dim=1))
            if layer == 0:
                break
            buffers = ws.layers[layer - 1]
            torch.bmm(g, model._w[layer], out=buffers.grad_h)
            g = model._activation_backward(buffers, graphs[layer - 1])
        ws.busy = False
        ctx.ws = ctx.h0 = ctx.graphs = None
        return (None, None) + (None,) * (2 * len(inputs))


def runs_forward(runs: list[tuple], record: bool) -> list:
    """a = f(z) for each run (fn, kernel, z, a, grad_a, grad_z) of members; returns the
    generic kernels' graphs (None for runs with a kernel of their own)."""
    graphs = []
    for fn, kernel, z, a, _, _ in runs:
        if kernel is None:
            graphs.append(generic_forward(fn, z, a, record))
        else:
            kernel.forward(z, a)
            graphs.append(None)
    return graphs


def runs_backward(runs: list[tuple], graphs: list) -> None:
    """dL/dz from dL/da for each run, into its grad_z (the same buffer as grad_a)."""
    for (_, kernel, z, a, grad_a, grad_z), graph in zip(runs, graphs, strict=True):
        if kernel is None:
            generic_backward(graph, grad_a, grad_z)
        else:
            kernel.backward(grad_a, z, a, grad_z)


class RunActivations(torch.autograd.Function):
    """Each run's activation on the layered path, computed as the fused path computes it:
    on whole padded member blocks (see StackedMLP._new_workspace), with the same kernels.
    `kernels` is [(member slice, fn, kernel or None), ...] (StackedMLP._kernels); z is
    `[M, rows, width]`."""

    @staticmethod
    def forward(ctx, kernels: list[tuple], z: torch.Tensor) -> torch.Tensor:
        # z and the gradient are copied in, and every activation kernel writes the whole
        # padded block of a: only z's and the gradient's padding needs zeroing.
        z_view, z_pad = padded_empty(*z.shape, like=z)
        z_view.copy_(z)
        a_view, a_pad = padded_empty(*z.shape, like=z)
        g_view, g_pad = padded_empty(*z.shape, like=z)
        ctx.runs = [
            (fn, kernel, z_pad[span], a_pad[span], g_pad[span], g_pad[span])
            for span, fn, kernel in kernels
        ]
        ctx.graphs, ctx.g_view = runs_forward(ctx.runs, record=True), g_view
        return a_view

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        ctx.g_view.copy_(grad)
        runs_backward(ctx.runs, ctx.graphs)
        g_view = ctx.g_view
        ctx.runs = ctx.graphs = ctx.g_view = None
        return None, g_view


class _StackedMSE(torch.autograd.Function):
    """mean((out[m] - y)^2) for every member m at once. The forward's per-member mean and
    the backward's (out - y) * (2 / n) * grad are the operations F.mse_loss runs for one
    member, so the numbers are its own (tests/test_kernels.py)."""

    @staticmethod
    def forward(ctx, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        diff = out - y
        ctx.save_for_backward(diff)
        ctx.alpha = 2.0 / (out.shape[1] * out.shape[2])
        return (diff * diff).mean(dim=(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (diff,) = ctx.saved_tensors
        return (diff * ctx.alpha) * grad[:, None, None], None


@torch.no_grad()
def clip_member_grads(
    params: Sequence[torch.Tensor], flat_grad: torch.Tensor, max_norm: float, *, exact: bool
) -> None:
    """Scale each member's gradients so their total L2 norm is at most max_norm, as
    torch.nn.utils.clip_grad_norm_(foreach=False) does for one network: coefficient
    max_norm / (norm + 1e-6), clamped to 1, always multiplied in. Exact: the norm of the
    per-parameter norms, torch's order of operations; otherwise one norm per row of the
    flat gradient buffer (its padding is zero, so a row's norm is the member's)."""
    if exact:
        for m in range(flat_grad.shape[0]):
            grads = [p.grad[m] for p in params]
            norms = [torch.linalg.vector_norm(g, 2.0) for g in grads]
            total = torch.linalg.vector_norm(torch.stack(norms), 2.0)
            coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
            for g in grads:
                g.mul_(coef)
        return
    total = torch.linalg.vector_norm(flat_grad, 2.0, dim=1, keepdim=True)
    flat_grad.mul_(torch.clamp(max_norm / (total + 1e-6), max=1.0))


class StackedMLP:
    def __init__(
        self,
        members: Sequence[Params],
        activations: Sequence[Callable[[torch.Tensor], torch.Tensor]],
        *,
        exact: bool = False,
        device: str | torch.device = "cpu",
        norm: str | None = None,
        residual: bool = False,
    ) -> None:
        if len(members) != len(activations) or not members:
            raise ValueError("need one activation per member, and at least one member")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.n_members = len(members)
        self.exact = exact
        self.norm = norm
        self.residual = residual
        self.activations = list(activations)
        # Learnable families (learnable.py): their parameters sit in the flat buffer after
        # each hidden layer's others, as the reference's LearnableAct after its norm.
        self.learnable = check_families(self.activations)
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
        # Per layer, in the reference nn.Sequential's parameter order: weight, bias, then
        # (hidden layers with a norm) the norm's gamma and beta.
        n_hidden = len(shapes) - 1
        entries: list[tuple[str, int, tuple[int, ...]]] = []
        family = self.activations[0] if self.learnable else None
        for layer, (o, i) in enumerate(shapes):
            entries += [("w", layer, (o, i)), ("b", layer, (o,))]
            if norm is not None and layer < n_hidden:
                entries += [("g", layer, (o,)), ("beta", layer, (o,))]
            if family is not None and layer < n_hidden:
                entries += [
                    (("act", spec), layer, tuple(spec.initial(o).shape)) for spec in family.params
                ]
        offsets, width = [], 0
        for _, _, shape in entries:
            offsets.append(width)
            width += aligned(math.prod(shape))
        self.flat = torch.zeros(m, width, dtype=dtype, device=device)
        self.flat_grad = torch.zeros(m, width, dtype=dtype, device=device)
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        self.gammas: list[torch.Tensor] = []
        self.betas: list[torch.Tensor] = []
        self._params: list[torch.Tensor] = []
        # Per hidden layer, the learnable activation's parameters by name, `[M, ...]`.
        self.act_params: list[dict[str, torch.Tensor]] = [{} for _ in range(n_hidden)]
        store = {"w": self.weights, "b": self.biases, "g": self.gammas, "beta": self.betas}
        for (kind, layer, shape), offset in zip(entries, offsets, strict=True):
            span = slice(offset, offset + math.prod(shape))
            view = self.flat[:, span].view(m, *shape)
            with torch.no_grad():
                if kind == "g":
                    view.fill_(1.0)
                elif kind == "beta":
                    view.zero_()
                elif isinstance(kind, tuple):  # a learnable activation's parameter
                    view.copy_(kind[1].initial(shapes[layer][0], dtype).expand_as(view))
                else:
                    for member, params in enumerate(members):
                        view[member].copy_(params[layer][0 if kind == "w" else 1])
            leaf = view.detach().requires_grad_()
            leaf.grad = self.flat_grad[:, span].view(m, *shape)
            if isinstance(kind, tuple):
                self.act_params[layer][kind[1].name] = leaf
            else:
                store[kind].append(leaf)
            self._params.append(leaf)
        # Detached views for the fused path (they follow the in-place updates) and its
        # reusable buffers, one workspace per input shape.
        self._w = [w.detach() for w in self.weights]
        self._wt = [w.transpose(1, 2) for w in self._w]
        self._b = [b.detach().unsqueeze(1) for b in self.biases]
        self._kernels = [
            (slice(start, stop), fn, None if self.learnable else KERNELS.get(fn))
            for start, stop, fn in self.runs
        ]
        self._workspaces: dict[tuple, _Workspace] = {}

    @property
    def depth(self) -> int:
        """Number of hidden blocks (the output layer is not counted)."""
        return len(self.weights) - 1

    def parameters(self) -> list[torch.Tensor]:
        """Leaves in the reference loop's order: w1, b1, [gamma1, beta1,] w2, b2, ..."""
        return list(self._params)

    def member_params(self, m: int) -> Params:
        return [
            (w[m].detach().clone(), b[m].detach().clone())
            for w, b in zip(self.weights, self.biases, strict=True)
        ]

    def learned_derivative(self, z: torch.Tensor, layer: int, m: int) -> torch.Tensor:
        """d act / dz of member m's learned activation at hidden `layer`, elementwise on its
        pre-activations z `[1, ..., units]` (autograd; no gradient reaches the parameters)."""
        family = self.activations[m]
        with torch.enable_grad():
            leaf = z.detach().clone().requires_grad_(True)
            values = {
                spec.name: member_values(
                    self.act_params[layer][spec.name][m : m + 1].detach(), spec, leaf
                )
                for spec in family.params
            }
            (slope,) = torch.autograd.grad(family.apply(leaf, values).sum(), leaf)
        return slope

    def learned_sites(self, m: int) -> list[dict[str, torch.Tensor]]:
        """A member's learnable activation parameters per hidden layer (copies)."""
        return [{n: v[m].detach().clone() for n, v in layer.items()} for layer in self.act_params]

    def member_norm_params(self, m: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A member's (gamma, beta) per hidden layer; empty without a norm."""
        return [
            (g[m].detach().clone(), b[m].detach().clone())
            for g, b in zip(self.gammas, self.betas, strict=True)
        ]

    def subset(self, rows: Sequence[int]) -> StackedMLP:
        """A new stack of the given members (by index), with copies of their parameters."""
        sub = StackedMLP(
            [self.member_params(r) for r in rows],
            [self.activations[r] for r in rows],
            exact=self.exact,
            device=self.flat.device,
            norm=self.norm,
            residual=self.residual,
        )
        with torch.no_grad():
            sub.flat.copy_(self.flat[list(rows)])  # norm parameters too
        return sub

    def write_back(self, sub: StackedMLP, rows: Sequence[int]) -> None:
        """Copy the parameters of `sub` (made by subset(rows)) back into members `rows`."""
        with torch.no_grad():
            self.flat[list(rows)] = sub.flat

    def zero_grad(self) -> None:
        self.flat_grad.zero_()

    def clip_grad_norm(self, max_norm: float) -> None:
        clip_member_grads(self.parameters(), self.flat_grad, max_norm, exact=self.exact)

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, capture: Captured | None = None) -> torch.Tensor:
        """x is `[batch, in]` (shared by all members) or `[M, batch, in]`; returns `[M, batch, out]`."""
        if self.exact:
            return self._forward_exact(x, capture)
        if self.norm is None and not self.residual and not x.requires_grad and not self.learnable:
            if not torch.is_grad_enabled():
                ws = self._new_workspace(x, grads=False)  # fresh: capture hands them out
                out = self._forward_plain(x, ws, record=False)[-1]
                if capture is not None:
                    capture.pre += [buffers.z for buffers in ws.layers]
                    capture.post += [buffers.a for buffers in ws.layers]
                return out
            if capture is None:
                params = [t for pair in zip(self.weights, self.biases, strict=True) for t in pair]
                return _FusedMLP.apply(self, x, *params)
        return self._forward_layered(x, capture)

    def _forward_layered(self, x: torch.Tensor, capture: Captured | None) -> torch.Tensor:
        """One autograd node per layer operation; what norms and residual connections use."""
        h = x.expand(self.n_members, *x.shape) if x.dim() == 2 else x
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = StackedLinear.apply(h, w, b)
            if layer == len(self.weights) - 1:
                return z
            if self.norm is not None:
                z = self._normalise(z, layer)
            a = self._activate(z, layer)
            h = h + a if self.residual and layer > 0 else a
            if capture is not None:
                capture.pre.append(z)
                capture.post.append(h)
        raise AssertionError("unreachable")

    def _workspace(self, x: torch.Tensor) -> _Workspace:
        """The reusable buffers for input x's shape, or fresh ones while those are held by
        a forward pass whose backward has not run yet."""
        key = (tuple(x.shape[-2:]), x.dtype, x.device)
        ws = self._workspaces.get(key)
        if ws is None or ws.busy:
            ws = self._new_workspace(x, grads=True)
            self._workspaces.setdefault(key, ws)
        ws.busy = True
        return ws

    def _new_workspace(self, x: torch.Tensor, grads: bool) -> _Workspace:
        m, batch, like = self.n_members, x.shape[-2], self.flat

        def buffer(width: int) -> tuple[torch.Tensor, torch.Tensor]:
            return padded_zeros(m, batch, width, like)

        def part(t: torch.Tensor | None, span: slice) -> torch.Tensor | None:
            return None if t is None else t[span]

        # The gradient buffers are only needed on the way down: two per width, alternating
        # between layers, are enough (the activation backward runs in place), and the
        # weight gradient needs one scratch per shape before it is added to .grad.
        shared: dict[tuple, list[torch.Tensor]] = {}

        def gradient_buffer(n: int, layer: int) -> tuple[torch.Tensor | None, ...]:
            if not grads:
                return None, None
            pair = shared.setdefault(("h", n), [])
            if len(pair) < 2:
                pair.append(buffer(n))
            return pair[layer % 2]

        def weight_scratch(shape: tuple[int, ...]) -> torch.Tensor:
            found = shared.setdefault(("w", shape), [])
            if not found:
                found.append(aligned_empty(*shape, like=like))
            return found[0]

        identity_only = len(self._kernels) == 1 and self._kernels[0][1] is identity
        layers = []
        for layer, w in enumerate(self.weights[:-1]):
            n = w.shape[1]
            (z, z_pad), (g, g_pad) = buffer(n), gradient_buffer(n, layer)
            a, a_pad = (z, z_pad) if identity_only else buffer(n)  # f(z) = z: one buffer
            # Activations run on whole padded member blocks, which are contiguous for any
            # run of members: a slice of the [m, batch, width] views is not (when
            # batch x width is no multiple of ALIGN), and some kernels (GELU) take
            # another code path, with other rounding, on strided input than on contiguous.
            runs = [
                (fn, kernel, z_pad[span], a_pad[span], part(g_pad, span), part(g_pad, span))
                for span, fn, kernel in self._kernels
            ]
            layers.append(_Layer(z, a, g, g, runs))
        h0 = x.expand(m, *x.shape) if x.dim() == 2 else x
        return _Workspace(
            h0=None if is_aligned(h0) else aligned_empty(*h0.shape, like=like),
            layers=layers,
            grad_w=[weight_scratch(tuple(w.shape)) for w in self.weights] if grads else [],
        )

    def _forward_plain(self, x: torch.Tensor, ws: _Workspace, record: bool):
        """A plain MLP's forward pass into the workspace's buffers. Returns (input,
        generic-activation graphs per layer, output); `record` keeps the graphs that
        _FusedMLP.backward needs."""
        h = x.expand(self.n_members, *x.shape) if x.dim() == 2 else x
        if not is_aligned(h):
            h = ws.h0.copy_(h)
        h0, graphs = h, []
        for layer, buffers in enumerate(ws.layers):
            torch.baddbmm(self._b[layer], h, self._wt[layer], out=buffers.z)
            graphs.append(runs_forward(buffers.runs, record))
            h = buffers.a
        out = aligned_empty(h.shape[0], h.shape[1], self._w[-1].shape[1], like=h)
        torch.baddbmm(self._b[-1], h, self._wt[-1], out=out)
        return h0, graphs, out

    @staticmethod
    def _activation_backward(buffers: _Layer, graphs: list) -> torch.Tensor:
        """dL/dz of one hidden layer from dL/da (buffers.grad_h), run by run."""
        runs_backward(buffers.runs, graphs)
        return buffers.grad_z

    def _normalise(self, z: torch.Tensor, layer: int) -> torch.Tensor:
        """Batch or layer norm of `[M, batch, width]`, each member with its own gamma/beta."""
        fn = StackedBatchNorm if self.norm == "batch" else StackedLayerNorm
        return fn.apply(z, self.gammas[layer], self.betas[layer])

    def _activate(self, z: torch.Tensor, layer: int) -> torch.Tensor:
        if not self.learnable:
            return RunActivations.apply(self._kernels, z)
        out = []
        for start, stop, family in self.runs:
            part = z[start:stop]
            values = {
                spec.name: member_values(self.act_params[layer][spec.name][start:stop], spec, part)
                for spec in family.params
            }
            out.append(family.apply(part, values))
        return out[0] if len(out) == 1 else torch.cat(out)

    def _forward_exact(self, x: torch.Tensor, capture: Captured | None) -> torch.Tensor:
        outputs, pres, posts = [], [], []
        last = len(self.weights) - 1
        for m, act in enumerate(self.activations):
            h = x if x.dim() == 2 else x[m]
            pre_m, post_m = [], []
            for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
                if layer == last:
                    h = F.linear(h, w[m], b[m])
                    break
                z = F.linear(h, w[m], b[m])
                if self.norm == "batch":
                    g, beta = self.gammas[layer][m], self.betas[layer][m]
                    z = F.batch_norm(z, None, None, g, beta, True, BN_MOMENTUM, NORM_EPS)
                elif self.norm == "layer":
                    g, beta = self.gammas[layer][m], self.betas[layer][m]
                    z = F.layer_norm(z, z.shape[-1:], g, beta, NORM_EPS)
                pre_m.append(z)
                if self.learnable:  # as the reference's LearnableAct: this member's values
                    a = act.apply(z, {n: v[m] for n, v in self.act_params[layer].items()})
                else:
                    a = act(z)
                h = h + a if self.residual and layer > 0 else a
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
        """Per-member mean squared error, `[M]`: the reference's F.mse_loss, member by
        member in exact mode, in one batched node in fast mode (the same bits, tested)."""
        if self.exact:
            return torch.stack(
                [F.mse_loss(out[m], y if y.dim() == 2 else y[m]) for m in range(self.n_members)]
            )
        return _StackedMSE.apply(out, y)

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
        per_param = [
            p.grad.abs().reshape(self.n_members, -1).amax(dim=1) for p in self.parameters()
        ]
        return torch.stack(per_param, dim=1).amax(dim=1)
