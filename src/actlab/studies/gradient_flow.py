"""Protocol experiment 1: how gradients flow through an untrained deep network.

One forward pass of 32 Gaussian inputs, loss = mean output, one backward pass; per Linear
layer the mean |dW|. Magnitudes span many decades, so statistics over seeds are taken on
log10 values: the summary is a geometric mean with a 95% interval. A gradient of exactly
zero has no logarithm: it is floored at stats.LOG_FLOOR and counted, never dropped.

The score is the gradient's decay across the hidden layers, which all have the same shape
(width x width): log10 of the last hidden layer's mean |dW| over the first's (layers 2 and
D of a depth-D network; positive when the gradient shrinks on its way to the input). The
protocol's last/first ratio compares the 1 -> width input layer with the width -> 1
output layer, whose gradients differ in scale for every activation, so it is shown but
not scored. Each word means one thing everywhere (tables, findings, claims, verdicts),
judged per seed:
  vanished   the gradient shrank by more than DECAY_LIMIT (1000x) across the hidden layers
  exploded   it grew by more than DECAY_LIMIT
  collapsed  every layer's mean |dW| below `vanish_threshold` (the stored `grad_vanished`):
             a flat profile of tiny gradients, the forward signal having died out, which the
             decay alone does not show
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from actlab.report.text import fmt
from actlab.studies.base import (
    PropertySpec,
    ReportContext,
    RunContext,
    Section,
    Study,
    Trial,
    build_stack,
    critical_sigma_w,
    property_frame,
)

# A gradient that shrinks (grows) by more than this factor across the hidden layers has
# vanished (exploded): three decades, far outside seed noise at any depth of the protocol.
DECAY_LIMIT = 1e3

# The protocol's interpretation of last/first, checked top to bottom.
RATIO_BANDS = (
    (1e6, "severe vanishing"),
    (100.0, "significant decay"),
    (10.0, "moderate decay"),
    (0.1, "stable"),
)


def ratio_band(ratio: float) -> str:
    if math.isnan(ratio):
        return "undefined"
    for threshold, label in RATIO_BANDS:
        if ratio > threshold:
            return label
    return "amplification"


InitName = Literal[
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_normal",
    "orthogonal",
    "critical",
    "practice",
]


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    depths: list[int] = Field([5, 10, 20, 50], min_length=1)
    width: int = Field(64, ge=1, le=8192)
    in_dim: int = Field(1, ge=1, le=8192)
    n_samples: int = Field(32, ge=1, le=1_000_000)
    init: InitName | list[InitName] = Field(
        "xavier_uniform",
        description="one initialisation for every activation, or a list of one and "
        "'critical' (each activation also at its edge of chaos, where theory gives one)",
    )
    sigma_b: float = Field(
        0.0, ge=0, le=10, description="bias standard deviation for init = 'critical'"
    )
    vanish_threshold: float = Field(
        1e-8,
        gt=0,
        description="a trial's gradients have collapsed when every layer's mean |dW| is below this",
    )

    report_depth: int = Field(20, ge=1, description="depth of the report's ratio table")

    def model_post_init(self, _context: Any) -> None:
        bad = [d for d in self.depths if not 1 <= d <= 1000]
        if bad:
            raise ValueError(f"depths must be between 1 and 1000 (got {bad[0]})")
        inits = self.inits
        if (
            not inits
            or len(set(inits)) != len(inits)
            or (len(inits) > 1 and (len(inits) != 2 or inits[1] != "critical"))
        ):
            raise ValueError(
                "init must be one initialisation or a list of one and 'critical' "
                f'(got {self.init}); e.g. init = ["practice", "critical"]'
            )

    @property
    def inits(self) -> list[str]:
        return [self.init] if isinstance(self.init, str) else list(self.init)

    @property
    def main_init(self) -> str:
        return self.inits[0]


class GradientFlow(Study):
    name = "gradient_flow"
    learnable_activations = "initial"
    title = "Gradient flow"
    Config = Config
    param_columns = ("depth", "width", "in_dim", "init")

    def trials(self, config: Config, activations: list[str], seeds: int) -> list[Trial]:
        return [
            Trial(
                self.name,
                act,
                seed,
                {
                    "depth": depth,
                    "width": config.width,
                    "in_dim": config.in_dim,
                    "init": init,
                },
            )
            for init in config.inits
            for depth in config.depths
            for act in activations
            for seed in range(seeds)
        ]

    def check(self, config: Config, activations) -> None:
        """init = 'critical' alone needs an edge of chaos for every activation; in a list,
        an activation without one is measured at the other init only (and said so)."""
        if config.init == "critical":
            for act in activations.values():
                critical_sigma_w(act, config.sigma_b)

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        import torch

        from actlab.engine import generator, layer_sizes

        cfg: Config = ctx.config
        p = trials[0].params
        if p["init"] == "critical":  # in a list of inits: some activations have no edge
            lacking = {t.activation for t in trials if not has_edge(ctx, t.activation, cfg)}
            if lacking:
                rest = [t for t in trials if t.activation not in lacking]
                done = iter(self.run(rest, ctx) if rest else [])
                no_edge = [{"metric": "no_critical_init", "value": 1.0}]
                return [no_edge if t.activation in lacking else next(done) for t in trials]
        sizes = layer_sizes(p["in_dim"], p["width"], p["depth"])
        model = build_stack(trials, ctx, sizes, p["init"])
        # Like the weights, the inputs are keyed by seed and not by activation (paired).
        inputs = [
            torch.randn(
                cfg.n_samples,
                p["in_dim"],
                dtype=ctx.torch_dtype,
                generator=generator(
                    ctx.run_seed, "gradient_flow/input", cfg.n_samples, p["in_dim"], t.seed
                ),
            )
            for t in trials
        ]
        x = torch.stack(inputs).to(ctx.device)
        model.output_mean(model.forward(x)).sum().backward()
        grads = model.weight_grad_mean_abs().double().cpu().numpy()
        return [trial_rows(row.tolist(), cfg.vanish_threshold) for row in grads]

    def summarize(self, results):
        return summarize(results)

    property_specs = (
        PropertySpec(
            "gradient flow",
            "decay of the mean weight gradient across the hidden layers at initialisation: "
            "|log10(last hidden / first hidden)|, at each depth of the sweep",
            "lower",
            settings="depths",
            situation="gradients that must reach the first layers",
            rests_on=("depth robustness",),
        ),
        PropertySpec(
            "gradient flow at the edge of chaos",
            "the same decay with each activation initialised at its edge of chaos "
            "(mean-field theory), at each depth of the sweep",
            "lower",
            settings="depths",
        ),
    )

    def conditions(self, config: Config) -> dict[str, str]:
        from actlab.studies.base import init_words

        def words(init: str) -> str:
            return (
                f"untrained MLPs of depth {'/'.join(map(str, config.depths))}, width "
                f"{config.width}, {init_words(init)}; one backward pass of the mean "
                f"output over {config.n_samples} Gaussian inputs"
            )

        out = {self.property_specs[0].name: words(config.main_init)}
        if len(config.inits) > 1:
            out[self.property_specs[1].name] = words(config.inits[1]) + (
                f", sigma_b {config.sigma_b:g}"
            )
        return out

    def properties(self, summary, rctx: ReportContext):
        """Per seed and depth: |log10 decay| across the hidden layers (0 = the gradient
        keeps its size; an exact zero layer floored and flagged). Outcome "vanished" or
        "exploded" past the decay limit, else "ok"; a depth without two hidden layers of
        the same shape has no score. The main init scores "gradient flow", the critical one
        (when listed beside it) "gradient flow at the edge of chaos", where an activation
        without an edge has no score and the outcome "no edge of chaos"."""
        cfg: Config = rctx.config
        name = {cfg.main_init: self.property_specs[0].name}
        if len(cfg.inits) > 1:
            name[cfg.inits[1]] = self.property_specs[1].name
        rows = [
            {
                "property": name[r.init],
                "activation": r.activation,
                "seed": int(r.seed),
                "setting": f"depth={int(r.depth)}",
                "score": abs(r.log10_decay),
                "outcome": r.state,
                "floored": bool(r.grad_min == 0),
            }
            for r in summary["trials"].itertuples()
            if not math.isnan(r.log10_decay) and r.init in name
        ]
        for init, acts in summary.get("no_edge", {}).items():
            if init not in name:
                continue
            rows += [
                {
                    "property": name[init],
                    "activation": act,
                    "seed": seed,
                    "setting": f"depth={depth}",
                    "score": math.nan,
                    "outcome": "no edge of chaos",
                }
                for act in acts
                for depth in cfg.depths
                for seed in range(rctx.seeds)
            ]
        return property_frame(rows)

    def claims(self, summary, rctx: ReportContext) -> list[str]:
        claim = smooth_relus_keep_gradient(summary, rctx)
        return [claim] if claim else []

    def sheet_panels(self, summary, rctx: ReportContext, colours) -> list:
        return [lambda ax: panel(ax, summary, rctx, colours)]

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        layers = main_layers(summary, rctx.config)
        figure = plot(layers, rctx.activations, figure_dir / "gradient_flow.png")
        return Section(self.title, report_markdown(summary, rctx, figure.name), [figure])


def has_edge(ctx: RunContext, activation: str, cfg: Config) -> bool:
    """Whether the mean-field theory gives the activation a usable edge of chaos."""
    from actlab.errors import UserError

    try:
        critical_sigma_w(ctx.activations[activation], cfg.sigma_b)
    except UserError:
        return False
    return True


def main_layers(summary, cfg: Config):
    """The per-layer statistics at the main initialisation (the figures show that one)."""
    layers = summary["layers"]
    return layers[layers["init"] == cfg.main_init] if "init" in layers else layers


def trial_rows(per_layer: list[float], vanish_threshold: float) -> list[dict[str, Any]]:
    """The protocol's metrics for one network, from its per-layer mean |dW| (input first)."""
    first, last = per_layer[0], per_layer[-1]
    rows = [
        {"metric": "grad_mean_abs", "layer": i + 1, "value": g} for i, g in enumerate(per_layer)
    ]
    rows += [
        {"metric": "grad_ratio", "value": honest_ratio(last, first)},
        {"metric": "grad_log10_ratio", "value": log10(last) - log10(first)},
        {"metric": "grad_min", "value": min(per_layer)},
        {"metric": "grad_max", "value": max(per_layer)},
        {"metric": "grad_vanished", "value": float(max(per_layer) < vanish_threshold)},
    ]
    return rows


