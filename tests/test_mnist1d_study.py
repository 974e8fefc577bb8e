"""The mnist1d study end to end on tiny settings, its bad input, the paper table and the
transfer section's statistics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from actlab.cli import app
from actlab.config import RunConfig
from actlab.report.transfer import compare, kendall_tau_b, seed_ranks
from actlab.runner import run

TINY = {"steps": 40, "eval_every": 20, "batch": 100}


def write_config(path, mnist1d: str, studies='["mnist1d"]', seeds=2) -> str:
    path.write_text(
        f'seeds = {seeds}\nactivations = ["ReLU", "Tanh"]\nstudies = {studies}\n'
        f"[mnist1d]\nsteps = 40\neval_every = 20\n{mnist1d}\n"
    )
    return str(path)


@pytest.mark.parametrize(
    "table, fragments",
    [
        (
            'architectures = ["mlp", "rnn"]',
            ("mnist1d.architectures", "'mlp', 'cnn' or 'transformer'", "rnn"),
        ),
        (
            "[mnist1d.data]\nnoise = 0.1",
            ("unknown MNIST-1D data argument(s) 'noise'", "available:", "shuffle_seq"),
        ),
        ("patch = 3", ("patch size 3 does not divide the sequence length 40",)),
        ("[mnist1d.data]\nnum_samples = 'many'", ("num_samples", "takes a int")),
    ],
)
def test_bad_mnist1d_settings_are_one_line_and_exit_2(tmp_path, table, fragments):
    config = write_config(tmp_path / "bad.toml", table)
    result = CliRunner().invoke(app, ["run", "--config", config, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("actlab: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def tiny(out, seeds: int, **settings):
    return run(
        config=RunConfig(
            activations=["ReLU", "Tanh"],
            studies=["mnist1d"],
            seeds=seeds,
            executor="local",
            study_config={"mnist1d": {**TINY, **settings}},
        ),
        out=out,
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mnist1d") / "run"
    return tiny(out, 2, architectures=["mlp", "cnn"])


def test_a_tiny_run_stores_rows_per_trial_and_evaluation_and_reports_them(tiny_run):
    df = tiny_run.results
    assert set(df["architecture"].dropna()) == {"mlp", "cnn"}
    scalars = df[df["step"].isna()]
    per_trial = scalars.groupby("trial")["metric"].apply(set)
    assert len(per_trial) == 2 * 2 * 2
    for metrics in per_trial:
        assert {
            "test_accuracy",
            "best_test_accuracy",
            "final_loss",
            "diverged",
            "step_time",
        } <= metrics
    curve = df[(df["metric"] == "test_accuracy") & df["step"].notna()]
    assert sorted(curve["step"].unique()) == [20, 40]
    # The final accuracy is the last evaluation's, and above chance after 40 steps.
    final = scalars[scalars["metric"] == "test_accuracy"].set_index("trial")["value"]
    last = curve[curve["step"] == 40].set_index("trial")["value"]
    assert final.sort_index().equals(last.sort_index())
    assert (final > 0.15).all()
    report = tiny_run.report_path.read_text()
    assert "| MLP | 68% |" in report and "| CNN | 94% |" in report
    assert "**mlp**: final test accuracy" in report and "**cnn**" in report
    assert "## Does the toy verdict transfer?" in report and "| mlp vs cnn |" in report


def test_changed_data_arguments_become_columns_and_the_paper_is_not_compared(tmp_path):
    result = tiny(tmp_path / "run", 1, architectures=["mlp"], data={"num_samples": 600})
    df = result.results
    assert set(df["num_samples"].dropna()) == {600}
    assert "this run's data differ from the paper's set (num_samples = 600)" in (
        result.report_path.read_text()
    )


def test_kendall_tau_b_is_scipys_with_ties():
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(20, 7)).astype(float)
    b = rng.integers(0, 4, size=(20, 7)).astype(float)
    ours = kendall_tau_b(a, b)
    for i in range(20):
        expected = kendalltau(a[i], b[i]).statistic
        assert ours[i] == pytest.approx(expected, abs=1e-12) or (
            math.isnan(ours[i]) and math.isnan(expected)
        )


def test_rankings_by_seed_and_their_bootstrap_interval():
    # Property P ranks A > B > C in every seed; Q reverses it in every seed.
    rows = []
    for seed in range(4):
        for act, p in zip("ABC", (3.0, 2.0, 1.0), strict=True):
            rows.append(
                {"property": "P", "activation": act, "seed": seed, "setting": "", "score": p}
            )
            rows.append(
                {"property": "Q", "activation": act, "seed": seed, "setting": "", "score": p}
            )
    scores = pd.DataFrame(rows)
    p = seed_ranks(scores, "P", "higher", list("ABC"), list(range(4)))
    q = seed_ranks(scores, "Q", "lower", list("ABC"), list(range(4)))
    assert p[0].tolist() == [1.0, 2.0, 3.0] and q[0].tolist() == [3.0, 2.0, 1.0]
    c = compare(p, q)
    assert c["tau"] == -1.0 and c["low"] == c["high"] == -1.0 and c["n"] == 3
    assert compare(p, p)["tau"] == 1.0


def test_a_profile_pairs_the_focus_with_each_activation_per_architecture(tmp_path):
    from actlab.config import load_config

    assert "mnist1d" in load_config("full").studies  # `actlab profile` runs the full preset
    result = run(
        config=RunConfig(
            activations=["mish-expr=x*tanh(softplus(x))", "ReLU", "Tanh"],
            studies=["mnist1d"],
            seeds=2,
            executor="local",
            focus="mish-expr",
            study_config={"mnist1d": {**TINY, "architectures": ["mlp"]}},
        ),
        out=tmp_path / "run",
    )
    report = result.report_path.read_text()
    assert "## Profile: mish-expr" in report
    assert "**MNIST-1D.** mish-expr's test accuracy minus each other activation's" in report
    assert "| mlp | ReLU |" in report and "| mlp | Tanh |" in report


def test_each_architecture_trains_all_its_activations_and_seeds_in_one_stack():
    from actlab.plan import plan
    from actlab.studies import get_study

    study = get_study("mnist1d")
    config = study.Config()
    acts = ["ReLU", "Tanh", "GELU"]
    batches = plan(study, study.trials(config, acts, 3), acts, max_members=64, config=config)
    assert [len(b.trials) for b in batches] == [9, 9, 9]
    assert [b.trials[0].params["architecture"] for b in batches] == ["mlp", "cnn", "transformer"]
    # The planner asks the architecture for a trial's work: the transformer's is the largest.
    costs = [b.unit_cost for b in batches]
    assert costs[2] > costs[1] > costs[0] > 0


def test_large_moves_between_architectures_are_named():
    from actlab.report.transfer import shifts

    acts = list("ABCDE")
    # mlp ranks A best ... E worst; cnn reverses it; per seed, two seeds.
    mlp = np.array([[1.0, 2, 3, 4, 5]] * 2)
    cnn = mlp[:, ::-1].copy()
    lines = shifts({"m": mlp, "c": cnn}, ["m", "c"], acts, lambda t: t + "arch")
    assert lines[0].endswith("march A; carch E.")
    assert "A (1 in the march, 5 in the carch)" in lines[1]
    assert "E (5 in the march, 1 in the carch)" in lines[1] and "C (" not in lines[1]


def test_the_paper_table_names_the_difference_and_places_the_single_runs():
    from types import SimpleNamespace

    from actlab.studies.mnist1d.config import Config
    from actlab.studies.mnist1d.report import paper_lines

    cells = pd.DataFrame(
        [
            {"architecture": "mlp", "activation": "ReLU", "acc_mean": 0.642, "acc_std": 0.0105,
             "acc_n": 5, "acc_ci_low": 0.629, "acc_ci_high": 0.655, "acc_min": 0.628,
             "acc_max": 0.657},
            {"architecture": "cnn", "activation": "ReLU", "acc_mean": 0.941, "acc_std": 0.0085,
             "acc_n": 5, "acc_ci_low": 0.931, "acc_ci_high": 0.952, "acc_min": 0.930,
             "acc_max": 0.950},
        ]
    )  # fmt: skip
    rctx = SimpleNamespace(seeds=5, activations=["ReLU"])
    text = "\n".join(paper_lines(cells, rctx, Config(architectures=["mlp", "cnn"])))
    # paper, the authors' notebook, actlab's mean [95% interval], the difference, and the
    # 95% prediction interval for one more run: mean +- t(4) * sd * sqrt(1 + 1/5)
    assert "| MLP | 68% | 65.1% | 64.2% [62.9, 65.5] | -3.8 points | [61.0, 67.4] |" in text
    assert "| CNN | 94% | 92.3% | 94.1% [93.1, 95.2] | +0.1 points | [91.5, 96.7] |" in text
    assert "| GRU | 91% | – | not measured | | |" in text
    assert "MLP: the paper's run (68%) is above all 5 of actlab's runs" in text
    assert "CNN: the paper's run (94%) is within the range of actlab's 5 runs" in text


def test_holdout_trains_on_the_rest_and_evaluates_on_the_held_out_samples():
    from types import SimpleNamespace

    import torch

    from actlab.data import mnist1d_dataset
    from actlab.studies.mnist1d.config import Config
    from actlab.studies.mnist1d.run import dataset

    full = mnist1d_dataset()
    ctx = SimpleNamespace(config=Config(holdout=500), device="cpu", torch_dtype=torch.float32)
    split = dataset(ctx)
    n = len(full["x"])
    assert len(split["x"]) == n - 500 and len(split["x_test"]) == 500
    assert torch.equal(split["x_test"], full["x"][-500:].float())
    assert torch.equal(split["y_test"], full["y"][-500:])
    assert torch.equal(split["x"], full["x"][:-500].float())  # never trained on the holdout
    with pytest.raises(ValueError, match="holdout 4000 leaves none"):
        Config(holdout=4000)


def test_new_options_leave_old_hashes_alone_and_time_steps_off_drops_step_time(tmp_path):
    base = {"activations": ["ReLU"], "studies": ["mnist1d"], "seeds": 1}
    plain = RunConfig(**base)
    assert "holdout" not in plain.hashed_dict()["study_config"]["mnist1d"]
    assert "time_steps" not in plain.hashed_dict()["study_config"]["mnist1d"]
    held = RunConfig(**base, study_config={"mnist1d": {"holdout": 500}})
    assert held.hash() != plain.hash()
    untimed = tiny(tmp_path / "run", 1, architectures=["mlp"], time_steps=False)
    metrics = set(untimed.results["metric"])
    assert "test_accuracy" in metrics and "step_time" not in metrics
    rows = [
        line
        for line in untimed.report_path.read_text().splitlines()
        if line.startswith("| ReLU |") and " of 1 |" in line  # the accuracy table's row
    ]
    assert rows and all(row.endswith("| – |") for row in rows)  # no step time: a dash
