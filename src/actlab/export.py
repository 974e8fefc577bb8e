"""`actlab export`: an activation written out as a self-contained PyTorch module, to take a
function found or studied here into one's own model without actlab.

The file holds an `nn.Module` (its learnable parameters as `nn.Parameter`s at their initial
values), the few helpers the expression language has beyond torch (copied from expr.py), and
a check: reference values of f and f' that actlab computed in float64 when it wrote the
file, which `python FILE` compares with the module's own (autograd for the slope).

What can be exported: an expression in x (`erf(x) - x`), `NAME=EXPR`, and a learnable
declaration (`x*sigmoid(b*x) | b=1.0`, `PReLU`, `Swish-beta`, `PAU`). A built-in without an
expression (ReLU, GELU, ... which PyTorch has already; Spline) is refused in one line.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from actlab.activations import Activation, parse_activation_arg
from actlab.callable_module import callable_as
from actlab.errors import UserError
from actlab.expr import Expression, helper_sources

# The check's grid: 81 points on [-4, 4] (the range where activations differ most).
CHECK_POINTS = torch.linspace(-4.0, 4.0, 81, dtype=torch.float64)

TEMPLATE = '''"""{name}: f(x) = {formula}

Exported by actlab {version}: plain PyTorch, no actlab needed. Use it as any activation,

    from {module} import {cls}
    layer = nn.Sequential(nn.Linear(64, 64), {cls}({example_args}))

{parameters_doc}Run `python {filename}` to check the module against the values of f and f' that actlab
computed (float64) when it wrote this file.
"""

import math  # noqa: F401  (the expression may use it)

import torch
import torch.nn.functional as F  # noqa: F401
from torch import Tensor, nn


def _c(value: float, x: Tensor) -> Tensor:
    """A number as a tensor of x's dtype and device, as actlab computes it."""
    return torch.tensor(value, dtype=x.dtype, device=x.device)


{helpers}


class {cls}(nn.Module):
    """f(x) = {formula}"""

    def __init__(self{init_args}) -> None:
        super().__init__()
{init_body}
    def forward(self, x: Tensor) -> Tensor:
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
        y = {body}
        if y.shape != x.shape:  # e.g. where(x > 0, 1, 2): one value per element
            y = y.expand(torch.broadcast_shapes(y.shape, x.shape)).clone()
        return y


# (x, f(x), f'(x)) at the initial parameter values, computed by actlab in float64.
REFERENCE = [
{reference}
]


def check(rtol: float = 1e-9, atol: float = 1e-12) -> None:
    """The module in float64 against the reference values (f, and f' by autograd)."""
    act = {cls}({check_args}).double()
    x = torch.tensor([row[0] for row in REFERENCE], dtype=torch.float64)
    x = x.reshape({check_shape}).requires_grad_(True)
    y = act(x)
    (slope,) = torch.autograd.grad(y.sum(), x)
    rows = zip(REFERENCE, y.flatten().tolist(), slope.flatten().tolist())
    for (at, f, df), got, got_slope in rows:
        assert math.isclose(got, f, rel_tol=rtol, abs_tol=atol), (at, got, f)
        assert math.isclose(got_slope, df, rel_tol=rtol, abs_tol=atol), (at, got_slope, df)
    print(f"{name}: f and f' match actlab's at {{len(REFERENCE)}} points")


if __name__ == "__main__":
    check()