def band_reading(summary_row) -> str:
    """The protocol's band for the geometric mean, or the range of bands the 95% interval
    spans when the seeds do not agree on one."""
    central = ratio_band(10 ** summary_row["mean"])
    if math.isnan(summary_row["ci_low"]):
        return central
    low, high = ratio_band(10 ** summary_row["ci_low"]), ratio_band(10 ** summary_row["ci_high"])
    return central if low == high else f"{central} (interval spans {low} to {high})"


def reading(row, cfg: Config) -> str:
    """The table's reading of one activation at one depth, in the words of the module
    docstring: vanished / exploded (by the decay across the hidden layers) in how many
    seeds, else kept its size within the limit; collapsed seeds said apart."""
    n = int(row["n_seeds"])
    limit = f"{DECAY_LIMIT:g}x"
    parts = []
    for state, verb in (("vanished", "shrank"), ("exploded", "grew")):
        k = int(row[state])
        if k:
            where = "in every seed" if k == n else f"in {k} of {n} seeds"
            parts.append(f"{state} {where} ({verb} more than {limit} across the hidden layers)")
    if not parts:
        parts.append(f"kept its size within {limit} in every seed")
    if row["collapsed"]:
        k = int(row["collapsed"])
        parts.append(
            f"collapsed in {'every seed' if k == n else f'{k} of {n} seeds'} (every layer "
            f"below {cfg.vanish_threshold:g}: the forward signal died out)"
        )
    return "; ".join(parts)


