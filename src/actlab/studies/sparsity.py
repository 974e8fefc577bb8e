"""Protocol experiment 2: sparsity, dead units and saturated units after training.

Each network (depth 10, width 128, in_dim 10 by default) is trained full-batch with SGD
at a deliberately high learning rate on y = sin(sum of x) + noise, then one forward pass
over the training inputs records every hidden layer's pre- and post-activations.

Metrics per trial (rows carry `layer`, 1 = input side, for the per-layer values; the
layer mean has no `layer`):
  sparsity        fraction of post-activation values with |a| < zero_threshold (the
                  protocol metric: exact zeros only)
  dead_rate       fraction of units with |a| <= zero_threshold for every sample (protocol)
  saturated_rate  fraction of units whose slope |f'(z)| < saturation_threshold for every
                  sample: units through which no gradient flows, whether dead at zero (ReLU)
                  or stuck on a flat non-zero plateau (Sigmoid at 1, Tanh at +-1). This is
                  the question the protocol's metrics were meant to answer.
  zero_slope_rate fraction of units whose slope f'(z) is exactly 0 for every sample: dead
                  in the one sense that applies to every activation (no gradient passes
                  at all). Only an activation with a region of zero slope (ReLU, ReLU6,
                  Hardtanh, ...) can have such units; for the others it is 0 by construction
                  and they are not ranked on it
  <metric>_init   dead_rate, saturated_rate and zero_slope_rate of the same network at its
                  initial weights, before any update: what training did is the difference
  learned, stuck, failed   1 for the state the run ended in (outcomes.py), from the loss
                  after training against the target's variance: units counted on a network
                  that learned nothing say little about training
  act_mean, act_std   mean and (population) std of the finite post-activations pooled
                  over all hidden layers
  hist_count      histogram counts of those pooled values clipped to [-clip, clip]
                  (non-finite values dropped), one row per bin with `step` = bin index
                  0..bins-1; bin edges are numpy.linspace(-clip, clip, bins + 1). Counts,
                  not densities, so seeds can be summed.
  diverged        1 when training diverged (loss rule: NaN, inf or > 1e6), else 0
  final_loss      MSE of the final parameters (the loss after the last update)
  steps_completed updates applied before training stopped
  target_var      variance of the trial's targets: the loss of the best constant output

A diverged trial gets NaN for every measurement of its network (everything above except
`diverged`, `steps_completed` and `target_var`): it is reported as diverged, never as
dead. The original counted NaN activations as dead (NaN fails every threshold test) and
so reported a diverged Linear network as 100% dead. Besides the protocol's per-step loss
rule, a network whose loss after the last update breaks the same rule counts as diverged.

The data (x ~ N(0, I), targets) and the initial weights are keyed by seed, not by
activation: within a seed every activation sees the same data and starting weights.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from actlab.report.text import fmt, pct
from actlab.studies.base import (
    PropertySpec,
    ReportContext,
    RunContext,
    Section,
    Study,
    Trial,
    build_stack,
    learned_rows,
    property_frame,
    trial_table,
)
from actlab.studies.outcomes import FINITE_STATES

LAYER_METRICS = ("sparsity", "dead_rate", "saturated_rate", "zero_slope_rate")
# Measured on the initial weights too (`<metric>_init`).
INIT_METRICS = ("dead_rate", "saturated_rate", "zero_slope_rate")
NETWORK_METRICS = (
    *LAYER_METRICS,
    *(f"{m}_init" for m in INIT_METRICS),
    "act_mean",
    "act_std",
    "final_loss",
)
LABELS = {
    "sparsity": "sparsity",
    "dead_rate": "dead units",
    "saturated_rate": "saturated units",
    "zero_slope_rate": "units with zero slope on every input",
}


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    depth: int = Field(10, ge=1, le=1000)
    width: int = Field(128, ge=1, le=8192)
    in_dim: int = Field(10, ge=1, le=8192)
    n_samples: int = Field(1000, ge=1, le=1_000_000)
    noise: float = Field(0.1, ge=0, description="std of the Gaussian noise added to the target")
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.1, gt=0, le=1e6, description="learning rate (high on purpose)")
    steps: int = Field(100, ge=1, le=1_000_000)
    zero_threshold: float = Field(
        1e-6, ge=0, description="|a| below this is an exact zero (protocol: 1e-6)"
    )
    saturation_threshold: float = Field(
        1e-3,
        gt=0,
        description="a unit is saturated when |f'(z)| is below this for every sample "
        "(1e-3: Sigmoid beyond |z| ~ 6.9, Tanh beyond |z| ~ 3.8, ELU below z ~ -6.9; "
        "LeakyReLU's slope 0.01 never counts)",
    )
    init: Literal["xavier_uniform", "practice"] = Field(
        "xavier_uniform",
        description="initial weights: the protocol's Xavier uniform for every activation, or "
        "each activation's customary one ('practice': He, LeCun or Xavier)",
    )
    learned_below: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="a run learned when its loss after training is below this fraction of "
        "the target's variance",
    )
    bins: int = Field(100, ge=1, le=100_000, description="histogram bins")
    clip: float = Field(5.0, gt=0, description="histogram range [-clip, clip]")


class Sparsity(Study):
    name = "sparsity"
    learnable_activations = "trained"
    title = "Sparsity and dead units"
    Config = Config
    param_columns = ("depth", "width", "in_dim", "lr", "optimizer", "steps")

    def columns(self, config: Config) -> tuple[str, ...]:
        return (
            (*self.param_columns, "init") if config.init != "xavier_uniform" else self.param_columns
        )

    def trials(self, config: Config, activations: list[str], seeds: int) -> list[Trial]:
        params = {
            "depth": config.depth,
            "width": config.width,
            "in_dim": config.in_dim,
            "lr": config.lr,
            "optimizer": config.optimizer,
            "steps": config.steps,
        }
        if config.init != "xavier_uniform":  # the protocol's trial keys stay as they were
            params["init"] = config.init
        return [
            Trial(self.name, act, seed, dict(params))
            for act in activations
            for seed in range(seeds)
        ]

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        import torch

        from actlab.engine import DivergenceRule, layer_sizes, make_optimizer, train_regression
        from actlab.studies.outcomes import classify

        cfg: Config = ctx.config
        p = trials[0].params
        sizes = layer_sizes(p["in_dim"], p["width"], p["depth"])
        model = build_stack(trials, ctx, sizes, p.get("init", "xavier_uniform"))
        data = [make_data(ctx, cfg, p["in_dim"], t.seed) for t in trials]
        x = torch.stack([d[0] for d in data]).to(ctx.device)
        y = torch.stack([d[1] for d in data]).to(ctx.device)
        at_init, _ = unit_measures(model, x, trials, ctx, cfg)
        rule = DivergenceRule()
        result = train_regression(
            model, x, y, make_optimizer(p["optimizer"], model, p["lr"]), p["steps"], rule
        )
        per_layer, posts = unit_measures(model, x, trials, ctx, cfg)
        pooled = pooled_stats(posts, cfg.bins, cfg.clip)
        out = []
        for m in range(len(trials)):
            loss = float(result.loss_after[m])
            diverged = bool(result.diverged[m]) or not loss <= rule.loss_limit
            variance = float(data[m][1].double().var(correction=0))
            out.append(
                trial_rows(
                    {k: v[m].tolist() for k, v in per_layer.items()},
                    {k: v[m].tolist() for k, v in at_init.items() if k in INIT_METRICS},
                    act_mean=pooled["mean"][m],
                    act_std=pooled["std"][m],
                    hist=pooled["hist"][m].tolist(),
                    diverged=diverged,
                    final_loss=loss,
                    steps_completed=int(result.steps_completed[m]),
                    target_var=variance,
                    state=classify(diverged, loss, variance, cfg.learned_below),
                )
                + learned_rows(model, m, diverged)
            )
        return out

    def summarize(self, results):
        return summarize(results)

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        bars = plot_bars(summary["table"], rctx.activations, figure_dir / "sparsity.png")
        hists = plot_histograms(summary["histograms"], rctx, figure_dir / "sparsity_histograms.png")
        markdown = report_markdown(summary, rctx, bars.name, hists.name)
        return Section(self.title, markdown, [bars, hists])

    property_specs = (
        PropertySpec(
            "dead units",
            "fraction of units whose slope is exactly 0 on every training input, after "
            "training; ranked among the activations that have a region of zero slope (the "
            "others cannot have such a unit)",
            "lower",
            situation="no dead units",
        ),
        PropertySpec(
            "saturated units",
            "fraction of units whose slope is below the saturation threshold but not 0 on "
            "every training input, after training (dead units kept apart)",
            "lower",
            situation="no saturated units",
        ),
    )

    def conditions(self, config: Config) -> dict[str, str]:
        from actlab.studies.base import init_words

        words = (
            f"{config.optimizer.upper()} at lr {config.lr:g} for {config.steps} steps, depth "
            f"{config.depth}, width {config.width}, {init_words(config.init)}; y = sin(sum "
            f"of x) + noise on {config.n_samples} samples; units counted after training"
        )
        return {spec.name: words for spec in self.property_specs}

    def properties(self, summary, rctx: ReportContext):
        """Per seed: the layer mean of the dead (zero slope on every input) and saturated
        (slope below the threshold, not zero) rates after training, with the run's state as
        outcome. An activation without a region of zero slope has no dead-unit score
        (outcome "cannot die"). A diverged network has no units to count: its score is
        missing and its outcome "diverged" (ranked last). Runs stored before the zero-slope
        rate existed are scored on the protocol's dead rate."""
        from actlab.activations import has_zero_slope_region

        trials = summary["trials"]
        modern = "zero_slope_rate" in trials and trials["zero_slope_rate"].notna().any()
        rows = []
        for r in trials.itertuples():
            outcome = "diverged" if r.diverged == 1 else getattr(r, "state", "")
            spec = rctx.specs.get(r.activation)
            can_die = spec is None or not modern or has_zero_slope_region(spec)
            dead = r.zero_slope_rate if modern else r.dead_rate
            flat = r.saturated_rate - r.zero_slope_rate if modern else r.saturated_rate
            rows.append(
                {
                    "property": "dead units",
                    "activation": r.activation,
                    "seed": int(r.seed),
                    "score": float(dead) if can_die else math.nan,
                    "outcome": outcome if can_die else "cannot die",
                }
            )
            rows.append(
                {
                    "property": "saturated units",
                    "activation": r.activation,
                    "seed": int(r.seed),
                    "score": float(flat),
                    "outcome": outcome,
                }
            )
        return property_frame(rows)

    def claims(self, summary, rctx: ReportContext) -> list[str]:
        claim = rectifiers_die_most(summary, rctx)
        return [claim] if claim else []

    def sheet_panels(self, summary, rctx: ReportContext, colours) -> list:
        table = summary["table"]
        names = [a for a in rctx.activations if a in set(table["activation"])]
        return [
            lambda ax, metric=metric: bar_panel(ax, table, names, metric, colours)
            for metric in ("sparsity", "dead_rate")
        ]


