"""The report pipeline: a run's stored results -> verdicts.csv, figures, report.md and
report.html. One function orchestrates (`build_report`, in numbered steps); the studies build
their own parts (parts.py), the cross-study sections are a registry (sections.py), and the
renderers write (markdown.py, html.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actlab.report.markdown import evidence_anchors, networks_words, render_markdown
from actlab.report.parts import anchor
from actlab.report.sections import Inputs, cross_sections


def join_verdicts(parts) -> tuple[Any, dict[str, Any]]:
    """(verdicts, specs by property name) from the studies' parts, in the run's order."""
    from actlab.report.verdicts import verdicts_frame

    rows, specs = [], {}
    for part in parts.values():
        rows += part.verdict_rows
        specs.update(part.specs)
    return verdicts_frame(rows), specs


def write_verdicts(
    run, activations: dict[str, Any] | None = None, *, results=None, builder=None
) -> Path:
    """verdicts.csv alone (no figures, no report), e.g. for `actlab run --no-report`.
    `builder`: a PartBuilder (figure_dir None) that has summarized some studies already."""
    from actlab.activations import resolve_activations
    from actlab.recipes import run_specs
    from actlab.report.parts import PartBuilder
    from actlab.report.verdicts import save_verdicts

    config = run.config
    if activations is None:
        _, activations = resolve_activations(
            run_specs(config.activations, run.manifest.get("activation_recipes"))
        )
    if builder is None:
        builder = PartBuilder(config, activations, None)
    parts = builder.summaries(run.results if results is None else results)
    return save_verdicts(join_verdicts(parts)[0], run.path)


def draw_sheet(parts, names: list[str], findings: list[str], path: Path) -> Path | None:
    """The summary sheet from the studies' summaries (run in a worker: the panels are
    closures, made where they are drawn)."""
    from actlab.render.figures import activation_colours
    from actlab.report import summary as cross
    from actlab.studies import get_study

    colours = activation_colours(names)
    panels = [
        panel
        for part, rctx in parts
        for panel in get_study(part.name).sheet_panels(part.summary, rctx, colours)
    ]
    return cross.summary_sheet(panels, names, findings, path) if panels else None


def build_report(
    run,
    activations: dict[str, Any] | None = None,
    *,
    html: bool = True,
    results=None,
    pool=None,
    builder=None,
    timings: dict[str, float] | None = None,
) -> Path:
    """Write verdicts.csv, figures and report.md (and report.html unless html=False) for a
    run; returns report.md's path. `results`: the run's results if already read; `pool`:
    an Executor whose workers build the studies' parts and the cross-study figures side by
    side; `builder`: a PartBuilder that has started parts during the run (it brings its
    own pool); `timings`: filled with the seconds of each stage."""
    import time

    from actlab.activations import resolve_activations
    from actlab.recipes import run_specs
    from actlab.report import summary as cross
    from actlab.report.parts import PartBuilder, report_contexts, run_beside
    from actlab.report.verdicts import save_verdicts
    from actlab.studies import get_study

    # 1. the run and its activations
    timings_given = timings is not None
    timings = {} if timings is None else timings
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock
        clock = now

    manifest = run.manifest
    config = run.config
    if activations is None:
        _, activations = resolve_activations(
            run_specs(config.activations, run.manifest.get("activation_recipes"))
        )
    names = list(activations)
    figure_dir = run.path / "figures"
    if results is None:
        results = run.results
        lap("read")
    # 2. each study's part (summary, verdict rows, section, figures), in workers when given
    if builder is None:
        builder = PartBuilder(config, activations, figure_dir, pool)
    pool = builder.pool
    parts = builder.summaries(results)
    lap("summaries")
    # 3. the verdicts across studies, and the figures drawn from them beside the rest
    contexts = report_contexts(config, activations, parts)
    verdicts, specs = join_verdicts(parts)
    save_verdicts(verdicts, run.path)
    cd_figure = None
    if specs and not verdicts.empty:
        from actlab.report.cd_diagram import plot_cd_diagrams

        cd_figure = run_beside(
            pool, plot_cd_diagrams, verdicts, figure_dir / "critical_differences.png"
        )
    # 4. the tutorial's claims, the summary sheet, the profile, the recommendations
    from actlab.report.claims import claims_section, judge, save_claims, sheet_lines

    claims = judge([claim for part in parts.values() for claim in part.claims])
    save_claims(claims, run.path)
    sheet = None
    if len(parts) > 1:
        findings = cross.sheet_findings(verdicts) + sheet_lines(claims)
        pairs = [(part, contexts[name]) for name, part in parts.items()]
        # Drawn here while the workers draw the rest: the longest single figure.
        builder.poll(wait=True)
        sheet = run_beside(None, draw_sheet, pairs, names, findings, figure_dir / "summary.png")
    profile = None
    if config.focus is not None and config.focus in activations:
        from actlab.report.profile import profile_markdown

        mnist1d = parts["mnist1d"].summary if "mnist1d" in parts else None
        profile = profile_markdown(
            config.focus, activations[config.focus], verdicts, mnist1d=mnist1d
        )
    recommendations = cross.recommendations(verdicts, specs, config.seeds) if specs else []
    limits = {
        prop: text
        for name in parts
        for prop, text in get_study(name).limits(contexts[name].config).items()
    }
    cannot = cross.protocol_limits(verdicts, limits) if specs else []
    builder.drawn(parts)
    lap("studies' figures")
    cd_figure = cd_figure.result() if cd_figure else None
    sheet = sheet.result() if sheet else None
    lap("cross-study figures")
    for name, part in parts.items():  # seconds inside the part, wherever it ran
        for stage, seconds in part.seconds.items():
            timings[f"{name} {stage}"] = seconds
    # 5. the sections: each study's, then the cross-study ones (sections.py)
    sections = [part.section for part in parts.values()]
    sections += cross_sections(Inputs(parts, verdicts, results, activations, figure_dir))
    # 6. report.md, then report.html from its text
    figures = [f for sec in sections for f in sec["figures"]]
    figures += [f for f in (cd_figure, sheet) if f]
    text = render_markdown(
        title=config.description or ", ".join(get_study(s).title for s in config.studies),
        run_name=run.path.name,
        run_path=str(run.path),
        preset=config.preset or "custom",
        seeds=config.seeds,
        config_hash=manifest["config_hash"],
        env=manifest["environment"],
        started=manifest["started"],
        finished=manifest.get("finished"),
        activation_table=activations,
        networks=networks_words(list(parts)),
        sections=sections,
        best_worst=cross.best_worst_table(verdicts, specs) if specs else "",
        cd_figure=cd_figure.name if cd_figure else None,
        recommendations=recommendations,
        answers=cross.answers(verdicts, specs, evidence_anchors(parts)) if specs else [],
        guide=cross.decision_guide(verdicts, specs) if specs else "",
        claims=claims_section(claims),
        cannot=cannot,
        focus=config.focus if profile else None,
        profile=profile,
        profile_anchor=anchor(f"Profile: {config.focus}") if profile else None,
        sheet=sheet.name if sheet else None,
        figures=figures,
        columns=", ".join(f"`{c}`" for c in manifest["columns"]),
        parquet=(run.path / "results.parquet").exists(),
        parquet_note=manifest.get("parquet"),
        # What the run directory holds once this report is written: report.html when it is
        # written now or was before; timings.json when the run that builds this report
        # writes it after (it passes `timings`) or wrote it before (`actlab report`).
        html=html or (run.path / "report.html").exists(),
        timings=timings_given or (run.path / "timings.json").exists(),
    )
    path = run.path / "report.md"
    path.write_text(text)
    lap("markdown")
    if html:
        from actlab.report.html import build_html

        build_html(run, text, activations)
        lap("html")
    return path
