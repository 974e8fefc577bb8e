"""Mean-field theory (actlab.theory) against exact mathematics, the literature's known points
(spec/validation.md) and brute-force integrals; and the `actlab theory` command."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import integrate
from typer.testing import CliRunner

from actlab import theory as T
from actlab.activations import BUILTINS, LEAKY_RELU_SLOPE, PRELU_SLOPE
from actlab.cli import app
from actlab.errors import UserError

MISH_EXPR = "x*tanh(softplus(x))"


# -- quadrature ---------------------------------------------------------------------------------


def test_exact_gaussian_expectations():
    assert T.expectation("relu") == pytest.approx(1 / math.sqrt(2 * math.pi), abs=1e-12)
    assert T.expectation("relu") == pytest.approx(0.398942, abs=1e-6)
    assert T.expectation("relu", power=2) == pytest.approx(0.5, abs=1e-12)
    assert T.expectation("gelu") == pytest.approx(1 / (2 * math.sqrt(math.pi)), abs=1e-12)
    assert T.expectation("gelu") == pytest.approx(0.282095, abs=1e-6)
    # ReLU'(z)^2 is the indicator of z > 0; E[ReLU(sqrt(q) z)^2] = q / 2 for every q
    assert T.expectation("relu", derivative=True, power=2) == pytest.approx(0.5, abs=1e-12)
    for q in (1e-6, 0.1, 10.0, 1e3):
        assert T.expectation("relu", q, power=2) == pytest.approx(q / 2, rel=1e-12)


def test_selu_maps_the_standard_normal_to_mean_0_variance_1():
    mean = T.expectation("selu")
    second = T.expectation("selu", power=2)
    assert abs(mean) < 1e-10
    assert second - mean**2 == pytest.approx(1.0, abs=1e-10)


def _brute_force(f, q: float, kinks) -> float:
    """scipy's adaptive quad on N(0, q), split at the kinks (and truncated at 13 sd)."""
    sd = math.sqrt(q)

    def integrand(x: float) -> float:
        return float(f(np.array([x]))[0]) * math.exp(-x * x / (2 * q)) / math.sqrt(2 * math.pi * q)

    points = sorted({-13 * sd, 13 * sd, *(k for k in kinks if abs(k) < 13 * sd)})
    return sum(
        integrate.quad(integrand, a, b, epsabs=1e-14, epsrel=1e-13, limit=400)[0]
        for a, b in zip(points[:-1], points[1:], strict=False)
    )


QUAD_ACTIVATIONS = [
    "ReLU",
    "Tanh",
    "GELU",
    "ELU",
    "SELU",
    "Hardswish",
    "ReLU6",
    "Hardtanh",
    "Softsign",
    "SquaredReLU",
    MISH_EXPR,
]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("name", QUAD_ACTIVATIONS)
def test_quadrature_matches_brute_force_integration(name):
    prep = T.prepare(name)
    integrands = {
        "phi": prep.phi,
        "phi^2": lambda x: prep.phi(x) ** 2,
        "phi'^2": lambda x: prep.dphi(x) ** 2,
    }
    for q in (0.1, 1.0, 10.0):
        for label, f in integrands.items():
            ours = T.gaussian_expectation(f, q, kinks=prep.kinks)
            ref = _brute_force(f, q, prep.kinks)
            assert abs(ours - ref) < 1e-8, (name, q, label, ours, ref)


def test_smooth_integrands_agree_with_gauss_hermite():
    x, w = np.polynomial.hermite_e.hermegauss(150)
    w = w / math.sqrt(2 * math.pi)
    assert T.expectation("tanh", power=2) == pytest.approx(np.sum(w * np.tanh(x) ** 2), abs=1e-12)
    assert T.expectation("sigmoid") == pytest.approx(0.5, abs=1e-14)
    assert T.expectation("tanh") == pytest.approx(0.0, abs=1e-15)


def test_gaussian_expectation_with_a_mean_and_at_zero_variance():
    assert T.gaussian_expectation(lambda x: x * x, 4.0, mean=1.5) == pytest.approx(6.25, rel=1e-13)
    assert T.gaussian_expectation(np.cos, 2.0) == pytest.approx(math.exp(-1.0), rel=1e-12)
    assert T.gaussian_expectation(np.cos, 0.0, mean=0.3) == pytest.approx(math.cos(0.3))
    with pytest.raises(UserError):
        T.gaussian_expectation(np.cos, -1.0)


