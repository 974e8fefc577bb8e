"""A report in parts: each study's part needs only that study's results, so the parts are
built side by side in worker processes, then the cross-study pieces follow.

A study's part is its summary (`Study.summarize`, run once) with its verdict rows
(`report/verdicts.py`), then its figures, section and claims (`Study.report`,
`Study.claims`), drawn in a second job so that the last study's figures are drawn beside
the summary sheet. Verdicts are
ranked property by property, so a study's rows are the same whether it is ranked alone or
with the others; the parts' rows, joined in the run's study order, are `verdicts.csv`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actlab.studies.base import ReportContext


@dataclass
class StudyPart:
    name: str
    summary: Any
    verdict_rows: list[dict[str, Any]]
    specs: dict[str, Any]  # property name -> PropertySpec
    claims: list[Any] = field(default_factory=list)  # studies.base.Claim
    scores: Any = None  # Study.properties: per property, activation, seed and setting
    section: dict[str, Any] | None = None  # title, anchor, markdown, figures (when drawn)
    seconds: dict[str, float] = field(default_factory=dict)  # summary, figures, verdicts


def anchor(title: str) -> str:
    """GitHub-style heading anchor."""
    import re

    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def summarize_part(name: str, results, rctx: ReportContext) -> StudyPart:
    """A study's summary and verdict rows, from its rows of the results."""
    from actlab.report.verdicts import verdict_rows
    from actlab.studies import get_study
    from actlab.studies.base import PROPERTY_COLUMNS

    study = get_study(name)
    clock = time.perf_counter()
    summary = study.summarize(results)
    seconds = {"summary": time.perf_counter() - clock}
    clock = time.perf_counter()
    specs = {spec.name: spec for spec in study.property_specs}
    scores = study.properties(summary, rctx)
    conditions = study.conditions(rctx.config)
    rows = (
        verdict_rows(scores[list(PROPERTY_COLUMNS)], specs, conditions) if not scores.empty else []
    )
    claims = study.claims(summary, rctx)
    seconds["verdicts"] = time.perf_counter() - clock
    return StudyPart(name, summary, rows, specs, claims=claims, scores=scores, seconds=seconds)


def draw_part(name: str, summary, rctx: ReportContext, figure_dir: Path):
    """A study's figures (written into figure_dir) and its report section."""
    from actlab.studies import get_study

    study = get_study(name)
    clock = time.perf_counter()
    drawn = study.report(summary, figure_dir, rctx)
    section = {
        "title": drawn.title,
        "anchor": anchor(drawn.title),
        "markdown": drawn.markdown,
        "figures": drawn.figures,
    }
    return section, time.perf_counter() - clock


def report_contexts(config, activations: dict[str, Any], studies) -> dict[str, ReportContext]:
    return {
        name: ReportContext(
            seeds=config.seeds,
            activations=list(activations),
            config=config.study(name),
            specs=activations,
        )
        for name in studies
    }


def as_final(results, config) -> Any:
    """Results read mid-run, typed as the final read will type them where that is
    foreseeable: a whole-number column that some study of the run does not fill (not in
    its parameter columns) will hold empty cells at the end, so it reads as float then."""
    from actlab.store import CORE_COLUMNS
    from actlab.studies import get_study

    declared = [
        set(CORE_COLUMNS) | set(get_study(s).columns(config.study(s))) for s in config.studies
    ]
    cast = [
        c
        for c in results.columns
        if results[c].dtype == "int64" and not all(c in d for d in declared)
    ]
    return results.astype({c: "float64" for c in cast}) if cast else results


def same_rows(early, final) -> bool:
    """Whether a study's rows read before the run ended are the rows read at its end:
    the same positions and values, and the same types, except in columns empty in both
    (a column of studies not yet stored reads as float, as text once they are)."""
    if list(early.columns) != list(final.columns) or not early.index.equals(final.index):
        return False
    for column in early.columns:
        a, b = early[column], final[column]
        if a.dtype != b.dtype:
            if a.isna().all() and b.isna().all():
                continue
            return False
        if not a.equals(b):
            return False
    return True


