"""The MNIST-1D repository's MLP, stacked: 40 -> hidden -> hidden with a residual
connection -> classes (reference.Mnist1dMLP). The generic depth x width MLP of the
tutorial studies is StackedMLP (stack.py)."""

from __future__ import annotations

import torch

from actlab.engine import ops
from actlab.engine.nets import StackedNet


def _reference(activation, **shape):
    from actlab.reference import Mnist1dMLP

    return Mnist1dMLP(activation, **shape)


class ResidualMLP(StackedNet):
    name = "mlp"
    reference = staticmethod(_reference)

    @classmethod
    def shape_for(cls, length: int, patch: int) -> dict:
        """The reference module's keyword arguments for sequences of `length`."""
        return {"inputs": length}

    def _fast(self, x: torch.Tensor) -> torch.Tensor:
        p = self.params
        h = self.act("act1", ops.linear(x, p["linear1.weight"], p["linear1.bias"]))
        h = h + self.act("act2", ops.linear(h, p["linear2.weight"], p["linear2.bias"]))
        return ops.linear(h, p["linear3.weight"], p["linear3.bias"])

    @classmethod
    def flops(cls, shape) -> float:
        hidden = shape.get("hidden", 100)
        return 40 * hidden + hidden * hidden + hidden * 10

    @classmethod
    def bytes(cls, shape, batch: int) -> int:
        hidden = shape.get("hidden", 100)
        return 4 * (6 * 2 * hidden * batch + 4 * cls.n_params(shape))
