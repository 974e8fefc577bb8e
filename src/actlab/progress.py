"""Progress of long work on stderr: a bar on a terminal, plain timed lines elsewhere.

Used by the `actlab` command (cli.py) for runs, profiles and searches; the runner reports
to it through its `progress`, `on_start` and `on_steps` callbacks (`on_steps`: how far the
batches still training have got, so the bar moves within a batch).
"""

from __future__ import annotations

import os
import sys
import threading
import time

import typer

PROGRESS_INTERVAL = 30.0
WRITING_REPORT = "writing the report"  # the runner's `what` once every trial is stored
# The ETA weighs each trial by its planned work (Study.trial_cost, about 7.5e9 units a
# second on one core: executors.POOL_THRESHOLD) plus this much for what every trial costs
# whatever its size (set-up, its share of stacking and storing: about 0.05 s), so tiny
# trials of a cheap study are not counted as no work at all.
TRIAL_OVERHEAD = 4e8
# The up-front estimate (`planned_seconds`): planned work per worker-second, measured on the
# sound preset (its 1408 trials, 4.7e12 units with the overhead above, computed in about
# 185 s on two workers: `python -m benchmarks.main_job --no-tutorial` at 1541dde, 192.4 s
# in all), and what start-up and each study's report part add when they do not overlap the
# compute (the quick preset: 22 s in all for 3 s of compute).
WORK_PER_SECOND = 1.25e10
START_SECONDS = 3.0
REPORT_SECONDS_PER_STUDY = 3.0
# The share of a stage's planned work the batches still training must have done (with none
# stored yet) before the ETA comes from the measured rate rather than from the plan.
MEASURED_FRACTION = 0.02


def progress_interval() -> float:
    try:
        return max(float(os.environ.get("ACTLAB_PROGRESS_INTERVAL", PROGRESS_INTERVAL)), 0.0)
    except ValueError:
        return PROGRESS_INTERVAL


def compute_seconds(info) -> float:
    """About how long a run's trials take (start-up included), from its plan."""
    work = sum(cost + n * TRIAL_OVERHEAD for n, cost in info.work.values())
    return START_SECONDS + work / (WORK_PER_SECOND * max(info.workers, 1))


def planned_seconds(info) -> float:
    """About how long a run takes, from its plan (runner.RunStart), before it starts."""
    report = REPORT_SECONDS_PER_STUDY * len(info.work) if info.report else 0.0
    return compute_seconds(info) + report


def about(seconds: float) -> str:
    """'about 20 s', 'about 3 min', 'about 1 h 40 min': as rough as the estimate is."""
    if seconds < 60:
        return f"about {max(5, round(seconds / 5) * 5)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60:02d} min"


def plural_workers(info) -> str:
    return "1 worker" if info.workers == 1 else f"{info.workers} workers"


def clock(seconds: float) -> str:
    """0:42, 12:05, 1:02:03."""
    s = int(round(max(seconds, 0.0)))
    hours, rest = divmod(s, 3600)
    minutes, s = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{s:02d}" if hours else f"{minutes}:{s:02d}"


