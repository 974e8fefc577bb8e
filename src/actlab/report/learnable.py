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

Where the parameters ended up is shown per *network*: one network shape trained one way,
i.e. an MNIST-1D architecture, or a study of small networks at one of its settings (every
setting column that varies within the study: capacity's target, stability's part and
learning rate or depth, ...). Nothing is pooled across depths, targets, optimisers or
learning rates, so a layer's row always averages the same networks; a trial without a
finite learned value (it diverged) is left out, and each row says how many were.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

LEARNED = re.compile(r"^learned_(?P<name>\w+?)(?:\[(?P<index>\d+)\])?$")
TABLE_PARAMS = 3  # families with more scalar parameters are shown by their shapes only
SHOWN_LAYERS = 5  # a deeper network shows its first, last and three layers between
FIGURE_NETWORKS = 6  # columns of the shapes figure; the tables show every network


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


def _value_text(v) -> str:
    if isinstance(v, float | int) and not isinstance(v, bool):
        return f"{v:g}"
    return str(v)


def _sortable(v) -> tuple:
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def _study_columns(study: str) -> list[str]:
    from actlab.studies import get_study

    try:
        return list(get_study(study).param_columns)
    except Exception:  # a study this version does not know: the table's column order
        return []


def network_labels(rows) -> tuple[list[str], list[str]]:
    """(labels, order): per row its network, one shape trained one way, and the networks
    in the order the tables show them. A network is an MNIST-1D architecture (with any
    other setting that varies among the study's rows), or a study with every setting column
    that varies among its rows ("stability: part lr, lr 0.1"): the rows of one label differ
    only by seed. Order: MNIST-1D's architectures, then the studies as the run holds them,
    each by its settings' values."""
    from actlab.store import CORE_COLUMNS

    settings = [c for c in rows.columns if c not in CORE_COLUMNS and c != "architecture"]
    varying: dict[str, list[str]] = {}
    studies: dict[str, int] = {}
    for study, own in rows.groupby("study", sort=False):
        studies[study] = len(studies)
        found = [c for c in settings if own[c].notna().any() and own[c].nunique(dropna=False) > 1]
        order = _study_columns(study)  # the study's own order of its settings, where known
        varying[study] = sorted(found, key=lambda c: order.index(c) if c in order else len(order))
    labels, keys = [], {}
    archs = ["mlp", "cnn", "transformer"]
    for r in rows.itertuples(index=False):
        row = r._asdict()
        study = row["study"]
        values = [row[c] for c in varying[study]]
        words = [f"{c} {_value_text(v)}" for c, v in zip(varying[study], values, strict=True)]
        if study == "mnist1d":
            arch = row["architecture"]
            label = f"MNIST-1D {arch}" + (f" ({', '.join(words)})" if words else "")
            head = (0, archs.index(arch) if arch in archs else len(archs), str(arch))
        else:
            label = f"{study}: {', '.join(words)}" if words else str(study)
            head = (1, studies[study], "")
        labels.append(label)
        keys.setdefault(label, (*head, *(_sortable(v) for v in values)))
    return labels, sorted(keys, key=keys.__getitem__)


def learned_values(rows) -> dict[tuple, dict[str, Any]]:
    """(activation, network, trial, layer) -> {parameter: value or [values]}."""
    import numpy as np

    out: dict[tuple, dict[str, Any]] = {}
    for r in rows.itertuples():
        m = LEARNED.match(r.metric)
        if not m or m["name"].endswith("_sd"):
            continue
        network = getattr(r, "network", None) or group_of(r)
        key = (r.activation, network, r.trial, int(r.layer))
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


def plot_shapes(activations, learned, networks, path: Path) -> Path:
    """Per learnable activation (rows) and network (columns): the initial shape (dashed)
    and the learned shape of each layer, the mean of the seeds' curves (trials without a
    finite value, diverged, left out)."""
    import textwrap

    import torch

    from actlab.render.figures import pyplot, save

    plt = pyplot()
    names = list(activations)
    fig, axes = plt.subplots(
        len(names),
        len(networks),
        figsize=(3.2 * len(networks), 2.6 * len(names) + 0.6),
        squeeze=False,
    )
    x = torch.linspace(-4, 4, 401, dtype=torch.float64)
    cmap = plt.get_cmap("viridis")
    for i, name in enumerate(names):
        act = activations[name]
        for j, network in enumerate(networks):
            ax = axes[i][j]
            ax.plot(x, act.fn(x), "k--", lw=1.2, label="initial")
            layers = shown_layers(list({k[3] for k in learned if k[0] == name and k[1] == network}))
            for layer in layers:
                curves = [
                    shape_at(act.learnable, v, x)
                    for k, v in learned.items()
                    if k[0] == name
                    and k[1] == network
                    and k[3] == layer
                    and all(math.isfinite(float(t)) for t in _flat(v))
                ]
                if curves:
                    mean = torch.stack(curves).mean(dim=0)
                    colour = cmap(layers.index(layer) / len(layers))
                    ax.plot(x, mean, color=colour, lw=1.5, label=f"layer {layer}")
            ax.set_title(textwrap.fill(f"{name}, {network}", 40), fontsize=8)
            ax.set_ylim(-3, 4)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("learned shapes (mean over seeds, per network) against the initial shape")
    fig.tight_layout()
    return save(fig, path)