def log10(value: float) -> float:
    return math.log10(value) if value > 0 else -math.inf


def honest_ratio(last: float, first: float) -> float:
    """last / first with no arbitrary floor: inf only when first is exactly zero."""
    if first == 0:
        return math.nan if last == 0 else math.inf
    return last / first


def summarize(results) -> dict[str, Any]:
    """Geometric means over seeds with 95% intervals, per init, activation, depth and layer
    (`layers`); per init, activation and depth (`ratio`): the protocol's last/first ratio
    (`mean`, `ci_*`), the decay across the hidden layers (`decay`, `decay_low`,
    `decay_high`, log10), the first, last and weakest layers' geometric means, and per-seed
    counts of `vanished`, `exploded`, `collapsed` and `zeros` (trials with an exactly zero
    layer, floored); `trials`: one row per trial (grad_min, grad_max, grad_vanished,
    log10_min, log10_decay, state); `no_edge`: per init, the activations that had no edge
    of chaos to be initialised at."""
    import pandas as pd

    from actlab.stats import describe, log10_floored
    from actlab.studies.base import trial_table

    df = results[results["study"] == "gradient_flow"]
    keys = ["init", "activation", "depth"]
    layers = df[df["metric"] == "grad_mean_abs"].copy()
    layers["log10"], _ = log10_floored(layers["value"])
    layer_stats = describe(layers, [*keys, "layer"], value="log10")
    trials = trial_table(
        df,
        "gradient_flow",
        ["grad_min", "grad_max", "grad_vanished"],
        [*keys, "seed"],
    )
    trials["depth"] = trials["depth"].astype(int)
    trials["log10_min"], _ = log10_floored(trials["grad_min"])
    decay = hidden_decay(layers)
    trials = trials.merge(decay, on=[*keys, "seed"], how="left")
    limit = math.log10(DECAY_LIMIT)
    trials["state"] = [
        "vanished" if d > limit else "exploded" if d < -limit else "ok"
        for d in trials["log10_decay"].fillna(0.0)
    ]
    ratio = describe(df[df["metric"] == "grad_log10_ratio"], keys)
    ratio["depth"] = ratio["depth"].astype(int)
    decay_stats = describe(trials.rename(columns={"log10_decay": "value"}), keys).rename(
        columns={"mean": "decay", "ci_low": "decay_low", "ci_high": "decay_high"}
    )
    decay_stats = decay_stats[[*keys, "decay", "decay_low", "decay_high"]]
    first_last = []
    for (init, act, depth), g in layers.groupby(keys, sort=False):
        top = g["layer"].max()
        own = trials[
            (trials["init"] == init) & (trials["activation"] == act) & (trials["depth"] == depth)
        ]
        first_last.append(
            {
                "init": init,
                "activation": act,
                "depth": int(depth),
                "first_log10": g.loc[g["layer"] == 1, "log10"].mean(),
                "last_log10": g.loc[g["layer"] == top, "log10"].mean(),
                "min_log10": own["log10_min"].mean(),
                "vanished": int((own["state"] == "vanished").sum()),
                "exploded": int((own["state"] == "exploded").sum()),
                "collapsed": int(own["grad_vanished"].sum()),
                "n_seeds": len(own),
                "zeros": int((own["grad_min"] == 0).sum()),
            }
        )
    table = ratio.merge(pd.DataFrame(first_last), on=keys)
    table = table.merge(decay_stats, on=keys, how="left")
    edgeless = df[df["metric"] == "no_critical_init"]
    no_edge = {
        init: list(dict.fromkeys(g["activation"]))
        for init, g in edgeless.groupby("init", sort=False)
    }
    return {"layers": layer_stats, "ratio": table, "trials": trials, "no_edge": no_edge}


