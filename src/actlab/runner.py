"""A run, top to bottom: config -> trials -> batches -> executor -> store -> report.

`actlab.run(...)` and the `actlab run` command both land in `execute`.

Test-only hook: the environment variable ACTLAB_TEST_BATCH_DELAY (seconds) makes `execute`
sleep after each batch is computed and before it is committed, so the kill and interrupt
tests can land inside a run reliably. It is never set outside tests.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from actlab.config import RunConfig, build_config, load_config
from actlab.errors import UserError
from actlab.rundir import check_unchanged
from actlab.store import CORE_COLUMNS, RunStore, now, read_manifest, read_results


@dataclass
class Run:
    """A run directory; `results` is the tidy table (one row per trial x metric)."""

    path: Path

    @property
    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.path)

    @property
    def config(self) -> RunConfig:
        return build_config(self.manifest["config"], source=f"manifest of '{self.path}'")

    @property
    def results(self):
        return read_results(self.path)

    @property
    def report_path(self) -> Path:
        return self.path / "report.md"

    @property
    def verdicts(self):
        """verdicts.csv as a DataFrame (one row per property x activation: mean, interval,
        mean rank, group, test, p-values, conditions); written by every run, with or
        without a report."""
        import pandas as pd

        path = self.path / "verdicts.csv"
        if not path.is_file():
            raise UserError(
                f"run '{self.path}' has no verdicts.csv yet; rebuild it with: "
                f"actlab report {self.path}"
            )
        return pd.read_csv(path)

    def __repr__(self) -> str:
        return f"Run('{self.path}')"


@dataclass(frozen=True)
class RunStart:
    """What a run is about to do, told once (execute's `on_start`) after its directory is
    made or reopened and before its first trial: the command line names the directory and
    estimates the time left from the planned work."""

    path: Path
    to_run: int  # trials this call computes
    stored: int  # trials already stored (a resumed run)
    resumed: bool
    # per study: (trials to run, their planned work in Study.trial_cost's units)
    work: dict[str, tuple[int, float]]
    workers: int = 1  # processes that compute side by side
    report: bool = True  # whether a report is written after the trials


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: every committed batch is kept, the manifest says "interrupted",
    and `actlab run --resume path` continues."""

    def __init__(self, path: Path, saved: int, total: int) -> None:
        super().__init__(f"interrupted; {saved} of {total} trials saved in '{path}'")
        self.path, self.saved, self.total = path, saved, total


def load(run_dir: str | Path) -> Run:
    """Read a run directory back (no training): its `results`, `verdicts`, `config` and
    `manifest`; one clear error if the directory is not a run."""
    path = Path(run_dir)
    read_manifest(path)  # fails clearly if it is not a run
    return Run(path)


def report(run: Any, *, html: bool = True) -> Path:
    """Rebuild a run's verdicts.csv, figures, report.md and (unless html=False) report.html
    from its stored results, training nothing; returns report.md's path. `run`: a Run
    (`actlab.run`, `actlab.load`) or the path of a run directory.

    >>> actlab.report("runs/sound-20261207-035132")
    """
    from actlab.executors import report_pool
    from actlab.report.pipeline import build_report

    run = run if isinstance(run, Run) else load(run)
    # The studies' parts built side by side; one study has nothing to overlap, and
    # starting workers would cost more than it saves (about 4 s here).
    pool = report_pool() if len(run.config.studies) > 1 else None
    try:
        return build_report(run, html=html, pool=pool)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError(
                "--device cuda was given but this machine has no CUDA device; use --device cpu"
            )


def prepare_device(device: str) -> None:
    """Full float32 matmuls on a GPU: TF32 (10-bit mantissa) would make GPU numbers differ
    from CPU ones far beyond rounding. Run in every process that runs batches."""
    if device == "cuda":
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")


def default_run_dir(config: RunConfig, root: Path = Path("runs")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = root / f"{config.preset or 'custom'}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def columns_for(config: RunConfig) -> list[str]:
    from actlab.studies import get_study

    cols = list(CORE_COLUMNS)
    for name in config.studies:
        cols += [c for c in get_study(name).columns(config.study(name)) if c not in cols]
    return cols


def available_memory(device: str = "cpu") -> int | None:
    """Bytes this process can still allocate without swapping (MemAvailable, capped by a
    cgroup v2 limit), or free memory on the CUDA device; None when unknown."""
    if device == "cuda":
        import torch

        return int(torch.cuda.mem_get_info()[0])
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            available = None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit.isdigit() and used.isdigit():
            room = max(int(limit) - int(used), 0)
            available = room if available is None else min(available, room)
    except OSError:
        pass
    return available


def network_bytes(study, trial, study_cfg, dtype: str) -> int:
    """A rough peak size of one network of a trial while it trains: the study's estimate of
    the activations kept for the backward pass, plus its parameters four times over
    (weights, gradients and two Adam moments)."""
    scale = 2 if dtype == "float64" else 1
    n_params = study.param_count(trial, study_cfg)
    return scale * (study.member_bytes(trial, study_cfg) + 4 * 4 * n_params)


def human_bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError  # unreachable


def check_memory(config: RunConfig, batches, executor) -> None:
    """Refuse, before anything is written, a run whose biggest batch (or, with a process
    pool, whose biggest batches running at once) cannot fit in the memory available now."""
    from actlab.studies import get_study

    available = available_memory(config.device)
    if available is None or not batches:
        return
    sizes = []
    for batch in batches:
        study = get_study(batch.study)
        one = network_bytes(study, batch.trials[0], config.study(batch.study), config.dtype)
        # A lone trial runs beside a copy of itself (run_batch) unless in exact mode.
        members = len(batch.trials) if config.exact else max(2, len(batch.trials))
        sizes.append((members * one, members, one, batch))
    sizes.sort(key=lambda s: s[0], reverse=True)
    at_once = min(getattr(executor, "workers", 1), len(sizes))
    need = sum(s[0] for s in sizes[:at_once])
    if need <= available:
        return
    _, members, one, batch = sizes[0]
    p = batch.trials[0].params
    shape = ", ".join(f"{k} {p[k]}" for k in ("architecture", "depth", "width", "in_dim") if k in p)
    study_cfg = config.study(batch.study)
    for name in ("n_samples", "n_points", "n_train"):
        if hasattr(study_cfg, name):
            shape += f", {name} {getattr(study_cfg, name)}"
            break
    networks = (
        f"{members} networks of {batch.study}" if members > 1 else f"one {batch.study} network"
    )
    what = f"{networks} ({shape}; about {human_bytes(one)} each)"
    if at_once > 1 and sizes[0][0] <= available:
        raise UserError(
            f"this run needs about {human_bytes(need)} with {at_once} worker processes "
            f"running batches at once (the biggest: {what}); the machine has "
            f"{human_bytes(available)} available; use fewer --workers or --executor local"
        )
    raise UserError(
        f"this run needs about {human_bytes(sizes[0][0])} for {what}; the machine has "
        f"{human_bytes(available)} available; reduce width, depth or the number of samples"
    )


def check_learnable(studies: list[str], table: dict) -> None:
    """Refuse a learnable activation in a study that cannot train its parameters."""
    from actlab.studies import available, get_study

    learnable = [name for name, act in table.items() if act.learnable is not None]
    if not learnable:
        return
    accepting = [s for s in available() if get_study(s).learnable_activations]
    for study_name in studies:
        if get_study(study_name).learnable_activations is None:
            raise UserError(
                f"activation '{learnable[0]}' is learnable, and study '{study_name}' cannot "
                "train activation parameters yet; learnable activations run in "
                f"{', '.join(accepting)}: choose those with --studies, or a fixed activation"
            )


# Seconds the manifest's git commit may take to find; a slow or missing git leaves it out.
GIT_TIMEOUT = 3.0


def git_state(directory: Path | None = None, timeout: float = GIT_TIMEOUT) -> dict[str, Any]:
    """{'git_commit': HEAD, 'git_dirty': uncommitted changes to tracked files} of the git
    checkout actlab's code runs from; both None when it is not a checkout's tracked file
    (an installed wheel), or git is missing, refuses or is slow. Never raises."""
    import subprocess

    directory = directory or Path(__file__).resolve().parent
    unknown = {"git_commit": None, "git_dirty": None}
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_OPTIONAL_LOCKS="0", LC_ALL="C")  # never take the index lock
    deadline = time.monotonic() + timeout

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", *args],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=max(deadline - time.monotonic(), 0.01),
        )

    try:
        # This file tracked in that checkout: the code is the checkout's, not a copy
        # installed somewhere inside another repository.
        if git("ls-files", "--error-unmatch", "--", Path(__file__).name).returncode != 0:
            return unknown
        head = git("rev-parse", "--verify", "HEAD")
        if head.returncode != 0:
            return unknown
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, ValueError, subprocess.SubprocessError):
        return unknown
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"git_commit": head.stdout.strip(), "git_dirty": dirty}


