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
            ("[mnist1d] architectures", "'mlp', 'cnn' or 'transformer'", "rnn"),
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


# -- the audit of the MNIST-1D section: conditions in words, the paper's causes, timing and
# -- the highest mean beside the top by mean rank (planted rows, no training) --------------


def test_each_architectures_conditions_are_words_for_that_architecture_only():
    """Audit L9: the conditions were a config dump ("architectures mlp/cnn/transformer,
    steps 1500, ..., time steps True") without the optimiser or the initialisation."""
    from actlab.studies import get_study

    study = get_study("mnist1d")
    words = study.conditions(study.Config(steps=1500))
    assert set(words) == {s.name for s in study.property_specs}
    mlp = words["MNIST-1D accuracy (mlp)"]
    assert mlp == (
        "the MNIST-1D repository's residual MLP (40 -> 100 -> 100 -> 10), PyTorch's default "
        "initialisation, Adam at learning rate 0.01, batches of 100, 1500 steps, "
        "cross-entropy; test accuracy on the 1000 test sequences of the paper's data set"
    )
    for name, text in words.items():
        arch = name[name.index("(") + 1 : -1]
        others = {"mlp": "MLP", "cnn": "CNN", "transformer": "transformer"}
        assert all(noun not in text for a, noun in others.items() if a != arch), text
        for dump in ("architectures", "time steps", "eval every", "loss limit", "holdout 0"):
            assert dump not in text
        assert "Adam" in text and "PyTorch's default initialisation" in text
    held = study.conditions(study.Config(holdout=500))["MNIST-1D accuracy (cnn)"]
    assert "accuracy on 500 held-out training sequences" in held and "not the test set" in held


def test_the_papers_causes_name_a_different_step_count_first():
    """Audit L7: the run trained 1500 steps, the paper 6000, yet the causes listed were
    "code, library versions, hardware"."""
    from types import SimpleNamespace

    from actlab.studies.mnist1d.config import Config
    from actlab.studies.mnist1d.report import paper_lines

    cells = pd.DataFrame(
        [
            {"architecture": "mlp", "activation": "ReLU", "acc_mean": 0.62, "acc_std": 0.01,
             "acc_n": 3, "acc_ci_low": 0.60, "acc_ci_high": 0.64, "acc_min": 0.613,
             "acc_max": 0.634},
        ]
    )  # fmt: skip
    rctx = SimpleNamespace(seeds=3, activations=["ReLU"])
    short = "\n".join(paper_lines(cells, rctx, Config(architectures=["mlp"], steps=1500)))
    causes = next(x for x in short.splitlines() if "a pointer to a difference in protocol" in x)
    assert (
        "a difference in protocol (first, this run trained 1500 steps, the paper and the "
        "notebook 6,000; then code, library versions, hardware)"
    ) in causes
    full = "\n".join(paper_lines(cells, rctx, Config(architectures=["mlp"])))
    assert "a difference in protocol (code, library versions, hardware)" in full
    assert "this run trained" not in full


def mnist_rows(accuracies: dict[str, list[float]], times: dict[str, list[float]], arch: str):
    """The study's summary of stored rows: per activation and seed a test accuracy and the
    step time of the stack the seed's network was timed in."""
    from actlab.studies.mnist1d.summary import summarize

    rows = []
    for act, values in accuracies.items():
        for seed, acc in enumerate(values):
            metrics = {
                "test_accuracy": acc,
                "best_test_accuracy": acc,
                "final_loss": 0.1,
                "diverged": 0.0,
                "steps_run": 40.0,
                "step_time": times[act][seed],
            }
            rows += [
                {"study": "mnist1d", "trial": f"mnist1d/{act}/{arch}/seed={seed}",
                 "activation": act, "seed": seed, "metric": m, "value": v,
                 "layer": np.nan, "step": np.nan, "architecture": arch}
                for m, v in metrics.items()
            ]  # fmt: skip
    return summarize(pd.DataFrame(rows))


