"""What the command line says while it works: its version, progress where stderr is a log
and where it is a terminal, a resume of a finished run, and what the manifest records of
the command and the code."""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actlab import cli
from actlab import progress as progress_module
from actlab.cli import app
from actlab.provenance import git_state
from actlab.runner import RunStart

ACTLAB = Path(sys.executable).parent / "actlab"  # the installed console script
ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(cli.__file__).resolve().parent

# 2 activations x depth 3 x 2 seeds: 4 trials, a few seconds with the report.
TINY = """\
seeds = 2
activations = ["ReLU", "Tanh"]
studies = ["gradient_flow"]

[gradient_flow]
depths = [3]
width = 8
n_samples = 8
report_depth = 3
"""

PROGRESS_LINE = re.compile(
    r"^actlab: (\d+)/4 trials \((\d+)%[^)]*\), \d+:\d\d elapsed, eta (\d+:\d\d|unknown)$"
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


# -- --version ------------------------------------------------------------------------------


def test_version_is_the_installed_packages():
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"actlab {version('actlab')}\n"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert version("actlab") == pyproject["project"]["version"]


def test_version_falls_back_to_pyproject_when_not_installed(monkeypatch):
    import importlib.metadata

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"actlab {pyproject['project']['version']}\n"


def test_version_through_the_console_script(tmp_path):
    proc = subprocess.run(
        [str(ACTLAB), "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stderr == ""
    assert re.fullmatch(r"actlab \d+\.\d+\.\d+\S*\n", proc.stdout), proc.stdout


# -- progress where stderr is a log ---------------------------------------------------------


def expected_git(directory: Path) -> tuple[str | None, bool]:
    """HEAD of the checkout the code runs from, asked of git directly (None outside one)."""
    if shutil.which("git") is None:
        return None, False
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", "--", "provenance.py"],
        cwd=directory,
        capture_output=True,
    )
    if tracked.returncode != 0:
        return None, False
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True
    )
    return head.stdout.strip(), True


def test_a_run_logged_to_a_file_names_its_directory_first_then_progress_with_eta(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY)
    args = [str(ACTLAB), "run", "--config", "tiny.toml", "--out", "run", "--executor", "local"]
    env = {
        **os.environ,
        "ACTLAB_PROGRESS_INTERVAL": "0",  # a line at every stored batch
        "ACTLAB_TEST_BATCH_DELAY": "0.5",  # each batch waits before it is stored
    }
    log = tmp_path / "log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=err, text=True
        )
        deadline = time.monotonic() + 120
        while "run directory" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the run directory was never named"
            time.sleep(0.02)
        # Named before any trial's result is stored.
        stored_then = (tmp_path / "run" / "progress.jsonl").read_text()
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, log.read_text()
    assert stored_then == ""

    lines = log.read_text().splitlines()
    assert lines[0].startswith("actlab: run directory run; 4 trials to run (gradient_flow), about ")
    progress = [PROGRESS_LINE.match(line) for line in lines[1:-2]]
    assert progress and all(progress), lines
    done = [int(m.group(1)) for m in progress]
    assert done == sorted(done) and done[-1] == 4, lines
    assert progress[-1].group(2) == "100" and progress[-1].group(3) == "0:00"
    assert all(m.group(3) != "unknown" for m in progress), lines  # work done: an estimate
    assert re.fullmatch(r"actlab: 4/4 trials stored in \d+:\d\d; writing the report", lines[-2])
    assert re.fullmatch(r"actlab: finished in \d+:\d\d", lines[-1])
    assert out.splitlines()[-1] == "run directory: run" and "report:" in out

    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["command"] == shlex.join(args)
    assert manifest["cwd"] == str(tmp_path)
    commit, checkout = expected_git(PACKAGE)
    assert manifest["git_commit"] == commit
    if checkout:
        assert re.fullmatch(r"[0-9a-f]{40}", commit)
        assert isinstance(manifest["git_dirty"], bool)
    else:
        assert manifest["git_dirty"] is None


def test_log_lines_estimate_the_time_left_from_the_planned_work(monkeypatch, capsys):
    """Two studies of 2 trials; a trial of the second plans 3 times the work of one of the
    first. The first study (half the trials, a quarter of the work) took 10 s: 30 s left."""
    now = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    monkeypatch.setenv("ACTLAB_PROGRESS_INTERVAL", "30")
    monkeypatch.setattr(progress_module, "TRIAL_OVERHEAD", 0.0)  # the planned work alone
    progress = progress_module.Progress()
    assert not progress.tty  # pytest captures stderr
    progress.start(RunStart(Path("runs/x"), 4, 0, False, {"a": (2, 2e10), "b": (2, 6e10)}))
    now[0] = 105.0
    progress.update(1, 4, "a")  # within the interval, mid-study: no line
    now[0] = 110.0
    progress.update(2, 4, "a")  # study a ends: a line
    now[0] = 141.0
    progress.update(3, 4, "b")  # 31 s since the last line: a line
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "actlab: run directory runs/x; 4 trials to run (a, b), about 15 s on 1 worker "
        "(estimated from the planned work)",
        "actlab: 2/4 trials (50% of the trials, 25% of the planned work), 0:10 elapsed, eta 0:30",
        "actlab: 3/4 trials (75% of the trials, 62% of the planned work), 0:41 elapsed, eta 0:25",
    ]


