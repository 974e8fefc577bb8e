"""The engine's architectures beyond the generic MLP: a stack in exact mode is the reference
module trained alone, bit for bit (the MNIST-1D repository's protocol, reference.classify)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from actlab import reference
from actlab.data import mnist1d_dataset
from actlab.engine.classify import train_classifier
from actlab.engine.conv import StackedCNN
from actlab.engine.mlp import ResidualMLP
from actlab.engine.params import ParamStack
from actlab.engine.transformer import StackedTransformer


def test_param_stack_lays_members_out_by_name_and_gives_them_back():
    members = [ResidualMLP.initial({}, seed) for seed in (1, 2)]
    stack = ParamStack(members)
    assert stack.names == list(members[0]) and stack.n_members == 2
    for m in range(2):
        for name, value in stack.member(m).items():
            assert torch.equal(value, members[m][name])
    assert stack["linear2.weight"].grad.data_ptr() != stack["linear2.weight"].data_ptr()
    # The initialisation is the reference module's own, from its seed alone.
    assert torch.equal(ResidualMLP.initial({}, 1)["linear1.weight"], members[0]["linear1.weight"])
    assert not torch.equal(members[0]["linear1.weight"], members[1]["linear1.weight"])


def exploding_exp(scale: float):
    def exploding(z: torch.Tensor) -> torch.Tensor:
        return torch.exp(scale * z)

    return exploding


# (stack, reference module, a diverging activation, steps): exp(8 z) diverges within a few
# Adam steps at lr 1e-2; the transformer's norms keep it finite, exp(16 z) overflows.
ARCHITECTURES = [
    (ResidualMLP, reference.Mnist1dMLP, exploding_exp(8), 40),
    (StackedCNN, reference.Mnist1dCNN, exploding_exp(8), 40),
    (StackedTransformer, reference.Mnist1dTransformer, exploding_exp(16), 30),
]


@pytest.mark.parametrize("stacked, module_class, exploding, steps", ARCHITECTURES)
def test_a_stack_in_exact_mode_is_the_reference_loop_bit_for_bit(
    stacked, module_class, exploding, steps
):
    data = mnist1d_dataset()
    acts = [F.relu, exploding, torch.tanh]
    members = [stacked.initial({}, seed) for seed in (3, 4, 5)]
    result = train_classifier(stacked({}, members, acts, exact=True), data, steps, eval_every=10)
    assert result.diverged.tolist() == [False, True, False]
    for m, act in enumerate(acts):
        module = module_class(act)
        module.load_state_dict(members[m])
        ref = reference.classify(module, data, steps, eval_every=10)
        recorded = [v for v in result.losses[m] if v == v]
        finite = [v for v in ref["losses"] if v == v and v != float("inf")]
        if m == 1:  # the diverged member: its recorded losses are the reference's before
            # the reference's first loss past the divergence rule (NaN, inf or > 1e6)
            assert recorded == ref["losses"][: len(recorded)] and len(recorded) < steps
            assert not ref["losses"][len(recorded)] <= 1e6
        else:
            assert recorded == ref["losses"] == finite
            assert result.test_accuracy[m].tolist() == ref["test_accuracy"]
    assert result.eval_steps == list(range(10, steps + 1, 10))


def test_the_stacked_mlp_in_fast_mode_agrees_and_is_batch_invariant():
    data = mnist1d_dataset()
    acts = [F.relu, torch.tanh, F.gelu, F.silu]
    members = [ResidualMLP.initial({}, seed) for seed in range(4)]
    fast = train_classifier(ResidualMLP({}, members, acts), data, 30, eval_every=0)
    exact = train_classifier(ResidualMLP({}, members, acts, exact=True), data, 30, eval_every=0)
    assert abs(fast.losses - exact.losses).max() < 1e-4
    # Member 2 beside a copy of itself gives the same bits as in the stack of four.
    pair = train_classifier(ResidualMLP({}, [members[2]] * 2, [F.gelu] * 2), data, 30, eval_every=0)
    assert pair.losses[0].tolist() == fast.losses[2].tolist()


@pytest.mark.parametrize(
    "stacked, exploding", [(ResidualMLP, exploding_exp(8)), (StackedCNN, exploding_exp(8))]
)
def test_diverged_members_leave_the_classifier_stack_without_changing_a_number(
    stacked, exploding, monkeypatch
):
    """The minibatch loop drops diverged members from the stack it trains (train.py,
    Training.compact); the others' losses, test accuracies and final parameters are the
    bits of training the whole stack to the end."""
    import importlib

    from actlab.executors import one_intra_op_thread

    data = mnist1d_dataset()
    acts = [F.relu, exploding, torch.tanh, F.gelu]
    members = [stacked.initial({}, seed) for seed in range(4)]
    subsets = []
    real_subset = stacked.subset
    monkeypatch.setattr(
        stacked, "subset", lambda self, rows: subsets.append(rows) or real_subset(self, rows)
    )

    def run():
        net = stacked({}, members, acts)
        with one_intra_op_thread():
            return net, train_classifier(net, data, 40, eval_every=10)

    dropped_net, dropped = run()
    assert subsets == [[0, 2, 3]], "the diverged member did not leave the stack"
    monkeypatch.setattr(
        importlib.import_module("actlab.engine.train").Training, "compact", lambda self: None
    )
    kept_net, kept = run()
    assert dropped.diverged.tolist() == kept.diverged.tolist() == [False, True, False, False]
    assert dropped.losses.tobytes() == kept.losses.tobytes()
    assert dropped.test_accuracy.tobytes() == kept.test_accuracy.tobytes()
    assert dropped.eval_steps == kept.eval_steps == [10, 20, 30, 40]
    for m in (0, 2, 3):
        assert torch.equal(dropped_net.flat[m], kept_net.flat[m])


@pytest.mark.parametrize("stacked, module_class", [a[:2] for a in ARCHITECTURES])
@pytest.mark.parametrize("exact", [True, False])
def test_every_architecture_is_a_stack_the_loop_can_clip_and_check(stacked, module_class, exact):
    """Issue 30: train() and the optimisers take the typed Stack protocol (engine/protocol.py),
    and every architecture's stack has all of it: the gradient rule's largest |gradient| and
    per-member clipping equal torch's clip_grad_norm_ on each reference module."""
    from actlab.engine.protocol import Stack

    data = mnist1d_dataset()
    members = [stacked.initial({}, seed) for seed in (3, 4)]
    net = stacked({}, members, [F.relu, torch.tanh], exact=exact)
    assert isinstance(net, Stack)
    x, y = data["x"][:50], data["y"][:50]
    net.zero_grad()
    F.cross_entropy(net.forward(x).flatten(0, 1), y.repeat(2), reduction="sum").backward()
    grad_max = net.grad_abs_max()
    net.clip_grad_norm(0.5)
    for m, act in enumerate([F.relu, torch.tanh]):
        module = module_class(act)
        module.load_state_dict(members[m])
        F.cross_entropy(module(x), y, reduction="sum").backward()
        largest = max(float(p.grad.abs().max()) for p in module.parameters())
        assert float(grad_max[m]) == pytest.approx(largest, rel=1e-5)
        torch.nn.utils.clip_grad_norm_(module.parameters(), 0.5, foreach=False)
        clipped = dict(zip(net.params.names, net.parameters(), strict=True))
        for name, p in module.named_parameters():
            torch.testing.assert_close(clipped[name].grad[m], p.grad, rtol=1e-5, atol=1e-7)


def test_an_architecture_is_its_file_and_one_registry_entry():
    """Issue 30: everything the study, the search and the reports know of an architecture
    comes from its StackedNet subclass and its entry in engine/architectures.py."""
    from actlab.engine.architectures import ARCHITECTURES, NAMES, describe, get_architecture
    from actlab.engine.nets import StackedNet
    from actlab.search.config import ARCH_WORDS
    from actlab.search.transfer import MNIST1D_TASKS
    from actlab.studies.mnist1d.config import Config

    for name in NAMES:
        stack = get_architecture(name)
        assert issubclass(stack, StackedNet) and stack.name == name
        shape = Config(architectures=[name]).shape(name)
        assert shape == stack.shape_for(40, 4)
        module = stack.reference(torch.tanh, **shape)
        assert stack.n_params(shape) == sum(p.numel() for p in module.parameters())
        words = describe(name, shape)
        assert words and "{" not in words
        assert ARCH_WORDS[name] == ARCHITECTURES[name].word
    assert [t.architecture for t in MNIST1D_TASKS] == list(NAMES)
    assert Config().architectures == list(NAMES)
