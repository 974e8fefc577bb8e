"""Vectorised SGD and Adam over a stack's member-major buffers, with a per-member learning
rate and an `active` mask that freezes diverged members.

Fast mode is whole-buffer work: SGD is one multiply-add with the learning rates broadcast
as [M, 1]; Adam is PyTorch's fused multi-tensor kernel over the active members' rows
(one call per distinct learning rate). Frozen members are simply left out.

Exact mode repeats, member by member and parameter by parameter, the operations of
torch.optim's single-tensor implementations (what torch.optim runs on the CPU), so it is
bit-identical to the reference loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from actlab.engine.protocol import Stack


class _StackedOptimizer:
    def __init__(self, model: Stack, lr: float | Sequence[float]) -> None:
        self.model = model
        m = model.n_members
        lrs = [float(lr)] * m if isinstance(lr, int | float) else [float(v) for v in lr]
        if len(lrs) != m:
            raise ValueError(f"got {len(lrs)} learning rates for {m} members")
        if not all(v > 0 for v in lrs):
            raise ValueError(f"learning rates must be positive, got {lrs}")
        self.lr = lrs
        self._lr = torch.tensor(lrs, dtype=model.flat.dtype, device=model.flat.device)[:, None]
        self.steps = [0] * m  # updates taken by each member

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        members = [m for m in range(self.model.n_members) if bool(active[m])]
        for m in members:
            self.steps[m] += 1
        if self.model.exact:
            params = self.model.parameters()
            for m in members:
                for i, p in enumerate(params):
                    self._exact_update(m, i, p[m], p.grad[m])
        elif members:
            self._fast_update(active, members)

    def subset(self, model: Stack, rows: Sequence[int]) -> _StackedOptimizer:
        """This optimizer for `model` = the stack's subset(rows), its state copied."""
        sub = self._new(model, [self.lr[r] for r in rows])
        sub.steps = [self.steps[r] for r in rows]
        return sub

    def write_back(self, sub: _StackedOptimizer, rows: Sequence[int]) -> None:
        """Copy the state of `sub` (made by subset(rows)) back into members `rows`."""
        for i, r in enumerate(rows):
            self.steps[r] = sub.steps[i]

    def _new(self, model: Stack, lrs: list[float]) -> _StackedOptimizer:
        return type(self)(model, lrs)

    def _exact_update(self, m: int, i: int, p: torch.Tensor, g: torch.Tensor) -> None:
        raise NotImplementedError

    def _fast_update(self, active: torch.Tensor, members: list[int]) -> None:
        raise NotImplementedError


class StackedSGD(_StackedOptimizer):
    """Plain SGD (no momentum), as torch.optim.SGD with its defaults."""

    def _exact_update(self, m, i, p, g):
        p.add_(g, alpha=-self.lr[m])

    def _fast_update(self, active, members):
        g = self.model.flat_grad
        if len(members) < self.model.n_members:
            # Frozen members' gradients may hold NaN, and NaN * 0 is NaN: zero them first.
            g = torch.where(active[:, None], g, torch.zeros((), dtype=g.dtype))
        neg_lr = torch.where(active[:, None], -self._lr, torch.zeros((), dtype=g.dtype))
        self.model.flat.addcmul_(g, neg_lr)


class StackedAdam(_StackedOptimizer):
    """Adam (Kingma & Ba 2015) with torch.optim.Adam's defaults and formula."""

    def __init__(self, model, lr, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(model, lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.exp_avg = torch.zeros_like(model.flat)
        self.exp_avg_sq = torch.zeros_like(model.flat)
        # Per-member step counters, as the fused kernel wants them.
        # (on the parameters' device, as torch.optim.Adam keeps them for the fused kernel)
        self._step_t = [
            torch.zeros((), dtype=torch.float32, device=model.flat.device)
            for _ in range(model.n_members)
        ]
        # Per-parameter views of the moment buffers, for the exact path.
        self._views = [self._state_views(p) for p in model.parameters()]

    def _new(self, model, lrs):
        return StackedAdam(model, lrs, (self.beta1, self.beta2), self.eps)

    def subset(self, model, rows):
        sub = super().subset(model, rows)
        sub.exp_avg.copy_(self.exp_avg[list(rows)])
        sub.exp_avg_sq.copy_(self.exp_avg_sq[list(rows)])
        return sub

    def write_back(self, sub, rows):
        super().write_back(sub, rows)
        self.exp_avg[list(rows)] = sub.exp_avg
        self.exp_avg_sq[list(rows)] = sub.exp_avg_sq

    def _state_views(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Views of the moment buffers laid out exactly like parameter p in the flat buffer."""
        offset = p.storage_offset() - self.model.flat.storage_offset()
        return tuple(
            buf.as_strided(p.shape, p.stride(), buf.storage_offset() + offset)
            for buf in (self.exp_avg, self.exp_avg_sq)
        )

    def _exact_update(self, m, i, p, g):
        exp_avg, exp_avg_sq = (v[m] for v in self._views[i])
        step = float(self.steps[m])
        exp_avg.lerp_(g, 1 - self.beta1)
        exp_avg_sq.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        bias_correction1 = 1 - self.beta1**step
        bias_correction2 = 1 - self.beta2**step
        step_size = self.lr[m] / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        p.addcdiv_(exp_avg, denom, value=-step_size)

    def _fast_update(self, active, members):
        by_lr: dict[float, list[int]] = {}
        for m in members:
            by_lr.setdefault(self.lr[m], []).append(m)
        for m in members:  # the fused kernel reads the step count; torch.optim sets it first
            self._step_t[m].fill_(self.steps[m])
        for lr, group in by_lr.items():
            torch._fused_adam_(
                [self.model.flat[m] for m in group],
                [self.model.flat_grad[m] for m in group],
                [self.exp_avg[m] for m in group],
                [self.exp_avg_sq[m] for m in group],
                [],
                [self._step_t[m] for m in group],
                amsgrad=False,
                lr=lr,
                beta1=self.beta1,
                beta2=self.beta2,
                weight_decay=0.0,
                eps=self.eps,
                maximize=False,
            )


OPTIMIZERS = {"sgd": StackedSGD, "adam": StackedAdam}


def make_optimizer(name: str, model: Stack, lr: float | Sequence[float]):
    try:
        cls = OPTIMIZERS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown optimizer '{name}'; available: {', '.join(OPTIMIZERS)}"
        ) from None
    return cls(model, lr)
