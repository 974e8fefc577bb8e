"""The architectures the engine stacks, by name: one file each beside this one.

    mlp          the MNIST-1D repository's MLP (mlp.py)
    cnn          its ConvBase, three Conv1d layers and a linear head (conv.py)
    transformer  a small pre-norm encoder over patches of the sequence (transformer.py)

Each is a StackedNet (nets.py): parameters from its reference module's initialisation, an
exact mode that is the reference loop, and the cost (`flops`) and memory (`bytes`) of a
member that the planner asks for.
"""

from __future__ import annotations

import importlib

ARCHITECTURES: dict[str, tuple[str, str]] = {
    "mlp": ("actlab.engine.mlp", "ResidualMLP"),
    "cnn": ("actlab.engine.conv", "StackedCNN"),
    "transformer": ("actlab.engine.transformer", "StackedTransformer"),
}


def get_architecture(name: str):
    """The StackedNet subclass registered under `name`."""
    from actlab.errors import UserError

    try:
        module, attr = ARCHITECTURES[name]
    except KeyError:
        raise UserError(
            f"unknown architecture '{name}'; available: {', '.join(ARCHITECTURES)}"
        ) from None
    return getattr(importlib.import_module(module), attr)
