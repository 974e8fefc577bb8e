"""Fixtures shared across test modules."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """`actlab.run("quick")` with its report, made once for every module that reads it
    (test_html, test_report). A test that rebuilds its files checks they come back the same
    bytes, so the run stays as it was made."""
    import actlab

    return actlab.run("quick", out=tmp_path_factory.mktemp("q") / "run")
