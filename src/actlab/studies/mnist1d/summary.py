"""Statistics over seeds of the mnist1d study, from stored results only."""

from __future__ import annotations

import math
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


# Means this close (relative) are one number: accuracies are counts of correct test
# sequences, so two equal counts whose means differ in the last bits of a float are a tie.
TIE_REL = 1e-9


def top_group(means: dict[str, float]) -> list[str]:
    """The activations whose mean equals the highest one (to TIE_REL), in the given order:
    one name, or every name of an exact tie for the top."""
    finite = {a: m for a, m in means.items() if m == m}
    if not finite:
        return []
    top = max(finite.values())
    return [a for a, m in finite.items() if math.isclose(m, top, rel_tol=TIE_REL, abs_tol=0.0)]


def reference_activation(activations: list[str]) -> str:
    """The pre-named reference the paired tests' table column is read against: ReLU when
    the run has it, else the run's first activation (never one the data picked)."""
    return "ReLU" if "ReLU" in activations else activations[0]


def all_pairs(wide, cells, arch: str, activations: list[str]):
    """(names, tests) for one architecture: the activations with a mean test accuracy, in
    the run's order, and for every pair (a, b) of them, a before b, the paired sign-flip
    test of a - b over seeds, Holm-adjusted over all the architecture's pairs. No reference
    is picked from the data."""
    from actlab.stats import paired_by_seed, with_holm

    at = cells[(cells["architecture"] == arch) & cells["acc_mean"].notna()]
    present = set(at["activation"])
    names = [a for a in activations if a in present]
    table = wide[wide["architecture"] == arch]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    tests = with_holm([paired_by_seed(table, "test_accuracy", a, b) for a, b in pairs])
    return names, dict(zip(pairs, tests, strict=True))


def versus(tests: dict, a: str, b: str):
    """The test of a against b from all_pairs, oriented so that mean_diff is a - b."""
    from dataclasses import replace

    if (a, b) in tests:
        return tests[(a, b)]
    t = tests[(b, a)]
    return replace(t, mean_diff=-t.mean_diff, ci_low=-t.ci_high, ci_high=-t.ci_low)
