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

from actlab.report import summary as cross
from actlab.stats import describe, paired_comparison, summarize


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


def brute_force_sign_flip(d) -> float:
    """Every one of the 2^n sign assignments, by itertools: the definition of the test."""
    import itertools

    d = np.asarray(d, dtype=float)
    observed = abs(d.sum())
    sums = [abs(np.dot(signs, d)) for signs in itertools.product((1, -1), repeat=len(d))]
    return sum(s >= observed - 1e-12 for s in sums) / len(sums)


def test_sign_flip_test_matches_its_definition_and_scipy():
    a = np.array([1.0, 2.0, 3.5, 4.0, 5.5])
    b = np.array([0.8, 1.7, 3.6, 3.1, 5.0])
    p = paired_comparison(a, b)
    assert p.p_value == pytest.approx(brute_force_sign_flip(a - b))
    exact = scipy_stats.permutation_test(
        (a, b),
        lambda x, y: np.mean(x - y),
        permutation_type="samples",
        n_resamples=np.inf,
        alternative="two-sided",
    )
    assert p.p_value == pytest.approx(exact.pvalue)
    assert p.mean_diff == pytest.approx((a - b).mean()) and p.n == 5


def test_constant_differences_are_not_p_zero():
    # Audit defect 1: identical per-seed differences used to give p = 0. With n pairs the
    # sign-flip test cannot go below 2 / 2^n: 0.25 for three seeds, whatever the effect.
    for n in (2, 3, 5):
        p = paired_comparison([1.0] * n, [0.0] * n)
        assert p.p_value == pytest.approx(2 / 2**n) and not p.significant
    assert paired_comparison([3.0] * 6, [2.0] * 6).p_value == pytest.approx(1 / 32)
    assert paired_comparison([1, 2], [1, 2]).p_value == 1.0  # identical: no difference
    assert not paired_comparison([1.0], [2.0]).tested  # one pair cannot be tested
    assert paired_comparison([1, np.nan, 3], [0, 1, 2]).n == 2  # incomplete pairs dropped


def test_holm_matches_its_definition():
    from actlab.stats import holm

    # sorted p: 0.01, 0.013, 0.04, 0.5 with m = 4 -> 0.04, 0.039 -> 0.04 (monotone), 0.08, 0.5
    assert holm([0.013, 0.5, 0.01, 0.04]) == pytest.approx([0.04, 0.5, 0.04, 0.08])
    assert holm([0.013]) == [0.013]
    assert math.isnan(holm([math.nan, 0.2])[0]) and holm([math.nan, 0.2])[1] == 0.2


def test_friedman_statistic_matches_scipy_with_ties():
    from actlab.stats import block_ranks, friedman_nemenyi, friedman_statistic

    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(7, 5)), 1)  # rounding makes ties
    x[:, 2] = x[:, 1]
    assert friedman_statistic(block_ranks(x, True)) == pytest.approx(
        scipy_stats.friedmanchisquare(*x.T).statistic
    )
    test = friedman_nemenyi(x, list("abcde"), higher_is_better=True)
    assert 0 < test.friedman_p <= 1
    # every block all ties: no evidence at all
    flat = friedman_nemenyi(np.ones((4, 3)), ["a", "b", "c"], True)
    assert flat.friedman_p == 1.0 and not flat.separates


def test_nemenyi_critical_difference_matches_demsar():
    from actlab.stats import critical_difference, nemenyi_q

    # Demšar 2006, Table 5(a): q_0.05 for k = 2..10
    table = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    for k, q in zip(range(2, 11), table, strict=True):
        assert nemenyi_q(k) == pytest.approx(q, abs=1e-3)  # the table has 3 decimals
    assert critical_difference(8, 3) == pytest.approx(3.031 * math.sqrt(72 / 18), abs=2e-3)


