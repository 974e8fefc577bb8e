"""The directory layer a run and a search share: a manifest (JSON: the settings and their
hash, status, start and end, the machine), written atomically; a new directory claimed
only when it is free and writable; a resume refused when the settings changed.

store.py keeps a run's results in such a directory (manifest.json), search/directory.py a
search's files (search.json); each adds only what is its own.

Status: "running" while it works (and after it was killed, which it cannot record),
"interrupted" after Ctrl-C, "complete" once everything is stored.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from actlab.errors import UserError


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def environment(device: str) -> dict[str, Any]:
    import numpy
    import torch

    from actlab import __version__

    return {
        "actlab": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else platform.processor(),
    }


def write_atomic(path: Path, text: str) -> None:
    """`text` in `path`, whole or not at all: written beside it, synced, then renamed."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def refuse_taken(path: Path, occupied: Callable[[Path], bool], refusal: str) -> None:
    """Refuse in one line (`refusal`: how to resume it, or choose another) a `path` that
    is a file or an `occupied` directory."""
    if path.exists() and (not path.is_dir() or occupied(path)):
        raise UserError(refusal)


def claim(path: Path, occupied: Callable[[Path], bool], refusal: str, what: str) -> None:
    """Make `path` a directory this process can write, or refuse in one line: taken
    (`refuse_taken`) or not writable (`what` names it: "output directory")."""
    refuse_taken(path, occupied, refusal)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(
            f"cannot write to {what} '{path}' ({e.strerror}); choose a writable --out"
        ) from None


def check_unchanged(stored: dict[str, Any], config_hash: str, refusal: Callable[[], str]):
    """Refuse a resume whose settings hash differs from the one stored (`refusal()` says
    which settings changed); before anything is opened or repaired."""
    if stored["config_hash"] != config_hash:
        raise UserError(refusal())


class Directory:
    """A directory with a manifest file; `MANIFEST` names it."""

    MANIFEST = "manifest.json"

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path, self.manifest = path, manifest

    @staticmethod
    def new_manifest(
        config: dict[str, Any], config_hash: str, device: str, **own: Any
    ) -> dict[str, Any]:
        """A new directory's manifest: `own` (the kind's fields) first, then the shared."""
        return {
            **own,
            "status": "running",
            "started": now(),
            "finished": None,
            "config_hash": config_hash,
            "config": config,
            "environment": environment(device),
        }

    def save(self) -> None:
        write_atomic(self.path / self.MANIFEST, json.dumps(self.manifest, indent=2) + "\n")

    def mark(self, status: str) -> None:
        self.manifest["status"] = status
        if status == "complete":
            self.manifest["finished"] = now()
        self.save()
