"""report.html: the run's report as one self-contained page.

The page is made from the same text as report.md (rendered from the same stored results by
report.md.j2), converted to HTML with markdown-it and split at its `##` headings, then
dressed by report.html.j2: a navigation bar, the figures inlined (PNG data URIs),
sortable tables, the computed findings highlighted, the manifest
in a collapsible block, and an activation explorer drawn by inline JavaScript from f(x)
and f'(x) sampled here. Nothing on the page is fetched: no CDN, no web fonts, no external
scripts or images, so it opens offline anywhere. Nothing in it depends on when it was
built: `actlab report` rebuilds the same bytes.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import Any

from actlab.report.parts import anchor

# The explorer samples every activation on this grid (step 0.025) and shows [-4, 4] first.
EXPLORER_RANGE = (-8.0, 8.0)
EXPLORER_POINTS = 641
EXPLORER_VIEW = (-4.0, 4.0)
SIGNIFICANT_DIGITS = 5  # enough for a read-out, light enough for the page

# Sections whose first list is computed findings (the studies' own findings follow a
# "What the data says." paragraph; the tutorial's claims are a table).
FINDING_SECTIONS = ("recommendations",)


def markdown_to_html(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(text)


def split_sections(body: str) -> tuple[str, list[dict[str, str]]]:
    """HTML of a whole report -> (what precedes the first h2, [{id, title, html}])."""
    parts = re.split(r"<h2>(.*?)</h2>\n?", body)
    preamble, sections = parts[0], []
    for title, content in zip(parts[1::2], parts[2::2], strict=True):
        plain = html.unescape(re.sub(r"<[^>]+>", "", title))
        sections.append({"id": anchor(plain), "title": title, "html": content})
    return preamble, sections


# -- figures -------------------------------------------------------------------------------

_IMG = re.compile(r'(?:<p>)?<img src="([^"]+)" alt="([^"]*)"[^>]*>(?:</p>)?')


def figure_html(src: str, alt: str, run_dir: Path) -> str:
    """One figure of the report, embedded as a PNG data URI; a visible note (never a
    broken link) when the file is missing."""
    png = run_dir / src
    caption = f"<figcaption>{alt}</figcaption>"
    if not (png.is_file() and png.suffix.lower() == ".png"):
        return f'<p class="missing">Figure not found in the run directory: {src}</p>'
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    image = f'<img src="data:image/png;base64,{data}" alt="{alt}">'
    return f'<figure class="fig">{image}{caption}</figure>'


# -- tables and findings -------------------------------------------------------------------


def decorate(body: str, run_dir: Path, section_id: str = "") -> str:
    body = _IMG.sub(lambda m: figure_html(html.unescape(m.group(1)), m.group(2), run_dir), body)
    body = body.replace("<table>", '<div class="table-wrap"><table class="sortable">')
    body = body.replace("</table>", "</table></div>")
    # An interval after a number ("0.48 [0.39, 0.6]") is set apart from its estimate.
    body = re.sub(r"(?<=\d) \[([^\]<]+)\](?=[^<]*</td>)", r' <span class="ci">[\1]</span>', body)
    body = re.sub(
        r"<p><strong>What the data says\.</strong></p>\n(<ul>.*?</ul>)",
        r'<div class="findings"><p><strong>What the data says.</strong></p>\n\1</div>',
        body,
        flags=re.S,
    )
    if section_id in FINDING_SECTIONS:
        body = re.sub(
            r"(<ul>.*?</ul>)", r'<div class="findings">\1</div>', body, count=1, flags=re.S
        )
    return body


# -- the activation explorer ---------------------------------------------------------------


def _rounded(values: list[float]) -> list[float | None]:
    return [float(f"{v:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(v) else None for v in values]


def explorer_data(activations: dict[str, Any]) -> dict[str, Any]:
    """f and f' of every activation on the explorer's grid, in the figures' colours.
    An activation that cannot be evaluated there is listed with the reason, not drawn."""
    import torch
    from matplotlib.colors import to_hex

    from actlab.render.figures import activation_colours

    lo, hi = EXPLORER_RANGE
    x = torch.linspace(lo, hi, EXPLORER_POINTS, dtype=torch.float64)
    colours = activation_colours(list(activations))
    curves, skipped = [], []
    for name, act in activations.items():
        try:
            with torch.no_grad():
                f = act.fn(x.clone())
            df = act.derivative(x.clone())
            f_values = torch.as_tensor(f, dtype=torch.float64).detach().reshape(-1).tolist()
            df_values = torch.as_tensor(df, dtype=torch.float64).detach().reshape(-1).tolist()
            if len(f_values) != EXPLORER_POINTS or len(df_values) != EXPLORER_POINTS:
                raise ValueError("output has a different shape from its input")
        except Exception as e:  # a custom activation may fail in any way; the page must not
            skipped.append({"name": name, "reason": f"{type(e).__name__}: {e}"})
            continue
        curves.append(
            {
                "name": name,
                "colour": to_hex(colours[name]),
                "f": _rounded(f_values),
                "df": _rounded(df_values),
            }
        )
    return {
        "x0": lo,
        "x1": hi,
        "n": EXPLORER_POINTS,
        "view": list(EXPLORER_VIEW),
        "activations": curves,
        "skipped": skipped,
    }


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no '</script>' can end it early)."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# -- the page ------------------------------------------------------------------------------


def build_html(run, markdown_text: str, activations: dict[str, Any]) -> Path:
    """Write report.html beside report.md, from report.md's text; returns its path."""
    import jinja2

    body = markdown_to_html(markdown_text)
    preamble, sections = split_sections(body)
    sections = [s for s in sections if s["id"] != "contents"]  # the navigation replaces it
    for s in sections:
        s["html"] = decorate(s["html"], run.path, s["id"])
    title_match = re.search(r"<h1>(.*?)</h1>\n?", preamble)
    title = title_match.group(1) if title_match else "actlab report"
    preamble = preamble.replace(title_match.group(0), "") if title_match else preamble

    manifest = run.manifest
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("actlab.report", "templates"),
        autoescape=True,
        keep_trailing_newline=True,
    )
    page = env.get_template("report.html.j2").render(
        title=title,
        plain_title=html.unescape(re.sub(r"<[^>]+>", "", title)),
        preamble=preamble,
        sections=sections,
        explorer=script_json(explorer_data(activations)),
        grid={"n": EXPLORER_POINTS, "lo": f"{EXPLORER_RANGE[0]:g}", "hi": f"{EXPLORER_RANGE[1]:g}"},
        manifest=manifest,
        manifest_json=json.dumps(manifest, indent=2, ensure_ascii=False),
    )
    path = run.path / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