class PartBuilder:
    """The studies' parts, built in `pool` (or here, without one) as the run goes on.

    `stored(name, read)` when a study's last batch is stored (`read()`: the committed
    results then): every study whose rows, and the rows of the studies it `reads`, are all
    stored gets its part started. `summaries(results)` at the end, with the final results:
    a part started early is kept only if its rows are the final ones (`same_rows`), and
    every study without a part gets one now; `drawn(parts)` then draws what is left and
    waits for the figures. With `figure_dir` None only summaries and verdicts are built (a
    run without report)."""

    def __init__(self, config, activations: dict[str, Any], figure_dir: Path | None, pool=None):
        from actlab.studies import get_study

        self.config, self.figure_dir, self.pool = config, figure_dir, pool
        self.contexts = report_contexts(config, activations, config.studies)
        self.needs = {
            name: [name] + [s for s in get_study(name).reads if s in config.studies]
            for name in config.studies
        }
        self.complete: set[str] = set()
        self.rows: dict[str, Any] = {}
        self.summary_jobs: dict[str, Any] = {}
        self.drawings: dict[str, Any] = {}
        self.early: list[str] = []  # started by stored() and kept by summaries()

    def stored(self, name: str, read: Callable[[], Any]) -> None:
        self.complete.add(name)
        ready = [
            n
            for n in self.config.studies
            if n not in self.summary_jobs and all(s in self.complete for s in self.needs[n])
        ]
        if ready:
            results = as_final(read(), self.config)
            for n in ready:
                self.start(n, results)
                self.early.append(n)
        self.poll()

    def start(self, name: str, results) -> None:
        rows = results[results["study"].isin(self.needs[name])]
        if not (rows["study"] == name).any():
            return
        self.rows[name] = rows
        self.summary_jobs[name] = run_beside(
            self.pool, summarize_part, name, rows, self.contexts[name]
        )

    def poll(self, wait: bool = False) -> None:
        """Start the drawing of every study whose summary is ready (all, with `wait`)."""
        if self.figure_dir is None:
            return
        for name, job in self.summary_jobs.items():
            if name in self.drawings or not (wait or is_done(job)):
                continue
            part = job.result()
            self.drawings[name] = run_beside(
                self.pool, draw_part, name, part.summary, self.contexts[name], self.figure_dir
            )

    def summaries(self, results) -> dict[str, StudyPart]:
        present = set(results["study"].unique())
        for name in list(self.rows):
            final = results[results["study"].isin(self.needs[name])]
            if name not in present or not same_rows(self.rows[name], final):
                self._forget(name)
                self.early = [n for n in self.early if n != name]
        names = [name for name in self.config.studies if name in present]
        sizes = results["study"].value_counts()
        for name in sorted(names, key=lambda n: sizes[n], reverse=True):
            if name not in self.summary_jobs:
                self.start(name, results)
        return {name: self.summary_jobs[name].result() for name in names}

    def drawn(self, parts: dict[str, StudyPart]) -> dict[str, StudyPart]:
        self.poll(wait=True)
        for name, part in parts.items():
            part.section, part.seconds["figures"] = self.drawings[name].result()
        return parts

    def _forget(self, name: str) -> None:
        for jobs in (self.summary_jobs, self.drawings):
            job = jobs.pop(name, None)
            if job is not None:
                job.result()  # let it finish: a new drawing overwrites its files
        del self.rows[name]


def is_done(job) -> bool:
    return job.done() if hasattr(job, "done") else True


def run_beside(pool: Executor | None, fn: Callable, *args):
    """fn(*args) in the pool if there is one (returns a future), else now (returns a
    finished stand-in with the same .result())."""
    if pool is not None:
        return pool.submit(fn, *args)
    return _Done(fn(*args))


class _Done:
    def __init__(self, value: Any) -> None:
        self.value = value

    def done(self) -> bool:
        return True

    def result(self) -> Any:
        return self.value
