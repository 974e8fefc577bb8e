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


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """One reported tiny_run (two seeds), shared by the tests that only read it."""
    return tiny_run(tmp_path_factory.mktemp("capacity"), "run", report=True)


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
        # the training loss at every step, as the reference loop recorded it
        loss = [r for r in trial_rows if r["metric"] == "loss"]
        assert [r["step"] for r in loss] == list(range(1, cfg.steps + 1))
        assert [r["value"] for r in loss] == ref.losses[0].tolist()


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
        # a diverged run's curve ends at its last finite loss: no NaN or inf stored
        loss = [r["value"] for r in trial_rows if r["metric"] == "loss"]
        assert len(loss) == metric(trial_rows, "steps_completed") and np.isfinite(loss).all()


def test_results_do_not_depend_on_batching(tmp_path):
    together = tiny_run(tmp_path, "together").results
    alone = tiny_run(tmp_path, "alone", max_members=1).results
    key = ["trial", "metric", "step"]
    pd.testing.assert_frame_equal(
        together.sort_values(key).reset_index(drop=True),
        alone.sort_values(key).reset_index(drop=True),
    )
    assert together["trial"].nunique() == 3 * 3 * 2


def test_summary_and_properties_are_computed_from_the_results(reported):
    run = reported
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


def test_run_end_to_end_writes_table_findings_and_figures(reported):
    run = reported
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
    for name in ("capacity_heatmap", "capacity_predictions", "capacity_curves"):
        assert (run.path / "figures" / f"{name}.png").stat().st_size > 10_000
        assert not (run.path / "figures" / f"{name}.svg").exists()  # drawn once, as PNG
        assert f"figures/{name}.png" in report


def test_training_losses_are_stored_per_step_per_seed(reported):
    df = reported.results
    loss = df[df["metric"] == "loss"]
    assert loss["trial"].nunique() == df["trial"].nunique() == 3 * 3 * 2
    per_trial = loss.groupby("trial")["step"].apply(lambda s: sorted(s.astype(int)))
    assert all(steps == list(range(1, TINY["steps"] + 1)) for steps in per_trial)
    per_step = loss.groupby(["activation", "target", "step"])["seed"].nunique()
    assert (per_step == 2).all()
    # the per-trial metrics are as before: one row each, no step
    assert not df[df["metric"].isin(["test_mse", "train_mse"])]["step"].notna().any()


def test_the_curve_figure_is_in_the_section_and_plots_the_stored_median(reported):
    from actlab.render.figures import median_band

    report = reported.report_path.read_text()
    section = report[report.index("## Representational capacity") :]
    section = section[: section.index("\n## ")]
    assert "![Training loss per step](figures/capacity_curves.png)" in section
    assert (
        "the median over 2 seeds as a line and the range over seeds (lowest to highest) as a "
        "shaded band. Adam at learning rate 0.001, 30 steps, depth 2, width 8." in section
    )
    assert "log scale" in section and "No run diverged." in section
    df = reported.results
    curves = get_study("capacity").summarize(df)["curves"]
    cell = curves[(curves["activation"] == "ReLU") & (curves["target"] == "sin10")]
    band = median_band(cell).set_index("step")
    stored = df[(df["metric"] == "loss") & (df["activation"] == "ReLU") & (df["target"] == "sin10")]
    for step in (1, 15, TINY["steps"]):
        values = stored[stored["step"] == step]["value"]
        assert band.loc[step, "median"] == np.median(values)
        assert (band.loc[step, "low"], band.loc[step, "high"]) == (values.min(), values.max())


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
    assert (run.path / "figures" / "capacity_curves.png").exists()  # drawn, divergence and all
    assert "2 of 4 runs diverged: each curve ends at its last finite loss (x)" in report
    assert (
        "2 of 4 runs diverged and are left out of the statistics (counted here and in every "
        "table; ranked last in the verdicts): Linear on cubic (2 of 2)" in report
    )
    study = get_study("capacity")
    props = study.properties(study.summarize(run.results), None)
    linear = props[props["activation"] == "Linear"]
    # a diverged fit ranks below every finite one (+inf, lower is better) and says why
    assert (linear["score"] == np.inf).all() and (linear["outcome"] == "diverged").all()
    sigmoid = props[props["activation"] == "Sigmoid"]
    assert np.isfinite(sigmoid["score"]).all()
    # a finite run that did not fit its training data says so (a failure of the property)
    trials = study.summarize(run.results)["trials"]
    fitted = trials[trials["activation"] == "Sigmoid"]["fitted"].tolist()
    expected = ["fitted" if f == 1 else "not fitted" for f in fitted]
    assert sorted(sigmoid["outcome"].tolist()) == sorted(expected) * 2  # fit and extrapolation


