"""The report's cross-study sections, as a registry: each is a function from what the
pipeline has computed (`Inputs`) to a section or None (nothing to say for this run). A new
cross-study section is one function here and one entry in SECTIONS; the studies' own
sections come from their parts.

A section is a dict: title, anchor, markdown, figures (file names under figures/)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Inputs:
    """What the cross-study sections read: the studies' parts (name -> StudyPart), the
    verdicts table, the run's results and activations, and where figures go."""

    parts: dict[str, Any]
    verdicts: Any
    results: Any
    activations: dict[str, Any]
    figure_dir: Path


def transfer(inputs: Inputs) -> dict | None:
    """Whether the toy studies' rankings hold on MNIST-1D's architectures."""
    from actlab.report.transfer import transfer_section

    return transfer_section(inputs.parts, list(inputs.activations), inputs.verdicts)


def learnable(inputs: Inputs) -> dict | None:
    """What the learnable activations learned, against their frozen twins."""
    from actlab.report.learnable import learnable_section

    return learnable_section(inputs.results, inputs.activations, inputs.figure_dir, inputs.parts)


# In the order they follow the studies' sections.
SECTIONS: tuple[Callable[[Inputs], dict | None], ...] = (transfer, learnable)


def cross_sections(inputs: Inputs) -> list[dict]:
    return [section for make in SECTIONS if (section := make(inputs)) is not None]
