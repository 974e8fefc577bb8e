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


def tiny_run(out, **extra):
    return actlab.run(
        config=actlab.RunConfig(
            activations=["Sigmoid", "ReLU", "Tanh"],
            studies=["stability"],
            seeds=2,
            study_config={"stability": TINY},
            **extra,
        ),
        out=out,
    )


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """One reported run of TINY (three activations, two seeds), shared by the tests that
    only read it."""
    return tiny_run(tmp_path_factory.mktemp("stability") / "full")


def test_end_to_end_report_and_batching_invariance(reported, tmp_path):
    full, split = reported, tiny_run(tmp_path / "split", max_members=1)
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


def test_training_losses_are_stored_at_every_recorded_step_of_every_seed(reported):
    df = reported.results
    loss = df[df["metric"] == "loss"]
    scalar = df[df["step"].isna()].pivot_table(index="trial", columns="metric", values="value")
    assert set(loss["trial"]) == set(scalar.index)  # every trial, every seed
    for trial, rows in loss.groupby("trial"):
        steps = sorted(rows["step"].astype(int))
        assert steps == list(range(1, len(steps) + 1))  # 1, 2, ... with no gap
        assert np.isfinite(rows["value"]).all()
        if scalar.loc[trial, "diverged"] == 0:  # a finite run: one loss per update
            assert len(steps) == scalar.loc[trial, "steps_completed"]
    per_cell = loss.groupby(["part", "activation", "depth", "lr", "step"])["seed"].nunique()
    assert per_cell.max() == 2


def test_the_curve_figure_is_in_the_section_with_its_caption(reported):
    figure = reported.path / "figures" / "stability_curves.png"
    assert figure.stat().st_size > 10_000
    report = reported.report_path.read_text()
    section = report[report.index("## Stability under stress") :]
    section = section[: section.index("\n## ")]
    assert "![Training loss per step](figures/stability_curves.png)" in section
    assert "the median over 2 seeds as a line and the range over seeds" in section
    assert "log scale" in section and "SGD at each learning rate" in section
    df = reported.results
    diverged = int(df[df["metric"] == "diverged"]["value"].sum())
    runs = df[df["metric"] == "diverged"]["trial"].nunique()
    expected = f"{diverged} of {runs} runs diverged" if diverged else "No run diverged."
    assert expected in section


def test_the_plotted_median_is_the_median_of_the_stored_losses(reported):
    from actlab.render.figures import median_band
    from actlab.studies.stability import summarize

    df = reported.results
    curves = summarize(df)["curves"]
    cell = curves[(curves["part"] == "depth") & (curves["activation"] == "Tanh")]
    cell = cell[cell["depth"] == TINY["depths"][-1]]
    band = median_band(cell).set_index("step")
    stored = df[
        (df["metric"] == "loss")
        & (df["part"] == "depth")
        & (df["activation"] == "Tanh")
        & (df["depth"] == TINY["depths"][-1])
    ]
    for step in (1, 7, TINY["depth_steps"]):
        values = stored[stored["step"] == step]["value"]
        if values.empty:
            continue
        assert band.loc[step, "median"] == np.median(values)
        assert band.loc[step, "low"] == values.min() and band.loc[step, "high"] == values.max()
        assert band.loc[step, "n"] == len(values)


def test_median_band_leaves_non_finite_losses_out_and_a_diverged_run_draws():
    import pandas as pd

    from actlab.render.figures import activation_colours, draw_loss_curves, median_band, pyplot

    curves = pd.DataFrame(
        {
            "activation": ["ReLU"] * 7,
            "seed": [0, 1, 2, 0, 1, 2, 0],
            "step": [1, 1, 1, 2, 2, 2, 3],
            "value": [1.0, 4.0, 2.0, 0.5, math.nan, math.inf, 0.25],
            "diverged": [0, 1, 0, 0, 1, 0, 0],
        }
    )
    band = median_band(curves)
    assert band["step"].tolist() == [1, 2, 3]
    assert band["median"].tolist() == [2.0, 0.5, 0.25]
    assert band["low"].tolist() == [1.0, 0.5, 0.25] and band["high"].tolist() == [4.0, 0.5, 0.25]
    assert band["n"].tolist() == [3, 1, 1]
    fig, ax = pyplot().subplots()
    draw_loss_curves(ax, curves, ["ReLU"], activation_colours(["ReLU"]))
    median, ends = ax.get_lines()
    assert median.get_ydata().tolist() == [2.0, 0.5, 0.25]
    assert ends.get_xdata().tolist() == [1] and ends.get_ydata().tolist() == [4.0]  # its x
    assert ax.get_yscale() == "log"
    pyplot().close(fig)


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