class Progress:
    """Progress of long work, on stderr.

    On a terminal: a rich bar (trials, elapsed, ETA) that gives way to a "writing the
    report" step once every trial is stored. Otherwise (a log, nohup, CI) plain lines: the
    run directory at the start, then 'actlab: 120/480 trials (25%), 0:42 elapsed, eta 2:06'
    at each study's end and at least every PROGRESS_INTERVAL seconds, "writing the report",
    and the time it all took. The ETA comes from the planned work of the trials (the
    runner's Study.trial_cost per study) when the run tells it (`start`), else from trial
    counts; the work done counts the stored trials and the share trained of the batches
    still training (`steps`).

    `announce=False` (a search, which says its own line per rung): `start` takes the plan
    and prints nothing."""

    def __init__(self, report: bool = True, announce: bool = True) -> None:
        self.tty = sys.stderr.isatty()
        self.interval = progress_interval()
        self.report = report
        self.announce = announce
        self.lock = threading.RLock()
        self.bar = None
        self.task = None
        self.began = time.monotonic()  # the command's start: "finished in"
        self.info = None  # the runner's RunStart
        self.stopped = threading.Event()
        self.ticker: threading.Thread | None = None
        self.last_line = self.began  # the first line within an interval of the start
        self.stage()

    def stage(self) -> None:
        """Counters of one stage of work (a run, or a search's rung)."""
        self.started = time.monotonic()
        self.done = self.total = 0
        self.work_done = 0.0
        self.flying_work = self.flying_trials = 0.0  # batches not yet stored: what is trained
        self.unit: dict[str, float] = {}  # planned work of one trial, per study
        self.left: dict[str, int] = {}  # trials not yet stored, per study, when told
        self.work_total: float | None = None
        self.study: str | None = None
        self.finish_at: float | None = None  # predicted end (monotonic), from the last update
        self.planned = False  # finish_at is the plan's, not measured
        self.writing: float | None = None  # when the report began, once it has

    # -- the runner's callbacks ---------------------------------------------------------------
    def start(self, info) -> None:
        """The run's directory and plan (runner.RunStart), before its first trial."""
        with self.lock:
            self.stage()
            self.info = info
            self.total = info.to_run
            self.left = {study: n for study, (n, _) in info.work.items()}
            units = {
                study: cost / n + TRIAL_OVERHEAD
                for study, (n, cost) in info.work.items()
                if n and cost > 0
            }
            if len(units) == len(info.work) and units:
                self.unit = units
                self.work_total = sum(n * units[s] for s, (n, _) in info.work.items())
                self.predict(self.started)  # the plan's estimate until work is measured
            if self.announce:
                self.announce_run(info)
            if self.tty and info.to_run:
                self.draw(next(iter(info.work), ""))  # the bar from the start, with the plan

    def announce_run(self, info) -> None:
        """The run's first line: its directory, and about how long it will take."""
        if info.resumed and info.to_run == 0:
            return  # said at the end (finish), with what was done
        if info.resumed:
            whole = info.stored + info.to_run
            self.say_line(
                f"actlab: resuming run '{info.path}': {info.stored} of {whole} trials "
                f"stored, {info.to_run} to run"
            )
        else:
            studies = ", ".join(info.work)
            self.say_line(
                f"actlab: run directory {info.path}; {info.to_run} trials to run "
                f"({studies}), {about(planned_seconds(info))} on {plural_workers(info)} "
                "(estimated from the planned work)"
            )

    def update(self, done: int, total: int, what: str) -> None:
        with self.lock:
            if what == WRITING_REPORT:
                self.writing_report()
                return
            if done < self.done or (self.total and total != self.total):
                self.stage()  # a new stage of a search: its own counts
            now = time.monotonic()
            step = done - self.done
            self.work_done += step * (self.unit.get(what, 1.0) if self.unit else 1.0)
            if what in self.left:  # a study's last trial stored: its end
                self.left[what] -= step
                boundary = self.left[what] <= 0
            else:  # no plan told: the next study's first batch ends the one before
                boundary = self.study is not None and what != self.study
            self.done, self.total, self.study = done, total, what
            self.predict(now)
            if self.tty:
                self.draw(what)
            elif boundary or done >= total or now - self.last_line >= self.interval:
                self.say_line(self.line())

    def steps(self, in_flight: dict[str, float]) -> None:
        """The runner's `on_steps`: per study, the trials' worth of training done in the
        batches not yet stored. The work done, the ETA and the bar move with it; a log
        gets its line from the ticker, at the usual interval (not here: a batch leaves the
        flight just before its `update`, and a line between the two would miss it)."""
        with self.lock:
            if self.writing is not None or not self.total:
                return
            self.flying_trials = sum(in_flight.values())
            self.flying_work = sum(n * self.unit.get(study, 1.0) for study, n in in_flight.items())
            self.predict(time.monotonic())
            if self.tty:
                self.draw(self.study or next(iter(in_flight), ""))

    def say(self, message: str) -> None:
        """A stage of long work, one line on stderr (kept in logs); a new bar after it."""
        with self.lock:
            self.say_line(message)
            if self.bar is not None and self.task is not None:
                self.bar.remove_task(self.task)
                self.task = None
            self.stage()

    def finish(self) -> None:
        """The end of a run: how long it took (in a log), or what a resume of a finished
        run did (anywhere)."""
        info = self.info
        if info is not None and info.resumed and info.to_run == 0:
            did = "nothing to compute; the report was rebuilt" if self.report else "nothing to do"
            typer.echo(
                f"actlab: run '{info.path}' is already complete ({info.stored} trials "
                f"stored); {did}",
                err=True,
            )
        elif not self.tty and info is not None:
            typer.echo(f"actlab: finished in {clock(time.monotonic() - self.began)}", err=True)

    # -- lines --------------------------------------------------------------------------------
    def predict(self, now: float) -> None:
        """The predicted end: from the rate so far once a batch is stored or the batches
        training have done MEASURED_FRACTION of the work (before that, a few step reports
        after the workers' start say little), else from the plan, else unknown."""
        fraction = self.fraction()
        self.planned = False
        if fraction > 0 and (self.done or fraction >= MEASURED_FRACTION):
            self.finish_at = now + (now - self.started) * (1 - fraction) / fraction
        elif self.info is not None and self.unit:
            self.finish_at = self.started + compute_seconds(self.info)
            self.planned = True

    def fraction(self) -> float:
        """The share of this stage's work done (the stored trials and what the batches
        still training have done): planned work where known, else trials."""
        if self.work_total:
            return min((self.work_done + self.flying_work) / self.work_total, 1.0)
        return min((self.done + self.flying_trials) / self.total, 1.0) if self.total else 0.0

    def eta(self) -> str:
        if self.total and self.done >= self.total:
            return "0:00"
        left = None if self.finish_at is None else self.finish_at - time.monotonic()
        if left is None or (self.planned and left <= 0):  # past the plan's estimate
            return "unknown"
        return clock(left)

    def line(self) -> str:
        """'actlab: 120/480 trials (25%), 0:42 elapsed, eta 2:06'."""
        share = round(100 * self.done / self.total) if self.total else 0
        percent = f"{share}%"
        if self.work_total:
            work = round(100 * self.fraction())
            if abs(work - share) >= 5:
                percent += f" of the trials, {work}% of the planned work"
        elapsed = clock(time.monotonic() - self.started)
        return (
            f"actlab: {self.done}/{self.total} trials ({percent}), {elapsed} elapsed, "
            f"eta {self.eta()}"
        )

    def say_line(self, text: str) -> None:
        if self.bar is not None:
            from rich.text import Text

            # A Text, not markup=False: that option would also reach the bar redrawn below
            # the line, whose columns are markup ("[progress.description]..." shown raw).
            self.bar.console.print(Text(text), highlight=False)
        else:
            typer.echo(text, err=True)
        self.last_line = time.monotonic()

    def writing_report(self) -> None:
        self.writing = time.monotonic()
        done = f"{self.done}/{self.total} trials stored in {clock(self.writing - self.started)}"
        rebuild = self.info is not None and self.info.resumed and self.info.to_run == 0
        if not rebuild:  # a finished run's rebuild is told in one line at the end
            self.say_line(f"actlab: {done}; {WRITING_REPORT}")
        if self.tty and self.bar is not None:
            if self.task is not None:
                self.bar.remove_task(self.task)
            # A pulsing bar with its clock: the report's step is visibly under way.
            self.task = self.bar.add_task(
                WRITING_REPORT, total=None, trials="", finish=None, planned=False
            )

    def tick(self) -> None:
        """A line at least every `interval` seconds while nothing else is said (a log)."""
        wait = min(self.interval, 5.0)
        while not self.stopped.wait(wait):
            with self.lock:
                if time.monotonic() - self.last_line < self.interval:
                    continue
                if self.writing is not None:
                    spent = clock(time.monotonic() - self.writing)
                    self.say_line(f"actlab: {WRITING_REPORT}, {spent} so far")
                elif self.info is not None or self.total:
                    self.say_line(self.line())

    # -- the terminal's bar -------------------------------------------------------------------
    def draw(self, what: str) -> None:
        if self.bar is None:
            return
        trials = f"{self.done}/{self.total}"
        finish = 0.0 if self.total and self.done >= self.total else self.finish_at
        total = self.work_total or self.total
        completed = self.fraction() * total
        fields = {"trials": trials, "finish": finish, "planned": self.planned}
        if self.task is None:
            self.task = self.bar.add_task(what, total=total, **fields)
        self.bar.update(self.task, completed=completed, total=total, description=what, **fields)

    def __enter__(self):
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                ProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.text import Text

            class Eta(ProgressColumn):
                """The time left, counting down from the last update's prediction."""

                def render(self, task) -> Text:
                    if task.total is None:
                        return Text("")
                    finish = task.fields.get("finish")
                    left = None if finish is None else finish - time.monotonic()
                    # Past the plan's estimate, before any work is measured: unknown.
                    if left is None or (task.fields.get("planned") and left <= 0):
                        return Text("eta unknown", style="progress.remaining")
                    return Text(f"eta {clock(left)}", style="progress.remaining")

            self.bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                TextColumn("{task.fields[trials]}"),
                TimeElapsedColumn(),
                Eta(),
                console=Console(stderr=True),  # the bar's place, like every message's
                transient=True,
            )
            self.bar.__enter__()
        elif self.interval > 0:
            self.ticker = threading.Thread(target=self.tick, name="actlab-progress", daemon=True)
            self.ticker.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        if self.ticker is not None:
            self.ticker.join(timeout=1.0)
        if self.bar is not None:
            self.bar.__exit__(*exc)
