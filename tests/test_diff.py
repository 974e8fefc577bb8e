"""`actlab diff RUN_A RUN_B` and `actlab.diff` (issue 28): what changed between two runs.

The comparisons are pure functions, tested on hand-made verdict tables; one CLI test
diffs two tiny runs, and bad input is refused in one line with exit status 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

import actlab
from actlab.cli import app
from actlab.diff import (
    Diff,
    activation_changes,
    answer_changes,
    answers_of,
    claim_changes,
    settings_changes,
    verdict_changes,
)
from actlab.report.verdicts import verdicts_frame
from actlab.studies.base import PropertySpec

SPECS = {
    "depth robustness": PropertySpec(
        "depth robustness", "share of depths learned", "higher", situation="a deep network"
    )
}


def verdicts(groups: dict[str, tuple[float, str, float]], prop="depth robustness"):
    """A property's verdict rows from {activation: (mean rank, group, mean)}, separated
    (Friedman found a difference, CD 1.5) whenever some group is best/middle/worst."""
    rows = [
        {
            "property": prop,
            "activation": act,
            "better": "higher",
            "n_seeds": 6,
            "n_blocks": 6,
            "blocks": "6 seeds",
            "mean": mean,
            "mean_rank": rank,
            "group": group,
            "test": "Friedman p = 0.001 (differences found) over 6 seeds",
            "friedman_p": 0.001,
            "critical_difference": 1.5,
            "nemenyi_p_vs_best": 0.5 if group == "best" else 0.001,
            "nemenyi_p_vs_worst": 0.001,
            "nemenyi_p_vs_next": 0.001,
            "smallest_p": 0.0001,
            "seeds_to_separate": 3,
            "outcomes": "learned 6",
            "zeros_floored": 0,
            "regime": "",
            "regime_failures": 0,
            "regime_runs": 0,
            "conditions": "Adam",
            "all_failed": "",
            "failed_where_others_did_not": "",
        }
        for act, (rank, group, mean) in groups.items()
    ]
    return verdicts_frame(rows)


A = verdicts(
    {"ReLU": (1.0, "best", 0.9), "GELU": (2.0, "middle", 0.8), "Tanh": (3.5, "worst", 0.1)}
)
# B: GELU joins ReLU at the top (mean rank within the CD), Tanh's mean barely moves
B = verdicts(
    {"ReLU": (1.2, "best", 0.9), "GELU": (1.8, "best", 0.6), "Tanh": (3.5, "worst", 0.1001)}
)


def test_a_flipped_recommendation_shows():
    changes = answer_changes(answers_of(A, SPECS), answers_of(B, SPECS))
    assert changes[0] == "for a deep network (by depth robustness):"
    assert "  recommended: ReLU in A, ReLU, GELU in B" in changes
    assert "  best group: ReLU in A, ReLU, GELU in B" in changes
    assert not any(line.lstrip().startswith("avoid") for line in changes)  # Tanh both times


def test_verdict_changes_respect_the_tolerances():
    lines = verdict_changes(A, B, rank_tol=0.25, score_tol=0.05)
    assert lines[0] == "depth robustness (higher is better):"
    gelu = next(line for line in lines if line.strip().startswith("GELU"))
    assert "group middle -> best" in gelu and "mean 0.8 -> 0.6 (-25%, worse)" in gelu
    assert not any("ReLU" in line for line in lines)  # rank 1 -> 1.2, within 0.25
    assert not any("Tanh" in line for line in lines)  # mean +0.1%, within 5%
    assert any("ReLU" in line for line in verdict_changes(A, B, rank_tol=0.1))


def test_runs_of_other_activations_compare_means_not_ranks():
    c = verdicts({"ReLU": (2.5, "middle", 0.5), "Swish": (1.0, "best", 0.9)})
    lines = verdict_changes(A, c, ranks=False)
    assert lines == [
        "depth robustness (higher is better):",
        "  ReLU: mean 0.9 -> 0.5 (-44%, worse)",
    ]
    assert any("mean rank 1 -> 2.5" in line for line in verdict_changes(A, c))


def test_a_changed_setting_shows():
    before = {"seeds": 2, "study_config": {"sparsity": {"width": 32, "depth": 5}}}
    after = {"seeds": 3, "study_config": {"sparsity": {"width": 16, "depth": 5}}}
    assert settings_changes(before, after) == [
        "seeds: 2 in A, 3 in B",
        "[sparsity] width: 32 in A, 16 in B",
    ]


def test_activations_and_claims_in_one_run_only():
    c = verdicts({"ReLU": (1.0, "best", 0.9), "Swish": (2.0, "worst", 0.5)})
    assert activation_changes(A, c) == (["GELU", "Tanh"], ["Swish"])
    ca = pd.DataFrame({"claim": ["x", "y"], "verdict": ["supported", "not separated"]})
    cb = pd.DataFrame({"claim": ["x", "z"], "verdict": ["contradicted", "untested"]})
    assert claim_changes(ca, cb) == [
        "x supported in A, contradicted in B",
        "y judged in A only (not separated)",
        "z judged in B only (untested)",
    ]


def test_identical_inputs_give_no_differences():
    claims = pd.DataFrame({"claim": ["x"], "verdict": ["supported"]})
    d = Diff(
        "a",
        "b",
        settings=settings_changes({"seeds": 2}, {"seeds": 2}),
        answers=answer_changes(answers_of(A, SPECS), answers_of(A, SPECS)),
        verdicts=verdict_changes(A, A),
        claims=claim_changes(claims, claims),
    )
    assert d.same and d.text() == "no differences"
    assert not Diff("a", "b", verdicts=verdict_changes(A, B)).same


TINY = {"sparsity": {"depth": 3, "width": 8, "n_samples": 20, "steps": 5}}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("diff")

    def tiny(name, seeds):
        config = actlab.RunConfig(
            activations=["ReLU", "Tanh", "GELU"],
            studies=["sparsity"],
            seeds=seeds,
            study_config=TINY,
        )
        return actlab.run(config=config, out=root / name, report=False, executor="local")

    return tiny("a", 2), tiny("b", 3)


def test_the_command_diffs_two_runs(two_runs):
    a, b = two_runs
    result = CliRunner().invoke(app, ["diff", str(a.path), str(b.path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"A: {a.path} (custom config, 2 seeds, 3 activations")
    assert "Settings that differ:" in lines and "  seeds: 2 in A, 3 in B" in lines
    assert "Activations: the same in both" in lines
    assert any(line.startswith("Claims whose outcome changed") for line in lines)
    # runs made with --no-report have no claims.csv: their claims are computed
    assert not (a.path / "claims.csv").exists()
    same = CliRunner().invoke(app, ["diff", str(a.path), str(a.path)])
    assert same.exit_code == 0 and same.output.splitlines()[-1] == "no differences"
    assert actlab.diff(a, a).same  # the Python door, even once actlab.diff is imported


def test_bad_input_is_one_line_and_status_2(two_runs, tmp_path):
    a, _ = two_runs
    search = tmp_path / "search"
    search.mkdir()
    (search / "search.json").write_text(json.dumps({}))
    for other, words in (
        (tmp_path, "not an actlab run directory"),
        (tmp_path / "missing", "does not exist"),
        (search, "is a search directory"),
    ):
        result = CliRunner().invoke(app, ["diff", str(other), str(a.path)])
        assert result.exit_code == 2
        assert result.output.count("\n") == 1 and words in result.output, result.output
        assert result.output.startswith("actlab: error:")
