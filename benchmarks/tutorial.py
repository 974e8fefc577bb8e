"""actlab against the baseline on the tutorial protocol, each side timed as a user waits for it.

    python -m benchmarks.tutorial [--seeds 1,5] [--repeats 2] [--no-baseline] [--keep DIR]

Each side runs as its own fresh process, interleaved (baseline, actlab, actlab --no-report,
then again), and its wall time is the whole process's, start-up included:
- baseline: `python -m benchmarks.baseline --seeds 1`, the protocol one network at a time
  with torch's default threads (see benchmarks/baseline.py);
- actlab: `actlab run --preset tutorial --seeds N`, report included, and the same with
  `--no-report`, for each N in --seeds.
Printed: the median wall times and their ratios to the baseline's one-seed median (the
targets of issue 14: <= 0.30 for one seed, <= 1.5 for five seeds, <= 2 s added by the
report), actlab's own breakdown (start-up, each study's compute, figures, report.md,
report.html: timings.json of its run directories, medians), and what the machine was
doing: the load average before each run (after a previous run it still shows that run),
the CPU time other processes used during it and the share the hypervisor stole (steal
time, /proc/stat), and peak sgemm before and after. It warns when the machine was not quiet or the two
calibrations differ by more than 10%: then the ratios are not to be trusted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
TARGETS = {1: 0.30, 5: 1.5}  # actlab N seeds, end to end / baseline 1 seed
REPORT_TARGET_S = 2.0
QUIET_SHARE = 0.03  # other processes' CPU, as a share of the machine, above which we warn
CALIBRATION_DRIFT = 0.10


# -- what the machine was doing --------------------------------------------------------------
def read_proc(pid: str) -> tuple[int, int, int] | None:
    """(ppid, start time, cpu ticks) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12])


