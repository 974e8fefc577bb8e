"""The report's section on learnable activations: what the parameters learned, the learned
shapes beside the initial one, and whether learning them helped, measured against the
frozen counterpart.

The frozen counterpart of a learnable activation is the fixed activation of the run that
is the same function at the learnable one's initial values (equal on a probe grid): Swish
for Swish-beta, `max(x, 0.25*x)` for a PReLU that starts at 0.25, ReLU for the spline.
Each comparison is paired by seed (both start from the same weights) and tested with the
sign-flip test, Holm-adjusted over every learned-versus-frozen comparison of the run.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

LEARNED = re.compile(r"^learned_(?P<name>\w+?)(?:\[(?P<index>\d+)\])?$")
TABLE_PARAMS = 3  # families with more scalar parameters are shown by their shapes only


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


def learned_values(rows) -> dict[tuple, dict[str, Any]]:
    """(activation, architecture, seed, layer) -> {parameter: value or [values]}."""
    import numpy as np

    out: dict[tuple, dict[str, Any]] = {}
    for r in rows.itertuples():
        m = LEARNED.match(r.metric)
        if not m or m["name"].endswith("_sd"):
            continue
        key = (r.activation, r.architecture, int(r.seed), int(r.layer))
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
    """Per learnable activation (rows) and architecture (columns): the initial shape
    (dashed) and the learned shape of each layer, the mean over seeds of each seed's curve."""
    import torch

    from actlab.report.figures import pyplot, save

    plt = pyplot()
    names = list(activations)
    fig, axes = plt.subplots(
        len(names),
        len(architectures),
        figsize=(3.6 * len(architectures), 2.8 * len(names)),
        squeeze=False,
    )
    x = torch.linspace(-4, 4, 401, dtype=torch.float64)
    cmap = plt.get_cmap("viridis")
    for i, name in enumerate(names):
        act = activations[name]
        for j, arch in enumerate(architectures):
            ax = axes[i][j]
            ax.plot(x, act.fn(x), "k--", lw=1.2, label="initial")
            layers = sorted({k[3] for k in learned if k[0] == name and k[1] == arch})
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
                    colour = cmap(layer / (len(layers) + 1))
                    ax.plot(x, mean, color=colour, lw=1.5, label=f"layer {layer}")
            ax.set_title(f"{name}, {arch}", fontsize=9)
            ax.set_ylim(-3, 4)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("learned shapes (mean over seeds) against the initial shape")
    fig.tight_layout()
    return save(fig, path)


def _flat(values: dict[str, Any]) -> list[float]:
    out: list[float] = []
    for v in values.values():
        out += list(v) if hasattr(v, "__len__") else [v]
    return out


def parameter_lines(name, act, rows, architectures) -> list[str]:
    """Mean [95% CI] over seeds of each scalar parameter per architecture and layer."""
    from actlab.stats import summarize

    params = [p for p in act.learnable.params if not p.shape]
    if not params or len(params) > TABLE_PARAMS:
        return []
    head = "| architecture | layer | " + " | ".join(
        f"{p.name} (start {p.init[0]:g}{', per unit: mean' if p.scope == 'per-unit' else ''})"
        for p in params
    )
    lines = [head + " |", "|" + "---|" * (2 + len(params))]
    own = rows[rows["activation"] == name]
    for arch in architectures:
        at = own[own["architecture"] == arch]
        for layer in sorted(at["layer"].dropna().unique()):
            cells = []
            for p in params:
                s = summarize(
                    at[(at["layer"] == layer) & (at["metric"] == f"learned_{p.name}")]["value"]
                )
                ci = f" [{s.ci_low:.3g}, {s.ci_high:.3g}]" if s.n > 1 else ""
                cells.append(f"{s.mean:.3g}{ci}")
            lines.append(f"| {arch} | {int(layer)} | " + " | ".join(cells) + " |")
    return lines


def comparisons(activations, results, architectures) -> list[tuple]:
    """(learnable, frozen twin, architecture, Paired) for every pair the run holds."""
    from actlab.stats import paired_by_seed, with_holm
    from actlab.studies.base import trial_table

    table = trial_table(
        results, "mnist1d", ("test_accuracy",), ["architecture", "activation", "seed"]
    )
    found = []
    for name, act in activations.items():
        if act.learnable is None:
            continue
        twin = frozen_twin(act, activations)
        if twin is None:
            continue
        for arch in architectures:
            at = table[table["architecture"] == arch]
            found.append((name, twin, arch, paired_by_seed(at, "test_accuracy", name, twin)))
    adjusted = with_holm([f[3] for f in found])
    return [(n, t, a, p) for (n, t, a, _), p in zip(found, adjusted, strict=True)]


def comparison_lines(pairs) -> list[str]:
    from actlab.stats import test_text

    if not pairs:
        return [
            "No learnable activation has its frozen counterpart in this run (the fixed "
            "activation equal to it at its initial values, e.g. Swish for Swish-beta), so "
            "the value of learning is not measured here; add the counterpart to "
            "--activations."
        ]
    lines = []
    family = f"the {len(pairs)} learned-versus-frozen comparisons"
    for name, twin, arch, p in pairs:
        if not p.tested:
            lines.append(f"{name} against {twin} in the {arch}: cannot be tested ({p.n} seeds).")
            continue
        diff = f"{100 * p.mean_diff:+.1f} points of test accuracy"
        inside = f"{diff}; {test_text(p, family)}"
        if p.significant:
            word = "helped" if p.mean_diff > 0 else "hurt"
            lines.append(
                f"Learning {name}'s parameters {word} in the {arch} against frozen {twin} ({inside})."
            )
        else:
            lines.append(
                f"In the {arch}, {name} and frozen {twin} are not separated by {p.n} seeds ({inside})."
            )
    return lines


def learnable_section(results, activations: dict[str, Any], figure_dir: Path) -> dict | None:
    """The section (title, anchor, markdown, figures), or None when nothing was learned."""
    from actlab.report.parts import anchor

    learnable = {n: a for n, a in activations.items() if a.learnable is not None}
    if not learnable or "mnist1d" not in set(results["study"]):
        return None
    rows = results[(results["study"] == "mnist1d") & results["metric"].str.startswith("learned_")]
    if rows.empty:
        return None
    architectures = [a for a in ("mlp", "cnn", "transformer") if a in set(rows["architecture"])]
    learned = learned_values(rows)
    figure = plot_shapes(learnable, learned, architectures, figure_dir / "learnable_shapes.png")
    title = "Learnable activations"
    lines = [
        "**Question.** What do the activations' own parameters learn, and does learning "
        "them help? Their initial values define the function at initialisation (the studies "
        "of initialisation see that function); MNIST-1D trains them with the weights, each "
        "site (layer) its own.",
        "",
        f"![learned shapes](figures/{figure.name})",
        "",
    ]
    for name, act in learnable.items():
        table = parameter_lines(name, act, rows, architectures)
        if table:
            lines += [f"**{name}**: the learned parameters, mean [95% interval] over seeds.", ""]
            lines += table + [""]
    lines += ["**What the data says.**", ""]
    lines += [f"- {s}" for s in comparison_lines(comparisons(activations, results, architectures))]
    return {
        "title": title,
        "anchor": anchor(title),
        "markdown": "\n".join(lines),
        "figures": [figure],
    }