# -- beyond the protocol: train to a plateau, how training ended, init, divergence last ------
def plateau_reference(losses, patience, min_improvement, below=math.inf):
    """The plateau rule on one recorded loss history, in plain Python: the first step at
    which `patience` steps have passed since the loss last fell below (1 - min_improvement)
    x the loss that last did so, with the loss below `below`, or None; and whether the rule
    holds at the last step."""
    mark, mark_step, first = math.inf, 0, None
    for t, loss in enumerate(losses):
        if loss < mark * (1 - min_improvement):
            mark, mark_step = loss, t
        if first is None and t - mark_step >= patience and loss < below:
            first = t
    return first, len(losses) - 1 - mark_step >= patience


def test_the_plateau_rule_stops_where_the_loss_history_says_and_only_watches_otherwise():
    from actlab.engine import make_optimizer, train_regression
    from actlab.engine.monitors import Plateau
    from actlab.studies.base import build_stack
    from actlab.studies.capacity import plateaued_at_end

    study = get_study("capacity")
    cfg = study.Config(**{**TINY, "targets": ["sin", "abs", "sin10"]})
    acts = {n: get_activation(n) for n in ("Linear", "ReLU")}
    trials = study.trials(cfg, list(acts), seeds=2)
    ctx = RunContext(3, cfg, acts)
    x = grid_train(cfg)
    y = torch.stack([TARGETS[t.params["target"]][1](x) for t in trials])
    patience, min_improvement, steps = 15, 0.01, 200

    def fit(stop, stop_below=None):
        model = build_stack(trials, ctx, layer_sizes(1, cfg.width, cfg.depth))
        monitor = Plateau(patience, min_improvement, stop=stop, stop_below=stop_below)
        result = train_regression(
            model, x, y, make_optimizer("adam", model, 0.01), steps, monitors=[monitor]
        )
        return result, monitor.plateaued.tolist()

    (watched, ended), (stopped, plateaued) = fit(False), fit(True)
    assert (watched.steps_completed == steps).all()
    kinds = set()
    for m in range(len(trials)):
        history = watched.losses[m]
        first, at_end = plateau_reference(history, patience, min_improvement)
        assert ended[m] == at_end
        # the rule on a recorded history (which stability reuses) is the monitor's verdict
        assert plateaued_at_end(history, patience, min_improvement) == ended[m]
        if first is None:
            assert stopped.steps_completed[m] == steps and not plateaued[m]
        else:  # stopped after the update of the step where the rule first held
            assert stopped.steps_completed[m] == first + 1 and plateaued[m]
            n = first + 1
            np.testing.assert_array_equal(stopped.losses[m, :n], history[:n])
        kinds.add((first is None, at_end))
    assert (True, False) in kinds and (False, True) in kinds  # both endings happen
    # A member on a plateau at a loss above `stop_below` trains on (and ends plateaued if
    # it still is at the end).
    line = 0.05
    held, held_plateaued = fit(True, stop_below=line)
    trained_on = 0
    for m in range(len(trials)):
        history = watched.losses[m]
        first, at_end = plateau_reference(history, patience, min_improvement, below=line)
        if first is None:
            assert held.steps_completed[m] == steps and held_plateaued[m] == at_end
        else:
            assert held.steps_completed[m] == first + 1 and held_plateaued[m]
        trained_on += held.steps_completed[m] > stopped.steps_completed[m]
    assert trained_on