def hidden_decay(layers):
    """Per trial, log10 of the last hidden layer's mean |dW| over the first hidden layer's
    (layers D and 2 of a depth-D network, both width x width; zeros floored); NaN for a
    network with fewer than two hidden layers of that shape."""
    import pandas as pd

    keys = ["init", "activation", "depth", "seed"]
    rows = []
    for (init, act, depth, seed), g in layers.groupby(keys, sort=False):
        depth = int(depth)
        by_layer = g.set_index("layer")["log10"]
        value = (
            by_layer.get(depth, math.nan) - by_layer.get(2, math.nan) if depth >= 3 else math.nan
        )
        rows.append(
            {
                "init": init,
                "activation": act,
                "depth": depth,
                "seed": int(seed),
                "log10_decay": value,
            }
        )
    return pd.DataFrame(rows, columns=keys + ["log10_decay"])


def plot(layer_stats, activations: list[str], path: Path) -> Path:
    from actlab.report.figures import activation_colours, pyplot, save

    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    depths = sorted(layer_stats["depth"].unique())
    cols = 2 if len(depths) > 1 else 1
    rows = math.ceil(len(depths) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.2 * rows), squeeze=False)
    colours = activation_colours(activations)
    for ax, depth in zip(axes.flat, depths, strict=False):
        at_depth = layer_stats[layer_stats["depth"] == depth]
        for act in activations:
            s = at_depth[at_depth["activation"] == act].sort_values("layer")
            if s.empty:
                continue
            ax.plot(s["layer"], 10 ** s["mean"], marker="o", ms=3, label=act, color=colours[act])
            if s["n"].max() > 1:
                ax.fill_between(
                    s["layer"],
                    10 ** s["ci_low"],
                    10 ** s["ci_high"],
                    alpha=0.2,
                    color=colours[act],
                    linewidth=0,
                )
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"depth {depth}")
        ax.set_xlabel("layer (1 = input side)")
        ax.set_ylabel("mean |dW| (geometric mean over seeds)")
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(depths) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8, ncol=2)
    fig.suptitle("Gradient magnitude per layer at initialisation (band: 95% interval over seeds)")
    return save(fig, path)


