"""Real data: classification of scikit-learn's bundled data sets with MLPs of a few depths.

Data. The data sets ship inside scikit-learn (`load_digits`, `load_breast_cancer`,
`load_wine` read files from the installed package); nothing is ever downloaded, and the
`fetch_*` loaders are never called.
  digits         1797 images of handwritten digits, 8x8 pixels -> 64 features, 10 classes
  breast_cancer  569 tumours, 30 features, 2 classes
  wine           178 wines, 13 chemical features, 3 classes

Split. Per seed one stratified train / validation / test split (default 60 / 20 / 20):
every class is shuffled and cut by the fractions, so each split keeps the class
proportions. The split is keyed by (run seed, data set, seed) and not by the activation
(common random numbers): within a seed every activation sees the same split and starts
from the same weights, so differences between activations are paired. The split sizes
depend on the class counts only, so they are equal for every seed and members of different
seeds stack. Features are standardised with the training split's mean and standard
deviation; a feature constant on the training split (blank border pixels of digits) is set
to 0, as it carries nothing the network could learn.

Training. Xavier-uniform weights, zero biases; softmax cross-entropy; full batch: one
optimiser step (Adam by default) per epoch on the whole training split. After each step
the validation loss and accuracy are measured. Early stopping per member: the parameters
with the lowest validation loss so far are kept (epoch 0, the initial weights, counts),
and a member stops when `patience` epochs pass without a new lowest validation loss, or at
`max_epochs`. Its best parameters are then restored, and the test metrics are measured on
them. A member whose training or validation loss becomes NaN, infinite or exceeds
`loss_limit` has diverged: it stops at once and its metrics are NaN.

Metrics per trial (one row each, no step):
  test_accuracy     fraction of the test split classified correctly (restored parameters)
  test_loss         cross-entropy on the test split (restored parameters)
  final_loss        cross-entropy on the training split (restored parameters)
  best_epoch        the epoch of the restored parameters (0 = the initial weights)
  epochs_to_target  the first epoch whose validation accuracy reached `target_accuracy`
                    (NaN if none did)
  epochs_run        optimiser steps taken (kept for diverged trials too)
  diverged          1 if the divergence rule stopped the trial, else 0
Per-epoch rows: `val_accuracy` with step = epoch (0 .. the epoch the member stopped).
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
    property_frame,
)
from actlab.studies.real_data.config import (
    DATASETS,
    Config,
    DatasetInfo,
    DatasetName,
    class_split,
    split_sizes,
)
from actlab.studies.real_data.data import (
    SplitData,
    load_dataset,
    prepare,
    split_indices,
    stacked_data,
)
from actlab.studies.real_data.figures import plot_accuracy, plot_curves
from actlab.studies.real_data.report import (
    accuracy_table,
    cell_text,
    findings,
    report_markdown,
)
from actlab.studies.real_data.run import (
    Fit,
    evaluate,
    first_reaching,
    fit,
    member_losses,
    run_trials,
)
from actlab.studies.real_data.summary import SCALARS, summarize, trial_metrics

__all__ = [
    "DATASETS",
    "SCALARS",
    "STUDY",
    "Config",
    "DatasetInfo",
    "DatasetName",
    "Fit",
    "RealData",
    "SplitData",
    "accuracy_table",
    "cell_text",
    "class_split",
    "evaluate",
    "findings",
    "first_reaching",
    "fit",
    "load_dataset",
    "member_losses",
    "plot_accuracy",
    "plot_curves",
    "prepare",
    "report_markdown",
    "run_trials",
    "split_indices",
    "split_sizes",
    "stacked_data",
    "summarize",
    "trial_metrics",
]


class RealData(Study):
    name = "real_data"
    learnable_activations = "trained"
    title = "Real data: classification of bundled data sets"
    Config = Config
    param_columns = ("dataset", "depth", "width", "lr", "optimizer")

    def trials(self, config: Config, activations: list[str], seeds: int) -> list[Trial]:
        return [
            Trial(
                self.name,
                act,
                seed,
                {
                    "dataset": dataset,
                    "depth": depth,
                    "width": config.width,
                    "lr": config.lr,
                    "optimizer": config.optimizer,
                },
            )
            for dataset in config.datasets
            for depth in config.depths
            for act in activations
            for seed in range(seeds)
        ]

    def batch_key(self, trial: Trial) -> tuple:
        # Same data set and shape: activations and seeds share a stack (each member gets
        # its seed's split; the split sizes are the same for every seed). lr is per member.
        p = trial.params
        return (p["dataset"], p["depth"], p["width"], p["optimizer"])

    def member_bytes(self, trial: Trial, config: Config) -> int:
        """About six float tensors of depth x training samples x width kept for backward."""
        p = trial.params
        n_train = round(config.train_fraction * DATASETS[p["dataset"]].samples)
        return 4 * 6 * int(p["depth"]) * int(p["width"]) * n_train

    def trial_cost(self, trial: Trial, config: Config) -> float:
        """At most max_epochs full-batch steps over the training split (base.Study)."""
        p = trial.params
        n_train = round(config.train_fraction * DATASETS[p["dataset"]].samples)
        width = int(p["width"])
        return float(config.max_epochs) * n_train * int(p["depth"]) * width * (width + 16)

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        return run_trials(trials, ctx)

    def summarize(self, results):
        return summarize(results)

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        cells = summary["cells"]
        activations = [a for a in rctx.activations if a in set(cells["activation"])]
        datasets = [d for d in rctx.config.datasets if d in set(cells["dataset"])]
        accuracy = plot_accuracy(
            cells, activations, datasets, rctx.seeds, figure_dir / "real_data_accuracy.png"
        )
        curves = plot_curves(
            summary["curves"],
            activations,
            datasets,
            rctx.config,
            figure_dir / "real_data_curves.png",
        )
        markdown = report_markdown(summary, activations, datasets, rctx, accuracy.name, curves.name)
        return Section(self.title, markdown, [accuracy, curves])

    property_specs = (
        PropertySpec(
            "real-data accuracy",
            "held-out test accuracy, per data set and depth",
            "higher",
            settings="data set and depth settings",
            situation="accuracy on real data",
        ),
    )

    def properties(self, summary, rctx: ReportContext):
        """Per seed, data set and depth: test accuracy; a diverged run scores -inf, below
        every run that learned anything."""
        rows = [
            {
                "property": self.property_specs[0].name,
                "activation": r.activation,
                "seed": int(r.seed),
                "setting": f"dataset={r.dataset}, depth={int(r.depth)}",
                "score": -math.inf if r.diverged == 1 else float(r.test_accuracy),
                "outcome": "diverged" if r.diverged == 1 else "",
            }
            for r in summary["trials"].itertuples()
        ]
        return property_frame(rows)


STUDY = RealData()
