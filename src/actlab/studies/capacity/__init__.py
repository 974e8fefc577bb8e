"""Protocol experiment 4: representational capacity, inside and outside the training interval.

Each network (depth 5, width 64, Xavier weights, zero biases) is trained full batch with
Adam (lr 0.001, 500 steps, MSE) on one noiseless 1-d target sampled at `n_train` evenly
spaced points of [x_min, x_max]. The protocol's `test_mse` is measured on `n_test` evenly
spaced points of the same interval, so it measures interpolation only (a known fault of the
original); actlab adds an extrapolation test on two grids just outside it: `n_extrap`
evenly spaced points on each of [x_min - extrap_margin, x_min) and
(x_max, x_max + extrap_margin], the endpoints x_min and x_max excluded.

Metrics per trial (one row each, no layer/step; the per-point and per-step rows follow):
  test_mse          MSE on the test grid (the protocol metric, interpolation)
  extrap_mse        MSE on both extrapolation grids pooled
  train_mse         MSE on the training grid after the final update
  diverged          1 if the loss rule (NaN, inf or > 1e6) stopped the run, else 0;
                    a diverged trial has NaN for all three MSEs and its predictions
  steps_completed   updates applied
  ended_plateau     1 if training ended on a plateau (the training loss had not fallen by
                    `min_improvement`, relatively, in the last `patience` updates), 0 if the
                    budget ran out while it was still falling; NaN for a diverged trial
  fitted            1 if the training MSE after training is below `learned_below` x the
                    target's variance on the training grid (a constant output scores 1 x),
                    else 0; NaN for a diverged trial
  target_variance   variance of the target on the test grid: the test MSE of the best
                    constant output
With `until = "steps"` (the protocol) every run takes all its steps, and ended_plateau only
labels how it ended; with `until = "plateau"` a fitted run stops on its plateau, `steps` is
the most a run may take, and a run resting at about a constant output's loss trains on
(networks can leave that plateau late: measured, Tanh on sin(10x) with its customary init
left it after 1000-1500 Adam steps at lr 1e-3).

How each run ended, one of four (summarize, the report):
  plateaued         fitted, on a plateau: by the plateau rule more steps of this training
                    bring little, so its MSE is the closest fit this network reaches trained
                    this way (like every measured fit, an upper bound on what it can
                    represent: another optimiser or schedule may go lower)
  still improving   the budget ran out while the loss still fell: it did not train in time,
                    and its MSE says how far it got, never what the network can represent
  constant          on a plateau at about a constant output's loss (not fitted): it cannot
                    represent the target, or had not yet left that plateau; the run cannot
                    tell which
  diverged          the loss rule stopped it (the worst outcome)
Per-point rows, for the prediction figure:
  prediction        the network's output at test-grid point `step` (0 .. n_test - 1)
  extrap_prediction the output at extrapolation-grid point `step` (0 .. 2 n_extrap - 1;
                    the left grid first, both in increasing x; see `grid_extrap`)
Per-step rows, for the training-curve figure:
  loss              the training MSE recorded at step `step` (1 .. steps_completed: the
                    loss before that step's update, as the stability study stores it); none
                    after a run stopped, so a diverged run ends at its last finite loss

The targets only change y, so every trial of one shape (whatever its target) shares a
stack; within a seed every activation and every target starts from the same weights.
MSEs span decades, so statistics over seeds are taken on log10 values (geometric means);
an MSE of exactly 0 is floored at stats.LOG_FLOOR and counted, never dropped.
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
    init_params,
    property_frame,
)
from actlab.studies.capacity.claims import SMOOTH_TARGETS, smooth_fits_smooth
from actlab.studies.capacity.config import (
    MIN_IMPROVEMENT,
    MSE_METRICS,
    PATIENCE,
    TARGETS,
    Config,
    budget_words,
    condition_words,
    plateau_decides,
    plateau_words,
    plateaued_at_end,
    target_fn,
)
from actlab.studies.capacity.figures import (
    draw_heatmap,
    plot_curves,
    plot_heatmaps,
    plot_predictions,
)
from actlab.studies.capacity.report import (
    cell_text,
    curves_caption,
    ended_text,
    findings,
    mse_table,
    report_markdown,
    survivors,
    training_findings,
)
from actlab.studies.capacity.run import grid_extrap, grid_test, grid_train, train_trials
from actlab.studies.capacity.summary import (
    RUN_METRICS,
    cell_lookup,
    loss_curves,
    summarize,
    trial_metrics,
)

__all__ = [
    "MIN_IMPROVEMENT",
    "MSE_METRICS",
    "PATIENCE",
    "RUN_METRICS",
    "SMOOTH_TARGETS",
    "STUDY",
    "TARGETS",
    "Capacity",
    "Config",
    "budget_words",
    "cell_lookup",
    "cell_text",
    "condition_words",
    "curves_caption",
    "draw_heatmap",
    "ended_text",
    "findings",
    "grid_extrap",
    "grid_test",
    "grid_train",
    "loss_curves",
    "mse_table",
    "plateau_decides",
    "plateau_words",
    "plateaued_at_end",
    "plot_curves",
    "plot_heatmaps",
    "plot_predictions",
    "report_markdown",
    "smooth_fits_smooth",
    "summarize",
    "survivors",
    "target_fn",
    "train_trials",
    "training_findings",
    "trial_metrics",
]


class Capacity(Study):
    name = "capacity"
    learnable_activations = "trained"
    title = "Representational capacity"
    Config = Config
    param_columns = ("target", "depth", "width", "lr", "optimizer", "steps")

    def extra_params(self, config: Config) -> dict[str, Any]:
        """Trial parameters beyond the protocol's, present only when not at their default, so
        that the protocol's trial keys (and stored results) stay as they are."""
        extra = init_params(config)
        if config.until != "steps":
            extra["until"] = config.until
            extra["patience"] = config.patience
            extra["min_improvement"] = config.min_improvement
            if config.learned_below != Config.model_fields["learned_below"].default:
                extra["learned_below"] = config.learned_below
        return extra

    def columns(self, config: Config) -> tuple[str, ...]:
        return (*self.param_columns, *self.extra_params(config))

    def trials(self, config: Config, activations: list[str], seeds: int) -> list[Trial]:
        extra = self.extra_params(config)
        return [
            Trial(
                self.name,
                act,
                seed,
                {
                    "target": target,
                    "depth": config.depth,
                    "width": config.width,
                    "lr": config.lr,
                    "optimizer": config.optimizer,
                    "steps": config.steps,
                    **extra,
                },
            )
            for target in config.targets
            for act in activations
            for seed in range(seeds)
        ]

    def batch_key(self, trial: Trial) -> tuple:
        # The target only changes y: trials of every target share one stack.
        return tuple(sorted((k, v) for k, v in trial.params.items() if k != "target"))

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        return train_trials(trials, ctx)

    def summarize(self, results):
        return summarize(results)

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        cfg: Config = rctx.config
        activations = [a for a in rctx.activations if a in set(summary["cells"]["activation"])]
        targets = [t for t in cfg.targets if t in set(summary["cells"]["target"])]
        heatmap = plot_heatmaps(
            summary["cells"], activations, targets, rctx.seeds, figure_dir / "capacity_heatmap.png"
        )
        predictions = plot_predictions(
            summary["predictions"],
            activations,
            targets,
            cfg,
            figure_dir / "capacity_predictions.png",
        )
        curves = plot_curves(
            summary["curves"],
            summary["cells"],
            activations,
            targets,
            figure_dir / "capacity_curves.png",
        )
        markdown = report_markdown(
            summary,
            activations,
            targets,
            rctx,
            heatmap.name,
            predictions.name,
            curves.name if curves else None,
        )
        return Section(self.title, markdown, [heatmap, predictions, *([curves] if curves else [])])

    property_specs = (
        PropertySpec(
            "fit (interpolation)",
            "log10 test MSE inside the training interval, per target",
            "lower",
            settings="targets",
            situation="the most accurate fit inside the data range",
        ),
        PropertySpec(
            "extrapolation",
            "log10 MSE outside the training interval, per target",
            "lower",
            settings="targets",
            situation="predictions outside the data range",
            # a prediction outside the data is no use from a network that cannot fit inside
            rests_on=("fit (interpolation)",),
        ),
    )

    def limits(self, config: Config) -> dict[str, str]:
        if config.until != "steps":
            return {}
        words = (
            f"a fixed budget of {config.steps} {OPTIMIZER_NAMES[config.optimizer]} steps: a "
            "network still at the target's variance may not have trained in time, so a poor "
            "fit is not shown to be a limit of what the activation can represent (until = "
            '"plateau" tells "cannot" from "not yet")'
        )
        return {spec.name: words for spec in self.property_specs}

    def conditions(self, config: Config) -> dict[str, str]:
        """E.g. "Adam at learning rate 0.001, 500 steps, depth 5, width 64, Xavier uniform
        init, 200 training points on [-2, 2], targets sin/abs/step/sin10/cubic"."""
        names = (spec.name for spec in self.property_specs)
        return dict(zip(names, condition_words(config), strict=True))

    def properties(self, summary, rctx: ReportContext):
        """Per seed and target: log10 of the test (extrapolation) MSE, an exact zero floored
        and flagged; a diverged run scores +inf, below every run that fitted anything. The
        outcome is "diverged", "not fitted" (its training MSE stayed above the learned
        line: a failure, studies.base.FAILURES), "fitted", or "" (stored before `fitted`)."""
        rows = []
        for spec, metric in zip(self.property_specs, ("test_mse", "extrap_mse"), strict=True):
            for r in summary["trials"].itertuples():
                diverged = r.diverged == 1
                rows.append(
                    {
                        "property": spec.name,
                        "activation": r.activation,
                        "seed": int(r.seed),
                        "setting": f"target={r.target}",
                        "score": math.inf if diverged else getattr(r, f"log10_{metric}"),
                        "outcome": fit_outcome(diverged, r.fitted),
                        "floored": getattr(r, metric) == 0,
                    }
                )
        return property_frame(rows)

    def claims(self, summary, rctx: ReportContext) -> list:
        claim = smooth_fits_smooth(summary, rctx)
        return [claim] if claim is not None else []

    def sheet_panels(self, summary, rctx: ReportContext, colours) -> list:
        cfg: Config = rctx.config
        activations = [a for a in rctx.activations if a in set(summary["cells"]["activation"])]
        targets = [t for t in cfg.targets if t in set(summary["cells"]["target"])]

        def heatmap(ax) -> None:
            draw_heatmap(
                ax,
                summary["cells"],
                activations,
                targets,
                "test_",
                rctx.seeds,
                "Capacity: test MSE",
            )

        return [heatmap]


def fit_outcome(diverged: bool, fitted: float) -> str:
    if diverged:
        return "diverged"
    if fitted == 1:
        return "fitted"
    return "not fitted" if fitted == 0 else ""


STUDY = Capacity()
