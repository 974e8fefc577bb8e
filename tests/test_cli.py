"""The `actlab` command's contract.

Every bad input exits with status 2 and prints exactly one line on stderr, starting with
'actlab: error:' and naming the offending input; no traceback, and nothing on disk changes
(no run directory appears; an existing run keeps every byte)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from actlab.cli import app

ACTLAB = Path(sys.executable).parent / "actlab"  # the installed console script
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
HAS_CUDA = torch.cuda.is_available()


def tiny_toml(*, top: str = "", depths: str = "[2, 3]", width: str = "8", extra: str = "") -> str:
    return f"""\
seeds = 2
activations = ["ReLU", "Tanh", "GELU"]
studies = ["gradient_flow"]
{top}

[gradient_flow]
depths = {depths}
width = {width}
n_samples = 8
report_depth = 3
{extra}
"""


def snapshot(root: Path) -> dict[str, object]:
    """Every path under root: a file's bytes (or its stat if unreadable), None for a dir."""
    snap: dict[str, object] = {}
    for p in sorted(root.rglob("*")):
        key = str(p.relative_to(root))
        if p.is_dir():
            snap[key] = None
        else:
            try:
                snap[key] = p.read_bytes()
            except PermissionError:
                st = p.stat()
                snap[key] = ("unreadable", st.st_size, st.st_mtime_ns, st.st_mode)
    return snap


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_one_line_error(stderr: str, stdout: str, fragments: tuple[str, ...]) -> str:
    assert "Traceback" not in stderr and "Traceback" not in stdout
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected exactly one stderr line, got: {stderr!r}"
    line = lines[0]
    assert line.startswith("actlab: error: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not named in: {line}"
    assert stdout == "", f"nothing should be printed on stdout: {stdout!r}"
    return line


# -- a good run, made once ------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """`actlab run` on the tiny config, with its report. Returns (result, run dir, cwd)."""
    root = tmp_path_factory.mktemp("good")
    (root / "tiny.toml").write_text(tiny_toml())
    out = root / "myrun"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        result = invoke("run", "--config", "tiny.toml", "--out", str(out))
    return result, out, root


def test_a_good_run_writes_a_complete_run_directory(good_run):
    result, out, root = good_run
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert f"run directory: {out}" in result.stdout
    assert f"report:        {out / 'report.md'}" in result.stdout
    # the answers first, then the paths with report.html first (issue 28)
    stdout = result.stdout.splitlines()
    assert stdout[0] == "Answers (conditions and evidence in the report):"
    assert stdout[-3:] == [
        f"html:          {out / 'report.html'}",
        f"report:        {out / 'report.md'}",
        f"run directory: {out}",
    ]
    # stderr is no terminal here: plain progress lines, and nothing else.
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"actlab: run directory {out}; 12 trials to run ("), lines
    assert lines[0].endswith("(estimated from the planned work)"), lines
    assert all(line.startswith("actlab: ") for line in lines), lines
    assert any(line.endswith("; writing the report") for line in lines), lines
    assert lines[-1].startswith("actlab: finished in "), lines
    assert not any("error" in line or "Traceback" in line for line in lines), lines
    for name in ("manifest.json", "results.csv", "progress.jsonl", "report.md"):
        assert (out / name).is_file(), name
    png = out / "figures" / "gradient_flow.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Gradient flow" in (out / "report.md").read_text()
    assert "figures/gradient_flow.png" in (out / "report.md").read_text()
    rows = (out / "results.csv").read_text().splitlines()
    activations = {line.split(",")[2] for line in rows[1:]}
    assert activations == {"ReLU", "Tanh", "GELU"}
    assert not (root / "runs").exists()  # --out was honoured


# -- the bad-input table --------------------------------------------------------------------


@dataclass
class Case:
    """setup(tmp, good_run_dir) prepares files in tmp (the cwd) and returns the arguments."""

    setup: Callable[[Path, Path], list[str]]
    fragments: tuple[str, ...]


def run_args(*extra: str) -> Callable[[Path, Path], list[str]]:
    return lambda tmp, good: ["run", "--config", "tiny.toml", "--no-report", *extra]


def bad_config(text: str) -> Callable[[Path, Path], list[str]]:
    def setup(tmp: Path, good: Path) -> list[str]:
        (tmp / "bad.toml").write_text(text)
        return ["run", "--config", "bad.toml", "--no-report"]

    return setup


