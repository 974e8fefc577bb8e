"""Activation kernels for the fused forward/backward of a stack (see stack._FusedMLP).

For the activations torch implements as one kernel, the pair below writes f(z) into a
preallocated buffer and computes the backward with the very aten operation autograd would
run for that forward, so the fused path gives the same bits as the layer-by-layer autograd
path (tests/test_kernels.py checks each against autograd bit for bit). Any other
activation (the rest of the registry, expressions, user callables) takes the generic kernel:
its forward runs under autograd on a detached leaf and its backward asks autograd, which
also gives autograd's own bits.

Keyed by the function object the registry hands the stack (activations.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from actlab import activations as A

aten = torch.ops.aten


@dataclass(frozen=True)
class Kernel:
    forward: Callable[[Tensor, Tensor], object]  # (z, out): writes f(z) into out
    # (grad, z, a, out): writes dL/dz into out, given dL/da, the input z and the output a
    backward: Callable[[Tensor, Tensor, Tensor, Tensor], object]


def same_memory(t: Tensor, u: Tensor) -> bool:
    return t.data_ptr() == u.data_ptr() and t.shape == u.shape and t.stride() == u.stride()


def _copy_unless_same(src: Tensor, out: Tensor) -> None:
    """Identity: a stack of identity members only keeps a = z in one buffer."""
    if not same_memory(src, out):
        out.copy_(src)


KERNELS: dict[Callable, Kernel] = {
    A.identity: Kernel(
        lambda z, out: _copy_unless_same(z, out),
        lambda g, z, a, out: _copy_unless_same(g, out),
    ),
    torch.sigmoid: Kernel(
        lambda z, out: torch.sigmoid(z, out=out),
        lambda g, z, a, out: aten.sigmoid_backward.grad_input(g, a, grad_input=out),
    ),
    torch.tanh: Kernel(
        lambda z, out: torch.tanh(z, out=out),
        lambda g, z, a, out: aten.tanh_backward.grad_input(g, a, grad_input=out),
    ),
    # relu is clamp_min(z, 0) in aten; autograd's backward reads the result.
    F.relu: Kernel(
        lambda z, out: torch.clamp_min(z, 0, out=out),
        lambda g, z, a, out: aten.threshold_backward.grad_input(g, a, 0, grad_input=out),
    ),
    A.leaky_relu: Kernel(
        lambda z, out: torch._C._nn.leaky_relu(z, A.LEAKY_RELU_SLOPE, out=out),
        lambda g, z, a, out: aten.leaky_relu_backward.grad_input(
            g, z, A.LEAKY_RELU_SLOPE, False, grad_input=out
        ),
    ),
    F.elu: Kernel(
        lambda z, out: torch._C._nn.elu(z, 1.0, 1, 1, out=out),
        lambda g, z, a, out: aten.elu_backward.grad_input(g, 1.0, 1, 1, False, z, grad_input=out),
    ),
    F.gelu: Kernel(
        lambda z, out: torch._C._nn.gelu(z, approximate="none", out=out),
        lambda g, z, a, out: aten.gelu_backward.grad_input(
            g, z, approximate="none", grad_input=out
        ),
    ),
    F.silu: Kernel(
        lambda z, out: torch._C._nn.silu(z, out=out),
        lambda g, z, a, out: aten.silu_backward.grad_input(g, z, grad_input=out),
    ),
}


def generic_forward(fn: Callable[[Tensor], Tensor], z: Tensor, out: Tensor, record: bool):
    """Any elementwise callable: writes fn(z) into out. With `record`, fn runs under autograd
    on a detached leaf and the (leaf, result) graph is returned for generic_backward."""
    if not record:
        out.copy_(fn(z))
        return None
    with torch.enable_grad():
        leaf = z.detach().requires_grad_(True)
        a = fn(leaf)
    out.copy_(a)
    return leaf, a


def generic_backward(graph: tuple[Tensor, Tensor], g: Tensor, out: Tensor) -> None:
    leaf, a = graph
    dz = None
    if a.requires_grad:  # else piecewise constant: slope 0 everywhere
        (dz,) = torch.autograd.grad(a, leaf, g, allow_unused=True)
    if dz is None:
        out.zero_()
    else:
        out.copy_(dz)