def test_until_plateau_records_how_each_run_ended(tmp_path):
    settings = {"until": "plateau", "patience": 15, "steps": 200, "lr": 0.01}
    study, cfg, _, trials, rows = run_study(
        ["Linear", "ReLU"], seeds=2, targets=["sin", "abs", "sin10"], **settings
    )
    x = grid_train(cfg)
    assert {t.params["until"] for t in trials} == {"plateau"}
    assert {(t.params["patience"], t.params["min_improvement"]) for t in trials} == {(15, 0.01)}
    endings = set()
    for trial, trial_rows in zip(trials, rows, strict=True):
        steps, ended = metric(trial_rows, "steps_completed"), metric(trial_rows, "ended_plateau")
        fitted = metric(trial_rows, "fitted")
        assert ended in (0.0, 1.0) and fitted in (0.0, 1.0)
        assert metric(trial_rows, "diverged") == 0
        variance = float(TARGETS[trial.params["target"]][1](x).double().var(unbiased=False))
        assert fitted == (metric(trial_rows, "train_mse") < 0.5 * variance)
        # a fitted run on a plateau stopped there; every other run used the whole budget
        assert (steps < 200) if ended and fitted else (steps == 200)
        endings.add((ended, fitted))
        # a run that stopped on its plateau stored its losses up to there, none after
        steps_stored = [r["step"] for r in trial_rows if r["metric"] == "loss"]
        assert steps_stored == list(range(1, int(steps) + 1))
        assert metric(trial_rows, "target_variance") > 0
    assert {(1.0, 1.0), (0.0, 1.0), (1.0, 0.0)} <= endings
    # The protocol's setting takes every step and only labels how each run ended.
    *_, fixed = run_study(["Linear", "ReLU"], seeds=1, targets=["abs"], steps=200, lr=0.01)
    for trial_rows in fixed:
        assert metric(trial_rows, "steps_completed") == 200
        assert metric(trial_rows, "ended_plateau") in (0.0, 1.0)


def test_report_tells_did_not_train_in_time_from_what_a_network_reaches(tmp_path):
    run = actlab.run(
        config=actlab.RunConfig(
            activations=["Linear", "Tanh", "ReLU"],
            studies=["capacity"],
            seeds=2,
            study_config={
                "capacity": {
                    **TINY,
                    "targets": ["sin", "abs", "sin10"],
                    "until": "plateau",
                    "patience": 10,
                    "steps": 300,
                }
            },
        ),
        out=tmp_path / "p",
    )
    study = get_study("capacity")
    cells = study.summarize(run.results)["cells"]
    late, constant = cells[cells["improving"] > 0], cells[cells["constant"] > 0]
    assert not late.empty and not constant.empty
    assert (cells["plateaued"] + cells["improving"] + cells["constant"] == cells["n_seeds"]).all()
    report = run.report_path.read_text()
    assert "**How training ended** (budget 300 steps; on a plateau: the training loss fell by " in (
        report
    )
    lines = report.splitlines()
    in_time = next(line for line in lines if line.startswith("- Did not train in time"))
    flat = next(line for line in lines if line.startswith("- At a constant output when"))
    assert "the budget of 300 steps ran out while the training loss was still falling" in in_time
    assert "cannot tell which" in flat
    for r in late.itertuples():
        assert f"{r.activation} on {r.target} ({r.improving} of 2 seeds)" in in_time
    for r in constant.itertuples():
        assert f"{r.activation} on {r.target} ({r.constant} of 2 seeds)" in flat
    # a run still improving is never said to be unable to represent its target: a sentence
    # that says "cannot represent" names a pair only with its seeds at a constant output
    for line in (line for line in lines if "cannot represent" in line):
        for r in late.itertuples():
            named = f"{r.activation} on {r.target} ("
            assert named not in line or f"{named}{r.constant} of 2 seeds)" in line
    assert "still improving)" in report  # marked in the MSE tables too
    assert "trained to a plateau (the training loss fell by less than 1% in 10 updates), at " in (
        report
    )


def test_a_diverged_run_ranks_last_and_a_survivors_mean_says_so():
    from actlab.studies.capacity import findings

    cells = pd.DataFrame(
        {
            "activation": ["A", "B", "C"],
            "target": ["sin"] * 3,
            "diverged": [1, 0, 0],
            "n_seeds": [2, 2, 2],
            "test_mean": [-4.0, -2.0, -1.0],
            "plateaued": [1, 2, 2],
            "improving": [0, 0, 0],
            "constant": [0, 0, 0],
            "variance": [0.5] * 3,
        }
    )
    wide = pd.DataFrame(
        {
            "activation": ["A", "A", "B", "B", "C", "C"],
            "target": ["sin"] * 6,
            "seed": [0, 1] * 3,
            "diverged": [0, 1, 0, 0, 0, 0],
            "log10_test_mse": [-4.0, np.nan, -2.0, -2.1, -1.0, -1.1],
            "log10_extrap_mse": [-3.0, np.nan, -1.0, -1.0, 0.0, 0.0],
        }
    )
    abs_runs = wide[wide["activation"] == "B"].assign(target="abs", log10_test_mse=-5.0)
    wide = pd.concat([wide, abs_runs], ignore_index=True)
    out = findings({"cells": cells, "trials": wide}, ["A", "B", "C"], ["sin"], seeds=2)
    hardest = next(s for s in out if s.startswith("Hardest"))
    assert "over the 7 of 8 runs that did not diverge" in hardest
    # two seeds, one target: the family's floor (p = 0.5) is said before the target's result
    assert out[0].startswith("With 2 seeds and one comparison, ") and "cannot reach" in out[0]
    best = out[1]
    assert best.startswith("sin (sin(x)): lowest geometric-mean test MSE with B (1.0e-2), then C")
    assert "an activation with diverged seeds ranks below every one without" in best
    extrap = next(s for s in out if s.startswith("Outside the training interval"))
    assert extrap.index("B ") < extrap.index("C ") < extrap.index("A ")
    assert "A 1.0e-3 (over the 1 of 2 runs that did not diverge)" in extrap
    # ... and the best is said to rest on survivors when every activation lost a seed
    cells["diverged"] = [1, 1, 1]
    out = findings({"cells": cells, "trials": wide}, ["A", "B", "C"], ["sin"], seeds=2)
    assert "with A (1.0e-4; over the 1 of 2 seeds that did not diverge)" in out[0]


