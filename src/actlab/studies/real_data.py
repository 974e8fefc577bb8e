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
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from actlab.report.text import pct
from actlab.studies.base import (
    PropertySpec,
    ReportContext,
    RunContext,
    Section,
    Study,
    Trial,
    build_stack,
    learned_rows,
    nan_if,
    property_frame,
    trial_table,
)


@dataclass(frozen=True)
class DatasetInfo:
    loader: str  # the sklearn.datasets function; each reads files bundled with sklearn
    description: str
    features: int
    class_counts: tuple[int, ...]  # samples per class, label 0 first

    @property
    def samples(self) -> int:
        return sum(self.class_counts)

    @property
    def classes(self) -> int:
        return len(self.class_counts)

    @property
    def majority(self) -> float:
        """Share of the largest class: the accuracy of always guessing it."""
        return max(self.class_counts) / self.samples


# Shapes and class counts are known up front (tests check them against the loaded data),
# so planning and validation never need to load anything.
DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "load_digits",
        "handwritten digits, 8x8 pixels",
        64,
        (178, 182, 177, 183, 181, 182, 181, 179, 174, 180),
    ),
    "breast_cancer": DatasetInfo("load_breast_cancer", "Wisconsin breast cancer", 30, (212, 357)),
    "wine": DatasetInfo("load_wine", "wine cultivars", 13, (59, 71, 48)),
}

DatasetName = Literal["digits", "breast_cancer", "wine"]


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    datasets: list[DatasetName] = Field(["digits"], min_length=1)
    depths: list[int] = Field([1, 3, 6], min_length=1, description="hidden layers")
    width: int = Field(64, ge=1, le=8192)
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    max_epochs: int = Field(300, ge=1, le=1_000_000, description="full-batch steps at most")
    patience: int = Field(
        25, ge=1, le=1_000_000, description="epochs without a lower validation loss that stop"
    )
    train_fraction: float = Field(0.6, gt=0, lt=1)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    target_accuracy: float = Field(
        0.9, gt=0, le=1, description="validation accuracy counted by epochs_to_target"
    )
    loss_limit: float = Field(1e6, gt=0, description="loss that marks a run diverged")

    @field_validator("datasets")
    @classmethod
    def _distinct_datasets(cls, datasets: list[str]) -> list[str]:
        if len(set(datasets)) != len(datasets):
            raise ValueError(f"datasets listed twice: {datasets}")
        return datasets

    @field_validator("depths")
    @classmethod
    def _sane_depths(cls, depths: list[int]) -> list[int]:
        bad = [d for d in depths if not 1 <= d <= 1000]
        if bad:
            raise ValueError(f"depths must be between 1 and 1000 (got {bad[0]})")
        if len(set(depths)) != len(depths):
            raise ValueError(f"depths listed twice: {depths}")
        return depths

    @model_validator(mode="after")
    def _fractions(self) -> Config:
        total = self.train_fraction + self.val_fraction + self.test_fraction
        if abs(total - 1.0) > 1e-9:
            raise ValueError(
                "train_fraction + val_fraction + test_fraction must be 1 "
                f"(got {self.train_fraction:g} + {self.val_fraction:g} + "
                f"{self.test_fraction:g} = {total:g})"
            )
        for name in self.datasets:
            for label, sizes in enumerate(split_sizes(DATASETS[name].class_counts, self)):
                if min(sizes) < 1:
                    raise ValueError(
                        f"the split fractions leave class {label} of {name} with no sample "
                        f"in some split (train, val, test = {sizes}); use larger fractions"
                    )
        return self


