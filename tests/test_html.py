"""report.html from one `quick` run: a self-contained page (nothing fetched), every section
and figure in it, rebuilt byte for byte by `actlab report --html`; and the page itself in
headless Chromium (Debian's package at /usr/bin/chromium, driven by playwright): no
console errors or requests, every figure decoded, navigation, the explorer's toggles,
range and read-out, sortable tables, and a full-page screenshot."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from actlab.report.parts import anchor

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SIZE_LIMIT = 3 * 2**20  # the target for the tutorial preset; quick is well below
LEADING_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?", re.I)


@pytest.fixture(scope="module")
def html_path(quick_run) -> Path:
    return quick_run.path / "report.html"


@pytest.fixture(scope="module")
def page_text(html_path) -> str:
    return html_path.read_text(encoding="utf-8")


def section_ids(run) -> list[str]:
    """The ids of report.md's sections (its `##` headings but Contents), in order."""
    titles = re.findall(r"^## (.+)$", run.report_path.read_text(), flags=re.M)
    return [anchor(t) for t in titles if t != "Contents"]


def markdown_figures(run) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", run.report_path.read_text())


# -- the file ------------------------------------------------------------------------------


def test_run_writes_report_html_beside_report_md(quick_run, html_path, page_text):
    assert html_path.parent == quick_run.report_path.parent
    assert page_text.startswith("<!DOCTYPE html>")
    assert 0 < html_path.stat().st_size < SIZE_LIMIT


def test_the_page_opens_with_the_answers_as_report_md_does(page_text):
    sections = re.findall(r'<section id="([^"]+)"', page_text)
    assert sections[:3] == ["answers", "explorer", "manifest"]
    links = re.findall(r'<li><a href="#([^"]+)"', page_text)
    assert links[0] == "answers" and sorted(links) == sorted(sections)


def test_page_fetches_nothing(page_text):
    forbidden = {
        "external script": r"<script\b[^>]*\bsrc\s*=",
        "linked resource": r"<link\b[^>]*\bhref\s*=\s*(?![\"']?data:)",
        "image file": r"<img\b[^>]*\bsrc\s*=\s*(?![\"']?data:)",
        "remote src/href": r"\b(?:src|href|srcset|poster|action)\s*=\s*[\"']?\s*(?:https?:)?//",
        "CSS import": r"@import",
        "remote CSS url": r"url\(\s*[\"']?\s*(?:https?:)?//",
        "web font": r"@font-face",
        "embedded page": r"<(?:iframe|object|embed|frame)\b",
    }
    found = {what: re.findall(p, page_text, flags=re.I) for what, p in forbidden.items()}
    assert not {k: v for k, v in found.items() if v}
    # Addresses appear only as text (the references) or as XML namespace names.
    for url in re.findall(r"https?://[^\s\"'<)]+", page_text):
        assert url.startswith(("https://arxiv.org/", "https://jmlr.org/", "http://www.w3.org/")), (
            url
        )


def test_every_section_and_figure_is_in_the_page(quick_run, page_text):
    ids = section_ids(quick_run)
    assert {"introduction", "gradient-flow", "summary-sheet", "references"} <= set(ids)
    for sid in ["explorer", "manifest", *ids]:
        assert f'<section id="{sid}">' in page_text, sid
        assert f'<a href="#{sid}">' in page_text, sid
    figures = markdown_figures(quick_run)
    assert len(figures) >= 7
    assert page_text.count('<figure class="fig">') == len(figures)
    assert "figures/" not in re.sub(
        r"<section id=\"files\">.*?</section>", "", page_text, flags=re.S
    )
    # every table sortable; the studies' computed findings highlighted
    assert "<table>" not in page_text and '<table class="sortable">' in page_text
    findings = quick_run.report_path.read_text().count("**What the data says.**")
    assert page_text.count('<div class="findings">') >= findings + 1  # + recommendations
    assert '<section id="the-tutorials-claims-tested">' in page_text
    assert '<span class="ci">[' in page_text  # intervals set apart from their estimates
    manifest = json.loads((quick_run.path / "manifest.json").read_text())
    assert manifest["config_hash"] in page_text and manifest["environment"]["torch"] in page_text


def explorer_json(page_text: str) -> dict:
    m = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', page_text)
    return json.loads(m.group(1))


def test_explorer_data_samples_every_activation(quick_run, page_text):
    data = explorer_json(page_text)
    names = [a["name"] for a in data["activations"]]
    assert names == quick_run.config.activations and data["skipped"] == []
    xs = [data["x0"] + (data["x1"] - data["x0"]) * i / (data["n"] - 1) for i in range(data["n"])]

    def at(name, key, x):
        curve = next(a for a in data["activations"] if a["name"] == name)
        assert len(curve[key]) == data["n"]
        i = min(range(data["n"]), key=lambda j: abs(xs[j] - x))
        return curve[key][i]

    assert (at("ReLU", "f", 2), at("ReLU", "df", 2), at("ReLU", "f", -2)) == (2, 1, 0)
    assert (at("Sigmoid", "f", 0), at("Sigmoid", "df", 0)) == (0.5, 0.25)
    assert at("Tanh", "df", 0) == 1 and at("Tanh", "f", 1) == pytest.approx(math.tanh(1), abs=1e-4)
    assert all(v is None or math.isfinite(v) for a in data["activations"] for v in a["f"] + a["df"])


