"""report.md: the run's parts, verdicts and cross-study sections written into one template
(report.md.j2). The pipeline (pipeline.py) computes what goes in; this module only writes it,
and report.html (html.py) is rendered from the text it gives."""

from __future__ import annotations

import math
from typing import Any

from actlab.render.text import names_as_code


def interval_text(lo: float, hi: float, attained: tuple[bool, bool] = (True, True)) -> str:
    """An output range in interval notation: a bracket where the bound is reached, a
    parenthesis where it is only approached (and at infinite ends)."""
    left = "(-∞" if lo == -math.inf else f"{'[' if attained[0] else '('}{lo:g}"
    right = "∞)" if hi == math.inf else f"{hi:g}{']' if attained[1] else ')'}"
    return f"{left}, {right}"


def bounds_attained(act: Any, lo: float, hi: float) -> tuple[bool, bool]:
    """Whether the activation reaches each finite bound of its declared range, judged on a
    fine float64 grid over [-10, 10]: reached exactly (ReLU's 0, Hardtanh's 1), or at an
    interior extreme (GELU's minimum); an extreme found only at the grid's end is
    approached, not reached (Sigmoid's 0 and 1, Tanh's and ELU's -1)."""
    import torch

    y = act.fn(torch.linspace(-10, 10, 20001, dtype=torch.float64))

    def reached(value: float, index: int, bound: float) -> bool:
        if not math.isfinite(bound):
            return False
        interior = 0 < index < len(y) - 1
        return value == bound or (interior and abs(value - bound) <= 1e-6 * max(1, abs(bound)))

    return (
        reached(y.min().item(), int(y.argmin()), lo),
        reached(y.max().item(), int(y.argmax()), hi),
    )


def activation_rows(activations: dict[str, Any]) -> list[dict[str, Any]]:
    def yn(b: bool) -> str:
        return "yes" if b else "no"

    rows = []
    for act in activations.values():
        lo, hi = act.output_range
        rows.append(
            {
                "name": act.name,
                "formula": act.formula or act.source or act.name,
                "range": interval_text(lo, hi, bounds_attained(act, lo, hi)),
                "zero_centred": yn(act.zero_centred),
                "saturating": act.saturating,
                "monotonic": yn(act.monotonic),
                "smooth": yn(act.smooth),
                "key_property": act.key_property or "custom activation",
            }
        )
    return rows


def written_names(activations: dict[str, Any]) -> set[str]:
    """Every way the report writes an activation: its name, formula and source."""
    return {
        text for act in activations.values() for text in (act.name, act.formula, act.source) if text
    }


def evidence_anchors(parts) -> dict[str, str]:
    """Property -> the anchor of the section of the study that measured it."""
    return {
        prop: part.section["anchor"]
        for part in parts.values()
        if part.section
        for prop in part.specs
    }


def networks_words(studies: list[str]) -> str:
    """What the run's networks are, for the introduction."""
    if studies == ["bench"]:
        return "your own model on your own data"
    toy = "small fully connected networks"
    real = "real architectures (MLP, CNN, transformer) on MNIST-1D"
    if "mnist1d" not in studies:
        return toy
    return real if studies == ["mnist1d"] else f"{toy} and in {real}"


def render_markdown(**context: Any) -> str:
    """report.md's text from the template's context; every activation name or expression
    that markdown would misread written as code (`names_as_code`)."""
    import jinja2

    activations = context.pop("activation_table")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("actlab.report", "templates"),
        keep_trailing_newline=True,
        autoescape=False,
    )
    text = env.get_template("report.md.j2").render(
        activations=activation_rows(activations), **context
    )
    return names_as_code(text, written_names(activations))