# -- beyond the protocol: steps to learn, train until learned, init, conditions -------------
# SGD on a small network: at lr 0.003 nothing learns in 300 steps (slow, not unstable), at
# lr 0.3 Tanh and ReLU learn within about 100 steps and Linear diverges.
LEARNS = {
    "parts": ["lr"],
    "lrs": [0.003, 0.3],
    "lr_depth": 2,
    "width": 16,
    "n_points": 30,
    "lr_steps": 300,
}


def run_rows(acts, seeds=2, **settings):
    study = get_study("stability")
    cfg = study.Config(**{**LEARNS, **settings})
    table = {n: get_activation(n) for n in acts}
    trials = study.trials(cfg, list(acts), seeds)
    rows = study.run(trials, RunContext(run_seed=0, config=cfg, activations=table))
    return cfg, trials, rows


def scalars(rows):
    return {r["metric"]: r["value"] for r in rows if "step" not in r and "layer" not in r}


def losses(rows):
    return [r["value"] for r in sorted(rows, key=lambda r: r.get("step", 0)) if "step" in r]


def test_steps_to_learn_is_the_first_step_whose_loss_is_below_the_learned_line():
    cfg, _, rows = run_rows(["Linear", "Tanh", "ReLU"])
    found = set()
    for trial_rows in rows:
        got = scalars(trial_rows)
        line = cfg.learned_below * got["target_variance"]
        # the loss of stored step k is recorded after k - 1 updates
        below = [k - 1 for k, v in enumerate(losses(trial_rows), start=1) if v < line]
        if below:
            assert got["steps_to_learn"] == below[0]
            found.add("learned" if got["learned"] else "rose again")
        else:
            assert math.isnan(got["steps_to_learn"]) and got["learned"] == 0
            found.add("never")
    assert {"learned", "never"} <= found


def test_until_learned_stops_each_run_where_it_learned_and_changes_nothing_before():
    _, trials, full = run_rows(["Linear", "Tanh", "ReLU"])
    _, early_trials, early = run_rows(["Linear", "Tanh", "ReLU"], until="learned")
    assert [t.params for t in trials] == [
        {k: v for k, v in t.params.items() if k != "until"} for t in early_trials
    ]
    assert {t.params["until"] for t in early_trials} == {"learned"}
    stopped = 0
    for a, b in zip(full, early, strict=True):
        got, ref = scalars(b), scalars(a)
        if math.isnan(ref["steps_to_learn"]):  # never learned: the run is the same run
            assert losses(a) == losses(b) and got["steps_completed"] == ref["steps_completed"]
            continue
        s = int(ref["steps_to_learn"])
        assert got["steps_to_learn"] == s and got["steps_completed"] == s  # before its update
        assert losses(b) == losses(a)[: s + 1]
        # the final parameters are those whose loss fell below the line: it ends learned
        assert got["loss_after_training"] == pytest.approx(losses(b)[-1], rel=1e-6)
        assert got["learned"] == 1 and got["diverged"] == 0
        stopped += s < LEARNS["lr_steps"]
    assert stopped >= 2


def test_protocol_trial_keys_stay_and_new_settings_join_them_only_when_set():
    study = get_study("stability")
    protocol = ("part", "depth", "width", "lr", "optimizer", "steps")
    for t in study.trials(study.Config(), ["ReLU"], seeds=1):
        assert tuple(t.params) == protocol
    assert study.columns(study.Config()) == protocol
    cfg = study.Config(init="practice", until="learned")
    (t, *_) = study.trials(cfg, ["ReLU"], seeds=1)
    assert t.params["init"] == "practice" and t.params["until"] == "learned"
    assert "sigma_b" not in t.params and "init=practice" in t.key
    assert study.columns(cfg) == (*protocol, "init", "until")
    (t, *_) = study.trials(study.Config(init="critical", sigma_b=0.1), ["ReLU"], seeds=1)
    assert t.params["sigma_b"] == 0.1
    with pytest.raises(ValueError):
        study.Config(init="he_uniform")