def test_kink_detection_recovers_every_builtin_kink():
    for name in BUILTINS:
        assert T.detect_kinks(name) == BUILTINS[name].kinks, name
    # custom activations get detected kinks, located precisely
    assert T.prepare("relu(x)").kinks == (0.0,)
    assert T.prepare("sign(x)").kinks == (0.0,)  # a jump in phi itself
    assert T.prepare("erf(x)").kinks == ()
    (k,) = T.prepare("where(x > 1.3, x, 1.3)").kinks
    assert k == pytest.approx(1.3, abs=1e-9)
    assert T.prepare("where(x > 0.7, x, 0.7)").kinks[0] == pytest.approx(0.7, abs=1e-9)


def test_custom_activations_integrate_like_the_builtins():
    for q in (0.1, 1.0, 10.0):
        assert T.expectation("relu(x)", q) == pytest.approx(T.expectation("relu", q), abs=1e-13)
        assert T.expectation("max(x, 0.25*x)", q, power=2) == pytest.approx(
            T.expectation("prelu", q, power=2), abs=1e-12
        )
        assert T.expectation(MISH_EXPR, q, derivative=True, power=2) == pytest.approx(
            T.expectation("mish", q, derivative=True, power=2), abs=1e-12
        )


def _relu_kernel(q: float, c: float) -> float:  # arc-cosine kernel (Cho & Saul 2009)
    return q / (2 * math.pi) * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c)


def _erf_kernel(q: float, c: float) -> float:  # Williams 1997
    return 2 / math.pi * math.asin(2 * q * c / (1 + 2 * q))


@pytest.mark.parametrize("c", [-1.0, -0.5, 0.0, 0.5, 0.9, 0.999, 1 - 1e-8, 1.0])
def test_two_dimensional_expectations_match_closed_forms(c):
    for q in (0.1, 1.0, 10.0):
        assert T.pair_expectation("relu", q, c) == pytest.approx(_relu_kernel(q, c), abs=1e-11)
        step = (math.pi - math.acos(c)) / (2 * math.pi)  # E[1(u1 > 0) 1(u2 > 0)]
        assert T.pair_expectation("relu", q, c, derivative=True) == pytest.approx(step, abs=1e-11)
        assert T.pair_expectation("erf(x)", q, c) == pytest.approx(_erf_kernel(q, c), abs=1e-11)


# -- maps and fixed points ----------------------------------------------------------------------


def test_variance_map_slope_matches_finite_differences_and_stein():
    for name, q, sw in (("tanh", 0.7, 1.3), ("gelu", 2.0, 1.5), ("elu", 0.4, 1.1)):
        eps = 1e-5 * q
        fd = (T.variance_map(name, q + eps, sw, 0.2) - T.variance_map(name, q - eps, sw, 0.2)) / (
            2 * eps
        )
        assert T.variance_map_slope(name, q, sw) == pytest.approx(fd, rel=1e-7)
    # Stein: dq'/dq = chi_1 + sigma_w^2 E[phi phi''], with tanh'' = -2 tanh (1 - tanh^2)
    q, sw = 0.8, 1.4
    phi_phi2 = T.gaussian_expectation(lambda x: -2 * np.tanh(x) ** 2 * (1 - np.tanh(x) ** 2), q)
    assert T.variance_map_slope("tanh", q, sw) == pytest.approx(
        T.chi_1("tanh", q, sw) + sw**2 * phi_phi2, abs=1e-12
    )


@pytest.mark.parametrize("sw", [0.3, 0.6, 0.9, 0.99])
def test_tanh_without_bias_has_q_star_zero_and_chi_1_equal_to_sigma_w_squared(sw):
    fp = T.variance_fixed_point("tanh", sw, 0.0)
    assert fp.q == 0.0
    assert fp.stable and fp.status == "stable"
    mf = T.mean_field("tanh", sw, 0.0)
    assert mf.chi_1 == pytest.approx(sw**2, abs=1e-12)
    assert mf.q_slope == pytest.approx(sw**2, abs=1e-12)
    assert mf.xi_q == pytest.approx(-1 / math.log(sw**2), rel=1e-9)
    assert mf.phase == "ordered"
    assert mf.c_star is None and mf.xi_c is None  # degenerate correlation map at q* = 0


