"""What the training loop (train.py) and the optimisers (optim.py) ask of a stack of
networks: the tutorial's StackedMLP and the architectures' StackedNet (nets.py) both are
one. A new architecture's stack is checked against it in tests/test_engine_nets.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Stack(Protocol):
    n_members: int
    exact: bool  # exact mode: each member's arithmetic as its reference module's, in order
    flat: torch.Tensor  # [M, width]: every member's parameters, one row each

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's output, `[M, batch, ...]`."""
        ...

    def parameters(self) -> list[torch.Tensor]:
        """The stacked leaves `[M, *shape]`, each with its `.grad`."""
        ...

    def zero_grad(self) -> None: ...

    def grad_abs_max(self) -> torch.Tensor:
        """Largest |gradient| entry per member, `[M]` (the loop's gradient rule)."""
        ...

    def clip_grad_norm(self, max_norm: float) -> None:
        """Each member's gradients scaled to a total L2 norm of at most max_norm."""
        ...

    def subset(self, rows: Sequence[int]) -> Stack:
        """A new stack of members `rows`, with copies of their parameters."""
        ...

    def write_back(self, sub: Stack, rows: Sequence[int]) -> None:
        """Members `rows` := `sub`'s parameters (sub made by subset(rows))."""
        ...