class CpuWatch:
    """Samples every process every two seconds while a command runs: CPU ticks of the
    command's process tree and of everything else (this harness apart). A process that
    starts and ends between two samples is missed; the command's short-lived helpers are
    too few to matter, and anything else busy for long is seen. (Sampling more often
    costs this harness CPU time that the measured command would feel.)"""

    def __init__(self, root: int, interval: float = 2.0) -> None:
        self.root, self.interval = root, interval
        self.first: dict[tuple[int, int], int] = {}
        self.last: dict[tuple[int, int], int] = {}
        self.own: set[tuple[int, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sample(initial=True)

    def sample(self, initial: bool = False) -> None:
        seen, parents = {}, {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                info = read_proc(entry)
                if info is not None:
                    pid = int(entry)
                    seen[pid], parents[pid] = info, info[0]
        for pid, (_, start, ticks) in seen.items():
            key = (pid, start)
            if key not in self.first:
                # Baseline at the first sample; processes born later count from zero.
                self.first[key] = ticks if initial else 0
            self.last[key] = ticks
            p, hops = pid, 0
            while p in parents and hops < 64:
                if p == self.root:
                    self.own.add(key)
                    break
                p, hops = parents[p], hops + 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> CpuWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def seconds(self, own: bool) -> float:
        me = os.getpid()
        total = 0
        for key, ticks in self.last.items():
            if key[0] == me or (key in self.own) != own:
                continue
            total += ticks - self.first[key]
        return total / TICK


def cpu_jiffies() -> tuple[int, int]:
    """(all, stolen) CPU time of the machine so far, from /proc/stat: steal is time the
    hypervisor gave this virtual machine's CPUs to someone else, invisible to `top`."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    steal = values[7] if len(values) > 7 else 0
    return sum(values[:8]), steal


def load_average() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def peak_sgemm_gflops(threads: int, n: int = 1024, repeats: int = 20) -> float:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, (time.perf_counter() - start) / repeats)
    torch.set_num_threads(before)
    return 2 * n**3 / best / 1e9


# -- one timed command -----------------------------------------------------------------------
@dataclass
class Timed:
    label: str
    wall: float
    own_cpu: float
    other_cpu: float
    stolen: float  # share of the machine's CPU time the hypervisor took during the run
    load_before: float
    timings: dict = field(default_factory=dict)


def run_timed(label: str, command: list[str], run_dir: Path | None = None) -> Timed:
    load_before = load_average()
    jiffies_before = cpu_jiffies()
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    with CpuWatch(process.pid) as watch:
        _, err = process.communicate()
        wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{label} failed (exit {process.returncode}):\n{err[-2000:]}")
    timings = {}
    if run_dir is not None and (run_dir / "timings.json").exists():
        timings = json.loads((run_dir / "timings.json").read_text())
    jiffies_after = cpu_jiffies()
    stolen = (jiffies_after[1] - jiffies_before[1]) / max(jiffies_after[0] - jiffies_before[0], 1)
    timed = Timed(
        label, wall, watch.seconds(True), watch.seconds(False), stolen, load_before, timings
    )
    print(
        f"  {label:<28} {wall:7.2f} s   load before {load_before:4.2f}   "
        f"CPU: its own {timed.own_cpu:6.1f} s, other processes {timed.other_cpu:5.1f} s, "
        f"stolen {stolen:.1%}",
        flush=True,
    )
    return timed


def actlab_command() -> list[str]:
    script = Path(sys.executable).with_name("actlab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "actlab.cli"]


# -- the report ------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def breakdown(runs: list[Timed]) -> list[str]:
    """actlab's own account of where the time went (timings.json), medians over runs."""
    lines = []

    def med(path: tuple[str, ...]) -> float:
        values = []
        for r in runs:
            node = r.timings
            for key in path:
                node = node.get(key, {}) if isinstance(node, dict) else {}
            if isinstance(node, (int, float)):
                values.append(float(node))
        return median(values)

    phases = ("startup", "plan", "compute", "store", "report", "verdicts")
    for phase in phases:
        value = med(("phases", phase))
        if not math.isnan(value):
            lines.append(f"    {phase:<26} {value:7.2f} s")
        if phase == "compute":
            studies = {k for r in runs for k in r.timings.get("study_seconds", {})}
            for study in sorted(studies):
                lines.append(f"      {study:<24} {med(('study_seconds', study)):7.2f} s in workers")
        if phase == "report":
            studies = {k for r in runs for k in r.timings.get("study_seconds", {})}
            keys = list(runs[0].timings.get("report", {}))
            for stage in [k for k in keys if k.split(" ")[0] not in studies]:
                lines.append(f"      {stage:<24} {med(('report', stage)):7.2f} s")
            for stage in [k for k in keys if k.split(" ")[0] in studies]:
                lines.append(f"        {stage:<22} {med(('report', stage)):7.2f} s in a worker")
    lines.append(f"    {'whole process':<26} {median([r.wall for r in runs]):7.2f} s")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,5", help="comma-separated seed counts for actlab")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--no-baseline", action="store_true", help="time actlab only")
    parser.add_argument("--keep", type=Path, default=None, help="keep actlab's run dirs here")
    args = parser.parse_args(argv)
    seed_counts = [int(s) for s in args.seeds.split(",") if s.strip()]

    import torch

    cores = os.cpu_count() or 1
    print(f"machine: {cores} cores; torch {torch.__version__}, {torch.get_num_threads()} threads")
    sgemm_before = (peak_sgemm_gflops(torch.get_num_threads()), peak_sgemm_gflops(1))
    print(
        f"peak sgemm before (1024^3): {sgemm_before[0]:.0f} GFLOP/s on "
        f"{torch.get_num_threads()} threads, {sgemm_before[1]:.0f} on 1"
    )
    root = Path(tempfile.mkdtemp(prefix="actlab-bench-")) if args.keep is None else args.keep
    root.mkdir(parents=True, exist_ok=True)
    baseline: list[Timed] = []
    actlab: dict[tuple[int, bool], list[Timed]] = {}
    try:
        for round_ in range(args.repeats):
            print(f"round {round_ + 1} of {args.repeats}", flush=True)
            if not args.no_baseline:
                baseline.append(
                    run_timed(
                        "baseline, 1 seed",
                        [sys.executable, "-m", "benchmarks.baseline", "--seeds", "1"],
                    )
                )
            for n in seed_counts:
                for report in (True, False):
                    out = root / f"s{n}-{'report' if report else 'noreport'}-{round_}"
                    shutil.rmtree(out, ignore_errors=True)
                    command = (
                        actlab_command()
                        + ["run", "--preset", "tutorial", "--seeds", str(n), "--out", str(out)]
                        + ([] if report else ["--no-report"])
                    )
                    label = f"actlab, {n} seed{'s' if n > 1 else ''}" + (
                        "" if report else ", --no-report"
                    )
                    actlab.setdefault((n, report), []).append(run_timed(label, command, out))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    sgemm_after = (peak_sgemm_gflops(torch.get_num_threads()), peak_sgemm_gflops(1))
    print(
        f"peak sgemm after: {sgemm_after[0]:.0f} GFLOP/s on {torch.get_num_threads()} "
        f"threads, {sgemm_after[1]:.0f} on 1"
    )

    print("\nmedian wall time (each a fresh process, start-up included)")
    base = median([t.wall for t in baseline])
    if baseline:
        print(f"  baseline, 1 seed            {base:7.2f} s")
    for n in seed_counts:
        full = median([t.wall for t in actlab[(n, True)]])
        bare = median([t.wall for t in actlab[(n, False)]])
        ratio = f"  {full / base:.3f}x the baseline" if baseline else ""
        target = TARGETS.get(n)
        verdict = (
            f" (target <= {target}: {'met' if full / base <= target else 'NOT met'})"
            if baseline and target is not None
            else ""
        )
        print(f"  actlab, {n} seed(s)           {full:7.2f} s{ratio}{verdict}")
        bare_ratio = f"  {bare / base:.3f}x" if baseline else ""
        print(f"  actlab, {n} seed(s), no report {bare:6.2f} s{bare_ratio}")
        added = full - bare
        print(
            f"  the report adds              {added:7.2f} s (target <= {REPORT_TARGET_S:.0f} s: "
            f"{'met' if added <= REPORT_TARGET_S else 'NOT met'})"
        )
    for n in seed_counts:
        print(f"\nactlab, {n} seed(s), report included: where the time went (timings.json)")
        print("\n".join(breakdown(actlab[(n, True)])))
        print(f"actlab, {n} seed(s), --no-report")
        print("\n".join(breakdown(actlab[(n, False)])))

    everything = baseline + [t for runs in actlab.values() for t in runs]
    warnings = []
    busy = [t for t in everything if t.other_cpu > QUIET_SHARE * cores * t.wall]
    if busy:
        worst = max(busy, key=lambda t: t.other_cpu / t.wall)
        warnings.append(
            f"the machine was not quiet: other processes used {worst.other_cpu:.1f} CPU-s "
            f"during '{worst.label}' ({worst.other_cpu / worst.wall / cores:.0%} of the "
            f"machine), in {len(busy)} of {len(everything)} runs"
        )
    robbed = [t for t in everything if t.stolen > QUIET_SHARE]
    if robbed:
        worst = max(robbed, key=lambda t: t.stolen)
        warnings.append(
            f"the hypervisor took {worst.stolen:.0%} of the CPU time during '{worst.label}' "
            f"(steal time), in {len(robbed)} of {len(everything)} runs"
        )
    for i, what in enumerate(("all threads", "one thread")):
        drift = abs(sgemm_after[i] - sgemm_before[i]) / sgemm_before[i]
        if drift > CALIBRATION_DRIFT:
            warnings.append(
                f"peak sgemm on {what} moved by {drift:.0%} between the calibrations "
                f"({sgemm_before[i]:.0f} -> {sgemm_after[i]:.0f} GFLOP/s)"
            )
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"\nthis harness used {own.ru_utime + own.ru_stime:.1f} CPU-s in all "
        "(calibrations and sampling)"
    )
    for warning in warnings:
        print(f"WARNING: {warning}; do not trust these ratios")
    if not warnings:
        print(
            "\nquiet machine: other processes and the hypervisor's steal stayed below "
            f"{QUIET_SHARE:.0%} of its CPU in every run; calibrations within "
            f"{CALIBRATION_DRIFT:.0%}"
        )


if __name__ == "__main__":
    main()
