"""The real-data study: offline loading, the stratified per-seed split, learning, early
stopping with restored parameters, divergence, batching invariance and the report."""

from __future__ import annotations

import dataclasses
import importlib
import math
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import actlab
from actlab.activations import get_activation
from actlab.executors import one_intra_op_thread
from actlab.studies import get_study
from actlab.studies.base import ReportContext, RunContext
from actlab.studies.real_data import (
    DATASETS,
    evaluate,
    fit,
    load_dataset,
    prepare,
    split_indices,
    stacked_data,
)

TINY = {"depths": [1], "width": 16, "max_epochs": 40, "lr": 0.01}


@pytest.fixture(autouse=True)
def one_thread():
    """Torch on one thread, as the executor runs studies."""
    with one_intra_op_thread():
        yield


def scalars(rows):
    return {r["metric"]: r["value"] for r in rows if "step" not in r}


def curve(rows):
    return {r["step"]: r["value"] for r in rows if r["metric"] == "val_accuracy"}


def setup(acts, seeds=1, activations=None, **settings):
    study = get_study("real_data")
    cfg = study.Config(**{**TINY, **settings})
    table = activations or {n: get_activation(n) for n in acts}
    trials = study.trials(cfg, list(table), seeds)
    return study, cfg, trials, RunContext(0, cfg, table)


def tiny_run(tmp_path, name, seeds=2, report=False, **overrides):
    return actlab.run(
        config=actlab.RunConfig(
            activations=["Linear", "Tanh", "ReLU"],
            studies=["real_data"],
            seeds=seeds,
            executor="local",
            # lr and patience such that members stop early, each at its own epoch
            study_config={"real_data": {**TINY, "depths": [1, 2], "lr": 0.05, "patience": 4}},
            **overrides,
        ),
        out=tmp_path / name,
        report=report,
    )


