"""What the learnable finalists learned: a search with `learnable_constants` trains each
candidate's constants with the weights, so a finalist is a family whose values each
network chose. Its learned values, per network and layer (mean and 95% interval over
seeds), come from the confirmation runs and the transfer run: the same tables as a run
report's learnable section (report/learnable.py), so one reads them the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def learned_rows(path: Path, config):
    """The learned_ rows of the confirmation runs and the transfer run, or None."""
    import pandas as pd

    from actlab.runner import load
    from actlab.search.transfer import TRANSFER

    dirs = [path / "confirm" / arch for arch in config.architectures] + [path / TRANSFER]
    frames = []
    for d in dirs:
        if (d / "manifest.json").is_file():
            results = load(d).results
            frames.append(results[results["metric"].str.startswith("learned_")])
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else None


def learned_lines(path: Path, config, activations: dict[str, Any]) -> list[str]:
    """Per learnable finalist: its starting values and a table of what each network
    learned; nothing when no finalist has learnable parameters."""
    from actlab.report.learnable import network_labels, parameter_lines

    learnable = {n: a for n, a in activations.items() if a.learnable is not None}
    if not learnable:
        return []
    rows = learned_rows(path, config)
    if rows is None:
        return []
    labels, networks = network_labels(rows)
    rows = rows.assign(network=labels)
    lines = [
        "The finalists' constants were trained with the weights, each layer its own; the "
        "values each network ended with, mean [95% interval] over seeds, per network (the "
        "confirmation's and the transfer's; one shape trained one way, never pooled), "
        "and the trials left out for want of a finite value (they diverged). Every "
        "layer's value is in each run's results.csv (the learned_ metrics).",
        "",
    ]
    for name, act in learnable.items():
        table = parameter_lines(name, act, rows, networks)
        if len(table) > 2:
            lines += [f"**{name}** (`{act.formula}`):", "", *table, ""]
    return lines if len(lines) > 2 else []