# -- data ---------------------------------------------------------------------------------------
@cache
def load_dataset(name: str):
    """(x float64 [n, features], y int64 [n]) of a bundled data set; read from the files
    scikit-learn ships, never downloaded."""
    import numpy as np
    from sklearn import datasets

    try:
        info = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset '{name}'; available: {', '.join(DATASETS)}") from None
    bunch = getattr(datasets, info.loader)()
    x = np.ascontiguousarray(bunch.data, dtype=np.float64)
    y = np.ascontiguousarray(bunch.target, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def class_split(n: int, cfg: Config) -> tuple[int, int, int]:
    """(train, val, test) counts for one class of n samples: rounded fractions, test the rest."""
    n_train = math.floor(cfg.train_fraction * n + 0.5)
    n_val = min(math.floor(cfg.val_fraction * n + 0.5), n - n_train)
    return n_train, n_val, n - n_train - n_val


def split_sizes(class_counts, cfg: Config):
    """Per class (train, val, test) counts; equal for every seed."""
    return [class_split(int(c), cfg) for c in class_counts]


def split_indices(name: str, seed: int, run_seed: int, cfg: Config):
    """Stratified (train, val, test) index arrays, sorted, keyed by run seed, data set and
    seed only: every activation gets the same split within a seed."""
    import numpy as np
    import torch

    from actlab.engine import generator

    _, y = load_dataset(name)
    gen = generator(run_seed, "real_data", "split", name, seed)
    parts: tuple[list, list, list] = ([], [], [])
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        order = torch.randperm(len(members), generator=gen).numpy()
        shuffled = members[order]
        n_train, n_val, _ = class_split(len(members), cfg)
        parts[0].append(shuffled[:n_train])
        parts[1].append(shuffled[n_train : n_train + n_val])
        parts[2].append(shuffled[n_train + n_val :])
    return tuple(np.sort(np.concatenate(p)) for p in parts)


@dataclass
class SplitData:
    """One seed's standardised splits, as float64 numpy arrays and int64 labels."""

    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    x_test: Any
    y_test: Any


def prepare(name: str, seed: int, run_seed: int, cfg: Config) -> SplitData:
    """The seed's split, standardised with the training split's mean and standard
    deviation; features constant on the training split become 0."""
    import numpy as np

    x, y = load_dataset(name)
    train, val, test = split_indices(name, seed, run_seed, cfg)
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    scale = np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)

    def standardise(idx):
        return (x[idx] - mean) * scale

    return SplitData(
        standardise(train), y[train], standardise(val), y[val], standardise(test), y[test]
    )


# -- training -----------------------------------------------------------------------------------
@dataclass
class Fit:
    """A trained stack with each member's best-validation parameters restored."""

    model: Any  # StackedMLP, best parameters restored
    last_flat: Any  # [M, P] the parameters when each member stopped
    data: dict[str, Any]  # split -> (x [M, n, in], y [M, n])
    diverged: Any  # bool [M] numpy
    best_epoch: Any  # int [M]
    epochs_run: Any  # int [M]
    val_accuracy: list[list[float]]  # per member, epochs 0 .. its last


def member_losses(model, logits, y):
    """Per-member mean cross-entropy, [M]: one reduction per member (batch invariant)."""
    import torch
    import torch.nn.functional as F

    return torch.stack([F.cross_entropy(logits[m], y[m]) for m in range(model.n_members)])


def evaluate(model, x, y):
    """(loss float64 [M], accuracy float64 [M]) under no_grad."""
    import torch

    with torch.no_grad():
        logits = model.forward(x)
        loss = member_losses(model, logits, y).double()
        accuracy = (logits.argmax(dim=2) == y).double().mean(dim=1)
    return loss, accuracy


def stacked_data(trials: list[Trial], ctx: RunContext) -> dict[str, Any]:
    """Per-member tensors: x [M, n, features] and y [M, n] for each split."""
    import numpy as np
    import torch

    cfg: Config = ctx.config
    name = trials[0].params["dataset"]
    per_seed = {s: prepare(name, s, ctx.run_seed, cfg) for s in sorted({t.seed for t in trials})}
    out = {}
    for split in ("train", "val", "test"):
        xs = np.stack([getattr(per_seed[t.seed], f"x_{split}") for t in trials])
        ys = np.stack([getattr(per_seed[t.seed], f"y_{split}") for t in trials])
        out[split] = (
            torch.from_numpy(xs).to(ctx.device, ctx.torch_dtype),
            torch.from_numpy(ys).to(ctx.device),
        )
    return out


