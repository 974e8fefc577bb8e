"""What a training step trains on: `feed.batch(step, index)` -> (x, y) for the members
`index` of the stack (the working stack, train.py).

FullBatch    the whole data set every step, shared by the members or one per member
Minibatches  `size` samples per step taken in order, wrapping around (the MNIST-1D
             repository's protocol), shared by the members
"""

from __future__ import annotations

import torch


class FullBatch:
    """The whole data set every step. x and y are each shared by every member
    (`[n, ...]`) or, where `per_member` says so (one flag for both, or a pair for x and
    y), one per member (`[M, n, ...]`), of which the working members' are taken (once per
    working stack, not per step)."""

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, *, per_member: bool | tuple[bool, bool] = False
    ) -> None:
        self.x, self.y = x, y
        self.per_member = (per_member, per_member) if isinstance(per_member, bool) else per_member
        self._index: torch.Tensor | None = None
        self._picked: tuple[torch.Tensor, torch.Tensor] = (x, y)

    def batch(self, step: int, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not any(self.per_member):
            return self.x, self.y
        if index is not self._index:
            self._index = index
            self._picked = tuple(
                t[index] if own else t
                for t, own in zip((self.x, self.y), self.per_member, strict=True)
            )
        return self._picked


def batch_rows(n: int, size: int, step: int) -> slice:
    """The samples of a step: `size` in order from where the previous step stopped."""
    start = (step * size) % n
    return slice(start, start + size)


class Minibatches:
    def __init__(self, x: torch.Tensor, y: torch.Tensor, size: int) -> None:
        self.x, self.y, self.size = x, y, size

    def batch(self, step: int, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = batch_rows(len(self.x), self.size, step)
        return self.x[rows], self.y[rows]
