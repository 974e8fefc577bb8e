"""Statistics over seeds of the capacity study, from stored results only."""

from __future__ import annotations

from typing import Any

from actlab.studies.base import trial_table
from actlab.studies.capacity.config import MSE_METRICS

RUN_METRICS = ("diverged", "ended_plateau", "fitted", "steps_completed", "target_variance")


def trial_metrics(results):
    """One row per trial: activation, target, seed and each scalar metric as a column, with
    log10 columns for the MSEs (NaN for a diverged trial; an MSE of exactly 0 floored).
    Runs stored before `ended_plateau`, `fitted` and `target_variance` existed have NaN
    there."""
    from actlab.stats import log10_floored

    wide = trial_table(
        results, "capacity", [*MSE_METRICS, *RUN_METRICS], ["activation", "target", "seed"]
    )
    for metric in MSE_METRICS:
        wide[f"log10_{metric}"], _ = log10_floored(wide[metric])
    return wide


def summarize(results) -> dict[str, Any]:
    """`cells`: per activation x target, mean and 95% interval over seeds of log10 test and
    extrapolation MSE (prefixed `test_` and `extrap_`, over the seeds that did not
    diverge), diverged count, seed count and exact zeros (`test_zeros`, `extrap_zeros`);
    how the runs that did not diverge ended (see the module docstring): `plateaued`,
    `improving` and `constant` counts (all 0 for runs stored before these existed),
    `steps_median` (their median steps) and `variance` (the target's, on the test grid).
    `predictions`: per activation x target x grid point, the mean prediction over the seeds
    that did not diverge. `trials`: the per-trial table the two are computed from.
    `curves`: the stored training losses (`loss_curves`)."""
    from actlab.stats import describe

    wide = trial_metrics(results)
    keys = ["activation", "target"]
    ok = wide["diverged"] != 1
    flat = ok & (wide["ended_plateau"] == 1)
    wide["_plateaued"] = (flat & (wide["fitted"] == 1)).astype(int)
    wide["_constant"] = (flat & (wide["fitted"] == 0)).astype(int)
    wide["_improving"] = (ok & (wide["ended_plateau"] == 0)).astype(int)
    wide["_steps"] = wide["steps_completed"].where(ok)
    cells = (
        wide.groupby(keys, sort=False)
        .agg(
            diverged=("diverged", "sum"),
            n_seeds=("diverged", "count"),
            plateaued=("_plateaued", "sum"),
            improving=("_improving", "sum"),
            constant=("_constant", "sum"),
            steps_median=("_steps", "median"),
            variance=("target_variance", "mean"),
        )
        .reset_index()
    )
    wide = wide.drop(columns=["_plateaued", "_improving", "_constant", "_steps"])
    for metric, prefix in (("test_mse", "test_"), ("extrap_mse", "extrap_")):
        stats = describe(wide, keys, value=f"log10_{metric}")
        stats = stats.rename(columns={c: prefix + c for c in stats.columns if c not in keys})
        zeros = wide.groupby(keys, sort=False)[metric].agg(lambda v: int((v == 0).sum()))
        stats = stats.merge(zeros.rename(f"{prefix}zeros").reset_index(), on=keys)
        cells = cells.merge(stats, on=keys)
    df = results[(results["study"] == "capacity") & results["step"].notna()]
    df = df[df["metric"].isin(["prediction", "extrap_prediction"])]
    predictions = (
        df.groupby(["activation", "target", "metric", "step"], sort=False)["value"]
        .mean()
        .reset_index()
    )
    return {
        "cells": cells,
        "predictions": predictions,
        "trials": wide,
        "curves": loss_curves(results),
    }


def loss_curves(results):
    """The training loss per recorded step of every capacity trial: activation, target,
    seed, step, value and `diverged` (the trial's 1 / 0). The loss at step s is the one
    recorded before the s-th update; a run has none after it stopped. Empty for runs
    stored before these rows existed."""
    import pandas as pd

    columns = ["activation", "target", "seed", "step", "value", "diverged"]
    df = results[results["study"] == "capacity"]
    loss = df[(df["metric"] == "loss") & df["step"].notna()]
    if loss.empty:
        return pd.DataFrame(columns=columns)
    diverged = df[df["metric"] == "diverged"].set_index("trial")["value"]
    out = loss.assign(diverged=loss["trial"].map(diverged).fillna(0))[columns]
    return out.astype({"step": int, "value": float}).reset_index(drop=True)


def cell_lookup(cells, prefix: str):
    """The cells indexed by (activation, target), each row told which of its MSEs to show
    (`prefix`: "test_" or "extrap_")."""
    table = cells.copy()
    table["_prefix"] = prefix
    return table.set_index(["activation", "target"])
