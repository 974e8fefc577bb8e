"""How numbers are written in every report: one home for each format, so that the same
value reads the same in every section (NaN as "–", infinities as "∞" and "-∞")."""

from __future__ import annotations

import math
import re


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


def curves_divergence(diverged: int, total: int) -> str:
    """The training-curve captions' sentence on diverged runs (figures.draw_loss_curves)."""
    if not diverged:
        return " No run diverged."
    return (
        f" {diverged} of {total} runs diverged: each curve ends at its last finite loss "
        "(x), and after it the median and range are over the seeds still training."
    )


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# -- activation names as written ---------------------------------------------------------------

# Characters that markdown would read as markup (emphasis, table cells, HTML, links, code).
MARKUP = set("*_|<>[]\\`~#&!")

# What the name pass leaves alone: code spans, a link's or image's target, HTML tags.
_UNTOUCHED = re.compile(
    r"(`+).*?(?<!`)\1(?!`)|\]\([^)]*\)|</?(?:details|summary|br|sup|sub|span|div)\b[^<>\n]*>"
)


def code_span(text: str, in_table: bool = False) -> str:
    """`text` as a markdown code span, shown verbatim: a fence longer than any run of
    backticks inside it; in a table row a `|` is escaped (GFM splits cells before it reads
    code spans, and gives `\\|` back as `|`)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    body = text.replace("|", "\\|") if in_table else text
    return f"{fence}{pad}{body}{pad}{fence}"


def names_as_code(text: str, names) -> str:
    """Every occurrence of an activation name or expression that markdown would misread
    (`x*sigmoid(b*x)` as italics, `f | b=1.0` as two table cells, `sq_`, `a<b`) written as a
    code span, in prose, headings, figure captions and tables alike; other names (ReLU)
    stay plain. Code spans already there keep their text (in table rows their `|` is
    escaped), and link targets and HTML tags are not touched.

    One pass over the finished report rather than an escape at each of the ~70 places that
    write a name: a section added later cannot forget it."""
    special = sorted({n for n in names if n and MARKUP & set(n)}, key=len, reverse=True)
    pattern = None
    if special:
        alternatives = []
        for name in special:
            head = r"(?<![\w])" if re.match(r"\w", name[0]) else ""
            tail = r"(?![\w])" if re.match(r"\w", name[-1]) else ""
            alternatives.append(head + re.escape(name) + tail)
        pattern = re.compile("|".join(alternatives))

    def plain(segment: str, in_table: bool) -> str:
        if pattern is None:
            return segment
        return pattern.sub(lambda m: code_span(m.group(0), in_table), segment)

    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced or line.lstrip().startswith("```"):
            out.append(line)
            continue
        in_table = line.lstrip().startswith("|")
        pieces, at = [], 0
        for m in _UNTOUCHED.finditer(line):
            pieces.append(plain(line[at : m.start()], in_table))
            kept = m.group(0)
            if in_table and m.group(1):  # a code span in a table row: escape its bare |
                kept = re.sub(r"(?<!\\)\|", r"\\|", kept)
            pieces.append(kept)
            at = m.end()
        pieces.append(plain(line[at:], in_table))
        out.append("".join(pieces))
    return "\n".join(out)
