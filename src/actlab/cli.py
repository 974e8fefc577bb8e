"""The `actlab` command: a thin layer over the Python API.

Only typer is imported at module level, so `actlab --help` is instant; torch and
matplotlib load inside the commands that need them.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer
from typer.core import TyperCommand, TyperGroup

from actlab.progress import Progress


class Kind(StrEnum):
    activations = "activations"
    studies = "studies"
    presets = "presets"


def split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses, so expressions such as
    'clamp(x, -1, 1)' survive in a comma-separated list."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"actlab: error: {message}", err=True)
    raise typer.Exit(code)


class OneLineUsageErrors(TyperCommand):
    """A flag of the wrong type or an unknown flag is bad input like any other: one line on
    stderr and exit status 2, not click's usage box."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except Exception as e:  # click's UsageError, from typer's vendored click or click
            if getattr(e, "exit_code", None) != 2 or not hasattr(e, "format_message"):
                raise
            message = " ".join(e.format_message().split())
            fail(f"{message}; see 'actlab {self.name} --help'")


class OneLineCommandErrors(TyperGroup):
    """A mistyped command ('actlab serch') is bad input too: one line naming the commands
    and the nearest one, exit status 2."""

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            import difflib

            commands = self.list_commands(ctx)
            near = difflib.get_close_matches(name, commands, n=1, cutoff=0.5)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            fail(f"no command '{name}'; the commands are {', '.join(commands)}{hint}")
        return super().resolve_command(ctx, args)

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except Exception as e:  # click's UsageError: an unknown option before the command
            if getattr(e, "exit_code", None) != 2 or not hasattr(e, "format_message"):
                raise
            message = " ".join(e.format_message().split())
            fail(f"{message}; see 'actlab --help'")


app = typer.Typer(
    cls=OneLineCommandErrors,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="actlab: the lab bench for activation functions.",
)