def fit(trials: list[Trial], ctx: RunContext) -> Fit:
    """Train every trial of a batch with early stopping; see the module docstring."""
    import numpy as np

    from actlab.engine import DivergenceRule, layer_sizes, make_optimizer, train
    from actlab.engine.feeds import FullBatch
    from actlab.engine.monitors import EarlyStopping

    cfg: Config = ctx.config
    p = trials[0].params
    info = DATASETS[p["dataset"]]
    data = stacked_data(trials, ctx)
    model = build_stack(
        trials, ctx, layer_sizes(info.features, p["width"], p["depth"], out_dim=info.classes)
    )
    optimizer = make_optimizer(p["optimizer"], model, [t.params["lr"] for t in trials])
    validation = FullBatch(*data["val"], per_member=True)

    def validate(stack, index):
        return evaluate(stack, *validation.batch(0, index))

    stopping = EarlyStopping(validate, cfg.patience, cfg.loss_limit)
    run = train(
        model,
        FullBatch(*data["train"], per_member=True),
        member_losses,
        optimizer,
        cfg.max_epochs,
        DivergenceRule(loss_limit=cfg.loss_limit),
        monitors=[stopping],
    )
    return Fit(
        model=model,
        last_flat=stopping.last_flat,
        data=data,
        diverged=run.diverged.cpu().numpy(),
        best_epoch=stopping.best_step.cpu().numpy(),
        epochs_run=np.asarray(optimizer.steps),
        val_accuracy=stopping.history,
    )


def first_reaching(history: list[float], target: float) -> float:
    """The first epoch whose validation accuracy is at least the target; NaN if none."""
    return next((float(e) for e, a in enumerate(history) if a >= target), math.nan)


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
        cfg: Config = ctx.config
        result = fit(trials, ctx)
        test_loss, test_acc = evaluate(result.model, *result.data["test"])
        train_loss, _ = evaluate(result.model, *result.data["train"])
        rows = []
        for m in range(len(trials)):
            diverged = bool(result.diverged[m])
            history = result.val_accuracy[m]
            trial_rows = [
                {"metric": "test_accuracy", "value": nan_if(diverged, test_acc[m])},
                {"metric": "test_loss", "value": nan_if(diverged, test_loss[m])},
                {"metric": "final_loss", "value": nan_if(diverged, train_loss[m])},
                {"metric": "best_epoch", "value": nan_if(diverged, result.best_epoch[m])},
                {
                    "metric": "epochs_to_target",
                    "value": nan_if(diverged, first_reaching(history, cfg.target_accuracy)),
                },
                {"metric": "epochs_run", "value": float(result.epochs_run[m])},
                {"metric": "diverged", "value": float(diverged)},
            ]
            trial_rows += learned_rows(result.model, m, diverged)
            trial_rows += [
                {"metric": "val_accuracy", "step": epoch, "value": float(v)}
                for epoch, v in enumerate(history)
            ]
            rows.append(trial_rows)
        return rows

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


# -- statistics ---------------------------------------------------------------------------------
SCALARS = (
    "test_accuracy",
    "test_loss",
    "final_loss",
    "best_epoch",
    "epochs_to_target",
    "epochs_run",
    "diverged",
)


def trial_metrics(results):
    """One row per trial: dataset, depth, activation, seed and each scalar metric."""
    wide = trial_table(results, "real_data", SCALARS, ["dataset", "depth", "activation", "seed"])
    wide["depth"] = wide["depth"].astype(int)
    return wide