def test_tanh_critical_point_without_bias_is_sigma_w_1():
    edge = T.edge_of_chaos("tanh", 0.0)
    assert edge.sigma_w == pytest.approx(1.0, abs=1e-9)
    assert edge.q_star == 0.0
    assert edge.status == "marginally stable"  # q' = q - 2q^2 + ...: attracting, power law
    mf = T.mean_field("tanh", 1.0, 0.0)
    assert mf.q_star == 0.0 and mf.q_star_stable and mf.phase == "critical"
    assert mf.chi_1 == pytest.approx(1.0, abs=1e-12)
    assert mf.xi_q == math.inf
    # just above sigma_w = 1 the variance leaves 0 and the network turns chaotic
    above = T.mean_field("tanh", 1.05, 0.0)
    assert above.q_star > 0 and above.chi_1 > 1 and above.phase == "chaotic"


def test_erf_critical_sigma_w_squared_is_pi_over_4():
    edge = T.edge_of_chaos("erf(x)", 0.0)
    assert edge.sigma_w**2 == pytest.approx(math.pi / 4, abs=1e-10)
    assert edge.status == "marginally stable"


def test_relu_he_initialisation_is_critical_and_its_variance_map_is_the_identity():
    sw = math.sqrt(2.0)
    assert T.chi_1("relu", 1.0, sw) == pytest.approx(1.0, abs=1e-14)
    for q in (0.01, 1.0, 7.0, 300.0):  # every q is a fixed point: marginal, not attracting
        assert T.variance_map("relu", q, sw, 0.0) == pytest.approx(q, rel=1e-13)
        assert T.chi_1("relu", q, sw) == pytest.approx(1.0, abs=1e-13)
    fp = T.variance_fixed_point("relu", sw, 0.0)
    assert fp.q == 1.0 and fp.status == "neutral" and fp.stable is False
    assert fp.slope == pytest.approx(1.0, abs=1e-12)
    mf = T.mean_field("relu", sw, 0.0)
    assert mf.chi_1 == pytest.approx(1.0, abs=1e-14)
    assert mf.c_star == 1.0 and mf.phase == "critical"
    assert mf.xi_q == math.inf and mf.xi_c == math.inf
    edge = T.edge_of_chaos("relu", 0.0)
    assert edge.sigma_w == pytest.approx(sw, abs=1e-12) and edge.status == "neutral"
    # ReLU with a bias: chi_1 = sigma_w^2 / 2 < 1 at every fixed point, so no edge of chaos
    assert T.edge_of_chaos("relu", 0.3).status == "none"
    assert T.edge_of_chaos("relu", 0.3).sigma_w is None


def test_relu_below_and_above_he():
    assert T.mean_field("relu", 1.2, 0.0).q_star == 0.0
    assert T.mean_field("relu", 1.2, 0.0).chi_1 == pytest.approx(0.72, abs=1e-12)
    with_bias = T.mean_field("relu", 1.2, 0.5)
    assert with_bias.q_star == pytest.approx(0.25 / (1 - 0.72), rel=1e-10)
    assert with_bias.chi_1 == pytest.approx(0.72, abs=1e-12)
    over = T.mean_field("relu", 1.5, 0.0)  # sigma_w^2 / 2 > 1: the variance explodes
    assert over.q_star is None and over.phase == "unbounded" and over.chi_1 is None


def test_tanh_edge_of_chaos_rises_with_sigma_b():
    sigma_b = [0.0, 0.05, 0.1, 0.3, 0.5, 1.0]
    edge = [T.edge_of_chaos("tanh", b) for b in sigma_b]
    ws = [e.sigma_w for e in edge]
    assert all(a < b for a, b in zip(ws, ws[1:], strict=False)), ws
    assert all(e.status in ("stable", "marginally stable") for e in edge)
    assert ws[2] == pytest.approx(1.2, abs=0.01)  # literature: about 1.2 at sigma_b = 0.1
    assert ws[2] == pytest.approx(1.1934007250, abs=1e-8)  # this module's value
    # consistency: at that sigma_w the forward analysis finds chi_1(q*) = 1
    mf = T.mean_field("tanh", ws[2], 0.1)
    assert mf.q_star == pytest.approx(edge[2].q_star, rel=1e-9)
    assert mf.chi_1 == pytest.approx(1.0, abs=1e-9)
    assert mf.q_star_stable and mf.phase == "critical"


