"""Statistics against scipy, rankings and sentences from synthetic results with a known
answer, and the complete report of a `quick` run."""

from __future__ import annotations

import hashlib
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

import actlab
from actlab.report import summary as cross
from actlab.stats import describe, paired_comparison, rank, summarize


def test_summary_matches_scipy():
    x = np.array([0.3, 1.7, 2.2, 0.9, 1.4])
    s = summarize(x)
    lo, hi = scipy_stats.t.interval(0.95, df=4, loc=x.mean(), scale=scipy_stats.sem(x))
    assert s.mean == pytest.approx(x.mean()) and s.std == pytest.approx(x.std(ddof=1))
    assert (s.ci_low, s.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert s.n == 5


def test_one_value_has_no_interval_and_non_finite_values_are_dropped():
    s = summarize([2.0, math.nan, math.inf])
    assert s.mean == 2.0 and s.n == 1 and math.isnan(s.ci_low) and math.isnan(s.std)


def test_describe_groups():
    df = pd.DataFrame({"g": ["a", "a", "b", "b"], "value": [1.0, 3.0, 5.0, 5.0]})
    out = describe(df, ["g"]).set_index("g")
    assert out.loc["a", "mean"] == 2.0 and out.loc["b", "std"] == 0.0


def test_paired_comparison_matches_scipy():
    a = np.array([1.0, 2.0, 3.5, 4.0, 5.5])
    b = np.array([0.8, 1.7, 3.6, 3.1, 5.0])
    p = paired_comparison(a, b)
    assert p.p_value == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue)
    assert p.mean_diff == pytest.approx((a - b).mean()) and p.n == 5


def test_paired_comparison_edge_cases():
    assert paired_comparison([1, 2], [1, 2]).p_value == 1.0  # identical: no difference
    assert paired_comparison([2, 3], [1, 2]).p_value == 0.0  # constant shift, no noise
    assert not paired_comparison([1.0], [2.0]).tested  # one pair cannot be tested
    assert paired_comparison([1, np.nan, 3], [0, 1, 2]).n == 2  # incomplete pairs dropped


def scores(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"activation": a, "seed": s, "score": v}
            for a, vs in values.items()
            for s, v in enumerate(vs)
        ]
    )


def test_rank_finds_a_known_best_and_worst():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, size=(3, 8))
    data = {"A": 3 + noise[0], "B": 2 + noise[1], "C": 1 + noise[2]}
    r = rank(scores({k: list(v) for k, v in data.items()}), better="higher")
    assert r.order == ["A", "B", "C"] and r.best == ["A"] and r.worst == ["C"] and r.tested
    lower = rank(scores({k: list(v) for k, v in data.items()}), better="lower")
    assert lower.best == ["C"] and lower.worst == ["A"]


def test_rank_calls_an_unresolved_difference_a_tie():
    data = {"A": [1.0, 2.0, 1.5, 2.4], "B": [1.9, 1.2, 2.1, 1.3], "C": [-5.0, -5.1, -4.9, -5.2]}
    r = rank(scores(data), better="higher")
    assert set(r.best) == {"A", "B"} and r.worst == ["C"]


def ranking(prop: str, data: dict[str, list[float]], better="higher"):
    return cross.PropertyRanking(prop, better, rank(scores(data), better))


def test_recommendation_sentences_follow_the_ranking():
    clear = ranking(
        "depth robustness", {"ReLU": [5, 5, 5], "Tanh": [3, 3.1, 2.9], "Sigmoid": [0, 0.1, 0]}
    )
    tied = ranking(
        "fit (interpolation)",
        {"ReLU": [-3.0, -2.0, -2.5], "GELU": [-2.2, -2.9, -2.4], "Linear": [-0.5, -0.6, -0.55]},
        better="lower",
    )
    lines = cross.recommendations([clear, tied], seeds=3)
    assert "For a deep network (many layers): ReLU; avoid Sigmoid (by depth robustness)." in lines
    fit = next(line for line in lines if "inside the data range" in line)
    assert "(tied)" in fit and "ReLU" in fit and "GELU" in fit and "avoid Linear" in fit
    table = cross.best_worst_table([clear, tied], seeds=3)
    assert "| depth robustness |" in table and "ReLU (5)" in table
    assert "untested" not in " ".join(lines)