def test_smooth_fits_smooth_counts_a_diverged_run_as_the_worst_fit():
    from actlab.studies.capacity import smooth_fits_smooth

    specs = {n: get_activation(n) for n in ("ReLU", "GELU", "Tanh")}
    rows = []
    for seed in range(4):
        for act, log in (("ReLU", -3.0), ("GELU", -2.0), ("Tanh", 5.0)):
            diverged = act == "ReLU" and seed == 0
            rows.append(
                {
                    "activation": act,
                    "target": "sin",
                    "seed": seed,
                    "diverged": float(diverged),
                    "log10_test_mse": np.nan if diverged else log - 0.1 * seed,
                }
            )
    cfg = get_study("capacity").Config()
    rctx = ReportContext(seeds=4, activations=["ReLU", "GELU", "Tanh"], config=cfg, specs=specs)
    claim = smooth_fits_smooth({"trials": pd.DataFrame(rows)}, rctx)
    # Tanh is smooth but no variant of ReLU: its bad fits (1e5) must not decide the claim
    assert "ReLU minus GELU" in claim.measured and "Tanh" not in claim.measured
    only_tanh = ReportContext(seeds=4, activations=["ReLU", "Tanh"], config=cfg, specs=specs)
    assert smooth_fits_smooth({"trials": pd.DataFrame(rows)}, only_tanh) is None
    assert claim.test.n == 3  # the seed where ReLU diverged is not a seed where it fitted
    assert "(1 of 4 seeds with a diverged run left out)" in claim.measured
    assert claim.supports == 1 and claim.test.mean_diff == pytest.approx(-1.0)
    assert "Adam at learning rate 0.001, 500 steps" in claim.conditions


def test_protocol_keys_stay_and_conditions_name_the_training():
    study = get_study("capacity")
    protocol = ("target", "depth", "width", "lr", "optimizer", "steps")
    assert all(tuple(t.params) == protocol for t in study.trials(study.Config(), ["ReLU"], 1))
    assert study.columns(study.Config()) == protocol
    cfg = study.Config(init="practice", until="plateau", patience=200, steps=4000)
    (t, *_) = study.trials(cfg, ["ReLU"], 1)
    assert {k: t.params[k] for k in ("init", "until", "patience", "min_improvement")} == {
        "init": "practice",
        "until": "plateau",
        "patience": 200,
        "min_improvement": 0.01,
    }
    assert study.columns(cfg) == (*protocol, "init", "until", "patience", "min_improvement")
    words = study.conditions(study.Config())
    assert words["fit (interpolation)"] == (
        "Adam at learning rate 0.001, 500 steps, depth 5, width 64, Xavier uniform init, "
        "200 training points on [-2, 2], targets sin/abs/step/sin10/cubic; tested on 500 "
        "points inside"
    )
    assert words["extrapolation"].endswith("; tested on [-3, -2) and (2, 3]")
    plateau = study.conditions(cfg)["fit (interpolation)"]
    assert "trained to a plateau (the training loss fell by less than 1% in 200 updates), " in (
        plateau
    )
    assert "at most 4000 steps" in plateau and "customary" in plateau
    specs = {s.name: s for s in study.property_specs}
    assert specs["extrapolation"].rests_on == ("fit (interpolation)",)
    assert specs["fit (interpolation)"].rests_on == ()
    with pytest.raises(ValueError):
        study.Config(until="forever")