def report_markdown(summary: dict[str, Any], rctx: ReportContext, figure_name: str) -> str:
    from actlab.studies.base import init_words

    cfg: Config = rctx.config
    ratio = summary["ratio"]
    depth = (
        cfg.report_depth if cfg.report_depth in set(ratio["depth"]) else int(ratio["depth"].max())
    )
    one_seed = rctx.seeds == 1
    inits = " and, separately, ".join(init_words(i) for i in cfg.inits)
    lines = [
        "**Question.** Does the gradient reaching the first layers of a deep, untrained "
        "network keep its size, or does it shrink (vanish) or grow (explode) layer by layer?",
        "",
        f"**Method.** Networks of depth {', '.join(map(str, cfg.depths))}, width {cfg.width}, "
        f"{inits}; {cfg.n_samples} inputs from "
        f"N(0, 1); loss = mean output; one backward pass. For each Linear layer, the mean "
        f"absolute weight gradient. {rctx.seeds} seed(s) per setting; within a seed all "
        "activations share inputs and the random numbers of their weights. The score is the "
        "decay across the hidden layers, which all have the same shape: the last hidden "
        "layer's gradient over the first's. Vanished: it shrank by more than "
        f"{DECAY_LIMIT:g}x; exploded: it grew by more than that; collapsed: every layer "
        f"below {cfg.vanish_threshold:g}. What this can show: how the gradient's size "
        "changes with depth at this initialisation, before any training; whether a network "
        "then trains is the depth-stress test's question.",
        "",
        f"![Gradient magnitude per layer ({init_words(cfg.main_init)})](figures/{figure_name})",
        "",
    ]
    if one_seed:
        lines += ["*One seed: these numbers are single samples and carry no error bar.*", ""]
    for init in cfg.inits:
        own = ratio[ratio["init"] == init] if "init" in ratio else ratio
        lines += decay_table(own, rctx, depth, init, one_seed)
        missing = summary.get("no_edge", {}).get(init, [])
        if missing:
            lines += [
                f"No edge of chaos at sigma_b = {cfg.sigma_b:g} (mean-field theory), so not "
                f"measured at this initialisation: {', '.join(missing)}.",
                "",
            ]
    lines += [
        "A value below 1 means the gradient is smaller near the input than near the output. "
        "The protocol's last / first ratio divides the output layer's gradient (width -> 1) "
        "by the input layer's (1 -> width): the two differ in shape, so that ratio is shown "
        "for comparison with the original and not scored.",
        "",
        "**What the data says.**",
        "",
    ]
    for init in cfg.inits:
        own = ratio[ratio["init"] == init] if "init" in ratio else ratio
        prefix = f"{init_words(init).capitalize()}: " if len(cfg.inits) > 1 else ""
        lines += [f"- {prefix}{f}" for f in findings(own, rctx.activations, cfg)]
    if len(cfg.inits) > 1:
        lines += [f"- {f}" for f in disagreements(summary, rctx, cfg)]
    return "\n".join(lines)


