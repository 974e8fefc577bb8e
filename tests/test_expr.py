"""Tests for the safe expression parser: correct maths, clear refusals, no escapes, no hangs."""

from __future__ import annotations

import math
import pickle
import time

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from actlab.errors import UserError
from actlab.expr import ALLOWED_CONSTANTS, ALLOWED_FUNCTIONS, Expression, parse_expression

X = torch.linspace(-5, 5, 1001, dtype=torch.float64)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x", lambda x: x),
        ("x*tanh(softplus(x))", F.mish),
        ("x * sigmoid(1.702 * x)", lambda x: x * torch.sigmoid(1.702 * x)),
        ("0.5*x*(1+erf(x/sqrt(2)))", F.gelu),
        ("-x**2 + 3*x - 1", lambda x: -(x**2) + 3 * x - 1),
        ("x % 2", lambda x: torch.remainder(x, 2)),
        ("+x / pi + e", lambda x: x / math.pi + math.e),
        ("where(x > 0, x, 0.1*x)", lambda x: F.leaky_relu(x, 0.1)),
        ("where(x != 0, x, 1)", lambda x: torch.where(x != 0, x, 1.0)),
        ("clamp(x, -1, 1)", F.hardtanh),
        ("clip(x, 0, 6)", F.relu6),
        ("max(x, 0) + minimum(x, 0)*0.2", lambda x: F.leaky_relu(x, 0.2)),
        ("leaky_relu(x)", F.leaky_relu),
        ("leaky_relu(x, 0.3)", lambda x: F.leaky_relu(x, 0.3)),
        ("leaky_relu(x, x*0+0.3)", lambda x: F.leaky_relu(x, 0.3)),
        ("square(x) + abs(x) + sign(x)", lambda x: x * x + x.abs() + torch.sign(x)),
        ("atan(x) + arctan(x) + asinh(x)", lambda x: 2 * torch.atan(x) + torch.asinh(x)),
        (
            "exp2(x) + expm1(x) + log1p(x*x)",
            lambda x: torch.exp2(x) + torch.expm1(x) + torch.log1p(x * x),
        ),
        (
            "hardswish(x) + hardsigmoid(x) + logsigmoid(x)",
            lambda x: F.hardswish(x) + F.hardsigmoid(x) + F.logsigmoid(x),
        ),
        (
            "silu(x) - swish(x) + selu(x) + celu(x) + elu(x)",
            lambda x: F.selu(x) + F.celu(x) + F.elu(x),
        ),
        ("1e400 * 0 + x", lambda x: torch.full_like(x, math.nan)),
    ],
)
def test_valid_expressions_match_torch(text: str, expected) -> None:
    result = parse_expression(text)(X)
    assert result.shape == X.shape and result.dtype == torch.float64
    torch.testing.assert_close(result, expected(X), rtol=1e-12, atol=1e-12, equal_nan=True)


