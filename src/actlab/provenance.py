"""What a run's manifest records of how it was started: the command line, the working
directory, and the git commit of the code (runner.open_store writes it)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

# Seconds the manifest's git commit may take to find; a slow or missing git leaves it out.
GIT_TIMEOUT = 3.0


def git_state(directory: Path | None = None, timeout: float = GIT_TIMEOUT) -> dict[str, Any]:
    """{'git_commit': HEAD, 'git_dirty': uncommitted changes to tracked files} of the git
    checkout actlab's code runs from; both None when it is not a checkout's tracked file
    (an installed wheel), or git is missing, refuses or is slow. Never raises."""
    import subprocess

    directory = directory or Path(__file__).resolve().parent
    unknown = {"git_commit": None, "git_dirty": None}
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_OPTIONAL_LOCKS="0", LC_ALL="C")  # never take the index lock
    deadline = time.monotonic() + timeout

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", *args],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=max(deadline - time.monotonic(), 0.01),
        )

    try:
        # This file tracked in that checkout: the code is the checkout's, not a copy
        # installed somewhere inside another repository.
        if git("ls-files", "--error-unmatch", "--", Path(__file__).name).returncode != 0:
            return unknown
        head = git("rev-parse", "--verify", "HEAD")
        if head.returncode != 0:
            return unknown
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, ValueError, subprocess.SubprocessError):
        return unknown
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"git_commit": head.stdout.strip(), "git_dirty": dirty}


def provenance() -> dict[str, Any]:
    """What the manifest records of how a run was started: the command line as run
    (sys.argv), the working directory its relative paths mean, and the code's git commit."""
    import shlex
    import sys

    return {"command": shlex.join(sys.argv), "cwd": os.getcwd(), **git_state()}
