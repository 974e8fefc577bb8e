"""ParamStack: the parameters of M networks of one shape, in one member-major buffer.

It knows nothing of architectures: it takes, per member, a mapping of parameter names to
tensors (the names of the reference `nn.Module`'s parameters, so a member can be loaded
into that module as it is) and lays them out as StackedMLP does: row m of `flat` holds all
of member m's parameters, each in a block that starts on an ALIGN-element boundary; the
gradients live in `flat_grad`, laid out the same way. Each parameter is a leaf
`[M, *shape]` viewing `flat`, whose `.grad` views `flat_grad`, so autograd accumulates
into the flat buffer and the stacked optimisers (optim.py) update every parameter of every
member with a few whole-buffer operations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from actlab.engine.stack import aligned, clip_member_grads


class ParamStack:
    def __init__(
        self, members: Sequence[Mapping[str, torch.Tensor]], *, device: str | torch.device = "cpu"
    ) -> None:
        if not members:
            raise ValueError("a stack needs at least one member")
        first = members[0]
        self.names = list(first)
        self.shapes = {name: tuple(first[name].shape) for name in self.names}
        for m, params in enumerate(members):
            if list(params) != self.names or any(
                tuple(params[n].shape) != self.shapes[n] for n in self.names
            ):
                raise ValueError(
                    f"member {m}'s parameters differ in names or shapes from member 0's"
                )
        dtype = first[self.names[0]].dtype
        self.n_members = len(members)
        offsets, width = {}, 0
        for name in self.names:
            offsets[name] = width
            width += aligned(math.prod(self.shapes[name]))
        self.offsets = offsets
        self.flat = torch.zeros(self.n_members, width, dtype=dtype, device=device)
        self.flat_grad = torch.zeros_like(self.flat)
        self.views: dict[str, torch.Tensor] = {}
        for name in self.names:
            shape = self.shapes[name]
            span = slice(offsets[name], offsets[name] + math.prod(shape))
            view = self.flat[:, span].view(self.n_members, *shape)
            with torch.no_grad():
                for m, params in enumerate(members):
                    view[m].copy_(params[name])
            leaf = view.detach().requires_grad_()
            leaf.grad = self.flat_grad[:, span].view(self.n_members, *shape)
            self.views[name] = leaf

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.views[name]

    def parameters(self) -> list[torch.Tensor]:
        """The leaves, in the members' parameter order."""
        return [self.views[name] for name in self.names]

    def member(self, m: int) -> dict[str, torch.Tensor]:
        """Copies of member m's parameters, by name (loadable into the reference module)."""
        return {name: view[m].detach().clone() for name, view in self.views.items()}

    def zero_grad(self) -> None:
        self.flat_grad.zero_()

    def clip_grad_norm(self, max_norm: float, *, exact: bool = False) -> None:
        clip_member_grads(self.parameters(), self.flat_grad, max_norm, exact=exact)

    def grad_abs_max(self) -> torch.Tensor:
        """Largest absolute gradient entry of any parameter, per member, `[M]`."""
        return self.flat_grad.abs().amax(dim=1)

    def write_rows_to(self, other: ParamStack, rows: Sequence[int]) -> None:
        """Members `rows` of `other` := this stack's parameters."""
        with torch.no_grad():
            other.flat[list(rows)] = self.flat
