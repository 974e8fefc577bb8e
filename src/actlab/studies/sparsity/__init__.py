"""Protocol experiment 2: sparsity, dead units and saturated units after training.

Each network (depth 10, width 128, in_dim 10 by default) is trained full-batch with SGD
at a deliberately high learning rate on y = sin(sum of x) + noise, then one forward pass
over the training inputs records every hidden layer's pre- and post-activations.

Metrics per trial (rows carry `layer`, 1 = input side, for the per-layer values; the
layer mean has no `layer`):
  sparsity        fraction of post-activation values with |a| < zero_threshold (the
                  protocol metric: exact zeros only)
  dead_rate       fraction of units with |a| <= zero_threshold for every sample: the
                  protocol's "dead" count, reported as "output ~0 on every input" (for
                  Sigmoid it counts units saturated near 0, whose slope is not 0)
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
from typing import Any

from actlab.studies.base import (
    OPTIMIZER_NAMES,
    PropertySpec,
    ReportContext,
    RunContext,
    Section,
    Study,
    Trial,
    build_stack,
    learned_rows,
    property_frame,
)
from actlab.studies.sparsity.claims import rectifiers_die_most
from actlab.studies.sparsity.config import (
    INIT_METRICS,
    LABELS,
    LAYER_METRICS,
    NETWORK_METRICS,
    Config,
)
from actlab.studies.sparsity.figures import (
    TITLES,
    bar_panel,
    dead_metric,
    plot_bars,
    plot_histograms,
)
from actlab.studies.sparsity.report import (
    cell,
    findings,
    per_layer_tables,
    report_markdown,
    training_findings,
)
from actlab.studies.sparsity.run import (
    dead_rate,
    layer_metrics,
    make_data,
    pooled_stats,
    saturated_rate,
    sparsity,
    trial_rows,
    unit_measures,
    zero_slope_rate,
)
from actlab.studies.sparsity.summary import state_of, summarize

__all__ = [
    "INIT_METRICS",
    "LABELS",
    "LAYER_METRICS",
    "NETWORK_METRICS",
    "STUDY",
    "TITLES",
    "Config",
    "Sparsity",
    "bar_panel",
    "cell",
    "dead_metric",
    "dead_rate",
    "findings",
    "layer_metrics",
    "make_data",
    "per_layer_tables",
    "plot_bars",
    "plot_histograms",
    "pooled_stats",
    "rectifiers_die_most",
    "report_markdown",
    "saturated_rate",
    "sparsity",
    "state_of",
    "summarize",
    "training_findings",
    "trial_rows",
    "unit_measures",
    "zero_slope_rate",
]


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
            f"{OPTIMIZER_NAMES[config.optimizer]} at lr {config.lr:g} for {config.steps} steps, depth "
            f"{config.depth}, width {config.width}, {init_words(config.init)}; y = sin(sum "
            f"of x) + noise on {config.n_samples} samples; units counted after training"
        )
        return {spec.name: words for spec in self.property_specs}

    def limits(self, config: Config) -> dict[str, str]:
        if config.init != "xavier_uniform":
            return {}
        words = (
            "units are counted after a short, deliberately harsh training run from one "
            "initialisation for every activation (Xavier uniform): compare with the count "
            "at initialisation before reading a count as caused by training, and with the "
            "learned seeds before reading it as a property of working networks"
        )
        return {spec.name: words for spec in self.property_specs}

    def properties(self, summary, rctx: ReportContext):
        """Per seed: the layer mean of the dead (zero slope on every input) and saturated
        (slope below the threshold, not zero) rates after training, with the run's state as
        outcome. An activation without a region of zero slope has no dead-unit score
        (outcome "cannot die", or "diverged (cannot die)" for a diverged run: unranked, and
        its divergence still shown). A diverged network has no units to count: its score is
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
                    "outcome": outcome if can_die else cannot_die(outcome),
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

    def claims(self, summary, rctx: ReportContext) -> list:
        claim = rectifiers_die_most(summary, rctx, self.conditions(rctx.config)["dead units"])
        return [claim] if claim else []

    def sheet_panels(self, summary, rctx: ReportContext, colours) -> list:
        table = summary["table"]
        names = [a for a in rctx.activations if a in set(table["activation"])]
        return [
            lambda ax, metric=metric: bar_panel(ax, table, names, metric, colours)
            for metric in ("sparsity", dead_metric(table))
        ]


def cannot_die(outcome: str) -> str:
    """The dead-unit outcome of a run of an activation without a region of zero slope."""
    return "diverged (cannot die)" if outcome == "diverged" else "cannot die"


STUDY = Sparsity()
