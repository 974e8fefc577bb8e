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
  collapsed  every layer's mean |dW| below `vanish_threshold` (stored as `grad_collapsed`;
             runs before 2026-12-07 called it `grad_vanished`): a flat profile of tiny
             gradients, the forward signal having died out, which the decay alone does not show
  faint      not collapsed, but even the strongest layer more than DECAY_LIMIT below the
             median strongest layer of the activations on the same seed: flat and tiny
             beside the field (summary.trial_states)
Collapsed and faint, like vanished and exploded, are failures of the property: an
activation that fails most of its runs is never recommended for keeping gradients' size.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

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
from actlab.studies.gradient_flow.claims import smooth_relus_keep_gradient
from actlab.studies.gradient_flow.config import (
    DECAY_LIMIT,
    RATIO_BANDS,
    Config,
    InitName,
    ratio_band,
)
from actlab.studies.gradient_flow.figures import panel, plot
from actlab.studies.gradient_flow.report import (
    band_reading,
    decay_table,
    decay_text,
    disagreements,
    findings,
    majority_reading,
    reading,
    report_markdown,
)
from actlab.studies.gradient_flow.run import has_edge, honest_ratio, log10, trial_rows
from actlab.studies.gradient_flow.summary import hidden_decay, main_layers, summarize

__all__ = [
    "DECAY_LIMIT",
    "RATIO_BANDS",
    "STUDY",
    "Config",
    "GradientFlow",
    "InitName",
    "band_reading",
    "decay_table",
    "decay_text",
    "disagreements",
    "findings",
    "has_edge",
    "hidden_decay",
    "honest_ratio",
    "log10",
    "main_layers",
    "majority_reading",
    "panel",
    "plot",
    "ratio_band",
    "reading",
    "report_markdown",
    "smooth_relus_keep_gradient",
    "summarize",
    "trial_rows",
]


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
            "abs(log10(last hidden / first hidden)), at each depth of the sweep",
            "lower",
            settings="depths",
            situation="gradients that keep their size through depth",
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

    def limits(self, config: Config) -> dict[str, str]:
        if config.main_init in ("practice", "critical"):
            return {}
        from actlab.studies.base import init_words

        return {
            self.property_specs[0].name: (
                f"every activation starts from the same {init_words(config.main_init)}, "
                "though each is used with its own in practice (He for ReLU): the decay "
                "measured is that initialisation's as much as the activation's (init = "
                '["practice", "critical"] measures each at its own and at its edge of chaos)'
            )
        }

    def properties(self, summary, rctx: ReportContext):
        """Per seed and depth: |log10 decay| across the hidden layers (0 = the gradient
        keeps its size; an exact zero layer floored and flagged). Outcome "vanished" or
        "exploded" past the decay limit, "collapsed" or "faint" (scored +inf, the worst:
        a gradient too small to matter has not kept its size, however flat), else "ok";
        a depth without two hidden layers of
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
                "score": math.inf if r.state in ("collapsed", "faint") else abs(r.log10_decay),
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

    def claims(self, summary, rctx: ReportContext) -> list:
        claim = smooth_relus_keep_gradient(
            summary, rctx, self.conditions(rctx.config)["gradient flow"]
        )
        return [claim] if claim else []

    def sheet_panels(self, summary, rctx: ReportContext, colours) -> list:
        return [lambda ax: panel(ax, summary, rctx, colours)]

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        layers = main_layers(summary, rctx.config)
        figure = plot(layers, rctx.activations, figure_dir / "gradient_flow.png")
        return Section(self.title, report_markdown(summary, rctx, figure.name), [figure])


STUDY = GradientFlow()
