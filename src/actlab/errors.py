"""Errors that actlab reports to the user without a traceback."""


class UserError(Exception):
    """An error the user caused (bad name, value, expression, path). The CLI prints its
    message as one line and exits with status 2, no traceback."""
