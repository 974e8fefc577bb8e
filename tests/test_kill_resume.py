"""Kill and resume, for real: `actlab run` as a subprocess, killed with SIGKILL at random
points (anywhere, between batches, in the middle of a commit, while the report is drawn) and
resumed each time, ends with the uninterrupted run's results byte for byte; the store is
readable after every kill. Ctrl-C (SIGINT to the whole process group, as a terminal sends
it) stops cleanly with the local and with the process-pool executor.

Timing comes from the test-only hooks ACTLAB_TEST_BATCH_DELAY (runner: sleep after a batch
is computed, before it is committed) and ACTLAB_TEST_COMMIT_DELAY (store: sleep inside a
commit, after the rows, before the progress line); kill times are drawn from a seeded RNG
and the kill conditions are read from the run directory, so every phase is hit every time.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from actlab.runner import load, run
from actlab.store import MANIFEST, PROGRESS, RESULTS

# End to end: runs killed and resumed in subprocesses: `make test-slow` (and CI) runs
# these; `make test` leaves them out.
pytestmark = pytest.mark.slow

ACTLAB = Path(sys.executable).parent / "actlab"

# 2 activations x 2 seeds: gradient_flow 2 depths (8 trials), stability 2 lrs + 2 depths (16
# trials); one activation per batch and at most 2 members each: 12 batches of 2.
CONFIG = """\
seeds = 2
activations = ["ReLU", "x*tanh(softplus(x))"]
studies = ["gradient_flow", "stability"]
max_members = 2

[gradient_flow]
depths = [2, 3]
width = 8
n_samples = 8
report_depth = 3

[stability]
lrs = [0.01, 1.0]
lr_depth = 3
lr_steps = 10
depths = [2, 4]
depth_steps = 10
width = 8
n_points = 30
"""
N_TRIALS = 24
N_BATCHES = 12
SORT = ["trial", "metric", "layer", "step"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kill")
    (root / "cfg.toml").write_text(CONFIG)
    return root


@pytest.fixture(scope="module")
def reference(workdir, tmp_path_factory) -> Path:
    """The uninterrupted run (in this process, local executor)."""
    out = tmp_path_factory.mktemp("kill-ref") / "run"
    run(config=workdir / "cfg.toml", out=out, report=False, executor="local")
    assert len((out / PROGRESS).read_text().splitlines()) == N_BATCHES
    return out


@pytest.fixture(scope="module")
def reference_results(reference) -> pd.DataFrame:
    df = load(reference).results
    assert df["trial"].nunique() == N_TRIALS
    return df


# -- helpers ----------------------------------------------------------------------------------


def start(cwd: Path, args: list[str], **delays: float) -> subprocess.Popen:
    env = dict(os.environ)
    env.update({f"ACTLAB_TEST_{k.upper()}_DELAY": str(v) for k, v in delays.items()})
    return subprocess.Popen(
        [str(ACTLAB), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a job in a terminal
    )


def committed(run_dir: Path) -> list[dict]:
    """The complete progress lines (a torn last line is not a commit)."""
    path = run_dir / PROGRESS
    if not path.is_file():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def csv_size(run_dir: Path) -> int:
    path = run_dir / RESULTS
    return path.stat().st_size if path.is_file() else 0


def status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / MANIFEST).read_text())["status"]
    except (OSError, ValueError):
        return None


def wait_for(proc: subprocess.Popen, condition: Callable[[], bool], what: str, limit=60.0):
    deadline = time.monotonic() + limit
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"run ended (status {proc.returncode}) before {what}: {err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def assert_group_gone(pgid: int) -> None:
    """No process of the run (workers, forkserver) outlives it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"processes of group {pgid} are still running")


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(SORT, kind="stable").reset_index(drop=True)


def assert_store_readable_and_consistent(run_dir: Path, reference_results: pd.DataFrame) -> set:
    """The store as a kill left it: readable without repair, every committed trial exactly
    the reference's rows, no trial committed twice. Returns the committed trial keys."""
    entries = committed(run_dir)
    keys = [k for e in entries for k in e["trials"]]
    assert len(keys) == len(set(keys)), "a trial was committed twice"
    results = load(run_dir).results
    assert set(results["trial"]) == set(keys)
    expected = reference_results[reference_results["trial"].isin(keys)]
    # A partial table may type a column that is empty for some studies differently.
    pd.testing.assert_frame_equal(
        canonical(results), canonical(expected), check_exact=True, check_dtype=False
    )
    return set(keys)


# -- SIGKILL ----------------------------------------------------------------------------------


