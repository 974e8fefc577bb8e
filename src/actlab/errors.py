"""Errors that actlab reports to the user without a traceback, and the wording of the most
common one: an unknown name."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping


class UserError(Exception):
    """An error the user caused (bad name, value, expression, path). The CLI prints its
    message as one line and exits with status 2, no traceback."""


def closest(
    name: str,
    choices: Iterable[str] | Mapping[str, str],
    key: Callable[[str], str] = str.lower,
) -> str | None:
    """The choice nearest to `name` by difflib's ratio (case-insensitively, or by `key`),
    or None when nothing is close. A mapping's keys are compared and its value returned
    (an alias finds its canonical name)."""
    import difflib

    shown = dict(choices) if isinstance(choices, Mapping) else {c: c for c in choices}
    by_key: dict[str, str] = {}
    for label, target in shown.items():
        by_key.setdefault(key(label), target)
    near = difflib.get_close_matches(key(name), list(by_key), n=1, cutoff=0.6)
    return by_key[near[0]] if near else None


def unknown_name(
    kind: str,
    name: str,
    available: Iterable[str],
    near: str | None = None,
    otherwise: str = "",
) -> str:
    """'unknown activation 'gleu'; did you mean GELU? (available: ...)', or without a near
    name 'unknown activation 'x'; available: ...'. `otherwise` ends the list with another
    way out ("or give an expression in x ...")."""
    listed = ", ".join(available)
    if otherwise:
        listed += f"; or {otherwise}"
    if near is not None:
        return f"unknown {kind} '{name}'; did you mean {near}? (available: {listed})"
    return f"unknown {kind} '{name}'; available: {listed}"