def _flat(values: dict[str, Any]) -> list[float]:
    out: list[float] = []
    for v in values.values():
        out += list(v) if hasattr(v, "__len__") else [v]
    return out


def parameter_lines(name, act, rows, networks) -> list[str]:
    """Mean [95% CI over seeds] of each scalar parameter per network and layer (a network:
    one shape and setting, so a seed has one trial there), and how many of the network's
    trials are left out for want of a finite value (they diverged)."""
    import numpy as np

    from actlab.stats import summarize

    params = [p for p in act.learnable.params if not p.shape]
    if not params or len(params) > TABLE_PARAMS:
        return []
    head = "| network | layer | " + " | ".join(
        f"{p.name} (start {p.init[0]:g}{', per unit: mean' if p.scope == 'per-unit' else ''})"
        for p in params
    )
    lines = [head + " | diverged, left out |", "|" + "---|" * (3 + len(params))]
    own = rows[rows["activation"] == name]
    for network in networks:
        at = own[own["network"] == network]
        if at.empty:
            continue
        for layer in shown_layers([int(v) for v in at["layer"].dropna().unique()]):
            here = at[at["layer"] == layer]
            values = here[here["metric"].isin([f"learned_{p.name}" for p in params])]
            trials = values.groupby("trial")["value"].apply(lambda v: bool(np.isfinite(v).all()))
            lost = int((~trials).sum())
            cells = []
            for p in params:
                cell = here[
                    (here["metric"] == f"learned_{p.name}")
                    & here["trial"].isin(trials[trials].index)
                ]
                s = summarize(cell.groupby("seed")["value"].mean())
                if s.n == 0:
                    cells.append("–")
                    continue
                ci = f" [{s.ci_low:.3g}, {s.ci_high:.3g}]" if s.n > 1 else ""
                cells.append(f"{s.mean:.3g}{ci}")
            lines.append(
                f"| {network} | {int(layer)} | "
                + " | ".join(cells)
                + f" | {lost} of {len(trials)} |"
            )
    return lines


def twin_spec(name: str, learnable) -> str | None:
    """What to add to --activations so that the run holds `learnable`'s frozen twin: a
    built-in fixed activation equal to it at its initial values ("Swish"), else its
    expression with the initial values written in ("prelu_fixed=max(x, 0.25*x)"), checked
    to be the same function; None when neither exists (a parameter that is not a scalar)."""
    import torch

    from actlab.activations import BUILTINS, parse_activation_arg
    from actlab.learnable import ExpressionFamily

    fixed = {n: a for n, a in BUILTINS.items() if a.learnable is None}
    builtin = frozen_twin(learnable, fixed)
    if builtin is not None:
        return builtin
    family = learnable.learnable
    if not isinstance(family, ExpressionFamily) or any(p.shape for p in family.params):
        return None
    values = {p.name: float(p.init[0]) for p in family.params}
    candidates = []
    if re.fullmatch(r"where\(x > 0, x, (\w+)\*x\)", family.text) and len(values) == 1:
        (slope,) = values.values()  # a leaky rectifier: max(x, a*x) for 0 <= a <= 1
        if 0 <= slope <= 1:
            candidates.append(f"max(x, {slope!r}*x)")
    text = family.text
    for param, value in values.items():
        written = repr(value) if value >= 0 else f"({value!r})"
        text = re.sub(rf"\b{re.escape(param)}\b", written, text)
    candidates.append(text)
    label = re.sub(r"\W", "_", name).lower() + "_fixed"
    for expression in candidates:
        spec = f"{label}={expression}"
        try:
            act = parse_activation_arg(spec)
        except Exception:  # not writable in the expression language: try the next
            continue
        with torch.no_grad():
            if frozen_twin(learnable, {label: act}) == label:
                return spec
    return None


def untwinned(activations) -> list[tuple[str, str | None]]:
    """(learnable, what to add to include its twin) for every learnable activation of the
    run whose frozen twin the run does not hold."""
    return [
        (name, twin_spec(name, act))
        for name, act in activations.items()
        if act.learnable is not None and frozen_twin(act, activations) is None
    ]


