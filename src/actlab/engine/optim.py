"""Vectorised SGD and Adam over a stack's flat buffers, with a per-member learning rate
and an `active` mask that freezes diverged members.

Fast mode is a few whole-buffer operations. Exact mode repeats, member by member and
parameter by parameter, the operations of torch.optim's single-tensor implementations
(what torch.optim runs on the CPU), so it is bit-identical to the reference loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from actlab.engine.stack import StackedMLP


class _StackedOptimizer:
    def __init__(self, model: StackedMLP, lr: float | Sequence[float]) -> None:
        self.model = model
        m = model.n_members
        lrs = [float(lr)] * m if isinstance(lr, int | float) else [float(v) for v in lr]
        if len(lrs) != m:
            raise ValueError(f"got {len(lrs)} learning rates for {m} members")
        self.lr = lrs
        self._lr = torch.tensor(lrs, dtype=model.flat.dtype, device=model.flat.device)
        self.steps = [0] * m  # updates taken by each member

    def _masked_grad(self, active: torch.Tensor) -> torch.Tensor:
        """The flat gradient with frozen members' entries zeroed (they may hold NaN)."""
        g = self.model.flat_grad
        if bool(active.all()):
            return g
        return torch.where(active[self.model.member_of], g, torch.zeros((), dtype=g.dtype))

    def _per_element(self, per_member: torch.Tensor) -> torch.Tensor:
        return per_member[self.model.member_of]

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
        else:
            self._fast_update(active)

    def _exact_update(self, m: int, i: int, p: torch.Tensor, g: torch.Tensor) -> None:
        raise NotImplementedError

    def _fast_update(self, active: torch.Tensor) -> None:
        raise NotImplementedError


class StackedSGD(_StackedOptimizer):
    """Plain SGD (no momentum), as torch.optim.SGD with its defaults."""

    def _exact_update(self, m, i, p, g):
        p.add_(g, alpha=-self.lr[m])

    def _fast_update(self, active):
        neg_lr = self._per_element(torch.where(active, -self._lr, 0.0))
        self.model.flat.addcmul_(self._masked_grad(active), neg_lr)


class StackedAdam(_StackedOptimizer):
    """Adam (Kingma & Ba 2015) with torch.optim.Adam's defaults and formula."""

    def __init__(self, model, lr, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(model, lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.exp_avg = torch.zeros_like(model.flat)
        self.exp_avg_sq = torch.zeros_like(model.flat)
        # Per-parameter views of the moment buffers, for the exact path.
        self._views = [self._state_views(p) for p in model.parameters()]

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

    def _fast_update(self, active):
        g = self._masked_grad(active)
        # Active members have all taken the same number of steps: they started together.
        step = float(max(self.steps))
        bias_correction1 = 1 - self.beta1**step
        bias_correction2_sqrt = (1 - self.beta2**step) ** 0.5
        self.exp_avg.lerp_(g, 1 - self.beta1)
        self.exp_avg_sq.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        neg_step = self._per_element(torch.where(active, -self._lr / bias_correction1, 0.0))
        self.model.flat.addcmul_(self.exp_avg / denom, neg_step)


OPTIMIZERS = {"sgd": StackedSGD, "adam": StackedAdam}


def make_optimizer(name: str, model: StackedMLP, lr: float | Sequence[float]):
    try:
        cls = OPTIMIZERS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown optimizer '{name}'; available: {', '.join(OPTIMIZERS)}"
        ) from None
    return cls(model, lr)