@pytest.mark.parametrize("name", ["swish", "gelu"])
def test_swish_and_gelu_criticality_sits_on_an_unstable_variance_fixed_point(name):
    # sigma_b = 0: chi_1 = 1 only at q* = 0, sigma_w = 1/phi'(0) = 2, where q' = q + O(q^2)
    # with a positive q^2 term: the variance fixed point repels.
    edge = T.edge_of_chaos(name, 0.0)
    assert edge.sigma_w is None and edge.status == "unstable"
    (point,) = edge.candidates
    assert point.sigma_w == pytest.approx(2.0, abs=1e-9) and point.q_star == 0.0
    assert "unstable" in edge.note
    assert T.variance_map(name, 1e-3, 2.0) > 1e-3
    # small sigma_b: the chi_1 = 1 point has q* > 0 with dq'/dq > 1 (checked by differences)
    edge = T.edge_of_chaos(name, 0.1)
    assert edge.sigma_w is None and edge.status == "unstable"
    (point,) = edge.candidates
    q, sw = point.q_star, point.sigma_w
    assert T.variance_map(name, q, sw, 0.1) == pytest.approx(q, rel=1e-10)
    assert T.chi_1(name, q, sw) == pytest.approx(1.0, abs=1e-9)
    fd = (T.variance_map(name, q * 1.001, sw, 0.1) - T.variance_map(name, q * 0.999, sw, 0.1)) / (
        0.002 * q
    )
    assert fd > 1.05
    # large sigma_b: the critical point is on a stable fixed point (large q*, sigma_w ~ sqrt 2)
    edge = T.edge_of_chaos(name, 1.0)
    assert edge.status == "stable" and edge.sigma_w == pytest.approx(1.40, abs=0.01)
    assert edge.q_star > 10


def test_variance_preserving_gains():
    nn = torch.nn.init
    assert T.variance_preserving_gain("relu") == pytest.approx(nn.calculate_gain("relu"), abs=1e-12)
    for name, slope in (("leakyrelu", LEAKY_RELU_SLOPE), ("prelu", PRELU_SLOPE)):
        expected = nn.calculate_gain("leaky_relu", slope)
        assert T.variance_preserving_gain(name) == pytest.approx(expected, abs=1e-12)
        assert expected == pytest.approx(math.sqrt(2 / (1 + slope**2)), abs=1e-12)
    tanh = T.variance_preserving_gain("tanh")
    assert tanh == pytest.approx(1.59, abs=0.01)
    assert tanh == pytest.approx(1.5925374197, abs=1e-9)  # 1/sqrt(E[tanh(z)^2])
    assert abs(tanh - nn.calculate_gain("tanh")) > 0.07  # PyTorch's 5/3 is a different choice
    for name in ("tanh", "relu", "gelu", "selu", MISH_EXPR):
        g = T.variance_preserving_gain(name)  # definition: q = 1 is a fixed point, sigma_b = 0
        assert T.variance_map(name, 1.0, g, 0.0) == pytest.approx(1.0, abs=1e-12)
    assert T.variance_preserving_gain("selu") == pytest.approx(1.0, abs=1e-9)
    assert T.variance_preserving_gain("0*x") is None


def test_correlation_fixed_points_and_depth_scales():
    # ordered: c* = 1 and chi_c = chi_1
    ordered = T.mean_field("tanh", 0.8, 0.3)
    assert ordered.phase == "ordered" and ordered.c_star == 1.0
    assert ordered.chi_c == pytest.approx(ordered.chi_1, abs=1e-15)
    assert ordered.xi_c == pytest.approx(-1 / math.log(ordered.chi_1), rel=1e-12)
    assert ordered.xi_q == pytest.approx(-1 / math.log(ordered.q_slope), rel=1e-12)
    # chaotic: c* < 1 is a fixed point of the correlation map with chi_c its slope, < 1
    sw, sb = 2.5, 0.3
    chaotic = T.mean_field("tanh", sw, sb)
    assert chaotic.phase == "chaotic" and 0 < chaotic.c_star < 1
    q, c = chaotic.q_star, chaotic.c_star
    assert T.correlation_map("tanh", c, q, sw, sb) == pytest.approx(c, abs=1e-10)
    h = 1e-5
    slope = (
        T.correlation_map("tanh", c + h, q, sw, sb) - T.correlation_map("tanh", c - h, q, sw, sb)
    ) / (2 * h)
    assert chaotic.chi_c == pytest.approx(slope, rel=1e-6)
    assert chaotic.chi_c == pytest.approx(T.chi_c("tanh", c, q, sw), abs=1e-14)
    assert chaotic.chi_c < 1
    assert chaotic.xi_c == pytest.approx(-1 / math.log(chaotic.chi_c), rel=1e-12)
    assert T.correlation_map("tanh", 1.0, q, sw, sb) == pytest.approx(1.0, abs=1e-13)
    # odd activation without bias: in the chaotic phase correlations decay to c* = 0
    assert T.mean_field("tanh", 2.0, 0.0).c_star == 0.0


