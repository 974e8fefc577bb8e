"""MNIST-1D in real architectures: the repository's MLP and CNN, and a small transformer,
each trained with the activation under test by the repository's protocol, against the
paper's table.

Data. `mnist1d.data.make_dataset` with the package's arguments (defaults: the paper's set,
seed 42; `[mnist1d.data]` passes any of them by name), generated here and cached per
argument set (actlab.data).

Training. Per architecture, every activation and seed in one stacked ensemble (engine,
architectures.py); PyTorch's default initialisation from a stream keyed by the run seed,
architecture, shape and seed (not the activation: common random numbers); Adam, cross-
entropy, batches taken in order (engine/classify.py on the engine's one loop, train.py;
reference.classify is the same for one network).

Rows per trial (no step): test_accuracy (at the end), best_test_accuracy (the highest of
the evaluations), final_loss (mean training loss over the last `eval_every` steps),
diverged, steps_run, step_time (seconds per training step per network, timed after
training on a stack of the batch's networks with the same activation; not with
`time_steps = false`). With `holdout`, the evaluation set ("test" in the rows) is the last
`holdout` training samples, which are not trained on; the test set is not used. Per evaluation
(step = the steps taken): test_accuracy, and train_loss (the mean since the previous one).
Columns: architecture, and the data arguments that differ from the package's defaults.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from actlab.engine.architectures import ARCHITECTURES as REGISTRY
from actlab.studies.base import (
    PropertySpec,
    ReportContext,
    RunContext,
    Section,
    Study,
    Trial,
    property_frame,
)
from actlab.studies.mnist1d.config import ARCHITECTURES, PAPER, Config


def data_columns(config: Config) -> dict[str, Any]:
    """The changed data arguments as trial parameters (lists written as text)."""
    return {
        k: (",".join(map(str, v)) if isinstance(v, list) else v)
        for k, v in config.changed_data().items()
    }


def architecture_words(config: Config, arch: str) -> str:
    """One architecture as the conditions name it (its entry in engine/architectures.py)."""
    from actlab.engine.architectures import describe

    return describe(arch, config.shape(arch))


def condition_words(config: Config, arch: str) -> str:
    """'the MNIST-1D repository's residual MLP (40 -> 100 -> 100 -> 10), PyTorch's default
    initialisation, Adam at learning rate 0.01, batches of 100, 1500 steps, cross-entropy;
    test accuracy on the 1000 test sequences of the paper's data set'."""
    arguments = config.data_arguments()
    n_train = round(arguments["num_samples"] * arguments["train_split"])
    n_test = arguments["num_samples"] - n_train
    changed = config.changed_data()
    data = (
        "the paper's data set"
        if not changed
        else "MNIST-1D generated with " + ", ".join(f"{k} = {v!r}" for k, v in changed.items())
    )
    evaluated = (
        f"accuracy on {config.holdout} held-out training sequences of {data} (not the test set; "
        f"trained on the other {n_train - config.holdout})"
        if config.holdout
        else f"test accuracy on the {n_test} test sequences of {data}"
    )
    return (
        f"{architecture_words(config, arch)}, PyTorch's default initialisation, Adam at "
        f"learning rate {config.lr:g}, batches of {config.batch}, {config.steps} steps, "
        f"cross-entropy; {evaluated}"
    )


class Mnist1d(Study):
    name = "mnist1d"
    learnable_activations = "trained"
    title = "MNIST-1D: MLP, CNN and transformer against the paper"
    Config = Config
    param_columns = ("architecture",)
    # Every activation and seed of an architecture in one stack: a CNN or transformer step
    # has many small operations, whose overhead a wide stack shares (benchmarks/).
    one_activation_per_stack = False

    def columns(self, config: Config) -> tuple[str, ...]:
        return (*self.param_columns, *data_columns(config))

    def trials(self, config: Config, activations: list[str], seeds: int) -> list[Trial]:
        data = data_columns(config)
        return [
            Trial(self.name, act, seed, {"architecture": arch, **data})
            for arch in config.architectures
            for act in activations
            for seed in range(seeds)
        ]

    def check(self, config: Config, activations) -> None:
        return None

    def _architecture(self, trial: Trial):
        from actlab.engine.architectures import get_architecture

        return get_architecture(trial.params["architecture"])

    def member_bytes(self, trial: Trial, config: Config) -> int:
        arch = trial.params["architecture"]
        test = round(
            config.data_arguments()["num_samples"] * (1 - config.data_arguments()["train_split"])
        )
        return self._architecture(trial).bytes(config.shape(arch), max(config.batch, test // 3))

    def param_count(self, trial: Trial, config: Config) -> int:
        return self._architecture(trial).n_params(config.shape(trial.params["architecture"]))

    def trial_cost(self, trial: Trial, config: Config) -> float:
        """Multiply-adds: the training steps (forward and backward, about 3x a forward
        pass) and the test evaluations."""
        arch = trial.params["architecture"]
        flops = self._architecture(trial).flops(config.shape(arch))
        test = config.data_arguments()["num_samples"] * (1 - config.data_arguments()["train_split"])
        evaluations = config.steps // config.eval_every + 1
        return flops * (3.0 * config.steps * config.batch + evaluations * test)

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        from actlab.studies.mnist1d.run import run_trials

        return run_trials(trials, ctx)

    def summarize(self, results):
        from actlab.studies.mnist1d.summary import summarize

        return summarize(results)

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        from actlab.studies.mnist1d.figures import plot_accuracy, plot_curves
        from actlab.studies.mnist1d.report import report_markdown

        cells = summary["cells"]
        present = set(cells["architecture"])
        architectures = [a for a in rctx.config.architectures if a in present]
        activations = [a for a in rctx.activations if a in set(cells["activation"])]
        paper = {arch: value for _, arch, value in PAPER if arch is not None}
        if rctx.config.changed_data() or rctx.config.holdout or "ReLU" not in activations:
            paper = {}
        accuracy = plot_accuracy(
            cells,
            activations,
            architectures,
            rctx.seeds,
            paper,
            figure_dir / "mnist1d_accuracy.png",
        )
        curves = plot_curves(
            summary["curves"], activations, architectures, figure_dir / "mnist1d_curves.png"
        )
        markdown = report_markdown(
            summary, activations, architectures, rctx, accuracy.name, curves.name
        )
        return Section(self.title, markdown, [accuracy, curves])

    property_specs = tuple(
        PropertySpec(
            f"MNIST-1D accuracy ({arch})",
            f"test accuracy on MNIST-1D after training, {arch}",
            "higher",
            situation=f"accuracy in {REGISTRY[arch].noun}",
        )
        for arch in ARCHITECTURES
    )

    def conditions(self, config: Config) -> dict[str, str]:
        """Per architecture's property, in words: that architecture only, its optimiser,
        initialisation, learning rate, batch and steps, and what the accuracy is measured
        on (flags that do not change the networks, such as timing, are left out)."""
        return {
            spec.name: condition_words(config, arch)
            for spec, arch in zip(self.property_specs, ARCHITECTURES, strict=True)
        }

    def properties(self, summary, rctx: ReportContext):
        """Per architecture and seed: test accuracy; a diverged run scores -inf."""
        specs = {f"MNIST-1D accuracy ({a})": a for a in ARCHITECTURES}
        by_arch = {a: name for name, a in specs.items()}
        rows = [
            {
                "property": by_arch[r.architecture],
                "activation": r.activation,
                "seed": int(r.seed),
                "score": -math.inf if r.diverged == 1 else float(r.test_accuracy),
                "outcome": "diverged" if r.diverged == 1 else "",
            }
            for r in summary["trials"].itertuples()
        ]
        rows.sort(key=lambda row: ARCHITECTURES.index(specs[row["property"]]))
        return property_frame(rows)


STUDY = Mnist1d()
