"""Experiment 3: the protocol's divergence rules, the three states, and the report."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import actlab
from actlab import reference
from actlab.activations import get_activation
from actlab.data import sine_data
from actlab.engine import DivergenceRule, layer_sizes
from actlab.studies import get_study
from actlab.studies.base import RunContext, initial_params
from actlab.studies.outcomes import classify

TINY = {
    "lrs": [0.01, 1.0],
    "lr_depth": 3,
    "lr_steps": 15,
    "depths": [2, 4],
    "depth_steps": 15,
    "width": 8,
    "n_points": 30,
}


@pytest.mark.parametrize(
    "diverged, loss, state",
    [
        (True, 0.01, "diverged"),
        (False, 0.1, "learned"),
        (False, 0.49, "stuck"),  # a constant output scores ~ the variance (0.5 here)
        (False, 4.99, "stuck"),  # just under 10x the variance
        (False, 5.01, "failed"),  # just over it
        (False, 3830.0, "failed"),  # the original's "not diverged" Sigmoid at loss 3830
        (False, math.nan, "failed"),
    ],
)
def test_classifier_keeps_four_states_apart(diverged, loss, state):
    assert classify(diverged, loss, target_variance=0.5, learned_below=0.5) == state


def test_trials_follow_the_protocol_grid():
    study = get_study("stability")
    cfg = study.Config()
    trials = study.trials(cfg, ["ReLU", "Tanh"], seeds=2)
    lr_trials = [t for t in trials if t.params["part"] == "lr"]
    depth_trials = [t for t in trials if t.params["part"] == "depth"]
    assert sorted({t.params["lr"] for t in lr_trials}) == [0.001, 0.01, 0.1, 0.5, 1.0]
    assert {(t.params["depth"], t.params["optimizer"], t.params["steps"]) for t in lr_trials} == {
        (10, "sgd", 100)
    }
    assert sorted({t.params["depth"] for t in depth_trials}) == [5, 10, 20, 50, 100]
    assert {(t.params["lr"], t.params["optimizer"], t.params["steps"]) for t in depth_trials} == {
        (0.01, "adam", 200)
    }
    assert len(trials) == 2 * 2 * (5 + 5)


def test_study_rows_equal_the_reference_loop_in_exact_mode():
    """SGD with both rules at mixed learning rates (some diverge) in one stack, against
    one nn.Sequential per trial."""
    study = get_study("stability")
    cfg = study.Config(**{**TINY, "parts": ["lr"], "lrs": [0.05, 0.9, 3.0]})
    acts = {n: get_activation(n) for n in ("Linear", "Tanh", "ReLU")}
    trials = study.trials(cfg, list(acts), seeds=1)
    ctx = RunContext(run_seed=1, config=cfg, activations=acts, exact=True)
    batch = [t for t in trials if t.activation == "Tanh"] + [
        t for t in trials if t.activation != "Tanh"
    ]
    batch.sort(key=lambda t: list(acts).index(t.activation))
    rows = study.run(batch, ctx)
    x, y = sine_data(cfg.n_points)
    sizes = layer_sizes(1, cfg.width, cfg.lr_depth)
    diverged = []
    for trial, trial_rows in zip(batch, rows, strict=True):
        ref, _ = reference.train(
            initial_params(ctx, sizes, "xavier_uniform", trial.seed),
            acts[trial.activation].fn,
            x,
            y,
            "sgd",
            trial.params["lr"],
            cfg.lr_steps,
            DivergenceRule(grad_limit=cfg.grad_limit),
        )
        got = {r["metric"]: r["value"] for r in trial_rows if r["metric"] != "loss"}
        losses = [r["value"] for r in trial_rows if r["metric"] == "loss"]
        assert losses == [v for v in ref.losses[0] if not math.isnan(v)]
        assert got["diverged"] == float(ref.diverged[0])
        assert got["steps_completed"] == ref.steps_completed[0]
        assert np.array_equal([got["loss_after_training"]], ref.loss_after, equal_nan=True)
        assert got["learned"] + got["stuck"] + got["diverged"] == 1.0
        diverged.append(got["diverged"])
    assert 0 < sum(diverged) < len(diverged)  # both paths exercised


def test_a_diverging_config_is_flagged_and_never_learned(tmp_path):
    run = actlab.run(
        config=actlab.RunConfig(
            activations=["Linear"],
            studies=["stability"],
            seeds=1,
            study_config={"stability": {**TINY, "parts": ["lr"], "lrs": [5.0]}},
        ),
        out=tmp_path / "r",
        report=False,
    )
    df = run.results
    value = dict(zip(df["metric"], df["value"], strict=False))
    assert value["diverged"] == 1.0 and value["learned"] == 0.0 and value["stuck"] == 0.0
    assert value["final_loss"] < 1e6  # the protocol's last recorded loss stays finite


def test_end_to_end_report_and_batching_invariance(tmp_path):
    def go(name, **extra):
        return actlab.run(
            config=actlab.RunConfig(
                activations=["Sigmoid", "ReLU", "Tanh"],
                studies=["stability"],
                seeds=2,
                study_config={"stability": TINY},
                **extra,
            ),
            out=tmp_path / name,
        )

    full, split = go("full"), go("split", max_members=1)
    key = ["trial", "metric", "step"]
    a = full.results.sort_values(key).reset_index(drop=True)
    b = split.results.sort_values(key).reset_index(drop=True)
    assert a.equals(b)
    report = full.report_path.read_text()
    assert "3a, learning-rate stress" in report and "3b, depth stress" in report
    assert (full.path / "figures" / "stability.png").exists()
    assert not (full.path / "figures" / "stability.svg").exists()
    # each trial is in exactly one state
    states = a[a["metric"].isin(["learned", "stuck", "failed", "diverged"])]
    assert (states.groupby("trial")["value"].sum() == 1).all()


def test_properties_score_each_setting_learned_or_not(tmp_path):
    run = actlab.run(
        config=actlab.RunConfig(
            activations=["ReLU"], studies=["stability"], seeds=2, study_config={"stability": TINY}
        ),
        out=tmp_path / "r",
        report=False,
    )
    df = run.results
    study = get_study("stability")
    props = study.properties(study.summarize(df), None)
    lr_rob = props[props["property"] == "learning-rate robustness"]
    learned = df[(df["metric"] == "learned") & (df["part"] == "lr")]
    assert len(lr_rob) == len(learned) == 2 * len(TINY["lrs"])
    by_block = lr_rob.set_index(["seed", "setting"])
    for r in learned.itertuples():
        assert by_block.loc[(r.seed, f"lr={r.lr:g}"), "score"] == r.value
    # the regime of "a high learning rate" is the sweep's highest rate, of every seed
    regime = lr_rob[lr_rob["regime"]]
    assert set(regime["setting"]) == {f"lr={max(TINY['lrs']):g}"} and len(regime) == 2
    assert {s.better for s in study.property_specs} == {"higher"}
    assert torch.is_tensor(sine_data(5)[0])
