"""The fused forward/backward of a plain stack against the layer-by-layer autograd path, and
dropping stopped members during training: both must change no number, to the bit."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch

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
from actlab.engine.kernels import KERNELS
from actlab.engine.stack import Captured
from actlab.executors import one_intra_op_thread

train_module = importlib.import_module("actlab.engine.train")  # the package exports train()

SPECIAL = [0.0, -0.0, 1e-30, -1e-30, 1e-45, 3.0, -3.0, 20.0, -20.0, 88.0, -104.0, 1e30, -1e30]


def inputs(dtype) -> torch.Tensor:
    gen = generator(11, "kernels", str(dtype))
    x = torch.randn(3, 40, 17, generator=gen, dtype=dtype) * 4
    special = torch.tensor(SPECIAL + [math.inf, -math.inf, math.nan], dtype=dtype)
    x.view(-1)[: special.numel()] = special
    return x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fn", list(KERNELS), ids=lambda fn: getattr(fn, "__name__", str(fn)))
def test_each_kernel_equals_autograd_bit_for_bit(fn, dtype):
    z = inputs(dtype)
    leaf = z.clone().requires_grad_(True)
    a = fn(leaf)
    g = torch.randn(z.shape, generator=generator(12, "grad"), dtype=dtype)
    (expected,) = torch.autograd.grad(a, leaf, g) if a.requires_grad else (g,)
    kernel = KERNELS[fn]
    out, dz = torch.empty_like(z), torch.empty_like(z)
    kernel.forward(z, out)
    kernel.backward(g, z, out, dz)
    assert torch.equal(out.isnan(), a.isnan()) and torch.equal(out.nan_to_num(), a.nan_to_num())
    # bits, so -0.0 and 0.0 differ
    assert torch.equal(out.view(-1).signbit(), a.detach().view(-1).signbit())
    assert torch.equal(dz.isnan(), expected.isnan())
    assert torch.equal(dz.nan_to_num(), expected.nan_to_num())


def piecewise_constant(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0, 1.0, -1.0)


# The tutorial's eight (own kernels), three registry entries without one, an expression, and
# a callable whose slope is zero everywhere (the generic kernel's edge).
MIXED = [
    get_activation(n).fn
    for n in ["Linear", "Tanh", "ReLU", "Sigmoid", "GELU", "Swish", "ELU", "LeakyReLU"]
    + ["SELU", "Mish", "Softplus", "x*tanh(softplus(x))"]
] + [piecewise_constant]


def stack(fns, in_dim=3, width=21, depth=4, seed=5):
    members = [
        init_mlp_params(layer_sizes(in_dim, width, depth), generator(seed, "m", k))
        for k in range(len(fns))
    ]
    return StackedMLP(members, fns)


@pytest.mark.parametrize("shared_input", [True, False])
@pytest.mark.parametrize("which", ["mixed", "Linear", "GELU"])
def test_fused_path_is_bit_identical_to_the_layered_path(shared_input, which):
    # runs of two members of each activation, or a stack of one activation (one buffer
    # for z and a when it is the identity)
    fns = (
        [fn for fn in MIXED for _ in range(2)]
        if which == "mixed"
        else [get_activation(which).fn] * 3
    )
    gen = generator(6, "x")
    x = torch.randn(29, 3, generator=gen) if shared_input else torch.randn(len(fns), 29, 3)
    y = torch.randn(29, 1, generator=gen)
    results = []
    for fused in (True, False):
        model = stack(fns)
        with one_intra_op_thread():
            out = model.forward(x) if fused else model._forward_layered(x, None)
            model.mse(out, y).sum().backward()
        results.append((out.detach(), model.flat_grad.clone()))
    (out_f, grad_f), (out_l, grad_l) = results
    assert torch.equal(out_f, out_l)
    assert torch.equal(grad_f, grad_l)
    assert grad_f.abs().sum() > 0


def test_fused_capture_equals_layered_capture():
    model = stack(MIXED)
    x = torch.randn(17, 3, generator=generator(7, "x"))
    fused, layered = Captured(), Captured()
    with torch.no_grad():
        out_f = model.forward(x, fused)
        out_l = model._forward_layered(x, layered)
    assert torch.equal(out_f, out_l)
    assert len(fused.pre) == len(layered.pre) == model.depth
    for a, b in zip(fused.pre + fused.post, layered.pre + layered.post, strict=True):
        assert torch.equal(a, b)
    # Captured tensors are the caller's: a later pass must not overwrite them.
    kept = [t.clone() for t in fused.post]
    with torch.no_grad():
        model.forward(x * 2)
    assert all(torch.equal(a, b) for a, b in zip(kept, fused.post, strict=True))


def test_two_forward_passes_before_one_backward():
    """The second pass finds the reusable buffers held by the first and takes fresh ones."""
    gen = generator(8, "x")
    x1, x2 = torch.randn(13, 3, generator=gen), torch.randn(13, 3, generator=gen)
    grads = []
    for fused in (True, False):
        model = stack(MIXED[:6])
        forward = model.forward if fused else (lambda x, m=model: m._forward_layered(x, None))
        loss = model.output_mean(forward(x1)) + 3 * model.output_mean(forward(x2))
        loss.sum().backward()
        grads.append(model.flat_grad.clone())
        # and again, now that the buffers are free
        model.zero_grad()
        model.output_mean(forward(x2)).sum().backward()
        grads.append(model.flat_grad.clone())
    assert torch.equal(grads[0], grads[2]) and torch.equal(grads[1], grads[3])


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_dropping_stopped_members_changes_nothing(opt, monkeypatch):
    """Training with stopped members dropped from the stack gives the very bits of training
    with them kept (masked), for every member: losses, parameters and optimizer state."""
    names = ["Tanh", "ReLU", "Linear", "GELU", "Sigmoid", "ELU"] * 2
    fns = [get_activation(n).fn for n in names]
    x = torch.linspace(-2, 2, 60)[:, None]
    y = torch.sin(math.pi * x)
    # Some members diverge early, at different steps; the last one standing keeps a companion.
    lrs = [0.02, 3.0, 0.02, 6.0, 0.02, 2.0, 9.0, 0.02, 4.0, 0.02, 5.0, 0.02]
    if opt == "adam":
        lrs = [lr / 10 for lr in lrs]
    rule = DivergenceRule(loss_limit=10.0, grad_limit=1e3 if opt == "sgd" else None)
    subsets = []
    real_subset = StackedMLP.subset
    monkeypatch.setattr(
        StackedMLP, "subset", lambda self, rows: subsets.append(rows) or real_subset(self, rows)
    )

    def run():
        model = stack(fns, in_dim=1, width=16, depth=5)
        optimizer = make_optimizer(opt, model, lrs)
        with one_intra_op_thread():
            result = train_regression(model, x, y, optimizer, 25, rule)
        state = [model.flat.clone()]
        if opt == "adam":
            state += [optimizer.exp_avg.clone(), optimizer.exp_avg_sq.clone()]
        return result, state, list(optimizer.steps)

    dropped = run()
    assert subsets, "no member was dropped: the test does not exercise compaction"
    assert 0 < dropped[0].diverged.sum() < len(fns)
    monkeypatch.setattr(train_module.Training, "compact", lambda self: None)
    kept = run()
    for field in ("losses", "diverged", "steps_completed", "last_recorded_loss", "loss_after"):
        assert np.array_equal(
            getattr(dropped[0], field), getattr(kept[0], field), equal_nan=True
        ), field
    for a, b in zip(dropped[1], kept[1], strict=True):
        assert torch.equal(a, b)
    assert dropped[2] == kept[2]


@pytest.mark.parametrize("members, batch, out_dim", [(2, 7, 1), (5, 200, 1), (13, 1797, 10)])
@pytest.mark.parametrize("per_member_target", [False, True])
def test_batched_mse_is_f_mse_loss_member_by_member(members, batch, out_dim, per_member_target):
    gen = generator(9, "mse", members, batch, out_dim)
    out = torch.randn(members, batch, out_dim, generator=gen)
    y = torch.randn(*((members,) if per_member_target else ()), batch, out_dim, generator=gen)
    fast, exact = stack(MIXED[:1] * members), stack(MIXED[:1] * members)
    exact.exact = True
    grads = []
    for model in (fast, exact):
        leaf = out.clone().requires_grad_(True)
        loss = model.mse(leaf, y)
        loss.sum().backward()
        grads.append((loss.detach(), leaf.grad))
    assert torch.equal(grads[0][0], grads[1][0])
    assert torch.equal(grads[0][1], grads[1][1])


def test_back_propagating_one_forward_pass_twice_is_refused():
    model = stack(MIXED[:3])
    loss = model.output_mean(model.forward(torch.randn(9, 3))).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="twice"):
        loss.backward()


@pytest.mark.parametrize("residual", [False, True])  # the fused path, the layered path
def test_a_member_gives_the_same_bits_whatever_the_length_of_its_activation_run(residual):
    """Activations run on whole padded member blocks: on a strided slice (a run of several
    members when batch x width is no multiple of the alignment) GELU's kernel rounds
    differently than on a contiguous one (a run of one member), which made a member's bits
    depend on how many batch-mates shared its activation."""
    names = ["GELU", "Swish", "x*tanh(softplus(x))", "Tanh", "ELU"]
    sizes = layer_sizes(5, 19, 3)  # 37 samples x 19 units: no multiple of 64
    x = torch.randn(37, 5, generator=generator(4, "x"))
    member = init_mlp_params(sizes, generator(4, "member"))
    for name in names:
        fn = get_activation(name).fn
        other = get_activation("ReLU").fn
        results = []
        for run in (1, 2, 5):
            members = [member] * run + [init_mlp_params(sizes, generator(4, "o"))]
            model = StackedMLP(members, [fn] * run + [other], residual=residual)
            with one_intra_op_thread():
                out = model.forward(x)
                model.output_mean(out).sum().backward()
            results.append((out[0].detach(), model.flat_grad[0].clone()))
        for out, grad in results[1:]:
            assert torch.equal(out, results[0][0]), name
            assert torch.equal(grad, results[0][1]), name
