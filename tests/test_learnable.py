"""Learnable activations (learnable.py): declarations and their refusals, the built-in
families at their initial values, and the engine: exact mode is the reference loop with
nn.Parameters bit for bit, fast-mode gradients are autograd's on the reference module to
1e-12 in float64, and a member's bits do not depend on its batch-mates."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from actlab import reference
from actlab.activations import get_activation
from actlab.cli import app
from actlab.data import mnist1d_dataset
from actlab.engine.classify import train_classifier
from actlab.engine.conv import StackedCNN
from actlab.engine.mlp import ResidualMLP
from actlab.engine.transformer import StackedTransformer
from actlab.errors import UserError
from actlab.learnable import parse_learnable

PER_UNIT_PRELU = "where(x > 0, x, a*x) | a=0.25 per-unit"
FAMILIES = ["PAU", "Spline", PER_UNIT_PRELU, "Swish-beta"]


def family(spec: str):
    return get_activation(spec).learnable


def test_declarations_give_names_initial_values_and_scopes():
    f = parse_learnable("x*sigmoid(b*x) + c*x | b=1.5 | c=-0.1 per-unit")
    assert [(p.name, p.init, p.scope) for p in f.params] == [
        ("b", (1.5,), "per-layer"),
        ("c", (-0.1,), "per-unit"),
    ]
    semicolons = parse_learnable("x*sigmoid(b*x) + c*x | b=1.5; c=-0.1 per-unit")
    assert semicolons.signature() == f.signature()
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)
    expected = x * torch.sigmoid(1.5 * x) - 0.1 * x
    torch.testing.assert_close(get_activation(f.text + " | b=1.5 | c=-0.1")(x), expected)


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("x*sigmoid(b*x) | c=1.0", "b is used but not declared"),
        ("x*sigmoid(b*x) | b=1.0 | c=2", "c is declared but not used"),
        ("x*sigmoid(b*x) | b=nan", "give a finite number"),
        ("x*sigmoid(b*x) | b=1.0 per-neuron", "unknown scope 'per-neuron'"),
        ("x*sigmoid(b*x) | b=one", "not a number"),
        ("x*sigmoid(b*x) | b=1 | b=2", "b is declared twice"),
        ("x*exp | exp=1", "'exp' is taken"),
    ],
)
def test_bad_declarations_are_one_line_and_exit_2(spec, fragment, tmp_path):
    with pytest.raises(UserError, match=fragment):
        get_activation(spec)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["run", "--studies", "mnist1d", "--activations", spec, "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert not out.exists()


def test_builtins_start_where_their_papers_say():
    x = torch.linspace(-3, 3, 2001, dtype=torch.float64)
    leaky = torch.where(x > 0, x, 0.01 * x)
    assert (get_activation("PAU")(x) - leaky).abs().max() < 0.034  # fitted to Leaky ReLU
    assert torch.allclose(get_activation("Spline")(x), torch.relu(x), atol=1e-12)
    swish = get_activation("Swish")(x)
    assert torch.allclose(get_activation("Swish-beta")(x), swish, atol=1e-15)
    assert get_activation("Spline").learnable.params[0].scope == "per-unit"


def test_theory_takes_a_parametric_expression_at_its_initial_values():
    result = CliRunner().invoke(app, ["theory", "x*sigmoid(b*x) | b=1.0", "--json"])
    assert result.exit_code == 0, result.output
    plain = CliRunner().invoke(app, ["theory", "x*sigmoid(x)", "--json"])
    import json

    a, b = json.loads(result.stdout), json.loads(plain.stdout)
    for key in ("q_star", "chi_1", "gain"):
        assert a[key] == pytest.approx(b[key], rel=1e-12)


@pytest.mark.parametrize(
    "stacked, module_class",
    [(ResidualMLP, reference.Mnist1dMLP), (StackedCNN, reference.Mnist1dCNN)],
)
@pytest.mark.parametrize("spec", FAMILIES[:3])
def test_exact_mode_is_the_reference_loop_with_parameters_bit_for_bit(stacked, module_class, spec):
    data = mnist1d_dataset()
    fam = family(spec)
    members = [stacked.initial({}, seed, activation=fam) for seed in (3, 4)]
    net = stacked({}, members, [fam] * 2, exact=True)
    result = train_classifier(net, data, 15, eval_every=5)
    for m in range(2):
        module = module_class(fam)
        module.load_state_dict(members[m])
        ref = reference.classify(module, data, 15, eval_every=5)
        assert list(result.losses[m]) == ref["losses"]
        assert result.test_accuracy[m].tolist() == ref["test_accuracy"]
        trained = net.member(m)
        for name, value in module.named_parameters():  # every parameter, bit for bit
            assert torch.equal(trained[name], value.detach()), name
        site = "act1." + fam.params[0].name
        assert not torch.equal(trained[site], members[m][site])  # it was trained


@pytest.mark.parametrize(
    "stacked, module_class, shape",
    [
        (ResidualMLP, reference.Mnist1dMLP, {}),
        (StackedCNN, reference.Mnist1dCNN, {}),
        (StackedTransformer, reference.Mnist1dTransformer, {}),
    ],
)
@pytest.mark.parametrize("spec", FAMILIES)
def test_fast_mode_gradients_are_autograds_on_the_reference_module(
    stacked, module_class, shape, spec
):
    fam = family(spec)
    members = [stacked.initial(shape, seed, torch.float64, fam) for seed in (1, 2, 3)]
    x = torch.randn(8, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    net = stacked(shape, members, [fam] * 3)
    net.forward(x).square().sum().backward()
    learnable = [n for n in members[0] if n.rsplit(".", 1)[-1] in {p.name for p in fam.params}]
    assert learnable
    for m in range(3):
        module = module_class(fam, **shape).double()
        module.load_state_dict(members[m])
        module(x).square().sum().backward()
        grads = dict(module.named_parameters())
        for name in learnable:
            got = net.params[name].grad[m]
            want = grads[name].grad
            assert torch.allclose(got, want, rtol=0, atol=1e-12), (name, (got - want).abs().max())


def test_a_learnable_members_bits_do_not_depend_on_its_batch_mates():
    data = mnist1d_dataset()
    fam = family("PAU")
    members = [ResidualMLP.initial({}, seed, activation=fam) for seed in range(3)]
    three = train_classifier(ResidualMLP({}, members, [fam] * 3), data, 20, eval_every=0)
    pair = train_classifier(ResidualMLP({}, [members[1]] * 2, [fam] * 2), data, 20, eval_every=0)
    assert pair.losses[0].tolist() == three.losses[1].tolist()


def test_mixing_signatures_in_one_stack_is_refused():
    members = [ResidualMLP.initial({}, 0, activation=family(s)) for s in ("PAU", "Swish-beta")]
    with pytest.raises(ValueError, match="one parameter signature"):
        ResidualMLP({}, members, [family("PAU"), family("Swish-beta")])


@pytest.fixture(scope="module")
def learned_run(tmp_path_factory):
    import actlab

    config = actlab.RunConfig(
        activations=["Swish", "Swish-beta", "prelu_unit=" + PER_UNIT_PRELU, "Spline", "ReLU"],
        studies=["mnist1d", "gradient_flow"],
        seeds=2,
        executor="local",
        study_config={
            "mnist1d": {"steps": 40, "eval_every": 20, "architectures": ["mlp", "cnn"]},
            "gradient_flow": {"depths": [3], "width": 8, "n_samples": 8, "report_depth": 3},
        },
    )
    return actlab.run(config=config, out=tmp_path_factory.mktemp("learn") / "run")


def test_mnist1d_rows_record_the_learned_parameters_per_layer(learned_run):
    df = learned_run.results
    learned = df[df["metric"].str.startswith("learned_")]
    beta = learned[(learned["activation"] == "Swish-beta") & (learned["metric"] == "learned_b")]
    # Two sites in the MLP, three in the CNN, per seed; and they moved from 1.
    assert sorted(beta.groupby("architecture")["layer"].nunique().items()) == [
        ("cnn", 3),
        ("mlp", 2),
    ]
    assert len(beta) == 2 * (2 + 3) and (beta["value"] != 1.0).all()
    prelu = learned[learned["activation"] == "prelu_unit"]
    assert {"learned_a", "learned_a_sd"} <= set(prelu["metric"])
    assert (prelu[prelu["metric"] == "learned_a_sd"]["value"] > 0).all()  # units diverge
    spline = learned[learned["activation"] == "Spline"]
    assert {f"learned_v[{i}]" for i in range(9)} == set(spline["metric"])
    assert learned[learned["activation"] == "Swish"].empty  # fixed: nothing learned


def test_a_fixed_activations_numbers_do_not_depend_on_learnable_batch_mates(learned_run, tmp_path):
    import actlab

    config = learned_run.config.model_copy(
        update={"activations": ["Swish"], "studies": ["mnist1d"]}
    )
    alone = actlab.run(config=config, out=tmp_path / "alone", report=False).results
    both = learned_run.results

    def pick(d):  # every number but the step time, which is a measured duration
        rows = d[(d["activation"] == "Swish") & (d["study"] == "mnist1d")]
        rows = rows[rows["metric"] != "step_time"]
        return rows.sort_values(["trial", "metric", "step"])["value"].tolist()

    assert pick(alone) == pick(both)


def test_a_study_that_cannot_take_them_refuses_in_one_line(tmp_path, monkeypatch):
    """Every study takes learnable activations now; one that could not (a study whose
    `learnable_activations` is None) must refuse rather than measure a frozen stand-in."""
    from actlab.studies import get_study

    monkeypatch.setattr(type(get_study("sparsity")), "learnable_activations", None)
    result = CliRunner().invoke(
        app,
        ["run", "--studies", "sparsity", "--activations", "ReLU,PAU", "--out", str(tmp_path / "r")],
    )
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "'PAU' is learnable" in line and "'sparsity' cannot train" in line
    assert "mnist1d" in line and "\n" not in line
    assert not (tmp_path / "r").exists()


def test_the_frozen_counterpart_is_the_fixed_activation_equal_at_the_start():
    from actlab.activations import resolve_activations
    from actlab.report.learnable import frozen_twin

    _, table = resolve_activations(
        [
            "ReLU",
            "Swish",
            "PReLU",
            "prelu_fixed=max(x, 0.25*x)",
            "Swish-beta",
            "Spline",
            "PAU",
            "pl=" + PER_UNIT_PRELU,
        ]
    )
    assert frozen_twin(table["Swish-beta"], table) == "Swish"
    assert frozen_twin(table["Spline"], table) == "ReLU"
    assert frozen_twin(table["PReLU"], table) == "prelu_fixed"  # PReLU itself is learnable
    assert frozen_twin(table["pl"], table) == "prelu_fixed"
    assert frozen_twin(table["PAU"], table) is None  # only close to Leaky ReLU


def test_the_report_shows_what_was_learned_and_tests_it_against_the_frozen_twin(learned_run):
    text = learned_run.report_path.read_text()
    section = text[text.index("## Learnable activations") :]
    section = section[: section.index("\n## ", 3)]
    assert "figures/learnable_shapes.png" in section
    assert (learned_run.path / "figures" / "learnable_shapes.png").exists()
    # Swish-beta's b per layer, with the start value; its twin is Swish, tested by seed.
    assert "**Swish-beta**" in section and "b (start 1)" in section
    for arch in ("mlp", "cnn"):
        line = next(
            x
            for x in section.splitlines()
            if f"MNIST-1D accuracy ({arch}): learned Swish-beta" in x
        )
        assert "frozen Swish" in line and "paired sign-flip permutation test over 2 seeds" in line
    # Swish-beta and Spline (twin ReLU) in two architectures; gradient flow looks at
    # initialisation only, where the two are one function, so it is not compared.
    assert "Holm-adjusted over the 4 learned-versus-frozen comparisons" in section
    assert "gradient flow: learned" not in section


# -- the tutorial studies' MLP (engine/stack.py) ----------------------------------------------


def mlp_members(n: int, dtype=torch.float32):
    from actlab.engine import generator, init_mlp_params, layer_sizes

    return [
        init_mlp_params(layer_sizes(1, 16, 4), generator(7, "learn", k), dtype=dtype)
        for k in range(n)
    ]


@pytest.mark.parametrize("opt, lr", [("sgd", 0.05), ("adam", 0.01)])
@pytest.mark.parametrize("spec", ["PAU", "Spline", PER_UNIT_PRELU])
def test_the_stacked_mlp_in_exact_mode_is_the_reference_loop_with_parameters(spec, opt, lr):
    import math

    import numpy as np

    from actlab.engine import DivergenceRule, StackedMLP, make_optimizer, train_regression

    fam = family(spec)
    members = mlp_members(2)
    x = torch.linspace(-2, 2, 50)[:, None]
    y = torch.sin(math.pi * x)
    model = StackedMLP(members, [fam] * 2, exact=True)
    rule = DivergenceRule(grad_limit=1e6)
    result = train_regression(model, x, y, make_optimizer(opt, model, [lr] * 2), 30, rule)
    for m in range(2):
        ref, net = reference.train(members[m], fam, x, y, opt, lr, 30, rule)
        assert np.array_equal(result.losses[m], ref.losses[0], equal_nan=True)
        acts = [mod for mod in net.modules() if isinstance(mod, reference.LearnableAct)]
        assert len(acts) == len(model.learned_sites(m)) == 4
        for site, module in zip(model.learned_sites(m), acts, strict=True):
            for name, value in site.items():
                assert torch.equal(value, getattr(module, name).detach()), name


@pytest.mark.parametrize("spec", FAMILIES)
def test_the_stacked_mlp_in_fast_mode_has_autograds_gradients_and_is_batch_invariant(spec):
    from actlab.engine import StackedMLP

    fam = family(spec)
    members = mlp_members(3, torch.float64)
    x = torch.randn(32, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    fast = StackedMLP(members, [fam] * 3)
    fast.forward(x).square().sum().backward()
    for m in range(3):
        net = reference.build_mlp(members[m], fam).double()
        net(x).square().sum().backward()
        acts = [mod for mod in net.modules() if isinstance(mod, reference.LearnableAct)]
        for layer, module in enumerate(acts):
            for name, param in module.named_parameters():
                got = fast.act_params[layer][name].grad[m]
                assert torch.allclose(got, param.grad, rtol=0, atol=1e-12), (layer, name)
    pair = StackedMLP([members[1]] * 2, [fam] * 2)
    out_pair = pair.forward(x)
    assert torch.equal(out_pair[0], StackedMLP(members, [fam] * 3).forward(x)[1])


def test_the_learned_slope_is_the_trained_functions_derivative():
    """Sparsity's saturation reads this slope: the learned function's, not the initial one's."""
    from actlab.engine import StackedMLP

    fam = family(PER_UNIT_PRELU)
    model = StackedMLP(mlp_members(2, torch.float64), [fam] * 2)
    with torch.no_grad():
        model.act_params[0]["a"][1].fill_(-0.5)  # as if trained
    z = torch.linspace(-2, 2, 16, dtype=torch.float64).expand(1, 3, 16)
    slope = model.learned_derivative(z, 0, 1)
    assert torch.equal(slope, torch.where(z > 0, 1.0, -0.5).to(torch.float64))
    assert torch.equal(model.learned_derivative(z, 0, 0), torch.where(z > 0, 1.0, 0.25).double())


