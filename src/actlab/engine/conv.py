"""The MNIST-1D repository's CNN, stacked: three strided 1-d convolutions (kernels 5, 3, 3;
stride 2; padding 1), then a linear layer from the flattened features to the classes
(reference.Mnist1dCNN). Activations stay channels last, `[M, batch, length, channels]`;
the flatten before the linear layer is the reference's channel-major one."""

from __future__ import annotations

import torch

from actlab.engine import ops
from actlab.engine.nets import StackedNet
from actlab.engine.stack import aligned_empty

# (kernel, stride, padding) of conv1, conv2, conv3: reference.Mnist1dCNN's.
LAYERS = ((5, 2, 1), (3, 2, 1), (3, 2, 1))


def _reference(activation, **shape):
    from actlab.reference import Mnist1dCNN

    return Mnist1dCNN(activation, **shape)


def _lengths(length: int) -> list[int]:
    """The sequence length after each convolution."""
    out = []
    for k, stride, padding in LAYERS:
        length = (length + 2 * padding - k) // stride + 1
        out.append(length)
    return out


class StackedCNN(StackedNet):
    name = "cnn"
    reference = staticmethod(_reference)

    @classmethod
    def shape_for(cls, length: int, patch: int) -> dict:
        """The reference module's keyword arguments for sequences of `length`."""
        return {"length": length}

    def _fast(self, x: torch.Tensor) -> torch.Tensor:
        p = self.params
        m, batch = self.n_members, x.shape[0]
        h = x.reshape(batch, x.shape[-1], 1)  # shared: conv1d gathers its windows once
        for layer, (_, stride, padding) in enumerate(LAYERS, start=1):
            w, b = p[f"conv{layer}.weight"], p[f"conv{layer}.bias"]
            h = self.act(f"act{layer}", ops.conv1d(h, w, b, stride, padding))
        # The reference flattens [batch, channels, length] channel-major; written straight
        # into an aligned buffer, which the linear layer's matmul then takes as it is.
        _, _, length, channels = h.shape
        flat = aligned_empty(m, batch, channels * length, like=h)
        flat.view(m, batch, channels, length).copy_(h.permute(0, 1, 3, 2))
        return ops.linear(flat, p["linear.weight"], p["linear.bias"])

    @classmethod
    def flops(cls, shape) -> float:
        channels, length = shape.get("channels", 25), shape.get("length", 40)
        total, inputs = 0, 1
        for (k, _, _), length_out in zip(LAYERS, _lengths(length), strict=True):
            total += length_out * channels * inputs * k
            inputs = channels
        return total + channels * _lengths(length)[-1] * shape.get("classes", 10)

    @classmethod
    def bytes(cls, shape, batch: int) -> int:
        channels, length = shape.get("channels", 25), shape.get("length", 40)
        activations = sum(channels * n for n in _lengths(length)) + shape.get("classes", 10)
        return 4 * (6 * activations * batch + 4 * cls.n_params(shape))
