"""Presets are data; the resolved config is validated, complete and hashed."""

from __future__ import annotations

import pytest

from actlab.config import available_presets, build_config, load_config
from actlab.errors import UserError


def test_tutorial_preset_has_the_protocol_numbers():
    cfg = load_config("tutorial")
    assert cfg.activations == [
        "Linear",
        "Sigmoid",
        "Tanh",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "GELU",
        "Swish",
    ]
    gf = cfg.study("gradient_flow")
    assert (gf.depths, gf.width, gf.in_dim, gf.n_samples, gf.init) == (
        [5, 10, 20, 50],
        64,
        1,
        32,
        "xavier_uniform",
    )
    assert cfg.seeds == 6
    assert cfg.studies == ["gradient_flow", "sparsity", "stability", "capacity"]
    sp = cfg.study("sparsity")
    assert (
        sp.depth,
        sp.width,
        sp.in_dim,
        sp.n_samples,
        sp.noise,
        sp.optimizer,
        sp.lr,
        sp.steps,
    ) == (10, 128, 10, 1000, 0.1, "sgd", 0.1, 100)
    st = cfg.study("stability")
    assert (st.lrs, st.lr_depth, st.lr_optimizer, st.lr_steps) == (
        [0.001, 0.01, 0.1, 0.5, 1.0],
        10,
        "sgd",
        100,
    )
    assert (st.depths, st.depth_lr, st.depth_optimizer, st.depth_steps, st.width, st.n_points) == (
        [5, 10, 20, 50, 100],
        0.01,
        "adam",
        200,
        64,
        200,
    )
    cap = cfg.study("capacity")
    assert (
        cap.targets,
        cap.depth,
        cap.width,
        cap.optimizer,
        cap.lr,
        cap.steps,
        cap.n_train,
        cap.n_test,
    ) == (["sin", "abs", "step", "sin10", "cubic"], 5, 64, "adam", 0.001, 500, 200, 500)


def test_default_preset_is_the_sound_protocol_and_presets_are_listed():
    assert load_config().preset == "sound"
    assert {"sound", "tutorial", "quick"} <= set(available_presets())


def test_overrides_apply_on_top_of_the_preset():
    cfg = load_config("tutorial", overrides={"seeds": 1, "activations": ["relu"]})
    assert cfg.seeds == 1 and cfg.activations == ["relu"]


