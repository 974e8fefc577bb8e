"""Shared figure helpers: one colour per activation across every figure of a run, and
byte-reproducible PNG output (so `actlab report` rebuilds identical files).

Each figure is drawn once, as PNG: the report links it and report.html embeds it. An SVG
copy used to be written beside each, at about as much again as the PNG's cost, and
nothing read it but the HTML's choice of the smaller file."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot with a file-only backend (no display on servers or in CI)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def warm_up() -> None:
    """Draw a small figure: the first one a process draws loads fonts and fills caches
    (about half a second), better spent while nothing waits for it."""
    import io

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_yscale("log")
    ax.plot([1, 2], [1, 10], label="warm")
    ax.set_title("warm")
    ax.legend()
    fig.savefig(io.BytesIO(), format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def activation_colours(names: list[str]) -> dict[str, tuple]:
    plt = pyplot()
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def save(fig, path: Path) -> Path:
    """Write `path` as PNG; returns its path."""
    path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    # No dates or software versions in the files: a rebuild gives the same bytes.
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    pyplot().close(fig)
    return path