def test_trials_far_smaller_than_their_fixed_cost_count_about_alike(monkeypatch, capsys):
    """Planned work of a few thousand units (microseconds) is no measure of a trial's time:
    each trial's fixed cost dominates, and the estimate is close to the trial count's."""
    now = [0.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    monkeypatch.setenv("ACTLAB_PROGRESS_INTERVAL", "30")
    progress = progress_module.Progress()
    progress.start(RunStart(Path("r"), 4, 0, False, {"a": (2, 2e3), "b": (2, 6e5)}))
    now[0] = 10.0
    progress.update(2, 4, "a")
    assert capsys.readouterr().err.splitlines()[-1] == (
        "actlab: 2/4 trials (50%), 0:10 elapsed, eta 0:10"
    )


def test_a_study_boundary_always_gets_a_line(monkeypatch, capsys):
    now = [0.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    monkeypatch.setenv("ACTLAB_PROGRESS_INTERVAL", "30")
    progress = progress_module.Progress()
    progress.update(1, 4, "a")  # no plan told: trial counts
    now[0] += 1
    progress.update(2, 4, "a")
    now[0] += 1
    progress.update(3, 4, "b")  # "a" has ended
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["actlab: 3/4 trials (75%), 0:02 elapsed, eta 0:01"]


# -- progress on a terminal -----------------------------------------------------------------


def run_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal; returns (status, what the terminal got with
    colours and cursor moves removed, stdout)."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave
    )
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    out = proc.stdout.read().decode()
    status = proc.wait(timeout=30)
    return status, ANSI.sub("", screen.decode(errors="replace")), out


def test_on_a_terminal_the_bar_gives_way_to_a_visible_writing_the_report_step(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY)
    status, screen, out = run_on_a_terminal(
        [str(ACTLAB), "run", "--config", "tiny.toml", "--out", "run", "--executor", "local"],
        tmp_path,
    )
    assert status == 0, screen[-2000:]
    assert "actlab: run directory run; 4 trials to run (" in screen
    assert re.search(r"gradient_flow ━+ 4/4 \d+:\d\d:\d\d eta 0:00", screen), screen[-2000:]
    assert "actlab: 4/4 trials stored in" in screen
    # The bar itself becomes the report's step (a pulsing bar with its clock).
    assert re.search(r"writing the report ━+\s+\d+:\d\d:\d\d", screen), screen[-2000:]
    assert "report:" in out


# -- resume ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    (root / "tiny.toml").write_text(TINY)
    result = invoke(
        "run", "--config", str(root / "tiny.toml"), "--out", str(root / "run"), "--no-report"
    )
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.mark.parametrize(
    "flags, said",
    [
        (["--no-report"], "nothing to do"),
        ([], "nothing to compute; the report was rebuilt"),
    ],
)
def test_resuming_a_finished_run_says_so_in_one_line(finished_run, tmp_path, flags, said):
    run_dir = Path(shutil.copytree(finished_run, tmp_path / "run"))
    results = (run_dir / "results.csv").read_bytes()
    resumes = len(json.loads((run_dir / "manifest.json").read_text()).get("resumes", []))

    result = invoke("run", "--resume", str(run_dir), *flags)

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"actlab: run '{run_dir}' is already complete (4 trials stored); {said}"
    ]
    assert (run_dir / "results.csv").read_bytes() == results  # nothing computed
    assert (run_dir / "report.md").is_file() == (flags == [])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert len(manifest["resumes"]) == resumes + 1
    assert set(manifest["resumes"][-1]) >= {"at", "command", "git_commit", "git_dirty"}


def test_a_resume_with_other_settings_lists_each_difference(finished_run, tmp_path):
    run_dir = Path(shutil.copytree(finished_run, tmp_path / "run"))
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}

    result = invoke("run", "--resume", str(run_dir), "--seeds", "5", "--dtype", "float64")

    assert result.exit_code == 2
    assert result.stderr == (
        f"actlab: error: run '{run_dir}' was made with a different config (seeds: 2 in the "
        "run, 5 here; dtype: 'float32' in the run, 'float64' here); resume it without "
        "changing settings, or start a new run\n"
    )
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


# -- the code's commit ----------------------------------------------------------------------


def test_git_state_outside_a_checkout_is_empty_and_never_fails(tmp_path, monkeypatch):
    assert git_state(tmp_path) == {"git_commit": None, "git_dirty": None}
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    assert git_state() == {"git_commit": None, "git_dirty": None}


def test_git_state_in_a_checkout_names_head_and_uncommitted_changes(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    git("init", "-q")
    (repo / "provenance.py").write_text("# the code\n")
    git("add", "provenance.py")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD")
    assert git_state(repo) == {"git_commit": head, "git_dirty": False}
    (repo / "provenance.py").write_text("# changed\n")
    assert git_state(repo) == {"git_commit": head, "git_dirty": True}
    (repo / "provenance.py").write_text("# the code\n")
    (repo / "untracked.txt").write_text("runs and notes are not code changes\n")
    assert git_state(repo) == {"git_commit": head, "git_dirty": False}
