"""The bench: the user's own model and data, every activation on the same seeds.

`actlab bench MODEL --data DATA` is an ordinary run of this study: its trials are
(activation, seed); each seed's members start from the same initial weights and see the
same batches whatever their activation (model.py, run.py), so every comparison is paired;
an activation's seeds train as one torch.func stack where the model allows it. The run
directory, resume, the process pool and Ray, the verdicts and the report are a run's.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

from actlab.studies.base import (
    PropertySpec,
    ReportContext,
    RunContext,
    Section,
    Study,
    Trial,
    property_frame,
    trial_table,
)
from actlab.studies.bench.config import Config

SCALARS = (
    "test_accuracy",
    "test_loss",
    "train_loss",
    "diverged",
    "seconds_per_step",
    "stacked",
    "sites",
    "replaced",
    "probe_samples",
)
# Means over the activation sites (units.py), on the initial weights and after training.
UNIT_METRICS = ("zero_slope_rate_init", "zero_slope_rate", "saturated_rate_init", "saturated_rate")


@cache
def parameters_of(model: str, data: str, task: str) -> int:
    """Parameters of one member (built once per process, for planning)."""
    from actlab.activations import get_activation
    from actlab.studies.bench.model import build_model, load_object

    del data, task
    try:
        factory = load_object(model, "model")
        built, _ = build_model(factory, get_activation("ReLU"), 0, [])
        return sum(p.numel() for p in built.parameters())
    except Exception:  # noqa: BLE001 - a model that cannot be built is refused by check()
        return 0  # (planning may ask first: the run's executor is chosen before the checks)


class Bench(Study):
    name = "bench"
    title = "Your model on your data"
    Config = Config
    learnable_activations = "trained"

    def trials(self, config: Config, activations: list[str], seeds: int) -> list[Trial]:
        return [Trial(self.name, act, seed, {}) for act in activations for seed in range(seeds)]

    def check(self, config: Config, activations: dict) -> None:
        """The model, the data and their fit, refused in one line before anything runs."""
        from actlab.studies.bench.data import load_data
        from actlab.studies.bench.model import check_model, load_object

        data = load_data(config.data, config.task)
        factory = load_object(config.model, "model")
        if not callable(factory):
            raise_user(f"model '{config.model}' is a {type(factory).__name__}, not a factory")
        if config.train:
            train = load_object(config.train, "train function")
            if not callable(train):
                raise_user(f"train function '{config.train}' is not callable")
        check_model(config.model, factory, list(activations.values()), config.replace, data)

    def batch_key(self, trial: Trial) -> tuple:
        return ()

    def param_count(self, trial: Trial, config: Config) -> int:
        return parameters_of(config.model, config.data, config.task)

    def member_bytes(self, trial: Trial, config: Config) -> int:
        """Parameters, gradients and Adam's two moments, and room for a batch's activations."""
        return 16 * self.param_count(trial, config) + 4 * config.batch * 50_000

    def trial_cost(self, trial: Trial, config: Config) -> float:
        """About six multiply-adds per parameter per sample, forward and backward."""
        return 6.0 * config.steps * config.batch * self.param_count(trial, config)

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        from actlab.studies.bench.run import run_trials

        return run_trials(trials, ctx)

    def summarize(self, results) -> dict[str, Any]:
        from actlab.stats import describe

        wide = trial_table(results, self.name, SCALARS, ["activation", "seed"])
        metric = "test_accuracy" if wide["test_accuracy"].notna().any() else "test_loss"
        cells = describe(wide, ["activation"], value=metric)
        extra = wide.groupby("activation", sort=False).agg(
            n_seeds=("seed", "count"),
            diverged=("diverged", "sum"),
            step_seconds=("seconds_per_step", "median"),
            stacked=("stacked", "max"),
            test_loss=("test_loss", "mean"),
        )
        cells = cells.merge(extra.reset_index(), on="activation")
        rows = results[(results["study"] == self.name) & results["step"].notna()]
        units = trial_table(results, self.name, UNIT_METRICS, ["activation", "seed"])
        units = units.groupby("activation", sort=False)[list(UNIT_METRICS)].mean()
        ours = results[(results["study"] == self.name) & results["layer"].notna()]
        grads = (
            ours[ours["metric"].isin(["grad_norm_init", "grad_norm"])]
            .groupby(["activation", "metric", "layer"], sort=False)["value"]
            .median()
        )
        return {
            "trials": wide,
            "cells": cells,
            "metric": metric,
            "curves": rows,
            "units": units,
            "grads": grads,
        }

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        from actlab.studies.bench.report import report_markdown

        markdown, figures = report_markdown(summary, rctx, figure_dir)
        return Section(self.title, markdown, figures)

    property_specs = (
        PropertySpec(
            "your model's test accuracy",
            "test accuracy of your model after training, on your test split",
            "higher",
            situation="accuracy in your model",
        ),
        PropertySpec(
            "your model's test loss",
            "test loss of your model after training (cross-entropy or squared error)",
            "lower",
        ),
    )

    def conditions(self, config: Config) -> dict[str, str]:
        words = (
            f"model {config.model}, data {config.data}, {config.optimizer} at lr {config.lr:g}, "
            f"{config.steps} steps of batch {config.batch}"
            + (f", weight decay {config.weight_decay:g}" if config.weight_decay else "")
            + (f", gradients clipped at {config.clip:g}" if config.clip else "")
        )
        return {spec.name: words for spec in self.property_specs}

    def properties(self, summary, rctx: ReportContext):
        """Per seed: test accuracy (classification) and test loss; a diverged member scores
        the worst (-inf accuracy, +inf loss)."""
        rows = []
        for r in summary["trials"].itertuples():
            gone = r.diverged == 1
            scores = {
                "your model's test accuracy": -math.inf if gone else r.test_accuracy,
                "your model's test loss": math.inf if gone else r.test_loss,
            }
            for prop, score in scores.items():
                if gone or math.isfinite(score):  # a metric the member does not have: none
                    rows.append(
                        {
                            "property": prop,
                            "activation": r.activation,
                            "seed": int(r.seed),
                            "score": float(score),
                            "outcome": "diverged" if gone else "",
                        }
                    )
        return property_frame(rows)


def raise_user(message: str):
    from actlab.errors import UserError

    raise UserError(message)


STUDY = Bench()
