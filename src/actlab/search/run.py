"""A search, top to bottom: select -> rungs -> confirm -> leaderboard -> transfer -> report.

The search directory:
  search.json       settings, hash, status, the funnel's counts, the seeds used
  candidates.csv    every candidate that entered the first rung (name, expression)
  drops.csv         every expression dropped before training, with its reason
  rungs/rung-N/     each rung: an ordinary actlab run (results.csv, manifest.json)
  rungs.csv         each rung's score of each candidate and control, and who went on
  confirm/ARCH/     the confirmation runs: finalists and controls on fresh seeds
  leaderboard.csv   the confirmed ranking (see confirm.py)
  nearest.csv       each new finalist's nearest built-in and the paired test (nearest.py)
  transfer/         the transfer run: finalists and nearest built-ins on other tasks
  transfer.csv      its table (see transfer.py)
  finalists.txt     NAME=EXPR lines for --activations and `actlab profile`
  report.md, report.html, figures/

Resuming: each step's output is written once, atomically, and each run directory resumes
like `actlab run --resume`; a killed search re-reads what is done and goes on, to the same
leaderboard (the engine's fast mode is batch-invariant, so how batches were cut does not
change a number).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actlab.rundir import write_atomic
from actlab.search.config import SearchConfig, build, search_config
from actlab.search.directory import (
    CANDIDATE_COLUMNS,
    DROP_COLUMNS,
    Search,
    SearchDir,
    csv_text,
    read_candidates,
    stored_settings,
)
from actlab.search.halving import Rung, RungResult, successive_halving
from actlab.search.space import Candidate


class SearchInterrupted(KeyboardInterrupt):
    def __init__(self, path: Path) -> None:
        super().__init__(f"search interrupted; continue with: actlab search --resume {path}")
        self.path = path


# -- step 1: the candidates ----------------------------------------------------------------
def chosen(config: SearchConfig):
    """The space screened before training (select.py), timed."""
    from actlab.search.select import select

    start = time.perf_counter()
    selection = select(config, config.controls)
    return selection, round(time.perf_counter() - start, 2)


def write_selection(store: SearchDir, selection, seconds: float) -> None:
    write_atomic(
        store.path / "drops.csv", csv_text([d.__dict__ for d in selection.drops], DROP_COLUMNS)
    )
    store.manifest["funnel"] = {
        "space": selection.space_size,
        "examined": selection.examined,
        "dropped": selection.drop_counts(),
        "entered": len(selection.kept),
        "seconds": seconds,
    }
    store.save()
    kept = [c.__dict__ for c in selection.kept]
    # Last: its presence marks the step done.
    write_atomic(store.path / "candidates.csv", csv_text(kept, CANDIDATE_COLUMNS))


# -- step 2: the rungs -----------------------------------------------------------------------
RUNG_COLUMNS = ["rung", "steps", "seeds", "name", "kind", "score", "rank", "went_on"]


def rungs_of(config: SearchConfig) -> list[Rung]:
    return [Rung(s, n) for s, n in zip(config.rung_steps, config.rung_seeds, strict=True)]


def screen(
    store: SearchDir,
    config: SearchConfig,
    candidates: list[Candidate],
    say: Callable[[str], None],
    progress: Callable | None,
    on_start: Callable | None = None,
    on_steps: Callable | None = None,
) -> list[RungResult]:
    from actlab.search.proxy import mean_scores, run_config, run_or_resume

    spec_of = {c.name: c.spec for c in candidates}
    spec_of.update({c: c for c in (*config.controls, *config.known_racers())})
    rungs = rungs_of(config)
    timing = store.manifest.setdefault("rung_seconds", {})

    known = set(config.known_racers())

    def score(index: int, rung: Rung, names: list[str]) -> dict[str, float]:
        entering = [n for n in names if n not in config.controls]
        racing = sum(n in known for n in entering)
        header = (
            f"rung {index + 1} of {len(rungs)}: {len(entering) - racing} candidates, "
            f"{racing} known activations and {len(config.controls)} controls x "
            f"{rung.seeds} seed(s) x {rung.steps} steps"
        )
        path = store.path / "rungs" / f"rung-{index}"
        cfg = run_config(
            config,
            [spec_of[n] for n in names],
            architecture=config.proxy,
            steps=rung.steps,
            seeds=rung.seeds,
            confirm=False,
        )
        start = time.perf_counter()
        fresh = not (path / "manifest.json").exists()
        run = run_or_resume(
            cfg, path, progress, header=header, say=say, on_start=on_start, on_steps=on_steps
        )
        if fresh:  # the time of a rung run from its start; a resumed one is not timed
            timing[str(index)] = round(time.perf_counter() - start, 2)
            store.save()
        return mean_scores(run)

    results = successive_halving(
        [c.name for c in candidates],
        rungs,
        score,
        controls=config.controls,
        eta=config.eta,
        keep=config.finalists,
    )
    write_atomic(store.path / "rungs.csv", csv_text(rung_rows(results, config), RUNG_COLUMNS))
    return results


def rung_rows(results: list[RungResult], config: SearchConfig) -> list[dict[str, Any]]:
    from actlab.search.halving import ranked

    rows = []
    for r in results:
        order = {n: i + 1 for i, n in enumerate(ranked(r.scores))}
        went_on = set(r.survivors)
        known = set(config.known_racers())
        for name, value in r.scores.items():
            control = name in config.controls
            rows.append(
                {
                    "rung": r.rung,
                    "steps": r.spec.steps,
                    "seeds": r.spec.seeds,
                    "name": name,
                    "kind": "control" if control else "known" if name in known else "candidate",
                    "score": value,
                    "rank": order[name],
                    "went_on": "" if control else int(name in went_on),
                }
            )
    return rows


# -- the whole search ------------------------------------------------------------------------
def execute(
    config: SearchConfig,
    *,
    out: Path | None = None,
    resume: Path | None = None,
    say: Callable[[str], None] | None = None,
    progress: Callable | None = None,
    report: bool = True,
    on_start: Callable | None = None,
    on_steps: Callable | None = None,
) -> Search:
    """`say(line)` is told each step (a rung: its size and about how long it takes);
    `progress`, `on_start` and `on_steps` are passed to each rung's and confirmation's
    run (runner.execute)."""
    from actlab.activations import get_activation
    from actlab.search.confirm import confirm, write_leaderboard, write_nearest
    from actlab.search.space import read_space

    say = say or (lambda message: None)
    for control in config.controls:
        get_activation(control)  # an unknown control fails before anything is written
    if config.space != "default":
        read_space(config.space)  # so does a bad space file
    selection = None
    if resume is not None:
        store = SearchDir.open(resume)
        store.check_unchanged(config)
    else:
        path = out if out is not None else default_dir(config)
        SearchDir.check_free(path)
        # Before the directory is made: a space with nothing to train is refused untouched.
        selection = chosen(config)
        store = SearchDir.create(path, config)
    try:
        store.mark("running")
        say(f"search directory: {store.path}")
        candidates = read_candidates(store.path)
        if candidates is None:
            selection = selection or chosen(config)
            write_selection(store, *selection)
            candidates = selection[0].kept
        funnel = store.manifest["funnel"]
        say(
            f"{funnel['entered']} candidates enter the first rung "
            f"({funnel['examined']} of {funnel['space']} expressions examined, "
            f"{sum(funnel['dropped'].values())} dropped before training)"
        )
        # The known activations race beside the candidates, through the same rungs.
        racers = candidates + [Candidate(k, k) for k in config.known_racers()]
        results = screen(store, config, racers, say, progress, on_start, on_steps)
        finalists = list(results[-1].survivors)
        by_name = {c.name: c for c in racers}
        # 4. each new finalist held against the built-ins: the nearest in shape joins the
        # confirmation, on the same seeds (search/nearest.py)
        new = [by_name[n] for n in finalists if n not in config.known_racers()]
        fits = nearest_fits(new, config)
        known = [
            k
            for k in dict.fromkeys(f.known for f in fits.values())
            if k not in config.controls and k not in finalists
        ]
        say(
            f"confirming {len(finalists)} finalists, {len(config.controls)} controls and "
            f"{len(known)} known activations nearest the finalists"
        )
        confirmed = confirm(
            store.path,
            config,
            [by_name[n] for n in finalists],
            say,
            progress,
            on_start,
            on_steps,
            known=known,
        )
        board = write_leaderboard(store.path, config, results, by_name, confirmed, known)
        write_nearest(store.path, fits, confirmed[config.proxy])
        # 5. does it transfer: the finalists and their nearest built-ins on tasks the
        # search never saw (search/transfer.py)
        if config.transfer_seeds:
            from actlab.search.transfer import run_transfer

            relatives = {name: fit.known for name, fit in fits.items()}
            run_transfer(store.path, config, board, relatives, say, progress, on_start, on_steps)
        # Complete before the report, which shows the manifest: `actlab report` then
        # rebuilds the same page. A search killed while drawing resumes to the report.
        store.mark("complete")
        if report:
            from actlab.search.report import write_report

            say("writing the report")
            write_report(Search(store.path), board)
    except KeyboardInterrupt:
        store.mark("interrupted")
        raise SearchInterrupted(store.path) from None
    return Search(store.path)


def nearest_fits(finalists: list[Candidate], config: SearchConfig) -> dict:
    """Finalist name -> its nearest built-in (nearest.Fit), on the range the proxy's
    pre-activations occupy at initialisation."""
    from actlab.search.nearest import fit_range, fixed_builtins, nearest_known
    from actlab.search.screen import function_of
    from actlab.search.select import proxy_init

    x = fit_range(proxy_init(config))
    known = fixed_builtins()
    return {c.name: nearest_known(function_of(c.expression), known, x)[0] for c in finalists}


def default_dir(config: SearchConfig, root: Path = Path("runs")) -> Path:
    from datetime import datetime

    base = root / f"search-{config.preset or 'custom'}-{datetime.now():%Y%m%d-%H%M%S}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def search(
    preset: str | None = None,
    *,
    config: str | Path | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    say: Callable[[str], None] | None = None,
    progress: Callable | None = None,
    report: bool = True,
    on_start: Callable | None = None,
    on_steps: Callable | None = None,
    **overrides: Any,
) -> Search:
    """Search for activation functions; returns the Search (its directory and leaderboard).

    >>> search("quick", out="runs/my-search")

    `config`: a TOML file of settings (SearchConfig's names) over the preset's. `say`,
    `progress`, `on_start` and `on_steps`: what the command line's progress is told
    (execute above, runner.execute).
    """
    if resume is not None:
        stored = stored_settings(SearchDir.open(Path(resume)).manifest)
        changed = {k: v for k, v in overrides.items() if v is not None}
        if preset is not None:
            changed["preset"] = preset
        settings = build({**stored, **changed}, source=f"search '{resume}'")
    else:
        settings = search_config(preset, config, **overrides)
    return execute(
        settings,
        out=Path(out) if out else None,
        resume=Path(resume) if resume else None,
        say=say,
        progress=progress,
        report=report,
        on_start=on_start,
        on_steps=on_steps,
    )