def test_report_command_without_html_does_not_ask_for_it(quick_run, monkeypatch):
    """(That `actlab report` rebuilds report.html byte for byte is checked with the other
    files in tests/test_report.py, one rebuild for all.)"""
    from typer.testing import CliRunner

    from actlab.cli import app
    from actlab.report import pipeline

    calls = []
    monkeypatch.setattr(pipeline, "build_report", lambda run, **kw: calls.append(kw) or run.path)
    result = CliRunner().invoke(app, ["report", str(quick_run.path), "--no-html"])
    assert result.exit_code == 0, result.output
    assert [call["html"] for call in calls] == [False]


# -- the page in a browser -----------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright_api():
    """playwright's entry point, or a skip that says what is missing (before any run)."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    return sync_playwright


@pytest.fixture(scope="module")
def browser(playwright_api, html_path, tmp_path_factory):
    """The report open in headless Chromium, with everything the page logs or requests."""
    log = {"errors": [], "failed": [], "external": []}
    with playwright_api() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=LAUNCH_ARGS,
            viewport={"width": 1280, "height": 900},
        )

        def block(route):  # only file: and data: are allowed; nothing else is fetched
            log["external"].append(route.request.url)
            route.abort()

        context.route(re.compile(r"^(?!file:|data:)"), block)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and log["errors"].append(m.text))
        page.on("pageerror", lambda e: log["errors"].append(str(e)))
        page.on("requestfailed", lambda r: log["failed"].append(r.url))
        page.goto(html_path.as_uri(), wait_until="load")
        try:
            yield page, log
        finally:
            context.close()


def test_page_loads_offline_without_errors(browser):
    page, log = browser
    assert page.evaluate("document.readyState") == "complete"
    assert log == {"errors": [], "failed": [], "external": []}


def test_every_figure_is_decoded(browser, quick_run):
    page, _ = browser
    found = page.evaluate(
        """() => {
        const out = [];
        document.querySelectorAll("figure.fig img").forEach(img =>
            out.push({kind: "img", ok: img.complete && img.naturalWidth > 0}));
        document.querySelectorAll("figure.fig svg, #explorer svg").forEach(svg => {
            const r = svg.getBoundingClientRect(), b = svg.getBBox();
            out.push({kind: "svg", ok: r.width > 0 && r.height > 0 && b.width > 0 && b.height > 0});
        });
        return out;
    }"""
    )
    assert len(found) == len(markdown_figures(quick_run)) + 2  # + the explorer's two plots
    assert all(f["ok"] for f in found), found


def test_every_navigation_link_has_its_section(browser, quick_run):
    page, _ = browser
    targets = page.evaluate(
        """() => Array.from(document.querySelectorAll("nav a")).map(a => {
        const id = a.getAttribute("href").slice(1);
        return [id, document.getElementById(id) !== null];
    })"""
    )
    answers, *rest = section_ids(quick_run)  # the answers lead, as in report.md (issue 28)
    assert [t for t, _ in targets] == [answers, "explorer", "manifest", *rest]
    assert all(ok for _, ok in targets), targets


def test_unticking_an_activation_hides_its_curves(browser):
    page, _ = browser
    curves = page.locator('#explorer path.curve[data-act="ReLU"]')
    box = page.locator('#explorer-toggles input[data-act="ReLU"]')

    def readout_names():
        return [t.strip() for t in page.locator("#readout tbody td:first-child").all_inner_texts()]

    assert curves.count() == 2 and curves.nth(0).is_visible() and curves.nth(1).is_visible()
    assert "ReLU" in readout_names()
    box.uncheck()
    assert curves.nth(0).is_hidden() and curves.nth(1).is_hidden()
    assert page.locator('#explorer path.curve[data-act="GELU"]').nth(0).is_visible()
    assert "ReLU" not in readout_names() and "GELU" in readout_names()
    box.check()
    assert curves.nth(0).is_visible() and curves.nth(1).is_visible()


def test_hover_reads_values_and_the_range_control_zooms(browser):
    page, _ = browser
    page.fill("#x-min", "0")
    page.fill("#x-max", "2")
    ticks = page.locator("#plot-f .axis text").all_text_contents()
    assert "0" in ticks and "2" in ticks and "-1" not in ticks and "3" not in ticks
    plot = page.locator("#plot-f")
    plot.scroll_into_view_if_needed()
    bbox = plot.bounding_box()
    page.mouse.move(bbox["x"] + bbox["width"] * 0.6, bbox["y"] + bbox["height"] * 0.5)
    caption = page.locator("#readout caption").inner_text()
    assert caption.startswith("x = ") and "hover" not in caption
    x = float(caption.removeprefix("x = "))
    assert 0 < x < 2
    rows = dict(
        (r.split("\t")[0].strip(), r.split("\t")[1:])
        for r in page.locator("#readout tbody").inner_text().strip().split("\n")
    )
    assert float(rows["ReLU"][0]) == pytest.approx(x) and float(rows["ReLU"][1]) == 1
    page.click("#x-reset")
    assert page.input_value("#x-min") == "-4" and page.input_value("#x-max") == "4"


def test_clicking_a_header_sorts_the_table(browser):
    page, _ = browser
    table = page.locator("#representational-capacity table.sortable").first
    header = table.locator("thead th").nth(1)

    def column():
        texts = table.locator("tbody tr td:nth-child(2)").all_inner_texts()
        return [float(LEADING_NUMBER.match(t.strip()).group(0)) for t in texts]

    original = column()
    assert original != sorted(original)  # otherwise the test proves nothing
    header.click()
    assert column() == sorted(original) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert column() == sorted(original, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"


def test_full_page_screenshot(browser, tmp_path):
    page, log = browser
    path = tmp_path / "report.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 100_000
    assert log == {"errors": [], "failed": [], "external": []}