def test_phase_diagram():
    sws, sbs = [0.5, 1.0, 1.5, 3.0], [0.0, 0.1, 0.5]
    pd = T.phase_diagram("tanh", sws, sbs)
    assert pd.sigma_w == tuple(sws) and pd.sigma_b == tuple(sbs)
    assert len(pd.phase) == len(sbs) and all(len(row) == len(sws) for row in pd.phase)
    assert pd.phase[0] == ("ordered", "critical", "chaotic", "chaotic")
    for i, edge in enumerate(pd.edge):
        assert edge.sigma_b == sbs[i]
        for j, sw in enumerate(sws):  # left of the edge ordered, right of it chaotic
            if abs(sw - edge.sigma_w) > 1e-6:
                expected = "ordered" if sw < edge.sigma_w else "chaotic"
                assert pd.phase[i][j] == expected, (sbs[i], sw, edge.sigma_w)
                assert (pd.chi_1[i][j] < 1) == (expected == "ordered")
    relu = T.phase_diagram("relu", [1.0, 2.0], [0.0])
    assert relu.phase == (("ordered", "unbounded"),)
    assert relu.q_star == ((0.0, None),)


def test_custom_expression_works_end_to_end():
    custom = T.mean_field(MISH_EXPR, 1.2, 0.1)
    builtin = T.mean_field("mish", 1.2, 0.1)
    assert custom.activation == MISH_EXPR
    for field in ("q_star", "chi_1", "c_star", "xi_q", "xi_c"):
        assert getattr(custom, field) == pytest.approx(getattr(builtin, field), rel=1e-9), field
    assert T.variance_preserving_gain(MISH_EXPR) == pytest.approx(
        T.variance_preserving_gain("mish"), rel=1e-12
    )


