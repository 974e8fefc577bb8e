"""Data shared by several studies."""

from __future__ import annotations

import math


def sine_data(n_points: int):
    import torch

    x = torch.linspace(-2, 2, n_points)[:, None]
    return x, torch.sin(math.pi * x)
