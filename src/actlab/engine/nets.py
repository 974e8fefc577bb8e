"""StackedNet: M networks of one architecture and shape, trained as one.

An architecture (mlp.py, conv.py, transformer.py) subclasses it with
  reference      the plain one-network `nn.Module` in reference.py; its parameter names
                 are the stack's, so a member loads into it as it is
  _fast(x)       the stacked forward pass (ops.py), `[M, batch, classes]`
  flops / bytes  a trial's work per sample and its memory per member, asked by the planner
and nothing else: parameters, subsets, exact mode and initialisation live here.

Exact mode runs every member through its reference module itself
(`torch.func.functional_call` with the member's slices of the stacked parameters), so its
numbers are the reference loop's, bit for bit; the stacked optimisers' exact paths repeat
torch.optim's arithmetic. Fast mode is the stacked forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from actlab.activations import identity
from actlab.engine.learnable_sites import check_families, member_values
from actlab.engine.ops import activate as kernel_activate
from actlab.engine.ops import kernel_runs
from actlab.engine.params import ParamStack
from actlab.engine.stack import activation_runs


class StackedNet:
    name: ClassVar[str]
    reference: ClassVar[Callable[..., torch.nn.Module]]
    # and, per architecture: shape_for(length, patch) -> the reference's keyword arguments

    def __init__(
        self,
        shape: Mapping[str, Any],
        members: Sequence[Mapping[str, torch.Tensor]],
        activations: Sequence[Callable[[torch.Tensor], torch.Tensor]],
        *,
        exact: bool = False,
        device: str | torch.device = "cpu",
    ) -> None:
        if len(members) != len(activations) or not members:
            raise ValueError("need one activation per member, and at least one member")
        self.shape = dict(shape)
        self.exact = exact
        self.activations = list(activations)
        self.learnable = check_families(self.activations)
        self.params = ParamStack(members, device=device)
        self.n_members = self.params.n_members
        self.flat, self.flat_grad = self.params.flat, self.params.flat_grad
        self.runs = kernel_runs(self.activations)
        self._modules: list[torch.nn.Module] | None = None

    # -- what the optimisers and the loop use ------------------------------------------------
    def parameters(self) -> list[torch.Tensor]:
        return self.params.parameters()

    def zero_grad(self) -> None:
        self.params.zero_grad()

    def grad_abs_max(self) -> torch.Tensor:
        return self.params.grad_abs_max()

    def clip_grad_norm(self, max_norm: float) -> None:
        self.params.clip_grad_norm(max_norm, exact=self.exact)

    def member(self, m: int) -> dict[str, torch.Tensor]:
        return self.params.member(m)

    def subset(self, rows: Sequence[int]) -> StackedNet:
        """A new stack of the given members, with copies of their parameters."""
        return type(self)(
            self.shape,
            [self.member(r) for r in rows],
            [self.activations[r] for r in rows],
            exact=self.exact,
            device=self.flat.device,
        )

    def write_back(self, sub: StackedNet, rows: Sequence[int]) -> None:
        sub.params.write_rows_to(self.params, rows)

    def learned_sites(self, m: int) -> list[dict[str, torch.Tensor]]:
        """A member's learnable activation parameters per site, in the network's order
        (copies); empty for fixed activations."""
        if not self.learnable:
            return []
        names = [spec.name for spec in self.activations[m].params]
        params = self.member(m)
        sites = [n[: -len(names[0]) - 1] for n in params if n.endswith("." + names[0])]
        return [{name: params[f"{site}.{name}"] for name in names} for site in sites]

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x `[batch, ...]` shared by every member; returns `[M, batch, classes]`."""
        if self.exact:
            return self._exact(x)
        return self._fast(x)

    def _fast(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def act(self, site: str, z: torch.Tensor) -> torch.Tensor:
        """The activation at `site` (the reference module's name for it, e.g. "act1") on the
        pre-activation z `[M, ..., units]`: each member's fixed function, or each member's
        learnable family with that member's parameters of the site."""
        if not self.learnable:
            return kernel_activate(self.runs, z)
        out = []
        for start, stop, family in activation_runs(self.activations):
            part = z[start:stop]
            values = {
                spec.name: member_values(self.params[f"{site}.{spec.name}"][start:stop], spec, part)
                for spec in family.params
            }
            out.append(family.apply(part, values))
        return out[0] if len(out) == 1 else torch.cat(out)

    def _exact(self, x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call

        if self._modules is None:
            dtype = self.flat.dtype
            self._modules = [
                type(self).reference(act, **self.shape).to(dtype) for act in self.activations
            ]
        leaves = self.params.views
        return torch.stack(
            [
                functional_call(module, {n: p[m] for n, p in leaves.items()}, (x,))
                for m, module in enumerate(self._modules)
            ]
        )

    # -- initialisation, work and memory -----------------------------------------------------
    @classmethod
    def initial(
        cls, shape: Mapping[str, Any], seed: int, dtype=torch.float32, activation=identity
    ) -> dict:
        """One member's initial parameters: the reference module's own default
        initialisation (PyTorch's, as the MNIST-1D repository uses), drawn from a torch
        random stream seeded with `seed` and leaving the global stream as it was; with a
        learnable `activation` (a learnable.Family), its parameters' initial values at each
        site too. The weights do not depend on the activation."""
        from actlab.reference import LearnableAct

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = cls.reference(activation, **shape)
        params = {n: p.detach().to(dtype).clone() for n, p in module.named_parameters()}
        for site, sub in module.named_modules():
            if isinstance(sub, LearnableAct):  # exact in `dtype`, not through float32
                params.update({f"{site}.{n}": v for n, v in sub.initial_values(dtype).items()})
        return params

    @classmethod
    def flops(cls, shape: Mapping[str, Any]) -> float:
        """Multiply-adds per sample of one forward pass (the backward is about twice)."""
        raise NotImplementedError

    @classmethod
    def bytes(cls, shape: Mapping[str, Any], batch: int) -> int:
        """A rough size of one member while it trains on `batch` samples: the tensors kept
        for the backward pass, and its parameters four times (weights, gradients and
        two Adam moments), in float32."""
        raise NotImplementedError

    @classmethod
    def n_params(cls, shape: Mapping[str, Any]) -> int:
        with torch.random.fork_rng(devices=[]):
            module = cls.reference(identity, **shape)
        return sum(p.numel() for p in module.parameters())
