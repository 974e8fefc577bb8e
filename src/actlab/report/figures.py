"""Shared figure helpers: one colour per activation across every figure of a run, and
byte-reproducible PNG + SVG output (so `actlab report` rebuilds identical files)."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot with a file-only backend (no display on servers or in CI)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    # Fixed SVG element ids instead of random ones: identical rebuilds.
    matplotlib.rcParams["svg.hashsalt"] = "actlab"
    import matplotlib.pyplot as plt

    return plt


def activation_colours(names: list[str]) -> dict[str, tuple]:
    plt = pyplot()
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def save(fig, path: Path) -> Path:
    """Write `path` as PNG and a sibling .svg; returns the PNG path."""
    path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    # No dates or software versions in the files: a rebuild gives the same bytes.
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(
        path.with_suffix(".svg"), bbox_inches="tight", metadata={"Date": None, "Creator": None}
    )
    pyplot().close(fig)
    return path
