"""Determinism across every study at once: the same config and seed give the same bits on a
rerun, under the local and the process-pool executor, and a trial's numbers depend only on
its own key, whatever subset of studies, activations or seeds is run and in whatever order.
(Per-study batching checks live beside each study; this is the whole pipeline.)"""

from __future__ import annotations

import pandas as pd
import pytest

import actlab
from actlab.store import RESULTS

# End to end: whole runs compared bit for bit: `make test-slow` (and CI) runs
# these; `make test` leaves them out.
pytestmark = pytest.mark.slow

ACTIVATIONS = ["ReLU", "Tanh", "x*sigmoid(x)"]
STUDIES = {
    "gradient_flow": {"depths": [2, 4], "width": 8, "n_samples": 8, "report_depth": 4},
    "sparsity": {"depth": 3, "width": 8, "n_samples": 20, "steps": 5},
    "stability": {
        "lrs": [0.01, 1.0],
        "lr_depth": 3,
        "lr_steps": 8,
        "depths": [2, 4],
        "depth_steps": 8,
        "width": 8,
        "n_points": 20,
    },
    "capacity": {
        "targets": ["sin", "step"],
        "depth": 2,
        "width": 8,
        "steps": 10,
        "n_train": 16,
        "n_test": 20,
        "n_extrap": 5,
    },
    "signal_propagation": {
        "width": 16,
        "depth": 3,
        "n_samples": 8,
        "xavier_width": 8,
        "xavier_depth": 3,
    },
}
KEY = ["trial", "metric", "layer", "step"]


def go(tmp_path, name, *, studies=tuple(STUDIES), activations=ACTIVATIONS, seeds=2, **extra):
    cfg = actlab.RunConfig(
        activations=list(activations),
        studies=list(studies),
        seeds=seeds,
        study_config={s: STUDIES[s] for s in studies},
        **extra,
    )
    return actlab.run(config=cfg, out=tmp_path / name, report=False)


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(KEY, kind="stable").reset_index(drop=True)


def assert_same(part: pd.DataFrame, whole: pd.DataFrame) -> None:
    """`part`'s trials have exactly `whole`'s numbers for them (every column, NaN = NaN)."""
    expected = whole[whole["trial"].isin(set(part["trial"]))]
    assert len(expected) == len(part)
    part, expected = canonical(part), canonical(expected)
    # Columns that only another study fills are absent or empty in a partial run.
    cols = [c for c in expected.columns if expected[c].notna().any()]
    pd.testing.assert_frame_equal(part[cols], expected[cols], check_exact=True, check_dtype=False)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return go(tmp_path_factory.mktemp("det"), "full", executor="local")


def test_rerun_is_bit_identical(full, tmp_path):
    again = go(tmp_path, "again", executor="local")
    assert (again.path / RESULTS).read_bytes() == (full.path / RESULTS).read_bytes()


def test_process_pool_and_other_batching_give_the_same_bits(full, tmp_path):
    pooled = go(tmp_path, "pool", executor="process", workers=2, max_members=3).results
    assert set(pooled["trial"]) == set(full.results["trial"])
    assert_same(pooled, full.results)


def test_a_trial_depends_only_on_its_key_not_on_what_else_runs(full, tmp_path):
    whole = full.results
    # Two studies, two activations in the other order, one seed (so the activations share
    # stacks instead of getting one each).
    part = go(
        tmp_path,
        "part",
        studies=("signal_propagation", "stability"),
        activations=["x*sigmoid(x)", "Tanh"],
        seeds=1,
        executor="local",
    ).results
    assert set(part["study"]) == {"signal_propagation", "stability"}
    assert set(part["activation"]) == {"x*sigmoid(x)", "Tanh"} and set(part["seed"]) == {0}
    assert_same(part, whole)
    # One activation alone, every trial a stack of its own seeds.
    alone = go(tmp_path, "alone", studies=("capacity", "sparsity"), activations=["ReLU"]).results
    assert_same(alone, whole)