def test_the_init_setting_reaches_the_networks_in_exact_mode():
    study = get_study("stability")
    cfg = study.Config(**{**TINY, "parts": ["lr"], "lrs": [0.05], "init": "kaiming_normal"})
    acts = {"Tanh": get_activation("Tanh")}
    trials = study.trials(cfg, ["Tanh"], seeds=2)
    ctx = RunContext(run_seed=1, config=cfg, activations=acts, exact=True)
    rows = study.run(trials, ctx)
    x, y = sine_data(cfg.n_points)
    sizes = layer_sizes(1, cfg.width, cfg.lr_depth)
    for trial, trial_rows in zip(trials, rows, strict=True):
        ref, _ = reference.train(
            initial_params(ctx, sizes, "kaiming_normal", trial.seed),
            torch.tanh,
            x,
            y,
            "sgd",
            0.05,
            cfg.lr_steps,
            DivergenceRule(grad_limit=cfg.grad_limit),
        )
        assert losses(trial_rows) == [v for v in ref.losses[0] if not math.isnan(v)]
    protocol = study.Config(**{**TINY, "parts": ["lr"], "lrs": [0.05]})
    xavier = study.run(study.trials(protocol, ["Tanh"], seeds=2), RunContext(1, protocol, acts))
    assert losses(xavier[0])[0] != losses(rows[0])[0]


def test_a_cell_where_most_seeds_diverged_is_drawn_as_diverged():
    from actlab.studies.stability import majority_state

    def row(**counts):
        return {"learned": 0, "stuck": 0, "failed": 0, "diverged": 0, "seeds": 6, **counts}

    assert majority_state(row(learned=1, diverged=5)) == "diverged"
    assert majority_state(row(learned=3, diverged=3)) == "diverged"  # the worst wins a tie
    assert majority_state(row(learned=4, diverged=2)) == "learned"
    assert majority_state(row(stuck=6)) == "stuck"
    assert majority_state(row(diverged=6)) == "diverged"


def test_report_shows_steps_to_learn_and_tells_slow_from_unstable(tmp_path):
    run = actlab.run(
        config=actlab.RunConfig(
            activations=["Linear", "Tanh", "ReLU"],
            studies=["stability"],
            seeds=2,
            study_config={"stability": LEARNS},
        ),
        out=tmp_path / "r",
    )
    study = get_study("stability")
    summary = study.summarize(run.results)
    lr = summary["lr"].set_index(["activation", "lr"])
    relu = run.results[
        (run.results["metric"] == "steps_to_learn")
        & (run.results["activation"] == "ReLU")
        & (run.results["lr"] == 0.3)
    ]
    assert lr.loc[("ReLU", 0.3), "steps_median"] == np.median(relu["value"])
    assert lr.loc[("ReLU", 0.003), "steps_median"] == np.inf  # beyond the budget
    assert lr.loc[("Linear", 0.3), "state"] == "diverged"
    report = run.report_path.read_text()
    assert "**3a, steps to learn**" in report
    relu_row = next(line for line in report.splitlines() if line.startswith("| ReLU | > 300"))
    assert relu_row.startswith(f"| ReLU | > 300 (0/2 learned) | {np.median(relu['value']):g} ")
    assert "(2/2 learned)" in relu_row
    assert "| Linear | > 300 (0/2 learned) | > 300 (0/2 learned; 2 diverged) |" in report
    slow = next(line for line in report.splitlines() if "not unstable" in line)
    assert slow.startswith("- At learning rate 0.003 these learned in at most half")
    assert "within 300 steps" in slow and "ReLU (0/2)" in slow
    assert "Linear" not in slow  # it learned at no rate: not slow, it cannot
    never = next(line for line in report.splitlines() if "at no learning rate" in line)
    assert never.startswith("- Learned in most seeds at no learning rate of the sweep")
    assert "Linear" in never and "ReLU" not in never