def config_path(make: Callable[[Path], None], name: str) -> Callable[[Path, Path], list[str]]:
    def setup(tmp: Path, good: Path) -> list[str]:
        make(tmp / name)
        return ["run", "--config", name, "--no-report"]

    return setup


def make_unreadable(path: Path) -> None:
    if IS_ROOT:
        # root reads any file whatever its mode: make it unreadable as text instead.
        path.write_bytes(b"seeds = 2\n# caf\xe9 \xff\xfe\n")
    else:
        path.write_text(tiny_toml())
        path.chmod(0)


def copy_good(tmp: Path, good: Path, name: str = "existing") -> Path:
    return Path(shutil.copytree(good, tmp / name))


def out_under_a_file(tmp: Path, good: Path) -> list[str]:
    (tmp / "afile").write_text("a regular file\n")
    return ["run", "--config", "tiny.toml", "--no-report", "--out", "afile/run"]


def out_existing_run(tmp: Path, good: Path) -> list[str]:
    copy_good(tmp, good)
    return ["run", "--config", "tiny.toml", "--no-report", "--out", "existing"]


def resume_with_manifest(text: str) -> Callable[[Path, Path], list[str]]:
    def setup(tmp: Path, good: Path) -> list[str]:
        run_dir = copy_good(tmp, good)
        (run_dir / "manifest.json").write_text(text)
        return ["run", "--resume", "existing", "--no-report"]

    return setup


def resume_different_config(tmp: Path, good: Path) -> list[str]:
    copy_good(tmp, good)  # made with seeds = 2
    return ["run", "--resume", "existing", "--seeds", "3", "--no-report"]


def report_not_a_run(tmp: Path, good: Path) -> list[str]:
    (tmp / "notarun").mkdir()
    (tmp / "notarun" / "notes.txt").write_text("hello\n")
    return ["report", "notarun"]


def out_unwritable(tmp: Path, good: Path) -> list[str]:
    if IS_ROOT:  # root writes anywhere it may; nobody can make a directory in /proc/1
        return ["run", "--config", "tiny.toml", "--no-report", "--out", "/proc/1/actlab-run"]
    (tmp / "readonly").mkdir()
    (tmp / "readonly").chmod(0o555)
    return ["run", "--config", "tiny.toml", "--no-report", "--out", "readonly/run"]


def resume_damaged(damage: Callable[[Path], None]) -> Callable[[Path, Path], list[str]]:
    def setup(tmp: Path, good: Path) -> list[str]:
        damage(copy_good(tmp, good))
        return ["run", "--resume", "existing", "--no-report"]

    return setup


def truncate_results(run_dir: Path) -> None:
    results = run_dir / "results.csv"
    results.write_bytes(results.read_bytes().splitlines(keepends=True)[0])


def killed_before_start(tmp: Path, good: Path) -> list[str]:
    (tmp / "early").mkdir()  # what a kill before the manifest was written leaves
    (tmp / "early" / "results.csv").write_text("study,trial\n")
    return ["run", "--resume", "early", "--no-report"]


def config_text(old: str, new: str) -> Callable[[Path, Path], list[str]]:
    return bad_config(tiny_toml().replace(old, new))


HUGE = tiny_toml(depths="[1000]", width="8192").replace("n_samples = 8", "n_samples = 1000000")


HOSTILE = "__import__('os').system('touch PWNED')"