# -- data and measurements ---------------------------------------------------------------------


def make_data(ctx: RunContext, cfg: Config, in_dim: int, seed: int):
    """x ~ N(0, I) [n, in_dim], y = sin(sum of x) + noise * N(0, 1) [n, 1]; keyed by seed only."""
    import torch

    from actlab.engine import generator

    gen = generator(ctx.run_seed, "sparsity/data", cfg.n_samples, in_dim, seed)
    x = torch.randn(cfg.n_samples, in_dim, dtype=ctx.torch_dtype, generator=gen)
    eps = torch.randn(cfg.n_samples, 1, dtype=ctx.torch_dtype, generator=gen)
    y = torch.sin(x.sum(dim=1, keepdim=True)) + cfg.noise * eps
    return x, y


def unit_measures(model, x, trials: list[Trial], ctx: RunContext, cfg: Config):
    """(per metric a `[M, depth]` array, each hidden layer's post-activations) of one
    forward pass over x with the stack's current weights."""
    import torch

    from actlab.engine.stack import Captured

    capture = Captured()
    with torch.no_grad():
        model.forward(x, capture)
    # Slopes per member (each with its own activation), one layer at a time: a generator,
    # so only one layer's derivatives are held at once. A learnable activation's slope is
    # its learned function's, layer by layer.
    derivs = (
        torch.cat(
            [
                model.learned_derivative(z[m : m + 1], layer, m)
                if model.learnable
                else ctx.activations[trials[m].activation].derivative(z[m : m + 1])
                for m in range(len(trials))
            ]
        )
        for layer, z in enumerate(capture.pre)
    )
    return layer_metrics(
        capture.post, derivs, cfg.zero_threshold, cfg.saturation_threshold
    ), capture.post