def summarize(results) -> dict[str, Any]:
    """`cells`: per dataset x depth x activation, mean and 95% interval over seeds of test
    accuracy (`acc_*`) and of epochs to the target over the seeds that reached it
    (`ett_*`), with counts of seeds, of seeds that reached the target and of diverged
    seeds. `curves`: per dataset x depth x activation x epoch, the mean validation accuracy
    over the seeds that did not diverge (a member that stopped early keeps its last value).
    `trials`: the per-trial table."""
    import pandas as pd

    from actlab.stats import describe

    wide = trial_metrics(results)
    keys = ["dataset", "depth", "activation"]
    alive = wide[wide["diverged"] == 0]
    cells = (
        wide.groupby(keys, sort=False)
        .agg(
            n_seeds=("seed", "count"),
            diverged=("diverged", "sum"),
            reached=("epochs_to_target", lambda s: int(s.notna().sum())),
            test_loss=("test_loss", "mean"),
            best_epoch=("best_epoch", "mean"),
        )
        .reset_index()
    )
    cells["diverged"] = cells["diverged"].astype(int)
    for metric, prefix in (("test_accuracy", "acc_"), ("epochs_to_target", "ett_")):
        stats = describe(wide, keys, value=metric)
        stats = stats.rename(columns={c: prefix + c for c in stats.columns if c not in keys})
        cells = cells.merge(stats, on=keys, how="left")
    # A t interval over few seeds can reach past 0% or 100%; an accuracy cannot.
    cells["acc_ci_low"] = cells["acc_ci_low"].clip(lower=0.0)
    cells["acc_ci_high"] = cells["acc_ci_high"].clip(upper=1.0)

    df = results[(results["study"] == "real_data") & (results["metric"] == "val_accuracy")]
    curves = []
    valid = set(map(tuple, alive[[*keys, "seed"]].itertuples(index=False, name=None)))
    if not df.empty:
        df = df.assign(depth=df["depth"].astype(int), seed=df["seed"].astype(int))
        df = df[[k in valid for k in zip(*(df[c] for c in [*keys, "seed"]), strict=True)]]
        for (dataset, depth, act), g in df.groupby(keys, sort=False):
            table = g.pivot_table(index="step", columns="seed", values="value")
            epochs = range(int(table.index.max()) + 1)
            table = table.reindex(epochs).ffill()
            curves.append(
                pd.DataFrame(
                    {
                        "dataset": dataset,
                        "depth": depth,
                        "activation": act,
                        "epoch": list(epochs),
                        "val_accuracy": table.mean(axis=1).to_numpy(),
                    }
                )
            )
    columns = [*keys, "epoch", "val_accuracy"]
    curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=columns)
    return {"cells": cells, "curves": curves, "trials": wide}


# -- text ---------------------------------------------------------------------------------------
def cell_text(row, seeds: int) -> str:
    """Test accuracy in % [95% interval], then epochs to the target (seeds reaching it)."""
    n, n_div = int(row["n_seeds"]), int(row["diverged"])
    if n_div == n:
        return f"diverged ({n_div} of {n})"
    text = pct(row["acc_mean"], 1) + "%"
    if seeds > 1 and math.isfinite(row["acc_ci_low"]):
        text += f" [{pct(row['acc_ci_low'], 1)}, {pct(row['acc_ci_high'], 1)}]"
    reached = int(row["reached"])
    if reached:
        text += f"; target at epoch {row['ett_mean']:.0f}"
        if seeds > 1:
            text += f" ({reached}/{n})"
    else:
        text += "; target not reached"
    if n_div:
        text += f"; {n_div} of {n} diverged"
    return text


def accuracy_table(cells, activations, dataset: str, depths: list[int], seeds: int) -> list[str]:
    table = cells[cells["dataset"] == dataset].set_index(["activation", "depth"])
    lines = [
        "| activation | " + " | ".join(f"depth {d}" for d in depths) + " |",
        "|---" * (len(depths) + 1) + "|",
    ]
    for act in activations:
        texts = [
            cell_text(table.loc[(act, d)], seeds) if (act, d) in table.index else "–"
            for d in depths
        ]
        lines.append(f"| {act} | " + " | ".join(texts) + " |")
    return lines