def test_sigkill_anywhere_then_resume_gives_the_uninterrupted_results(
    workdir, reference, reference_results
):
    rng = random.Random(20261128)
    run_dir = workdir / "run"
    fresh = ["run", "--config", "cfg.toml", "--out", "run", "--executor", "local"]
    resume = ["run", "--resume", "run", "--executor", "local"]
    delays = {"batch": 0.06, "commit": 0.04}  # >= 0.1 s a batch, whatever the machine
    seen = []

    def next_command() -> list[str]:
        # What a user does: resume a run that has a manifest, else start it again.
        return resume if (run_dir / MANIFEST).is_file() else fresh

    # 1. Anywhere: a random moment after start (import, planning, creation or batches).
    proc = start(workdir, next_command(), **delays)
    time.sleep(rng.uniform(0.1, 1.2))
    kill(proc)
    seen.append(("anywhere", len(committed(run_dir)), run_dir.exists()))
    if (run_dir / MANIFEST).is_file():
        assert_store_readable_and_consistent(run_dir, reference_results)

    # 2.-3. During training (computed, uncommitted) and in the middle of a commit.
    for phase in ("training", "commit"):
        before = len(committed(run_dir))
        proc = start(workdir, next_command(), **delays)
        if phase == "training":
            target = before + rng.randint(1, 2)
            wait_for(
                proc,
                lambda t=target: (
                    len(committed(run_dir)) >= t
                    and csv_size(run_dir) == committed(run_dir)[-1]["csv_bytes"]
                ),
                f"{target} committed batches",
            )
            time.sleep(rng.uniform(0.0, delays["batch"]))
        else:
            wait_for(
                proc,
                lambda b=before: (
                    len(committed(run_dir)) > b
                    and csv_size(run_dir) > committed(run_dir)[-1]["csv_bytes"]
                ),
                "a batch's rows written but not yet committed",
            )
        kill(proc)
        entries = committed(run_dir)
        if phase == "commit":
            torn = csv_size(run_dir) - entries[-1]["csv_bytes"]
            assert torn > 0, "the kill was meant to leave uncommitted rows"
        seen.append((phase, len(entries)))
        keys = assert_store_readable_and_consistent(run_dir, reference_results)
        assert status(run_dir) == "running"  # a killed run cannot say more
        assert len(keys) < N_TRIALS

    # 4. While the report is drawn: every trial stored, figures half written.
    proc = start(workdir, next_command(), **delays)
    wait_for(
        proc,
        lambda: status(run_dir) == "complete" and not (run_dir / "report.md").exists(),
        "the report phase",
    )
    time.sleep(rng.uniform(0.0, 0.2))  # drawing takes seconds
    kill(proc)
    seen.append(("report", len(committed(run_dir))))
    assert assert_store_readable_and_consistent(run_dir, reference_results) == set(
        reference_results["trial"]
    )

    # Resume to the end: the report is rebuilt, and nothing was lost or duplicated.
    proc = start(workdir, next_command())
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    # stderr holds only actlab's own progress lines (not a terminal: plain lines), no error
    assert all(line.startswith("actlab: ") for line in err.splitlines()), err
    assert "error" not in err and "Traceback" not in err
    assert "report:" in out and (run_dir / "report.md").is_file()
    assert status(run_dir) == "complete"
    assert (run_dir / RESULTS).read_bytes() == (reference / RESULTS).read_bytes(), seen
    assert [e["trials"] for e in committed(run_dir)] == [e["trials"] for e in committed(reference)]
    pd.testing.assert_frame_equal(
        canonical(load(run_dir).results), canonical(reference_results), check_exact=True
    )
    assert sorted(p.name for p in workdir.iterdir()) == ["cfg.toml", "run"]  # nothing else


# -- SIGINT (Ctrl-C) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "executor, where",
    [
        # Local: Ctrl-C lands inside a commit, which is finished first (never torn).
        ("local", "commit"),
        # Process pool: the workers get Ctrl-C too; they ignore it and the parent stops them.
        ("process", "batches"),
    ],
)
def test_ctrl_c_stops_cleanly_keeps_what_finished_and_says_how_to_resume(
    executor, where, tmp_path, reference_results
):
    (tmp_path / "cfg.toml").write_text(CONFIG)
    args = ["run", "--config", "cfg.toml", "--out", "run", "--no-report", "--executor", executor]
    run_dir = tmp_path / "run"
    if where == "commit":
        proc = start(tmp_path, args, commit=0.5)
        wait_for(
            proc,
            lambda: (
                len(committed(run_dir)) >= 1
                and csv_size(run_dir) > committed(run_dir)[-1]["csv_bytes"]
            ),
            "a commit in progress",
        )
    else:
        proc = start(tmp_path, [*args, "--workers", "2"], batch=0.1)
        wait_for(proc, lambda: len(committed(run_dir)) >= 2, "two committed batches")
    before = len(committed(run_dir))

    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, err
    assert out == ""
    entries = committed(run_dir)
    if where == "commit":
        assert len(entries) == before + 1  # the batch being written was committed
    saved = sum(len(e["trials"]) for e in entries)
    assert 0 < saved < N_TRIALS
    lines = err.splitlines()
    assert lines[0].startswith(f"actlab: run directory run; {N_TRIALS} trials to run ("), err
    assert lines[-1] == (
        f"actlab: interrupted; {saved} of {N_TRIALS} trials saved; "
        "continue with: actlab run --resume run"
    )
    assert all(line.startswith("actlab: ") for line in lines) and err.endswith("\n")
    assert_group_gone(proc.pid)
    assert status(run_dir) == "interrupted"
    assert csv_size(run_dir) == entries[-1]["csv_bytes"]  # no torn tail: a clean stop
    assert_store_readable_and_consistent(run_dir, reference_results)

    resumed = run(resume=run_dir, report=False)

    assert resumed.manifest["status"] == "complete"
    assert len(committed(run_dir)) == N_BATCHES
    pd.testing.assert_frame_equal(
        canonical(resumed.results), canonical(reference_results), check_exact=True
    )


@pytest.mark.parametrize(
    "leftovers", [(), (RESULTS,), (RESULTS, PROGRESS), (RESULTS, PROGRESS, MANIFEST + ".tmp")]
)
def test_a_run_killed_before_its_manifest_is_started_again_by_the_same_command(
    workdir, tmp_path, reference_results, leftovers
):
    """Creation writes the manifest last; what a kill before it leaves is no run yet."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in leftovers:
        (run_dir / name).write_text("study,tri")  # torn, as a kill leaves it

    again = run(config=workdir / "cfg.toml", out=run_dir, report=False, executor="local")

    pd.testing.assert_frame_equal(
        canonical(again.results), canonical(reference_results), check_exact=True
    )
    assert not (run_dir / (MANIFEST + ".tmp")).exists()
