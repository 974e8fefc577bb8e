"""How numbers are written in every report: one home for each format, so that the same
value reads the same in every section (NaN as "–", infinities as "∞" and "-∞")."""

from __future__ import annotations

import math


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value: float, digits: int = 3) -> str:
    """`digits` significant digits; "–" for a missing value, "∞" / "-∞" for infinities."""
    if missing(value):
        return "–"
    value = float(value)
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.{digits}g}"


def pct(value: float, decimals: int = 2) -> str:
    """A fraction as a percentage with `decimals` decimals; a non-zero value that would
    round to zero keeps three significant digits instead (0.0004% is not 0.00%)."""
    if missing(value) or not math.isfinite(value):
        return fmt(value)
    percent = 100 * float(value)
    if percent != 0 and abs(percent) < 10**-decimals:
        return f"{percent:.3g}"
    return f"{percent:.{decimals}f}"


def sci(value: float) -> str:
    """Two significant digits in compact scientific notation: 3.1e-3."""
    if missing(value) or not math.isfinite(value):
        return fmt(value)
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def interval(low: float, high: float, form=fmt) -> str:
    """ " [low, high]" when both ends are known, else ""."""
    if missing(low) or missing(high):
        return ""
    return f" [{form(low)}, {form(high)}]"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