def test_speed_times_a_learnable_activation_with_its_parameter_gradients():
    from actlab.studies.speed import timed_function

    x = torch.randn(4, 8, requires_grad=True)
    fn = timed_function(get_activation("Swish-beta"), x)
    fn(x).sum().backward()
    values = fn.__closure__  # the parameters the timed function holds
    grads = [
        v.grad
        for cell in values
        if isinstance(cell.cell_contents, dict)
        for v in cell.cell_contents.values()
    ]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert timed_function(get_activation("Swish"), x) is get_activation("Swish").fn


# -- the audit of the learned-versus-frozen section (report/learnable.py; planted scores) ----


def planted_parts(accuracies: dict[str, list[float]]):
    """Two study parts of hand-made scores: MNIST-1D mlp accuracy per activation and seed,
    and dead units, which only PReLU can have (the Swishes "cannot die")."""
    import math
    from types import SimpleNamespace

    from actlab.studies import get_study
    from actlab.studies.base import property_frame

    mnist = [
        {"property": "MNIST-1D accuracy (mlp)", "activation": a, "seed": s, "score": v}
        for a, values in accuracies.items()
        for s, v in enumerate(values)
    ]
    dead = [
        {"property": "dead units", "activation": a, "seed": s,
         "score": 0.01 if a == "PReLU" else math.nan,
         "outcome": "" if a == "PReLU" else "cannot die"}
        for a, values in accuracies.items()
        for s in range(len(values))
    ]  # fmt: skip
    parts = {}
    for name, rows in (("mnist1d", mnist), ("sparsity", dead)):
        study = get_study(name)
        parts[name] = SimpleNamespace(
            specs={s.name: s for s in study.property_specs}, scores=property_frame(rows)
        )
    return parts


