"""Fixtures shared across test modules."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory, worker_id):
    """`actlab.run("quick")` with its report, made once for every module that reads it
    (test_audit, test_html, test_report), and once for all the suite's workers: the first
    to ask makes it under a file lock, the others wait and read it back (it takes about
    28 s; each worker made its own before). A test that rebuilds its files checks they
    come back the same bytes, so the run stays as it was made."""
    import actlab

    if worker_id == "master":  # not under xdist
        return actlab.run("quick", out=tmp_path_factory.mktemp("q") / "run")
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / "quick-run"
    with FileLock(f"{shared}.lock"):
        if (shared / "report.html").is_file():
            return actlab.load(shared)
        return actlab.run("quick", out=shared)
