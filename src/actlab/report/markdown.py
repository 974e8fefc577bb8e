"""report.md from a run's stored results: each study's section, inside one template."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from actlab.studies.base import ReportContext


def anchor(title: str) -> str:
    """GitHub-style heading anchor."""
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def interval_text(lo: float, hi: float, attained: tuple[bool, bool] = (True, True)) -> str:
    """An output range in interval notation: a bracket where the bound is reached, a
    parenthesis where it is only approached (and at infinite ends)."""
    left = "(-∞" if lo == -math.inf else f"{'[' if attained[0] else '('}{lo:g}"
    right = "∞)" if hi == math.inf else f"{hi:g}{']' if attained[1] else ')'}"
    return f"{left}, {right}"


def bounds_attained(act: Any, lo: float, hi: float) -> tuple[bool, bool]:
    """Whether the activation reaches each finite bound of its declared range, judged on a
    fine float64 grid over [-10, 10]: reached exactly (ReLU's 0, Hardtanh's 1), or at an
    interior extreme (GELU's minimum); an extreme found only at the grid's end is
    approached, not reached (Sigmoid's 0 and 1, Tanh's and ELU's -1)."""
    import torch

    y = act.fn(torch.linspace(-10, 10, 20001, dtype=torch.float64))

    def reached(value: float, index: int, bound: float) -> bool:
        if not math.isfinite(bound):
            return False
        interior = 0 < index < len(y) - 1
        return value == bound or (interior and abs(value - bound) <= 1e-6 * max(1, abs(bound)))

    return (
        reached(y.min().item(), int(y.argmin()), lo),
        reached(y.max().item(), int(y.argmax()), hi),
    )


def activation_rows(activations: dict[str, Any]) -> list[dict[str, Any]]:
    def yn(b: bool) -> str:
        return "yes" if b else "no"

    rows = []
    for act in activations.values():
        lo, hi = act.output_range
        rows.append(
            {
                "name": act.name,
                "formula": act.formula or act.source or act.name,
                "range": interval_text(lo, hi, bounds_attained(act, lo, hi)),
                "zero_centred": yn(act.zero_centred),
                "saturating": act.saturating,
                "monotonic": yn(act.monotonic),
                "smooth": yn(act.smooth),
                "key_property": act.key_property or "custom activation",
            }
        )
    return rows


def summarize_run(run, activations: dict[str, Any]):
    """Each study of the run summarized once: (contexts, summaries), by study name."""
    from actlab.studies import get_study

    config, results = run.config, run.results
    contexts, summaries = {}, {}
    for name in config.studies:
        if results[results["study"] == name].empty:
            continue
        contexts[name] = ReportContext(
            seeds=config.seeds,
            activations=list(activations),
            config=config.study(name),
            specs=activations,
        )
        summaries[name] = get_study(name).summarize(results)
    return contexts, summaries


def write_verdicts(run, activations: dict[str, Any] | None = None) -> Path:
    """verdicts.csv alone (no figures, no report), e.g. for `actlab run --no-report`."""
    from actlab.report.verdicts import collect_verdicts, save_verdicts
    from actlab.runner import resolve_activations

    if activations is None:
        _, activations = resolve_activations(run.config.activations)
    contexts, summaries = summarize_run(run, activations)
    verdicts, _ = collect_verdicts(summaries, contexts)
    return save_verdicts(verdicts, run.path)


def build_report(run, activations: dict[str, Any] | None = None, *, html: bool = True) -> Path:
    """Write verdicts.csv, figures and report.md (and report.html unless html=False) for a
    run; returns report.md's path."""
    import jinja2

    from actlab.report import summary as cross
    from actlab.report.verdicts import collect_verdicts, save_verdicts
    from actlab.runner import resolve_activations
    from actlab.studies import get_study

    manifest = run.manifest
    config = run.config
    if activations is None:
        _, activations = resolve_activations(config.activations)
    names = list(activations)
    figure_dir = run.path / "figures"
    contexts, summaries = summarize_run(run, activations)
    sections = []
    for name, rctx in contexts.items():
        section = get_study(name).report(summaries[name], figure_dir, rctx)
        sections.append(
            {
                "title": section.title,
                "anchor": anchor(section.title),
                "markdown": section.markdown,
                "figures": section.figures,
            }
        )

    verdicts, specs = collect_verdicts(summaries, contexts)
    save_verdicts(verdicts, run.path)
    cd_figure = None
    if specs and not verdicts.empty:
        from actlab.report.cd_diagram import plot_cd_diagrams

        cd_figure = plot_cd_diagrams(verdicts, figure_dir / "critical_differences.png")
    profile = None
    if config.focus is not None and config.focus in activations:
        from actlab.report.profile import profile_markdown

        profile = profile_markdown(config.focus, activations[config.focus], verdicts)
    claims = [
        claim
        for name, rctx in contexts.items()
        for claim in get_study(name).claims(summaries[name], rctx)
    ]
    recommendations = cross.recommendations(verdicts, specs, config.seeds) if specs else []
    sheet = None
    if len(contexts) > 1:
        from actlab.report.figures import activation_colours

        colours = activation_colours(names)
        panels = [
            panel
            for name, rctx in contexts.items()
            for panel in get_study(name).sheet_panels(summaries[name], rctx, colours)
        ]
        if panels:
            findings = cross.sheet_findings(verdicts) + [c.replace("*", "") for c in claims]
            sheet = cross.summary_sheet(panels, names, findings, figure_dir / "summary.png")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("actlab.report", "templates"),
        keep_trailing_newline=True,
        autoescape=False,
    )
    figures = [f for sec in sections for f in sec["figures"]]
    figures += [f for f in (cd_figure, sheet) if f]
    text = env.get_template("report.md.j2").render(
        title=config.description or ", ".join(get_study(s).title for s in config.studies),
        run_name=run.path.name,
        run_path=str(run.path),
        preset=config.preset or "custom",
        seeds=config.seeds,
        config_hash=manifest["config_hash"],
        env=manifest["environment"],
        started=manifest["started"],
        finished=manifest.get("finished"),
        activations=activation_rows(activations),
        sections=sections,
        best_worst=cross.best_worst_table(verdicts, specs) if specs else "",
        cd_figure=cd_figure.name if cd_figure else None,
        recommendations=recommendations,
        guide=cross.decision_guide(verdicts, specs) if specs else "",
        folklore=claims,
        focus=config.focus if profile else None,
        profile=profile,
        profile_anchor=anchor(f"Profile: {config.focus}") if profile else None,
        sheet=sheet.name if sheet else None,
        figures=figures,
        columns=", ".join(f"`{c}`" for c in manifest["columns"]),
        parquet=(run.path / "results.parquet").exists(),
    )
    path = run.path / "report.md"
    path.write_text(text)
    if html:
        from actlab.report.html import build_html

        build_html(run, text, activations)
    return path
