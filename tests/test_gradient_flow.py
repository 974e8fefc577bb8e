"""Experiment 1 end to end: protocol numbers, honest ratios, paired seeding, the report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import actlab
from actlab import reference
from actlab.activations import get_activation
from actlab.engine import generator, init_mlp_params, layer_sizes
from actlab.studies import get_study
from actlab.studies.base import RunContext
from actlab.studies.gradient_flow import honest_ratio, ratio_band, trial_rows

SMALL = {"depths": [2, 4], "width": 8, "n_samples": 8, "report_depth": 4}


def small_run(tmp_path, name="run", **overrides):
    settings = {
        "seeds": 2,
        "activations": ["ReLU", "Tanh", "GELU"],
        "studies": ["gradient_flow"],
        "gradient_flow": SMALL,
        **overrides,
    }
    return actlab.run(
        config=actlab.RunConfig(
            **{k: v for k, v in settings.items() if k != "gradient_flow"},
            study_config={"gradient_flow": settings["gradient_flow"]},
        ),
        out=tmp_path / name,
    )


def test_trial_rows_follow_the_protocol_names_and_guard_honestly():
    rows = trial_rows([1e-17, 2e-17, 4e-17], vanish_threshold=1e-8)
    by_metric = {r["metric"]: r["value"] for r in rows if "layer" not in r}
    assert [r["layer"] for r in rows if r["metric"] == "grad_mean_abs"] == [1, 2, 3]
    # The original's 1e-10 guard called this ratio infinite; it is 4, and vanished.
    assert by_metric["grad_ratio"] == pytest.approx(4.0)
    assert by_metric["grad_log10_ratio"] == pytest.approx(math.log10(4))
    assert by_metric["grad_collapsed"] == 1.0
    assert by_metric["grad_min"] == 1e-17 and by_metric["grad_max"] == 4e-17
    assert trial_rows([0.1, 0.01], 1e-8)[-1]["value"] == 0.0


def test_ratio_edge_cases_and_bands():
    assert honest_ratio(1.0, 0.0) == math.inf
    assert math.isnan(honest_ratio(0.0, 0.0))
    assert [ratio_band(r) for r in (1e7, 1e3, 50, 1, 0.01)] == [
        "severe vanishing",
        "significant decay",
        "moderate decay",
        "stable",
        "amplification",
    ]


def test_study_rows_equal_the_reference_protocol_bit_for_bit_in_exact_mode():
    """The study's numbers are the protocol's: same init, input, loss and metric as a plain
    nn.Sequential written from the protocol text."""
    study = get_study("gradient_flow")
    cfg = study.Config(depths=[6], width=16)
    acts = {n: get_activation(n) for n in ("Sigmoid", "Swish")}
    trials = study.trials(cfg, list(acts), seeds=2)
    ctx = RunContext(run_seed=5, config=cfg, activations=acts, exact=True)
    rows = study.run(trials, ctx)
    sizes = layer_sizes(1, 16, 6)
    for trial, trial_rows_ in zip(trials, rows, strict=True):
        params = init_mlp_params(
            sizes, generator(5, "init", f"sizes={sizes}", "xavier_uniform", trial.seed)
        )
        x = torch.randn(32, 1, generator=generator(5, "gradient_flow/input", 32, 1, trial.seed))
        expected = reference.gradient_flow(params, acts[trial.activation].fn, x)
        got = [r["value"] for r in trial_rows_ if r["metric"] == "grad_mean_abs"]
        assert got == expected


def test_a_trial_alone_and_in_a_batch_of_20_gives_identical_numbers():
    study = get_study("gradient_flow")
    cfg = study.Config(depths=[10], width=64)
    names = [
        "Linear",
        "Sigmoid",
        "Tanh",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "GELU",
        "Swish",
        "Mish",
        "SELU",
    ]
    acts = {n: get_activation(n) for n in names}
    trials = study.trials(cfg, names, seeds=2)
    assert len(trials) == 20
    ctx = RunContext(run_seed=0, config=cfg, activations=acts)
    from actlab.executors import one_intra_op_thread
    from actlab.plan import Batch
    from actlab.runner import run_batch

    with one_intra_op_thread():
        together = run_batch(Batch("gradient_flow", trials), ctx)
        for k in (0, 7, 19):
            assert run_batch(Batch("gradient_flow", [trials[k]]), ctx)[0] == together[k]


def test_every_activation_sees_the_same_weights_and_inputs_within_a_seed():
    """Common random numbers: the init and input streams are keyed without the activation,
    so two names for the same function (a built-in and an expression) start from the same
    weights, see the same inputs, and so measure the same gradients."""
    study = get_study("gradient_flow")
    cfg = study.Config(depths=[5], width=16)
    acts = {
        "Swish": get_activation("Swish"),
        "swish_expr": get_activation("x*sigmoid(x)", name="swish_expr"),
    }
    rows = study.run(study.trials(cfg, list(acts), seeds=1), RunContext(0, cfg, acts))
    a = [r["value"] for r in rows[0] if r["metric"] == "grad_mean_abs"]
    b = [r["value"] for r in rows[1] if r["metric"] == "grad_mean_abs"]
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_tutorial_depth_50_reproduces_the_vanishing_the_original_mislabelled():
    """spec: at depth 50 GELU and Swish gradients vanish to ~1e-17 in every layer."""
    study = get_study("gradient_flow")
    cfg = study.Config(depths=[50])
    acts = {n: get_activation(n) for n in ("GELU", "Swish", "Tanh")}
    rows = study.run(study.trials(cfg, list(acts), seeds=1), RunContext(0, cfg, acts))
    vanished = {
        t: next(r["value"] for r in rows_ if r["metric"] == "grad_collapsed")
        for t, rows_ in zip(acts, rows, strict=True)
    }
    largest = {
        t: next(r["value"] for r in rows_ if r["metric"] == "grad_max")
        for t, rows_ in zip(acts, rows, strict=True)
    }
    assert vanished == {"GELU": 1.0, "Swish": 1.0, "Tanh": 0.0}
    assert largest["GELU"] < 1e-14 and largest["Swish"] < 1e-14 and largest["Tanh"] > 1e-4


def test_run_end_to_end_writes_results_figure_and_report(tmp_path):
    run = small_run(tmp_path)
    df = run.results
    assert set(df["study"]) == {"gradient_flow"}
    per_layer = df[df["metric"] == "grad_mean_abs"]
    # depth + 1 Linear layers per trial, 3 activations x 2 depths x 2 seeds trials
    assert len(per_layer) == 3 * 2 * (3 + 5)
    assert df["trial"].nunique() == 12
    assert {"grad_ratio", "grad_min", "grad_max", "grad_collapsed"} <= set(df["metric"])
    assert (run.path / "figures" / "gradient_flow.png").stat().st_size > 10_000
    report = run.report_path.read_text()
    for act in ("ReLU", "Tanh", "GELU"):
        assert f"| {act} |" in report
    assert "figures/gradient_flow.png" in report
    # Every number in the decay table comes from the results: check the decay across the
    # hidden layers (layer 4 over layer 2, same shape) and the protocol's last / first.
    tanh = df[(df["activation"] == "Tanh") & (df["depth"] == 4)]
    grads = tanh[tanh["metric"] == "grad_mean_abs"].pivot(
        index="seed", columns="layer", values="value"
    )
    decay = 10 ** (np.log10(grads[4.0]) - np.log10(grads[2.0])).mean()
    from actlab.render.text import sci

    section = report[report.index("**Gradient decay at depth 4, ") :]
    row = next(line for line in section.splitlines() if line.startswith("| Tanh | "))
    assert row.startswith(f"| Tanh | {sci(decay)} |")
    r = tanh[tanh["metric"] == "grad_log10_ratio"]
    assert row.endswith(f"| {sci(10 ** r['value'].mean())} |")


def test_report_is_rebuilt_from_stored_results_only(tmp_path):
    run = small_run(tmp_path)
    first = run.report_path.read_text()
    (run.path / "figures" / "gradient_flow.png").unlink()
    run.report_path.unlink()
    from typer.testing import CliRunner

    from actlab.cli import app

    result = CliRunner().invoke(app, ["report", str(run.path)])
    assert result.exit_code == 0, result.output
    assert run.report_path.read_text() == first
    assert (run.path / "figures" / "gradient_flow.png").exists()


def test_one_seed_report_says_there_is_no_error_bar(tmp_path):
    run = small_run(tmp_path, seeds=1)
    assert "no error bar" in run.report_path.read_text()


def test_results_do_not_depend_on_batching_or_on_which_activations_run(tmp_path):
    full = small_run(tmp_path, "full").results
    split = small_run(tmp_path, "split", max_members=1).results
    subset = small_run(tmp_path, "subset", activations=["GELU"]).results
    key = ["trial", "metric", "layer"]
    full_sorted = full.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(full_sorted, split.sort_values(key).reset_index(drop=True))
    gelu = full_sorted[full_sorted["activation"] == "GELU"].reset_index(drop=True)
    pd.testing.assert_frame_equal(gelu, subset.sort_values(key).reset_index(drop=True))


def test_practice_init_scales_the_same_random_numbers_per_activation():
    """Each activation at its customary initialisation (He for ReLU, Xavier for Tanh, LeCun
    for SELU) from the same standard normal draws: the comparison stays paired."""
    from actlab.studies.base import initial_params

    acts = {n: get_activation(n) for n in ("ReLU", "Tanh", "SELU")}
    ctx = RunContext(0, None, acts)
    sizes = layer_sizes(1, 16, 3)
    params = {n: initial_params(ctx, sizes, "practice", 0, n) for n in acts}
    for layer, (fan_in, fan_out) in enumerate(sizes):
        relu, tanh, selu = (params[n][layer][0].double() for n in ("ReLU", "Tanh", "SELU"))
        assert torch.allclose(
            relu / math.sqrt(2 / fan_in), tanh / math.sqrt(2 / (fan_in + fan_out))
        )
        assert torch.allclose(selu, relu / math.sqrt(2), rtol=1e-6)
    other_seed = initial_params(ctx, sizes, "practice", 1, "ReLU")
    assert not torch.equal(other_seed[1][0], params["ReLU"][1][0])


def test_critical_init_beside_the_customary_one(tmp_path):
    """init = ["practice", "critical"]: two properties; an activation with no edge of chaos
    (GELU at sigma_b = 0) is not measured at the second and the report says so."""
    run = small_run(tmp_path, gradient_flow={**SMALL, "init": ["practice", "critical"]})
    df = run.results
    assert set(df["init"]) == {"practice", "critical"}
    gelu = df[(df["activation"] == "GELU") & (df["init"] == "critical")]
    assert set(gelu["metric"]) == {"no_critical_init"}
    v = pd.read_csv(run.path / "verdicts.csv").set_index(["property", "activation"])
    assert v.loc[("gradient flow at the edge of chaos", "GELU"), "group"] == "not ranked"
    assert "no edge of chaos" in v.loc[("gradient flow at the edge of chaos", "GELU"), "outcomes"]
    assert "He for the rectifiers" in v.loc[("gradient flow", "ReLU"), "conditions"]
    assert "edge of chaos" in v.loc[("gradient flow at the edge of chaos", "ReLU"), "conditions"]
    report = run.report_path.read_text()
    assert "No edge of chaos at sigma_b = 0 (mean-field theory)" in report and "GELU" in report
    assert "depends on the initialisation" in report or "got the same reading" in report


def test_a_bad_init_list_is_refused():
    from actlab.studies.gradient_flow import Config

    with pytest.raises(ValueError, match="a list of one and 'critical'"):
        Config(init=["critical", "practice"])