def test_datasets_load_with_networking_disabled(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("networking is disabled in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    load_dataset.cache_clear()
    for name, info in DATASETS.items():
        x, y = load_dataset(name)
        assert x.shape == (info.samples, info.features) and x.dtype == np.float64
        assert tuple(np.bincount(y)) == info.class_counts
        assert np.isfinite(x).all()


def test_config_rejects_bad_settings_clearly():
    Config = get_study("real_data").Config
    assert Config().datasets == ["digits"] and Config().depths == [1, 3, 6]
    for bad in (
        {"lr": 0},
        {"datasets": ["mnist"]},
        {"datasets": []},
        {"depths": [0]},
        {"patience": 0},
        {"bogus": 1},
        {"datasets": ["wine", "wine"]},
    ):
        with pytest.raises(ValueError):
            Config(**bad)
    with pytest.raises(ValueError, match="must be 1"):
        Config(train_fraction=0.7)
    with pytest.raises(ValueError, match="no sample"):
        Config(datasets=["wine"], train_fraction=0.98, val_fraction=0.01, test_fraction=0.01)


@pytest.mark.parametrize("name", ["digits", "wine"])
def test_split_is_stratified_disjoint_and_keyed_by_seed_only(name):
    cfg = get_study("real_data").Config(datasets=[name])
    _, y = load_dataset(name)
    train, val, test = split_indices(name, 0, 0, cfg)
    assert len(np.intersect1d(train, val)) == len(np.intersect1d(train, test)) == 0
    assert len(np.intersect1d(val, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(y)))
    counts = np.bincount(y)
    for idx, fraction in ((train, 0.6), (val, 0.2), (test, 0.2)):
        # every class within one sample of its share
        assert np.all(np.abs(np.bincount(y[idx], minlength=len(counts)) - fraction * counts) <= 1)
    again = split_indices(name, 0, 0, cfg)
    other = split_indices(name, 1, 0, cfg)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    assert not np.array_equal(train, other[0])
    assert [len(p) for p in other] == [len(train), len(val), len(test)]  # members stack


def test_every_activation_of_a_seed_sees_the_same_standardised_split():
    study, cfg, trials, ctx = setup(["ReLU", "Tanh"], seeds=2)
    order = [(t.activation, t.seed) for t in trials]
    data = stacked_data(trials, ctx)
    relu0, tanh0 = order.index(("ReLU", 0)), order.index(("Tanh", 0))
    relu1 = order.index(("ReLU", 1))
    for x, y in data.values():
        assert torch.equal(x[relu0], x[tanh0]) and torch.equal(y[relu0], y[tanh0])
    assert not torch.equal(data["train"][0][relu0], data["train"][0][relu1])
    split = prepare("digits", 0, 0, cfg)
    assert np.allclose(split.x_train.mean(axis=0), 0, atol=1e-12)
    std = split.x_train.std(axis=0)
    assert np.allclose(std[std > 0.5], 1) and np.all((std > 0.5) | (std == 0))


def test_a_tiny_relu_network_learns_digits():
    study, cfg, trials, ctx = setup(["ReLU"], seeds=2)
    rows = study.run(trials, ctx)
    for trial_rows in rows:
        m = scalars(trial_rows)
        assert m["diverged"] == 0
        assert m["test_accuracy"] > 0.5  # chance is 0.1
        assert m["final_loss"] < math.log(10)  # below a uniform guess
        assert 0 <= m["best_epoch"] <= m["epochs_run"] <= cfg.max_epochs
        assert m["epochs_to_target"] == min(
            e for e, a in curve(trial_rows).items() if a >= cfg.target_accuracy
        )


def test_early_stopping_restores_the_best_validation_parameters():
    study, cfg, trials, ctx = setup(["ReLU", "Tanh"], lr=0.05, patience=3, max_epochs=80)
    rows = study.run(trials, ctx)
    result = fit(trials, ctx)
    val_loss, val_acc = evaluate(result.model, *result.data["val"])
    test_loss, test_acc = evaluate(result.model, *result.data["test"])
    last = result.model.flat.clone()
    with torch.no_grad():
        result.model.flat.copy_(result.last_flat)
    last_val_loss, _ = evaluate(result.model, *result.data["val"])
    stopped = 0
    for m, trial_rows in enumerate(rows):
        s, history = scalars(trial_rows), curve(trial_rows)
        best, ran = int(s["best_epoch"]), int(s["epochs_run"])
        assert best <= ran and len(history) == ran + 1
        if ran < cfg.max_epochs:  # stopped early: exactly `patience` epochs after its best
            stopped += 1
            assert ran - best == cfg.patience
            assert not torch.equal(last[m], result.last_flat[m])
            assert val_loss[m] < last_val_loss[m]
        # the reported metrics are those of the restored (best) parameters
        assert s["test_accuracy"] == float(test_acc[m]) and s["test_loss"] == float(test_loss[m])
        assert history[best] == float(val_acc[m])
    assert stopped > 0  # the setting does exercise early stopping


def test_a_diverging_run_is_flagged_and_its_metrics_are_nan():
    study, cfg, trials, ctx = setup(["Linear", "ReLU"], seeds=2, depths=[3], lr=50.0)
    for trial_rows in study.run(trials, ctx):
        m = scalars(trial_rows)
        assert m["diverged"] == 1
        for name in ("test_accuracy", "test_loss", "final_loss", "best_epoch", "epochs_to_target"):
            assert math.isnan(m[name]), name


def test_a_nan_activation_diverges_beside_a_healthy_one(tmp_path):
    relu = get_activation("ReLU")
    # Built directly: get_activation refuses a non-finite custom activation up front.
    broken = dataclasses.replace(relu, name="broken", fn=lambda x: x * float("nan"))
    study, cfg, trials, ctx = setup([], seeds=1, activations={"ReLU": relu, "broken": broken})
    per_trial = study.run(trials, ctx)
    rows = {t.activation: scalars(r) for t, r in zip(trials, per_trial, strict=True)}
    assert rows["broken"]["diverged"] == 1 and math.isnan(rows["broken"]["test_accuracy"])
    assert rows["ReLU"]["diverged"] == 0 and rows["ReLU"]["test_accuracy"] > 0.5
    # the runner's tidy table: a diverged seed scores -inf (below any accuracy), the healthy
    # one its accuracy
    results = pd.DataFrame(
        [
            {"study": "real_data", "activation": t.activation, "seed": t.seed, **t.params, **row}
            for t, trial_rows in zip(trials, per_trial, strict=True)
            for row in trial_rows
        ]
    )
    results["step"] = results["step"].astype(float)
    rctx = ReportContext(seeds=1, activations=["ReLU", "broken"], config=cfg)
    summary = study.summarize(results)
    props = study.properties(summary, rctx).set_index("activation")
    assert props.loc["broken", "score"] == -math.inf
    assert props.loc["broken", "outcome"] == "diverged"
    assert props.loc["ReLU", "score"] == rows["ReLU"]["test_accuracy"]
    report = study.report(summary, Path(tmp_path), rctx).markdown
    assert "1 of 2 runs diverged" in report and "broken on digits at depth 1" in report
    assert (Path(tmp_path) / "real_data_accuracy.png").stat().st_size > 5_000


def test_results_do_not_depend_on_batching(tmp_path):
    cols = ["trial", "metric", "step", "value"]
    alone = tiny_run(tmp_path, "alone", max_members=1).results
    together = tiny_run(tmp_path, "together").results
    a = alone[cols].sort_values(cols[:3]).reset_index(drop=True)
    b = together[cols].sort_values(cols[:3]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_summary_properties_and_report_end_to_end(tmp_path):
    run = tiny_run(tmp_path, "run", report=True)
    results = run.results
    study = get_study("real_data")
    summary = study.summarize(results)
    cells = summary["cells"]
    assert len(cells) == 3 * 2 and (cells["n_seeds"] == 2).all()
    relu = results[
        (results["activation"] == "ReLU")
        & (results["depth"] == 1)
        & (results["metric"] == "test_accuracy")
    ]["value"]
    row = cells[(cells["activation"] == "ReLU") & (cells["depth"] == 1)].iloc[0]
    assert row["acc_mean"] == pytest.approx(relu.mean())
    assert row["acc_ci_low"] < row["acc_mean"] < row["acc_ci_high"] or relu.nunique() == 1
    rctx = ReportContext(
        seeds=2, activations=["Linear", "Tanh", "ReLU"], config=run.config.study("real_data")
    )
    props = study.properties(summary, rctx)
    # one row per activation x seed x (data set, depth): the settings are the blocks
    assert set(props["property"]) == {"real-data accuracy"} and len(props) == 3 * 2 * 2
    wide = summary["trials"]
    tanh0 = wide[(wide["activation"] == "Tanh") & (wide["seed"] == 0)]
    scores = props[(props["activation"] == "Tanh") & (props["seed"] == 0)]
    assert sorted(scores["score"]) == pytest.approx(sorted(tanh0["test_accuracy"]))

    report = run.report_path.read_text()
    assert "## Real data" in report
    assert "| activation | depth 1 | depth 2 |" in report
    # every pair tested within a data set and depth, read against ReLU (named before the
    # data); two seeds cannot separate anything, and the section says so
    assert "| activation | depth 1 vs ReLU | depth 2 vs ReLU |" in report
    assert "With 2 seeds and Holm's correction over 3 comparisons" in report
    assert "cannot reach p < 0.05 at these seeds after Holm's correction (see above)" in report
    assert "No run diverged" in report
    for name in ("real_data_accuracy", "real_data_curves"):
        assert (run.path / "figures" / f"{name}.png").exists()
        assert f"figures/{name}.png" in report


def test_one_seed_report_says_no_error_bars(tmp_path):
    report = tiny_run(tmp_path, "one", seeds=1, report=True).report_path.read_text()
    assert "no error bars" in report and "one seed, so nothing is tested" in report


def test_members_that_stop_early_leave_the_stack_without_changing_a_number(monkeypatch):
    """Early-stopped and diverged members are dropped from the stack being trained; every
    member's history, epochs, restored and last parameters are the bits of training the
    whole stack to the end."""
    from actlab.engine import StackedMLP
    from actlab.studies import real_data

    study, cfg, trials, ctx = setup(
        ["ReLU", "Tanh", "Linear", "GELU"], seeds=2, depths=[2], lr=0.05, patience=3
    )
    subsets = []
    real_subset = StackedMLP.subset
    monkeypatch.setattr(
        StackedMLP, "subset", lambda self, rows: subsets.append(rows) or real_subset(self, rows)
    )
    with one_intra_op_thread():  # as every executor runs batches
        dropped = real_data.fit(trials, ctx)
    assert subsets, "no member left the stack: the test does not exercise it"
    assert len(set(dropped.epochs_run.tolist())) > 1
    # the loop (engine/train.py) looks drop_stopped up in its module at each compaction
    engine_train = importlib.import_module("actlab.engine.train")
    monkeypatch.setattr(engine_train, "drop_stopped", lambda *args: None)
    with one_intra_op_thread():
        kept = real_data.fit(trials, ctx)
    for field in ("diverged", "best_epoch", "epochs_run"):
        assert np.array_equal(getattr(dropped, field), getattr(kept, field)), field
    assert dropped.val_accuracy == kept.val_accuracy
    assert torch.equal(dropped.model.flat, kept.model.flat)
    assert torch.equal(dropped.last_flat, kept.last_flat)
