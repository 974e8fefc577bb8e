"""Where a run's time went, written to `timings.json` in the run directory.

Phases are wall-clock seconds in the process the user started (start-up: from the
process's own start, interpreter and imports included); `study_seconds` are the seconds
the workers spent computing each study's batches (they overlap in wall time when batches
run side by side). `python -m benchmarks.tutorial` prints these beside its own clocks.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def process_age() -> float | None:
    """Seconds since this process started (from /proc on Linux); None where unknown."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return None


class Timings:
    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self.study_seconds: dict[str, float] = {}
        self.report: dict[str, float] = {}
        self.early_parts: list[str] = []  # studies whose report part was built mid-run
        startup = process_age()
        if startup is not None:
            self.phases["startup"] = startup

    @contextmanager
    def phase(self, name: str, into: dict[str, float] | None = None) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            table = self.phases if into is None else into
            table[name] = table.get(name, 0.0) + time.perf_counter() - start

    def add_study(self, study: str, seconds: float) -> None:
        self.study_seconds[study] = self.study_seconds.get(study, 0.0) + seconds

    def as_dict(self) -> dict:
        out = {
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
            "study_seconds": {k: round(v, 3) for k, v in self.study_seconds.items()},
            "report": {k: round(v, 3) for k, v in self.report.items()},
            "report_parts_built_during_compute": list(self.early_parts),
        }
        age = process_age()
        if age is not None:
            out["process_seconds"] = round(age, 3)
        return out

    def save(self, run_dir: Path) -> Path:
        path = Path(run_dir) / "timings.json"
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")
        return path
