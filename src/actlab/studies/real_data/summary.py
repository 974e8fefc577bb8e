"""Statistics over seeds of the real_data study, from stored results only."""

from __future__ import annotations

from typing import Any

from actlab.studies.base import trial_table

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
