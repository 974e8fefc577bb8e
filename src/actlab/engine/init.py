"""Initial parameters for one MLP, drawn from a trial's own generator.

Parameters are returned in nn.Linear's layout (weight [out, in], bias [out]) so the same
tensors can be loaded into the reference loop and into a stack.
"""

from __future__ import annotations

import math

import torch

INITIALISERS = (
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_normal",
    "orthogonal",
    "gaussian",
)


def layer_sizes(in_dim: int, width: int, depth: int, out_dim: int = 1) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of each Linear: `depth` hidden blocks, then the output layer."""
    sizes = [(in_dim, width)] + [(width, width)] * (depth - 1)
    return sizes + [(width, out_dim)]


def init_weight(
    fan_in: int,
    fan_out: int,
    scheme: str,
    gen: torch.Generator,
    *,
    gain: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    w = torch.empty(fan_out, fan_in, dtype=dtype)
    init = torch.nn.init
    if scheme == "xavier_uniform":
        return init.xavier_uniform_(w, gain=gain, generator=gen)
    if scheme == "xavier_normal":
        return init.xavier_normal_(w, gain=gain, generator=gen)
    if scheme == "kaiming_uniform":  # He et al. 2015, ReLU gain sqrt(2)
        return init.kaiming_uniform_(w, nonlinearity="relu", generator=gen)
    if scheme == "kaiming_normal":
        return init.kaiming_normal_(w, nonlinearity="relu", generator=gen)
    if scheme == "lecun_normal":  # LeCun et al. 1998: variance 1 / fan_in
        return init.normal_(w, 0.0, 1.0 / math.sqrt(fan_in), generator=gen)
    if scheme == "orthogonal":
        return init.orthogonal_(w, gain=gain, generator=gen)
    if scheme == "gaussian":  # mean-field convention: N(0, gain^2 / fan_in), gain = sigma_w
        return init.normal_(w, 0.0, gain / math.sqrt(fan_in), generator=gen)
    raise ValueError(f"unknown initialiser '{scheme}'; available: {', '.join(INITIALISERS)}")


def init_mlp_params(
    sizes: list[tuple[int, int]],
    gen: torch.Generator,
    *,
    scheme: str = "xavier_uniform",
    gain: float = 1.0,
    bias_std: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Weights layer by layer from one generator; biases zero unless bias_std > 0."""
    params = []
    for fan_in, fan_out in sizes:
        w = init_weight(fan_in, fan_out, scheme, gen, gain=gain, dtype=dtype)
        b = torch.zeros(fan_out, dtype=dtype)
        if bias_std > 0:
            b.normal_(0.0, bias_std, generator=gen)
        params.append((w, b))
    return params
