"""Learnable activations' parameters at a stack's activation sites: whether a stack's
members carry learnable families (they must then share one parameter signature), and a
site's parameter values shaped to broadcast against its pre-activations. Used by the
tutorial MLP stack (stack.py) and the architectures' StackedNet (nets.py) alike, below both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from actlab.learnable import Family, ParamSpec


def check_families(activations: Sequence[Any]) -> bool:
    """True when the members' activations are learnable families; they must then all be,
    with one parameter signature (names, scopes, shapes), so their parameters stack."""
    families = [a for a in activations if isinstance(a, Family)]
    if not families:
        return False
    if len(families) != len(activations) or len({f.signature() for f in families}) != 1:
        raise ValueError(
            "a stack's learnable activations must all share one parameter signature, "
            "and cannot be mixed with fixed ones"
        )
    return True


def member_values(value: torch.Tensor, spec: ParamSpec, z: torch.Tensor) -> torch.Tensor:
    """A site's parameter `[k, *shape]` (per layer) or `[k, units, *shape]` (per unit),
    shaped to broadcast against z `[k, ..., units]` as the family expects."""
    k, middle = value.shape[0], z.dim() - 2
    if spec.scope == "per-unit":
        return value.view(k, *([1] * middle), *value.shape[1:])
    return value.view(k, *([1] * (middle + 1)), *spec.shape)