def test_config_file_overrides_preset_tables(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "quick"\nseeds = 4\n[gradient_flow]\nwidth = 12\n')
    cfg = load_config(config_file=path)
    assert cfg.seeds == 4 and cfg.preset == "quick"
    assert cfg.study("gradient_flow").width == 12
    assert cfg.study("gradient_flow").depths == [3, 6]  # the rest of quick's table kept


def test_study_defaults_are_filled_in_the_resolved_config():
    cfg = build_config({"activations": ["relu"], "studies": ["gradient_flow"]})
    assert cfg.study_config["gradient_flow"]["depths"] == [5, 10, 20, 50]


def test_hash_ignores_how_a_run_executes_but_not_what_it_measures():
    base = {"activations": ["relu"], "studies": ["gradient_flow"]}
    h = build_config(base).hash()
    assert build_config({**base, "max_members": 3, "description": "x"}).hash() == h
    assert build_config({**base, "seeds": 5}).hash() != h
    assert build_config({**base, "gradient_flow": {"width": 9}}).hash() != h
    assert (
        build_config({**base, "gradient_flow": {"width": 9}}).hash()
        == build_config({**base, "gradient_flow": {"width": 9}}).hash()
    )


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"seeds": 0}, "seeds"),
        ({"gradient_flow": {"depths": [0]}}, "depths"),
        ({"gradient_flow": {"width": -2}}, "width"),
        ({"gradient_flow": {"depths": []}}, "depths"),
        ({"studies": ["nope"]}, "unknown study 'nope'"),
        ({"nope": {"a": 1}}, "unknown study 'nope'"),
        ({"colour": "red"}, "colour"),
        ({"activations": []}, "activations"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_values_fail_with_one_line_naming_them(raw, words):
    base = {"activations": ["relu"], "studies": ["gradient_flow"]}
    with pytest.raises(UserError) as err:
        build_config({**base, **raw})
    message = str(err.value)
    assert words in message and "\n" not in message


def test_default_seeds_are_the_fewest_a_paired_test_can_separate_with():
    """The tutorial's seeds: the smallest n at which one sign-flip test can give p < 0.05;
    one seed fewer never can. (A Holm family needs more: stats.seeds_for_family.)"""
    from actlab.config import DEFAULT_SEEDS
    from actlab.stats import SIGNIFICANCE, paired_comparison, smallest_p

    n = DEFAULT_SEEDS
    assert smallest_p(n) < SIGNIFICANCE <= smallest_p(n - 1)
    assert paired_comparison([1.0] * n, [0.0] * n).significant
    assert not paired_comparison([1.0] * (n - 1), [0.0] * (n - 1)).significant
    assert load_config("tutorial").seeds == DEFAULT_SEEDS


# -- messages: every unknown key at once, TOML positions, plain words ------------------------


def test_every_unknown_key_is_named_at_once_with_its_table_and_the_nearest_setting():
    raw = {
        "activations": ["relu"],
        "studies": ["stability"],
        "colour": "red",
        "stability": {"lr_stepz": 3, "lrs": [0.1], "bogus": 1},
    }
    with pytest.raises(UserError) as err:
        build_config(raw, source="config file 'c.toml'")
    assert str(err.value) == (
        "config file 'c.toml': unknown settings colour, [stability] lr_stepz "
        "(did you mean lr_steps?), [stability] bogus; remove or rename them "
        "(the presets in 'actlab list presets' show every setting)"
    )


@pytest.mark.parametrize(
    "text, where",
    [
        ('seeds = 2\nactivations = ["relu"]\nstudies = = 3\n', "at line 3, column 11"),
        ("seeds = 2\n[gradient_flow]\ndepths = [2,\n", "at the end of the file (line 3)"),
    ],
)
def test_a_toml_syntax_error_names_the_file_and_the_line(tmp_path, text, where):
    path = tmp_path / "broken.toml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_config(config_file=path)
    message = str(err.value)
    assert message.startswith(f"config file '{path}' is not valid TOML {where}: "), message
    assert "\n" not in message
    last = text.splitlines()[-1].strip()
    assert message.endswith(f"(the line reads '{last}')"), message


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"seeds": 0}, "seeds: must be at least 1 (got 0)"),
        ({"seeds": 5000}, "seeds: must be at most 1000 (got 5000)"),
        ({"seeds": "three"}, "seeds: must be a whole number (got 'three')"),
        ({"exact": "maybe"}, "exact: must be true or false (got 'maybe')"),
        ({"device": "tpu"}, "device: must be 'cpu' or 'cuda' (got 'tpu')"),
        ({"activations": []}, "activations: must have at least 1 item (got [])"),
        ({"activations": "relu"}, "activations: must be a valid list, in [brackets] (got 'relu')"),
        (
            {"gradient_flow": {"width": 8.5}},
            "[gradient_flow] width: must be a whole number (got 8.5)",
        ),
        (
            {"gradient_flow": {"sigma_b": "x"}},
            "[gradient_flow] sigma_b: must be a number (got 'x')",
        ),
        (
            {"studies": ["sparsity"], "sparsity": {"lr": -0.1}},
            "[sparsity] lr: must be positive (got -0.1)",
        ),
        (
            {"studies": ["stability"], "stability": {"lrs": [0.1, -1]}},
            "[stability] lrs: learning rates must be positive (got -1.0)",
        ),
        (
            {"seeds": 0, "workers": 0},
            "seeds: must be at least 1 (got 0); workers: must be at least 1 (got 0)",
        ),
    ],
)
def test_validation_errors_read_as_plain_sentences_naming_the_setting(raw, message):
    base = {"activations": ["relu"], "studies": ["gradient_flow"]}
    with pytest.raises(UserError) as err:
        build_config({**base, **raw}, source="config file 'c.toml'")
    assert str(err.value) == f"config file 'c.toml': {message}"
    assert "Input should" not in str(err.value)


def test_config_differences_name_each_changed_setting():
    from actlab.config import config_differences

    base = {"activations": ["relu"], "studies": ["gradient_flow"], "gradient_flow": {"width": 8}}
    before = build_config({**base, "seeds": 3}).hashed_dict()
    after = build_config({**base, "seeds": 5, "gradient_flow": {"width": 16}}).hashed_dict()
    assert config_differences(before, after) == [
        "seeds: 3 in the run, 5 here",
        "[gradient_flow] width: 8 in the run, 16 here",
    ]
    assert config_differences(before, before) == []


@pytest.mark.parametrize(
    "kind, name, near",
    [
        ("activation", "gleu", "GELU"),
        ("activation", "SIGMOD", "Sigmoid"),
        ("activation", "swsh", "Swish"),
        ("study", "Sparsty", "sparsity"),
        ("study", "gradient-flw", "gradient_flow"),
        ("preset", "TUTORAL", "tutorial"),
    ],
)
def test_an_unknown_name_suggests_the_nearest_ignoring_case(kind, name, near):
    from actlab.activations import available, get_activation
    from actlab.config import preset_path
    from actlab.studies import get_study

    lookup = {"activation": get_activation, "study": get_study, "preset": preset_path}[kind]
    with pytest.raises(UserError) as err:
        lookup(name)
    message = str(err.value)
    assert message.startswith(f"unknown {kind} '{name}'; did you mean {near}? (available: ")
    if kind == "activation":
        assert ", ".join(available()) in message and "expression in x" in message


def test_a_name_near_nothing_gets_the_list_without_a_guess():
    from actlab.activations import available, get_activation

    with pytest.raises(UserError) as err:
        get_activation("nosuchact")
    assert str(err.value).startswith(
        f"unknown activation 'nosuchact'; available: {', '.join(available())}; or give"
    )