def test_one_seed_recommendations_say_they_are_untested():
    r = ranking("depth robustness", {"ReLU": [5], "Tanh": [3]})
    assert "untested" in cross.recommendations([r], seeds=1)[-1]
    assert "One seed" in cross.best_worst_table([r], seeds=1)


def test_folklore_is_reported_only_when_contradicted():
    def lr_table(tanh_div, relu_div):
        return pd.DataFrame(
            {
                "activation": ["Tanh", "ReLU"],
                "lr": [1.0, 1.0],
                "diverged": [tanh_div, relu_div],
                "seeds": [3, 3],
            }
        )

    acts = ["Tanh", "ReLU"]
    contradicted = cross.bounded_is_stable({"stability": {"lr": lr_table(2, 0)}}, acts)
    assert "Tanh diverged in 2 of 3 seeds at learning rate 1" in contradicted
    assert cross.bounded_is_stable({"stability": {"lr": lr_table(0, 0)}}, acts) is None
    assert cross.bounded_is_stable({"stability": {"lr": lr_table(2, 1)}}, acts) is None
    # claims whose evidence is missing from the run are skipped, not guessed
    assert cross.folklore({}, acts) == []


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    return actlab.run("quick", out=tmp_path_factory.mktemp("q") / "run")


def test_quick_run_writes_every_file(quick_run):
    path = quick_run.path
    for name in ("manifest.json", "results.csv", "results.parquet", "progress.jsonl", "report.md"):
        assert (path / name).stat().st_size > 0, name
    pngs = sorted(p.stem for p in (path / "figures").glob("*.png"))
    svgs = sorted(p.stem for p in (path / "figures").glob("*.svg"))
    assert pngs == svgs
    assert {
        "gradient_flow",
        "sparsity",
        "sparsity_histograms",
        "stability",
        "capacity_heatmap",
        "capacity_predictions",
        "summary",
    } <= set(pngs)
    report = quick_run.report_path.read_text()
    linked = re.findall(r"\]\((figures/[^)]+)\)", report)
    assert {f"figures/{p}.png" for p in pngs} == set(linked)
    for heading in (
        "## Introduction",
        "## Theory in brief",
        "## Gradient flow",
        "## Sparsity and dead units",
        "## Stability under stress",
        "## Representational capacity",
        "## Best and worst per property",
        "## Recommendations",
        "## Summary sheet",
        "## References",
    ):
        assert heading in report, heading
    assert set(quick_run.results["study"]) == {"gradient_flow", "sparsity", "stability", "capacity"}


def test_report_command_rebuilds_identical_files(quick_run):
    from typer.testing import CliRunner

    from actlab.cli import app

    def digest():
        files = sorted((quick_run.path / "figures").iterdir()) + [quick_run.report_path]
        return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}

    before = digest()
    for f in (quick_run.path / "figures").iterdir():
        f.unlink()
    result = CliRunner().invoke(app, ["report", str(quick_run.path)])
    assert result.exit_code == 0, result.output
    assert digest() == before


@pytest.mark.parametrize(
    "name, text",
    [
        ("Sigmoid", "(0, 1)"),
        ("Tanh", "(-1, 1)"),
        ("ELU", "(-1, ∞)"),
        ("ReLU", "[0, ∞)"),
        ("GELU", "[-0.169972, ∞)"),
        ("Hardtanh", "[-1, 1]"),
        ("LogSigmoid", "(-∞, 0)"),
    ],
)
def test_output_ranges_bracket_only_the_bounds_that_are_reached(name, text):
    from actlab.activations import get_activation
    from actlab.report.markdown import bounds_attained, interval_text

    act = get_activation(name)
    lo, hi = act.output_range
    assert interval_text(lo, hi, bounds_attained(act, lo, hi)) == text


def test_versus_runner_up_sentences():
    from actlab.stats import versus_runner_up

    better = paired_comparison([2.0, 3.1, 4.0, 5.2], [1.0, 2.0, 3.1, 4.0])
    assert versus_runner_up("ReLU", better).startswith("ReLU is better than the runner-up")
    tie = paired_comparison([1.0, 2.0, 1.5], [1.9, 1.2, 1.6])
    assert versus_runner_up("ReLU", tie, "+0.1 points").startswith(
        "ReLU is tied with the runner-up (+0.1 points, paired t-test over 3 seeds"
    )
    assert versus_runner_up("ReLU", paired_comparison([1.0], [2.0])) == (
        "the difference cannot be tested (1 paired seed(s))"
    )