def test_conditions_name_each_property_s_training():
    study = get_study("stability")
    words = study.conditions(study.Config())
    assert set(words) == {s.name for s in study.property_specs}
    assert words["learning-rate robustness"] == (
        "SGD at learning rates 0.001-1, 100 steps, depth 10, width 64, Xavier uniform init, "
        "sin(pi x) on 200 points"
    )
    assert words["depth robustness"] == (
        "Adam at learning rate 0.01, 200 steps, depths 5-100, width 64, Xavier uniform init, "
        "sin(pi x) on 200 points"
    )
    sound = study.conditions(study.Config(init="practice", until="learned", lr_steps=2000))
    assert "2000 steps, stopped once learned" in sound["learning-rate robustness"]
    assert "customary" in sound["depth robustness"]
    assert all(s.rests_on == () for s in study.property_specs)


def test_claims_are_paired_tests_with_their_conditions():
    import pandas as pd

    from actlab.studies.base import Claim, ReportContext

    cfg, trials, rows = run_rows(["Linear", "Tanh", "ReLU"], parts=["lr", "depth"], depths=[2, 6])
    study = get_study("stability")
    table = [
        {**t.params, "study": "stability", "trial": t.key, "activation": t.activation,
         "seed": t.seed, "step": r.get("step"), "layer": r.get("layer"),
         "metric": r["metric"], "value": r["value"]}
        for t, trial_rows in zip(trials, rows, strict=True)
        for r in trial_rows
    ]  # fmt: skip
    summary = study.summarize(pd.DataFrame(table))
    specs = {n: get_activation(n) for n in ("Linear", "Tanh", "ReLU")}
    rctx = ReportContext(seeds=2, activations=list(specs), config=cfg, specs=specs)
    bounded, finite = study.claims(summary, rctx)
    assert isinstance(bounded, Claim) and isinstance(finite, Claim)
    assert bounded.supports == -1 and "Tanh minus ReLU" in bounded.measured
    lr = summary["trials"][summary["trials"]["part"] == "lr"]
    diverged = (lr["outcome"] == "diverged").groupby([lr["activation"], lr["seed"]]).sum()
    want = (diverged["Tanh"] - diverged["ReLU"]).mean()
    assert bounded.test.mean_diff == pytest.approx(want)
    assert bounded.conditions == study.conditions(cfg)["learning-rate robustness"]
    depth = summary["trials"][summary["trials"]["part"] == "depth"]
    unlearned = depth["outcome"].isin(["improving", "stuck", "failed"])  # finite, not learned
    share = unlearned.groupby(depth["seed"]).mean()
    assert finite.supports == -1 and finite.test.mean_diff == pytest.approx(share.mean())
    assert finite.conditions == study.conditions(cfg)["depth robustness"]


# -- still improving at the end of the budget, told apart from stuck ------------------------
VARIANCE = 0.5  # of the planted target: learned below 0.25, failed above 5
BUDGET = 200  # more than the plateau rule's patience (100 updates): the rule can judge


def falling(steps=BUDGET):
    """Above the learned line to the end, yet falling steadily: about 10% per 100 updates."""
    return 0.48 * np.exp(-np.arange(steps) / 1000)


def flattening(steps=BUDGET):
    """Falls for 50 updates, then flat at 0.4 (80% of the variance) to the end."""
    return np.maximum(0.48 - 0.002 * np.arange(steps), 0.4)


def planted_result(histories):
    """A TrainResult of finite runs that took every step of their budget, the loss after
    the last update a little below the last one recorded."""
    from actlab.engine.train import TrainResult

    losses = np.array(histories, dtype=float)
    return TrainResult(
        losses=losses,
        diverged=np.zeros(len(losses), dtype=bool),
        steps_completed=np.full(len(losses), losses.shape[1]),
        last_recorded_loss=losses[:, -1],
        loss_after=0.999 * losses[:, -1],
    )


def planted_rows(histories, **settings):
    from types import SimpleNamespace

    from actlab.studies.stability.run import trial_rows

    cfg = get_study("stability").Config(**settings)
    result = planted_result(histories)
    fixed = SimpleNamespace(learnable=False)  # no learnable activation parameters
    return [trial_rows(result, m, fixed, VARIANCE, cfg) for m in range(len(histories))]


