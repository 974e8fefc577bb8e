"""The search's parts that train nothing: the space, the drops, successive halving."""

from __future__ import annotations

import math

import pytest
import torch

from actlab.errors import UserError
from actlab.expr import parse_expression
from actlab.search.halving import Rung, ranked, successive_halving
from actlab.search.screen import dedupe
from actlab.search.space import (
    BINARY,
    UNARY,
    Candidate,
    candidate_name,
    core_unit_expressions,
    default_space,
    read_space,
)


def test_sinc_is_sin_x_over_x_with_its_limit_at_zero():
    x = torch.tensor([-2.0, 0.0, 1e-8, 3.0], dtype=torch.float64, requires_grad=True)
    y = parse_expression("sinc(x)")(x)
    expected = torch.tensor(
        [math.sin(-2.0) / -2.0, 1.0, 1.0, math.sin(3.0) / 3.0], dtype=torch.float64
    )
    assert torch.allclose(y.detach(), expected, atol=1e-15)
    (slope,) = torch.autograd.grad(y.sum(), x)
    assert slope[1] == 0.0 and torch.isfinite(slope).all()


def test_core_unit_space_parses_and_covers_every_unary_and_binary():
    expressions = list(core_unit_expressions())
    # 25 unary templates, 3 with beta (x3); 10 binary, 3 with beta.
    unary = len(UNARY) + 2 * 3
    binary = len(BINARY) + 2 * 3
    # Only b(beta, beta) lacks x: 3 x 3 pairs of constants.
    assert len(expressions) == unary * unary * binary - 3 * 3 * binary
    for expression in expressions[:: max(1, len(expressions) // 400)]:
        parse_expression(expression)
    assert "sigmoid(x) * x" in expressions or "x * sigmoid(x)" in expressions
    assert any("sinc(x)" in e for e in expressions)
    space = default_space()
    assert len({c.name for c in space}) == len(space)
    assert space[0].name == candidate_name(space[0].expression)


def test_two_units_are_sampled_deterministically():
    a = default_space(2, sample=50, seed=3)
    b = default_space(2, sample=50, seed=3)
    assert a == b and 40 <= len(a) <= 50
    for c in a:
        parse_expression(c.expression)
    with pytest.raises(UserError, match="--units 3"):
        default_space(3)


def test_dedupe_drops_non_finite_constant_and_duplicates_with_reasons():
    cands = [
        Candidate("relu", "max(x, 0)"),
        Candidate("relu2", "(x + abs(x)) / 2"),
        Candidate("double_relu", "2*max(x, 0)"),
        Candidate("blowup", "exp(exp(x))"),
        Candidate("flat", "x - x + 3"),
        Candidate("cusp", "sqrt(abs(x))"),
        Candidate("swish", "x*sigmoid(x)"),
        Candidate("swish_again", "sigmoid(x)*x"),
    ]
    kept, drops = dedupe(cands)
    assert [c.name for c in kept] == ["relu", "double_relu", "swish"]
    reasons = {d.name: (d.reason, d.detail) for d in drops}
    assert reasons["relu2"] == ("duplicate", "same function as relu")
    assert reasons["swish_again"] == ("duplicate", "same function as swish")
    assert reasons["blowup"][0] == "not finite"
    assert reasons["flat"][0] == "constant"
    assert reasons["cusp"][0] == "derivative not finite"
    kept, drops = dedupe(cands, modulo_scale=True)
    assert "double_relu" not in [c.name for c in kept]
    # A negative scale is the sign symmetry with a positive scale (issue 29: it had been
    # kept as a different function).
    kept, drops = dedupe(
        [Candidate("t", "tanh(x)"), Candidate("mt", "-2*tanh(x)")], modulo_scale=True
    )
    assert [c.name for c in kept] == ["t"] and drops[0].reason == "duplicate up to sign"
    kept, _ = dedupe([Candidate("t", "tanh(x)"), Candidate("mt", "-2*tanh(x)")])
    assert [c.name for c in kept] == ["t", "mt"]  # without modulo_scale: another scale


def test_dedupe_drops_sign_and_reflection_and_says_when_that_is_approximate():
    cands = [
        Candidate("softplus", "softplus(x)"),
        Candidate("neg", "-softplus(x)"),
        Candidate("mirror", "softplus(-x)"),
        Candidate("both", "-softplus(-x)"),
        Candidate("swish", "x*sigmoid(x)"),
        Candidate("swish_mirror", "-x*sigmoid(-x)"),
        Candidate("odd_tanh", "-tanh(-x)"),  # tanh itself: kept, as nothing came before
        Candidate("gauss", "exp(-x*x)"),  # even: its reflection is itself
    ]
    kept, drops = dedupe(cands, symmetric_proxy=True)
    assert [c.name for c in kept] == ["softplus", "swish", "odd_tanh", "gauss"]
    found = {d.name: (d.reason, d.detail) for d in drops}
    assert found == {
        "neg": ("duplicate up to sign", "is -softplus"),
        "mirror": ("duplicate up to reflection", "is softplus at -x"),
        "both": ("duplicate up to sign and reflection", "is -softplus at -x"),
        "swish_mirror": ("duplicate up to reflection", "is swish at -x"),
    }
    _, drops = dedupe(cands, symmetric_proxy=False)
    assert all(
        d.detail.endswith(
            "approximate: the proxy's residual connection or normalisation breaks the symmetry"
        )
        for d in drops
    )


def test_read_space_names_the_line_of_a_bad_expression(tmp_path):
    good = tmp_path / "space.txt"
    good.write_text("# mine\nmy_swish = x*sigmoid(x)\nwhere(x<=0, 0.1*x, x)  # leaky\n\n")
    cands = read_space(good)
    assert cands[0] == Candidate("my_swish", "x*sigmoid(x)")
    assert cands[1].expression == "where(x<=0, 0.1*x, x)"
    assert cands[1].name == candidate_name("where(x<=0, 0.1*x, x)")
    bad = tmp_path / "bad.txt"
    bad.write_text("x*tanh(x)\n\nfoo(x)\n")
    with pytest.raises(UserError, match=r"bad.txt, line 3: .*unknown function 'foo'"):
        read_space(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(UserError, match="holds no candidates"):
        read_space(empty)
    twice = tmp_path / "twice.txt"
    twice.write_text("a=x\na=tanh(x)\n")
    with pytest.raises(UserError, match="line 2: the name 'a' is already used on line 1"):
        read_space(twice)


def test_successive_halving_keeps_the_best_on_a_synthetic_score():
    # True quality is the candidate's index; each rung's score is that plus a fixed pattern
    # of noise that shrinks with the rung's budget (+-3 at first, +-0.04 by the third rung),
    # so halving must carry the true top three through to the end.
    names = [f"c{i:03d}" for i in range(81)]
    quality = {n: float(i) for i, n in enumerate(names)} | {"relu": 40.0}
    seen = []

    def score(index, rung, given):
        seen.append((index, rung, list(given)))
        noise = 3.0 / rung.steps**2
        return {n: quality[n] + noise * ((int(quality[n]) * 37 % 7) - 3) / 3 for n in given}

    rungs = [Rung(1, 1), Rung(3, 2), Rung(9, 3), Rung(27, 3)]
    results = successive_halving(names, rungs, score, controls=["relu"], eta=3, keep=3)
    assert [len(g) for _, _, g in seen] == [82, 28, 10, 4]  # candidates + the control
    assert all("relu" in g for _, _, g in seen)
    assert results[-1].survivors == ("c080", "c079", "c078")
    assert all("relu" not in r.survivors for r in results)


def test_ranked_puts_nan_last_and_breaks_ties_by_name():
    assert ranked({"b": 1.0, "a": 1.0, "n": math.nan, "c": 2.0}) == ["c", "a", "b", "n"]


def test_theory_screen_drops_exploding_and_collapsing_signals_at_the_proxys_init():
    from actlab.search.screen import ProxyInit, theory_screen

    cands = [
        Candidate("relu", "max(x, 0)"),
        Candidate("cubic", "10*x**3"),  # (1/3) E[100 x^6] = 500 q^3: 500, then ~4e10
        Candidate("whisper", "1e-4*tanh(x)"),  # its own variance ~1e-9: the bias is all
        Candidate("swish", "x*sigmoid(x)"),
    ]
    kept, drops = theory_screen(cands)
    assert [c.name for c in kept] == ["relu", "swish"]
    by_name = {d.name: d for d in drops}
    assert by_name["cubic"].reason == "signal explodes"
    assert "after layer 2 of 2" in by_name["cubic"].detail
    assert by_name["whisper"].reason == "signal collapses"
    assert "after layer 1 of 2" in by_name["whisper"].detail
    # One layer is not deep enough for the cubic to explode.
    kept, _ = theory_screen(cands[:2], ProxyInit(depth=1))
    assert [c.name for c in kept] == ["relu", "cubic"]


def test_search_presets_are_toml_files_beside_the_run_presets():
    import tomllib

    from actlab.config import PRESET_DIRS
    from actlab.search.config import search_config, search_presets

    assert search_presets() == ["default", "quick"]
    folder = next(d / "search" for d in PRESET_DIRS if (d / "search").is_dir())
    for name in search_presets():
        written = tomllib.loads((folder / f"{name}.toml").read_text())
        config = search_config(name)
        assert {k: getattr(config, k) for k in written} == written, name


def test_a_candidate_that_is_a_known_activation_is_dropped_as_one():
    from actlab.search.screen import known_fingerprints

    seen = known_fingerprints(["ReLU", "Tanhshrink"], modulo_scale=False)
    cands = [
        Candidate("relu_again", "max(x, 0)"),
        Candidate("shrink_flipped", "tanh(x) - x"),  # -Tanhshrink: the sign symmetry
        Candidate("new", "erf(x) - x"),
    ]
    kept, drops = dedupe(cands, seen=seen)
    assert [c.name for c in kept] == ["new"]
    found = {d.name: (d.reason, d.detail) for d in drops}
    assert found["relu_again"] == ("duplicate", "same function as ReLU (a known activation)")
    assert found["shrink_flipped"][0] == "duplicate up to sign"
    assert found["shrink_flipped"][1].startswith("is -Tanhshrink (a known activation)")


def test_known_racers_are_builtins_that_are_not_controls():
    from actlab.search.config import search_config

    everyone = search_config("default").known_racers()
    assert "ReLU" not in everyone and "Tanhshrink" in everyone and "PAU" in everyone
    assert search_config("default", known=["Mish", "ELU"]).known_racers() == ["Mish", "ELU"]
    assert search_config("default", known=[]).known_racers() == []
    with pytest.raises(UserError, match="'Mishh' is not a built-in"):
        search_config("default", known=["Mishh"])
    with pytest.raises(UserError, match="ReLU is a control already"):
        search_config("default", known=["ReLU"])