def report_markdown(summary, activations, datasets, rctx: ReportContext, accuracy, curves) -> str:
    cfg: Config = rctx.config
    cells = summary["cells"]
    one_seed = rctx.seeds == 1
    described = "; ".join(
        f"{d} ({DATASETS[d].description}: {DATASETS[d].samples} samples, "
        f"{DATASETS[d].features} features, {DATASETS[d].classes} classes)"
        for d in datasets
    )
    with_ci = "" if one_seed else " [95% interval over seeds]"
    lines = [
        "**Question.** Away from toy targets, on real if small classification data, how "
        "accurate and how fast to train is a network with each activation, and does that "
        "change with depth?",
        "",
        f"**Method.** Data sets bundled with scikit-learn (read from its installed files, "
        f"never downloaded): {described}. Per seed, one stratified split into "
        f"{cfg.train_fraction:.0%} training, {cfg.val_fraction:.0%} validation and "
        f"{cfg.test_fraction:.0%} test, the same for every activation; features "
        "standardised with the training split's mean and standard deviation. MLPs of "
        f"depth {', '.join(map(str, sorted({int(d) for d in cells['depth']})))} (hidden "
        f"layers) and width {cfg.width}, Xavier-uniform weights, zero biases, softmax "
        f"cross-entropy. Full-batch training: one {cfg.optimizer.capitalize()} step "
        f"(learning rate {cfg.lr:g}) per epoch on the whole training split, for at most "
        f"{cfg.max_epochs} epochs. Early stopping: the parameters with the lowest validation "
        f"loss are kept, training stops after {cfg.patience} epochs without a new lowest, "
        "and the test split is measured once, on the restored parameters. Epochs to target: "
        f"the first epoch whose validation accuracy reached {cfg.target_accuracy:.0%}. A run "
        f"whose loss becomes NaN, infinite or exceeds {cfg.loss_limit:g} is marked diverged "
        f"and left out of the statistics. {rctx.seeds} seed(s); within a seed all "
        "activations share the split and the initial weights, so comparisons are paired; "
        "95% intervals are t intervals over seeds, clipped to [0%, 100%].",
        "",
        f"![Test accuracy against depth](figures/{accuracy})",
        "",
        f"![Validation accuracy during training](figures/{curves})",
        "",
    ]
    if one_seed:
        lines += [
            "*One seed: these numbers are single samples; they carry no error bars and no "
            "ranking is tested.*",
            "",
        ]
    for dataset in datasets:
        depths = sorted(int(d) for d in cells[cells["dataset"] == dataset]["depth"].unique())
        lines += [
            f"**{dataset}**: test accuracy in %{with_ci}, then the mean epoch at which the "
            f"validation accuracy first reached {cfg.target_accuracy:.0%}"
            + ("" if one_seed else " (seeds that reached it)")
            + ":",
            "",
            *accuracy_table(cells, activations, dataset, depths, rctx.seeds),
            "",
        ]
    lines += ["**What the data says.**", ""]
    lines += [f"- {s}" for s in findings(summary, activations, datasets, rctx)]
    return "\n".join(lines)


