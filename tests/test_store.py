"""The run directory's durability contract: the progress log is the commit record, a torn or
uncommitted tail is dropped on open, and a resumed run computes exactly the unfinished
trials, giving the same table as an uninterrupted run."""

from __future__ import annotations

import json
import math
import platform
import re
import shutil
from datetime import datetime
from pathlib import Path

import numpy
import pandas as pd
import pytest
import torch

import actlab
from actlab.config import build_config, load_config
from actlab.errors import UserError
from actlab.runner import load, run
from actlab.store import MANIFEST, PROGRESS, RESULTS, RunStore, read_manifest, read_results

# 3 activations x 2 depths x 2 seeds = 12 trials; max_members = 2 gives 6 batches of 2.
TINY = """\
seeds = 2
activations = ["ReLU", "Tanh", "GELU"]
studies = ["gradient_flow"]
max_members = 2

[gradient_flow]
depths = [2, 3]
width = 8
n_samples = 8
report_depth = 3
"""
N_TRIALS = 12
N_BATCHES = 6
SORT_KEYS = ["trial", "metric", "layer"]


# -- helpers --------------------------------------------------------------------------------


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(SORT_KEYS, kind="stable").reset_index(drop=True)


def assert_same_results(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Every column identical, values compared exactly (NaN equals NaN), and each trial
    present with the same number of rows (none lost, none duplicated)."""
    assert list(actual.columns) == list(expected.columns)
    a_counts = actual["trial"].value_counts().sort_index()
    e_counts = expected["trial"].value_counts().sort_index()
    pd.testing.assert_series_equal(a_counts, e_counts)
    pd.testing.assert_frame_equal(canonical(actual), canonical(expected), check_exact=True)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every directory (as None) under root."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def progress_entries(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / PROGRESS).read_text().splitlines()]


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_config) -> Path:
    """An uninterrupted run, made once; tests work on copies of it."""
    out = tmp_path_factory.mktemp("ref") / "run"
    run(config=tiny_config, out=out, report=False)
    return out


@pytest.fixture(scope="module")
def reference_results(reference) -> pd.DataFrame:
    df = load(reference).results
    # Sanity: the reference itself is what the config asks for.
    assert df["trial"].nunique() == N_TRIALS
    assert len(progress_entries(reference)) == N_BATCHES
    return df


@pytest.fixture
def ref_copy(reference, tmp_path) -> Path:
    return copy_run(reference, tmp_path / "run")


# -- resume after an interruption ---------------------------------------------------------


def test_resume_after_interrupt_gives_the_uninterrupted_results(
    tiny_config, tmp_path, reference_results
):
    out = tmp_path / "interrupted"
    calls = []

    def stop_after_two_batches(done, total, study):
        calls.append((done, total, study))
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(config=tiny_config, out=out, report=False, progress=stop_after_two_batches)

    assert calls == [(2, N_TRIALS, "gradient_flow"), (4, N_TRIALS, "gradient_flow")]
    manifest = read_manifest(out)
    assert manifest["status"] == "interrupted"
    assert manifest["finished"] is None
    lines = (out / PROGRESS).read_text().splitlines()
    assert len(lines) == 2
    committed = {k for line in lines for k in json.loads(line)["trials"]}
    assert len(committed) == 4
    assert read_results(out)["trial"].nunique() == 4

    resumed_calls = []
    resumed = run(resume=out, report=False, progress=lambda d, t, s: resumed_calls.append((d, t)))

    # Only the 8 unfinished trials were computed, in 4 batches.
    assert resumed_calls == [(2, 8), (4, 8), (6, 8), (8, 8)]
    assert resumed.manifest["status"] == "complete"
    assert len(progress_entries(out)) == N_BATCHES
    assert_same_results(load(out).results, reference_results)


# -- torn writes ----------------------------------------------------------------------------


def test_open_truncates_a_torn_csv_row(ref_copy, reference_results):
    results = ref_copy / RESULTS
    before = snapshot(ref_copy)
    with open(results, "ab") as f:
        f.write(b"gradient_flow,gradient_flow/activation=ReLU/depth=2/wid")  # no newline

    store = RunStore.open(ref_copy)

    assert snapshot(ref_copy) == before
    assert store.done == {k for e in progress_entries(ref_copy) for k in e["trials"]}
    assert len(store.done) == N_TRIALS
    assert_same_results(read_results(ref_copy), reference_results)


def test_open_drops_uncommitted_rows_and_a_torn_progress_line(ref_copy, reference_results):
    results, progress = ref_copy / RESULTS, ref_copy / PROGRESS
    before = snapshot(ref_copy)
    data_lines = results.read_bytes().splitlines(keepends=True)
    extra_rows = b"".join(data_lines[-3:])  # three complete rows of a "new" batch
    assert extra_rows.endswith(b"\n")
    with open(results, "ab") as f:
        f.write(extra_rows)
    torn = json.dumps(
        {
            "csv_bytes": results.stat().st_size,
            "rows": 3,
            "trials": ["gradient_flow/activation=GELU/depth=3/x"],
        }
    )[:40]
    with open(progress, "a") as f:
        f.write(torn)  # no trailing newline: the commit never finished

    store = RunStore.open(ref_copy)

    assert snapshot(ref_copy) == before  # both files back to their committed bytes
    assert store.done == {k for e in progress_entries(ref_copy) for k in e["trials"]}
    assert len(store.done) == N_TRIALS
    assert_same_results(read_results(ref_copy), reference_results)


def test_read_results_ignores_uncommitted_rows_without_open(ref_copy, reference_results):
    results, progress = ref_copy / RESULTS, ref_copy / PROGRESS
    data_lines = results.read_bytes().splitlines(keepends=True)
    with open(results, "ab") as f:
        f.write(b"".join(data_lines[1:5]))  # duplicates of committed rows, uncommitted
        f.write(b"gradient_flow,torn")
    with open(progress, "a") as f:
        f.write('{"csv_bytes": 1, "rows"')
    damaged = snapshot(ref_copy)

    assert_same_results(read_results(ref_copy), reference_results)
    assert_same_results(load(ref_copy).results, reference_results)
    assert snapshot(ref_copy) == damaged  # reading repairs nothing and writes nothing


@pytest.mark.parametrize("written", ["all-rows", "some-rows", "torn-row"])
def test_a_batch_without_its_progress_line_is_discarded_and_recomputed(
    ref_copy, reference_results, written
):
    """A crash after a batch's rows reached results.csv but before its progress line did."""
    results, progress = ref_copy / RESULTS, ref_copy / PROGRESS
    entries = progress_entries(ref_copy)
    last, kept = entries[-1], entries[:-1]
    committed_bytes = kept[-1]["csv_bytes"]
    full = results.read_bytes()
    assert len(full) == last["csv_bytes"]
    batch_rows = full[committed_bytes:].splitlines(keepends=True)
    cut = {"all-rows": len(batch_rows), "some-rows": len(batch_rows) // 2}.get(written)
    tail = b"".join(batch_rows[:cut]) if cut is not None else batch_rows[0][:30]
    results.write_bytes(full[:committed_bytes] + tail)
    progress.write_text("".join(json.dumps(e) + "\n" for e in kept))

    store = RunStore.open(ref_copy)

    assert results.stat().st_size == committed_bytes
    assert store.done == {k for e in kept for k in e["trials"]}
    assert not store.done & set(last["trials"])
    partial = read_results(ref_copy)
    assert set(partial["trial"]) == store.done
    assert_same_results(
        partial, reference_results[~reference_results["trial"].isin(last["trials"])]
    )

    calls = []
    run(resume=ref_copy, report=False, progress=lambda d, t, s: calls.append((d, t, s)))

    assert calls == [(len(last["trials"]), len(last["trials"]), "gradient_flow")]
    assert progress_entries(ref_copy)[-1]["trials"] == last["trials"]
    assert_same_results(load(ref_copy).results, reference_results)


def test_interrupted_in_the_first_batch_keeps_only_the_header(ref_copy, reference_results):
    results, progress = ref_copy / RESULTS, ref_copy / PROGRESS
    header = results.read_bytes().splitlines(keepends=True)[0]
    first_rows = results.read_bytes()[len(header) : progress_entries(ref_copy)[0]["csv_bytes"]]
    results.write_bytes(header + first_rows[:-7])  # the first batch, torn
    progress.write_text("")

    store = RunStore.open(ref_copy)

    assert results.read_bytes() == header
    assert store.done == set()
    empty = read_results(ref_copy)
    assert empty.empty
    assert list(empty.columns) == list(reference_results.columns)

    calls = []
    run(resume=ref_copy, report=False, progress=lambda d, t, s: calls.append(d))
    assert calls == [2, 4, 6, 8, 10, 12]
    assert_same_results(load(ref_copy).results, reference_results)


# -- resume decisions -----------------------------------------------------------------------


def test_resuming_a_complete_run_does_no_work(ref_copy, reference_results):
    before = snapshot(ref_copy)
    calls = []

    resumed = run(resume=ref_copy, report=False, progress=lambda *a: calls.append(a))

    assert calls == []
    assert resumed.manifest["status"] == "complete"
    after = snapshot(ref_copy)
    for name in (RESULTS, PROGRESS):
        assert after[name] == before[name]
    assert_same_results(resumed.results, reference_results)


def test_resume_with_a_different_config_is_refused_and_changes_nothing(ref_copy):
    before = snapshot(ref_copy)

    with pytest.raises(UserError, match="different config"):
        run(resume=ref_copy, report=False, seeds=3)

    assert snapshot(ref_copy) == before


def test_refused_resume_does_not_touch_a_run_that_needs_recovery(ref_copy):
    """A resume refused for its config must not first 'recover' (truncate/rewrite) the run:
    a refused command leaves every file byte-identical."""
    with open(ref_copy / RESULTS, "ab") as f:
        f.write(b"gradient_flow,torn-row")
    with open(ref_copy / PROGRESS, "a") as f:
        f.write('{"csv_bytes": 12')
    before = snapshot(ref_copy)

    with pytest.raises(UserError, match="different config"):
        run(resume=ref_copy, report=False, seeds=3)

    assert snapshot(ref_copy) == before


# -- the manifest ---------------------------------------------------------------------------


def test_manifest_records_the_resolved_config_environment_and_times(
    reference, tiny_config, reference_results
):
    manifest = json.loads((reference / MANIFEST).read_text())

    assert manifest["status"] == "complete"
    assert manifest["format"] == 1

    # The config hash is a stable function of the resolved config.
    assert re.fullmatch(r"[0-9a-f]{16}", manifest["config_hash"])
    assert manifest["config_hash"] == build_config(manifest["config"]).hash()
    assert manifest["config_hash"] == load_config(config_file=tiny_config).hash()

    # The resolved config: what the file said, plus every default filled in.
    config = manifest["config"]
    assert config["seeds"] == 2
    assert config["seed"] == 0
    assert config["activations"] == ["ReLU", "Tanh", "GELU"]
    assert config["studies"] == ["gradient_flow"]
    assert config["device"] == "cpu" and config["dtype"] == "float32"
    assert config["max_members"] == 2
    gf = config["study_config"]["gradient_flow"]
    assert gf["depths"] == [2, 3] and gf["width"] == 8 and gf["n_samples"] == 8
    assert gf["init"] == "xavier_uniform"
    assert gf["in_dim"] == 1
    assert math.isclose(gf["vanish_threshold"], 1e-8)
    assert gf["report_depth"] == 3
    assert load(reference).config.hash() == manifest["config_hash"]

    env = manifest["environment"]
    assert env["torch"] == torch.__version__
    assert env["numpy"] == numpy.__version__
    assert env["python"] == platform.python_version()
    assert env["actlab"] == actlab.__version__
    assert env["device"] == "cpu"

    started = datetime.fromisoformat(manifest["started"])
    finished = datetime.fromisoformat(manifest["finished"])
    assert started.tzinfo is not None and finished.tzinfo is not None
    assert started <= finished

    header = (reference / RESULTS).read_text().splitlines()[0].split(",")
    assert manifest["columns"] == header == list(reference_results.columns)


def test_without_pyarrow_the_manifest_says_why_results_parquet_is_missing(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow":
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    store = RunStore.create(tmp_path / "run", {"seeds": 1}, "hash", ["trial", "value"], "cpu")
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    assert store.write_parquet(pd.DataFrame({"trial": [], "value": []})) is None
    assert not (tmp_path / "run" / "results.parquet").exists()
    assert "pyarrow is not installed" in read_manifest(tmp_path / "run")["parquet"]
