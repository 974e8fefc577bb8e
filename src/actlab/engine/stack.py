"""M MLPs of one shape as one stacked ensemble.

All parameters of all members live in one flat buffer, laid out layer by layer; layer l
is a view `[M, out, in]` (nn.Linear's layout per member) and its bias `[M, out]`. Their
gradients live in a second flat buffer of the same layout, so the optimiser is a few
whole-buffer operations.

Two forward modes:
- fast: one batched matmul per layer, each activation applied once to its run of
  members. Equal to the reference loop within float rounding.
- exact: each member through the very operations the reference loop uses (F.linear on
  its slice), so results are bit-identical to `reference.py`. Slower; it is how the
  stacking, seeding, masking and optimiser machinery is proven correct.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

Params = list[tuple[torch.Tensor, torch.Tensor]]


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
        total = sum(m * (o * i + o) for o, i in shapes)
        self.flat = torch.empty(total, dtype=dtype, device=device)
        self.flat_grad = torch.zeros(total, dtype=dtype, device=device)
        # Which member owns each element of the flat buffer (for per-member optimiser scalars).
        self.member_of = torch.empty(total, dtype=torch.long, device=device)
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        offset = 0
        owners = torch.arange(m, device=device)
        for layer, (o, i) in enumerate(shapes):
            for size, shape, dest in (((o * i), (o, i), self.weights), (o, (o,), self.biases)):
                span = slice(offset, offset + m * size)
                view = self.flat[span].view(m, *shape)
                with torch.no_grad():
                    for k, params in enumerate(members):
                        view[k].copy_(params[layer][0 if dest is self.weights else 1])
                leaf = view.detach().requires_grad_()
                leaf.grad = self.flat_grad[span].view(m, *shape)
                dest.append(leaf)
                self.member_of[span] = owners.repeat_interleave(size)
                offset += m * size

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
        # Materialised, not a stride-0 view: BLAS treats a broadcast batch differently
        # depending on the number of members, which changed a member's first-layer gradient.
        h = x.expand(self.n_members, *x.shape).contiguous() if x.dim() == 2 else x
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if layer == last:
                return self._output_layer(h, w, b)
            z = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            h = self._activate(z)
            if capture is not None:
                capture.pre.append(z)
                capture.post.append(h)
        raise AssertionError("unreachable")

    @staticmethod
    def _output_layer(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if w.shape[1] == 1:
            # A one-column matmul takes a BLAS path whose rounding depends on the number of
            # members (measured: a member's output changed with its batch-mates), and so does
            # the gradient of its transposed form; a multiply-and-sum does not.
            return (h * w).sum(dim=2, keepdim=True) + b.unsqueeze(1)
        return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))

    def _activate(self, z: torch.Tensor) -> torch.Tensor:
        if len(self.runs) == 1:
            return self.runs[0][2](z)
        return torch.cat([act(z[start:stop]) for start, stop, act in self.runs])

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
    def mse(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-member mean squared error, `[M]`; exact mode uses the reference's F.mse_loss."""
        if self.exact:
            return torch.stack(
                [F.mse_loss(out[m], y if y.dim() == 2 else y[m]) for m in range(self.n_members)]
            )
        return (out - y).square().mean(dim=(1, 2))

    def output_mean(self, out: torch.Tensor) -> torch.Tensor:
        """Per-member mean of the output (the gradient-flow protocol's loss), `[M]`."""
        if self.exact:
            return torch.stack([out[m].mean() for m in range(self.n_members)])
        return out.mean(dim=(1, 2))

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
