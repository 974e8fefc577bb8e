"""Signal propagation: finite networks against mean-field theory (spec/validation.md), the
born-dead ReLU probability, and the study end to end.

Sizes for the finite-width checks: width 300, 16 hidden layers, 64 inputs, 4 seeds. Per layer
the measured gradient growth fluctuates by about sqrt(2 / width) ~ 8% around chi; the
geometric mean over the last 8 layers and the mean over 4 seeds bring that to ~1%, so the 5%
tolerance sits several standard errors away (measured: 0.1-0.2% off for these points).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import actlab
from actlab import theory
from actlab.activations import get_activation
from actlab.studies import get_study
from actlab.studies.base import RunContext
from actlab.studies.signal_propagation import (
    STATUS_CODES,
    born_dead_probability,
    edge_point,
    fixed_label,
    protocol_dw_factor,
    trial_rows,
)

STUDY = get_study("signal_propagation")
HE = math.sqrt(2.0)
FINITE = {"width": 300, "depth": 16, "n_samples": 64, "critical_sigma_b": [], "xavier": False}
TANH_POINTS = [(1.5, 0.05), (1.0, 0.3)]  # chaotic (chi_1 = 1.137) and ordered (0.700)


def run_trials(cfg, names, seeds, **ctx):
    acts = {n: get_activation(n) for n in names}
    trials = STUDY.trials(cfg, names, seeds)
    rows = STUDY.run(trials, RunContext(run_seed=0, config=cfg, activations=acts, **ctx))
    return trials, rows


def scalars(rows):
    return {r["metric"]: r["value"] for r in rows if "layer" not in r}


def profile(rows, metric):
    return np.array([r["value"] for r in rows if r["metric"] == metric])


@pytest.fixture(scope="module")
def finite():
    points = [{"sigma_w": sw, "sigma_b": sb} for sw, sb in [*TANH_POINTS, (HE, 0.0)]]
    cfg = STUDY.Config(**FINITE, points=points)
    return run_trials(cfg, ["Tanh", "ReLU"], seeds=4)


def per_point(finite, activation, sw, sb):
    trials, rows = finite
    label = fixed_label(sw, sb)
    return [
        r
        for t, r in zip(trials, rows, strict=True)
        if (t.activation, t.params["point"]) == (activation, label)
    ]


# -- finite width vs mean field ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("activation", "sw", "sb"), [("Tanh", *p) for p in TANH_POINTS] + [("ReLU", HE, 0.0)]
)
def test_gradient_growth_per_layer_is_chi_1_within_5_percent(finite, activation, sw, sb):
    trials = per_point(finite, activation, sw, sb)
    assert len(trials) == 4
    chi1 = theory.mean_field(activation, sw, sb).chi_1
    got = [scalars(r) for r in trials]
    assert all(s["pred_chi_1"] == pytest.approx(chi1, rel=1e-9) for s in got)
    measured = np.mean([s["growth_mean"] for s in got])
    assert measured / chi1 == pytest.approx(1.0, abs=0.05)
    assert np.mean([s["growth_vs_chi_1"] for s in got]) == pytest.approx(1.0, abs=0.05)
    if activation == "ReLU":  # He initialisation is exactly critical
        assert chi1 == pytest.approx(1.0, abs=1e-12)


def test_preact_variance_follows_the_q_map_for_tanh(finite):
    trials = per_point(finite, "Tanh", 1.5, 0.05)
    log_ratio = [np.log(profile(r, "preact_var") / profile(r, "pred_q")) for r in trials]
    per_layer = np.exp(np.mean(log_ratio, axis=0))  # geometric mean over seeds, per layer
    assert len(per_layer) == 16
    assert np.max(np.abs(per_layer - 1)) < 0.04
    assert np.mean([scalars(r)["var_ratio"] for r in trials]) == pytest.approx(1.0, abs=0.03)
    # the q-map trajectory ends at the theory's fixed point
    q_star = theory.variance_fixed_point("Tanh", 1.5, 0.05, q0=1.5**2 + 0.05**2).q
    assert profile(trials[0], "pred_q")[-1] == pytest.approx(q_star, rel=1e-3)


def test_predicted_rows_are_the_theory_layer_by_layer(finite):
    rows = per_point(finite, "Tanh", 1.0, 0.3)[0]
    q = profile(rows, "pred_q")
    chi = profile(rows, "pred_growth")
    assert q[0] == pytest.approx(1.0 + 0.09)
    for k in (0, 5, 14):
        assert q[k + 1] == pytest.approx(theory.variance_map("Tanh", q[k], 1.0, 0.3), rel=1e-12)
        assert chi[k] == pytest.approx(theory.chi_1("Tanh", q[k], 1.0), rel=1e-12)
    growth = profile(rows, "grad_growth")
    grad_sq = profile(rows, "grad_sq")
    np.testing.assert_allclose(growth, grad_sq[:-1] / grad_sq[1:], rtol=1e-12)


# -- critical points -----------------------------------------------------------------------------
def test_edge_point_reproduces_edge_of_chaos():
    edge = theory.edge_of_chaos("Tanh", 0.05)
    sw, sb, slope = edge_point("Tanh", edge.q_star)
    assert sw == pytest.approx(edge.sigma_w, rel=1e-9)
    assert sb == pytest.approx(0.05, rel=1e-6)
    assert slope < 1
    gelu = theory.edge_of_chaos("GELU", 0.05).candidates[0]
    sw, sb, slope = edge_point("GELU", gelu.q_star)
    assert sw == pytest.approx(gelu.sigma_w, rel=1e-9) and slope > 1  # repels


def test_critical_trials_measure_usable_points_and_record_why_others_are_missing():
    cfg = STUDY.Config(
        width=32, depth=4, n_samples=8, points=[], critical_sigma_b=[0.05], xavier=False
    )
    trials, rows = run_trials(cfg, ["Tanh", "GELU", "ReLU"], seeds=2)
    by = {t.activation: scalars(r) for t, r in zip(trials, rows, strict=True)}
    assert by["Tanh"]["critical_status"] == STATUS_CODES["stable"]
    assert by["Tanh"]["sigma_w"] == pytest.approx(theory.edge_of_chaos("Tanh", 0.05).sigma_w)
    assert by["Tanh"]["pred_chi_1"] == pytest.approx(1.0, abs=1e-6)
    # Swish/GELU: chi_1 = 1 sits on an unstable fixed point; ReLU: no solution at sigma_b > 0
    assert by["GELU"]["critical_status"] == STATUS_CODES["unstable"]
    assert by["GELU"]["critical_candidate_sigma_w"] == pytest.approx(1.8519, abs=1e-3)
    assert math.isnan(by["GELU"]["sigma_w"]) and "growth_mean" not in by["GELU"]
    assert by["ReLU"]["critical_status"] == STATUS_CODES["none"]


# -- the tutorial's gradient-flow metric ---------------------------------------------------------
def test_protocol_dw_factor_is_flat_for_relu_and_steep_for_sigmoid():
    # ReLU: q halves forwards and the gradient halves backwards, so mean |dW| is flat
    assert protocol_dw_factor("ReLU", 64, 20) == pytest.approx(1.0, rel=1e-9)
    assert protocol_dw_factor("Linear", 64, 20) == pytest.approx(1.0, rel=1e-9)
    # Sigmoid: q* > 0 and chi_1 = 0.056; last/first grows ~1/sqrt(chi_1) per layer
    assert 4.0 < protocol_dw_factor("Sigmoid", 64, 20) < 5.0


def test_trial_rows_summaries_use_the_last_half_of_the_layers():
    pred = {
        "pred_q": [1.0, 1.0, 1.0, 1.0],
        "pred_growth": [0.5, 0.5, 0.5],
        "pred_q_star": 1.0,
        "pred_q_status": 0.0,
        "pred_q_slope": 0.5,
        "pred_chi_1": 0.5,
    }
    rows = trial_rows([9.0, 9.0, 2.0, 0.5], [8.0, 2.0, 4.0, 4.0], pred, 1.0, 0.0)
    s = scalars(rows)
    assert profile(rows, "grad_growth").tolist() == [4.0, 0.5, 1.0]
    assert s["growth_mean"] == pytest.approx(math.sqrt(0.5))  # layers 2, 3
    assert s["var_mean"] == pytest.approx(1.0)  # layers 3, 4
    assert s["growth_ratio"] == pytest.approx(math.sqrt(0.5) / 0.5)
    zero = scalars(
        trial_rows(
            [1.0, 1.0], [0.0, 0.0], {**pred, "pred_q": [1.0, 1.0], "pred_growth": [0.5]}, 1.0, 0.0
        )
    )
    assert math.isnan(zero["growth_mean"]) and math.isnan(zero["growth_ratio"])


# -- born-dead ReLU networks ---------------------------------------------------------------------
def born_dead_monte_carlo(width: int, depth: int, n: int, seed: int = 0) -> float:
    """Fraction of n ReLU networks (zero biases, N(0, 1) weights, input x = 1) in which some
    hidden layer is entirely inactive."""
    gen = torch.Generator().manual_seed(seed)
    h = torch.ones(n, 1, 1, dtype=torch.float64)
    dead = torch.zeros(n, dtype=torch.bool)
    for _ in range(depth):
        w = torch.randn(n, width, h.shape[1], generator=gen, dtype=torch.float64)
        h = torch.relu(torch.bmm(w, h))
        dead |= (h == 0).all(dim=1).squeeze(-1)
    return float(dead.double().mean())


@pytest.mark.parametrize(("width", "depth"), [(2, 10), (3, 10), (4, 6)])
def test_born_dead_probability_matches_monte_carlo(width, depth):
    p = born_dead_probability(width, depth)
    assert p == pytest.approx(1 - (1 - 2.0**-width) ** depth, rel=1e-12)
    n = 20_000
    se = math.sqrt(p * (1 - p) / n)
    assert abs(born_dead_monte_carlo(width, depth, n) - p) < 3 * se


def test_born_dead_probability_limits():
    assert born_dead_probability(1, 1) == 0.5
    assert born_dead_probability(5, 0) == 0.0
    assert born_dead_probability(2, 200) == pytest.approx(1.0, abs=1e-24)  # deep and narrow: dead
    assert born_dead_probability(64, 100) == pytest.approx(100 * 2.0**-64, rel=1e-9)


# -- config --------------------------------------------------------------------------------------
def test_config_rejects_duplicates_and_unknown_keys():
    with pytest.raises(ValueError, match="listed twice"):
        STUDY.Config(points=[{"sigma_w": 1.0}, {"sigma_w": 1.0, "sigma_b": 0.0}])
    with pytest.raises(ValueError):
        STUDY.Config(widht=10)
    with pytest.raises(ValueError):
        STUDY.Config(points=[{"sigma_w": 0.0}])
    with pytest.raises(ValueError):
        STUDY.Config(critical_sigma_b=[-0.1])
    default = STUDY.Config()
    assert (default.width, default.depth, default.n_samples) == (1000, 40, 64)


def test_exact_mode_matches_fast_mode():
    cfg = STUDY.Config(
        width=24,
        depth=5,
        n_samples=8,
        points=[{"sigma_w": 1.5, "sigma_b": 0.1}],
        critical_sigma_b=[],
        xavier_width=8,
        xavier_depth=4,
    )
    _, fast = run_trials(cfg, ["Tanh", "GELU"], seeds=2)
    _, exact = run_trials(cfg, ["Tanh", "GELU"], seeds=2, exact=True)
    for a, b in zip(fast, exact, strict=True):
        assert [r["metric"] for r in a] == [r["metric"] for r in b]
        np.testing.assert_allclose([r["value"] for r in a], [r["value"] for r in b], rtol=1e-4)


# -- end to end ----------------------------------------------------------------------------------
TINY = {"width": 48, "depth": 6, "n_samples": 16, "xavier_width": 16, "xavier_depth": 5}


def tiny_run(tmp_path, name, studies=("signal_propagation",), report=True, **overrides):
    study_config = {"signal_propagation": TINY}
    if "gradient_flow" in studies:
        study_config["gradient_flow"] = {
            "depths": [5],
            "width": 16,
            "n_samples": 8,
            "report_depth": 5,
        }
    cfg = actlab.RunConfig(
        activations=["Tanh", "ReLU"],
        studies=list(studies),
        seeds=2,
        study_config=study_config,
        **overrides,
    )
    return actlab.run(config=cfg, out=tmp_path / name, report=report)


@pytest.mark.slow  # the study end to end, twice, with its report
def test_study_runs_end_to_end_with_report_figures_and_batch_invariance(tmp_path):
    run = tiny_run(tmp_path, "full", studies=("gradient_flow", "signal_propagation"))
    df = run.results
    sp = df[df["study"] == "signal_propagation"]
    # 3 fixed + 1 critical + Xavier points, 2 activations, 2 seeds
    assert sp["trial"].nunique() == 5 * 2 * 2
    assert set(sp["point"]) == {
        "sw=1,sb=0",
        "sw=1.41421,sb=0",
        "sw=1.5,sb=0.05",
        "critical,sb=0.05",
        "xavier_uniform",
    }
    assert len(sp[(sp["metric"] == "preact_var") & (sp["point"] == "sw=1,sb=0")]) == 2 * 2 * 6
    for name in ("signal_variance", "signal_gradients", "phase_diagram"):
        assert (run.path / "figures" / f"{name}.png").stat().st_size > 5_000
    report = run.report_path.read_text()
    assert "## Signal propagation" in report
    assert "figures/phase_diagram.png" in report
    assert "| Tanh | σw = 1.5, σb = 0.05 |" in report
    assert "ReLU at σb = 0.05: none" in report
    # the tutorial table picks up the gradient-flow study's numbers from the same run
    assert "measured by the gradient-flow study" in report
    gf = df[
        (df["study"] == "gradient_flow")
        & (df["metric"] == "grad_log10_ratio")
        & (df["activation"] == "Tanh")
    ]
    factor = float(np.mean(10 ** (gf["value"] / 5)))
    assert f"{factor:.3g} [" in report

    split = tiny_run(tmp_path, "split", max_members=1, report=False).results
    key = ["trial", "metric", "layer"]
    mine = sp.dropna(axis=1, how="all").sort_values(key).reset_index(drop=True)
    split = split.dropna(axis=1, how="all").sort_values(key).reset_index(drop=True)
    assert sorted(mine.columns) == sorted(split.columns)
    pd.testing.assert_frame_equal(mine, split[mine.columns], check_dtype=False)


def test_report_copes_with_a_run_where_no_network_could_be_built(tmp_path):
    cfg = actlab.RunConfig(
        activations=["GELU"],
        studies=["signal_propagation"],
        seeds=1,
        study_config={
            "signal_propagation": {"points": [], "critical_sigma_b": [0.05], "xavier": False}
        },
    )
    run = actlab.run(config=cfg, out=tmp_path / "none")
    report = run.report_path.read_text()
    assert "GELU at σb = 0.05: none usable" in report
    assert "No critical point measured for GELU (σb = 0.05)" in report