def test_permutation_p_of_friedman_agrees_with_the_chi_square_for_many_blocks():
    from actlab.stats import friedman_nemenyi

    rng = np.random.default_rng(7)
    x = rng.normal(size=(40, 4)) + np.array([0.0, 0.2, 0.4, 0.6])
    test = friedman_nemenyi(x, list("abcd"), True)
    chi2 = scipy_stats.friedmanchisquare(*x.T).pvalue
    assert test.friedman_p == pytest.approx(chi2, abs=0.02)


def property_scores(prop: str, data: dict[str, list[float]], settings: int = 1) -> pd.DataFrame:
    """A properties() table: data[activation] lists scores seed-major over the settings."""
    rows = []
    for act, values in data.items():
        for i, v in enumerate(values):
            rows.append(
                {
                    "property": prop,
                    "activation": act,
                    "seed": i // settings,
                    "setting": f"s={i % settings}" if settings > 1 else "",
                    "score": v,
                    "outcome": "",
                    "regime": False,
                    "floored": False,
                }
            )
    return pd.DataFrame(rows)


def spec(prop: str, better: str = "higher", **kw):
    from actlab.studies.base import PropertySpec

    return PropertySpec(prop, f"{prop} score", better, **kw)


def verdicts_of(scores: pd.DataFrame, specs: dict) -> pd.DataFrame:
    from actlab.report.verdicts import verdict_table

    return verdict_table(scores, specs)


def test_verdicts_find_a_known_best_and_worst():
    rng = np.random.default_rng(0)
    data = {
        a: list(level + rng.normal(0, 0.01, 12))
        for a, level in zip("ABCDE", (5, 4, 3, 2, 1), strict=True)
    }
    v = verdicts_of(property_scores("p", data), {"p": spec("p")}).set_index("activation")
    assert v.loc["A", "group"] == "best" and v.loc["E", "group"] == "worst"
    assert v.loc["C", "group"] == "middle"
    assert list(v["mean_rank"]) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert v.loc["A", "mean"] == pytest.approx(np.mean(data["A"]))
    lower = verdicts_of(property_scores("p", data), {"p": spec("p", "lower")})
    assert lower.set_index("activation").loc["E", "group"] == "best"


def test_recommendation_sentences_follow_the_verdicts():
    rng = np.random.default_rng(1)
    depth = {
        a: list(level + rng.normal(0, 0.01, 8))
        for a, level in (("ReLU", 5), ("Tanh", 3), ("Sigmoid", 0))
    }
    scores = property_scores("depth robustness", depth)
    specs = {"depth robustness": spec("depth robustness", situation="a deep network (many layers)")}
    v = verdicts_of(scores, specs)
    lines = cross.recommendations(v, specs, seeds=8)
    first = lines[0]
    # ReLU is best (separated from Sigmoid) but a mean-rank gap of 1 to Tanh is below the
    # critical difference for 3 activations over 8 seeds (1.17): the sentence says so.
    assert first.startswith(
        "For a deep network (many layers): ReLU; ReLU ranks first but is not separated "
        "from Tanh (Nemenyi p = 0.11)"
    )
    assert "avoid Sigmoid" in first
    assert "Friedman + Nemenyi over 8 seeds" in first
    table = cross.best_worst_table(v, specs)
    assert "| depth robustness |" in table and "ReLU (1)" in table and "Sigmoid (3)" in table
    # The answer on top and the decision guide say the same of a lone, unseparated first
    # (the answer had read "ReLU (not separated from one another at the top)").
    (answer,) = cross.answers(v, specs, {})
    assert answer.startswith(
        "**For a deep network (many layers):** ReLU (first, but not separated from Tanh). "
    )
    assert "| ReLU (first, but not separated from Tanh) |" in cross.decision_guide(v, specs)


def test_one_seed_recommendations_say_what_they_rest_on():
    scores = property_scores("depth robustness", {"ReLU": [5.0], "Tanh": [3.0]})
    specs = {"depth robustness": spec("depth robustness", situation="a deep network")}
    v = verdicts_of(scores, specs)
    lines = cross.recommendations(v, specs, seeds=1)
    assert "no recommendation" in lines[0] and "untested" in lines[0]
    assert "One seed" in lines[-1]
    assert "not separated by 1 seed" in cross.best_worst_table(v, specs)


