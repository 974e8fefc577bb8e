"""The stacked MNIST-1D CNN (engine/conv.py): exact mode is the reference module trained
alone, bit for bit; fast mode agrees with it and a member's bits do not depend on its
batch-mates."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from actlab import reference
from actlab.data import mnist1d_dataset
from actlab.engine import ops
from actlab.engine.classify import train_classifier
from actlab.engine.conv import StackedCNN


def test_the_stacked_cnn_in_fast_mode_agrees_and_is_batch_invariant():
    data = mnist1d_dataset()
    acts = [F.relu, torch.tanh, F.gelu, F.silu]
    # Seeds 1 to 4: the ReLU member of seed 0 meets, at step 10, a pre-activation within
    # float rounding of zero (6e-8 on a scale of 8) that changes sign between the two modes,
    # after which its trajectory departs by about 1e-3 (as a float32 and a float64 run of
    # the reference could); the smooth activations stay within about 1e-6.
    members = [StackedCNN.initial({}, seed) for seed in range(1, 5)]
    fast = train_classifier(StackedCNN({}, members, acts), data, 30, eval_every=0)
    exact = train_classifier(StackedCNN({}, members, acts, exact=True), data, 30, eval_every=0)
    assert abs(fast.losses - exact.losses).max() < 1e-4
    # Member 2 beside a copy of itself gives the same bits as in the stack of four.
    pair = train_classifier(StackedCNN({}, [members[2]] * 2, [F.gelu] * 2), data, 30, eval_every=0)
    assert pair.losses[0].tolist() == pair.losses[1].tolist() == fast.losses[2].tolist()
    assert fast.test_accuracy[2].tolist() == pair.test_accuracy[0].tolist()


def test_the_stacked_cnn_in_fast_mode_matches_the_reference_forward():
    torch.manual_seed(0)
    x = torch.randn(7, 40)
    for shape in ({}, {"channels": 8}):
        members = [StackedCNN.initial(shape, seed) for seed in (0, 1)]
        stack = StackedCNN(shape, members, [F.relu, torch.tanh])
        out = stack.forward(x)
        for m, act in enumerate((F.relu, torch.tanh)):
            module = reference.Mnist1dCNN(act, **shape)
            module.load_state_dict(members[m])
            torch.testing.assert_close(out[m], module(x), rtol=1e-5, atol=1e-6)


def test_the_cnn_work_and_memory_grow_with_its_channels():
    small, large = {"channels": 8}, {"channels": 32}
    assert 0 < StackedCNN.flops(small) < StackedCNN.flops(large)
    assert 0 < StackedCNN.bytes(small, 100) < StackedCNN.bytes(large, 100)
    assert StackedCNN.bytes({}, 100) < StackedCNN.bytes({}, 200)
    # The default shape: 19, 10 and 5 positions after the three convolutions.
    assert StackedCNN.flops({}) == 19 * 25 * 5 + 10 * 25 * 25 * 3 + 5 * 25 * 25 * 3 + 125 * 10


def test_the_stacked_convolution_is_nn_conv1d_forward_and_backward():
    """ops.conv1d (channels last, im2col) against F.conv1d per member, in float64, for
    kernels, strides and paddings around the CNN's; a shared input `[batch, length, in]`
    gives what its copy per member gives."""
    torch.manual_seed(0)
    for length, k, stride, padding in itertools.product(
        (2, 10, 19), (1, 3, 5), (1, 2, 3), (0, 1, 2)
    ):
        if length + 2 * padding < k:
            continue
        h = torch.randn(2, 3, length, 4, dtype=torch.float64, requires_grad=True)
        w = torch.randn(2, 5, 4, k, dtype=torch.float64, requires_grad=True)
        b = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
        out = ops.conv1d(h, w, b, stride, padding)
        grad = torch.randn_like(out)
        got = torch.autograd.grad(out, (h, w, b), grad)
        for m in range(2):
            conv = F.conv1d(h[m].transpose(1, 2), w[m], b[m], stride=stride, padding=padding)
            ref = conv.transpose(1, 2)
            torch.testing.assert_close(out[m], ref, rtol=0, atol=1e-12)
            want = torch.autograd.grad(ref, (h, w, b), grad[m])
            for g, r in zip(got, want, strict=True):
                torch.testing.assert_close(g[m], r[m], rtol=0, atol=1e-12)
        shared = h[0].detach()
        expanded = shared.expand(2, *shared.shape)
        assert torch.equal(
            ops.conv1d(shared, w, b, stride, padding), ops.conv1d(expanded, w, b, stride, padding)
        )
