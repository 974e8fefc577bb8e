"""Experiment 4 end to end: targets, grids, metrics against the reference loop, a linear
network's hand-checkable limit, divergence, batching invariance and the report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import actlab
from actlab import reference
from actlab.activations import get_activation
from actlab.engine import layer_sizes
from actlab.executors import one_intra_op_thread
from actlab.studies import get_study
from actlab.studies.base import ReportContext, RunContext, initial_params
from actlab.studies.capacity import TARGETS, grid_extrap, grid_test, grid_train

TINY = {"width": 8, "depth": 2, "steps": 30, "n_train": 20, "n_test": 25, "n_extrap": 6}


@pytest.fixture(autouse=True)
def one_thread():
    """Torch on one thread, as the executor runs studies: these tiny networks are many
    times slower multi-threaded on a busy machine, and their bits do not depend on it."""
    with one_intra_op_thread():
        yield


def metric(rows, name):
    (value,) = [r["value"] for r in rows if r["metric"] == name]
    return value


def run_study(acts, seeds=1, exact=False, **settings):
    study = get_study("capacity")
    cfg = study.Config(**{**TINY, **settings})
    table = {n: get_activation(n) for n in acts}
    trials = study.trials(cfg, acts, seeds)
    return study, cfg, table, trials, study.run(trials, RunContext(3, cfg, table, exact=exact))


def tiny_run(tmp_path, name, seeds=2, report=False, **overrides):
    return actlab.run(
        config=actlab.RunConfig(
            activations=["Linear", "Tanh", "ReLU"],
            studies=["capacity"],
            seeds=seeds,
            study_config={"capacity": {**TINY, "targets": ["sin", "abs", "sin10"]}},
            **overrides,
        ),
        out=tmp_path / name,
        report=report,
    )


def test_targets_match_their_formulas():
    x = torch.linspace(-2, 2, 41, dtype=torch.float64)
    expected = {
        "sin": np.sin(x.numpy()),
        "abs": np.abs(x.numpy()),
        "step": 1 / (1 + np.exp(-10 * x.numpy())),
        "sin10": np.sin(10 * x.numpy()),
        "cubic": x.numpy() ** 3,
    }
    assert set(TARGETS) == set(expected)
    for name, (_formula, fn) in TARGETS.items():
        np.testing.assert_allclose(fn(x).numpy(), expected[name], rtol=1e-12, atol=1e-15)


def test_xs_train_and_test_on_the_interval_extrapolate_strictly_outside():
    cfg = get_study("capacity").Config()
    train, test, ext = (
        g(cfg, torch.float64).squeeze(1) for g in (grid_train, grid_test, grid_extrap)
    )
    assert len(train) == 200 and len(test) == 500 and len(ext) == 200
    for grid in (train, test):
        assert grid[0] == -2 and grid[-1] == 2
        np.testing.assert_allclose(np.diff(grid.numpy()), 4 / (len(grid) - 1))
    left, right = ext[:100], ext[100:]
    assert bool(((left >= -3) & (left < -2)).all()) and bool(((right > 2) & (right <= 3)).all())
    assert left[0] == -3 and right[-1] == 3
    np.testing.assert_allclose(np.diff(left.numpy()), 0.01)
    np.testing.assert_allclose(np.diff(right.numpy()), 0.01)


def test_config_rejects_bad_settings_clearly():
    with pytest.raises(ValueError, match="unknown target 'tan'; available: sin, abs"):
        actlab.RunConfig(
            activations=["ReLU"],
            studies=["capacity"],
            study_config={"capacity": {"targets": ["tan"]}},
        )
    Config = get_study("capacity").Config
    for bad in ({"lr": 0}, {"n_train": 1}, {"x_min": 2, "x_max": 2}, {"targets": []}, {"bogus": 1}):
        with pytest.raises(ValueError):
            Config(**bad)
    with pytest.raises(ValueError, match="x_min must be below x_max"):
        Config(x_min=1, x_max=-1)


def test_all_targets_share_one_stack_but_not_one_trial_key():
    study = get_study("capacity")
    trials = study.trials(study.Config(**TINY), ["ReLU", "Tanh"], seeds=2)
    assert len(trials) == 5 * 2 * 2 and len({t.key for t in trials}) == len(trials)
    assert len({study.batch_key(t) for t in trials}) == 1


def test_study_metrics_equal_the_reference_network_in_exact_mode():
    """Train each member through the plain nn.Sequential loop from the same initial weights:
    losses, train/test/extrapolation MSE and predictions all match bit for bit."""
    acts = ["Tanh", "GELU"]
    study, cfg, table, trials, rows = run_study(acts, seeds=2, exact=True, targets=["abs", "step"])
    ctx = RunContext(3, cfg, table, exact=True)
    x, xt, xe = grid_train(cfg), grid_test(cfg), grid_extrap(cfg)
    for trial, trial_rows in zip(trials, rows, strict=True):
        f = TARGETS[trial.params["target"]][1]
        params = initial_params(
            ctx, layer_sizes(1, cfg.width, cfg.depth), "xavier_uniform", trial.seed
        )
        fn = table[trial.activation].fn
        ref, net = reference.train(params, fn, x, f(x), "adam", cfg.lr, cfg.steps)
        assert not ref.diverged[0]
        with torch.no_grad():
            test_mse = torch.nn.functional.mse_loss(net(xt), f(xt)).item()
            extrap_mse = torch.nn.functional.mse_loss(net(xe), f(xe)).item()
            preds = net(xt).squeeze(1).tolist()
        assert metric(trial_rows, "test_mse") == test_mse
        assert metric(trial_rows, "extrap_mse") == extrap_mse
        assert metric(trial_rows, "train_mse") == ref.loss_after[0]
        assert metric(trial_rows, "diverged") == 0.0
        assert metric(trial_rows, "steps_completed") == cfg.steps
        got = [r["value"] for r in trial_rows if r["metric"] == "prediction"]
        assert [r["step"] for r in trial_rows if r["metric"] == "prediction"] == list(range(25))
        assert got == preds
        assert sum(r["metric"] == "extrap_prediction" for r in trial_rows) == 2 * cfg.n_extrap


def test_fast_mode_agrees_with_exact_mode_within_rounding():
    *_, fast = run_study(["ReLU", "Swish"], targets=["sin", "cubic"])
    *_, exact = run_study(["ReLU", "Swish"], exact=True, targets=["sin", "cubic"])
    for a, b in zip(fast, exact, strict=True):
        for name in ("test_mse", "extrap_mse", "train_mse"):
            assert metric(a, name) == pytest.approx(metric(b, name), rel=1e-4)


def test_a_linear_network_cannot_beat_the_least_squares_line():
    """A Linear-activation MLP is an affine map of x, so on the test grid its MSE for |x| is
    at least that of the least-squares line there. The grid is symmetric, so that line is
    flat at mean |x| and its MSE is the variance of |x| on the grid."""
    *_, rows_per_trial = run_study(["Linear"], seeds=2, targets=["abs"], steps=300, lr=0.01)
    cfg = get_study("capacity").Config(**TINY)
    xt = np.abs(grid_test(cfg, torch.float64).squeeze(1).numpy())
    slope, intercept = np.polyfit(grid_test(cfg, torch.float64).squeeze(1).numpy(), xt, 1)
    best_line = float(
        np.mean((slope * grid_test(cfg, torch.float64).squeeze(1).numpy() + intercept - xt) ** 2)
    )
    assert abs(slope) < 1e-12 and best_line == pytest.approx(xt.var(), rel=1e-12)
    for rows in rows_per_trial:
        test_mse = metric(rows, "test_mse")
        assert test_mse >= best_line - 1e-6
        assert test_mse < best_line * 1.1  # and it did train: close to the bound


def test_a_diverging_run_is_flagged_and_its_errors_are_nan():
    """Adam with lr 10 drives the Linear network's loss past 1e6 (verified); Sigmoid's
    bounded hidden layer keeps its loss finite."""
    *_, trials, rows = run_study(["Linear", "Sigmoid"], seeds=2, targets=["cubic"], lr=10.0)
    for trial, trial_rows in zip(trials, rows, strict=True):
        diverged = trial.activation == "Linear"
        assert metric(trial_rows, "diverged") == float(diverged)
        for name in ("test_mse", "extrap_mse", "train_mse"):
            assert math.isnan(metric(trial_rows, name)) == diverged
        preds = [r["value"] for r in trial_rows if r["metric"] == "prediction"]
        assert all(math.isnan(v) for v in preds) == diverged
        if diverged:
            assert metric(trial_rows, "steps_completed") < 30


def test_results_do_not_depend_on_batching(tmp_path):
    together = tiny_run(tmp_path, "together").results
    alone = tiny_run(tmp_path, "alone", max_members=1).results
    key = ["trial", "metric", "step"]
    pd.testing.assert_frame_equal(
        together.sort_values(key).reset_index(drop=True),
        alone.sort_values(key).reset_index(drop=True),
    )
    assert together["trial"].nunique() == 3 * 3 * 2


def test_summary_and_properties_are_computed_from_the_results(tmp_path):
    run = tiny_run(tmp_path, "run")
    df = run.results
    study = get_study("capacity")
    summary = study.summarize(df)
    cell = summary["cells"].set_index(["activation", "target"]).loc[("Tanh", "abs")]
    values = df[
        (df["metric"] == "test_mse") & (df["activation"] == "Tanh") & (df["target"] == "abs")
    ]
    assert cell["test_mean"] == pytest.approx(np.log10(values["value"]).mean())
    assert cell["n_seeds"] == 2 and cell["diverged"] == 0
    rctx = ReportContext(
        seeds=2, activations=["Linear", "Tanh", "ReLU"], config=run.config.study("capacity")
    )
    props = study.properties(summary, rctx)
    # one row per property x activation x seed x target: the targets are the blocks' settings
    assert len(props) == 2 * 3 * 2 * 3
    assert {s.better for s in study.property_specs} == {"lower"}
    fit = props[(props["property"] == "fit (interpolation)") & (props["activation"] == "ReLU")]
    fit = fit.set_index(["seed", "setting"])["score"]
    relu = df[(df["metric"] == "test_mse") & (df["activation"] == "ReLU")]
    for r in relu.itertuples():
        assert fit[(r.seed, f"target={r.target}")] == pytest.approx(np.log10(r.value))


def test_run_end_to_end_writes_table_findings_and_figures(tmp_path):
    run = tiny_run(tmp_path, "run", report=True)
    report = run.report_path.read_text()
    assert "## Representational capacity" in report
    assert "| activation | sin | abs | sin10 |" in report
    df = run.results
    tanh_sin = df[
        (df["metric"] == "test_mse") & (df["activation"] == "Tanh") & (df["target"] == "sin")
    ]
    geo = 10 ** np.log10(tanh_sin["value"]).mean()
    mantissa, exponent = f"{geo:.1e}".split("e")
    assert f"| Tanh | {mantissa}e{int(exponent)} [" in report
    assert "paired sign-flip permutation test over 2 seeds" in report
    for name in ("capacity_heatmap", "capacity_predictions"):
        assert (run.path / "figures" / f"{name}.png").stat().st_size > 10_000
        assert not (run.path / "figures" / f"{name}.svg").exists()  # drawn once, as PNG
        assert f"figures/{name}.png" in report


def test_one_seed_report_says_no_error_bar_and_no_ranking(tmp_path):
    report = tiny_run(tmp_path, "one", seeds=1, report=True).report_path.read_text()
    assert "no error bar" in report and "the ranking is not tested" in report


def test_report_marks_diverged_runs_and_leaves_them_out(tmp_path):
    # A learning rate that makes Linear diverge (see the test above).
    run = actlab.run(
        config=actlab.RunConfig(
            activations=["Linear", "Sigmoid"],
            studies=["capacity"],
            seeds=2,
            study_config={"capacity": {**TINY, "targets": ["cubic"], "lr": 10.0}},
        ),
        out=tmp_path / "div10",
    )
    report = run.report_path.read_text()
    assert "| Linear | diverged (2 of 2) |" in report
    assert (
        "2 of 4 runs diverged and are left out of the statistics: Linear on cubic (2 of 2)"
        in report
    )
    study = get_study("capacity")
    props = study.properties(study.summarize(run.results), None)
    linear = props[props["activation"] == "Linear"]
    # a diverged fit ranks below every finite one (+inf, lower is better) and says why
    assert (linear["score"] == np.inf).all() and (linear["outcome"] == "diverged").all()
    sigmoid = props[props["activation"] == "Sigmoid"]
    assert np.isfinite(sigmoid["score"]).all() and (sigmoid["outcome"] == "").all()