def section_findings(accuracies, times, arch="transformer") -> list[str]:
    from types import SimpleNamespace

    from actlab.studies.mnist1d.config import Config
    from actlab.studies.mnist1d.report import architecture_lines

    seeds = len(next(iter(accuracies.values())))
    rctx = SimpleNamespace(seeds=seeds, activations=list(accuracies), config=Config())
    summary = mnist_rows(accuracies, times, arch)
    lines = architecture_lines(summary, arch, list(accuracies), rctx)
    return [x[2:] for x in lines if x.startswith("- ")]


# The audit's transformer: Swish-beta has the highest mean, GELU is ahead in 2 of 3 seeds.
TRANSFORMER = {"ReLU": [0.80, 0.81, 0.80], "GELU": [0.845, 0.85, 0.853],
               "Swish-beta": [0.844, 0.849, 0.866]}  # fmt: skip


def test_timing_is_not_ranked_where_one_activations_stacks_differ_more_than_the_gap():
    """Audit L8: "fastest ELU (8.98 ms), slowest ReLU (49.79 ms, 5.5x)" from one
    measurement per stack, while two stacks of one activation differed by 3.1x."""
    # ReLU 20 ms, GELU's two stacks 9 and 28 ms (3.1x), Swish-beta 10 ms: the gaps between
    # activations (1.1x at the fast end, 1.4x at the slow end) are smaller than 3.1x.
    times = {"ReLU": [0.020] * 3, "GELU": [0.028, 0.028, 0.009], "Swish-beta": [0.010] * 3}
    (timing,) = [x for x in section_findings(TRANSFORMER, times) if "time per training" in x]
    assert "one measurement per stack" in timing and "descriptive" in timing
    assert "fastest" not in timing and "slowest" not in timing
    assert "GELU 28.00 ms (stacks 28.00 ms, 9.00 ms)" in timing
    assert "Not ranked: two stacks of one activation differ by up to 3.1x (GELU)" in timing
    # One stack per activation: no spread known, so no ranking either.
    single = {"ReLU": [0.050] * 3, "GELU": [0.009] * 3, "Swish-beta": [0.010] * 3}
    (timing,) = [x for x in section_findings(TRANSFORMER, single) if "time per training" in x]
    assert "fastest" not in timing and "slowest" not in timing
    assert "each activation was measured on one stack" in timing
    # Stacks that agree (1.1x) and a gap larger than that: the ends are named, with why.
    steady = {"ReLU": [0.050, 0.050, 0.045], "GELU": [0.0076] * 3, "Swish-beta": [0.009] * 3}
    (timing,) = [x for x in section_findings(TRANSFORMER, steady) if "time per training" in x]
    assert "fastest GELU (1.2x ahead of Swish-beta) and slowest ReLU (5.6x behind Swish-beta)" in (
        timing
    )
    assert "larger than the largest difference between two stacks of one activation, 1.1x" in (
        timing
    )


def test_the_highest_mean_is_descriptive_and_a_different_top_by_mean_rank_is_named():
    """Audit L2: "the highest mean test accuracy is Swish-beta's" while the recommendation,
    by mean rank, named GELU; neither sentence said why both could hold."""
    times = {a: [0.01] * 3 for a in TRANSFORMER}
    said = section_findings(TRANSFORMER, times)
    top = next(x for x in said if "highest mean test accuracy is Swish-beta's (85.3%)" in x)
    note = said[said.index(top) + 1]
    assert note.startswith(
        "transformer: the highest mean (Swish-beta, 85.3%) is descriptive; by mean rank over "
        "the 3 seeds, the order the best-and-worst table and the recommendations rank by, the "
        "top is GELU (GELU 1.33; Swish-beta 1.67)."
    )
    assert "a mean adds up each seed's margins, a rank keeps only the order" in note
    # The same activation on top both ways: said once, still descriptive.
    same = {**TRANSFORMER, "Swish-beta": [0.846, 0.851, 0.866]}
    said = section_findings(same, times)
    note = next(x for x in said if "mean rank" in x)
    assert note == (
        "transformer: the best mean rank over the 3 seeds, the order the best-and-worst table "
        "and the recommendations rank by, is also Swish-beta's (Swish-beta 1.00); the highest "
        "mean by itself is descriptive."
    )