def sparsity(post, zero_threshold: float = 1e-6):
    """Fraction of values with |a| < threshold, per member: `[M, n, width]` -> `[M]` (float64)."""
    zeros = (post.abs() < zero_threshold).flatten(1).sum(dim=1)
    return zeros.double() / post[0].numel()


def dead_rate(post, zero_threshold: float = 1e-6):
    """Fraction of units with |a| <= threshold for every sample: `[M, n, width]` -> `[M]`."""
    dead = (post.abs() <= zero_threshold).all(dim=1).sum(dim=1)
    return dead.double() / post.shape[2]


def saturated_rate(deriv, saturation_threshold: float = 1e-3):
    """Fraction of units with |f'(z)| < threshold for every sample: `[M, n, width]` -> `[M]`."""
    flat = (deriv.abs() < saturation_threshold).all(dim=1).sum(dim=1)
    return flat.double() / deriv.shape[2]


def zero_slope_rate(deriv):
    """Fraction of units with f'(z) exactly 0 for every sample: `[M, n, width]` -> `[M]`."""
    flat = (deriv == 0).all(dim=1).sum(dim=1)
    return flat.double() / deriv.shape[2]


def layer_metrics(posts, derivs, zero_threshold: float, saturation_threshold: float):
    """Per metric, a `[M, depth]` float64 numpy array (layer 1 = input side), from each
    layer's post-activations and slopes f'(z) (`derivs` may be any iterable)."""
    import torch

    saturated, zero_slope = [], []
    for d in derivs:
        saturated.append(saturated_rate(d, saturation_threshold))
        zero_slope.append(zero_slope_rate(d))
    return {
        "sparsity": torch.stack([sparsity(a, zero_threshold) for a in posts], 1).cpu().numpy(),
        "dead_rate": torch.stack([dead_rate(a, zero_threshold) for a in posts], 1).cpu().numpy(),
        "saturated_rate": torch.stack(saturated, 1).cpu().numpy(),
        "zero_slope_rate": torch.stack(zero_slope, 1).cpu().numpy(),
    }