def test_still_improving_is_capacity_s_plateau_rule_on_the_recorded_losses():
    from actlab.studies.capacity.config import MIN_IMPROVEMENT, PATIENCE, plateaued_at_end

    fields = get_study("capacity").Config.model_fields  # capacity's threshold, one home
    assert (fields["patience"].default, fields["min_improvement"].default) == (
        PATIENCE,
        MIN_IMPROVEMENT,
    )
    learned = 0.3 * np.exp(-np.arange(BUDGET) / 50)
    failed = np.full(BUDGET, 40.0) * np.exp(-np.arange(BUDGET) / 1000)
    rows = planted_rows([falling(), flattening(), learned, failed], depth_steps=BUDGET)
    got = [scalars(r) for r in rows]
    assert [g["stuck"] for g in got[:2]] == [1.0, 1.0]  # outcomes.py's word for both
    assert got[0]["still_improving"] == 1.0  # still falling when the budget ran out
    assert got[1]["still_improving"] == 0.0  # flat for its last 150 updates: stuck
    assert got[2]["learned"] == 1.0 and "still_improving" not in got[2]
    assert got[3]["failed"] == 1.0 and got[3]["still_improving"] == 1.0  # finite, unlearned
    for history, g in zip([falling(), flattening()], got, strict=False):
        assert g["still_improving"] == float(not plateaued_at_end(history))
    # A budget of PATIENCE updates or fewer is too short for the rule: no verdict, stuck.
    short = planted_rows([falling(PATIENCE), flattening(PATIENCE)], depth_steps=PATIENCE)
    assert all("still_improving" not in scalars(r) for r in short)


def planted_store(keep_metric=True):
    """A depth-stress results table: Tanh falls steadily to the end at depth 4 (both
    seeds) and flattens at depth 2; ReLU learns at both depths. `keep_metric=False` is the
    same store made before `still_improving` existed."""
    study = get_study("stability")
    cfg = study.Config(parts=["depth"], depths=[2, 4], depth_steps=BUDGET)
    trials = study.trials(cfg, ["Tanh", "ReLU"], seeds=2)
    learned = 0.3 * np.exp(-np.arange(BUDGET) / 50)
    histories = [
        learned
        if t.activation == "ReLU"
        else (falling() if t.params["depth"] == 4 else flattening())
        for t in trials
    ]
    table = [
        {**t.params, "study": "stability", "trial": t.key, "activation": t.activation,
         "seed": t.seed, "step": r.get("step"), "layer": r.get("layer"),
         "metric": r["metric"], "value": r["value"]}
        for t, trial_rows in zip(trials, planted_rows(histories), strict=True)
        for r in trial_rows
        if keep_metric or r["metric"] != "still_improving"
    ]  # fmt: skip
    import pandas as pd

    return cfg, pd.DataFrame(table)


def test_a_run_still_falling_at_the_end_is_still_improving_and_a_flat_one_stuck():
    from actlab.studies.base import ReportContext
    from actlab.studies.stability import report_markdown

    cfg, df = planted_store()
    study = get_study("stability")
    summary = study.summarize(df)
    trials = summary["trials"].set_index(["activation", "depth", "seed"])
    assert set(trials.loc[("Tanh", 4), "outcome"]) == {"improving"}
    assert set(trials.loc[("Tanh", 2), "outcome"]) == {"stuck"}
    assert set(trials.loc["ReLU", "outcome"]) == {"learned"}
    depth = summary["depth"].set_index(["activation", "depth"])
    assert depth.loc[("Tanh", 4), ["improving", "stuck", "state"]].tolist() == [2, 0, "improving"]
    assert depth.loc[("Tanh", 2), ["improving", "stuck", "state"]].tolist() == [0, 2, "stuck"]
    rctx = ReportContext(seeds=2, activations=["Tanh", "ReLU"], config=cfg)
    text = report_markdown(summary, rctx, "stability.png")
    tanh = next(line for line in text.splitlines() if line.startswith("| Tanh | 2 stuck"))
    assert tanh.split(" | ")[2].startswith("2 still improving ")
    assert "*still improving*: still improving at the end of the budget" in text
    finding = next(line for line in text.splitlines() if line.startswith("- 2 of the 4 "))
    assert finding.startswith(
        "- 2 of the 4 depth-stress runs that stayed finite without learning were still "
        f"improving at the end of the budget of {BUDGET} steps"
    )
    assert "a longer budget may make them learn: Tanh at depth 4 (2/2)." in finding
    assert "2 stuck of 2 seeds" in text  # Tanh first fails at depth 2, where it is stuck
    limit = study.limits(cfg)["depth robustness"]
    assert "still improving at the end of the budget" in limit and "longer budget" in limit
    # the scores (share of settings learned) do not change; the verdicts name the state
    props = study.properties(summary, rctx)
    tanh_deep = props[(props["activation"] == "Tanh") & (props["setting"] == "depth=4")]
    assert (tanh_deep["score"] == 0).all()
    assert (tanh_deep["outcome"] == "still improving").all()


