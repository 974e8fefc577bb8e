"""Activation names and expressions are shown as written, in report.md and report.html:
`*` and `**` not read as emphasis, `_` not as emphasis, `|` not as a table cell, `<` not as
HTML, a learnable declaration whole."""

from __future__ import annotations

import html
import re

import pytest

from actlab.render.text import code_span, names_as_code

# The activations: `*`, `**`, `_`, a learnable declaration (with `|`), NAME=EXPR;
# and `<` inside where().
SPECS = [
    "ReLU",
    "x*sigmoid(b*x) | b=1.0",
    "mish2=x*tanh(softplus(x))",
    "sq_=x**2",
    "where(x<0, 0.1*x, x)",
]
WRITTEN = ["x*sigmoid(b*x) | b=1.0", "x*tanh(softplus(x))", "x**2", "sq_", "where(x<0, 0.1*x, x)"]


def cells(row: str) -> int:
    """A GFM table row's cell count: split at every `|` not escaped."""
    inner = row.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return len(re.split(r"(?<!\\)\|", inner))


def tables(text: str):
    """(header, [rows]) for every table of a markdown text."""
    lines = text.splitlines()
    i = 0
    while i < len(lines) - 1:
        if lines[i].lstrip().startswith("|") and re.match(r"\s*\|\s*:?-{3,}", lines[i + 1]):
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            yield lines[i], lines[i + 2 : j]
            i = j
        else:
            i += 1


def test_a_name_with_markup_becomes_a_code_span_and_others_stay_plain():
    text = "ReLU beats x*sigmoid(b*x) | b=1.0 and sq_ here.\n"
    out = names_as_code(text, {"ReLU", "x*sigmoid(b*x) | b=1.0", "sq_", "x*sigmoid(b*x)"})
    assert out == "ReLU beats `x*sigmoid(b*x) | b=1.0` and `sq_` here.\n"


def test_in_a_table_row_the_pipe_of_a_name_is_escaped_inside_its_code_span():
    row = "| x*sigmoid(b*x) | b=1.0 | 0.5 | `x / (1 + |x|)` |"
    out = names_as_code(row, {"x*sigmoid(b*x) | b=1.0"})
    assert out == "| `x*sigmoid(b*x) \\| b=1.0` | 0.5 | `x / (1 + \\|x\\|)` |"
    assert cells(out) == 3


def test_code_spans_link_targets_and_tags_are_left_alone():
    text = "`sq_` ![sq_ curve](figures/sq_.png) <details><summary>sq_</summary>"
    assert names_as_code(text, {"sq_"}) == (
        "`sq_` ![`sq_` curve](figures/sq_.png) <details><summary>`sq_`</summary>"
    )


def test_a_name_inside_a_longer_word_is_not_touched():
    assert names_as_code("sq_x and sq_", {"sq_"}) == "sq_x and `sq_`"


def test_a_backtick_in_a_name_gets_a_longer_fence():
    assert code_span("a`b") == "``a`b``"


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    import actlab

    return actlab.run(
        "quick",
        activations=SPECS,
        studies=["gradient_flow", "sparsity"],
        out=tmp_path_factory.mktemp("names") / "run",
    )


def test_every_table_row_has_its_headers_cell_count(odd_run):
    text = (odd_run.path / "report.md").read_text()
    found = list(tables(text))
    assert len(found) >= 5
    for header, rows in found:
        for row in rows:
            assert cells(row) == cells(header), (header, row)
    assert any("`x*sigmoid(b*x) \\| b=1.0`" in row for _, rows in found for row in rows)


def test_the_page_shows_every_expression_verbatim_and_never_as_emphasis(odd_run):
    page = (odd_run.path / "report.html").read_text()
    body = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", body))
    for written in WRITTEN:
        assert written in text, written
        assert f"<code>{html.escape(written, quote=False)}</code>" in body, written
    for emphasised in re.findall(r"<em>(.*?)</em>", body):
        assert not any(w in emphasised or emphasised in w for w in WRITTEN), emphasised
    lines = (odd_run.path / "report.md").read_text().splitlines()
    assert "## Answers" in lines[:40]