CASES = {
    "activation-unknown": Case(
        run_args("--activations", "relu,nosuchact"),
        ("nosuchact", "available", "Swish", "GELU", "Tanh"),
    ),
    "expression-malformed": Case(run_args("--activations", "x*tanh("), ("x*tanh(",)),
    "expression-hostile": Case(run_args("--activations", HOSTILE), ("__import__",)),
    "study-unknown": Case(run_args("--studies", "nosuch"), ("nosuch", "gradient_flow")),
    "preset-unknown": Case(run_args("--preset", "nosuch"), ("nosuch", "quick", "tutorial")),
    # a near miss names the nearest, and still lists them all
    "activation-misspelt": Case(
        run_args("--activations", "relu,gleu"),
        ("unknown activation 'gleu'; did you mean GELU? (available: Linear, ", "Swish"),
    ),
    "study-misspelt": Case(
        run_args("--studies", "sparsty"),
        ("unknown study 'sparsty'; did you mean sparsity? (available: gradient_flow, ",),
    ),
    "preset-misspelt": Case(
        run_args("--preset", "tutoral"),
        ("unknown preset 'tutoral'; did you mean tutorial? (available: ", "quick"),
    ),
    "seeds-zero": Case(run_args("--seeds", "0"), ("seeds", "0")),
    "seeds-negative": Case(run_args("--seeds", "-1"), ("seeds", "-1")),
    "config-depths-zero": Case(bad_config(tiny_toml(depths="[0]")), ("depths", "0", "bad.toml")),
    "config-depths-negative": Case(
        bad_config(tiny_toml(depths="[-3]")), ("depths", "-3", "bad.toml")
    ),
    "config-width-zero": Case(bad_config(tiny_toml(width="0")), ("width", "0", "bad.toml")),
    "config-width-negative": Case(bad_config(tiny_toml(width="-1")), ("width", "-1", "bad.toml")),
    "config-seeds-zero": Case(
        bad_config(tiny_toml().replace("seeds = 2", "seeds = 0")), ("seeds", "bad.toml")
    ),
    "config-lr-zero": Case(
        bad_config(
            tiny_toml().replace(
                'studies = ["gradient_flow"]',
                'studies = ["stability"]\n[stability]\nlrs = [0.1, 0.0]',
            )
        ),
        ("lrs", "positive", "bad.toml"),
    ),
    "config-lr-negative": Case(
        bad_config(
            tiny_toml().replace(
                'studies = ["gradient_flow"]', 'studies = ["sparsity"]\n[sparsity]\nlr = -0.1'
            )
        ),
        ("lr", "bad.toml"),
    ),
    "config-missing": Case(config_path(lambda p: None, "missing.toml"), ("missing.toml",)),
    "config-is-a-directory": Case(config_path(lambda p: p.mkdir(), "confdir"), ("confdir",)),
    "config-invalid-toml": Case(
        config_path(lambda p: p.write_text("seeds = \n[gradient_flow\n"), "broken.toml"),
        ("broken.toml", "TOML"),
    ),
    "config-unreadable": Case(
        config_path(make_unreadable, "unreadable.toml"), ("unreadable.toml",)
    ),
    "config-unknown-key": Case(bad_config(tiny_toml(top='colour = "red"')), ("colour",)),
    "config-two-unknown-keys": Case(
        bad_config(tiny_toml(top='colour = "red"', extra="widht = 8")),
        (
            "config file 'bad.toml': unknown settings colour, "
            "[gradient_flow] widht (did you mean width?); remove or rename them",
        ),
    ),
    "config-invalid-toml-line": Case(
        config_path(lambda p: p.write_text(tiny_toml(top="seeds = = 3")), "broken.toml"),
        ("config file 'broken.toml' is not valid TOML at line 4, column", "'seeds = = 3'"),
    ),
    "config-value-in-plain-words": Case(
        bad_config(tiny_toml(width="0")),
        ("config file 'bad.toml': [gradient_flow] width: must be at least 1 (got 0)",),
    ),
    "config-unknown-study-table": Case(
        bad_config(tiny_toml() + "\n[nosuch]\ndepth = 3\n"), ("nosuch",)
    ),
    "out-parent-is-a-file": Case(out_under_a_file, ("afile",)),
    "out-is-an-existing-run": Case(out_existing_run, ("existing", "--resume")),
    "device-cuda-unavailable": Case(run_args("--device", "cuda"), ("cuda",)),
    "resume-missing-dir": Case(lambda tmp, good: ["run", "--resume", "nosuchrun"], ("nosuchrun",)),
    "resume-corrupt-manifest": Case(
        resume_with_manifest("{not json"), ("existing", "manifest.json")
    ),
    "resume-manifest-not-an-object": Case(
        resume_with_manifest("null"), ("existing", "manifest.json")
    ),
    "resume-different-config": Case(
        resume_different_config,
        ("existing", "different config", "(seeds: 2 in the run, 3 here)", "start a new run"),
    ),
    "report-not-a-run": Case(report_not_a_run, ("notarun",)),
    # wrong types, in the config file and on the command line
    "config-seeds-wrong-type": Case(
        config_text("seeds = 2", 'seeds = "three"'), ("seeds", "'three'", "bad.toml")
    ),
    "config-depths-wrong-type": Case(
        bad_config(tiny_toml(depths='"5"')), ("depths", "valid list", "'5'")
    ),
    "config-width-fractional": Case(bad_config(tiny_toml(width="8.5")), ("width", "8.5")),
    "config-max-members-wrong-type": Case(
        bad_config(tiny_toml(top='max_members = "many"')), ("max_members", "'many'")
    ),
    "config-activations-not-a-list": Case(
        config_text('activations = ["ReLU", "Tanh", "GELU"]', 'activations = "ReLU"'),
        ("activations", "valid list"),
    ),
    "flag-seeds-wrong-type": Case(run_args("--seeds", "three"), ("--seeds", "integer")),
    "flag-unknown": Case(run_args("--sedes", "3"), ("--sedes", "--seeds")),
    "flag-workers-zero": Case(run_args("--workers", "0"), ("workers", "0")),
    "flag-executor-unknown": Case(run_args("--executor", "gpu"), ("executor", "gpu")),
    "flag-dtype-unknown": Case(run_args("--dtype", "float16"), ("dtype", "float16")),
    # empty lists
    "config-activations-empty": Case(
        config_text('activations = ["ReLU", "Tanh", "GELU"]', "activations = []"),
        ("activations", "at least 1"),
    ),
    "config-studies-empty": Case(
        config_text('studies = ["gradient_flow"]', "studies = []"), ("studies", "at least 1")
    ),
    "config-depths-empty": Case(bad_config(tiny_toml(depths="[]")), ("depths", "at least 1")),
    "flag-activations-empty": Case(run_args("--activations", ""), ("activations", "at least 1")),
    # sizes that would exhaust memory: refused up front, with an estimate
    "config-huge-sizes": Case(
        bad_config(HUGE), ("needs about", "TB", "width 8192", "available", "reduce width")
    ),
    # names and expressions
    "activation-listed-twice": Case(run_args("--activations", "relu,ReLU"), ("ReLU", "twice")),
    "expression-not-finite": Case(
        run_args("--activations", "log(x)"), ("log(x)", "not finite at x = -10")
    ),
    "expression-attribute-access": Case(
        run_args("--activations", "x.__class__"), ("x.__class__", "attribute access")
    ),
    "expression-two-lines": Case(run_args("--activations", "x\n+ 1"), ("x\\n+ 1", "one line")),
    "expression-syntax-warning": Case(
        run_args("--activations", "1if x else 2"), ("1if x else 2", "where(cond, a, b)")
    ),
    # paths and damaged run directories
    "out-unwritable": Case(out_unwritable, ("cannot write", "--out")),
    "resume-manifest-missing-keys": Case(
        resume_with_manifest('{"status": "running"}'), ("manifest.json", "missing")
    ),
    "resume-results-missing": Case(
        resume_damaged(lambda d: (d / "results.csv").unlink()), ("existing", "results.csv")
    ),
    "resume-results-truncated": Case(resume_damaged(truncate_results), ("existing", "corrupt")),
    "resume-killed-before-start": Case(killed_before_start, ("early", "--out early")),
}

