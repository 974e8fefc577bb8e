"""`actlab.profile`: one activation measured beside baselines, every study of a preset, and a
report centred on it (its section "Profile: NAME": its rank per property with intervals, and
the theory's predictions). `actlab profile` on the command line is this function."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from actlab.runner import Run, RunStart, run

BASELINES = ("ReLU", "GELU", "Swish", "Tanh")


def plan_profile(activation: Any, against, name: str | None = None) -> tuple[Any, str, list]:
    """(the activation's spec, its display name, the baselines other than it)."""
    from actlab.activations import get_activation, parse_activation_arg

    if isinstance(activation, str):
        spec = f"{name}={activation}" if name else activation
        focus = parse_activation_arg(spec).name
    else:  # a callable or Activation: kept as an object, named as given
        spec = get_activation(activation, name=name)
        focus = spec.name
    baselines = [b for b in against if parse_activation_arg(b).name != focus]
    return spec, focus, baselines


def profile(
    activation: Any,
    *,
    name: str | None = None,
    against: list[str] | tuple[str, ...] = BASELINES,
    preset: str = "sound",
    out: str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    on_start: Callable[[RunStart], None] | None = None,
    **overrides: Any,
) -> Run:
    """Profile `activation` (a name, an expression in x, 'module:attr' or a callable)
    against `against` with every study of `preset` ('sound', 'quick' or 'full'); returns
    the Run, whose report.md holds the profile section. `overrides`: any run setting
    (seeds=..., executor=...).

    >>> actlab.profile("x*tanh(softplus(x))", name="mish", preset="quick")
    """
    spec, focus, baselines = plan_profile(activation, against, name)
    return run(
        preset,
        out=out,
        activations=[spec, *baselines],
        focus=focus,
        progress=progress,
        on_start=on_start,
        **overrides,
    )