def provenance() -> dict[str, Any]:
    """What the manifest records of how a run was started: the command line as run
    (sys.argv), the working directory its relative paths mean, and the code's git commit."""
    import shlex
    import sys

    return {"command": shlex.join(sys.argv), "cwd": os.getcwd(), **git_state()}


def resume_mismatch(resume: Path, stored: dict[str, Any], config: RunConfig) -> str:
    """The refusal of a resume with another config, naming the settings that differ."""
    from actlab.config import NOT_HASHED, config_differences

    try:
        before = build_config(stored["config"], source=f"run '{resume}'").hashed_dict()
    except UserError:  # made by another version: compare what it stored
        raw = stored["config"] if isinstance(stored["config"], dict) else {}
        before = {k: v for k, v in raw.items() if k not in NOT_HASHED}
    changed = config_differences(before, config.hashed_dict())
    if changed:
        listed = "; ".join(changed[:5])
        if len(changed) > 5:
            listed += f"; and {len(changed) - 5} more"
        what = f"a different config ({listed})"
    else:
        what = f"a different config (hash {stored['config_hash']}, this one {config.hash()})"
    return (
        f"run '{resume}' was made with {what}; "
        "resume it without changing settings, or start a new run"
    )


def _test_delay(name: str) -> float:
    """A test-only delay from the environment (see the module docstring); 0 when unset."""
    try:
        return max(float(os.environ.get(name, "0")), 0.0)
    except ValueError:
        return 0.0