def no_score_reason(at, name: str, twin: str, paired) -> str:
    """Why a learned-versus-frozen pair cannot be tested, from the property's rows: neither
    (or one) has a score in any seed, with the outcome that stands in its place ("cannot
    die", "diverged"), or too few seeds with a score for both."""
    import numpy as np

    def scored(act: str):
        own = at[at["activation"] == act]
        return own, own[np.isfinite(own["score"].astype(float))]

    def outcomes(own) -> list[str]:
        missing = own[~np.isfinite(own["score"].astype(float))]
        return sorted({o or "no value" for o in missing["outcome"].fillna("")})

    (own_a, ok_a), (own_b, ok_b) = scored(name), scored(twin)
    seeds = len(set(own_a["seed"]) | set(own_b["seed"]))
    if ok_a.empty and ok_b.empty:
        out_a, out_b = outcomes(own_a), outcomes(own_b)
        if out_a == out_b == ["cannot die"]:
            return (
                "neither can die (no region of zero slope), so neither has a score in any of "
                f"the {seeds} seeds"
            )
        if out_a == out_b and len(out_a) == 1:
            return f"neither has a score in any of the {seeds} seeds (both: {out_a[0]})"
        return (
            f"neither has a score in any of the {seeds} seeds ({name}: {', '.join(out_a)}; "
            f"{twin}: {', '.join(out_b)})"
        )
    for act, own, ok in ((name, own_a, ok_a), (twin, own_b, ok_b)):
        if ok.empty:
            seeds_of = own["seed"].nunique()
            return f"{act} has no score in any of its {seeds_of} seeds ({', '.join(outcomes(own))})"
    return (
        f"only {paired.n} seed{'s' if paired.n != 1 else ''} have a score for both, and the "
        "sign-flip test needs 2"
    )


def comparisons(activations, parts) -> list[tuple]:
    """(learnable, frozen twin, property, better, Paired, why untested) for every pair the
    run holds and every property both are scored on; Holm over the tested ones (an
    untested pair has no p and is no member of the family)."""
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
            why = "" if paired.tested else no_score_reason(at, name, twin, paired)
            found.append((name, twin, prop, spec.better, paired, why))
    adjusted = with_holm([f[4] for f in found])
    return [(*f[:4], p, f[5]) for f, p in zip(found, adjusted, strict=True)]


def comparison_lines(pairs, missing=()) -> list[str]:
    """The section's findings: a learnable activation without its twin in the run, with
    what to add to include it; the family's floor when its tests cannot reach p < 0.05 at
    these seeds, before any result; then each comparison, or why it cannot be made."""
    from actlab.stats import test_text, tests_reach

    lines = []
    for name, spec in missing:
        how = (
            f"add `{spec}` to --activations to include it"
            if spec
            else "no fixed activation equal to it at its start can be written here, so it "
            "cannot be included"
        )
        lines.append(
            f"{name} is not compared with a frozen twin: the fixed activation equal to it at "
            f"its initial values is not in this run; {how}."
        )
    if not pairs:
        if not missing:
            lines.append(
                "No property of this run's trained studies scores a learnable activation and "
                "its frozen twin both, so the value of learning is not measured here."
            )
        return lines
    tested = [p for *_, p, _ in pairs if p.tested]
    family = f"the {len(tested)} learned-versus-frozen comparisons" if len(tested) > 1 else ""
    reach = tests_reach(tested, "the learned-versus-frozen tests")
    if reach:
        lines.append(reach)
    for name, twin, prop, better, p, why in pairs:
        if not p.tested:
            lines.append(f"{prop}: learned {name} against frozen {twin} cannot be tested: {why}.")
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
        labels, networks = network_labels(rows)
        rows = rows.assign(network=labels)
        learned = learned_values(rows)
        shown = networks[:FIGURE_NETWORKS]
        figure = plot_shapes(learnable, learned, shown, figure_dir / "learnable_shapes.png")
        figures.append(figure)
        lines += [f"![learned shapes](figures/{figure.name})", ""]
        if len(shown) < len(networks):
            lines += [
                f"The figure shows the first {len(shown)} of the {len(networks)} networks "
                f"({', '.join(shown)}); the tables below hold them all.",
                "",
            ]
        for name, act in learnable.items():
            table = parameter_lines(name, act, rows, networks)
            if len(table) > 2:
                lines += [
                    f"**{name}**: the learned parameters, mean [95% interval] over seeds, per "
                    "network (one shape trained one way: never pooled across depths, "
                    "targets, optimisers or learning rates). A trial without a finite learned "
                    "value (it diverged) is left out of its row; the last column counts them. "
                    f"Of a network with more than {SHOWN_LAYERS} layers, {SHOWN_LAYERS} are "
                    "shown, spread from the first to the last; every layer is in results.csv "
                    "(the learned_ metrics).",
                    "",
                ]
                lines += table + [""]
    lines += ["**What the data says.**", ""]
    found = comparisons(activations, parts)
    lines += [f"- {s}" for s in comparison_lines(found, untwinned(activations))]
    return {
        "title": title,
        "anchor": anchor(title),
        "markdown": "\n".join(lines),
        "figures": figures,
    }
