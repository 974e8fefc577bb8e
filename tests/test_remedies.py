"""The remedies study: the engine's norm / residual / clipping options against the plain
reference loop, and the study end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import actlab
from actlab import reference
from actlab.activations import get_activation
from actlab.engine import (
    DivergenceRule,
    StackedMLP,
    generator,
    init_mlp_params,
    layer_sizes,
    make_optimizer,
    train_regression,
)
from actlab.executors import one_intra_op_thread
from actlab.studies import get_study

MIXED = ["Linear", "Tanh", "ReLU", "Sigmoid", "GELU", "Swish", "ELU", "LeakyReLU"]
OPTIONS = [
    {"norm": "batch"},
    {"norm": "layer"},
    {"residual": True},
    {"clip": 0.5},
    {"norm": "batch", "residual": True, "clip": 1.0},
]


def members_for(n, sizes, scheme="xavier_uniform"):
    return [init_mlp_params(sizes, generator(11, "rem", k), scheme=scheme) for k in range(n)]


def data(n=40):
    x = torch.randn(n, 2, generator=generator(0, "rem-x"))
    return x, torch.sin(math.pi * x[:, :1]) * x[:, 1:]


def split(opts):
    arch = {k: v for k, v in opts.items() if k in ("norm", "residual")}
    return arch, opts.get("clip")


def run_engine(members, acts, x, y, opt, lrs, steps, rule, exact, opts):
    arch, clip = split(opts)
    model = StackedMLP(members, [a.fn for a in acts], exact=exact, **arch)
    result = train_regression(model, x, y, make_optimizer(opt, model, lrs), steps, rule, clip=clip)
    return model, result


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize(
    "opt, lrs, rule",
    [
        ("sgd", [0.05, 0.5, 0.05, 0.5, 2.0, 0.05, 5.0, 0.1], DivergenceRule(grad_limit=1e6)),
        ("adam", [0.01] * 8, DivergenceRule()),
    ],
)
def test_exact_mode_is_bit_identical_to_reference(opts, opt, lrs, rule):
    acts = [get_activation(n) for n in MIXED]
    members = members_for(len(acts), layer_sizes(2, 12, 4))
    x, y = data()
    model, res = run_engine(members, acts, x, y, opt, lrs, 12, rule, True, opts)
    arch, clip = split(opts)
    for m, act in enumerate(acts):
        ref, net = reference.train(
            members[m], act.fn, x, y, opt, lrs[m], 12, rule, **arch, clip=clip
        )
        assert np.array_equal(res.losses[m], ref.losses[0], equal_nan=True), act.name
        assert res.diverged[m] == ref.diverged[0]
        assert res.steps_completed[m] == ref.steps_completed[0]
        assert np.array_equal(res.loss_after[m : m + 1], ref.loss_after, equal_nan=True)
        for (w, b), layer in zip(model.member_params(m), reference.linears(net), strict=True):
            assert torch.equal(w, layer.weight.detach()) and torch.equal(b, layer.bias.detach())
        norms = reference.norms(net)
        assert len(norms) == (4 if "norm" in opts else 0)  # one per hidden layer
        for (g, beta), mod in zip(model.member_norm_params(m), norms, strict=True):
            assert torch.equal(g, mod.weight.detach()) and torch.equal(beta, mod.bias.detach())
        if "norm" not in opts:
            assert len(model.parameters()) == len(list(net.parameters()))


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_fast_mode_matches_reference_within_rounding(opts):
    """Few steps: with batch norm, a deep Linear network amplifies a rounding difference
    about tenfold per SGD step (exact mode above is the bit-for-bit check)."""
    acts = [get_activation(n) for n in MIXED]
    members = members_for(len(acts), layer_sizes(2, 16, 5))
    x, y = data(64)
    arch, clip = split(opts)
    for opt, lr in (("sgd", 0.05), ("adam", 0.01)):
        _, res = run_engine(members, acts, x, y, opt, lr, 4, DivergenceRule(), False, opts)
        for m, act in enumerate(acts):
            ref, _ = reference.train(members[m], act.fn, x, y, opt, lr, 4, **arch, clip=clip)
            np.testing.assert_allclose(
                res.losses[m], ref.losses[0], rtol=1e-3, err_msg=f"{opt} {act.name}"
            )


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_a_member_alone_equals_the_same_member_in_a_batch(opts, opt):
    names = ["Tanh", "ReLU", "Linear", "GELU", "Sigmoid"] * 2
    acts = [get_activation(a) for a in sorted(names, key=names.index)]
    members = members_for(10, layer_sizes(3, 13, 4))
    x = torch.randn(37, 3, generator=generator(3, "data"))
    y = torch.sin(x.sum(1, keepdim=True))
    big = 5.0 if opt == "sgd" else 0.5
    lrs = [0.05 if k % 3 else big for k in range(10)]
    rule = DivergenceRule(grad_limit=1e6 if opt == "sgd" else None)
    with one_intra_op_thread():
        _, batch = run_engine(members, acts, x, y, opt, lrs, 6, rule, False, opts)
        for k in (0, 1, 4, 9):
            _, alone = run_engine(
                [members[k]] * 2, [acts[k]] * 2, x, y, opt, [lrs[k]] * 2, 6, rule, False, opts
            )
            assert np.array_equal(alone.losses[0], batch.losses[k], equal_nan=True), k
            assert np.array_equal(alone.loss_after[:1], batch.loss_after[k : k + 1], equal_nan=True)


def test_clipping_bounds_each_members_gradient_norm():
    acts = [get_activation("Tanh")] * 3
    members = members_for(3, layer_sizes(2, 8, 3))
    x, y = data()
    for exact in (False, True):
        model = StackedMLP(members, [a.fn for a in acts], exact=exact)
        model.mse(model.forward(x), 100 * y).sum().backward()
        before = torch.linalg.vector_norm(model.flat_grad, dim=1)
        model.clip_grad_norm(0.1)
        after = torch.linalg.vector_norm(model.flat_grad, dim=1)
        assert (before > 0.1).all() and torch.allclose(after, torch.full((3,), 0.1), rtol=1e-4)


TINY = {
    "depths": [6],
    "depth_steps": 12,
    "lrs": [1.0],
    "lr_depth": 3,
    "lr_steps": 10,
    "width": 8,
    "n_points": 24,
}


def test_trials_cover_every_remedy_and_setting():
    study = get_study("remedies")
    cfg = study.Config()
    trials = study.trials(cfg, ["Tanh", "ReLU"], seeds=3)
    assert len(trials) == 2 * 3 * 9 * (2 + 2)
    assert {t.params["setting"] for t in trials} == {"depth 20", "depth 50", "lr 0.5", "lr 1"}
    keys = {}
    for t in trials:
        keys.setdefault(study.batch_key(t), set()).add(
            (t.params["depth"], t.params["remedy"], t.params["optimizer"])
        )
    assert all(len(v) == 1 for v in keys.values())  # a batch never mixes architectures


def test_study_end_to_end(tmp_path):
    def go(name, **extra):
        return actlab.run(
            config=actlab.RunConfig(
                activations=["Sigmoid", "ReLU", "Tanh"],
                studies=["remedies"],
                seeds=2,
                study_config={"remedies": TINY},
                **extra,
            ),
            out=tmp_path / name,
        )

    full = go("full")
    df = full.results
    ran = df[df["metric"] == "skipped"]
    states = df[df["metric"].isin(["learned", "stuck", "failed", "diverged"])]
    per_trial = states.groupby("trial")["value"].sum()
    assert (per_trial == 1).all()
    assert len(per_trial) == int((ran["value"] == 0).sum())
    assert set(df["remedy"].dropna()) == set(get_study("remedies").Config().remedies)
    report = full.report_path.read_text()
    assert "Remedies for the stress settings" in report and "| activation | setting |" in report
    assert (full.path / "figures" / "remedies.png").exists()
    # batching does not change a number
    split = go("split", max_members=1)
    key = ["trial", "metric", "step"]
    a = df.sort_values(key).reset_index(drop=True)
    b = split.results.sort_values(key).reset_index(drop=True)
    assert a.equals(b)


def test_study_rows_equal_the_reference_loop_in_exact_mode():
    from actlab.studies.base import RunContext, initial_params
    from actlab.studies.stability import sine_data

    study = get_study("remedies")
    cfg = study.Config(**{**TINY, "parts": ["lr"]})
    acts = {n: get_activation(n) for n in ("Tanh", "ReLU")}
    ctx = RunContext(run_seed=1, config=cfg, activations=acts, exact=True)
    x, y = sine_data(cfg.n_points)
    for remedy in ("batchnorm", "residual", "clip"):
        batch = [t for t in study.trials(cfg, list(acts), 2) if t.params["remedy"] == remedy]
        rows = study.run(batch, ctx)
        for trial, trial_rows in zip(batch, rows, strict=True):
            ref, _ = reference.train(
                initial_params(ctx, layer_sizes(1, 8, 3), "xavier_uniform", trial.seed),
                acts[trial.activation].fn,
                x,
                y,
                "sgd",
                1.0,
                cfg.lr_steps,
                DivergenceRule(grad_limit=cfg.grad_limit),
                norm="batch" if remedy == "batchnorm" else None,
                residual=remedy == "residual",
                clip=cfg.clip_norm if remedy == "clip" else None,
            )
            got = {r["metric"]: r["value"] for r in trial_rows if r["metric"] != "loss"}
            assert np.array_equal([got["loss_after_training"]], ref.loss_after, equal_nan=True)
            assert got["diverged"] == float(ref.diverged[0])