@contextmanager
def deferred_sigint() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, so a batch's commit is never cut in half; the
    interrupt is raised right after it."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    pending = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


def execute(
    config: RunConfig,
    *,
    out: Path | None = None,
    resume: Path | None = None,
    extra_activations: dict[str, Any] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    report: bool = True,
    verdicts: bool = True,
    on_start: Callable[[RunStart], None] | None = None,
    on_steps: Callable[[dict[str, float]], None] | None = None,
) -> Run:
    """`progress(done, total, what)` is called as batches are stored (`what`: the study)
    and once more when the report is being written (`what`: "writing the report").
    `on_start(RunStart)` is called once, before the first trial is computed.
    `on_steps(in_flight)` is called while batches train, a few times a second, and again
    before `progress` when one is stored: per study, the trials' worth of training done in
    the batches not yet stored (half of a batch of 64 counts 32; the process pool and the
    local executor report within a batch, Ray per batch only).
    Without a report, verdicts.csv is still written unless `verdicts` is False (a search's
    rungs: their numbers are read by the search, which states its own verdicts)."""
    from actlab.activations import resolve_activations
    from actlab.executors import (
        LocalExecutor,
        batch_cost,
        choose_executor,
        may_use_pool,
        report_pool,
        start_fork_server,
    )
    from actlab.plan import balance, plan, study_major
    from actlab.recipes import rebuild, recipes_for
    from actlab.studies import get_study
    from actlab.studies.base import RunContext
    from actlab.timing import Timings

    timings = Timings()
    started = time.perf_counter()
    if may_use_pool(config):
        start_fork_server()  # it imports torch while this process does the same
    # A callable is known to the config by its name: given again now, or rebuilt from the
    # recipe the run stored for it (recipes.py).
    given = extra_activations or {}
    stored_recipes = read_manifest(resume).get("activation_recipes", {}) if resume else {}
    names, table = resolve_activations(
        [
            given[a] if a in given else rebuild(a, stored_recipes[a]) if a in stored_recipes else a
            for a in config.activations
        ]
    )
    check_device(config.device)
    check_learnable(config.studies, table)
    for study_name in config.studies:
        get_study(study_name).check(config.study(study_name), table)

    contexts, trials_by_study = {}, {}
    for study_name in config.studies:
        study = get_study(study_name)
        study_cfg = config.study(study_name)
        trials = study.trials(study_cfg, names, config.seeds)
        keys = [t.key for t in trials]
        if len(set(keys)) != len(keys):
            raise AssertionError(f"study {study_name} produced duplicate trial keys")
        trials_by_study[study_name] = trials
        contexts[study_name] = RunContext(
            run_seed=config.seed,
            config=study_cfg,
            activations=table,
            device=config.device,
            dtype=config.dtype,
            exact=config.exact,
            flush_denormals=config.flush_denormals,
        )
    all_keys = {t.key for trials in trials_by_study.values() for t in trials}
    signatures = {
        name: act.learnable.signature() if act.learnable is not None else None
        for name, act in table.items()
    }

    def planned(done: set[str]) -> list:
        batches = []
        for study_name, trials in trials_by_study.items():
            batches += plan(
                get_study(study_name),
                [t for t in trials if t.key not in done],
                names,
                config.max_members,
                max_bytes=config.batch_memory_mb * 2**20,
                config=config.study(study_name),
                signatures=signatures,
            )
        return batches

    # Everything that can refuse the run does so before anything is written.
    everything = planned(set())
    check_memory(
        config,
        everything,
        choose_executor(config.executor, config.workers, contexts, everything, config.address),
    )

    if resume is not None:
        # Compare before opening: opening repairs a torn tail, and a refused resume must
        # leave the directory exactly as it was.
        stored_manifest = read_manifest(resume)
        check_unchanged(
            stored_manifest, config.hash(), lambda: resume_mismatch(resume, stored_manifest, config)
        )
        store = RunStore.open(resume)
        # Each resume is recorded: the code may have moved on since the run began.
        store.manifest.setdefault("resumes", []).append({"at": now(), **provenance()})
    else:
        path = out if out is not None else default_run_dir(config)
        started_by = provenance()
        store = RunStore.create(
            path, config.model_dump(mode="json"), config.hash(), columns_for(config), config.device
        )
        store.manifest.update(started_by)
        recipes = recipes_for(table, given)
        if recipes:
            store.manifest["activation_recipes"] = recipes
        store.save()

    pool = None
    try:
        batches = planned(store.done)
        # Studies that time things need the machine to themselves: their batches run one
        # at a time in this process, after the parallel work.
        alone = [b for b in batches if get_study(b.study).exclusive]
        shared = [b for b in batches if not get_study(b.study).exclusive]
        executor = choose_executor(
            config.executor, config.workers, contexts, shared, config.address
        )
        shared = balance(shared, getattr(executor, "workers", 1), batch_cost)
        shared = study_major(shared, batch_cost)
        batches = shared + alone
        total = sum(len(b.trials) for b in batches)
        finished = 0
        if on_start is not None:
            work: dict[str, tuple[int, float]] = {}
            for b in batches:
                n, cost = work.get(b.study, (0, 0.0))
                work[b.study] = (n + len(b.trials), cost + batch_cost(b))
            stored_trials = len(store.done & all_keys)
            on_start(
                RunStart(
                    store.path,
                    total,
                    stored_trials,
                    resume is not None,
                    work,
                    workers=getattr(executor, "workers", 1),
                    report=report,
                )
            )
        delay = _test_delay("ACTLAB_TEST_BATCH_DELAY")
        store.mark("running")
        if getattr(executor, "name", None) == "process" and (report or verdicts):
            # The report's parts are built beside the compute, in workers of their own
            # (a run too small for the process pool writes its report in this process).
            # One worker: the parts come one study at a time while the compute holds the
            # cores, and at the end this process draws the summary sheet beside it.
            pool = report_pool(1, draws=report)
            threading.Thread(target=warm_report_imports, args=(report,), daemon=True).start()
        from actlab.report.parts import PartBuilder

        builder = PartBuilder(config, table, store.path / "figures" if report else None, pool)
        unstored = {}  # batches not yet stored, per study: a study at 0 is complete
        for batch in batches:
            unstored[batch.study] = unstored.get(batch.study, 0) + 1
        timings.phases["plan"] = time.perf_counter() - started
        compute_started = time.perf_counter()
        flying: dict[int, tuple[str, float]] = {}  # id(batch): (study, trials' worth done)

        def in_flight() -> dict[str, float]:
            out: dict[str, float] = {}
            for study_name, worth in flying.values():
                out[study_name] = out.get(study_name, 0.0) + worth
            return out

        def stepped(batch, fraction: float) -> None:
            flying[id(batch)] = (batch.study, len(batch.trials) * min(max(fraction, 0.0), 1.0))
            on_steps(in_flight())

        steps = stepped if on_steps is not None else None
        streams = in_turn(
            executor.map(shared, contexts, timed_batch, on_steps=steps),
            LocalExecutor().map(alone, contexts, timed_batch, on_steps=steps),
        )
        with closing(streams) as results:
            for batch, (per_trial_rows, seconds) in results:
                timings.add_study(batch.study, seconds)
                if delay:
                    time.sleep(delay)  # test-only: computed, not yet committed
                rows = []
                for trial, trial_rows in zip(batch.trials, per_trial_rows, strict=True):
                    ident = {
                        "study": trial.study,
                        "trial": trial.key,
                        "activation": trial.activation,
                        "seed": trial.seed,
                        **trial.params,
                    }
                    rows += [{**ident, **row} for row in trial_rows]
                with deferred_sigint():
                    store.append(batch.keys, rows)
                finished += len(batch.trials)
                unstored[batch.study] -= 1
                if pool is not None:
                    if unstored[batch.study] == 0 and finished < total:
                        # Its part is built while the other studies compute.
                        builder.stored(batch.study, lambda: read_results(store.path))
                    builder.poll()
                if on_steps is not None and flying.pop(id(batch), None) is not None:
                    on_steps(in_flight())  # the stored batch's work now counts as done
                if progress is not None:
                    progress(finished, total, batch.study)
        timings.phases["compute"] = time.perf_counter() - compute_started
        with timings.phase("store"):
            store.mark("complete")
            stored = read_results(store.path)  # read once: for parquet and the report
            store.write_parquet(stored)
        run = Run(store.path)
        if report:
            from actlab.report.pipeline import build_report

            if progress is not None:
                progress(finished, total, "writing the report")
            with timings.phase("report"):
                build_report(run, table, results=stored, builder=builder, timings=timings.report)
        elif verdicts:  # the verdicts are data, not report: written either way
            from actlab.report.pipeline import write_verdicts

            with timings.phase("verdicts"):
                write_verdicts(run, table, results=stored, builder=builder)
        timings.early_parts = list(builder.early)
        timings.save(store.path)
    except KeyboardInterrupt:
        if store.manifest.get("status") != "complete":
            store.mark("interrupted")
        raise Interrupted(store.path, len(store.done & all_keys), len(all_keys)) from None
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return run


