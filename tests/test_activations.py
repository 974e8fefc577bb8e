"""Tests for the activation registry: derivatives, formulas, facts, lookup and custom specs."""

from __future__ import annotations

import math
import pickle
import sys
import types

import pytest
import torch
import torch.nn.functional as F

from actlab.activations import (
    BUILTINS,
    SATURATION_SIDES,
    TUTORIAL_SET,
    Activation,
    autograd_derivative,
    available,
    get_activation,
    parse_activation_arg,
    validate_custom,
)
from actlab.errors import UserError
from actlab.learnable import PAU_DENOMINATOR, PAU_NUMERATOR

KINKS = [-6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0, 20.0, 20.0000001, -20.0, -20.0000001]
SMALL = [1e-300, -1e-300, 1e-12, -1e-12, 1e-6, -1e-6]


def probe_points() -> torch.Tensor:
    grid = torch.linspace(-30, 30, 6001, dtype=torch.float64)
    extra = torch.tensor(KINKS + SMALL, dtype=torch.float64)
    return torch.cat([grid, extra])


def golden_section_min(fn, lo: float, hi: float, iterations: int = 200) -> tuple[float, float]:
    """Minimum of a unimodal scalar function on [lo, hi], in float64."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    for _ in range(iterations):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if fn(c) < fn(d):
            b = d
        else:
            a = c
    x = (a + b) / 2
    return x, fn(x)


def scalar(act: Activation):
    return lambda v: act(torch.tensor(v, dtype=torch.float64)).item()


# --------------------------------------------------------------------------------- derivatives


@pytest.mark.parametrize("name", available())
def test_analytic_derivative_matches_autograd(name: str) -> None:
    act = BUILTINS[name]
    x = probe_points()
    analytic = act.derivative(x)
    reference = autograd_derivative(act.fn, x)
    # torch's fp64 hardsigmoid backward multiplies by the fp32 constant 1/6 (0.1666666716...);
    # ours is exact, so that one is compared at fp32 precision and checked exactly below.
    tolerance = 1e-8 if name == "Hardsigmoid" else 1e-12
    torch.testing.assert_close(analytic, reference, rtol=tolerance, atol=tolerance)
    assert analytic.dtype == torch.float64 and analytic.shape == x.shape


def test_hardsigmoid_slope_is_exactly_one_sixth_inside() -> None:
    x = torch.tensor([-3.0, -2.999, 0.0, 2.999, 3.0], dtype=torch.float64)
    d = BUILTINS["Hardsigmoid"].derivative(x)
    assert d.tolist() == [0.0, 1 / 6, 1 / 6, 1 / 6, 0.0]


@pytest.mark.parametrize(
    ("name", "points", "expected"),
    [
        ("ReLU", [0.0], [0.0]),
        ("LeakyReLU", [0.0], [0.01]),
        ("PReLU", [0.0], [0.25]),
        ("Hardswish", [-3.0, -2.0, 3.0], [0.0, -2 / 3 + 0.5, 1.0]),
        ("ReLU6", [0.0, 6.0, 5.9], [0.0, 0.0, 1.0]),
        ("Hardtanh", [-1.0, 1.0, 0.5], [0.0, 0.0, 1.0]),
        ("Softplus", [20.0000001], [1.0]),
        ("SELU", [0.0], [1.0507009873554805 * 1.6732632423543772]),
    ],
)
def test_kink_conventions_follow_autograd(name: str, points, expected) -> None:
    act = BUILTINS[name]
    x = torch.tensor(points, dtype=torch.float64)
    torch.testing.assert_close(act.derivative(x), torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(autograd_derivative(act.fn, x), act.derivative(x))


@pytest.mark.parametrize("name", available())
def test_derivative_keeps_float32(name: str) -> None:
    x = torch.linspace(-5, 5, 101, dtype=torch.float32).reshape(101, 1)
    d = BUILTINS[name].derivative(x)
    assert d.dtype == torch.float32 and d.shape == x.shape
    torch.testing.assert_close(d, autograd_derivative(BUILTINS[name].fn, x), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- forward formulas

FORMULAS = {
    "Linear": lambda x: x,
    "Sigmoid": lambda x: 1 / (1 + torch.exp(-x)),
    "Tanh": lambda x: (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x)),
    "ReLU": lambda x: torch.where(x > 0, x, 0.0),
    "LeakyReLU": lambda x: torch.where(x > 0, x, 0.01 * x),
    "ELU": lambda x: torch.where(x > 0, x, torch.exp(x) - 1),
    "GELU": lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))),
    "Swish": lambda x: x / (1 + torch.exp(-x)),
    "SELU": lambda x: (
        1.0507009873554805 * torch.where(x > 0, x, 1.6732632423543772 * (torch.exp(x) - 1))
    ),
    "CELU": lambda x: torch.where(x > 0, x, torch.exp(x) - 1),
    "Softplus": lambda x: torch.where(x > 20, x, torch.log1p(torch.exp(x))),
    "Mish": lambda x: x * torch.tanh(torch.log1p(torch.exp(x))),
    "Hardswish": lambda x: x * torch.clamp(x + 3, 0, 6) / 6,
    "Hardsigmoid": lambda x: torch.clamp(x + 3, 0, 6) / 6,
    "ReLU6": lambda x: torch.clamp(x, 0, 6),
    "Hardtanh": lambda x: torch.clamp(x, -1, 1),
    "Softsign": lambda x: x / (1 + x.abs()),
    "LogSigmoid": lambda x: -torch.log1p(torch.exp(-x)),
    "Tanhshrink": lambda x: x - torch.tanh(x),
    "GELU-tanh": lambda x: (
        0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    ),
    "QuickGELU": lambda x: x * torch.sigmoid(1.702 * x),
    "SquaredReLU": lambda x: torch.where(x > 0, x * x, 0.0),
    "PReLU": lambda x: torch.where(x > 0, x, 0.25 * x),
    # Learnable ones at their initial values (learnable.py).
    "Swish-beta": lambda x: x / (1 + torch.exp(-x)),
    "PAU": lambda x: (
        sum(a * x**i for i, a in enumerate(PAU_NUMERATOR))
        / (1 + sum(b * x ** (j + 1) for j, b in enumerate(PAU_DENOMINATOR)).abs())
    ),
    "Spline": lambda x: torch.where(x > 0, x, 0.0),
}


def test_every_builtin_has_a_reference_formula() -> None:
    assert set(FORMULAS) == set(BUILTINS)


@pytest.mark.parametrize("name", available())
def test_forward_matches_hand_written_formula(name: str) -> None:
    x = torch.linspace(-15, 15, 3001, dtype=torch.float64)
    torch.testing.assert_close(BUILTINS[name](x), FORMULAS[name](x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", available())
def test_forward_is_elementwise_and_leaves_input_alone(name: str) -> None:
    x = torch.randn(4, 5, 6, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    before = x.clone()
    y = BUILTINS[name](x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.equal(x, before)
    torch.testing.assert_close(BUILTINS[name](x.flatten()).reshape(x.shape), y)


def test_gelu_tanh_stays_close_to_exact_gelu() -> None:
    x = torch.linspace(-10, 10, 200001, dtype=torch.float64)
    gap = (BUILTINS["GELU-tanh"](x) - BUILTINS["GELU"](x)).abs().max().item()
    assert 4e-4 < gap < 5e-4


# ------------------------------------------------------------------------------- declared facts


@pytest.mark.parametrize(
    ("name", "slope"), [("Tanh", 1.0), ("Sigmoid", 0.25), ("Swish", 0.5), ("GELU", 0.5)]
)
def test_slope_at_zero(name: str, slope: float) -> None:
    assert BUILTINS[name].derivative(torch.zeros(1, dtype=torch.float64)).item() == pytest.approx(
        slope, abs=1e-15
    )


@pytest.mark.parametrize(
    ("name", "x_min", "y_min"),
    [
        ("Swish", -1.278465, -0.278465),
        ("GELU", -0.751792, -0.169971),
        ("Mish", -1.192431, -0.308843),
    ],
)
def test_minimum_of_non_monotonic_activations(name: str, x_min: float, y_min: float) -> None:
    act = BUILTINS[name]
    x, y = golden_section_min(scalar(act), -3.0, 0.0)
    assert x == pytest.approx(x_min, abs=1e-5)
    assert y == pytest.approx(y_min, abs=1e-5)
    # The derivative vanishes at the minimum, which checks the analytic derivative too.
    assert act.derivative(torch.tensor(x, dtype=torch.float64)).item() == pytest.approx(0, abs=1e-7)


@pytest.mark.parametrize("name", available())
def test_output_range_contains_the_outputs(name: str) -> None:
    act = BUILTINS[name]
    lo, hi = act.output_range
    y = act(torch.linspace(-50, 50, 100001, dtype=torch.float64))
    assert lo <= y.min().item() + 1e-6 and y.max().item() <= hi + 1e-6
    if math.isfinite(lo) and not act.monotonic:  # a stated dip must be tight, not just a bound
        assert y.min().item() - lo < 2e-6


@pytest.mark.parametrize("name", available())
def test_declared_shape_facts_hold(name: str) -> None:
    act = BUILTINS[name]
    x = torch.linspace(-30, 30, 60001, dtype=torch.float64)
    y, slope = act(x), act.derivative(x)
    assert act.monotonic == bool((slope >= 0).all())
    odd = torch.allclose(act(-x), -y, rtol=0, atol=1e-12)
    assert act.zero_centred == odd
    assert act.saturating in SATURATION_SIDES
    flat_left = abs(slope[0].item()) < 2e-3
    flat_right = abs(slope[-1].item()) < 2e-3
    declared = {"none": (False, False), "both": (True, True), "negative": (True, False)}
    assert declared.get(act.saturating, (False, True)) == (flat_left, flat_right)


def test_table_order_and_metadata() -> None:
    assert available()[:8] == list(TUTORIAL_SET)
    assert TUTORIAL_SET == (
        "Linear",
        "Sigmoid",
        "Tanh",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "GELU",
        "Swish",
    )
    for act in BUILTINS.values():
        assert act.builtin and act.formula and act.key_property and act.reference
        assert "http" in act.reference or act.name == "Linear"
    # PReLU's slope is learned (issue 17), from nn.PReLU's 0.25.
    assert BUILTINS["PReLU"].learnable is not None
    assert (
        "0.25" in BUILTINS["PReLU"].key_property and "learnable" in BUILTINS["PReLU"].key_property
    )
    assert "2109.08668" in BUILTINS["SquaredReLU"].reference
    smooth = {name for name, act in BUILTINS.items() if act.smooth}
    assert {"ReLU", "LeakyReLU", "ELU", "Hardswish", "ReLU6", "SquaredReLU", "PReLU"}.isdisjoint(
        smooth
    )
    assert {"GELU", "Swish", "Mish", "Tanh", "Softplus"} <= smooth


# ----------------------------------------------------------------------------------- name lookup


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("silu", "Swish"),
        ("SiLU", "Swish"),
        ("identity", "Linear"),
        ("none", "Linear"),
        ("GELU_TANH", "GELU-tanh"),
        ("gelu-tanh", "GELU-tanh"),
        ("geluTanh", "GELU-tanh"),
        ("gelu_new", "GELU-tanh"),
        ("approx_gelu", "GELU-tanh"),
        ("leaky_relu", "LeakyReLU"),
        ("lrelu", "LeakyReLU"),
        ("hard_swish", "Hardswish"),
        ("quick_gelu", "QuickGELU"),
        ("relu2", "SquaredReLU"),
        ("relu_squared", "SquaredReLU"),
        ("  relu  ", "ReLU"),
        ("RELU6", "ReLU6"),
    ],
)
def test_aliases_and_case_insensitive_lookup(spec: str, canonical: str) -> None:
    assert get_activation(spec) is BUILTINS[canonical]


def test_unknown_name_lists_the_valid_names() -> None:
    with pytest.raises(UserError) as info:
        get_activation("swishy")
    message = str(info.value)
    assert "unknown activation 'swishy'" in message
    assert all(name in message for name in available())
    assert "x*tanh(softplus(x))" in message


def test_renaming_a_builtin_keeps_its_derivative() -> None:
    act = get_activation("gelu", name="my_gelu")
    assert act.name == "my_gelu" and act.deriv is BUILTINS["GELU"].deriv and act.builtin


# ------------------------------------------------------------------------------ custom activations


def test_activation_instance_is_returned_as_is_or_renamed() -> None:
    act = BUILTINS["Mish"]
    assert get_activation(act) is act
    assert get_activation(act, name="m").name == "m"


def test_callable_becomes_custom_activation_with_autograd_derivative() -> None:
    def cube_ish(x: torch.Tensor) -> torch.Tensor:
        return x + 0.1 * x**3

    act = get_activation(cube_ish)
    assert act.name == "cube_ish" and not act.builtin and act.deriv is None
    x = torch.linspace(-2, 2, 41, dtype=torch.float64)
    torch.testing.assert_close(act.derivative(x), 1 + 0.3 * x**2)
    assert get_activation(cube_ish, name="c").name == "c"


def test_module_path_imports_a_callable() -> None:
    act = get_activation("torch:tanh")
    assert not act.builtin and act.source == "torch:tanh"
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)
    torch.testing.assert_close(act(x), torch.tanh(x))
    torch.testing.assert_close(act.derivative(x), BUILTINS["Tanh"].derivative(x))


def test_module_path_may_name_an_activation(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("my_acts")
    module.shifted = BUILTINS["ReLU"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "my_acts", module)
    assert get_activation("my_acts:shifted") is BUILTINS["ReLU"]
    assert get_activation("my_acts:shifted", name="r").name == "r"
    assert get_activation("actlab.activations:identity").source == "actlab.activations:identity"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("math:nosuch", "module 'math' has no attribute 'nosuch'"),
        ("nosuchmod:f", "cannot import module 'nosuchmod'"),
        ("math:pi", "'math:pi' is not callable"),
        ("torch:cumsum", "activation 'torch:cumsum' raised TypeError"),
        ("math:tanh", "activation 'math:tanh' raised ValueError when called"),
    ],
)
def test_bad_module_paths_fail_clearly(spec: str, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        get_activation(spec)


def test_expression_activation_derivative_matches_mish() -> None:
    act = get_activation("x*tanh(softplus(x))")
    assert act.name == "x*tanh(softplus(x))" and act.source == "x*tanh(softplus(x))"
    x = torch.linspace(-20, 20, 4001, dtype=torch.float64)
    torch.testing.assert_close(act(x), BUILTINS["Mish"](x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        act.derivative(x), BUILTINS["Mish"].derivative(x), rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize(
    ("text", "name", "source"),
    [
        ("mish2=x*tanh(softplus(x))", "mish2", "x*tanh(softplus(x))"),
        ("bent = x + 0.5*abs(x)", "bent", "x + 0.5*abs(x)"),
        ("step=where(x==0, 1, x)", "step", "where(x==0, 1, x)"),
        ("where(x==0, 1, x)", "where(x==0, 1, x)", "where(x==0, 1, x)"),
        ("where(x>=0, x, 0)", "where(x>=0, x, 0)", "where(x>=0, x, 0)"),
    ],
)
def test_parse_activation_arg(text: str, name: str, source: str) -> None:
    act = parse_activation_arg(text)
    assert (act.name, act.source) == (name, source)


def test_parse_activation_arg_with_builtin_and_plain_names() -> None:
    assert parse_activation_arg("r=relu").name == "r"
    assert parse_activation_arg("relu") is BUILTINS["ReLU"]


def test_expression_activation_pickles() -> None:
    act = get_activation("x*sigmoid(x)")
    x = torch.linspace(-4, 4, 9, dtype=torch.float64)
    torch.testing.assert_close(pickle.loads(pickle.dumps(act.fn))(x), act(x))


# -------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("log(x)", "activation 'log(x)' is not finite at x = -10 (gives nan)"),
        ("10**10**10*x", "is not finite at x = -10 (gives -inf)"),
        ("1/x", "is not finite at x = 0 (gives inf)"),
        ("sqrt(x - 5)", "is not finite at x = -10"),
    ],
)
def test_non_finite_expressions_name_the_offending_x(spec: str, fragment: str) -> None:
    with pytest.raises(UserError) as info:
        get_activation(spec)
    assert fragment in str(info.value)
    assert "finite for every real input" in str(info.value)


def test_non_elementwise_callable_is_refused() -> None:
    with pytest.raises(UserError, match="not elementwise"):
        get_activation(lambda x: torch.cumsum(x, 0) * 1e-3)
    with pytest.raises(UserError, match="not elementwise"):
        get_activation(lambda x: x - x.mean())


def test_wrong_shape_or_type_is_refused() -> None:
    with pytest.raises(UserError, match="tensor of its input's shape"):
        get_activation(lambda x: x.sum())
    with pytest.raises(UserError, match="tensor of its input's shape"):
        get_activation(lambda x: 1.0)


def test_in_place_callable_is_refused() -> None:
    with pytest.raises(UserError, match="modifies its input in place"):
        get_activation(lambda x: x.mul_(2))


def test_exceptions_in_user_code_become_user_errors() -> None:
    def broken(x: torch.Tensor) -> torch.Tensor:
        raise ValueError("boom")

    with pytest.raises(UserError, match="activation 'broken' raised ValueError when called: boom"):
        get_activation(broken)


def test_validate_custom_accepts_a_good_activation() -> None:
    act = get_activation(F.softsign, name="ss")
    validate_custom(act)  # does not raise
    assert act.name == "ss"


def test_non_identifier_garbage_reports_the_expression_problem() -> None:
    with pytest.raises(UserError, match="expression 'x.exp\\(\\)': attribute access"):
        get_activation("x.exp()")
    with pytest.raises(UserError, match="cannot make an activation from a int"):
        get_activation(3)


def test_shape_families_are_judged_from_the_function():
    from actlab.activations import (
        get_activation,
        has_zero_region,
        is_affine,
        is_bounded,
        is_smooth_rectifier,
    )

    def names(pred):
        return {
            n
            for n in (
                "Linear",
                "Sigmoid",
                "Tanh",
                "ReLU",
                "LeakyReLU",
                "ELU",
                "GELU",
                "Swish",
                "ReLU6",
            )
            if pred(get_activation(n))
        }

    assert names(is_affine) == {"Linear"}
    assert names(is_bounded) == {"Sigmoid", "Tanh", "ReLU6"}
    assert names(has_zero_region) == {"ReLU", "ReLU6"}
    assert names(is_smooth_rectifier) == {"GELU", "Swish"}
    # a custom expression is judged the same way as a built-in
    assert is_affine(get_activation("2*x+1")) and has_zero_region(get_activation("max(x, 0)"))
