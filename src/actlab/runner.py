"""A run, top to bottom: config -> trials -> batches -> executor -> store -> report.

`actlab.run(...)` and the `actlab run` command both land in `execute`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from actlab.config import RunConfig, build_config, load_config
from actlab.errors import UserError
from actlab.store import CORE_COLUMNS, RunStore, read_manifest, read_results


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

    def __repr__(self) -> str:
        return f"Run('{self.path}')"


def load(run_dir: str | Path) -> Run:
    path = Path(run_dir)
    read_manifest(path)  # fails clearly if it is not a run
    return Run(path)


def resolve_activations(specs: Iterable[Any]) -> tuple[list[str], dict[str, Any]]:
    """Specs (names, expressions, NAME=EXPR, module:attr, callables, Activations) ->
    (display names in order, name -> Activation)."""
    from actlab.activations import get_activation, parse_activation_arg

    names, table = [], {}
    for spec in specs:
        act = parse_activation_arg(spec.strip()) if isinstance(spec, str) else get_activation(spec)
        if act.name in table:
            raise UserError(f"activation '{act.name}' is listed twice; list each once")
        names.append(act.name)
        table[act.name] = act
    return names, table


def check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError(
                "--device cuda was given but this machine has no CUDA device; use --device cpu"
            )


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
        cols += [c for c in get_study(name).param_columns if c not in cols]
    return cols


def execute(
    config: RunConfig,
    *,
    out: Path | None = None,
    resume: Path | None = None,
    extra_activations: dict[str, Any] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    report: bool = True,
) -> Run:
    from actlab.executors import batch_cost, choose_executor
    from actlab.plan import balance, plan
    from actlab.studies import get_study
    from actlab.studies.base import RunContext

    names, table = resolve_activations(
        [
            extra_activations[a] if extra_activations and a in extra_activations else a
            for a in config.activations
        ]
    )
    check_device(config.device)
    for study_name in config.studies:
        get_study(study_name).check(config.study(study_name), table)

    if resume is not None:
        # Compare before opening: opening repairs a torn tail, and a refused resume must
        # leave the directory exactly as it was.
        stored_hash = read_manifest(resume)["config_hash"]
        if stored_hash != config.hash():
            raise UserError(
                f"run '{resume}' was made with a different config (hash "
                f"{stored_hash}, this one {config.hash()}); "
                "resume it without changing settings, or start a new run"
            )
        store = RunStore.open(resume)
    else:
        path = out if out is not None else default_run_dir(config)
        store = RunStore.create(
            path, config.model_dump(mode="json"), config.hash(), columns_for(config), config.device
        )

    batches, contexts = [], {}
    for study_name in config.studies:
        study = get_study(study_name)
        study_cfg = config.study(study_name)
        trials = study.trials(study_cfg, names, config.seeds)
        keys = [t.key for t in trials]
        if len(set(keys)) != len(keys):
            raise AssertionError(f"study {study_name} produced duplicate trial keys")
        todo = [t for t in trials if t.key not in store.done]
        batches += plan(
            study,
            todo,
            names,
            config.max_members,
            max_bytes=config.batch_memory_mb * 2**20,
            config=study_cfg,
        )
        contexts[study_name] = RunContext(
            run_seed=config.seed,
            config=study_cfg,
            activations=table,
            device=config.device,
            dtype=config.dtype,
            exact=config.exact,
        )

    executor = choose_executor(config.executor, config.workers, contexts, batches)
    batches = balance(batches, getattr(executor, "workers", 1), batch_cost)
    total = sum(len(b.trials) for b in batches)
    finished = 0
    store.mark("running")
    for batch, per_trial_rows in executor.map(batches, contexts, run_batch):
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
        store.append(batch.keys, rows)
        finished += len(batch.trials)
        if progress is not None:
            progress(finished, total, batch.study)
    store.mark("complete")
    store.write_parquet()
    run = Run(store.path)
    if report:
        from actlab.report.markdown import build_report

        build_report(run, table)
    return run


def run_batch(batch, ctx):
    """Run one batch through its study. A lone trial is run beside a copy of itself (the
    copy's rows are dropped): BLAS multiplies a batch of one matrix with another kernel,
    so a stack of one would round differently from the same trial in any larger batch."""
    from actlab.studies import get_study

    study = get_study(batch.study)
    if len(batch.trials) == 1 and not ctx.exact:
        return study.run(batch.trials * 2, ctx)[:1]
    return study.run(batch.trials, ctx)


def run(
    preset: str | None = None,
    *,
    config: RunConfig | str | Path | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    activations: list[Any] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    report: bool = True,
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
    )