def pooled_stats(posts, bins: int, clip: float) -> dict[str, list]:
    """Per member, over all hidden layers' finite post-activations: mean, std (ddof 0),
    and the histogram counts of the values clipped to [-clip, clip]."""
    import torch

    means, stds, hists = [], [], []
    for m in range(posts[0].shape[0]):
        values = torch.cat([a[m].flatten() for a in posts]).double()
        values = values[torch.isfinite(values)]
        if values.numel() == 0:
            means.append(math.nan)
            stds.append(math.nan)
            hists.append(torch.zeros(bins, dtype=torch.float64))
            continue
        means.append(float(values.mean()))
        stds.append(float(values.std(correction=0)))
        hists.append(torch.histc(values.clamp(-clip, clip), bins=bins, min=-clip, max=clip).cpu())
    return {"mean": means, "std": stds, "hist": hists}


def trial_rows(
    per_layer: dict[str, list[float]],
    at_init: dict[str, list[float]],
    *,
    act_mean: float,
    act_std: float,
    hist: list[float],
    diverged: bool,
    final_loss: float,
    steps_completed: int,
    target_var: float,
    state: str,
) -> list[dict[str, Any]]:
    """One trial's rows. A diverged trial's network measurements after training are all NaN;
    those at initialisation stand."""

    def value(v: float) -> float:
        return math.nan if diverged else float(v)

    rows: list[dict[str, Any]] = []
    for metric in LAYER_METRICS:
        values = per_layer[metric]
        rows += [
            {"metric": metric, "layer": i + 1, "value": value(v)} for i, v in enumerate(values)
        ]
        rows.append({"metric": metric, "value": value(sum(values) / len(values))})
    for metric, values in at_init.items():
        name = f"{metric}_init"
        rows += [{"metric": name, "layer": i + 1, "value": float(v)} for i, v in enumerate(values)]
        rows.append({"metric": name, "value": float(sum(values) / len(values))})
    rows += [
        {"metric": "act_mean", "value": value(act_mean)},
        {"metric": "act_std", "value": value(act_std)},
        {"metric": "diverged", "value": float(diverged)},
        {"metric": "final_loss", "value": value(final_loss)},
        {"metric": "steps_completed", "value": float(steps_completed)},
        {"metric": "target_var", "value": float(target_var)},
    ]
    rows += [{"metric": s, "value": float(state == s)} for s in FINITE_STATES]
    rows += [{"metric": "hist_count", "step": b, "value": value(c)} for b, c in enumerate(hist)]
    return rows


# -- statistics ----------------------------------------------------------------------------------


def summarize(results) -> dict[str, Any]:
    """Mean and 95% interval over the seeds that did not diverge; diverged seeds counted apart.
    Intervals of the layer means are clipped to their feasible range ([0, 1] for rates).

    Returns `table` (one row per activation: `<metric>_mean/_low/_high/_n` for the layer
    means, `diverged`, `n_seeds`, `max_steps_diverged`, `target_var`), `layers` (per
    activation, metric and layer), and `histograms` (per activation: summed counts over
    non-diverged seeds, or None when every seed diverged; pooled mean and std).
    """
    import numpy as np
    import pandas as pd

    from actlab.stats import describe

    df = results[results["study"] == "sparsity"]
    order = list(dict.fromkeys(df["activation"]))
    per_layer = df[df["metric"].isin(LAYER_METRICS) & df["layer"].notna()]
    layers = describe(per_layer, ["activation", "metric", "layer"])
    means = describe(
        df[df["metric"].isin(NETWORK_METRICS) & df["layer"].isna()], ["activation", "metric"]
    )

    rows = []
    for act in order:
        a = df[df["activation"] == act]
        div = a[a["metric"] == "diverged"]
        steps = a[a["metric"] == "steps_completed"].set_index("seed")["value"]
        diverged_seeds = div[div["value"] == 1]["seed"]
        row: dict[str, Any] = {
            "activation": act,
            "n_seeds": len(div),
            "diverged": int((div["value"] == 1).sum()),
            "max_steps_diverged": (
                float(steps.reindex(diverged_seeds).max()) if len(diverged_seeds) else math.nan
            ),
            "target_var": float(a[a["metric"] == "target_var"]["value"].mean()),
        }
        m = means[means["activation"] == act].set_index("metric")
        for metric in NETWORK_METRICS:
            r = m.loc[metric] if metric in m.index else None
            row[f"{metric}_mean"] = math.nan if r is None else float(r["mean"])
            low = math.nan if r is None else float(r["ci_low"])
            high = math.nan if r is None else float(r["ci_high"])
            # A t interval can leave the feasible range: clip rates to [0, 1], std and loss at 0.
            if metric != "act_mean" and math.isfinite(low):
                low = max(low, 0.0)
            row[f"{metric}_low"] = low
            if metric in LAYER_METRICS and math.isfinite(high):
                high = min(high, 1.0)
            row[f"{metric}_high"] = high
            row[f"{metric}_n"] = 0 if r is None else int(r["n"])
        rows.append(row)
    table = pd.DataFrame(rows)

    hist_rows = df[df["metric"] == "hist_count"]
    histograms = {}
    for act in order:
        h = hist_rows[hist_rows["activation"] == act]
        counts = (
            h.groupby("step")["value"].sum(min_count=1).sort_index().to_numpy(dtype=float)
            if not h.empty
            else np.array([])
        )
        stats = df[(df["activation"] == act) & df["metric"].isin(["act_mean", "act_std"])]
        wide = stats.pivot_table(index="seed", columns="metric", values="value").dropna()
        if wide.empty or counts.size == 0 or not np.isfinite(counts).all():
            histograms[act] = {"counts": None, "mean": math.nan, "std": math.nan}
            continue
        # Pooled over seeds (equal sample sizes): total mean, and std by total variance.
        mean = float(wide["act_mean"].mean())
        var = float((wide["act_std"] ** 2 + wide["act_mean"] ** 2).mean() - mean**2)
        histograms[act] = {"counts": counts, "mean": mean, "std": math.sqrt(max(var, 0.0))}
    trials = trial_table(
        df,
        "sparsity",
        [
            "dead_rate",
            "saturated_rate",
            "zero_slope_rate",
            *(f"{m}_init" for m in INIT_METRICS),
            "final_loss",
            "diverged",
            *FINITE_STATES,
        ],
        ["activation", "seed"],
    )
    trials["state"] = [state_of(r) for _, r in trials.iterrows()]
    table["learned"] = [
        int((trials[trials["activation"] == a]["state"] == "learned").sum())
        for a in table["activation"]
    ]
    return {"table": table, "layers": layers, "histograms": histograms, "trials": trials}