def test_the_run_seed_matters(full, tmp_path):
    """The check above is not vacuous: another run seed gives other numbers."""
    other = go(tmp_path, "other", studies=("gradient_flow",), seed=1, executor="local").results
    mine = full.results[full.results["study"] == "gradient_flow"]
    a = canonical(mine)["value"].to_numpy()
    b = canonical(other)["value"].to_numpy()
    assert len(a) == len(b) and (a != b).any()


def test_report_built_beside_the_compute_equals_a_rebuild(tmp_path):
    """With the process pool, a study's report part (summary, verdicts, figures) is built
    while later studies still compute; the report, verdicts and figures are byte for byte
    the ones `actlab report` builds afterwards from the stored results, in one process."""
    import json

    from actlab.report.pipeline import build_report

    run = actlab.run(
        config=actlab.RunConfig(
            activations=ACTIVATIONS[:2],
            studies=["gradient_flow", "sparsity", "capacity"],
            seeds=2,
            study_config={s: STUDIES[s] for s in ("gradient_flow", "sparsity", "capacity")},
            executor="process",
            workers=2,
        ),
        out=tmp_path / "run",
    )
    timings = json.loads((run.path / "timings.json").read_text())
    assert timings["report_parts_built_during_compute"]  # the overlap did happen
    assert set(timings["study_seconds"]) == {"gradient_flow", "sparsity", "capacity"}
    assert timings["phases"]["report"] > 0 and timings["phases"]["compute"] > 0
    files = ["report.md", "report.html", "verdicts.csv"]
    files += [f"figures/{p.name}" for p in (run.path / "figures").glob("*.png")]
    assert "figures/summary.png" in files and "figures/capacity_heatmap.png" in files
    during = {name: (run.path / name).read_bytes() for name in files}
    build_report(actlab.load(run.path))
    assert {name: (run.path / name).read_bytes() for name in files} == during


def test_quick_preset_numbers_do_not_depend_on_the_report_or_the_executor(tmp_path):
    """The report built beside the compute (process pool, one report worker) leaves every
    number as a plain in-process run without report stores it: the same rows, bit for bit."""
    pooled = actlab.run("quick", out=tmp_path / "pooled", executor="process", workers=2)
    plain = actlab.run("quick", out=tmp_path / "plain", executor="local", report=False)
    assert (pooled.path / "report.md").exists() and not (plain.path / "report.md").exists()

    def rows(run) -> list[bytes]:  # the stored lines, in a canonical order
        header, *lines = (run.path / RESULTS).read_bytes().splitlines()
        return [header, *sorted(lines)]

    assert rows(pooled) == rows(plain)
    assert (pooled.path / "verdicts.csv").read_bytes() == (plain.path / "verdicts.csv").read_bytes()


def test_progress_says_when_the_report_is_written_and_timings_are_kept(tmp_path):
    """The progress callback hears every stored batch, then once "writing the report"
    (the terminal shows it instead of a silent full bar); timings.json says where the
    time went."""
    import json

    calls = []
    run = actlab.run(
        config=actlab.RunConfig(
            activations=ACTIVATIONS[:2],
            studies=["gradient_flow"],
            seeds=2,
            study_config={"gradient_flow": STUDIES["gradient_flow"]},
            executor="local",
        ),
        out=tmp_path / "run",
        progress=lambda done, total, what: calls.append((done, total, what)),
    )
    total = calls[0][1]
    assert calls[-1] == (total, total, "writing the report")
    assert [what for _, _, what in calls[:-1]] == ["gradient_flow"] * (len(calls) - 1)
    timings = json.loads((run.path / "timings.json").read_text())
    assert {"plan", "compute", "store", "report"} <= set(timings["phases"])
    assert timings["study_seconds"]["gradient_flow"] > 0
    assert timings["report"]["markdown"] > 0 and timings["report"]["html"] > 0