def findings(summary, activations, datasets, rctx: ReportContext) -> list[str]:
    """Sentences computed from the results; nothing here is written in advance. The
    best-vs-runner-up comparisons (one per data set and depth) form one family, adjusted
    by Holm's method."""
    from actlab.stats import paired_by_seed, versus_runner_up, with_holm

    cfg: Config = rctx.config
    cells, wide = summary["cells"], summary["trials"]
    cells = cells[cells["activation"].isin(activations)]
    wide = wide[wide["activation"].isin(activations)]
    out = []
    pending = []
    for dataset in datasets:
        at_set = cells[cells["dataset"] == dataset]
        for depth in sorted(int(d) for d in at_set["depth"].unique()):
            at = at_set[(at_set["depth"] == depth) & at_set["acc_mean"].notna()]
            at = at.sort_values("acc_mean", ascending=False, kind="stable")
            label = f"{dataset}, depth {depth}"
            if at.empty:
                out.append(f"{label}: every run diverged; nothing to compare.")
                continue
            best = at.iloc[0]
            sentence = (
                f"{label}: highest mean test accuracy with {best['activation']} "
                f"({pct(best['acc_mean'], 1)}%)"
            )
            if len(at) == 1:
                out.append(sentence + "; no other activation has a valid run.")
                continue
            runner = at.iloc[1]
            sentence += f", then {runner['activation']} ({pct(runner['acc_mean'], 1)}%)"
            if rctx.seeds == 1:
                out.append(sentence + "; one seed, so the ranking is not tested.")
                continue
            setting = wide[(wide["dataset"] == dataset) & (wide["depth"] == depth)]
            c = paired_by_seed(setting, "test_accuracy", best["activation"], runner["activation"])
            pending.append((len(out), best["activation"], runner["activation"], sentence, c))
            out.append("")
        # Depth: the mean over activations (valid runs) per depth.
        valid = wide[(wide["dataset"] == dataset) & wide["test_accuracy"].notna()]
        if valid["depth"].nunique() > 1:
            per_depth = valid.groupby("depth")["test_accuracy"].mean()
            listed = ", ".join(f"depth {int(d)} {pct(v, 1)}%" for d, v in per_depth.items())
            out.append(
                f"{dataset}: mean test accuracy over activations and seeds by depth: {listed}."
            )
        # Speed: fewest epochs to the target, per depth, among cells every seed reached.
        fast = at_set[(at_set["reached"] == at_set["n_seeds"]) & (at_set["reached"] > 0)]
        if not fast.empty:
            parts = []
            for depth, g in fast.groupby("depth", sort=True):
                top = g.sort_values("ett_mean", kind="stable").iloc[0]
                parts.append(
                    f"depth {int(depth)} {top['activation']} ({top['ett_mean']:.0f} epochs)"
                )
            out.append(
                f"{dataset}: fewest mean epochs to {cfg.target_accuracy:.0%} validation "
                f"accuracy (among activations that reached it in every seed; descriptive, "
                f"untested): {'; '.join(parts)}."
            )

    family = f"{len(pending)} data set x depth settings"
    for (i, best, runner, sentence, _), c in zip(
        pending, with_holm([p[-1] for p in pending]), strict=True
    ):
        diff = f"{100 * c.mean_diff:+.1f} points [{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}]"
        out[i] = f"{sentence}: {versus_runner_up(best, runner, c, diff, family)}."

    never = cells[(cells["reached"] == 0) & (cells["diverged"] < cells["n_seeds"])]
    some = cells[(cells["reached"] > 0) & (cells["reached"] < cells["n_seeds"])]
    if never.empty and some.empty:
        out.append(
            f"Every run that did not diverge reached {cfg.target_accuracy:.0%} validation "
            f"accuracy within {cfg.max_epochs} epochs."
        )
    if not never.empty:
        parts = [f"{r.activation} ({r.dataset}, depth {r.depth})" for r in never.itertuples()]
        out.append(
            f"Never reached {cfg.target_accuracy:.0%} validation accuracy within "
            f"{cfg.max_epochs} epochs, in any seed: {'; '.join(parts)}."
        )
    if not some.empty:
        parts = [
            f"{r.activation} ({r.dataset}, depth {r.depth}: {r.reached} of {r.n_seeds})"
            for r in some.itertuples()
        ]
        out.append(f"Reached the target in some seeds only: {'; '.join(parts)}.")

    alive = wide[wide["diverged"] == 0]
    if not alive.empty:
        unfinished = int((alive["epochs_run"] >= cfg.max_epochs).sum())
        if unfinished:
            out.append(
                f"{unfinished} of {len(alive)} runs were still finding lower validation "
                f"losses when they reached the {cfg.max_epochs}-epoch limit (no early stop): "
                "more epochs could change their numbers."
            )
        else:
            out.append(f"All {len(alive)} runs stopped early, before the epoch limit.")

    div = wide[wide["diverged"] == 1]
    if div.empty:
        out.append(f"No run diverged ({len(wide)} runs).")
    else:
        parts = [
            f"{act} on {dataset} at depth {depth} ({len(g)} of {rctx.seeds})"
            for (act, dataset, depth), g in div.groupby(
                ["activation", "dataset", "depth"], sort=False
            )
        ]
        out.append(
            f"{len(div)} of {len(wide)} runs diverged and are left out of the statistics: "
            + "; ".join(parts)
            + "."
        )
    return out


