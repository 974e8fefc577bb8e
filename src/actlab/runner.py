"""A run, top to bottom: config -> trials -> batches -> executor -> store -> report.

`actlab.run(...)`, the `actlab run` command and every study's run (the bench, a search's
rungs) land in `execute`, four steps read top to bottom:
  1. prepare      resolve and check everything (preflight.py), list the trials, plan the
                  batches: a bad run is refused here, before anything is written;
  2. open_store   a new run directory, or the stored one after its settings' hash check;
  3. compute      the batches not yet stored, on the executor, each stored as it comes;
  4. finish       complete, parquet, the report (or only the verdicts), the timings.

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
from actlab.preflight import check_device, check_learnable, check_memory
from actlab.provenance import provenance
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


@dataclass
class Prepared:
    """A run checked and planned, nothing written yet (`prepare`)."""

    config: RunConfig
    names: list[str]
    table: dict[str, Any]  # name -> Activation
    given: dict[str, Any]  # the callables given by the caller, by name
    trials_by_study: dict[str, list]
    contexts: dict[str, Any]  # study -> RunContext
    signatures: dict[str, Any]  # name -> learnable signature (stacks never mix them)

    @property
    def all_keys(self) -> set[str]:
        return {t.key for trials in self.trials_by_study.values() for t in trials}

    def planned(self, done: set[str]) -> list:
        """The batches of every trial not in `done`, study by study."""
        from actlab.plan import plan
        from actlab.studies import get_study

        config, batches = self.config, []
        for study_name, trials in self.trials_by_study.items():
            batches += plan(
                get_study(study_name),
                [t for t in trials if t.key not in done],
                self.names,
                config.max_members,
                max_bytes=config.batch_memory_mb * 2**20,
                config=config.study(study_name),
                signatures=self.signatures,
            )
        return batches


def prepare(
    config: RunConfig, resume: Path | None, extra_activations: dict[str, Any] | None
) -> Prepared:
    """Resolve the activations, check them, the device and each study's settings, list the
    trials and plan the batches: everything that can refuse the run does so here, before
    anything is written."""
    from actlab.activations import resolve_activations
    from actlab.executors import choose_executor
    from actlab.recipes import rebuild
    from actlab.studies import get_study
    from actlab.studies.base import RunContext

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
        study_cfg = config.study(study_name)
        trials = get_study(study_name).trials(study_cfg, names, config.seeds)
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
    signatures = {
        name: act.learnable.signature() if act.learnable is not None else None
        for name, act in table.items()
    }
    prepared = Prepared(config, names, table, given, trials_by_study, contexts, signatures)
    everything = prepared.planned(set())
    check_memory(
        config,
        everything,
        choose_executor(config.executor, config.workers, contexts, everything, config.address),
    )
    return prepared


def open_store(prepared: Prepared, out: Path | None, resume: Path | None) -> RunStore:
    """The run directory: the stored one (after its settings' hash is checked; each resume
    recorded), or a new one with the manifest, provenance and recipes of callables."""
    from actlab.recipes import recipes_for

    config = prepared.config
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
        recipes = recipes_for(prepared.table, prepared.given)
        if recipes:
            store.manifest["activation_recipes"] = recipes
        store.save()
    return store


def schedule(prepared: Prepared, store: RunStore):
    """(batches in the order they run, the executor for the shared ones): the batches not
    yet stored, balanced over the workers, study by study; studies that time things run
    alone, in this process, after the parallel work."""
    from actlab.executors import batch_cost, choose_executor
    from actlab.plan import balance, study_major
    from actlab.studies import get_study

    config = prepared.config
    batches = prepared.planned(store.done)
    alone = [b for b in batches if get_study(b.study).exclusive]
    shared = [b for b in batches if not get_study(b.study).exclusive]
    executor = choose_executor(
        config.executor, config.workers, prepared.contexts, shared, config.address
    )
    shared = balance(shared, getattr(executor, "workers", 1), batch_cost)
    shared = study_major(shared, batch_cost)
    return shared, alone, executor


def run_start(prepared: Prepared, store: RunStore, batches, executor, resumed, report):
    """What `on_start` is told: the trials to compute and their cost per study."""
    from actlab.executors import batch_cost

    work: dict[str, tuple[int, float]] = {}
    for b in batches:
        n, cost = work.get(b.study, (0, 0.0))
        work[b.study] = (n + len(b.trials), cost + batch_cost(b))
    return RunStart(
        store.path,
        sum(len(b.trials) for b in batches),
        len(store.done & prepared.all_keys),
        resumed,
        work,
        workers=getattr(executor, "workers", 1),
        report=report,
    )


def compute(
    prepared: Prepared,
    store: RunStore,
    shared: list,
    alone: list,
    executor,
    builder,
    timings,
    progress: Callable[[int, int, str], None] | None,
    on_steps: Callable[[dict[str, float]], None] | None,
) -> tuple[int, int]:
    """Run the batches (the shared ones on the executor, then the alone ones here) and
    store each as it comes, with the trial's identity on every row; (trials stored, total).
    A study whose last batch is stored has its report part built while others compute."""
    from actlab.executors import LocalExecutor

    batches = shared + alone
    total = sum(len(b.trials) for b in batches)
    finished = 0
    delay = _test_delay("ACTLAB_TEST_BATCH_DELAY")
    unstored = {}  # batches not yet stored, per study: a study at 0 is complete
    for batch in batches:
        unstored[batch.study] = unstored.get(batch.study, 0) + 1
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
        executor.map(shared, prepared.contexts, timed_batch, on_steps=steps),
        LocalExecutor().map(alone, prepared.contexts, timed_batch, on_steps=steps),
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
            if builder.pool is not None:
                if unstored[batch.study] == 0 and finished < total:
                    # Its part is built while the other studies compute.
                    builder.stored(batch.study, lambda: read_results(store.path))
                builder.poll()
            if on_steps is not None and flying.pop(id(batch), None) is not None:
                on_steps(in_flight())  # the stored batch's work now counts as done
            if progress is not None:
                progress(finished, total, batch.study)
    return finished, total


def finish(
    prepared: Prepared,
    store: RunStore,
    builder,
    timings,
    *,
    report: bool,
    verdicts: bool,
    announce: Callable[[], None] | None,
) -> Run:
    """Mark the run complete, write the results as parquet, then the report (or only the
    verdicts) and the timings."""
    with timings.phase("store"):
        store.mark("complete")
        stored = read_results(store.path)  # read once: for parquet and the report
        store.write_parquet(stored)
    run = Run(store.path)
    if report:
        from actlab.report.pipeline import build_report

        if announce is not None:
            announce()
        with timings.phase("report"):
            build_report(
                run, prepared.table, results=stored, builder=builder, timings=timings.report
            )
    elif verdicts:  # the verdicts are data, not report: written either way
        from actlab.report.pipeline import write_verdicts

        with timings.phase("verdicts"):
            write_verdicts(run, prepared.table, results=stored, builder=builder)
    timings.early_parts = list(builder.early)
    timings.save(store.path)
    return run


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
    """A run in four steps: prepare (refuses a bad run before anything is written), open
    the store, compute, finish.

    `progress(done, total, what)` is called as batches are stored (`what`: the study)
    and once more when the report is being written (`what`: "writing the report").
    `on_start(RunStart)` is called once, before the first trial is computed.
    `on_steps(in_flight)` is called while batches train, a few times a second, and again
    before `progress` when one is stored: per study, the trials' worth of training done in
    the batches not yet stored (half of a batch of 64 counts 32; the process pool and the
    local executor report within a batch, Ray per batch only).
    Without a report, verdicts.csv is still written unless `verdicts` is False (a search's
    rungs: their numbers are read by the search, which states its own verdicts)."""
    from actlab.executors import may_use_pool, report_pool, start_fork_server
    from actlab.timing import Timings

    timings = Timings()
    started = time.perf_counter()
    if may_use_pool(config):
        start_fork_server()  # it imports torch while this process does the same
    # 1. prepare: checks, trials, plan; nothing written
    prepared = prepare(config, resume, extra_activations)
    # 2. open the store: a new run directory, or the stored one after its hash check
    store = open_store(prepared, out, resume)
    pool = None
    try:
        # 3. compute the batches not yet stored, storing each as it comes
        shared, alone, executor = schedule(prepared, store)
        if on_start is not None:
            on_start(
                run_start(prepared, store, shared + alone, executor, resume is not None, report)
            )
        store.mark("running")
        if getattr(executor, "name", None) == "process" and (report or verdicts):
            # The report's parts are built beside the compute, in workers of their own
            # (a run too small for the process pool writes its report in this process).
            # One worker: the parts come one study at a time while the compute holds the
            # cores, and at the end this process draws the summary sheet beside it.
            pool = report_pool(1, draws=report)
            threading.Thread(target=warm_report_imports, args=(report,), daemon=True).start()
        from actlab.report.parts import PartBuilder

        builder = PartBuilder(
            config, prepared.table, store.path / "figures" if report else None, pool
        )
        timings.phases["plan"] = time.perf_counter() - started
        compute_started = time.perf_counter()
        finished, total = compute(
            prepared, store, shared, alone, executor, builder, timings, progress, on_steps
        )
        timings.phases["compute"] = time.perf_counter() - compute_started
        # 4. finish: complete, parquet, the report or the verdicts, the timings
        announce = None
        if progress is not None:
            announce = lambda: progress(finished, total, "writing the report")  # noqa: E731
        run = finish(
            prepared, store, builder, timings, report=report, verdicts=verdicts, announce=announce
        )
    except KeyboardInterrupt:
        if store.manifest.get("status") != "complete":
            store.mark("interrupted")
        all_keys = prepared.all_keys
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