def package_version() -> str:
    """The installed package's version, or pyproject.toml's in a source checkout that is not
    installed, or the module's own."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("actlab")
    except PackageNotFoundError:
        pass
    try:
        import tomllib

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text())["project"]["version"])
    except (OSError, KeyError, TypeError, ValueError):
        from actlab import __version__

        return __version__


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"actlab {package_version()}")
        raise typer.Exit()


@app.callback()
def options(
    version: bool = typer.Option(
        False,
        "--version",
        callback=show_version,
        is_eager=True,
        help="print actlab's version and exit",
    ),
) -> None:
    """actlab: the lab bench for activation functions."""


@app.command("list", cls=OneLineUsageErrors)
def list_cmd(kind: Kind = typer.Argument(..., help="what to list")) -> None:
    """List the available activations, studies or presets."""
    if kind is Kind.activations:
        from actlab.activations import BUILTINS

        for act in BUILTINS.values():
            aliases = f" (also: {', '.join(act.aliases)})" if act.aliases else ""
            typer.echo(f"{act.name:<12} {act.formula}{aliases}")
    elif kind is Kind.studies:
        from actlab.studies import available, get_study

        for name in available():
            typer.echo(f"{name:<16} {get_study(name).title}")
    else:
        from actlab.config import available_presets, preset_path, read_toml

        for name in available_presets():
            typer.echo(f"{name:<12} {read_toml(preset_path(name)).get('description', '')}")


@app.command("run", cls=OneLineUsageErrors)
def run_cmd(
    preset: str = typer.Option(
        None, help="preset name (default: sound); see 'actlab list presets'"
    ),
    studies: str = typer.Option(
        None, help="comma-separated studies to run (default: the preset's)"
    ),
    activations: str = typer.Option(
        None,
        help="comma-separated activations: names, expressions in x, NAME=EXPR, module:attr "
        "(default: the preset's)",
    ),
    seeds: int = typer.Option(
        None, help="independent seeds per configuration (default: the preset's; sound: 8)"
    ),
    seed: int = typer.Option(
        None, help="run seed from which every trial's randomness derives (default: 0)"
    ),
    device: str = typer.Option(None, help="cpu or cuda (default: cpu)"),
    dtype: str = typer.Option(None, help="float32 or float64 (default: float32)"),
    exact: bool = typer.Option(
        None, "--exact/--fast", help="bit-identical to the reference loop (default: --fast)"
    ),
    flush_denormals: bool = typer.Option(
        None,
        "--flush-denormals/--keep-denormals",
        help="treat floats below ~1e-38 as zero (CPU; may be faster, changes such numbers; "
        "default: --keep-denormals)",
    ),
    executor: str = typer.Option(
        None,
        help="local, process or ray (default: process pool when there are several cores)",
    ),
    workers: int = typer.Option(
        None,
        help="worker processes (process), or CPUs of a local Ray / tasks per GPU (ray) "
        "(default: one per core)",
    ),
    address: str = typer.Option(
        None,
        help="Ray cluster for --executor ray: auto or HOST:PORT (default: start a local Ray)",
    ),
    out: Path = typer.Option(None, help="run directory (default: runs/<preset>-<time>)"),
    resume: Path = typer.Option(
        None, help="continue an interrupted run in this directory (default: a new run)"
    ),
    config: Path = typer.Option(
        None, help="TOML config file (same format as the presets; default: none)"
    ),
    no_report: bool = typer.Option(
        False, "--no-report", help="skip figures and report (default: write them)"
    ),
) -> None:
    """Run studies and write results, figures and a report to a run directory."""
    from actlab.errors import UserError

    overrides = {
        "studies": split_top_level(studies) if studies is not None else None,
        "activations": split_top_level(activations) if activations is not None else None,
        "seeds": seeds,
        "seed": seed,
        "device": device,
        "dtype": dtype,
        "exact": exact,
        "flush_denormals": flush_denormals,
        "executor": executor,
        "workers": workers,
        "address": address,
    }
    try:
        from actlab.runner import run

        result = with_progress(
            Progress(report=not no_report),
            run,
            preset,
            config=config,
            out=out,
            resume=resume,
            report=not no_report,
            **{k: v for k, v in overrides.items() if v is not None},
        )
    except UserError as e:
        fail(str(e))
    except KeyboardInterrupt as e:
        interrupted(e, resume)
    finished(result, report=not no_report)


def with_progress(progress: Progress, work, *args, before_start=None, **kwargs):
    """`work(*args, **kwargs)` with the progress bar on stderr fed by its hooks; the bar is
    closed once the work returns (an error leaves it to the caller's one line).
    `before_start()` runs when the work has passed its checks, just before the bar starts."""

    def start(info) -> None:
        if before_start is not None:
            before_start()
        progress.start(info)

    with progress:
        result = work(
            *args,
            progress=progress.update,
            on_start=start,
            on_steps=progress.steps,
            **kwargs,
        )
    progress.finish()
    return result


def finished(result, report: bool) -> None:
    """The end of a run on stdout: the answers, then the paths, report.html first and the
    run directory last."""
    if report:
        for line in answers_table(result.report_path):
            typer.echo(line)
        if (result.path / "report.html").exists():
            typer.echo(f"html:          {result.path / 'report.html'}")
        typer.echo(f"report:        {result.report_path}")
    typer.echo(f"run directory: {result.path}")


def answers_table(report: Path) -> list[str]:
    """The report's `## Answers`, shortened to situation and answer, as a small table for
    the terminal (the report holds the conditions and the evidence); [] without one."""
    import re

    if not report.is_file():
        return []
    text = report.read_text(encoding="utf-8")
    start = text.find("\n## Answers\n")
    if start < 0:
        return []
    body = text[start + 1 :].split("\n## ", 1)[0]

    def plain(text: str) -> str:  # names are code spans in the report, plain here
        return re.sub(r"(`+) ?(.+?) ?\1", r"\2", text)

    rows = [
        (m.group(1), plain(m.group(2)))
        for m in re.finditer(r"^- \*\*For (.+?):\*\* (.+?)\. By ", body, flags=re.M)
    ]
    if not rows:
        return []
    width = max(len(situation) for situation, _ in rows)
    lines = ["Answers (conditions and evidence in the report):"]
    lines += [f"  {situation:<{width}}  {answer}" for situation, answer in rows]
    return [*lines, ""]


def interrupted(error: KeyboardInterrupt, resume: Path | None) -> None:
    """Ctrl-C: one line saying what was kept and how to continue; exit status 130."""
    from actlab.runner import Interrupted

    if isinstance(error, Interrupted):
        message = (
            f"interrupted; {error.saved} of {error.total} trials saved; "
            f"continue with: actlab run --resume {error.path}"
        )
    elif resume is not None:  # stopped before the run reopened its directory
        message = f"interrupted; nothing changed; continue with: actlab run --resume {resume}"
    else:
        message = "interrupted before the run started; nothing was saved"
    if sys.stderr.isatty():
        typer.echo("", err=True)  # the terminal echoed ^C without a newline
    typer.echo(f"actlab: {message}", err=True)
    raise typer.Exit(130)


# Seconds between progress lines when stderr is not a terminal (a log file, nohup, CI).
# ACTLAB_PROGRESS_INTERVAL overrides it; 0 writes a line at every stored batch (tests).


@app.command("report", cls=OneLineUsageErrors)
def report_cmd(
    run_dir: Path = typer.Argument(..., help="a run directory"),
    html: bool = typer.Option(
        True, "--html/--no-html", help="also write report.html (one self-contained page)"
    ),
) -> None:
    """Rebuild figures, report.md and report.html from a run's (or a search's) stored results
    (no training)."""
    from actlab.errors import UserError

    try:
        if (run_dir / "search.json").exists():  # a search directory: its own report
            from actlab.search.report import rebuild

            path = rebuild(run_dir)
            typer.echo(f"report: {path}")
            typer.echo(f"html:   {path.with_name('report.html')}")
            return
        from actlab.runner import report

        path = report(run_dir, html=html)
    except UserError as e:
        fail(str(e))
    if html:
        typer.echo(f"html:   {path.with_name('report.html')}")
    typer.echo(f"report: {path}")


@app.command("diff", cls=OneLineUsageErrors)
def diff_cmd(
    run_a: Path = typer.Argument(..., help="the first run directory (A)"),
    run_b: Path = typer.Argument(..., help="the second run directory (B)"),
    rank_tol: float = typer.Option(
        0.25, "--rank-tol", min=0, help="show a mean rank that moved by more than this"
    ),
    score_tol: float = typer.Option(
        0.05,
        "--score-tol",
        min=0,
        help="show a mean score that moved by more than this fraction of A's (0.05: 5%)",
    ),
) -> None:
    """What changed from run A to run B (no training, nothing written): the settings that
    differ, activations in one run only, the answers (recommended, avoid, best group), mean
    ranks and scores that moved beyond the tolerances, groups, and claims whose outcome
    changed; "no differences" when none."""
    from actlab.errors import UserError

    try:
        from actlab.diff import diff

        result = diff(run_a, run_b, rank_tol=rank_tol, score_tol=score_tol)
    except UserError as e:
        fail(str(e))
    typer.echo(result.text())


@app.command("profile", cls=OneLineUsageErrors)
def profile_cmd(
    activation: str = typer.Argument(
        ..., help="the activation: a built-in name, an expression in x, or module:attr"
    ),
    name: str = typer.Option(None, help="display name (default: the text given)"),
    against: str = typer.Option("ReLU,GELU,Swish,Tanh", help="comma-separated baselines"),
    seeds: int = typer.Option(None, help="seeds per configuration (default: the preset's)"),
    preset: str = typer.Option(
        None,
        help="which studies and sizes (default: sound, the four questions; quick: a look in "
        "seconds; full: every study, MNIST-1D included, the longest); the run's first line "
        "estimates its time",
    ),
    quick: bool = typer.Option(
        False, "--quick", help="the quick preset: a look in seconds (default: off)"
    ),
    out: Path = typer.Option(None, help="run directory (default: runs/<preset>-<time>)"),
    executor: str = typer.Option(
        None, help="local or process (default: a process pool when the run is big enough)"
    ),
) -> None:
    """Profile one activation: every study of the preset beside the baselines, and a report
    centred on it (its rank per property, with intervals, and the theory's predictions).
    Says up front what it will run and about how long it will take."""
    from actlab.errors import UserError

    if quick and preset not in (None, "quick"):
        fail(f"--quick and --preset {preset} ask for two presets; give one")
    preset = "quick" if quick else preset or "sound"
    try:
        from actlab.profiling import plan_profile, profile

        baselines = split_top_level(against)
        _, focus, others = plan_profile(activation, baselines, name)
        faster = "" if preset == "quick" else "; for a look in seconds: --quick"
        typer.echo(
            f"actlab: profiling {focus} against {', '.join(others)} with the {preset} "
            f"preset{faster}",
            err=True,
        )
        overrides = {"seeds": seeds, "executor": executor}
        result = with_progress(
            Progress(),
            profile,
            activation,
            name=name,
            against=baselines,
            preset=preset,
            out=out,
            **{k: v for k, v in overrides.items() if v is not None},
        )
    except UserError as e:
        fail(str(e))
    except KeyboardInterrupt as e:
        interrupted(e, None)
    finished(result, report=True)


@app.command("bench", cls=OneLineUsageErrors)
def bench_cmd(
    model: str = typer.Argument(
        None,
        help="a model factory: module:attr or path/file.py:attr (with act_layer, or with "
        "activation modules to replace)",
    ),
    data: str = typer.Option(
        "digits", help="a built-in (digits, mnist1d) or module:attr returning the splits"
    ),
    activations: str = typer.Option(
        "ReLU,GELU,Swish,Tanh", help="comma-separated activations (names, expressions in x)"
    ),
    seeds: int = typer.Option(5, help="seeds per activation"),
    seed: int = typer.Option(
        None,
        help="the run's seed, from which every network's weights and batches come (default: 0)",
    ),
    steps: int = typer.Option(None, help="optimiser steps per network (default: 500)"),
    lr: float = typer.Option(None, help="learning rate (default: 0.001)"),
    batch: int = typer.Option(None, help="training samples per step (default: 64)"),
    optimizer: str = typer.Option(None, help="adam, adamw or sgd (default: adam)"),
    weight_decay: float = typer.Option(None, help="weight decay (default: 0)"),
    clip: float = typer.Option(None, help="clip each network's gradient norm (default: none)"),
    eval_every: int = typer.Option(None, help="steps between test evaluations (default: 50)"),
    task: str = typer.Option(
        None, help="classification or regression (default: from the labels' type)"
    ),
    replace: str = typer.Option(
        None,
        help="comma-separated module types to replace (default: torch.nn's activations)",
    ),
    train: str = typer.Option(
        None,
        help="module:attr: your train function (model, data, seed, device) -> metrics "
        "(default: actlab's loop)",
    ),
    stack: bool = typer.Option(
        None,
        "--stack/--no-stack",
        help="train an activation's seeds as one torch.func stack where the model allows it "
        "(default: --stack)",
    ),
    device: str = typer.Option(None, help="cpu or cuda (default: cpu)"),
    executor: str = typer.Option(
        None, help="local, process or ray (default: a process pool when there are several cores)"
    ),
    workers: int = typer.Option(None, help="worker processes (default: one per core)"),
    out: Path = typer.Option(None, help="run directory (default: runs/bench-<time>)"),
    resume: Path = typer.Option(
        None, help="continue an interrupted bench in this directory (default: a new one)"
    ),
) -> None:
    """Put your own PyTorch model and data on the bench: every activation on the same
    seeds, paired tests, rankings and a report, like any run."""
    from actlab.errors import UserError

    if model is None and resume is None:
        fail("give a model (module:attr or path/file.py:attr), or --resume DIR")
    settings = {
        "steps": steps,
        "lr": lr,
        "batch": batch,
        "optimizer": optimizer,
        "weight_decay": weight_decay,
        "clip": clip,
        "eval_every": eval_every,
        "task": task,
        "replace": None if replace is None else split_top_level(replace),
        "train": train,
        "stack": stack,
        "device": device,
        "executor": executor,
        "workers": workers,
        "seed": seed,
    }

    def placement() -> None:  # said once the checks have passed, before the first step
        from actlab.studies.bench.model import how_placed

        typer.echo(f"actlab: {how_placed(model, settings['replace'] or [])}", err=True)

    try:
        from actlab.bench import bench

        result = with_progress(
            Progress(),
            bench,
            model,
            before_start=placement if resume is None else None,
            data=data,
            activations=split_top_level(activations),
            seeds=seeds,
            out=out,
            resume=resume,
            **{k: v for k, v in settings.items() if v is not None},
        )
    except UserError as e:
        fail(str(e))
    except KeyboardInterrupt as e:
        interrupted(e, resume)
    finished(result, report=True)


@app.command("export", cls=OneLineUsageErrors)
def export_cmd(
    activation: str = typer.Argument(
        ...,
        help="an expression in x, NAME=EXPR, or a learnable declaration (EXPR | b=1.0, PReLU, "
        "Swish-beta, PAU)",
    ),
    name: str = typer.Option(None, help="its name (default: NAME of NAME=EXPR, else none)"),
    out: Path = typer.Option(
        None, help="the file, or a directory for it (default: NAME.py in this directory)"
    ),
) -> None:
    """Write an activation as a self-contained PyTorch module (no actlab needed), with a
    check of f and f' against actlab's values: `python FILE` runs it."""
    from actlab.errors import UserError

    try:
        from actlab.export import export

        path = export(activation, out=out, name=name)
    except UserError as e:
        fail(str(e))
    typer.echo(f"module: {path}")
    typer.echo(f"check:  python {path}")


@app.command("search", cls=OneLineUsageErrors)
def search_cmd(
    preset: str = typer.Option(
        None,
        help="default (1,000 candidates: about 26 min on 2 cores) or quick (about a minute) "
        "(default: default)",
    ),
    space: str = typer.Option(
        None,
        help="'default' (the core unit b(u1(x), u2(x))) or a file of NAME=EXPR / EXPR lines "
        "(default: default)",
    ),
    units: int = typer.Option(
        None, help="core units composed in the default space: 1 or 2 (default: 1)"
    ),
    modulo_scale: bool = typer.Option(
        None,
        "--modulo-scale/--exact-scale",
        help="count f and c*f (c > 0) as one function (default: --exact-scale)",
    ),
    learnable_constants: bool = typer.Option(
        None,
        "--learnable-constants/--fixed-constants",
        help="make each candidate's constants parameters trained with the weights "
        "(default: --fixed-constants)",
    ),
    candidates: int = typer.Option(
        None, help="candidates that enter the first rung (default: 1000)"
    ),
    proxy: str = typer.Option(
        None, help="MNIST-1D architecture to screen on: mlp, cnn (default: mlp)"
    ),
    second: str = typer.Option(
        None,
        help="second architecture of the confirmation: cnn, mlp, transformer or none "
        "(default: none: the architectures not confirmed on are transfer tasks)",
    ),
    finalists: int = typer.Option(None, help="candidates confirmed (top k; default: 5)"),
    known: str = typer.Option(
        None,
        help="comma-separated built-ins that race beside the candidates through every rung "
        "(default: every built-in that is not a control; none: none)",
    ),
    confirm_seeds: int = typer.Option(None, help="fresh seeds of the confirmation (default: 10)"),
    confirm_steps: int = typer.Option(
        None, help="training steps of the confirmation (default: 6000)"
    ),
    transfer_seeds: int = typer.Option(
        None,
        help="fresh seeds of the transfer to unseen tasks (0: no transfer; default: the "
        "preset's; default: 8, quick: 3)",
    ),
    transfer_steps: int = typer.Option(
        None,
        help="Adam steps of the MNIST-1D architectures in the transfer (default: the "
        "preset's; default: 1000, quick: 200)",
    ),
    seed: int = typer.Option(
        None, help="search seed (the sample and every network's seed; default: 0)"
    ),
    executor: str = typer.Option(
        None, help="local, process or ray (default: a process pool when there are several cores)"
    ),
    workers: int = typer.Option(
        None, help="worker processes, or CPUs of a local Ray (default: one per core)"
    ),
    address: str = typer.Option(
        None, help="Ray cluster for --executor ray: auto or HOST:PORT (default: a local Ray)"
    ),
    out: Path = typer.Option(None, help="search directory (default: runs/search-<time>)"),
    resume: Path = typer.Option(
        None, help="continue an interrupted search in this directory (default: a new search)"
    ),
    config: Path = typer.Option(
        None,
        help="TOML file of search settings (rung_steps, rung_seeds, eta, holdout, ...; "
        "default: none)",
    ),
    no_report: bool = typer.Option(
        False, "--no-report", help="skip figures and report (default: write them)"
    ),
) -> None:
    """Search for activation functions: drops before training, successive halving on
    MNIST-1D, and confirmation of the finalists on fresh seeds against ReLU, GELU and Swish."""
    from actlab.errors import UserError

    overrides = {
        "space": space,
        "units": units,
        "modulo_scale": modulo_scale,
        "learnable_constants": learnable_constants,
        "candidates": candidates,
        "proxy": proxy,
        "second": second,
        "finalists": finalists,
        "known": None
        if known is None
        else []
        if known.strip().lower() == "none"
        else [k.strip() for k in known.split(",") if k.strip()],
        "confirm_seeds": confirm_seeds,
        "confirm_steps": confirm_steps,
        "transfer_seeds": transfer_seeds,
        "transfer_steps": transfer_steps,
        "seed": seed,
        "executor": executor,
        "workers": workers,
        "address": address,
    }
    if second is not None and second.lower() == "none":
        overrides["second"] = "none"  # explicitly none (None would mean "not given")
    try:
        from actlab.search.run import SearchInterrupted, search

        progress = Progress(announce=False)  # the search says its own line per rung
        with progress:
            result = search(
                preset,
                config=config,
                out=out,
                resume=resume,
                say=progress.say,
                progress=progress.update,
                report=not no_report,
                on_start=progress.start,
                on_steps=progress.steps,
                **overrides,
            )
    except UserError as e:
        fail(str(e))
    except SearchInterrupted as e:
        if sys.stderr.isatty():
            typer.echo("", err=True)
        typer.echo(f"actlab: {e}", err=True)
        raise typer.Exit(130) from None
    typer.echo(f"search directory: {result.path}")
    typer.echo(f"leaderboard:      {result.path / 'leaderboard.csv'}")
    typer.echo(f"finalists:        {result.path / 'finalists.txt'}")
    if not no_report:
        typer.echo(f"report:           {result.report_path}")


@app.command("theory", cls=OneLineUsageErrors)
def theory_cmd(
    activation: str = typer.Argument(
        ..., help="a name, an expression in x, NAME=EXPR or module:attr"
    ),
    sigma_w: float = typer.Option(1.0, "--sigma-w", help="weights ~ N(0, sigma_w^2 / fan_in)"),
    sigma_b: float = typer.Option(0.0, "--sigma-b", help="biases ~ N(0, sigma_b^2)"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object (default: a table)"),
) -> None:
    """Mean-field signal propagation: q*, chi_1, c*, depth scales, edge of chaos, gain."""
    from actlab.errors import UserError

    try:
        from actlab.activations import parse_activation_arg
        from actlab.theory import summarise

        summary = summarise(parse_activation_arg(activation), sigma_w, sigma_b)
    except UserError as e:
        fail(str(e))
    if json_out:
        import json

        typer.echo(json.dumps(summary.to_dict(), allow_nan=False))
    else:
        typer.echo(summary.text())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