def test_learned_versus_frozen_says_first_when_its_seeds_cannot_separate_and_why_no_score():
    """Audit L3: "learned Swish-beta and frozen Swish are not separated by 3 seeds (...
    p = 0.25, Holm-adjusted over the 9 ... p = 1)" although Swish-beta won 3 of 3 seeds and
    no result could reach p < 0.05; and "dead units: ... cannot be tested (0 seeds)" with 3
    seeds of which neither activation has a score."""
    from actlab.activations import resolve_activations
    from actlab.report.learnable import comparison_lines, comparisons, untwinned

    _, table = resolve_activations(["Swish", "Swish-beta", "PReLU"])
    parts = planted_parts(
        {
            "Swish-beta": [0.664, 0.670, 0.665],
            "Swish": [0.627, 0.639, 0.645],
            "PReLU": [0.60, 0.61, 0.62],
        }
    )
    pairs = comparisons(table, parts)
    lines = comparison_lines(pairs, untwinned(table))
    floor = next(i for i, x in enumerate(lines) if x.startswith("With 3 seeds"))
    assert lines[floor] == (
        "With 3 seeds and one comparison, the learned-versus-frozen tests cannot reach "
        "p < 0.05 whatever the data (the smallest attainable p is 0.25); 6 seeds would be "
        "needed, so 'not separated' here says nothing about the activations."
    )
    result = next(i for i, x in enumerate(lines) if "learned Swish-beta and frozen Swish" in x)
    assert floor < result and "not separated by 3 seeds" in lines[result]
    # One tested comparison: no "Holm over the 2" that counts the untestable pair.
    assert "Holm-adjusted" not in lines[result]
    assert (
        "dead units: learned Swish-beta against frozen Swish cannot be tested: neither can "
        "die (no region of zero slope), so neither has a score in any of the 3 seeds."
    ) in lines
    assert not any("(0 seeds)" in x for x in lines)