def state_of(row) -> str:
    """The state a trial ended in ("" for runs stored before states were recorded)."""
    if row["diverged"] == 1:
        return "diverged"
    for state in FINITE_STATES:
        if row[state] == 1:
            return state
    return ""


# -- figures -------------------------------------------------------------------------------------


TITLES = {
    "sparsity": "Exact zeros (|a| < threshold), % of values",
    "dead_rate": "Dead units (zero for every input), %",
    "saturated_rate": "Saturated units (|f'| ~ 0 for every input), %",
}


def bar_panel(ax, table, names: list[str], metric: str, colours) -> None:
    """One metric's bars (mean over layers and non-diverged seeds) with 95% error bars; a
    hatched bar for an activation that diverged in every seed, and "k/n diverged" over one
    that diverged in some."""
    t = table.set_index("activation").loc[names]
    mean = 100 * t[f"{metric}_mean"]
    high = 100 * t[f"{metric}_high"]
    top = max(5.0, float(max(mean.max(skipna=True), high.max(skipna=True), 0) or 0) * 1.2)
    top = min(top, 105.0) if math.isfinite(top) else 105.0
    for i, act in enumerate(names):
        r = t.loc[act]
        if r[f"{metric}_n"] == 0:  # every seed diverged: no value to draw
            ax.bar(
                i, top, color="none", edgecolor="0.6", hatch="///", linestyle="--", linewidth=0.8
            )
            ax.text(i, top / 2, "diverged", rotation=90, ha="center", va="center", fontsize=9)
            continue
        yerr = None
        if math.isfinite(r[f"{metric}_low"]):
            low = 100 * r[f"{metric}_low"]
            yerr = [[max(mean[act] - low, 0)], [max(high[act] - mean[act], 0)]]
        ax.bar(i, mean[act], color=colours[act], yerr=yerr, capsize=3)
        if r["diverged"]:
            ax.text(
                i,
                mean[act] + top * 0.02,
                f"{int(r['diverged'])}/{int(r['n_seeds'])}\ndiverged",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set_ylim(0, top)
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
    ax.set_title(TITLES[metric], fontsize=10)
    ax.set_ylabel("% (mean over layers)")
    ax.grid(True, axis="y", alpha=0.3)


def plot_bars(table, activations: list[str], path: Path) -> Path:
    from actlab.report.figures import activation_colours, pyplot, save

    plt = pyplot()
    colours = activation_colours(activations)
    names = [a for a in activations if a in set(table["activation"])]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for ax, metric in zip(axes, ("sparsity", "dead_rate", "saturated_rate"), strict=True):
        bar_panel(ax, table, names, metric, colours)
    many = (table["n_seeds"] > 1).any()
    bars = "error bars: 95% interval" if many else "one seed: no error bars"
    fig.suptitle(f"After training: mean over layers and non-diverged seeds ({bars})")
    fig.tight_layout()
    return save(fig, path)


def plot_histograms(histograms: dict[str, Any], rctx: ReportContext, path: Path) -> Path:
    import numpy as np

    from actlab.report.figures import activation_colours, pyplot, save

    cfg: Config = rctx.config
    plt = pyplot()
    colours = activation_colours(rctx.activations)
    names = [a for a in rctx.activations if a in histograms]
    cols = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    for ax, act in zip(axes.flat, names, strict=False):
        h = histograms[act]
        ax.set_title(act)
        if h["counts"] is None:
            ax.text(
                0.5,
                0.5,
                "diverged\n(every seed)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=11,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        counts = h["counts"]
        edges = np.linspace(-cfg.clip, cfg.clip, len(counts) + 1)
        total = counts.sum()
        density = counts / (total * np.diff(edges)) if total > 0 else counts
        ax.stairs(density, edges, fill=True, color=colours[act], alpha=0.8)
        ax.set_xlim(-cfg.clip, cfg.clip)
        ax.text(
            0.97,
            0.95,
            f"mean {h['mean']:.3f}\nstd {h['std']:.3f}",
            ha="right",
            va="top",
            transform=ax.transAxes,
            fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"},
        )
        ax.set_xlabel("post-activation value")
        ax.set_ylabel("density")
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"Post-activation values, all hidden layers pooled, clipped to [-{cfg.clip:g}, "
        f"{cfg.clip:g}] (seeds that diverged left out)"
    )
    fig.tight_layout()
    return save(fig, path)


# -- markdown ------------------------------------------------------------------------------------


def cell(r, metric: str, form, with_interval: bool) -> str:
    if r[f"{metric}_n"] == 0:
        return "diverged"
    text = form(r[f"{metric}_mean"])
    if with_interval and math.isfinite(r[f"{metric}_low"]):
        text += f" [{form(r[f'{metric}_low'])}, {form(r[f'{metric}_high'])}]"
    return text


def report_markdown(summary: dict[str, Any], rctx: ReportContext, bars: str, hists: str) -> str:
    from actlab.studies.base import init_words

    cfg: Config = rctx.config
    table = summary["table"].set_index("activation")
    names = [a for a in rctx.activations if a in table.index]
    many = rctx.seeds > 1
    lines = [
        "**Question.** After training at a high learning rate, how many hidden units output "
        "exactly zero (sparse), how many are zero for every input (dead), and how many have "
        "lost their slope for every input (saturated: no gradient passes them, whatever their "
        "output)?",
        "",
        f"**Method.** Networks of depth {cfg.depth}, width {cfg.width}, {init_words(cfg.init)}"
        f" and zero biases, trained full-batch on {cfg.n_samples} samples x ~ N(0, I_{cfg.in_dim}), "
        f"y = sin(sum of x) + {cfg.noise:g} N(0, 1), MSE loss, {cfg.optimizer.upper()} at "
        f"learning rate {cfg.lr:g} for {cfg.steps} steps. A run whose loss becomes NaN, infinite "
        "or above 1e6 (during training or after the last update) is marked diverged and left "
        "out of every statistic below. After training, one forward pass over the training "
        f"inputs; per hidden layer: sparsity = fraction of values with |a| < "
        f"{cfg.zero_threshold:g}; dead = a unit with |a| <= {cfg.zero_threshold:g} for every "
        f"sample; saturated = a unit with |f'(z)| < {cfg.saturation_threshold:g} for every "
        "sample (dead ReLU units are saturated too: their slope is 0); zero slope = a unit "
        "whose slope f'(z) is exactly 0 for every sample, dead in the one sense that applies "
        "to every activation. The same counts are taken on the initial weights, before any "
        f"update, so that what training did shows. A run learned when its loss after training "
        f"is below {cfg.learned_below:g} x the target's variance. Values are means over "
        f"the {cfg.depth} layers. {rctx.seeds} seed(s); within a seed every activation starts "
        "from the same random numbers and sees the same data.",
        "",
        f"![Sparsity, dead and saturated units](figures/{bars})",
        "",
        f"![Distribution of post-activation values](figures/{hists})",
        "",
        "The histogram panels are annotated with the mean and standard deviation of the "
        "unclipped finite values.",
        "",
    ]
    if not many:
        lines += ["*One seed: these numbers are single samples and carry no error bar.*", ""]
    lines += [
        "**Results** (% of values or units, mean over layers"
        + (
            " and non-diverged seeds, with 95% interval clipped to the feasible range"
            if many
            else ""
        )
        + "; final loss is the MSE after the last update):",
        "",
        "| activation | sparsity % | dead % | saturated % | zero slope % at init | "
        "zero slope % after | learned seeds | diverged seeds | final loss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for act in names:
        r = table.loc[act]
        lines.append(
            f"| {act} | {cell(r, 'sparsity', pct, many)} | {cell(r, 'dead_rate', pct, many)} | "
            f"{cell(r, 'saturated_rate', pct, many)} | "
            f"{cell(r, 'zero_slope_rate_init', pct, many)} | "
            f"{cell(r, 'zero_slope_rate', pct, many)} | {int(r.get('learned', 0))} of "
            f"{int(r['n_seeds'])} | {int(r['diverged'])} of "
            f"{int(r['n_seeds'])} | {cell(r, 'final_loss', fmt, many)} |"
        )
    lines += ["", *per_layer_tables(summary["layers"], names, cfg.depth)]
    lines += ["", "**What the data says.**", ""]
    lines += [f"- {f}" for f in findings(summary, names, cfg)]
    lines += [f"- {f}" for f in training_findings(summary, names, rctx)]
    return "\n".join(lines)


def per_layer_tables(layers, names: list[str], depth: int) -> list[str]:
    lines = ["<details><summary>Per-layer values (%, mean over non-diverged seeds)</summary>", ""]
    layer_ids = list(range(1, depth + 1))
    for metric in LAYER_METRICS:
        sel = layers[layers["metric"] == metric]
        lines += [
            f"*{LABELS[metric]} by layer (1 = input side)*",
            "",
            "| activation | " + " | ".join(str(i) for i in layer_ids) + " |",
            "|---|" + "---|" * len(layer_ids),
        ]
        for act in names:
            s = sel[sel["activation"] == act].set_index("layer")["mean"]
            vals = [pct(float(s[i])) if i in s.index else "–" for i in layer_ids]
            if all(v == "–" for v in vals):
                vals = ["diverged"] + ["–"] * (len(layer_ids) - 1)
            lines.append(f"| {act} | " + " | ".join(vals) + " |")
        lines.append("")
    lines.append("</details>")
    return lines


def findings(summary, names: list[str], cfg: Config) -> list[str]:
    """Sentences computed from the summary; nothing here is written in advance."""
    t = summary["table"].set_index("activation").loc[names]
    out = []
    alive = t[t["sparsity_n"] > 0]

    def listing(rows, metric: str) -> str:
        rows = rows.sort_values(f"{metric}_mean", ascending=False)
        return ", ".join(f"{a} {pct(v)}%" for a, v in rows[f"{metric}_mean"].items())

    zeros = alive[alive["sparsity_mean"] > 0]
    none_zero = [a for a in alive.index if a not in zeros.index]
    if not zeros.empty:
        out.append(
            f"Exact zeros (|a| < {cfg.zero_threshold:g}) appear with {listing(zeros, 'sparsity')} "
            "of values" + (f"; never with {', '.join(none_zero)}." if none_zero else ".")
        )
    elif not alive.empty:
        out.append(
            f"No activation produced exact zeros (|a| < {cfg.zero_threshold:g}); the protocol's "
            "sparsity is 0 for all of them."
        )

    dead = alive[alive["dead_rate_mean"] > 0]
    if not dead.empty:
        out.append(f"Dead units (zero for every input): {listing(dead, 'dead_rate')} of units.")
    elif not alive.empty:
        out.append("No activation had a dead unit.")

    # Saturated but not dead: flat slope on a non-zero output, invisible to the protocol.
    gap = alive["saturated_rate_mean"] - alive["dead_rate_mean"]
    hidden = alive[gap > 0]
    if not hidden.empty:
        parts = [
            f"{a} {pct(r['saturated_rate_mean'])}% saturated vs {pct(r['dead_rate_mean'])}% dead"
            for a, r in hidden.sort_values("saturated_rate_mean", ascending=False).iterrows()
        ]
        out.append(
            "Units with no slope but a non-zero output, which the sparsity and dead-unit "
            f"metrics cannot see (|f'| < {cfg.saturation_threshold:g} for every input): "
            + "; ".join(parts)
            + "."
        )
    flat_is_dead = alive[(alive["saturated_rate_mean"] > 0) & (gap <= 0)]
    if not flat_is_dead.empty:
        out.append(
            f"For {', '.join(flat_is_dead.index)}, every saturated unit is a dead one "
            "(slope and output both zero)."
        )
    if not alive.empty and (alive["saturated_rate_mean"] == 0).all():
        out.append("No activation had a saturated unit.")

    for act, r in t.iterrows():
        if r["diverged"] == 0:
            continue
        steps = r["max_steps_diverged"]
        after = f" after at most {int(steps)} update(s)" if math.isfinite(steps) else ""
        if r["diverged"] == r["n_seeds"]:
            out.append(
                f"{act} diverged in every seed ({int(r['n_seeds'])} of {int(r['n_seeds'])})"
                f"{after}; it is reported as diverged, not as dead or sparse."
            )
        else:
            out.append(
                f"{act} diverged in {int(r['diverged'])} of {int(r['n_seeds'])} seeds{after}; "
                f"its numbers above come from the other {int(r['n_seeds'] - r['diverged'])}."
            )

    trained = alive[alive["final_loss_mean"].notna()].sort_values("final_loss_mean")
    if not trained.empty:
        best = trained.index[0]
        var = float(trained["target_var"].mean())
        over = (
            " (means over the seeds that did not diverge; diverged: "
            + ", ".join(
                f"{a} {int(r['diverged'])} of {int(r['n_seeds'])}"
                for a, r in t.iterrows()
                if r["diverged"]
            )
            + ")"
            if (t["diverged"] > 0).any()
            else ""
        )
        sentence = (
            f"Lowest mean final loss{over}: {best} ({fmt(trained.loc[best, 'final_loss_mean'])})"
        )
        if len(trained) > 1:
            from actlab.stats import paired_by_seed, versus_runner_up

            runner = trained.index[1]
            c = paired_by_seed(summary["trials"], "final_loss", best, runner)
            sentence += f", then {runner} ({fmt(trained.loc[runner, 'final_loss_mean'])}): "
            sentence += versus_runner_up(best, runner, c)
        sentence += f". The target's variance, the loss of a constant output, is {fmt(var)}."
        stuck = trained[trained["final_loss_mean"] >= 0.9 * trained["target_var"]]
        if not stuck.empty:
            sentence += (
                f" {', '.join(stuck.index)} ended at 90% or more of it: learned little or nothing."
            )
        out.append(sentence)
    return out


def training_findings(summary, names: list[str], rctx: ReportContext) -> list[str]:
    """What training did to the units: for each activation with a region of zero slope, its
    zero-slope units at initialisation against after training, paired by seed over the seeds
    that did not diverge (sign-flip test, Holm over the activations tested); and whether
    the networks learned at all, without which the counts say little about training."""
    from actlab.activations import has_zero_slope_region
    from actlab.stats import paired_comparison, test_text, with_holm

    trials = summary["trials"]
    if "zero_slope_rate_init" not in trials or trials["zero_slope_rate_init"].isna().all():
        return []
    out = []
    can_die = [a for a in names if a in rctx.specs and has_zero_slope_region(rctx.specs[a])]
    cannot = [a for a in names if a in rctx.specs and a not in can_die]
    if cannot:
        out.append(
            f"{', '.join(cannot)} have no region of zero slope: none of their units can pass "
            "no gradient at all, so they are not ranked on dead units (saturation, a slope "
            "near but not at zero, is counted for them)."
        )
    tests = []
    for act in can_die:
        own = trials[(trials["activation"] == act) & (trials["diverged"] != 1)]
        tests.append(
            (act, own, paired_comparison(own["zero_slope_rate"], own["zero_slope_rate_init"]))
        )
    adjusted = with_holm([c for _, _, c in tests]) if tests else []
    family = f"the {len(tests)} activations" if len(tests) > 1 else ""
    for (act, own, _), c in zip(tests, adjusted, strict=True):
        if not c.n:
            continue
        before, after = own["zero_slope_rate_init"].mean(), own["zero_slope_rate"].mean()
        if c.significant:
            verdict = "training killed units" if c.mean_diff > 0 else "training revived units"
        else:
            verdict = "no change separated from seed noise"
        out.append(
            f"{act}: {pct(before)}% of units had zero slope on every input at initialisation, "
            f"{pct(after)}% after training ({verdict}; {test_text(c, family)})."
        )
    states = trials[trials["activation"].isin(names)]
    if "state" in states and (states["state"] != "").any():
        learned = states.groupby("activation", sort=False)["state"].apply(
            lambda s: int((s == "learned").sum())
        )
        none = [a for a in names if a in learned.index and learned[a] == 0]
        if none:
            out.append(
                f"No seed of {', '.join(none)} learned (loss after training at or above "
                f"{rctx.config.learned_below:g} x the target's variance): their unit counts "
                "describe networks that did not fit the data, not the effect of training on "
                "a working network."
            )
    return out


# -- claims ---------------------------------------------------------------------------------------
def rectifiers_die_most(summary, rctx: ReportContext) -> str | None:
    """ "Dead units are a ReLU problem": contradicted when, per seed, the activations without
    a zero region have more dead units on average than those with one (ReLU and kin), by a
    paired sign-flip test over the seeds where neither group diverged entirely."""
    from actlab.activations import has_zero_region, is_affine
    from actlab.stats import paired_comparison, test_text

    specs, trials = rctx.specs, summary["trials"]
    acts = [a for a in rctx.activations if a in specs and not is_affine(specs[a])]
    kinked = [a for a in acts if has_zero_region(specs[a])]
    others = [a for a in acts if not has_zero_region(specs[a])]
    if not kinked or not others or trials.empty:
        return None
    per = trials.pivot_table(index="seed", columns="activation", values="dead_rate", dropna=False)
    k, o = per.reindex(columns=kinked).mean(axis=1), per.reindex(columns=others).mean(axis=1)
    diff = paired_comparison(o, k)
    if not (diff.mean_diff > 0 and diff.significant):
        return None
    return (
        f'*"Dead units are a ReLU problem."* Here the activations without a zero region '
        f"({', '.join(others)}) had {pct(o.mean())}% dead units on average, those with one "
        f"({', '.join(kinked)}) {pct(k.mean())}% ({test_text(diff)})."
    )


STUDY = Sparsity()
