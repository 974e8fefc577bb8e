"""Protocol experiment 1: how gradients flow through an untrained deep network.

One forward pass of 32 Gaussian inputs, loss = mean output, one backward pass; per Linear
layer the mean |dW|. Magnitudes span many decades, so statistics over seeds are taken on
log10 values: the summary is a geometric mean with a 95% interval. A gradient of exactly
zero has no logarithm: it is floored at stats.LOG_FLOOR and counted, never dropped.

"Vanished" means one thing everywhere (tables, findings, claims, verdicts): every layer's
mean |dW| below `vanish_threshold`, judged per seed on the magnitudes themselves, whatever
the last/first ratio says.
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
    property_frame,
)

# A profile whose weakest layer is within this factor of the vanishing threshold is flagged
# as near vanishing, whatever its ratio band.
NEAR_VANISHING = 100.0

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


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    depths: list[int] = Field([5, 10, 20, 50], min_length=1)
    width: int = Field(64, ge=1, le=8192)
    in_dim: int = Field(1, ge=1, le=8192)
    n_samples: int = Field(32, ge=1, le=1_000_000)
    init: Literal[
        "xavier_uniform",
        "xavier_normal",
        "kaiming_uniform",
        "kaiming_normal",
        "lecun_normal",
        "orthogonal",
        "critical",
    ] = "xavier_uniform"
    sigma_b: float = Field(
        0.0, ge=0, le=10, description="bias standard deviation for init = 'critical'"
    )
    vanish_threshold: float = Field(
        1e-8,
        gt=0,
        description="a trial's gradients have vanished when every layer's mean |dW| is below this",
    )
    report_depth: int = Field(20, ge=1, description="depth of the report's ratio table")

    def model_post_init(self, _context: Any) -> None:
        bad = [d for d in self.depths if not 1 <= d <= 1000]
        if bad:
            raise ValueError(f"depths must be between 1 and 1000 (got {bad[0]})")


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
                    "init": config.init,
                },
            )
            for depth in config.depths
            for act in activations
            for seed in range(seeds)
        ]

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        import torch

        from actlab.engine import generator, layer_sizes

        cfg: Config = ctx.config
        p = trials[0].params
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
            "log10 of the weakest layer's mean weight gradient at initialisation, at each "
            "depth of the sweep",
            "higher",
            settings="depths",
            situation="gradients that must reach the first layers",
        ),
    )

    def properties(self, summary, rctx: ReportContext):
        """Per seed and depth: log10 of the weakest layer's mean |dW| (an exact zero floored
        and flagged); it is low both when the gradient decays towards the input and when it
        vanishes everywhere. Outcome "vanished" when every layer is below the threshold."""
        rows = [
            {
                "property": self.property_specs[0].name,
                "activation": r.activation,
                "seed": int(r.seed),
                "setting": f"depth={int(r.depth)}",
                "score": r.log10_min,
                "outcome": "vanished" if r.grad_vanished == 1 else "ok",
                "floored": bool(r.grad_min == 0),
            }
            for r in summary["trials"].itertuples()
        ]
        return property_frame(rows)

    def claims(self, summary, rctx: ReportContext) -> list[str]:
        claim = smooth_relus_keep_gradient(summary, rctx)
        return [claim] if claim else []

    def sheet_panels(self, summary, rctx: ReportContext, colours) -> list:
        return [lambda ax: panel(ax, summary, rctx, colours)]

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        figure = plot(summary["layers"], rctx.activations, figure_dir / "gradient_flow.png")
        return Section(self.title, report_markdown(summary, rctx, figure.name), [figure])


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


def reading(row, threshold: float) -> str:
    """The table's reading of one activation at one depth: the magnitude first (vanished
    in how many seeds, or near vanishing), then the ratio's band, which alone says nothing
    about gradients too small to train with."""
    vanished, n = int(row["vanished"]), int(row["n_seeds"])
    if vanished == n:
        return f"vanished in every seed (every layer below {threshold:g})"
    parts = []
    if vanished:
        parts.append(f"vanished in {vanished} of {n} seeds")
    weakest = 10 ** row["min_log10"] if math.isfinite(row["min_log10"]) else 0.0
    if not vanished and weakest < NEAR_VANISHING * threshold:
        parts.append(
            f"near vanishing: weakest layer {fmt(weakest)}, within {NEAR_VANISHING:g}x "
            f"of {threshold:g}"
        )
    parts.append(f"ratio: {band_reading(row)}")
    return "; ".join(parts)


def log10(value: float) -> float:
    return math.log10(value) if value > 0 else -math.inf


def honest_ratio(last: float, first: float) -> float:
    """last / first with no arbitrary floor: inf only when first is exactly zero."""
    if first == 0:
        return math.nan if last == 0 else math.inf
    return last / first


def summarize(results) -> dict[str, Any]:
    """Geometric means over seeds with 95% intervals, per layer (`layers`) and for the
    ratio (`ratio`, with the vanished count, the first and last layers' and the weakest
    layer's geometric means, and `zeros`: trials with an exactly zero layer); `trials`: one
    row per trial (grad_min, grad_max, grad_vanished, log10_min floored)."""
    import pandas as pd

    from actlab.stats import describe, log10_floored
    from actlab.studies.base import trial_table

    df = results[results["study"] == "gradient_flow"]
    layers = df[df["metric"] == "grad_mean_abs"].copy()
    layers["log10"], _ = log10_floored(layers["value"])
    layer_stats = describe(layers, ["activation", "depth", "layer"], value="log10")
    trials = trial_table(
        df,
        "gradient_flow",
        ["grad_min", "grad_max", "grad_vanished"],
        ["activation", "depth", "seed"],
    )
    trials["depth"] = trials["depth"].astype(int)
    trials["log10_min"], _ = log10_floored(trials["grad_min"])
    ratio = describe(df[df["metric"] == "grad_log10_ratio"], ["activation", "depth"])
    ratio["depth"] = ratio["depth"].astype(int)
    first_last = []
    for (act, depth), g in layers.groupby(["activation", "depth"], sort=False):
        top = g["layer"].max()
        own = trials[(trials["activation"] == act) & (trials["depth"] == depth)]
        first_last.append(
            {
                "activation": act,
                "depth": int(depth),
                "first_log10": g.loc[g["layer"] == 1, "log10"].mean(),
                "last_log10": g.loc[g["layer"] == top, "log10"].mean(),
                "min_log10": own["log10_min"].mean(),
                "vanished": int(own["grad_vanished"].sum()),
                "n_seeds": len(own),
                "zeros": int((own["grad_min"] == 0).sum()),
            }
        )
    table = ratio.merge(pd.DataFrame(first_last), on=["activation", "depth"])
    return {"layers": layer_stats, "ratio": table, "trials": trials}


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
    cfg: Config = rctx.config
    ratio = summary["ratio"]
    depth = (
        cfg.report_depth if cfg.report_depth in set(ratio["depth"]) else int(ratio["depth"].max())
    )
    at = ratio[ratio["depth"] == depth].set_index("activation")
    one_seed = rctx.seeds == 1
    lines = [
        "**Question.** Does the gradient reaching the first layers of a deep, untrained "
        "network keep its size, or does it shrink (vanish) or grow (explode) layer by layer?",
        "",
        f"**Method.** Networks of depth {', '.join(map(str, cfg.depths))}, width {cfg.width}, "
        f"{cfg.init.replace('_', ' ')} weights and zero biases; {cfg.n_samples} inputs from "
        f"N(0, 1); loss = mean output; one backward pass. For each Linear layer, the mean "
        f"absolute weight gradient. {rctx.seeds} seed(s) per setting; within a seed all "
        "activations share weights and inputs.",
        "",
        f"![Gradient magnitude per layer](figures/{figure_name})",
        "",
    ]
    if one_seed:
        lines += ["*One seed: these numbers are single samples and carry no error bar.*", ""]
    lines += [
        f"**Last / first layer gradient at depth {depth}** (geometric mean over seeds"
        + ("" if one_seed else ", with 95% interval")
        + "; the ratio is computed in log space, "
        "with no floor on the first layer):",
        "",
        "| activation | last / first | 95% interval | first layer mean abs dW | "
        "last layer mean abs dW | weakest layer | vanished (seeds) | reading |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for act in rctx.activations:
        if act not in at.index:
            continue
        r = at.loc[act]
        geo = 10 ** r["mean"] if math.isfinite(r["mean"]) else math.nan
        interval = (
            "–"
            if math.isnan(r["ci_low"])
            else f"{fmt(10 ** r['ci_low'])} – {fmt(10 ** r['ci_high'])}"
        )
        vanished = int(r["vanished"])
        zeros = f" ({int(r['zeros'])} exact zero(s), floored)" if r["zeros"] else ""
        lines.append(
            f"| {act} | {fmt(geo)} | {interval} | {fmt(10 ** r['first_log10'])} | "
            f"{fmt(10 ** r['last_log10'])} | {fmt(10 ** r['min_log10'])}{zeros} | "
            f"{vanished} of {int(r['n_seeds'])} | {reading(r, cfg.vanish_threshold)} |"
        )
    lines += [
        "",
        f"Vanished: every layer's mean |dW| below {cfg.vanish_threshold:g} in that seed; "
        f"near vanishing: the weakest layer's geometric mean within {NEAR_VANISHING:g}x of "
        "that threshold. The ratio's band (the protocol's reading) is given after the "
        "magnitude, because a flat profile of tiny gradients is not a healthy one.",
        "",
        "**What the data says.**",
        "",
    ]
    lines += [f"- {finding}" for finding in findings(ratio, rctx.activations, cfg)]
    return "\n".join(lines)


def findings(ratio, activations: list[str], cfg: Config) -> list[str]:
    """Sentences computed from the summary; nothing here is written in advance. Vanishing
    is judged on magnitudes (every layer below the threshold), per seed."""
    out = []
    for depth in sorted(ratio["depth"].unique()):
        at = ratio[(ratio["depth"] == depth) & ratio["activation"].isin(activations)]
        at = at[at["mean"].notna()]
        if at.empty:
            continue
        every = at[at["vanished"] == at["n_seeds"]]["activation"].tolist()
        some = at[(at["vanished"] > 0) & (at["vanished"] < at["n_seeds"])]
        alive = at[at["vanished"] == 0]
        if not alive.empty and len(alive) > 1:
            flattest = alive.loc[alive["mean"].abs().idxmin()]
            steepest = alive.loc[alive["mean"].idxmax()]
            out.append(
                f"Depth {depth}, among activations whose gradients vanished in no seed, by "
                "geometric mean over seeds (descriptive, untested): the flattest profile is "
                f"{flattest['activation']} (last/first {ratio_text(flattest)}), the steepest "
                f"decay {steepest['activation']} ({ratio_text(steepest)})."
            )
        if every:
            out.append(
                f"Depth {depth}: gradients vanished (every layer below "
                f"{cfg.vanish_threshold:g}) in every seed for {', '.join(every)}; their "
                "last/first ratio says nothing about trainability."
            )
        if not some.empty:
            listed = ", ".join(
                f"{r.activation} ({int(r.vanished)} of {int(r.n_seeds)})" for r in some.itertuples()
            )
            out.append(
                f"Depth {depth}: gradients vanished in some seeds only (every layer below "
                f"{cfg.vanish_threshold:g}): {listed}."
            )
    return out


def ratio_text(row) -> str:
    """The geometric-mean ratio with its 95% interval when there is one."""
    text = fmt(10 ** row["mean"])
    if math.isfinite(row["ci_low"]):
        text += f", 95% interval {fmt(10 ** row['ci_low'])} to {fmt(10 ** row['ci_high'])}"
    return text


def panel(ax, summary, rctx: ReportContext, colours) -> None:
    """The summary sheet's panel: per-layer gradient at the report depth, with its band."""
    layers = summary["layers"]
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
    when, per seed, the smooth rectifiers' weakest-layer gradient (log10, mean over them
    and the sweep's depths) is lower than the rectifiers' with a zero region, by a paired
    sign-flip test over seeds. The vanished counts, by magnitude, are stated beside it."""
    from actlab.activations import has_zero_region, is_smooth_rectifier
    from actlab.stats import paired_comparison, test_text

    specs, trials = rctx.specs, summary["trials"]
    acts = [a for a in rctx.activations if a in specs]
    smooth = [a for a in acts if is_smooth_rectifier(specs[a])]
    kinked = [a for a in acts if has_zero_region(specs[a])]
    if not smooth or not kinked or trials.empty:
        return None
    per = trials.groupby(["seed", "activation"])["log10_min"].mean().unstack("activation")
    diff = paired_comparison(
        per.reindex(columns=smooth).mean(axis=1), per.reindex(columns=kinked).mean(axis=1)
    )
    if not (diff.mean_diff < 0 and diff.significant):
        return None
    counts = []
    deepest = int(trials["depth"].max())
    at = trials[trials["depth"] == deepest]
    for a in smooth + kinked:
        own = at[at["activation"] == a]
        counts.append(f"{a} {int(own['grad_vanished'].sum())} of {len(own)}")
    return (
        '*"Smooth ReLU variants keep gradients alive at least as well as ReLU."* Here the '
        f"weakest layer's gradient of {', '.join(smooth)} was {fmt(10**-diff.mean_diff)}x "
        f"smaller than that of {', '.join(kinked)} (geometric mean over the depths "
        f"{', '.join(str(d) for d in sorted(trials['depth'].unique()))}; {test_text(diff)}). "
        f"Seeds in which every layer fell below {rctx.config.vanish_threshold:g} at depth "
        f"{deepest}: {', '.join(counts)}."
    )


STUDY = GradientFlow()
