"""Learnable activations: functions with parameters trained along with the weights.

A learnable activation is a *family* f(x; theta) with declared parameters, each with an
initial value and a scope: one value per layer (the default) or one per unit (per neuron,
or per channel in a convolution). Written as text, the declarations follow the expression
after a bar, separated by bars or semicolons:

    x*sigmoid(b*x) | b=1.0                       # Swish with a learnable beta, per layer
    where(x > 0, x, a*x) | a=0.25 per-unit       # PReLU with a slope per unit

The built-in families (BUILTIN_FAMILIES) are PReLU (He et al. 2015), Swish-beta
(Ramachandran et al. 2017), PAU (Molina et al., ICLR 2020: a rational of degrees 5/4 with
the safe denominator 1 + |b1 x + ... + b4 x^4|, initialised to fit Leaky ReLU on [-3, 3])
and Spline (a piecewise-linear function per unit on a fixed grid of knots, as in the
learnable edges of Kolmogorov-Arnold networks, Liu et al. 2024; initialised to ReLU).

Values broadcast against the input, whose last dimension is the units: a layer's value
has the parameter's own shape, a unit's `[units, *shape]`; an engine that stacks M
networks puts a member dimension in front of both (engine/learnable_sites.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from actlab.errors import UserError

SCOPES = ("per-layer", "per-unit")
DECLARATION = re.compile(
    r"^\s*(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<value>[^\s]+)\s*(?P<scope>[A-Za-z\-]+)?\s*$"
)


@dataclass(frozen=True)
class ParamSpec:
    name: str
    init: tuple[float, ...]  # flattened initial value of `shape` (one number for a scalar)
    scope: str = "per-layer"
    shape: tuple[int, ...] = ()

    def initial(self, units: int, dtype=torch.float32) -> Tensor:
        """The initial value at a site of `units` units: `shape`, or `[units, *shape]`."""
        value = torch.tensor(self.init, dtype=dtype).reshape(self.shape)
        if self.scope == "per-unit":
            return value.expand(units, *self.shape).clone()
        return value


class Family:
    """A parametric function: `apply(x, values)` with a value per declared parameter."""

    params: tuple[ParamSpec, ...]
    text: str

    def apply(self, x: Tensor, values: Mapping[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def initial_values(self, dtype=torch.float64) -> dict[str, Tensor]:
        """Scalar-shaped values for evaluating the function at initialisation (a per-unit
        parameter starts equal in every unit, so one value stands for all)."""
        return {p.name: torch.tensor(p.init, dtype=dtype).reshape(p.shape) for p in self.params}

    def signature(self) -> tuple:
        """What a stack's members must share to be stacked: parameter names, scopes, shapes."""
        return tuple((p.name, p.scope, p.shape) for p in self.params)


class ExpressionFamily(Family):
    def __init__(self, expression: str, params: tuple[ParamSpec, ...]) -> None:
        from actlab.expr import Expression

        self.text = expression
        self.params = params
        self.expression = Expression(expression, tuple(p.name for p in params))

    def apply(self, x: Tensor, values: Mapping[str, Tensor]) -> Tensor:
        return self.expression(x, values)

    def __reduce__(self):
        return (ExpressionFamily, (self.text, self.params))


class SplineFamily(Family):
    """Piecewise linear through `knots` values at a fixed uniform grid on [-radius, radius],
    one set per unit, continued beyond the ends with the end segments' slopes."""

    def __init__(self, knots: int = 9, radius: float = 3.0) -> None:
        self.knots, self.radius = knots, radius
        grid = [-radius + 2 * radius * i / (knots - 1) for i in range(knots)]
        self.params = (ParamSpec("v", tuple(max(g, 0.0) for g in grid), "per-unit", (knots,)),)
        self.text = f"spline({knots} knots on [-{radius:g}, {radius:g}], per unit)"

    def apply(self, x: Tensor, values: Mapping[str, Tensor]) -> Tensor:
        v = values["v"]  # [..., units, knots] (or [knots] at initialisation)
        step = 2 * self.radius / (self.knots - 1)
        position = (x + self.radius) / step
        # A diverged network feeds NaN; NaN survives clamp and casts to a huge negative
        # index, so it is parked on cell 0 (the output stays NaN through t).
        index = position.detach().nan_to_num(0.0).floor().clamp(0, self.knots - 2).long()
        t = position - index.to(x.dtype)  # in [0, 1] inside the grid, beyond it outside
        shape = torch.broadcast_shapes(x.shape + (1,), v.shape)
        table = v.expand(shape)
        left = torch.gather(table, -1, index.unsqueeze(-1).expand(*shape[:-1], 1)).squeeze(-1)
        right = torch.gather(table, -1, (index + 1).unsqueeze(-1).expand(*shape[:-1], 1))
        return left + t * (right.squeeze(-1) - left)

    def __reduce__(self):
        return (SplineFamily, (self.knots, self.radius))


