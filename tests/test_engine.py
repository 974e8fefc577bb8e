"""The stacked engine against the plain reference loop (micrograd-style: engine vs PyTorch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from actlab import reference
from actlab.activations import get_activation
from actlab.engine import (
    DivergenceRule,
    StackedMLP,
    derive_seed,
    generator,
    init_mlp_params,
    layer_sizes,
    make_optimizer,
    train_regression,
)
from actlab.executors import one_intra_op_thread

MIXED = ["Linear", "Tanh", "ReLU", "Sigmoid", "GELU", "Swish", "ELU", "LeakyReLU"]


def members_for(n: int, sizes, scheme="xavier_uniform", dtype=torch.float32):
    return [
        init_mlp_params(sizes, generator(7, "test", k), scheme=scheme, dtype=dtype)
        for k in range(n)
    ]


def sine_data(n=50):
    x = torch.linspace(-2, 2, n)[:, None]
    return x, torch.sin(math.pi * x)


def run_engine(members, acts, x, y, opt, lrs, steps, rule, exact):
    model = StackedMLP(members, [a.fn for a in acts], exact=exact)
    result = train_regression(model, x, y, make_optimizer(opt, model, lrs), steps, rule)
    return model, result


@pytest.mark.parametrize(
    "opt, lrs, rule",
    [
        # SGD with both protocol rules; the high learning rates make some members diverge.
        ("sgd", [0.05, 0.5, 0.05, 0.5, 1.5, 0.05, 2.0, 0.1], DivergenceRule(grad_limit=1e6)),
        ("adam", [0.01] * 8, DivergenceRule()),
    ],
)
def test_exact_mode_is_bit_identical_to_reference(opt, lrs, rule):
    acts = [get_activation(n) for n in MIXED]
    members = members_for(len(acts), layer_sizes(1, 16, 4))
    x, y = sine_data()
    model, res = run_engine(members, acts, x, y, opt, lrs, 40, rule, exact=True)
    for m, act in enumerate(acts):
        ref, net = reference.train(members[m], act.fn, x, y, opt, lrs[m], 40, rule)
        assert np.array_equal(res.losses[m], ref.losses[0], equal_nan=True), act.name
        assert res.diverged[m] == ref.diverged[0]
        assert res.steps_completed[m] == ref.steps_completed[0]
        assert np.array_equal(res.loss_after[m : m + 1], ref.loss_after, equal_nan=True)
        for (w, b), layer in zip(model.member_params(m), reference.linears(net), strict=True):
            assert torch.equal(w, layer.weight.detach()) and torch.equal(b, layer.bias.detach())
    if opt == "sgd":  # the test must exercise the divergence path and the healthy path
        assert res.diverged.any() and not res.diverged.all()


def test_exact_gradient_flow_is_bit_identical_to_reference():
    acts = [get_activation(n) for n in MIXED]
    members = members_for(len(acts), layer_sizes(1, 32, 12))
    x = torch.randn(32, 1, generator=generator(0, "x"))
    model = StackedMLP(members, [a.fn for a in acts], exact=True)
    model.output_mean(model.forward(x)).sum().backward()
    grads = model.weight_grad_mean_abs()
    for m, act in enumerate(acts):
        expected = torch.tensor(reference.gradient_flow(members[m], act.fn, x))
        assert torch.equal(grads[m], expected), act.name


def test_fast_mode_matches_reference_within_rounding():
    acts = [get_activation(n) for n in MIXED]
    members = members_for(len(acts), layer_sizes(1, 32, 6))
    # Random inputs: a symmetric grid makes many gradient entries cancel to rounding noise,
    # which Adam's first steps (update ~ sign of the gradient) then amplify.
    x = torch.randn(64, 1, generator=generator(0, "x"))
    y = torch.sin(math.pi * x)
    probe = torch.randn(32, 1, generator=generator(0, "probe"))
    model = StackedMLP(members, [a.fn for a in acts])
    model.output_mean(model.forward(probe)).sum().backward()
    grads = model.weight_grad_mean_abs().numpy()
    for m, act in enumerate(acts):
        expected = np.array(reference.gradient_flow(members[m], act.fn, probe))
        np.testing.assert_allclose(grads[m], expected, rtol=1e-4, err_msg=act.name)
    for opt, lr in (("sgd", 0.05), ("adam", 0.01)):
        _, res = run_engine(members, acts, x, y, opt, lr, 10, DivergenceRule(), exact=False)
        for m, act in enumerate(acts):
            ref, _ = reference.train(members[m], act.fn, x, y, opt, lr, 10)
            np.testing.assert_allclose(
                res.losses[m], ref.losses[0], rtol=1e-4, err_msg=f"{opt} {act.name}"
            )


@pytest.mark.parametrize(
    "in_dim, width, depth, n, opt",
    [
        (1, 64, 10, 200, "sgd"),  # the stress protocol's shapes
        (10, 128, 4, 300, "sgd"),  # the sparsity protocol's first layer
        (3, 13, 3, 37, "adam"),  # shapes that are no multiple of any vector width
        (1, 8, 4, 30, "adam"),
    ],
)
def test_a_member_alone_equals_the_same_member_in_a_batch_of_20(in_dim, width, depth, n, opt):
    """Fast mode too: a trial's numbers must not depend on its batch-mates, including
    batch-mates that diverge (with one intra-op thread, as every executor runs batches)."""
    names = ["Tanh", "ReLU", "Linear", "GELU", "Sigmoid"] * 4
    acts = [get_activation(a) for a in sorted(names, key=names.index)]
    members = members_for(20, layer_sizes(in_dim, width, depth))
    gen = generator(3, "data")
    x = torch.randn(n, in_dim, generator=gen)
    y = torch.sin(x.sum(1, keepdim=True))
    big = 5.0 if opt == "sgd" else 0.5
    lrs = [0.05 if k % 3 else big for k in range(20)]  # every third member may diverge
    rule = DivergenceRule(grad_limit=1e6 if opt == "sgd" else None)
    with one_intra_op_thread():
        _, batch = run_engine(members, acts, x, y, opt, lrs, 6, rule, exact=False)
        # "Alone" is a stack of two copies: executors never run a stack of one (BLAS uses
        # another kernel for a single matrix; see runner.run_batch).
        singles = {
            k: run_engine([members[k]] * 2, [acts[k]] * 2, x, y, opt, [lrs[k]] * 2, 6, rule, False)[
                1
            ]
            for k in (0, 1, 9, 13, 19)
        }
    if opt == "sgd":
        assert batch.diverged.any()
    for k, alone in singles.items():
        assert np.array_equal(alone.losses[0], batch.losses[k], equal_nan=True), k
        assert np.array_equal(alone.loss_after[:1], batch.loss_after[k : k + 1], equal_nan=True), k


def test_nan_in_one_member_never_reaches_the_others():
    acts = [get_activation("Tanh")] * 4
    members = members_for(4, layer_sizes(1, 16, 3))
    poisoned = [(w.clone(), b.clone()) for w, b in members[1]]
    poisoned[0][0][0, 0] = math.nan
    x, y = sine_data()
    _, clean = run_engine(members, acts, x, y, "adam", 0.01, 15, DivergenceRule(), False)
    _, mixed = run_engine(
        [members[0], poisoned, *members[2:]], acts, x, y, "adam", 0.01, 15, DivergenceRule(), False
    )
    assert mixed.diverged.tolist() == [False, True, False, False]
    assert mixed.steps_completed[1] == 0 and math.isinf(mixed.last_recorded_loss[1])
    for k in (0, 2, 3):
        assert np.array_equal(mixed.losses[k], clean.losses[k])


def test_frozen_member_keeps_its_parameters():
    acts = [get_activation("Linear"), get_activation("Tanh")]
    members = members_for(2, layer_sizes(1, 16, 4))
    x, y = sine_data()
    model, res = run_engine(
        members, acts, x, y, "sgd", [3.0, 0.01], 30, DivergenceRule(grad_limit=1e6), exact=False
    )
    assert res.diverged.tolist() == [True, False]
    frozen = model.member_params(0)
    # Continue training: the diverged member must not move.
    opt = make_optimizer("sgd", model, [3.0, 0.01])
    model.zero_grad()
    model.mse(model.forward(x), y).sum().backward()
    opt.step(torch.tensor([False, True]))
    for (w0, b0), (w1, b1) in zip(frozen, model.member_params(0), strict=True):
        assert torch.equal(w0, w1) and torch.equal(b0, b1)


def test_capture_hooks_return_each_hidden_layer():
    from actlab.engine.stack import Captured

    acts = [get_activation("ReLU"), get_activation("Tanh")]
    members = members_for(2, layer_sizes(3, 8, 5))
    x = torch.randn(11, 3, generator=generator(0, "x"))
    for exact in (False, True):
        cap = Captured()
        StackedMLP(members, [a.fn for a in acts], exact=exact).forward(x, cap)
        assert len(cap.pre) == len(cap.post) == 5
        assert cap.pre[0].shape == (2, 11, 8)
        assert torch.allclose(cap.post[2][0], torch.relu(cap.pre[2][0]))
        assert torch.allclose(cap.post[4][1], torch.tanh(cap.pre[4][1]))


def test_seeds_depend_only_on_the_key():
    assert derive_seed(0, "init", 3) == derive_seed(0, "init", 3)
    assert len({derive_seed(0, "init", k) for k in range(1000)}) == 1000
    assert derive_seed(0, "init", 3) != derive_seed(1, "init", 3)
    a = torch.randn(5, generator=generator(0, "a"))
    torch.randn(100, generator=generator(0, "b"))  # another stream in between
    assert torch.equal(a, torch.randn(5, generator=generator(0, "a")))


@pytest.mark.parametrize(
    "scheme, expected_std",
    [
        ("xavier_uniform", math.sqrt(2 / (256 + 256))),
        ("kaiming_normal", math.sqrt(2 / 256)),
        ("lecun_normal", math.sqrt(1 / 256)),
    ],
)
def test_initialisers_have_the_documented_spread(scheme, expected_std):
    params = init_mlp_params([(256, 256)], generator(0, scheme), scheme=scheme)
    w, b = params[0]
    assert abs(w.std().item() / expected_std - 1) < 0.02
    assert torch.count_nonzero(b) == 0


def test_orthogonal_init_is_orthogonal():
    ((w, _),) = init_mlp_params([(64, 64)], generator(0, "o"), scheme="orthogonal")
    assert torch.allclose(w @ w.T, torch.eye(64), atol=1e-5)


def test_engine_works_in_float64():
    acts = [get_activation("GELU")]
    members = members_for(1, layer_sizes(1, 8, 3), dtype=torch.float64)
    x, y = (t.double() for t in sine_data())
    model, res = run_engine(members, acts, x, y, "adam", 0.01, 5, DivergenceRule(), False)
    assert model.flat.dtype == torch.float64
    ref, _ = reference.train(members[0], acts[0].fn, x, y, "adam", 0.01, 5)
    np.testing.assert_allclose(res.losses[0], ref.losses[0], rtol=1e-12)


def test_flush_denormals_is_an_option_that_changes_only_tiny_numbers(tmp_path):
    from actlab.config import RunConfig
    from actlab.runner import denormals_flushed

    tiny = torch.tensor([1e-39, 1e-30])
    with denormals_flushed(True):
        assert (tiny * 1.0).tolist() == [0.0, pytest.approx(1e-30)]
    assert (tiny * 1.0)[0] > 0  # restored after the block
    base = dict(activations=["ReLU"], studies=["gradient_flow"], seeds=1)
    plain, flushed = RunConfig(**base), RunConfig(**base, flush_denormals=True)
    assert plain.hash() != flushed.hash()  # it can change numbers: a different run
    assert "flush_denormals" not in plain.hashed_dict()  # older runs keep their hash


def test_a_run_with_flush_denormals_sets_the_mode_around_each_batch(tmp_path, monkeypatch):
    import actlab

    calls = []
    real = torch.set_flush_denormal
    monkeypatch.setattr(torch, "set_flush_denormal", lambda on: calls.append(on) or real(on))
    config = actlab.RunConfig(
        activations=["ReLU", "Tanh"],
        studies=["gradient_flow"],
        seeds=1,
        executor="local",
        flush_denormals=True,
        study_config={"gradient_flow": {"depths": [2, 3], "width": 8, "report_depth": 3}},
    )
    actlab.run(config=config, out=tmp_path / "r", report=False)
    assert calls and calls == [True, False] * (len(calls) // 2)  # on per batch, then off
    calls.clear()
    actlab.run(
        config=config.model_copy(update={"flush_denormals": False}),
        out=tmp_path / "plain",
        report=False,
    )
    assert calls == []


def test_the_tutorials_stack_is_a_stack_the_loop_and_optimisers_take():
    from actlab.engine.protocol import Stack

    model = StackedMLP(members_for(2, [(1, 8), (8, 1)]), [torch.tanh, torch.relu])
    assert isinstance(model, Stack)