def in_turn(*streams):
    """Each stream to its end, then the next; closing this closes the open one."""
    for stream in streams:
        with closing(stream):
            yield from stream


def warm_report_imports(report: bool) -> None:
    """Import what this process needs after the last batch (pandas to read the results,
    scipy's statistics for the verdicts, and for a report the writers of report.md and
    report.html) while the workers compute: about a second, otherwise spent at the end."""
    import scipy.stats  # noqa: F401

    from actlab.report import summary, verdicts  # noqa: F401
    from actlab.store import read_results  # noqa: F401

    if report:
        from actlab.render.figures import warm_up
        from actlab.report import html, markdown  # noqa: F401

        html.markdown_to_html("*warm*")
        warm_up()  # this process draws the summary sheet


def timed_batch(batch, ctx) -> tuple[list[list[dict]], float]:
    """run_batch, and the seconds it took where it ran (timings.json's study seconds)."""
    start = time.perf_counter()
    rows = run_batch(batch, ctx)
    return rows, time.perf_counter() - start


def run_batch(batch, ctx):
    """Run one batch through its study. A lone trial is run beside a copy of itself (the
    copy's rows are dropped): BLAS multiplies a batch of one matrix with another kernel,
    so a stack of one would round differently from the same trial in any larger batch."""
    from actlab.studies import get_study

    study = get_study(batch.study)
    prepare_device(ctx.device)
    with denormals_flushed(ctx.flush_denormals):
        if len(batch.trials) == 1 and not ctx.exact:
            return study.run(batch.trials * 2, ctx)[:1]
        return study.run(batch.trials, ctx)