def test_quick_run_writes_every_file(quick_run):
    path = quick_run.path
    for name in ("manifest.json", "results.csv", "results.parquet", "progress.jsonl", "report.md"):
        assert (path / name).stat().st_size > 0, name
    pngs = sorted(p.stem for p in (path / "figures").glob("*.png"))
    # Each figure is drawn once, as PNG: report.html embeds the PNGs, so nothing reads an SVG.
    assert not list((path / "figures").glob("*.svg"))
    assert {
        "gradient_flow",
        "sparsity",
        "sparsity_histograms",
        "stability",
        "capacity_heatmap",
        "capacity_predictions",
        "critical_differences",
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


@pytest.mark.slow  # every figure and both reports drawn again
def test_report_command_rebuilds_identical_files(quick_run):
    from typer.testing import CliRunner

    from actlab.cli import app

    html = quick_run.path / "report.html"

    def digest():
        files = sorted((quick_run.path / "figures").iterdir()) + [quick_run.report_path, html]
        return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}

    before = digest()
    for f in (quick_run.path / "figures").iterdir():
        f.unlink()
    html.unlink()  # figures, report.md and report.html all come back the same bytes
    result = CliRunner().invoke(app, ["report", str(quick_run.path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"html:   {html}"  # html first, as after a run
    assert digest() == before


def test_actlab_report_takes_a_run_directorys_path(quick_run, monkeypatch):
    """It had to be a Run: a path crashed ('str' object has no attribute 'manifest')."""
    import actlab
    from actlab.report import pipeline

    calls = []
    monkeypatch.setattr(
        pipeline, "build_report", lambda run, **kw: calls.append((run, kw)) or run.report_path
    )
    assert actlab.report(str(quick_run.path), html=False) == quick_run.report_path
    ((run, kw),) = calls
    assert run.path == quick_run.path and kw["html"] is False and run.config.seeds == 2


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
    from actlab.stats import versus_runner_up, with_holm

    better = paired_comparison([2.0, 3.1, 4.0, 5.2, 6.0, 7.0], [1.0, 2.0, 3.1, 4.0, 5.1, 6.0])
    assert versus_runner_up("ReLU", "GELU", better).startswith(
        "ReLU is better than GELU (paired sign-flip permutation test over 6 seeds, p = 0.031"
    )
    # the same comparison in a family of five is not significant after Holm's correction
    family = with_holm([better] + [paired_comparison([1.0, 2.0], [1.5, 1.0])] * 4)
    sentence = versus_runner_up("ReLU", "GELU", family[0], family="5 targets")
    assert sentence.startswith("ReLU and GELU are not separated by 6 seeds")
    assert "Holm-adjusted over 5 targets p = 0.16" in sentence
    tie = paired_comparison([1.0, 2.0, 1.5], [1.9, 1.2, 1.6])
    assert versus_runner_up("ReLU", "Tanh", tie, "+0.1 points").startswith(
        "ReLU and Tanh are not separated by 3 seeds (+0.1 points; paired sign-flip"
    )
    assert versus_runner_up("ReLU", "Tanh", paired_comparison([1.0], [2.0])) == (
        "the difference from Tanh cannot be tested (1 paired seed(s))"
    )


def test_critical_difference_cliques_are_the_maximal_unseparated_runs():
    from actlab.report.cd_diagram import cliques

    ranks = [1.0, 1.5, 2.4, 4.0, 4.2, 6.0]
    # CD 1.5: 1.0-2.4 and 4.0-4.2 cannot be told apart; 6.0 stands alone; 1.5-2.4 is
    # inside the first run, so it is not drawn again
    assert cliques(ranks, 1.5, separated=True) == [(0, 2), (3, 4)]
    assert cliques(ranks, 10.0, separated=True) == [(0, 5)]
    assert cliques(ranks, 0.1, separated=True) == []
    # Friedman found nothing: one bar joins everything, whatever the gaps
    assert cliques(ranks, 0.1, separated=False) == [(0, 5)]


def test_a_permutation_p_at_its_floor_is_written_as_a_bound():
    from actlab.stats import PERMUTATIONS, friedman_nemenyi, permutation_p_text

    # three blocks ranking eight activations identically: no shuffle comes close
    x = np.tile(np.arange(8.0), (3, 1))
    test = friedman_nemenyi(x, list("abcdefgh"), True)
    assert test.friedman_p == 1 / (1 + PERMUTATIONS)
    assert permutation_p_text(test.friedman_p) == "p < 0.0001"
    assert permutation_p_text(0.012) == "p = 0.012"


def test_a_part_built_early_is_kept_only_if_its_rows_are_the_final_ones():
    """A study's rows read mid-run must be the final rows: same positions and values and
    types, except a column still empty in both (another study's, not yet stored)."""
    from actlab.report.parts import same_rows

    final = pd.DataFrame(
        {"study": ["a", "a", "b"], "value": [1.0, 2.0, 3.0], "target": [None, None, "sin"]}
    )
    early = final.iloc[:2].copy()
    early["target"] = np.nan  # read before study b's rows existed: float, not text
    mine = final[final["study"] == "a"]
    assert same_rows(early, mine)
    changed = early.copy()
    changed.loc[1, "value"] = 2.5
    assert not same_rows(changed, mine)
    assert not same_rows(early.reset_index(drop=True).set_axis([5, 6]), mine)
    retyped = early.copy()
    retyped["value"] = retyped["value"].astype("float32")
    assert not same_rows(retyped, mine)


def test_the_report_opens_with_the_answers_each_linked_to_its_evidence(quick_run):
    """Issue 28: the user's question answered first (within the first 40 lines), one line
    per situation, with the property, its conditions and a link to a section that exists;
    the same advice as the Recommendations further down."""
    from actlab.report.parts import anchor

    text = quick_run.report_path.read_text()
    lines = text.splitlines()
    assert "## Answers" in lines[:40]
    body = text.split("\n## Answers\n", 1)[1].split("\n## ", 1)[0]
    answers = [line for line in body.splitlines() if line.startswith("- **For ")]
    recommendations = text.split("\n## Recommendations\n", 1)[1].split("\n## ", 1)[0]
    situations = [line for line in recommendations.splitlines() if line.startswith("- For ")]
    assert len(answers) == len(situations) >= 5
    headings = {anchor(line.lstrip("# ").strip()) for line in lines if line.startswith("## ")}
    for answer, situation in zip(answers, situations, strict=True):
        assert answer.split(":**")[0][len("- **For ") :] == situation.split(":")[0][len("- For ") :]
        target = answer.rsplit("([evidence](#", 1)[1].rstrip(")")
        assert target in headings, (answer, sorted(headings))
        assert " By " in answer and " under " in answer  # the property and its conditions
    assert "- [Answers](#answers)" in text


def test_the_python_api_is_discoverable(quick_run):
    """Issue 28: `dir(actlab)` hid run and load; no search, report or theory; no verdicts."""
    import actlab

    public = [n for n in dir(actlab) if not n.startswith("_")]
    assert {"run", "load", "Run", "report", "search", "theory", "get_activation"} <= set(public)
    assert set(public) == set(actlab.__all__) - {"__version__"}
    for name in ("run", "load", "report", "search"):
        assert getattr(actlab, name).__doc__, name
    assert "run.verdicts" in actlab.__doc__ and "actlab.search" in actlab.__doc__
    verdicts = actlab.load(quick_run.path).verdicts
    assert {"property", "activation", "group", "conditions"} <= set(verdicts.columns)
    # Importing a subpackage named like a function (actlab.report, actlab.search) sets the
    # package's attribute to the subpackage: it must still be callable as the function.
    import actlab.report.pipeline
    import actlab.search.run  # noqa: F401

    assert callable(actlab.report) and callable(actlab.search) and callable(actlab.diff)
    assert len(verdicts) == verdicts[["property", "activation"]].drop_duplicates().shape[0]
