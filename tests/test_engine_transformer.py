"""The stacked MNIST-1D transformer: exact mode is the reference module trained alone, bit
for bit (reference.classify); fast mode agrees with it and a member's bits do not depend
on its batch-mates."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from actlab import reference
from actlab.data import mnist1d_dataset
from actlab.engine.classify import train_classifier
from actlab.engine.losses import cross_entropy
from actlab.engine.transformer import StackedTransformer
from actlab.errors import UserError


@pytest.fixture(autouse=True)
def one_thread():
    """As the executors run a stack: on one thread (batch invariance is a one-thread
    property, and two threads on a shared machine only slow these tests down)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_shape_defaults_and_names_are_the_references():
    members = StackedTransformer.initial({}, 0)
    module = reference.Mnist1dTransformer(F.relu)
    assert {n: tuple(p.shape) for n, p in members.items()} == {
        n: tuple(p.shape) for n, p in module.named_parameters()
    }
    assert tuple(members["position"].shape) == (10, 32)
    assert tuple(members["blocks.1.fc1.weight"].shape) == (128, 32)
    assert StackedTransformer.n_params({}) == sum(p.numel() for p in module.parameters())
    assert StackedTransformer.flops({"layers": 4}) > StackedTransformer.flops({}) > 0
    assert StackedTransformer.bytes({}, 200) > StackedTransformer.bytes({}, 100) > 0


def test_the_stacked_transformer_in_fast_mode_agrees_with_exact_mode():
    # Training a transformer with Adam at lr 1e-2 is chaotic: the reference itself, its
    # initial head bias moved by one ulp, drifts by up to 0.1 in loss within 20 steps for
    # some seeds. So float32 is compared over the first steps, before the drift grows,
    # and float64 (where the drift stays at rounding level) over 20.
    data = mnist1d_dataset()
    acts = [F.relu, torch.tanh, F.gelu, F.silu]
    for dtype, steps, tolerance in ((torch.float32, 8, 1e-4), (torch.float64, 20, 1e-9)):
        d = {k: v.to(dtype) if v.is_floating_point() else v for k, v in data.items()}
        members = [StackedTransformer.initial({}, seed, dtype) for seed in range(4)]
        fast = train_classifier(StackedTransformer({}, members, acts), d, steps, eval_every=0)
        exact = StackedTransformer({}, members, acts, exact=True)
        slow = train_classifier(exact, d, steps, eval_every=0)
        assert abs(fast.losses - slow.losses).max() < tolerance


def test_the_stacked_transformer_in_fast_mode_is_batch_invariant():
    data = mnist1d_dataset()
    acts = [F.relu, torch.tanh, F.gelu, F.silu]
    members = [StackedTransformer.initial({}, seed) for seed in range(4)]
    four = train_classifier(StackedTransformer({}, members, acts), data, 20, eval_every=10)
    for m in (0, 2):  # member m beside a copy of itself gives the same bits as in the four
        pair = StackedTransformer({}, [members[m]] * 2, [acts[m]] * 2)
        alone = train_classifier(pair, data, 20, eval_every=10)
        assert alone.losses[0].tolist() == four.losses[m].tolist()
        assert alone.test_accuracy[0].tolist() == four.test_accuracy[m].tolist()


def test_a_members_output_gradients_and_evaluation_do_not_depend_on_its_batch_mates():
    data = mnist1d_dataset()
    acts = [F.relu, torch.tanh, F.gelu, F.silu, torch.sigmoid]
    members = [StackedTransformer.initial({}, seed) for seed in range(5)]

    def one_step(rows: list[int]):
        stack = StackedTransformer({}, [members[r] for r in rows], [acts[r] for r in rows])
        out = stack.forward(data["x"][:37])  # an odd batch
        cross_entropy(out, data["y"][:37], False).sum().backward()
        with torch.no_grad():
            evaluation = stack.forward(data["x_test"][:250])  # in slices of samples
        return out.detach(), stack.flat_grad.clone(), evaluation

    five = one_step([0, 1, 2, 3, 4])
    for rows in ([2, 2], [4, 0, 3], [3, 1]):
        few = one_step(rows)
        for i, r in enumerate(rows):
            for got, expected in zip(few, five, strict=True):
                assert torch.equal(got[i], expected[r])


def test_a_patch_size_that_does_not_divide_the_length_is_refused():
    with pytest.raises(UserError, match="patch size 3"):
        StackedTransformer.initial({"patch": 3}, 0)
    members = [StackedTransformer.initial({}, 0)] * 2
    with pytest.raises(UserError, match="patch size 3"):
        StackedTransformer({"patch": 3}, members, [F.relu] * 2)
