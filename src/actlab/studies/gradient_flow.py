"""Protocol experiment 1: how gradients flow through an untrained deep network.

One forward pass of 32 Gaussian inputs, loss = mean output, one backward pass; per Linear
layer the mean |dW|. Magnitudes span many decades, so statistics over seeds are taken on
log10 values: the summary is a geometric mean with a 95% interval.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from actlab.studies.base import (
    ReportContext,
    RunContext,
    Section,
    Study,
    Trial,
    build_stack,
)

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

    def properties(self, results, rctx: ReportContext):
        """Per seed, log10 of the weakest layer's mean |dW| at the report depth: it is low
        both when the gradient decays towards the input and when it vanishes everywhere."""
        import numpy as np
        import pandas as pd

        df = results[(results["study"] == self.name) & (results["metric"] == "grad_min")]
        depth = rctx.config.report_depth
        if depth not in set(df["depth"]):
            depth = int(df["depth"].max())
        at = df[df["depth"] == depth]
        return pd.DataFrame(
            {
                "property": "gradient flow",
                "activation": at["activation"],
                "seed": at["seed"],
                "score": np.log10(at["value"].where(at["value"] > 0)),
                "better": "higher",
            }
        )

    def report(self, results, figure_dir: Path, rctx: ReportContext) -> Section:
        summary = summarize(results)
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


def log10(value: float) -> float:
    return math.log10(value) if value > 0 else -math.inf


def honest_ratio(last: float, first: float) -> float:
    """last / first with no arbitrary floor: inf only when first is exactly zero."""
    if first == 0:
        return math.nan if last == 0 else math.inf
    return last / first


def summarize(results) -> dict[str, Any]:
    """Geometric means over seeds with 95% intervals, per layer and for the ratio."""
    import numpy as np
    import pandas as pd

    from actlab.stats import describe

    df = results[results["study"] == "gradient_flow"]
    layers = df[df["metric"] == "grad_mean_abs"].copy()
    layers["log10"] = np.log10(layers["value"].where(layers["value"] > 0))
    layer_stats = describe(layers, ["activation", "depth", "layer"], value="log10")
    ratio = describe(df[df["metric"] == "grad_log10_ratio"], ["activation", "depth"])
    first_last = []
    for (act, depth), g in layers.groupby(["activation", "depth"], sort=False):
        top = g["layer"].max()
        first_last.append(
            {
                "activation": act,
                "depth": depth,
                "first_log10": g.loc[g["layer"] == 1, "log10"].mean(),
                "last_log10": g.loc[g["layer"] == top, "log10"].mean(),
            }
        )
    vanished = (
        df[df["metric"] == "grad_vanished"]
        .groupby(["activation", "depth"], sort=False)["value"]
        .agg(vanished="sum", n_seeds="count")
        .reset_index()
    )
    table = ratio.merge(vanished, on=["activation", "depth"]).merge(
        pd.DataFrame(first_last), on=["activation", "depth"]
    )
    return {"layers": layer_stats, "ratio": table}


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


def fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "0"
    return f"{value:.3g}"


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
        "last layer mean abs dW | vanished (seeds) | reading |",
        "|---|---|---|---|---|---|---|",
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
        reading = "vanished" if vanished == r["n_seeds"] else band_reading(r)
        lines.append(
            f"| {act} | {fmt(geo)} | {interval} | {fmt(10 ** r['first_log10'])} | "
            f"{fmt(10 ** r['last_log10'])} | {vanished} of {int(r['n_seeds'])} | {reading} |"
        )
    lines += ["", "**What the data says.**", ""]
    lines += [f"- {finding}" for finding in findings(ratio, rctx.activations, cfg)]
    return "\n".join(lines)


def findings(ratio, activations: list[str], cfg: Config) -> list[str]:
    """Sentences computed from the summary; nothing here is written in advance."""
    out = []
    for depth in sorted(ratio["depth"].unique()):
        at = ratio[(ratio["depth"] == depth) & ratio["mean"].notna()]
        if at.empty:
            continue
        vanished = at[at["vanished"] == at["n_seeds"]]["activation"].tolist()
        alive = at[~at["activation"].isin(vanished)]
        if not alive.empty:
            flattest = alive.loc[alive["mean"].abs().idxmin()]
            steepest = alive.loc[alive["mean"].idxmax()]
            out.append(
                f"Depth {depth}: by geometric mean, the flattest profile is "
                f"{flattest['activation']} (last/first {fmt(10 ** flattest['mean'])}), the "
                f"steepest decay {steepest['activation']} ({fmt(10 ** steepest['mean'])}); "
                "the table's intervals say how firmly."
            )
        if vanished:
            out.append(
                f"Depth {depth}: gradients vanished (every layer below "
                f"{cfg.vanish_threshold:g}) for {', '.join(vanished)} in every seed; their "
                "last/first ratio says nothing about trainability."
            )
    return out


STUDY = GradientFlow()
