"""Figures and the report, built from a run's stored results only. `actlab.report(run)`
rebuilds them (runner.report)."""

from actlab.callable_module import callable_as  # noqa: E402

callable_as(__name__, "actlab.runner:report")  # `actlab.report(...)` once imported
