"""The architectures the engine stacks, by name: one file each beside this one, and one
entry here. A new architecture is its file (a StackedNet subclass: its reference module,
`initial`, `_fast`, `flops`, `bytes`, `shape_for`) plus one line below; the MNIST-1D study,
the search and their reports take every name, word and description from the entry.

    mlp          the MNIST-1D repository's MLP (mlp.py)
    cnn          its ConvBase, three Conv1d layers and a linear head (conv.py)
    transformer  a small pre-norm encoder over patches of the sequence (transformer.py)

Each is a StackedNet (nets.py): parameters from its reference module's initialisation, an
exact mode that is the reference loop, and the cost (`flops`) and memory (`bytes`) of a
member that the planner asks for.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Architecture:
    """Where an architecture's stack lives, and how prose names it."""

    module: str
    attr: str
    word: str  # in a sentence or a table heading: "MNIST-1D MLP", "the CNN"
    noun: str  # with its article: "a residual MLP"
    description: str  # what it is; `{...}` filled from its shape (StackedNet.shape_for)


ARCHITECTURES: dict[str, Architecture] = {
    "mlp": Architecture(
        "actlab.engine.mlp",
        "ResidualMLP",
        "MLP",
        "a residual MLP",
        "the MNIST-1D repository's residual MLP ({inputs} -> 100 -> 100 -> 10)",
    ),
    "cnn": Architecture(
        "actlab.engine.conv",
        "StackedCNN",
        "CNN",
        "a CNN",
        "the MNIST-1D repository's CNN (three Conv1d layers of 25 channels, kernels 5, 3, 3, "
        "stride 2, then a linear layer)",
    ),
    "transformer": Architecture(
        "actlab.engine.transformer",
        "StackedTransformer",
        "transformer",
        "a transformer",
        "a small pre-norm transformer encoder of ours (tokens of {patch} samples with learned "
        "positions, width 32, 2 heads, 2 layers, feed-forward width 128, mean pooling)",
    ),
}
NAMES = tuple(ARCHITECTURES)


def get_architecture(name: str):
    """The StackedNet subclass registered under `name`."""
    from actlab.errors import UserError

    try:
        entry = ARCHITECTURES[name]
    except KeyError:
        raise UserError(
            f"unknown architecture '{name}'; available: {', '.join(ARCHITECTURES)}"
        ) from None
    return getattr(importlib.import_module(entry.module), entry.attr)


def describe(name: str, shape: dict[str, Any]) -> str:
    """What architecture `name` is, with its shape's numbers."""
    return ARCHITECTURES[name].description.format(**shape)