'''


def class_name(name: str) -> str:
    """'erf-minus-x' -> 'ErfMinusX'; a name that makes no identifier -> 'Activation'."""
    words = re.findall(r"[A-Za-z0-9]+", name)
    text = "".join(w[:1].upper() + w[1:] for w in words)
    return text if text.isidentifier() and not text[0].isdigit() else "Activation"


def module_name(name: str) -> str:
    """A file name for `name`: 'erf-minus-x' -> 'erf_minus_x'."""
    text = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()
    return text if text and not text[0].isdigit() else f"activation_{text}".rstrip("_")


def exportable(act: Activation) -> tuple[Expression, tuple]:
    """(the expression, its parameters) of an activation, or one line saying why not."""
    family = act.learnable
    if family is not None:
        expression = getattr(family, "expression", None)
        if expression is None:
            raise UserError(
                f"'{act.name}' is a learnable family without an expression; it cannot be "
                "exported as plain PyTorch"
            )
        return expression, family.params
    if isinstance(act.fn, Expression):
        return act.fn, ()
    hint = f" (its formula: {act.formula})" if act.formula else ""
    raise UserError(
        f"'{act.name}' is a built-in activation, not an expression{hint}; PyTorch has the "
        "common ones (torch.nn); to export it, give it as an expression in x"
    )


def parameter_lines(params) -> tuple[str, str, str, str]:
    """(the constructor's extra arguments, its body, an example call's arguments, the
    docstring's words on parameters)."""
    if not params:
        return "", "        pass\n", "", ""
    per_unit = [p for p in params if p.scope == "per-unit"]
    lines = []
    for p in params:
        value = torch.tensor(p.init, dtype=torch.float64).reshape(p.shape)
        literal = repr(value.tolist())
        if p.scope == "per-unit":
            shape = (
                f"(num_features, {', '.join(map(str, p.shape))})" if p.shape else "(num_features,)"
            )
            lines.append(
                f"        self.{p.name} = nn.Parameter(torch.tensor({literal}).expand{shape}.clone())"
            )
        else:
            lines.append(f"        self.{p.name} = nn.Parameter(torch.tensor({literal}))")
    body = "\n".join(lines) + "\n"
    declared = ", ".join(f"{p.name} ({p.scope}, from {p.init[0]:g})" for p in params)
    doc = (
        f"Its parameters ({declared}) are nn.Parameters trained with the model's weights"
        + (
            "; a per-unit parameter has one value per feature of the last dimension (num_features)"
            if per_unit
            else ""
        )
        + ".\n\n"
    )
    args = ", num_features: int" if per_unit else ""
    example = "64" if per_unit else ""
    return args, body, example, doc


def reference_rows(act: Activation) -> str:
    """f and f' at CHECK_POINTS in float64, one row a line. A learnable activation is taken
    at its initial values as the module holds them (float32 nn.Parameters, made float64 by
    the check's `.double()`), computed by actlab's own family."""
    x = CHECK_POINTS.clone().requires_grad_(True)
    if act.learnable is not None:
        values = {
            k: v.to(torch.float32).to(torch.float64)
            for k, v in act.learnable.initial_values(torch.float64).items()
        }
        f = act.learnable.apply(x, values)
    else:
        f = act.fn(x)
    (df,) = torch.autograd.grad(f.sum(), x)
    return "\n".join(
        f"    ({a!r}, {b!r}, {c!r}),"
        for a, b, c in zip(CHECK_POINTS.tolist(), f.tolist(), df.tolist(), strict=True)
    )


def export_source(spec: str, name: str | None = None) -> tuple[str, str]:
    """(the file's text, its module name) for an activation spec."""
    import actlab

    act = parse_activation_arg(f"{name}={spec}" if name else spec)
    expression, params = exportable(act)
    display = act.name
    module = module_name(display if act.name != act.source else "activation")
    cls = class_name(display) if act.name != act.source else "Activation"
    args, body, example, doc = parameter_lines(params)
    formula = act.source or act.formula
    text = TEMPLATE.format(
        name=display,
        formula=formula.replace('"""', "'''"),
        version=actlab.__version__,
        module=module,
        cls=cls,
        example_args=example,
        parameters_doc=doc,
        filename=f"{module}.py",
        helpers=helper_sources(),
        init_args=args,
        init_body=body,
        check_args="1" if example else "",
        check_shape="-1, 1" if example else "-1",
        body=expression.torch_source(),
        reference=reference_rows(act),
    )
    return text, module


def export(spec: str, out: str | Path | None = None, name: str | None = None) -> Path:
    """Write the activation `spec` as a self-contained PyTorch module; returns its path
    (default: MODULE.py in the working directory, MODULE from the name)."""
    text, module = export_source(spec, name)
    path = Path(out) if out is not None else Path(f"{module}.py")
    if path.exists() and path.is_dir():
        path = path / f"{module}.py"
    try:
        path.write_text(text)
    except OSError as error:
        raise UserError(f"cannot write '{path}' ({error.strerror}); choose another --out") from None
    return path


callable_as(__name__, "actlab.export:export")  # `actlab.export(...)` once the module is imported