def decay_table(ratio, rctx: ReportContext, depth: int, init: str, one_seed: bool) -> list[str]:
    from actlab.studies.base import init_words

    cfg: Config = rctx.config
    at = ratio[ratio["depth"] == depth].set_index("activation")
    lines = [
        f"**Gradient decay at depth {depth}, {init_words(init)}** (geometric means over seeds"
        + ("" if one_seed else ", with 95% intervals")
        + "; layer 1 is the input side):",
        "",
        f"| activation | hidden layer {depth} / layer 2 | 95% interval | reading | "
        "first layer mean abs dW | weakest layer | protocol's last / first |",
        "|---|---|---|---|---|---|---|",
    ]
    for act in rctx.activations:
        if act not in at.index:
            continue
        r = at.loc[act]
        decay = 10 ** r["decay"] if math.isfinite(r["decay"]) else math.nan
        interval = (
            "–"
            if not math.isfinite(r["decay_low"])
            else f"{fmt(10 ** r['decay_low'])} – {fmt(10 ** r['decay_high'])}"
        )
        zeros = f" ({int(r['zeros'])} exact zero(s), floored)" if r["zeros"] else ""
        geo = 10 ** r["mean"] if math.isfinite(r["mean"]) else math.nan
        lines.append(
            f"| {act} | {fmt(decay)} | {interval} | {reading(r, cfg)} | "
            f"{fmt(10 ** r['first_log10'])} | {fmt(10 ** r['min_log10'])}{zeros} | "
            f"{fmt(geo)} |"
        )
    return [*lines, ""]


def disagreements(summary, rctx: ReportContext, cfg: Config) -> list[str]:
    """Where the verdict depends on the initialisation: activations whose gradient vanished
    or exploded (in most seeds) at one init and kept its size at the other, per depth."""
    from actlab.studies.base import init_words

    ratio = summary["ratio"]
    main, other = cfg.inits[0], cfg.inits[1]
    out = []
    for depth in sorted(ratio["depth"].unique()):
        a = ratio[(ratio["init"] == main) & (ratio["depth"] == depth)].set_index("activation")
        b = ratio[(ratio["init"] == other) & (ratio["depth"] == depth)].set_index("activation")
        moved = []
        for act in rctx.activations:
            if act not in a.index or act not in b.index:
                continue
            sa, sb = majority_reading(a.loc[act]), majority_reading(b.loc[act])
            if sa != sb:
                moved.append(f"{act} ({sa} at the first, {sb} at the second)")
        if moved:
            out.append(
                f"Depth {depth}: the verdict depends on the initialisation "
                f"({init_words(main)} against {init_words(other)}): {'; '.join(moved)}."
            )
    if not out:
        out.append(
            "At every depth, each activation measured at both initialisations got the same "
            "reading (vanished, exploded or kept its size, in most seeds) at both."
        )
    return out


def majority_reading(row) -> str:
    n = int(row["n_seeds"])
    for state in ("vanished", "exploded"):
        if 2 * int(row[state]) > n:
            return state
    return "kept its size"


def findings(ratio, activations: list[str], cfg: Config) -> list[str]:
    """Sentences computed from the summary; nothing here is written in advance. Vanished,
    exploded and collapsed as the module docstring defines them, per seed."""
    out = []
    for depth in sorted(ratio["depth"].unique()):
        at = ratio[(ratio["depth"] == depth) & ratio["activation"].isin(activations)]
        at = at[at["decay"].notna()]
        if at.empty:
            continue
        kept = at[(at["vanished"] == 0) & (at["exploded"] == 0)]
        if len(kept) > 1:
            flattest = kept.loc[kept["decay"].abs().idxmin()]
            steepest = kept.loc[kept["decay"].abs().idxmax()]
            out.append(
                f"Depth {depth}, among activations whose gradient kept its size within "
                f"{DECAY_LIMIT:g}x in every seed, by geometric mean over seeds "
                "(descriptive, untested): the smallest change across the hidden layers is "
                f"{flattest['activation']}'s ({decay_text(flattest)}), the largest "
                f"{steepest['activation']}'s ({decay_text(steepest)})."
            )
        for state, verb in (("vanished", "shrank"), ("exploded", "grew")):
            every = at[at[state] == at["n_seeds"]]["activation"].tolist()
            some = at[(at[state] > 0) & (at[state] < at["n_seeds"])]
            if every:
                out.append(
                    f"Depth {depth}: the gradient {state} ({verb} more than "
                    f"{DECAY_LIMIT:g}x across the hidden layers) in every seed for "
                    f"{', '.join(every)}."
                )
            if not some.empty:
                listed = ", ".join(
                    f"{r.activation} ({int(getattr(r, state))} of {int(r.n_seeds)})"
                    for r in some.itertuples()
                )
                out.append(f"Depth {depth}: the gradient {state} in some seeds only: {listed}.")
        collapsed = at[at["collapsed"] > 0]
        if not collapsed.empty:
            listed = ", ".join(
                f"{r.activation} ({int(r.collapsed)} of {int(r.n_seeds)})"
                for r in collapsed.itertuples()
            )
            out.append(
                f"Depth {depth}: every layer's gradient was below {cfg.vanish_threshold:g} "
                f"(collapsed: the forward signal died out at this initialisation) for {listed}."
            )
    return out


