"""The run directory: manifest, append-only tidy results, figures, report.

    runs/<name>/
      manifest.json     resolved config and its hash, versions, machine, start/end, status
      results.csv       one row per trial x metric, appended as each batch finishes
      progress.jsonl    one line per finished batch: its trials and the CSV size after it
      results.parquet   the same table, written at the end (the manifest says why if not)
      figures/, report.md

Durability: a batch's rows are written and fsynced before its progress line, so the
progress log is the commit record. Opening a run truncates anything after the last
committed batch (a torn row or a batch killed mid-write), so a resumed run recomputes
exactly the unfinished trials: none lost, none duplicated. The manifest is written last
when a run directory is created: a directory killed before that holds only creation
leftovers (no manifest) and is simply created again by the same command.

Manifest status: "running" while a run works (and after it was killed, which it cannot
record), "interrupted" after Ctrl-C, "complete" once every trial is stored.

Test-only hook: ACTLAB_TEST_COMMIT_DELAY (seconds) sleeps inside each commit, after the
rows and before the progress line, so kill tests can land in the middle of a commit.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from actlab.errors import UserError
from actlab.rundir import Directory, claim, environment, now, write_atomic

__all__ = ["RunStore", "environment", "now", "read_manifest", "read_results", "write_atomic"]

CORE_COLUMNS = ("study", "trial", "activation", "seed", "metric", "value", "layer", "step")
NAME_COLUMNS = ("study", "trial", "activation", "metric")
MANIFEST = "manifest.json"
RESULTS = "results.csv"
PROGRESS = "progress.jsonl"
# What a creation killed before its manifest was written can leave behind.
CREATION_LEFTOVERS = frozenset({RESULTS, PROGRESS, ".write-test", MANIFEST + ".tmp"})


def format_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest exact round-trip, 'inf' and 'nan' included
    return value


class RunStore(Directory):
    """A run directory (rundir.Directory: manifest.json) and its results."""

    MANIFEST = MANIFEST

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        super().__init__(path, manifest)
        self.columns: list[str] = manifest["columns"]
        self._done: set[str] = set()
        self._csv_bytes = 0

    # -- creating and opening ----------------------------------------------------------------
    @classmethod
    def create(
        cls, path: Path, config: dict[str, Any], config_hash: str, columns: list[str], device: str
    ) -> RunStore:
        claim(
            path,
            lambda p: not creation_leftovers_only(p),
            f"output directory '{path}' already exists and is not empty; "
            f"resume it with --resume {path} or choose another --out",
            "output directory",
        )
        manifest = cls.new_manifest(config, config_hash, device, format=1)
        manifest["columns"] = columns
        store = cls(path, manifest)
        with open(path / RESULTS, "w", newline="") as f:
            csv.writer(f).writerow(columns)
        (path / PROGRESS).write_text("")  # truncates what a killed creation left
        store._csv_bytes = (path / RESULTS).stat().st_size
        store.save()
        return store

    @classmethod
    def open(cls, path: Path) -> RunStore:
        manifest = read_manifest(path)
        store = cls(path, manifest)
        store._recover()
        return store

    def _recover(self) -> None:
        """Keep exactly the committed batches: drop a torn progress line and any rows after
        the last committed CSV size."""
        progress_path = self.path / PROGRESS
        results_path = self.path / RESULTS
        if not results_path.is_file():
            raise UserError(
                f"run directory '{self.path}' has no {RESULTS}; it is not a "
                "complete actlab run directory"
            )
        header_bytes = len(self._header_line())
        committed = header_bytes
        good_lines: list[str] = []
        raw = progress_path.read_text() if progress_path.is_file() else ""
        for line in raw.splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # torn last line: the batch did not commit
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                break
            good_lines.append(line)
            committed = entry["csv_bytes"]
            self._done.update(entry["trials"])
        if "".join(good_lines) != raw:
            write_atomic(progress_path, "".join(good_lines))
        size = results_path.stat().st_size
        if size < committed:
            raise UserError(
                f"results in '{self.path}' are shorter than its progress log "
                "records; the run directory is corrupt (start a new run)"
            )
        if size > committed:
            with open(results_path, "r+b") as f:
                f.truncate(committed)
                f.flush()
                os.fsync(f.fileno())
        self._csv_bytes = committed

    def _header_line(self) -> str:
        buf = io.StringIO()
        csv.writer(buf).writerow(self.columns)
        return buf.getvalue()

    # -- writing -----------------------------------------------------------------------------
    @property
    def done(self) -> set[str]:
        return set(self._done)

    def append(self, trial_keys: list[str], rows: list[dict[str, Any]]) -> None:
        """Commit one finished batch: its rows, then its progress line."""
        unknown = set().union(*(r.keys() for r in rows)) - set(self.columns) if rows else set()
        if unknown:
            raise ValueError(f"rows have columns the store does not know: {sorted(unknown)}")
        buf = io.StringIO()
        writer = csv.writer(buf)
        for row in rows:
            writer.writerow([format_value(row.get(c)) for c in self.columns])
        data = buf.getvalue().encode()
        with open(self.path / RESULTS, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self._csv_bytes += len(data)
        delay = os.environ.get("ACTLAB_TEST_COMMIT_DELAY")
        if delay:
            time.sleep(float(delay))  # test-only: rows written, batch not yet committed
        entry = {"csv_bytes": self._csv_bytes, "rows": len(rows), "trials": trial_keys}
        with open(self.path / PROGRESS, "a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._done.update(trial_keys)

    def write_parquet(self, results=None) -> Path | None:
        """results.parquet from the committed results (`results`: them, already read)."""
        try:
            import pyarrow  # noqa: F401
        except ImportError:  # a dependency, but an install may have left it out
            self.manifest["parquet"] = "not written: pyarrow is not installed (pip install pyarrow)"
            self.save()
            return None
        path = self.path / "results.parquet"
        (read_results(self.path) if results is None else results).to_parquet(path, index=False)
        return path


def creation_leftovers_only(path: Path) -> bool:
    """True for an empty directory, or one that holds only what a run directory's creation
    leaves when it is killed before its manifest is written."""
    return not (path / MANIFEST).exists() and all(
        p.name in CREATION_LEFTOVERS and p.is_file() for p in path.iterdir()
    )


def read_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    if path.exists() and not path.is_dir():
        raise UserError(f"'{path}' is a file, not a run directory; give the path of a run")
    if not path.is_dir():
        raise UserError(
            f"run directory '{path}' does not exist; give the path of a run (see runs/)"
        )
    try:
        manifest = json.loads(file.read_text())
    except FileNotFoundError:
        if (path / RESULTS).exists() and creation_leftovers_only(path):
            raise UserError(
                f"run '{path}' was stopped before it started (it has no {MANIFEST}); "
                f"start it again with --out {path}"
            ) from None
        raise UserError(f"'{path}' has no {MANIFEST}; it is not an actlab run directory") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"manifest '{file}' is corrupt ({e}); start a new run") from None
    if not isinstance(manifest, dict):
        raise UserError(f"manifest '{file}' is corrupt (not a JSON object); start a new run")
    missing = {"config", "config_hash", "columns"} - set(manifest)
    if missing:
        raise UserError(f"manifest '{file}' is missing {sorted(missing)}; start a new run")
    return manifest


def read_results(path: Path):
    """The committed results as a tidy DataFrame (uncommitted rows are ignored)."""
    import pandas as pd

    store = RunStore(path, read_manifest(path))
    committed = None
    progress = path / PROGRESS
    if progress.is_file():
        for line in progress.read_text().splitlines(keepends=True):
            if not line.endswith("\n"):
                break
            try:
                committed = json.loads(line)["csv_bytes"]
            except json.JSONDecodeError:
                break
    with open(path / RESULTS, "rb") as f:
        data = f.read() if committed is None else f.read(committed)
    if committed is None:
        data = store._header_line().encode()
    df = pd.read_csv(io.BytesIO(data), keep_default_na=True, low_memory=False)
    # Names are text whatever they spell: an activation called 'nan', 'NA' or 'null' must
    # not come back as a missing value.
    names = [c for c in NAME_COLUMNS if c in df]
    if names and not df.empty:
        text = pd.read_csv(
            io.BytesIO(data), usecols=names, dtype=str, keep_default_na=False, low_memory=False
        )
        for col in names:
            df[col] = text[col]
    for col in ("layer", "step", "seed"):
        if col in df:
            df[col] = df[col].astype("Int64")
    return df
