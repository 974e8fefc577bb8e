"""`actlab.nn.Activation`: any activation actlab takes (a name, an expression in x, a
learnable declaration, a callable) as a `torch.nn.Module` for one's own model. A learnable
activation's parameters are `nn.Parameter`s at their initial values, trained with the
model's weights; a per-unit parameter has one value per feature of the input's last
dimension (`num_features`).

    import actlab.nn
    model = nn.Sequential(nn.Linear(40, 100), actlab.nn.Activation("erf(x) - x"), ...)
    swish_beta = actlab.nn.Activation("x*sigmoid(b*x) | b=1.0")   # b trained per layer

To take a function out of actlab altogether, `actlab export` writes it as plain PyTorch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from actlab.activations import get_activation, parse_activation_arg
from actlab.errors import UserError


class Activation(nn.Module):
    def __init__(self, spec: Any, num_features: int | None = None, name: str | None = None):
        super().__init__()
        if isinstance(spec, str):
            act = parse_activation_arg(f"{name}={spec}" if name else spec)
        else:
            act = get_activation(spec, name=name)
        self.activation = act
        self.values = nn.ParameterDict()
        family = act.learnable
        for param in family.params if family is not None else ():
            if param.scope == "per-unit" and num_features is None:
                raise UserError(
                    f"activation '{act.name}' has the per-unit parameter {param.name}: give "
                    "num_features, the size of the input's last dimension"
                )
            value = param.initial(num_features or 1, dtype=torch.get_default_dtype())
            self.values[param.name] = nn.Parameter(value)

    def forward(self, x: Tensor) -> Tensor:
        family = self.activation.learnable
        if family is None:
            return self.activation.fn(x)
        return family.apply(x, dict(self.values))

    def extra_repr(self) -> str:
        return repr(self.activation.name)
