"""actlab: the lab bench for activation functions.

    import actlab
    run = actlab.run("quick", activations=["relu", "gelu", "x*tanh(softplus(x))"])
    run.results            # tidy pandas DataFrame, one row per trial x metric
    run.verdicts           # one row per property x activation: ranks, groups, tests
    actlab.load(run.path)  # read a run back
    actlab.report(run)     # rebuild figures, report.md and report.html from its results
    actlab.search("quick") # search for activations; returns the search directory
    actlab.theory          # mean-field signal propagation (q*, chi_1, edge of chaos)
    print(actlab.diff(a, b))  # what changed between two runs (settings, answers, verdicts)
    actlab.profile("x*tanh(softplus(x))", preset="quick")  # one activation vs baselines
    actlab.nn.Activation("erf(x) - x")  # any activation as an nn.Module for your model
    actlab.export("erf(x) - x", "erf_act.py")  # ... or as plain PyTorch, without actlab

Public names: run, load, Run, RunConfig, report, search, diff, profile, export, nn, theory,
get_activation, activations, UserError (`help(actlab.run)` and the others for their arguments).

Heavy modules (torch, matplotlib) load only when used: `actlab --help` and a mistyped
command answer at once; whatever reads an activation imports torch first (seconds).
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
    "report": ("actlab.runner", "report"),
    "search": ("actlab.search.run", "search"),
    "diff": ("actlab.diff", "diff"),
    "profile": ("actlab.profiling", "profile"),
    "export": ("actlab.export", "export"),
    "nn": ("actlab.nn", None),
    "theory": ("actlab.theory", None),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'actlab' has no attribute '{name}'")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)


def __dir__() -> list[str]:
    """The public names with the module's own, so `dir(actlab)` lists `run` and `load`."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