def decay_text(row) -> str:
    """The geometric-mean decay with its 95% interval when there is one."""
    text = f"last hidden / first hidden {fmt(10 ** row['decay'])}"
    if math.isfinite(row["decay_low"]):
        text += f", 95% interval {fmt(10 ** row['decay_low'])} to {fmt(10 ** row['decay_high'])}"
    return text


def panel(ax, summary, rctx: ReportContext, colours) -> None:
    """The summary sheet's panel: per-layer gradient at the report depth, with its band."""
    layers = main_layers(summary, rctx.config)
    depth = rctx.config.report_depth
    if depth not in set(layers["depth"]):
        depth = int(layers["depth"].max())
    at = layers[layers["depth"] == depth]
    for act in rctx.activations:
        rows = at[at["activation"] == act].sort_values("layer")
        if rows.empty:
            continue
        ax.plot(rows["layer"], 10 ** rows["mean"], color=colours[act], marker="o", ms=2)
        if rows["n"].max() > 1:
            ax.fill_between(
                rows["layer"],
                10 ** rows["ci_low"],
                10 ** rows["ci_high"],
                color=colours[act],
                alpha=0.15,
                linewidth=0,
            )
    from matplotlib.ticker import MaxNLocator

    ax.axhline(rctx.config.vanish_threshold, color="grey", ls=":", lw=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_yscale("log")
    ax.set_title(f"Gradient flow at depth {depth} (dotted: vanishing threshold)")
    ax.set_xlabel("layer")
    ax.set_ylabel("mean |dW| (geometric mean, 95% band)")


# -- claims ---------------------------------------------------------------------------------------
def smooth_relus_keep_gradient(summary, rctx: ReportContext) -> str | None:
    """ "Smooth ReLU variants keep gradients alive at least as well as ReLU": contradicted
    when, per seed, the smooth rectifiers' gradient changes more across the hidden layers
    (|log10 decay|, mean over them and the sweep's depths) than that of the rectifiers with
    a zero region, by a paired sign-flip test over seeds."""
    from actlab.activations import has_zero_region, is_smooth_rectifier
    from actlab.stats import paired_comparison, test_text
    from actlab.studies.base import init_words

    specs, trials = rctx.specs, summary["trials"]
    acts = [a for a in rctx.activations if a in specs]
    smooth = [a for a in acts if is_smooth_rectifier(specs[a])]
    kinked = [a for a in acts if has_zero_region(specs[a])]
    if not smooth or not kinked or trials.empty or trials["log10_decay"].isna().all():
        return None
    if "init" in trials:
        trials = trials[trials["init"] == rctx.config.main_init]
    trials = trials.assign(change=trials["log10_decay"].abs())
    per = trials.groupby(["seed", "activation"])["change"].mean().unstack("activation")
    diff = paired_comparison(
        per.reindex(columns=smooth).mean(axis=1), per.reindex(columns=kinked).mean(axis=1)
    )
    if not (diff.mean_diff > 0 and diff.significant):
        return None
    depths = sorted(trials[trials["log10_decay"].notna()]["depth"].unique())
    return (
        '*"Smooth ReLU variants keep gradients alive at least as well as ReLU."* Here the '
        f"gradient of {', '.join(smooth)} changed {fmt(10**diff.mean_diff)}x more across the "
        f"hidden layers than that of {', '.join(kinked)} (geometric mean over the depths "
        f"{', '.join(str(d) for d in depths)}, {init_words(rctx.config.main_init)}; "
        f"{test_text(diff)})."
    )


STUDY = GradientFlow()