MARKS = {
    "device-cuda-unavailable": pytest.mark.skipif(
        HAS_CUDA, reason="this machine has CUDA, so --device cuda is valid input here"
    ),
}


def case_params(ids=None):
    return [pytest.param(CASES[i], id=i, marks=MARKS.get(i, ())) for i in (ids or CASES)]


def prepare(case: Case, tmp_path: Path, good: Path) -> tuple[list[str], dict]:
    (tmp_path / "tiny.toml").write_text(tiny_toml())
    copy_good(tmp_path, good, "other-run")  # a bystander run: it must keep every byte
    args = case.setup(tmp_path, good)
    return args, snapshot(tmp_path)


def assert_untouched(tmp_path: Path, before: dict) -> None:
    assert not (tmp_path / "runs").exists(), "a default run directory was created"
    assert not (tmp_path / "PWNED").exists()
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", case_params())
def test_bad_input_is_one_clear_line_and_exit_2(case, tmp_path, monkeypatch, good_run):
    _, good, _ = good_run
    monkeypatch.chdir(tmp_path)
    args, before = prepare(case, tmp_path, good)

    result = invoke(*args)

    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert_one_line_error(result.stderr, result.stdout, case.fragments)
    assert_untouched(tmp_path, before)


@pytest.mark.parametrize(
    "case",
    case_params(
        [
            "config-missing",
            "preset-unknown",
            "expression-hostile",
            # Python's SyntaxWarning and click's usage box would each add lines here.
            "expression-syntax-warning",
            "flag-seeds-wrong-type",
            "config-huge-sizes",
        ]
    ),
)
def test_bad_input_through_the_console_script(case, tmp_path, good_run):
    _, good, _ = good_run
    args, before = prepare(case, tmp_path, good)

    proc = subprocess.run(
        [str(ACTLAB), *args], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, proc.stdout, case.fragments)
    assert_untouched(tmp_path, before)