class AtInit:
    """The family at its initial values: the function every fixed-function study sees."""

    def __init__(self, family: Family) -> None:
        self.family = family

    def __call__(self, x: Tensor) -> Tensor:
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
        values = self.family.initial_values(x.dtype)
        return self.family.apply(x, {k: v.to(x.device) for k, v in values.items()})


def _number(text: str, name: str, source: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(
            f"learnable activation '{source}': the initial value of {name} is '{text}', "
            "not a number; write it as in b=1.0"
        ) from None
    if not math.isfinite(value):
        raise UserError(
            f"learnable activation '{source}': the initial value of {name} is {text}; give "
            "a finite number"
        )
    return value


def parse_learnable(text: str) -> ExpressionFamily:
    """'EXPR | NAME=VALUE [per-layer|per-unit] | ...' (or ';' between declarations)."""
    from actlab.expr import _FUNCTIONS, ALLOWED_CONSTANTS

    expression, _, rest = text.partition("|")
    source = text.strip()
    params: list[ParamSpec] = []
    for part in re.split(r"[|;]", rest):
        if not part.strip():
            continue
        match = DECLARATION.match(part)
        if not match:
            raise UserError(
                f"learnable activation '{source}': cannot read the declaration '{part.strip()}'; "
                "write NAME=VALUE, optionally followed by per-layer or per-unit, and separate "
                "declarations with | or ;"
            )
        name, scope = match["name"], match["scope"] or "per-layer"
        if scope not in SCOPES:
            raise UserError(
                f"learnable activation '{source}': unknown scope '{scope}' for {name}; use "
                f"{' or '.join(SCOPES)}"
            )
        if name == "x" or name in ALLOWED_CONSTANTS or name in _FUNCTIONS:
            raise UserError(
                f"learnable activation '{source}': '{name}' is taken by the expression "
                "language; name the parameter otherwise"
            )
        if any(p.name == name for p in params):
            raise UserError(f"learnable activation '{source}': {name} is declared twice")
        params.append(ParamSpec(name, (_number(match["value"], name, source),), scope))
    if not params:
        raise UserError(
            f"learnable activation '{source}': nothing is declared after '|'; declare a "
            "parameter as in 'x*sigmoid(b*x) | b=1.0'"
        )
    try:
        family = ExpressionFamily(expression.strip(), tuple(params))
    except UserError as error:
        unknown = re.search(r"unknown name '(\w+)'", str(error))
        if unknown:
            raise UserError(
                f"learnable activation '{source}': {unknown[1]} is used but not declared; "
                f"declare it after the bar, as in '... | {unknown[1]}=1.0'"
            ) from None
        raise
    used = family.expression.names_used()
    unused = [p.name for p in params if p.name not in used]
    if unused:
        raise UserError(
            f"learnable activation '{source}': {', '.join(unused)} is declared but not used "
            "in the expression; use it or remove the declaration"
        )
    return family


# Leaky ReLU (slope 0.01) on [-3, 3], fitted by least squares (scipy, from a linearised
# start); the largest error on [-3, 3] is 0.034 (tests/test_learnable.py).
PAU_NUMERATOR = (0.033572, 0.505, 1.652675, 2.008123, 0.930576, 0.152133)
PAU_DENOMINATOR = (0.0, 3.976481, 0.0, 0.301253)
PAU_TEXT = (
    "(a0 + x*(a1 + x*(a2 + x*(a3 + x*(a4 + x*a5))))) / (1 + abs(x*(b1 + x*(b2 + x*(b3 + x*b4)))))"
)


def pau_family() -> ExpressionFamily:
    params = tuple(ParamSpec(f"a{i}", (v,)) for i, v in enumerate(PAU_NUMERATOR)) + tuple(
        ParamSpec(f"b{i + 1}", (v,)) for i, v in enumerate(PAU_DENOMINATOR)
    )
    return ExpressionFamily(PAU_TEXT, params)


def builtin_families() -> dict[str, Family]:
    return {
        "PReLU": ExpressionFamily("where(x > 0, x, a*x)", (ParamSpec("a", (0.25,)),)),
        "Swish-beta": ExpressionFamily("x*sigmoid(b*x)", (ParamSpec("b", (1.0,)),)),
        "PAU": pau_family(),
        "Spline": SplineFamily(),
    }
