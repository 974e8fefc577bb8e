"""`actlab profile`: one activation against baselines, with a report centred on it."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import actlab
from actlab.cli import app


def paired(df, metric, a, b):
    d = df[df["metric"] == metric]
    left = d[d["activation"] == a].assign(k=lambda t: t["trial"].str.replace(a, "X"))
    right = d[d["activation"] == b].assign(k=lambda t: t["trial"].str.replace(b, "X"))
    return left.merge(right, on=["k", "layer", "step"], suffixes=("_a", "_b"))


@pytest.mark.slow  # a whole profile run through the command line
def test_profile_of_a_mish_expression_matches_the_builtin(tmp_path):
    out = tmp_path / "profile"
    result = CliRunner().invoke(
        app,
        [
            "profile",
            "x*tanh(softplus(x))",
            "--name",
            "mish-expr",
            "--against",
            "mish,relu",
            "--preset",
            "quick",
            "--executor",
            "local",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    run = actlab.load(out)
    assert run.config.focus == "mish-expr"
    assert run.config.activations == ["mish-expr=x*tanh(softplus(x))", "mish", "relu"]
    df = run.results
    # Same weights and data (common random numbers), so the expression and the built-in
    # differ only by rounding: far inside the seed-to-seed spread.
    for metric in ("grad_mean_abs", "test_mse", "sparsity"):
        j = paired(df, metric, "mish-expr", "Mish")
        assert len(j) > 0, metric
        rel = np.abs(j["value_a"] - j["value_b"]) / np.maximum(np.abs(j["value_b"]), 1e-12)
        assert np.nanmax(rel) < 1e-3, metric
    states = paired(df, "learned", "mish-expr", "Mish")
    assert (states["value_a"] == states["value_b"]).all()
    report = run.report_path.read_text()
    assert "## Profile: mish-expr" in report
    assert "| fit (interpolation) |" in report and "Edge of chaos" in report


def test_profile_refuses_a_bad_activation_with_one_line(tmp_path):
    result = CliRunner().invoke(
        app, ["profile", "x*nosuch(x)", "--preset", "quick", "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 2
    assert "nosuch" in result.output and not (tmp_path / "p").exists()


def test_the_python_profile_plans_as_the_command_does():
    import torch

    from actlab.profiling import BASELINES, plan_profile

    def softer(x):
        return x * torch.sigmoid(1.5 * x)

    spec, focus, others = plan_profile(softer, BASELINES)
    assert focus == "softer" and spec.fn is softer and others == list(BASELINES)
    spec, focus, others = plan_profile("x*tanh(softplus(x))", ["relu", "gelu"], name="m")
    assert (spec, focus, others) == ("m=x*tanh(softplus(x))", "m", ["relu", "gelu"])
    _, focus, others = plan_profile("relu", ["ReLU", "Tanh"])
    assert focus == "ReLU" and others == ["Tanh"]  # a baseline that is the activation goes
    assert actlab.profile.__doc__ and "profile" in actlab.__all__
