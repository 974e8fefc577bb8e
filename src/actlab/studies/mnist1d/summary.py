"""Statistics over seeds of the mnist1d study, from stored results only."""

from __future__ import annotations

from typing import Any

SCALARS = (
    "test_accuracy",
    "best_test_accuracy",
    "final_loss",
    "diverged",
    "steps_run",
    "step_time",
)
KEYS = ["architecture", "activation"]


def trial_metrics(results):
    from actlab.studies.base import trial_table

    return trial_table(results, "mnist1d", SCALARS, [*KEYS, "seed"])


def summarize(results) -> dict[str, Any]:
    """`trials`: one row per trial. `cells`: per architecture x activation, test accuracy
    (`acc_*`: mean, standard deviation, 95% t interval clipped to [0, 1], seeds with a value,
    lowest and highest seed), mean best accuracy during training, diverged seeds and the
    median step time. `curves`: per
    architecture x activation x step, the mean test accuracy and training loss over the
    seeds that did not diverge."""
    import pandas as pd

    from actlab.stats import describe

    wide = trial_metrics(results)
    cells = (
        wide.groupby(KEYS, sort=False)
        .agg(
            n_seeds=("seed", "count"),
            diverged=("diverged", "sum"),
            best_mean=("best_test_accuracy", "mean"),
            acc_min=("test_accuracy", "min"),
            acc_max=("test_accuracy", "max"),
            loss_mean=("final_loss", "mean"),
            step_time=("step_time", "median"),
        )
        .reset_index()
    )
    cells["diverged"] = cells["diverged"].astype(int)
    stats = describe(wide, KEYS, value="test_accuracy")
    stats = stats.rename(columns={c: "acc_" + c for c in stats.columns if c not in KEYS})
    cells = cells.merge(stats, on=KEYS, how="left")
    cells["acc_ci_low"] = cells["acc_ci_low"].clip(lower=0.0)
    cells["acc_ci_high"] = cells["acc_ci_high"].clip(upper=1.0)

    rows = results[(results["study"] == "mnist1d") & results["step"].notna()]
    alive = wide[wide["diverged"] == 0][[*KEYS, "seed"]]
    curves = pd.DataFrame(columns=[*KEYS, "step", "test_accuracy", "train_loss"])
    if not rows.empty and not alive.empty:
        rows = rows.assign(seed=rows["seed"].astype(int), step=rows["step"].astype(int))
        rows = rows.merge(alive, on=[*KEYS, "seed"])
        curves = (
            rows.pivot_table(index=[*KEYS, "step"], columns="metric", values="value", sort=False)
            .reset_index()
            .reindex(columns=[*KEYS, "step", "test_accuracy", "train_loss"])
        )
        curves.columns.name = None
    return {"trials": wide, "cells": cells, "curves": curves}