# -- listing and help -----------------------------------------------------------------------


def test_list_activations_shows_names_and_aliases():
    result = invoke("list", "activations")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    swish = [line for line in lines if line.split()[0] == "Swish"]
    assert len(swish) == 1 and "also: silu" in swish[0]
    names = {line.split()[0] for line in lines}
    assert {"ReLU", "GELU", "Tanh", "Linear", "Mish"} <= names


def test_list_studies_shows_every_registered_study():
    from actlab.studies import available

    result = invoke("list", "studies")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == available()
    assert {"gradient_flow", "sparsity", "stability", "capacity"} <= set(listed)


def test_list_presets_shows_quick_and_tutorial():
    result = invoke("list", "presets")
    assert result.exit_code == 0
    names = {line.split()[0] for line in result.stdout.splitlines()}
    assert {"quick", "tutorial"} <= names


def test_help_is_fast_and_does_not_import_torch(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "actlab.cli", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for command in ("run", "list", "report"):
        assert command in proc.stdout
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert {"actlab", "typer"} <= imported  # importtime output was captured at all
    heavy = sorted(m for m in imported if m.split(".")[0] in {"torch", "matplotlib"})
    assert heavy == []


@pytest.mark.parametrize(
    "args",
    [
        ["list", "nothing"],
        ["theory", "relu", "--bogus"],
        ["report", "--x"],
        ["profile", "relu", "--seeds", "three"],
        ["run", "--sedes", "3"],
        ["search", "--candidates", "many"],
    ],
)
def test_every_command_reports_a_usage_error_in_one_line(args):
    result = invoke(*args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("actlab: error:"), result.stderr


def test_a_mistyped_command_is_one_line_naming_the_commands_and_the_nearest():
    result = invoke("rnu", "--preset", "quick")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "actlab: error: no command 'rnu'; the commands are list, run, report, diff, profile, "
        "bench, export, search, theory; did you mean 'run'?"
    ]
    far = invoke("serch")
    assert far.exit_code == 2 and len(far.stderr.strip().splitlines()) == 1
    assert "no command 'serch'; the commands are" in far.stderr and "Usage" not in far.stderr
    option = invoke("--bogus")
    assert option.exit_code == 2 and option.stderr.startswith("actlab: error: No such option")


def command_options():
    from typer.core import TyperOption
    from typer.main import get_command

    for name, command in get_command(app).commands.items():
        for param in command.params:
            if isinstance(param, TyperOption) and param.name != "help":
                yield name, param


def test_every_option_states_its_default():
    """Issue 28: options whose default is 'not given' (None) or off (a flag) said nothing
    about what that means."""
    checked = 0
    for command, option in command_options():
        checked += 1
        shown = (
            option.default is not None
            and option.default is not False
            and option.show_default is not False
        )
        assert shown or "default" in (option.help or ""), (command, option.name)
    assert checked > 40


def test_search_help_states_the_search_configs_own_defaults():
    from actlab.search.config import SearchConfig

    options = {opt.name: opt for command, opt in command_options() if command == "search"}
    fields = ("candidates", "finalists", "confirm_seeds", "confirm_steps", "seed", "units")
    for field in (*fields, "transfer_seeds", "transfer_steps"):
        default = SearchConfig.model_fields[field].default
        assert re.search(rf"default: {default}\b", options[field].help), field
    assert f"default: {SearchConfig.model_fields['proxy'].default})" in options["proxy"].help
    # no second architecture (None) by default: the others are the transfer's tasks
    assert SearchConfig.model_fields["second"].default is None
    assert "default: none:" in options["second"].help


def test_profile_says_what_it_will_run_first_and_quick_is_one_flag(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    result = invoke("profile", "x*tanh(softplus(x))", "--quick", "--out", str(taken))
    assert result.exit_code == 2
    first, refusal = result.stderr.splitlines()
    assert first == (
        "actlab: profiling x*tanh(softplus(x)) against ReLU, GELU, Swish, Tanh with the quick preset"
    )
    assert "already exists" in refusal and (taken / "keep.txt").read_text() == "mine"
    sound = invoke("profile", "relu", "--out", str(taken))
    assert sound.stderr.splitlines()[0].endswith(
        "with the sound preset; for a look in seconds: --quick"
    )
    both = invoke("profile", "relu", "--quick", "--preset", "full")
    assert_one_line_error(both.stderr, both.stdout, ("--quick", "--preset full"))
