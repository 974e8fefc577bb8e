"""Numerical faults inside a run, end to end through a study: an activation that overflows
(inf) or returns NaN for large inputs makes its own networks diverge, recorded as such, and
never changes a bit of any other network, in the same stack or elsewhere.
(test_engine.py checks the engine alone with a NaN planted in one member's weights.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import actlab
from actlab.plan import plan
from actlab.studies import get_study

# Finite on the validation grid [-10, 10] (so accepted), faulty beyond it: exp(x*x)
# overflows to inf (and its gradient to NaN) in float32, log(-x) is NaN.
OVERFLOW = "overflow=where(x > 10, exp(x*x), tanh(x))"
NAN = "nan=where(x > 10, log(-x), tanh(x))"
STABILITY = {"parts": ["lr"], "lr_depth": 4, "lr_steps": 30, "width": 16, "n_points": 40}
STABILITY["lr_optimizer"] = "adam"  # Tanh itself never diverges here; the faulty ones do
KEY = ["trial", "metric", "step"]


def go(tmp_path, name, activations, lrs, seeds):
    cfg = actlab.RunConfig(
        activations=activations,
        studies=["stability"],
        seeds=seeds,
        executor="local",
        study_config={"stability": {**STABILITY, "lrs": lrs}},
    )
    return actlab.run(config=cfg, out=tmp_path / name, report=False).results


def wide(df: pd.DataFrame) -> pd.DataFrame:
    scalars = df[df["step"].isna()]
    return scalars.pivot_table(index=["activation", "lr", "seed"], columns="metric", values="value")


def rows_of(df: pd.DataFrame, **where) -> pd.DataFrame:
    mask = np.ones(len(df), dtype=bool)
    for column, value in where.items():
        mask &= df[column] == value
    out = df[mask].sort_values(KEY).reset_index(drop=True)
    return out.dropna(axis=1, how="all")


def test_faulty_members_of_a_mixed_stack_diverge_alone(tmp_path):
    activations = [OVERFLOW, NAN, "Tanh"]
    # One seed and one learning rate: all three networks share one stack.
    study = get_study("stability")
    cfg = study.Config(**STABILITY, lrs=[1.0])
    names = ["overflow", "nan", "Tanh"]
    batches = plan(study, study.trials(cfg, names, 1), names, max_members=64)
    assert [[t.activation for t in b.trials] for b in batches] == [names]

    mixed = go(tmp_path, "mixed", activations, [1.0], seeds=1)
    alone = go(tmp_path, "alone", ["Tanh"], [1.0], seeds=1)

    # (An activation named 'nan' stays a name when the results are read back.)
    assert set(mixed["activation"]) == {"overflow", "nan", "Tanh"}
    table = wide(mixed)
    for name in ("overflow", "nan"):
        row = table.loc[(name, 1.0, 0)]
        assert row["diverged"] == 1 and row["learned"] == 0 and row["stuck"] == 0, name
        assert row["steps_completed"] < STABILITY["lr_steps"], name
    healthy = table.loc[("Tanh", 1.0, 0)]
    assert healthy["diverged"] == 0 and healthy["steps_completed"] == STABILITY["lr_steps"]
    # The healthy member's every number, loss curve included, as if it had run alone.
    pd.testing.assert_frame_equal(
        rows_of(mixed, activation="Tanh"), rows_of(alone, activation="Tanh"), check_exact=True
    )
    # The stability summary counts the divergences.
    summary = get_study("stability").summarize(mixed)["lr"].set_index("activation")
    assert summary.loc["overflow", "diverged"] == 1 and summary.loc["nan", "diverged"] == 1
    assert summary.loc["Tanh", "diverged"] == 0


@pytest.mark.parametrize("faulty", [OVERFLOW, NAN])
def test_a_fault_at_one_learning_rate_leaves_the_same_activations_other_members_alone(
    tmp_path, faulty
):
    name = faulty.split("=")[0]
    # Two seeds: each activation gets its own stack, holding both learning rates.
    both = go(tmp_path, "both", [faulty, "Tanh"], [0.01, 1.0], seeds=2)
    calm = go(tmp_path, "calm", [faulty], [0.01], seeds=2)

    table = wide(both)
    for seed in (0, 1):
        assert table.loc[(name, 1.0, seed), "diverged"] == 1
        assert table.loc[(name, 0.01, seed), "diverged"] == 0
    pd.testing.assert_frame_equal(
        rows_of(both, activation=name, lr=0.01),
        rows_of(calm, activation=name, lr=0.01),
        check_exact=True,
    )
    # Where its fault never fires, the activation is tanh, bit for bit.
    mine = rows_of(both, activation=name, lr=0.01)["value"].to_numpy()
    tanh = rows_of(both, activation="Tanh", lr=0.01)["value"].to_numpy()
    assert np.array_equal(mine, tanh)
