"""The report's section on learnable activations: what the parameters learned, the learned
shapes beside the initial one, and whether learning them helped, measured against the
frozen counterpart.

The frozen counterpart of a learnable activation is the fixed activation of the run that
is the same function at the learnable one's initial values (equal on a probe grid): Swish
for Swish-beta, `max(x, 0.25*x)` for a PReLU that starts at 0.25, ReLU for the spline.
Each comparison is made on every property the run's studies score (the properties of
the best-and-worst table: MNIST-1D accuracy per architecture, dead units, learning-rate
robustness, ...), per seed averaged over the property's settings, paired by seed (both
start from the same weights) and tested with the sign-flip test, Holm-adjusted over every
learned-versus-frozen comparison of the run.

Where the parameters ended up is shown per *group*: an MNIST-1D architecture, or a study
of small networks (averaged over its settings, e.g. stability's learning rates).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

LEARNED = re.compile(r"^learned_(?P<name>\w+?)(?:\[(?P<index>\d+)\])?$")
TABLE_PARAMS = 3  # families with more scalar parameters are shown by their shapes only
SHOWN_LAYERS = 5  # a deeper network shows its first, last and three layers between


def shown_layers(layers: list[int]) -> list[int]:
    """All layers of a shallow network; of a deep one, five spread from first to last."""
    layers = sorted(layers)
    if len(layers) <= SHOWN_LAYERS:
        return layers
    n = len(layers) - 1
    return sorted({layers[round(i * n / (SHOWN_LAYERS - 1))] for i in range(SHOWN_LAYERS)})


def frozen_twin(learnable, activations: dict[str, Any]) -> str | None:
    """The fixed activation of the run equal to `learnable` at its initial values."""
    import torch

    x = torch.linspace(-5, 5, 1001, dtype=torch.float64)
    start = learnable.fn(x)
    for name, act in activations.items():
        if act.learnable is None:
            try:
                if torch.allclose(act.fn(x), start, rtol=1e-9, atol=1e-9):
                    return name
            except Exception:  # a custom function that fails on this grid is no twin
                continue
    return None


def group_of(row) -> str:
    """An MNIST-1D architecture, or the study's name."""
    if row.study == "mnist1d":
        return f"MNIST-1D {row.architecture}"
    return str(row.study)


def learned_values(rows) -> dict[tuple, dict[str, Any]]:
    """(activation, group, trial, layer) -> {parameter: value or [values]}."""
    import numpy as np

    out: dict[tuple, dict[str, Any]] = {}
    for r in rows.itertuples():
        m = LEARNED.match(r.metric)
        if not m or m["name"].endswith("_sd"):
            continue
        key = (r.activation, group_of(r), r.trial, int(r.layer))
        values = out.setdefault(key, {})
        if m["index"] is None:
            values[m["name"]] = float(r.value)
        else:
            values.setdefault(m["name"], {})[int(m["index"])] = float(r.value)
    for values in out.values():
        for name, v in list(values.items()):
            if isinstance(v, dict):
                values[name] = np.array([v[i] for i in sorted(v)])
    return out


def shape_at(family, values: dict[str, Any], x):
    import torch

    tensors = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in values.items()}
    return family.apply(x, tensors).detach()


def plot_shapes(activations, learned, architectures, path: Path) -> Path:
    """Per learnable activation (rows) and group (columns): the initial shape (dashed) and
    the learned shape of each layer, the mean of the trials' curves."""
    import torch

    from actlab.report.figures import pyplot, save

    plt = pyplot()
    names = list(activations)
    fig, axes = plt.subplots(
        len(names),
        len(architectures),
        figsize=(3.2 * len(architectures), 2.6 * len(names) + 0.6),
        squeeze=False,
    )
    x = torch.linspace(-4, 4, 401, dtype=torch.float64)
    cmap = plt.get_cmap("viridis")
    for i, name in enumerate(names):
        act = activations[name]
        for j, arch in enumerate(architectures):
            ax = axes[i][j]
            ax.plot(x, act.fn(x), "k--", lw=1.2, label="initial")
            layers = shown_layers(list({k[3] for k in learned if k[0] == name and k[1] == arch}))
            for layer in layers:
                curves = [
                    shape_at(act.learnable, v, x)
                    for k, v in learned.items()
                    if k[0] == name
                    and k[1] == arch
                    and k[3] == layer
                    and all(math.isfinite(float(t)) for t in _flat(v))
                ]
                if curves:
                    mean = torch.stack(curves).mean(dim=0)
                    colour = cmap(layers.index(layer) / len(layers))
                    ax.plot(x, mean, color=colour, lw=1.5, label=f"layer {layer}")
            ax.set_title(f"{name}, {arch}", fontsize=9)
            ax.set_ylim(-3, 4)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("learned shapes (mean over trials) against the initial shape")
    fig.tight_layout()
    return save(fig, path)


def _flat(values: dict[str, Any]) -> list[float]:
    out: list[float] = []
    for v in values.values():
        out += list(v) if hasattr(v, "__len__") else [v]
    return out


