"""The signal_propagation study's figures: per-layer profiles against the theory, and the
phase diagram with each activation's edge of chaos."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from actlab.studies.signal_propagation.config import (
    PHASE_SIGMA_B,
    PHASE_SIGMA_W,
    XAVIER,
    Config,
    point_title,
)
from actlab.studies.signal_propagation.meanfield import edge_curve, phase_background


def plot_profiles(layer_stats, order, rctx, measured, predicted, path: Path) -> Path:
    """One panel per point: measured per-layer values (markers: geometric mean over seeds,
    bars: 95% interval) against the theory (lines), one colour per activation."""
    from actlab.render.figures import activation_colours, pyplot, save

    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    cfg: Config = rctx.config
    n = max(1, len(order))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols, 4.0 * rows), squeeze=False)
    colours = activation_colours(rctx.activations)
    for ax, label in zip(axes.flat, order, strict=False):
        at = layer_stats[layer_stats["point"] == label]
        for act in rctx.activations:
            mine = at[at["activation"] == act]
            meas = mine[mine["metric"] == measured].sort_values("layer")
            pred = mine[mine["metric"] == predicted].sort_values("layer")
            if not pred.empty and pred["mean"].notna().any():
                ax.plot(pred["layer"], 10 ** pred["mean"], color=colours[act], lw=1.2)
            if not meas.empty:
                y = 10 ** meas["mean"]
                err = None
                if meas["n"].max() > 1:
                    err = [y - 10 ** meas["ci_low"], 10 ** meas["ci_high"] - y]
                ax.errorbar(
                    meas["layer"],
                    y,
                    yerr=err,
                    fmt="o",
                    ms=2.5,
                    color=colours[act],
                    elinewidth=0.6,
                    label=act,
                )
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(point_title(label, cfg), fontsize=10)
        ax.set_xlabel("layer (1 = input side)")
        ax.set_ylabel(
            "pre-activation variance q_l"
            if measured == "preact_var"
            else "gradient growth per layer (backwards)"
        )
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if axes.flat[0].get_legend_handles_labels()[0]:
        axes.flat[0].legend(fontsize=7, ncol=2)
    what = (
        "Pre-activation variance per layer"
        if measured == "preact_var"
        else "Per-layer growth of the mean squared gradient"
    )
    fig.suptitle(
        f"{what}: measured (markers, geometric mean over seeds, 95% interval) vs mean-field "
        "theory (lines)",
        fontsize=11,
    )
    fig.subplots_adjust(hspace=0.35, wspace=0.3)
    return save(fig, path)


def _resolvable(name: str) -> bool:
    from actlab import theory
    from actlab.errors import UserError

    try:
        theory.prepare(name)
    except (UserError, ValueError, TypeError):
        return False
    return True


def plot_phase(summary, rctx, path: Path) -> tuple[Path, list[str]]:
    """Background: chi_1 of ``phase_activation`` over (sigma_w, sigma_b) (log2 scale); lines:
    each activation's edge of chaos, solid where its variance fixed point is stable, dashed
    where it repels; markers: the points measured."""
    from actlab.render.figures import activation_colours, pyplot, save

    plt = pyplot()
    from matplotlib.colors import TwoSlopeNorm

    cfg: Config = rctx.config
    notes: list[str] = []
    colours = activation_colours(rctx.activations)
    single = False  # an edge of chaos that is one point (ReLU, Linear: chi_1 = 1 for every q*)
    fig, ax = plt.subplots(figsize=(8.2, 5.6))
    sw_lim, sb_lim = (PHASE_SIGMA_W[0], PHASE_SIGMA_W[-1]), (PHASE_SIGMA_B[0], PHASE_SIGMA_B[-1])
    background = cfg.phase_activation
    if background and _resolvable(background):
        pd_ = phase_background(background)
        chi = np.array(
            [[np.nan if c is None else c for c in row] for row in pd_.chi_1], dtype=float
        )
        log_chi = np.log2(np.clip(chi, 2.0**-2.5, 2.0**2.5))
        mesh = ax.pcolormesh(
            pd_.sigma_w,
            pd_.sigma_b,
            np.ma.masked_invalid(log_chi),
            shading="gouraud",
            cmap="coolwarm",
            norm=TwoSlopeNorm(0.0, -2.5, 2.5),
        )
        bar = fig.colorbar(mesh, ax=ax)
        bar.set_label(f"log2 chi_1 of {pd_.activation} (blue ordered, red chaotic)")
        ax.contour(pd_.sigma_w, pd_.sigma_b, log_chi, levels=[0.0], colors="k", linewidths=0.6)
    elif background:
        notes.append(f"no background: theory cannot evaluate '{background}' by name")
    for act in rctx.activations:
        if not _resolvable(act):
            notes.append(f"{act}: no edge-of-chaos curve (theory cannot evaluate it by name)")
            continue
        curve = np.array(edge_curve(act), dtype=float)
        sw, sb, slope = curve[:, 0], curve[:, 1], curve[:, 2]
        ok = np.isfinite(sw) & np.isfinite(sb)
        if not ok.any():
            continue
        stable = ok & (slope <= 1 + 1e-6)
        unstable = ok & (slope > 1 + 1e-6)
        if np.ptp(sw[ok]) < 1e-6 and np.ptp(sb[ok]) < 1e-6:  # one point (ReLU, Linear)
            ax.plot(
                sw[ok][:1],
                sb[ok][:1],
                "*",
                ms=13,
                color=colours[act],
                mec="k",
                mew=0.5,
                zorder=5,
                clip_on=False,
            )
            single = True
            continue
        ax.plot(
            np.where(stable, sw, np.nan),
            np.where(stable, sb, np.nan),
            "-",
            lw=1.6,
            color=colours[act],
        )
        ax.plot(
            np.where(unstable, sw, np.nan),
            np.where(unstable, sb, np.nan),
            "--",
            lw=1.2,
            color=colours[act],
        )
    # the points measured
    agreement = summary["agreement"]
    outside: list[str] = []
    drawn: set[tuple] = set()
    for _, row in agreement.iterrows():
        sw, sb = row["sigma_w"], row["sigma_b"]
        if not (math.isfinite(sw) and math.isfinite(sb)):
            continue
        inside = sw_lim[0] <= sw <= sw_lim[1] and sb_lim[0] <= sb <= sb_lim[1]
        if row["point"].startswith("critical,"):
            if inside:
                ax.plot(
                    sw,
                    sb,
                    "o",
                    ms=6,
                    color=colours.get(row["activation"], "k"),
                    mec="k",
                    mew=0.6,
                    zorder=4,
                    clip_on=False,
                )
            else:
                outside.append(f"{row['activation']} critical σw = {sw:.3g} at σb = {sb:g}")
        elif inside and (row["point"], sw, sb) not in drawn:
            drawn.add((row["point"], sw, sb))
            marker = "s" if row["point"] == XAVIER else "X"
            ax.plot(sw, sb, marker, ms=8, color="k", mfc="none", mew=1.2, zorder=3, clip_on=False)
    if outside:
        notes.append("outside the axes: " + "; ".join(outside))
    handles = [plt.Line2D([], [], color=colours[a], lw=2, label=a) for a in rctx.activations]
    handles += [
        plt.Line2D([], [], color="k", ls="-", label="edge of chaos, stable q*"),
        plt.Line2D([], [], color="k", ls="--", label="edge of chaos, unstable q*"),
        plt.Line2D([], [], color="k", marker="X", ls="", mfc="none", label="fixed point measured"),
        plt.Line2D(
            [], [], color="grey", marker="o", ls="", mec="k", label="critical point measured"
        ),
    ]
    if single:
        handles.append(
            plt.Line2D(
                [], [], color="grey", marker="*", ls="", mec="k", label="edge of chaos: one point"
            )
        )
    if cfg.xavier:
        handles.append(
            plt.Line2D([], [], color="k", marker="s", ls="", mfc="none", label="Xavier (tutorial)")
        )
    ax.legend(handles=handles, fontsize=7, loc="upper right", ncol=2)
    ax.set_xlim(*sw_lim)
    ax.set_ylim(*sb_lim)
    ax.set_xlabel("sigma_w")
    ax.set_ylabel("sigma_b")
    ax.set_title("Order and chaos: chi_1 and each activation's edge of chaos (chi_1 = 1)")
    return save(fig, path), notes
