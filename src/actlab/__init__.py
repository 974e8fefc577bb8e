"""actlab: the lab bench for activation functions.

    import actlab
    run = actlab.run("quick", activations=["relu", "gelu", "x*tanh(softplus(x))"])
    run.results            # tidy pandas DataFrame, one row per trial x metric
    actlab.load(run.path)  # read a run back

Heavy modules (torch, matplotlib) load only when used, so the CLI starts instantly.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "run": ("actlab.runner", "run"),
    "load": ("actlab.runner", "load"),
    "Run": ("actlab.runner", "Run"),
    "RunConfig": ("actlab.config", "RunConfig"),
    "get_activation": ("actlab.activations", "get_activation"),
    "activations": ("actlab.activations", None),
    "UserError": ("actlab.errors", "UserError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'actlab' has no attribute '{name}'")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)