def parameter_lines(name, act, rows, groups) -> list[str]:
    """Mean [95% CI over seeds] of each scalar parameter per group and layer (a seed's
    value: the mean over its trials of the group, i.e. over the study's settings)."""
    from actlab.stats import summarize

    params = [p for p in act.learnable.params if not p.shape]
    if not params or len(params) > TABLE_PARAMS:
        return []
    head = "| network | layer | " + " | ".join(
        f"{p.name} (start {p.init[0]:g}{', per unit: mean' if p.scope == 'per-unit' else ''})"
        for p in params
    )
    lines = [head + " |", "|" + "---|" * (2 + len(params))]
    own = rows[rows["activation"] == name]
    own = own.assign(group=[group_of(r) for r in own.itertuples()])
    for group in groups:
        at = own[own["group"] == group]
        for layer in shown_layers([int(v) for v in at["layer"].dropna().unique()]):
            cells = []
            for p in params:
                cell = at[(at["layer"] == layer) & (at["metric"] == f"learned_{p.name}")]
                s = summarize(cell.groupby("seed")["value"].mean())
                ci = f" [{s.ci_low:.3g}, {s.ci_high:.3g}]" if s.n > 1 else ""
                cells.append(f"{s.mean:.3g}{ci}")
            lines.append(f"| {group} | {int(layer)} | " + " | ".join(cells) + " |")
    return lines


def comparisons(activations, parts) -> list[tuple]:
    """(learnable, frozen twin, property, better, Paired) for every pair the run holds and
    every property both are scored on; Holm over them all."""
    import pandas as pd

    from actlab.stats import paired_comparison, with_holm
    from actlab.studies import get_study

    # A study of initialisation sees the same function under both names: nothing learned.
    trained = {
        name: part
        for name, part in parts.items()
        if get_study(name).learnable_activations != "initial"
    }
    frames = [p.scores for p in trained.values() if p.scores is not None and not p.scores.empty]
    if not frames:
        return []
    scores = pd.concat(frames, ignore_index=True)
    specs = {k: v for p in trained.values() for k, v in p.specs.items()}
    found = []
    for name, act in activations.items():
        if act.learnable is None:
            continue
        twin = frozen_twin(act, activations)
        if twin is None:
            continue
        for prop, spec in specs.items():
            at = scores[scores["property"] == prop]
            per_seed = at.groupby(["activation", "seed"])["score"].mean()
            if name not in per_seed.index.get_level_values(
                0
            ) or twin not in per_seed.index.get_level_values(0):
                continue
            both = pd.concat([per_seed[name], per_seed[twin]], axis=1, join="inner")
            sign = 1.0 if spec.better == "higher" else -1.0
            paired = paired_comparison(sign * both.iloc[:, 0], sign * both.iloc[:, 1])
            found.append((name, twin, prop, spec.better, paired))
    adjusted = with_holm([f[4] for f in found])
    return [(*f[:4], p) for f, p in zip(found, adjusted, strict=True)]


def comparison_lines(pairs) -> list[str]:
    from actlab.stats import test_text

    if not pairs:
        return [
            "No learnable activation has its frozen counterpart in this run (the fixed "
            "activation equal to it at its initial values, e.g. Swish for Swish-beta, "
            "`max(x, 0.25*x)` for PReLU), so the value of learning is not measured here; add "
            "the counterpart to --activations."
        ]
    lines = []
    family = f"the {len(pairs)} learned-versus-frozen comparisons"
    for name, twin, prop, better, p in pairs:
        if not p.tested:
            lines.append(f"{prop}: {name} against frozen {twin} cannot be tested ({p.n} seeds).")
            continue
        # p.mean_diff is oriented so that positive favours the learned one
        raw = (p.mean_diff if better == "higher" else -p.mean_diff) + 0.0  # no "-0"
        inside = f"learned minus frozen {raw:+.3g}, {better} is better; {test_text(p, family)}"
        if p.significant:
            word = "better" if p.mean_diff > 0 else "worse"
            lines.append(f"{prop}: learned {name} is {word} than frozen {twin} ({inside}).")
        else:
            lines.append(
                f"{prop}: learned {name} and frozen {twin} are not separated by {p.n} seeds "
                f"({inside})."
            )
    return lines


def learnable_section(
    results, activations: dict[str, Any], figure_dir: Path, parts: dict
) -> dict | None:
    """The section (title, anchor, markdown, figures), or None without a learnable
    activation."""
    from actlab.report.parts import anchor

    learnable = {n: a for n, a in activations.items() if a.learnable is not None}
    if not learnable:
        return None
    rows = results[results["metric"].str.startswith("learned_")]
    title = "Learnable activations"
    lines = [
        "**Question.** What do the activations' own parameters learn, and does learning "
        "them help? Their initial values define the function at initialisation (the studies "
        "of initialisation see that function); the studies that train networks train them "
        "with the weights, each layer its own.",
        "",
    ]
    figures = []
    if not rows.empty:
        groups = sorted({group_of(r) for r in rows.itertuples()}, key=_group_order)
        learned = learned_values(rows)
        figure = plot_shapes(learnable, learned, groups, figure_dir / "learnable_shapes.png")
        figures.append(figure)
        lines += [f"![learned shapes](figures/{figure.name})", ""]
        for name, act in learnable.items():
            table = parameter_lines(name, act, rows, groups)
            if table:
                lines += [
                    f"**{name}**: the learned parameters, mean [95% interval] over seeds.",
                    "",
                ]
                lines += table + [""]
    lines += ["**What the data says.**", ""]
    lines += [f"- {s}" for s in comparison_lines(comparisons(activations, parts))]
    return {
        "title": title,
        "anchor": anchor(title),
        "markdown": "\n".join(lines),
        "figures": figures,
    }


def _group_order(group: str) -> tuple:
    order = ["MNIST-1D mlp", "MNIST-1D cnn", "MNIST-1D transformer"]
    return (group not in order, order.index(group) if group in order else 0, group)