# -- figures ------------------------------------------------------------------------------------
def plot_accuracy(cells, activations, datasets, seeds: int, path: Path) -> Path:
    """Test accuracy against depth, one line per activation with its 95% band, one panel
    per data set; the dashed line is the share of the largest class."""
    from actlab.report.figures import activation_colours, pyplot, save

    plt = pyplot()
    colours = activation_colours(activations)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=True):
        at = cells[cells["dataset"] == dataset]
        info = DATASETS[dataset]
        for act in activations:
            rows = at[at["activation"] == act].sort_values("depth")
            rows = rows[rows["acc_mean"].notna()]
            if rows.empty:
                continue
            ax.plot(
                rows["depth"],
                100 * rows["acc_mean"],
                marker="o",
                ms=4,
                lw=1.3,
                color=colours[act],
                label=act,
            )
            if seeds > 1 and rows["acc_ci_low"].notna().any():
                ax.fill_between(
                    rows["depth"],
                    100 * rows["acc_ci_low"],
                    100 * rows["acc_ci_high"],
                    color=colours[act],
                    alpha=0.15,
                    lw=0,
                )
        ax.axhline(100 * info.majority, color="grey", ls="--", lw=1, label="largest class")
        depths = sorted(int(d) for d in at["depth"].unique())
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.set_xlabel("depth (hidden layers)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(top=101)
        ax.set_title(f"{dataset} ({info.classes} classes)", fontsize=10)
        ax.grid(True, alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 9), fontsize=8, frameon=False
    )
    note = "mean over seeds, 95% band" if seeds > 1 else "one seed, no error bars"
    fig.suptitle(f"Test accuracy on held-out data ({note})")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return save(fig, path)


def plot_curves(curves, activations, datasets, cfg: Config, path: Path) -> Path:
    """Mean validation accuracy against epoch at the deepest depth, one panel per data set."""
    from matplotlib.ticker import MaxNLocator

    from actlab.report.figures import activation_colours, pyplot, save

    plt = pyplot()
    colours = activation_colours(activations)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=True):
        at = curves[curves["dataset"] == dataset]
        if at.empty:
            ax.set_title(f"{dataset}: every run diverged", fontsize=10)
            continue
        depth = int(at["depth"].max())
        at = at[at["depth"] == depth]
        for act in activations:
            rows = at[at["activation"] == act].sort_values("epoch")
            if rows.empty:
                continue
            ax.plot(
                rows["epoch"], 100 * rows["val_accuracy"], lw=1.2, color=colours[act], label=act
            )
        ax.axhline(100 * cfg.target_accuracy, color="grey", ls="--", lw=1, label="target accuracy")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch (one full-batch step each)")
        ax.set_ylabel("validation accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{dataset}, depth {depth}", fontsize=10)
        ax.grid(True, alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 9), fontsize=8, frameon=False
    )
    fig.suptitle(
        "Validation accuracy during training at the deepest depth\n(mean over the seeds "
        "that did not diverge; a run stopped early keeps its last value)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return save(fig, path)


STUDY = RealData()