@contextmanager
def denormals_flushed(flush: bool) -> Iterator[None]:
    """With `flush`, subnormal floats count as zero inside the block (a per-process CPU
    mode; it is restored after, so it never leaks into another batch)."""
    if not flush:
        yield
        return
    import torch

    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def run(
    preset: str | None = None,
    *,
    config: RunConfig | str | Path | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    activations: list[Any] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    report: bool = True,
    on_start: Callable[[RunStart], None] | None = None,
    on_steps: Callable[[dict[str, float]], None] | None = None,
    **overrides: Any,
) -> Run:
    """Run studies and return the Run (its directory and tidy results).

    >>> run("quick", activations=["relu", "x*tanh(softplus(x))", my_fn], seeds=2)
    """
    extra: dict[str, Any] = {}
    if activations is not None:
        specs = []
        for spec in activations:
            if isinstance(spec, str):
                specs.append(spec)
            else:  # a callable or Activation: keep the object, store its name
                from actlab.activations import get_activation

                act = get_activation(spec)
                extra[act.name] = act
                specs.append(act.name)
        overrides["activations"] = specs
    if resume is not None and config is None and preset is None:
        # Resume with the stored config; any setting given now must leave it unchanged.
        stored = load(resume).manifest["config"]
        changed = {k: v for k, v in overrides.items() if v is not None}
        cfg = build_config({**stored, **changed}, source=f"run '{resume}'")
    elif isinstance(config, RunConfig):
        cfg = config
    else:
        cfg = load_config(preset, config, overrides)
    return execute(
        cfg,
        out=Path(out) if out else None,
        resume=Path(resume) if resume else None,
        extra_activations=extra,
        progress=progress,
        report=report,
        on_start=on_start,
        on_steps=on_steps,
    )