def test_every_number_in_an_mse_table_column_is_written_one_way():
    """One format per column: MSEs from 1e-9 to 12 and their bounds are all written by
    render.text.sci (never "0.026" beside "2.6e-2" beside "12.3")."""
    import re

    from actlab.render.text import sci
    from actlab.studies.capacity import mse_table

    means = [math.log10(v) for v in (2.6e-2, 12.3, 1.2e-9, 0.5)]
    cells = pd.DataFrame(
        {
            "activation": ["A", "B", "C", "D"],
            "target": ["sin"] * 4,
            "diverged": [0, 1, 0, 0],
            "n_seeds": [3] * 4,
            "test_mean": means,
            "test_ci_low": [m - 0.3 for m in means],
            "test_ci_high": [m + 0.3 for m in means],
            "test_zeros": [0, 0, 1, 0],
            "plateaued": [3, 0, 0, 1],
            "improving": [0, 2, 3, 1],
            "constant": [0, 0, 0, 1],
        }
    )
    lines = mse_table(cells, ["A", "B", "C", "D"], ["sin"], "test_", seeds=3)[2:]
    written = []
    for line in lines:
        text = line.split(" | ")[1].replace("zero(s)", "zeros")
        text = re.sub(r"\([^()]*\)", "", text)  # the counts, in brackets
        written += re.findall(r"-?\d[\d.]*(?:e-?\d+)?", text)
    assert len(written) == 3 * len(lines)
    assert all(sci(float(t)) == t for t in written), written


def test_smooth_fits_smooth_states_where_elu_stands_and_why():
    """From the audit: "smooth: no" for ELU (its slope is continuous at 0 at alpha = 1) was a
    convention the claims table did not state."""
    from actlab.studies.capacity import smooth_fits_smooth

    names = ("ReLU", "ELU", "GELU")
    specs = {n: get_activation(n) for n in names}
    rows = [
        {"activation": a, "target": "sin", "seed": s, "diverged": 0.0, "log10_test_mse": -2.0}
        for a in names
        for s in range(3)
    ]
    cfg = get_study("capacity").Config()
    rctx = ReportContext(seeds=3, activations=list(names), config=cfg, specs=specs)
    measured = smooth_fits_smooth({"trials": pd.DataFrame(rows)}, rctx).measured
    assert "ReLU, ELU minus GELU" in measured
    assert "smooth = infinitely differentiable" in measured
    assert "so ELU, whose slope is continuous at 0 but not its curvature" in measured
    assert "so ReLU" not in measured and "ReLU, ELU, whose" not in measured


def test_a_per_target_family_that_cannot_reach_p_005_says_so_before_its_results():
    """Audits T6 and L5: "ReLU and LeakyReLU are not separated by 6 seeds (... p = 0.031,
    Holm-adjusted over 5 targets p = 0.16)": 0.16 is the family's floor at 6 seeds, so
    "not separated" was certain before any data, and the section did not say so."""
    from actlab.studies.capacity import findings

    def planted(seeds: int):
        targets = ["sin", "abs", "step", "sin10", "cubic"]
        wide = pd.DataFrame(
            [
                {"activation": act, "target": t, "seed": s, "diverged": 0,
                 "log10_test_mse": base - 0.01 * s, "log10_extrap_mse": base}
                for t in targets
                for s in range(seeds)
                for act, base in (("ReLU", -3.0), ("LeakyReLU", -2.5))
            ]
        )  # fmt: skip
        cells = (
            wide.groupby(["activation", "target"], sort=False)
            .agg(test_mean=("log10_test_mse", "mean"), n_seeds=("seed", "count"))
            .reset_index()
            .assign(diverged=0, plateaued=0, improving=0, constant=0)
        )
        out = findings({"cells": cells, "trials": wide}, ["ReLU", "LeakyReLU"], targets, seeds)
        return out, targets

    out, targets = planted(6)
    assert out[0] == (
        "With 6 seeds and Holm's correction over 5 comparisons, the per-target tests of the "
        "lowest MSE against the runner-up cannot reach p < 0.05 whatever the data (the "
        "smallest attainable p is 0.16); 8 seeds would be needed, so 'not separated' here "
        "says nothing about the activations."
    )
    results = [i for i, s in enumerate(out) if "are not separated by 6 seeds" in s]
    assert len(results) == len(targets) and min(results) > 0
    assert "Holm-adjusted over 5 targets p = 0.16" in out[1]
    # At 8 seeds the same family can reach p < 0.05: no floor, and ReLU is separated.
    out, _ = planted(8)
    assert not any("cannot reach" in s for s in out)
    assert out[0].startswith("sin (sin(x)): lowest geometric-mean test MSE with ReLU")
    assert "ReLU is better than LeakyReLU" in out[0]