def test_results_are_frozen_and_inputs_are_checked():
    mf = T.mean_field("tanh", 1.0, 0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        mf.q_star = 2.0
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(UserError, match="sigma_w"):
            T.mean_field("tanh", bad, 0.0)
        with pytest.raises(UserError, match="sigma_b"):
            T.edge_of_chaos("tanh", bad)
    with pytest.raises(UserError, match="unknown activation"):
        T.mean_field("nosuch")


def test_importing_the_module_does_not_import_torch():
    code = "import sys, actlab.theory; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- the `actlab theory` command ----------------------------------------------------------------

JSON_KEYS = {
    "activation",
    "sigma_w",
    "sigma_b",
    "q_star",
    "q_star_stable",
    "chi_1",
    "c_star",
    "xi_q",
    "xi_c",
    "critical_sigma_w",
    "gain",
}


def _strict_json(text: str) -> dict:
    def refuse(token: str):
        raise AssertionError(f"invalid JSON constant {token}")

    return json.loads(text, parse_constant=refuse)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_cli_json_has_exactly_the_keys():
    result = invoke("theory", "tanh", "--sigma-w", "1.5", "--sigma-b", "0.1", "--json")
    assert result.exit_code == 0, result.output
    data = _strict_json(result.stdout)
    assert set(data) == JSON_KEYS
    assert data["activation"] == "Tanh" and data["sigma_w"] == 1.5 and data["sigma_b"] == 0.1
    mf = T.mean_field("tanh", 1.5, 0.1)
    assert data["q_star"] == pytest.approx(mf.q_star) and data["q_star_stable"] is True
    assert data["chi_1"] == pytest.approx(mf.chi_1) and data["c_star"] == pytest.approx(mf.c_star)
    assert data["xi_q"] == pytest.approx(mf.xi_q) and data["xi_c"] == pytest.approx(mf.xi_c)
    assert data["critical_sigma_w"] == pytest.approx(1.1934007250, abs=1e-8)
    assert data["gain"] == pytest.approx(1.5925374197, abs=1e-9)


def test_cli_json_uses_null_where_undefined():
    he = _strict_json(invoke("theory", "relu", "--sigma-w", str(math.sqrt(2)), "--json").stdout)
    assert set(he) == JSON_KEYS
    assert he["chi_1"] == pytest.approx(1.0) and he["q_star_stable"] is False
    assert he["xi_q"] is None and he["xi_c"] is None  # infinite depth scales
    assert he["critical_sigma_w"] == pytest.approx(math.sqrt(2))
    swish = _strict_json(invoke("theory", "swish", "--sigma-w", "2.2", "--json").stdout)
    assert swish["q_star"] is None and swish["q_star_stable"] is None and swish["chi_1"] is None
    assert swish["critical_sigma_w"] is None  # only on an unstable fixed point
    assert swish["gain"] == pytest.approx(T.variance_preserving_gain("swish"))


def test_cli_defaults_and_text_output():
    result = invoke("theory", "tanh")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("Tanh at sigma_w = 1, sigma_b = 0")
    for label in ("q*", "chi_1", "c*", "xi_q", "xi_c", "critical sigma_w", "gain"):
        assert f"\n  {label} " in text, label
    assert "marginally stable" in text and "1.59254" in text


def test_cli_accepts_a_custom_expression():
    result = invoke("theory", MISH_EXPR, "--sigma-w", "1.2", "--sigma-b", "0.1", "--json")
    assert result.exit_code == 0, result.output
    data = _strict_json(result.stdout)
    assert data["activation"] == MISH_EXPR
    assert data["chi_1"] == pytest.approx(T.mean_field("mish", 1.2, 0.1).chi_1, rel=1e-9)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["theory", "nosuch"], "unknown activation 'nosuch'"),
        (["theory", "tanh", "--sigma-w", "-1"], "sigma_w"),
        (["theory", "tanh", "--sigma-b", "-0.5", "--json"], "sigma_b"),
        (["theory", "tanh", "--sigma-w", "nan"], "sigma_w"),
    ],
)
def test_cli_user_errors_exit_2_with_one_line(args, fragment):
    result = invoke(*args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("actlab: error: ") and fragment in lines[0]
    assert result.stdout == ""


def test_critical_init_uses_the_edge_of_chaos_and_refuses_where_there_is_none(tmp_path):
    import actlab
    from actlab.errors import UserError
    from actlab.studies.base import RunContext, initial_params
    from actlab.theory import edge_of_chaos

    tanh = actlab.get_activation("tanh")
    edge = edge_of_chaos(tanh, 0.05).sigma_w
    ctx = RunContext(run_seed=0, config=None, activations={"Tanh": tanh})
    (w1, _), (w2, b2), _ = initial_params(ctx, [(256, 256)] * 3, "critical", 0, "Tanh", 0.05)
    assert abs(w2.std().item() * 16 / edge - 1) < 0.02  # N(0, sigma_w*^2 / fan_in)
    assert abs(b2.std().item() / 0.05 - 1) < 0.2

    cfg = {
        "gradient_flow": {
            "depths": [12],
            "width": 256,
            "n_samples": 64,
            "init": "critical",
            "sigma_b": 0.05,
            "report_depth": 12,
        }
    }
    run = actlab.run(
        config=actlab.RunConfig(
            activations=["Tanh"], studies=["gradient_flow"], seeds=2, study_config=cfg
        ),
        out=tmp_path / "ok",
        report=False,
    )
    df = run.results
    g = df[df["metric"] == "grad_mean_abs"].groupby("layer")["value"].mean()
    # At the edge of chaos the hidden layers' gradients neither vanish nor explode.
    assert 1 / 3 < g.loc[12] / g.loc[2] < 3
    with pytest.raises(UserError, match="GELU has no usable"):
        actlab.run(
            config=actlab.RunConfig(
                activations=["GELU"], studies=["gradient_flow"], seeds=1, study_config=cfg
            ),
            out=tmp_path / "no",
        )
    assert not (tmp_path / "no").exists()  # refused before anything was written
