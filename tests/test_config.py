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