def test_a_learnable_activation_without_its_frozen_twin_says_how_to_add_it():
    """Audit L4: PReLU's frozen twin, max(x, 0.25*x), was not in the run, and nothing said
    that PReLU went uncompared."""
    from actlab.activations import resolve_activations
    from actlab.report.learnable import comparison_lines, frozen_twin, twin_spec, untwinned

    _, table = resolve_activations(["Swish", "Swish-beta", "PReLU", "pl=" + PER_UNIT_PRELU])
    missing = untwinned(table)
    assert missing == [
        ("PReLU", "prelu_fixed=max(x, 0.25*x)"),
        ("pl", "pl_fixed=max(x, 0.25*x)"),
    ]
    lines = comparison_lines([], missing)
    assert lines[0] == (
        "PReLU is not compared with a frozen twin: the fixed activation equal to it at its "
        "initial values is not in this run; add `prelu_fixed=max(x, 0.25*x)` to "
        "--activations to include it."
    )
    # What it says to add is the twin: with it in the run, PReLU has its comparison.
    _, fuller = resolve_activations(["PReLU", missing[0][1]])
    assert frozen_twin(fuller["PReLU"], fuller) == "prelu_fixed"
    assert untwinned(fuller) == []
    # A built-in twin is named by its name; a family's initial values are written in.
    _, other = resolve_activations(["Swish-beta", "PAU", "q=x*sigmoid(b*x) + c | b=2.0; c=0.5"])
    assert twin_spec("Swish-beta", other["Swish-beta"]) == "Swish"
    spec = twin_spec("q", other["q"])
    assert spec == "q_fixed=x*sigmoid(2.0*x) + 0.5"
    _, check = resolve_activations(["q=x*sigmoid(b*x) + c | b=2.0; c=0.5", spec])
    assert frozen_twin(check["q"], check) == "q_fixed"


def test_a_diverged_network_feeding_the_spline_nan_gets_nan_back_not_a_crash():
    # NaN survives clamp and cast to a huge negative index: the spline crashed the Ray
    # search's transfer on a diverged transformer before it parked NaN on cell 0.
    spline = family("Spline")
    values = spline.initial_values(torch.float32)
    x = torch.tensor([float("nan"), 0.5, float("inf")])
    y = spline.apply(x, values)
    assert torch.isnan(y[0]) and not torch.isfinite(y[2])
    torch.testing.assert_close(y[1], torch.tensor(0.5))
    per_unit = {"v": values["v"].expand(3, -1)}
    assert torch.isnan(spline.apply(x, per_unit)[0])
