"""The search directory: its manifest (search.json: settings, hash, status, the funnel; the
run directory's layer, rundir.py), its CSV files written once and atomically, and reading
them back. The layer below the search's steps (run.py) and its report (report.py), which
both read it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actlab.errors import UserError
from actlab.rundir import Directory, check_unchanged, claim, refuse_taken
from actlab.search.config import SearchConfig, build
from actlab.search.screen import Drop
from actlab.search.space import Candidate

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


class SearchDir(Directory):
    """The search directory (rundir.Directory: search.json) and its files."""

    MANIFEST = MANIFEST

    @staticmethod
    def check_free(path: Path) -> None:
        """Refuse a taken --out before the selection's work (`create` claims it after)."""
        refuse_taken(path, occupied, taken(path))

    @classmethod
    def create(cls, path: Path, config: SearchConfig) -> SearchDir:
        claim(path, occupied, taken(path), "search directory")
        self = cls(
            path,
            cls.new_manifest(config.model_dump(mode="json"), config.hash(), "cpu", kind="search"),
        )
        self.save()
        return self

    @classmethod
    def open(cls, path: Path) -> SearchDir:
        manifest = read_search_manifest(path)
        if manifest.get("kind") != "search":
            raise UserError(f"'{path}' is not a search directory; give one `actlab search` wrote")
        return cls(path, manifest)

    def check_unchanged(self, config: SearchConfig) -> None:
        """A resume with other settings is refused before anything is written."""
        stored = self.manifest["config_hash"]
        check_unchanged(
            self.manifest,
            config.hash(),
            lambda: (
                f"search '{self.path}' was made with other settings (hash {stored}, these "
                f"{config.hash()}); resume it without changing settings, or start a new search"
            ),
        )


def occupied(path: Path) -> bool:
    return any(path.iterdir())


def taken(path: Path) -> str:
    return (
        f"'{path}' already exists and is not an empty directory; continue a search "
        f"there with `actlab search --resume {path}`, or give another --out"
    )


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
