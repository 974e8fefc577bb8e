"""Progress within a batch: the training loop's step reports reach the command line's
progress (the bar's fraction and the ETA move between stored batches), from the local
executor and from the process pool, and change no number."""

from __future__ import annotations

from pathlib import Path

import pytest

import actlab
from actlab import executors
from actlab import progress as progress_module
from actlab.runner import RunStart

# One stability batch of 4 networks (2 activations x 2 seeds) that trains a few hundred
# steps: well under a second, long enough for several step reports at the patched cadence.
TINY = {
    "studies": ["stability"],
    "activations": ["ReLU", "Tanh"],
    "seeds": 2,
    "study_config": {
        "stability": {
            "parts": ["depth"],
            "depths": [3],
            "depth_steps": 400,
            "width": 8,
            "n_points": 16,
            "until": "steps",
        }
    },
}


def test_progress_advances_on_step_reports_within_a_batch(monkeypatch, capsys):
    """One study of 4 trials in two batches. With nothing stored, half of the first batch
    trained (one trial's worth) is a quarter of the work; 10 s in, 30 s are left. Once the
    first batch is stored and the second is half trained: three quarters."""
    now = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(progress_module, "TRIAL_OVERHEAD", 0.0)
    progress = progress_module.Progress()
    progress.start(RunStart(Path("runs/x"), 4, 0, False, {"a": (4, 4e10)}))
    assert progress.eta() != "unknown"  # from the plan until work is measured
    now[0] = 110.0
    progress.steps({"a": 1.0})
    assert progress.fraction() == pytest.approx(0.25)
    assert progress.eta() == "0:30"
    assert progress.line() == (
        "actlab: 0/4 trials (0% of the trials, 25% of the planned work), 0:10 elapsed, eta 0:30"
    )
    now[0] = 115.0
    progress.steps({})  # the first batch leaves the flight; its update follows
    progress.update(2, 4, "a")
    assert progress.fraction() == pytest.approx(0.5)
    now[0] = 120.0
    progress.steps({"a": 1.0})
    assert progress.fraction() == pytest.approx(0.75)
    assert progress.eta() == "0:07"  # 20 s for three quarters: 6.7 s left
    progress.steps({"a": 5.0})  # never past the whole
    assert progress.fraction() == 1.0


def test_a_search_stage_takes_the_plan_without_a_line_of_its_own(capsys):
    progress = progress_module.Progress(announce=False)
    progress.start(RunStart(Path("rung-0"), 4, 0, False, {"mnist1d": (4, 4e10)}))
    assert progress.work_total and capsys.readouterr().err == ""


def run_tiny(tmp_path: Path, name: str, **kwargs):
    return actlab.run(None, out=tmp_path / name, report=False, **TINY, **kwargs)


@pytest.mark.parametrize("executor", ["local", "process"])
def test_a_run_reports_training_steps_between_stored_batches(tmp_path, monkeypatch, executor):
    monkeypatch.setattr(executors, "STEP_REPORT_SECONDS", 0.0)  # every step (the cadence's
    monkeypatch.setattr(executors, "POLL_SECONDS", 0.005)  # floor is tested above, not here)
    reports: list[dict[str, float]] = []
    stored: list[int] = []
    run = run_tiny(
        tmp_path,
        executor,
        executor=executor,
        workers=2,
        on_steps=lambda in_flight: reports.append(dict(in_flight)),
        progress=lambda done, total, what: stored.append(done),
    )
    assert run.manifest["status"] == "complete"
    within = [r["stability"] for r in reports if r]
    assert len(within) > len(stored)  # more reports than stored batches
    assert all(0 < w <= 4 for w in within)  # trials' worth, never past the batch's 4
    assert any(w < 4 for w in within)  # part of a batch
    assert reports[-1] == {}  # the last batch's work counts as stored, not in flight


def test_step_reports_change_no_number(tmp_path):
    """A run told its steps (through the process pool's shared memory) stores the numbers
    of a plain in-process run that is told nothing, bit for bit."""
    quiet = run_tiny(tmp_path, "quiet", executor="local").results
    told = run_tiny(
        tmp_path, "told", executor="process", workers=2, on_steps=lambda _: None
    ).results
    columns = ["trial", "metric", "step", "layer", "value"]
    a = quiet[columns].sort_values(columns[:4]).reset_index(drop=True)
    b = told[columns].sort_values(columns[:4]).reset_index(drop=True)
    assert a.equals(b)
