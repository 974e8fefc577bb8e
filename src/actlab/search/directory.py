"""The search directory: its manifest (search.json: settings, hash, status, the funnel), its
CSV files written once and atomically, and reading them back. The layer below the search's
steps (run.py) and its report (report.py), which both read it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actlab.errors import UserError
from actlab.search.config import SearchConfig, build
from actlab.search.screen import Drop
from actlab.search.space import Candidate
from actlab.store import write_atomic

MANIFEST = "search.json"


@dataclass
class Search:
    """A search directory."""

    path: Path

    @property
    def manifest(self) -> dict[str, Any]:
        return read_search_manifest(self.path)

    @property
    def config(self) -> SearchConfig:
        return build(stored_settings(self.manifest), source=f"'{self.path / MANIFEST}'")

    @property
    def leaderboard(self):
        import pandas as pd

        return pd.read_csv(self.path / "leaderboard.csv")

    @property
    def report_path(self) -> Path:
        return self.path / "report.md"

    def __repr__(self) -> str:
        return f"Search('{self.path}')"


def stored_settings(manifest: dict[str, Any]) -> dict[str, Any]:
    """A search's settings as its manifest stored them; one made before the transfer
    existed had none (transfer_seeds 0)."""
    return {"transfer_seeds": 0, **manifest["config"]}


def read_search_manifest(path: Path) -> dict[str, Any]:
    file = Path(path) / MANIFEST
    try:
        manifest = json.loads(file.read_text())
    except FileNotFoundError:
        raise UserError(
            f"'{path}' is not a search directory (no {MANIFEST}); give the directory "
            "`actlab search` wrote"
        ) from None
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read '{file}': {e}; the search directory is damaged") from None
    return manifest


def csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class SearchDir:
    """The search directory's files, and its manifest kept up to date."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path, self.manifest = path, manifest

    @staticmethod
    def check_free(path: Path) -> None:
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UserError(
                f"'{path}' already exists and is not an empty directory; continue a search "
                f"there with `actlab search --resume {path}`, or give another --out"
            )

    @classmethod
    def create(cls, path: Path, config: SearchConfig) -> SearchDir:
        from actlab.store import environment, now

        cls.check_free(path)
        path.mkdir(parents=True, exist_ok=True)
        manifest = {
            "kind": "search",
            "config": config.model_dump(mode="json"),
            "config_hash": config.hash(),
            "status": "running",
            "started": now(),
            "finished": None,
            "environment": environment("cpu"),
        }
        self = cls(path, manifest)
        self.save()
        return self

    @classmethod
    def open(cls, path: Path) -> SearchDir:
        manifest = read_search_manifest(path)
        if manifest.get("kind") != "search":
            raise UserError(f"'{path}' is not a search directory; give one `actlab search` wrote")
        return cls(path, manifest)

    def save(self) -> None:
        write_atomic(self.path / MANIFEST, json.dumps(self.manifest, indent=2) + "\n")

    def mark(self, status: str) -> None:
        from actlab.store import now

        self.manifest["status"] = status
        if status == "complete":
            self.manifest["finished"] = now()
        self.save()


CANDIDATE_COLUMNS = ["name", "expression"]
DROP_COLUMNS = ["name", "expression", "reason", "detail"]


def read_candidates(path: Path) -> list[Candidate] | None:
    file = path / "candidates.csv"
    if not file.exists():
        return None
    return [Candidate(r["name"], r["expression"]) for r in read_csv_rows(file)]


def read_drops(path: Path) -> list[Drop]:
    file = path / "drops.csv"
    return [Drop(**r) for r in read_csv_rows(file)] if file.exists() else []