def test_keeps_dtype_and_shape() -> None:
    x = torch.randn(3, 4, 5, dtype=torch.float32, generator=torch.Generator().manual_seed(1))
    before = x.clone()
    y = parse_expression("where(x > 0, 1, 2) * 0.5")(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.equal(y, torch.where(x > 0, 0.5, 1.0))
    assert torch.equal(x, before)


def test_integer_input_is_promoted_to_float() -> None:
    assert parse_expression("x / 2")(torch.tensor([1, 3])).tolist() == [0.5, 1.5]


def test_allowed_names_are_exposed() -> None:
    assert {"sin", "softplus", "where", "clamp", "leaky_relu"} <= set(ALLOWED_FUNCTIONS)
    assert "eval" not in ALLOWED_FUNCTIONS and "open" not in ALLOWED_FUNCTIONS
    assert ALLOWED_CONSTANTS == {"pi": math.pi, "e": math.e}


def test_pickle_round_trip_keeps_only_the_text() -> None:
    expression = parse_expression("x*tanh(softplus(x))")
    assert isinstance(expression, Expression) and expression.source == "x*tanh(softplus(x))"
    state = expression.__getstate__()
    assert state == {"source": "x*tanh(softplus(x))"}
    restored = pickle.loads(pickle.dumps(expression))
    assert restored.source == expression.source
    torch.testing.assert_close(restored(X), expression(X))
    assert repr(restored) == "Expression('x*tanh(softplus(x))')"


# Each refused input and a fragment its message must contain, so users learn what to change.
REFUSED = [
    ("__import__('os')", "unknown function '__import__'"),
    ("x.__class__", "attribute access is not allowed"),
    ("().__class__.__bases__", "attribute access is not allowed"),
    ("x.exp()", "attribute access is not allowed; use functions such as exp(x)"),
    ("lambda x: x", "lambda is not allowed"),
    ("[x for x in y]", "comprehensions are not allowed"),
    ("x[0]", "indexing is not allowed"),
    ("open('f')", "unknown function 'open'"),
    ("exp(x, y=1)", "keyword arguments are not allowed in exp()"),
    ("exp(*x)", "*-unpacking is not allowed in exp()"),
    ("'a'", "constants of type str are not allowed"),
    ("True", "constants of type bool are not allowed"),
    ("None", "constants of type None are not allowed"),
    ("1j*x", "constants of type complex are not allowed"),
    ("b'x'", "constants of type bytes are not allowed"),
    ("x if x else 1", "use where(cond, a, b)"),
    ("(y:=x)", "assignment (:=) is not allowed"),
    ("f'{x}'", "f-strings are not allowed"),
    ("x and 1", "'and'/'or' are not allowed"),
    ("(x, x)", "tuples are not allowed"),
    ("{x: 1}", "dicts are not allowed"),
    ("x // 2", "operator '//' is not allowed"),
    ("x @ x", "operator '@' is not allowed"),
    ("~x", "operator '~' is not allowed"),
    ("not x", "operator 'not' is not allowed"),
    ("x < 1", "comparisons are only allowed as the first argument of where()"),
    ("where(0 < x < 1, x, 0)", "chained comparisons are not allowed"),
    ("where(x, 1, 0)", "where() needs a comparison"),
    ("where(x in x, 1, 0)", "operator 'in' is not allowed"),
    ("exp()", "exp() takes 1 argument, 0 given"),
    ("exp(x, x)", "exp() takes 1 argument, 2 given"),
    ("clamp(x, 0)", "clamp() takes 3 arguments, 2 given"),
    ("leaky_relu(x, 1, 2)", "leaky_relu() takes 1 to 2 arguments, 3 given"),
    ("exp(x)(x)", "only named functions such as exp(x) can be called"),
    ("y + 1", "unknown name 'y'; allowed names: x, pi, e; functions: sin"),
    ("exp + x", "'exp' is a function; call it, as in exp(x)"),
    ("x+", "cannot parse expression 'x+'"),
    ("", "cannot parse expression '': it is empty"),
    ("   ", "cannot parse expression '': it is empty"),
    ("x = 1", "cannot parse expression 'x = 1'"),
    ("3", "expression '3': does not use x"),
    ("pi * e", "does not use x"),
    ("x" + "+x" * 300, "characters long; the limit is 500"),
    ("(" * 240 + "x" + ")" * 240, "cannot parse expression"),
    ("exp(" * 60 + "x" + ")" * 60, "is nested 61 levels deep; the limit is 50"),
    ("-" * 100 + "x", "levels deep; the limit is 50"),
    ("+".join(["sin(x)*2"] * 55), "terms; the limit is 200"),
]


@pytest.mark.parametrize(("text", "fragment"), REFUSED)
def test_refused_inputs_raise_user_error_with_a_useful_message(text: str, fragment: str) -> None:
    with pytest.raises(UserError) as info:
        parse_expression(text)
    assert fragment in str(info.value)


def test_overlong_text_is_refused_before_parsing() -> None:
    text = "x*" * 300 + "x"
    assert len(text) > 500
    with pytest.raises(UserError, match="the limit is 500"):
        parse_expression(text)


def test_huge_powers_do_not_hang() -> None:
    start = time.perf_counter()
    result = parse_expression("10**10**10*x")(torch.tensor([-1.0, 1.0], dtype=torch.float64))
    big_literal = parse_expression("9" * 400 + "*x")(torch.tensor([1.0]))
    assert time.perf_counter() - start < 1.0
    assert result.tolist() == [-math.inf, math.inf]
    assert big_literal.tolist() == [math.inf]


def test_evaluation_errors_become_user_errors() -> None:
    # Comparisons are undefined for complex numbers, so torch raises while evaluating.
    with pytest.raises(UserError, match="cannot be evaluated"):
        parse_expression("where(x > 0, x, 0)")(torch.tensor([1j, 2j]))


ALPHABET = "x0123456789.+-*/()_ abcdefghijklmnopqrstuvwxyz,<>="


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet=ALPHABET, max_size=40))
def test_random_text_parses_or_raises_user_error_only(text: str) -> None:
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    start = time.perf_counter()
    try:
        result = parse_expression(text)(x)
    except UserError:
        pass
    else:
        assert isinstance(result, torch.Tensor) and result.shape == x.shape
    assert time.perf_counter() - start < 1.0


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.recursive(
        st.sampled_from(["x", "1", "2.5", "pi", "e", "0"]),
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**", "%"]), inner).map(
                lambda t: f"({t[0]}{t[1]}{t[2]})"
            ),
            st.tuples(st.sampled_from(["exp", "tanh", "relu", "softplus", "log"]), inner).map(
                lambda t: f"{t[0]}({t[1]})"
            ),
            st.tuples(inner, inner, inner).map(lambda t: f"where({t[0]} > {t[1]}, {t[2]}, x)"),
        ),
        max_leaves=12,
    )
)
def test_well_formed_expressions_always_evaluate_to_x_shape(text: str) -> None:
    x = torch.linspace(-3, 3, 13, dtype=torch.float64).reshape(13, 1)
    try:
        expression = parse_expression(text)
    except UserError as exc:  # only the size limits or "does not use x" may refuse these
        assert "does not use x" in str(exc) or "limit" in str(exc)
        return
    assert expression(x).shape == x.shape