def test_a_store_made_before_still_improving_reads_as_before():
    from actlab.studies.base import ReportContext
    from actlab.studies.stability import report_markdown

    cfg, new = planted_store()
    _, old = planted_store(keep_metric=False)
    assert "still_improving" in set(new["metric"]) and "still_improving" not in set(old["metric"])
    study = get_study("stability")
    summary = study.summarize(old)
    assert set(summary["trials"][summary["trials"]["activation"] == "Tanh"]["outcome"]) == {"stuck"}
    depth = summary["depth"].set_index(["activation", "depth"])
    assert depth.loc[("Tanh", 4), ["improving", "stuck", "state"]].tolist() == [0, 2, "stuck"]
    rctx = ReportContext(seeds=2, activations=["Tanh", "ReLU"], config=cfg)
    text = report_markdown(summary, rctx, "stability.png")
    assert (
        "| Tanh | 2 stuck " in text
        and "still improving at the end of the budget"
        not in (text.split("**What the data says.**")[1])
    )
    props = study.properties(summary, rctx)
    renamed = study.properties(study.summarize(new), rctx)
    assert props["score"].equals(renamed["score"])  # the scores never depended on it
    # the old store's verdicts say stuck where the new one can tell still improving
    changed = props["outcome"] != renamed["outcome"]
    assert set(props[changed]["outcome"]) == {"stuck"}
    assert set(renamed[changed]["outcome"]) == {"still improving"}


def test_every_loss_in_a_state_table_column_is_written_one_way():
    """One format per column: a column's losses (from 1e-12 to 3e4) and their bounds are
    all written by render.text.sci (fmt's 3 significant digits switch notation by size:
    "0.00048 [4.16e-05, 0.00555]", the re-audit's example)."""
    import re

    import pandas as pd

    from actlab.render.text import sci
    from actlab.studies.stability import cell, grid

    base = {"learned": 0, "improving": 0, "stuck": 0, "failed": 0, "diverged": 0, "zeros": 0}
    losses = {"learned": 2.6e-2, "improving": 0.41, "stuck": 12.3, "failed": 3.1e4}
    rows = []
    for i, (state, loss) in enumerate(losses.items()):
        row = {**base, "activation": f"A{i}", "depth": 5, state: 2, "seeds": 2}
        for s in ("learned", "improving", "stuck", "failed"):
            row[f"loss_{s}"] = loss if s == state else math.nan
            row[f"loss_{s}_low"] = 0.5 * loss if s == state else math.nan
            row[f"loss_{s}_high"] = 2 * loss if s == state else math.nan
        rows.append(row)
    rows.append({**rows[0], "activation": "A4", "loss_learned": 1.2e-12})
    table = pd.DataFrame(rows)
    lines = grid(table, "depth", "depth", [5], list(table["activation"]), cell)[2:]
    numbers = [
        token
        for line in lines
        for token in re.findall(r"\d[\d.]*(?:e[+-]?\d+)?", line.split(" | ")[1])
    ]
    counts = {"2"}  # the run counts
    written = [t for t in numbers if t not in counts]
    assert len(written) == 3 * len(rows)
    assert all(sci(float(t)) == t for t in written), written
