"""The signal_propagation study's report section: the agreement table, the critical points,
the tutorial's explanation and the findings. Every sentence is computed from the summary."""

from __future__ import annotations

import math

import numpy as np

from actlab.render.text import fmt
from actlab.studies.base import ReportContext
from actlab.studies.signal_propagation.config import (
    STATUS_NAMES,
    Config,
    point_labels,
    point_title,
)


def with_interval(row, col: str, digits: int = 4) -> str:
    mean, lo, hi = row[f"{col}_mean"], row[f"{col}_ci_low"], row[f"{col}_ci_high"]
    if isinstance(mean, float) and math.isnan(mean):
        return "–"
    if isinstance(lo, float) and math.isnan(lo):
        return fmt(mean, digits)
    return f"{fmt(mean, digits)} [{fmt(lo, digits)}, {fmt(hi, digits)}]"


def q_star_text(row) -> str:
    code = row["pred_q_status"]
    if isinstance(code, float) and math.isnan(code):
        return "–"
    status = STATUS_NAMES.get(int(code), "?")
    if status == "none":
        return "none (grows without bound)"
    return f"{fmt(row['pred_q_star'])} ({status})"


def q_star_words(row) -> str:
    code = row["pred_q_status"]
    if isinstance(code, float) and math.isnan(code):
        return "q* unknown"
    status = STATUS_NAMES.get(int(code), "?")
    if status == "none":
        return "no q*: the variance grows without bound"
    return f"q* = {fmt(row['pred_q_star'])}, {status}"


def fluctuations_kept(row) -> bool:
    """Nothing pulls the measured variance back to the q-map: q* neutral, marginally stable
    or absent, or q* = 0 (there the map is linear in q, so relative errors are kept)."""
    code = row["pred_q_status"]
    return code in (1.0, 2.0, 4.0) or row["pred_q_star"] == 0


def _within(value: float, tol: float) -> bool:
    return math.isfinite(value) and abs(value - 1) <= tol


def report_markdown(summary, rctx: ReportContext, figures: list[str], phase_notes: list[str]):
    cfg: Config = rctx.config
    agreement = summary["agreement"]
    order = point_labels(cfg)
    rank = {label: i for i, label in enumerate(order)}
    act_rank = {a: i for i, a in enumerate(rctx.activations)}
    agreement = agreement.assign(
        _p=agreement["point"].map(lambda x: rank.get(x, len(rank))),
        _a=agreement["activation"].map(lambda x: act_rank.get(x, len(act_rank))),
    ).sort_values(["_p", "_a"])
    measured = agreement[
        agreement["growth_ratio_mean"].notna() | agreement["var_ratio_mean"].notna()
    ]
    one_seed = rctx.seeds == 1
    fixed = ", ".join(f"({p.sigma_w:.4g}, {p.sigma_b:g})" for p in cfg.points) or "none"
    crit = ", ".join(f"{sb:g}" for sb in cfg.critical_sigma_b) or "none"
    lines = [
        "**Question.** Mean-field theory (Poole et al. 2016; Schoenholz et al. 2017) predicts, "
        "for an infinitely wide network with weights N(0, σw²/fan_in) and biases N(0, σb²), "
        "the pre-activation variance of every layer (the q-map q' = σw² E[φ(√q z)²] + σb²) "
        "and the factor χ = σw² E[φ'(√q z)²] by which the mean squared gradient grows per "
        "layer going backwards; at the fixed point q*, χ1 < 1 is ordered (vanishing), "
        "χ1 > 1 chaotic (exploding). Do finite networks follow it, and where not?",
        "",
        f"**Method.** Width {cfg.width}, {cfg.depth} hidden layers, a width-{cfg.width} "
        f"output layer; Gaussian weights and biases at (σw, σb) = {fixed}, and at each "
        f"activation's own edge-of-chaos σw for σb = {crit} where theory finds a usable "
        f"(stable) one. {cfg.n_samples} inputs x ~ N(0, I), so q1 = σw² + σb². One forward "
        "pass and one backward pass of loss = Σ out·r with fixed r ~ N(0, 1) (an isotropic "
        "gradient at the output). Measured per layer: q_l, the mean of z_l² over units and "
        "inputs, and the mean squared gradient at z_l; growth = its ratio between layer l and "
        "l+1. Theory: the q-map iterated from q1 and χ(q_l) along it. The summaries are "
        "geometric means over the last half of the layers, where the signal is nearest q*; "
        f"intervals are 95% over {rctx.seeds} seed(s). Within a seed every activation shares "
        "the inputs and the standard-normal weight draws of each point.",
    ]
    if cfg.xavier:
        lines += [
            "",
            f"The tutorial's networks are measured too: 1 input, width {cfg.xavier_width}, "
            f"{cfg.xavier_depth} hidden layers, 1 output, Xavier-uniform, zero biases (σw² = 1 "
            f"between hidden layers, q1 = 2/(1 + width) = {2 / (1 + cfg.xavier_width):.3g}).",
        ]
    lines += ["", *(f"![{name}](figures/{name})" for name in figures), ""]
    if phase_notes:
        lines += [f"*Phase diagram: {'; '.join(phase_notes)}.*", ""]
    if one_seed:
        lines += ["*One seed: these numbers are single samples and carry no error bar.*", ""]
    lines += [
        "**Agreement** (measured / predicted, mean over seeds"
        + ("" if one_seed else " [95% interval]")
        + "; the prediction is the theory along the same layers; χ1 is at q*):",
        "",
        "| activation | point | σw | width | q* (theory) | χ1 (theory) | measured q / q-map | "
        "measured growth / predicted | measured growth / χ1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in measured.iterrows():
        lines.append(
            f"| {row['activation']} | {point_title(row['point'], cfg)} | {fmt(row['sigma_w'], 4)} "
            f"| {int(row['width'])} | {q_star_text(row)} | {fmt(row['pred_chi_1'], 4)} | "
            f"{with_interval(row, 'var_ratio')} | {with_interval(row, 'growth_ratio')} | "
            f"{with_interval(row, 'growth_vs_chi_1')} |"
        )
    lines += ["", *critical_lines(agreement, cfg)]
    lines += tutorial_lines(summary["tutorial"], rctx)
    lines += ["", "**What the data says.**", ""]
    lines += [f"- {f}" for f in findings(summary, rctx)]
    return "\n".join(lines)


def critical_lines(agreement, cfg: Config) -> list[str]:
    crit = agreement[agreement["point"].str.startswith("critical,")]
    if crit.empty:
        return []
    lines = ["**Critical points** (edge of chaos, χ1 = 1 at q*):", ""]
    for _, row in crit.iterrows():
        sb = row["sigma_b"]
        code = row["critical_status"]
        status = STATUS_NAMES.get(int(code), "?") if math.isfinite(code) else "?"
        if status in ("stable", "marginally stable", "neutral"):
            text = f"σw = {fmt(row['sigma_w'], 5)} ({status} q* = {fmt(row['pred_q_star'], 4)})"
        elif status == "unstable":
            text = (
                f"none usable: χ1 = 1 at σw = {fmt(row['critical_candidate_sigma_w'], 5)} "
                f"(q* = {fmt(row['critical_candidate_q_star'], 4)}) sits on an unstable "
                "variance fixed point, so no network was built"
            )
        else:
            text = "none: χ1 = 1 has no solution at any variance fixed point"
        lines.append(f"- {row['activation']} at σb = {sb:g}: {text}.")
    return [*lines, ""]


def tutorial_lines(tut, rctx: ReportContext) -> list[str]:
    if tut.empty:
        return []
    cfg: Config = rctx.config
    have_gf = tut["gf_factor_mean"].notna().any()
    depth = int(tut["depth"].iloc[0])
    width = int(tut["width"].iloc[0])
    lines = [
        f"**Explaining the tutorial** (Xavier-uniform, width {width}, depth {depth}, zero "
        "biases, so σw = 1, σb = 0 between hidden layers). χ1 < 1 means the gradient norm "
        f"shrinks by about χ1^(depth/2) = χ1^{depth / 2:g} from the output to the input. The "
        "gradient-flow study's mean |dW| also carries each layer's input, which shrinks "
        "forwards where q* = 0, so its last/first ratio can stay near 1 while every gradient "
        "vanishes:",
        "",
        "| activation | q* | χ1 | χ1^(depth/2) | measured growth per layer "
        + ("" if rctx.seeds == 1 else "[95%] ")
        + "| predicted (same layers) | predicted gradient-flow (last/first)^(1/depth) "
        + ("| measured by the gradient-flow study |" if have_gf else "|"),
        "|---|---|---|---|---|---|---|" + ("---|" if have_gf else ""),
    ]
    order = {a: i for i, a in enumerate(rctx.activations)}
    tut = tut.assign(_a=tut["activation"].map(lambda a: order.get(a, len(order)))).sort_values("_a")
    for _, row in tut.iterrows():
        chi = row["pred_chi_1"]
        decay = chi ** (depth / 2) if math.isfinite(chi) else math.nan
        measured = (
            f"{fmt(row['growth_mean_mean'], 3)} [{fmt(row['growth_mean_ci_low'], 3)}, "
            f"{fmt(row['growth_mean_ci_high'], 3)}]"
            if math.isfinite(row["growth_mean_ci_low"])
            else fmt(row["growth_mean_mean"], 3)
        )
        line = (
            f"| {row['activation']} | {q_star_text(row)} | {fmt(chi, 3)} | {fmt(decay, 3)} | "
            f"{measured} | {fmt(row['pred_growth_mean'], 3)} | {fmt(row['pred_dw_factor'], 3)} |"
        )
        if have_gf:
            gf = (
                f"{fmt(row['gf_factor_mean'], 3)} [{fmt(row['gf_factor_ci_low'], 3)}, "
                f"{fmt(row['gf_factor_ci_high'], 3)}]"
                if math.isfinite(row["gf_factor_ci_low"])
                else fmt(row["gf_factor_mean"], 3)
            )
            line += f" {gf} |"
        lines.append(line)
    if not have_gf:
        lines += [
            "",
            f"*The gradient-flow study's measured factor appears here when the same run includes "
            f"gradient_flow at depth {cfg.xavier_depth} and width {cfg.xavier_width}.*",
        ]
    return [*lines, ""]


def findings(summary, rctx: ReportContext) -> list[str]:
    """Sentences computed from the summary; nothing here is written in advance."""
    cfg: Config = rctx.config
    tol = cfg.tolerance
    agreement = summary["agreement"]
    out: list[str] = []

    def name(row) -> str:
        return f"{row['activation']} at {point_title(row['point'], cfg)}"

    grown = agreement[agreement["growth_ratio_mean"].notna()]
    if not grown.empty:
        good = grown[grown["growth_ratio_mean"].map(lambda v: _within(v, tol))]
        bad = grown.drop(good.index)
        out.append(
            f"Gradient growth per layer agrees with mean-field theory within "
            f"{100 * tol:g}% in {len(good)} of {len(grown)} settings"
            + (
                "; outside: "
                + "; ".join(
                    f"{name(r)} (width {int(r['width'])}): {fmt(r['growth_ratio_mean'], 4)}"
                    for _, r in bad.iterrows()
                )
                if not bad.empty
                else ""
            )
            + "."
        )
        by_width = grown.groupby("width")["growth_ratio_mean"].apply(
            lambda s: float(np.nanmax(np.abs(s - 1)))
        )
        if len(by_width) > 1:
            out.append(
                "Largest gradient-growth disagreement by width: "
                + ", ".join(f"width {int(w)}: {100 * v:.3g}%" for w, v in by_width.items())
                + "."
            )
        chi_ok = grown[grown["growth_vs_chi_1_mean"].notna()]
        slow = chi_ok[
            ~chi_ok["growth_vs_chi_1_mean"].map(lambda v: _within(v, tol))
            & chi_ok["growth_ratio_mean"].map(lambda v: _within(v, tol))
        ]
        if not slow.empty:
            out.append(
                "Measured growth matches the theory layer by layer but not yet χ1 at q* for "
                + "; ".join(
                    f"{name(r)} (growth/χ1 {fmt(r['growth_vs_chi_1_mean'], 4)})"
                    for _, r in slow.iterrows()
                )
                + ": the variance has not reached its fixed point within the last half of "
                "the layers (slow convergence)."
            )
    varied = agreement[agreement["var_ratio_mean"].notna()]
    if not varied.empty:
        good = varied[varied["var_ratio_mean"].map(lambda v: _within(v, tol))]
        bad = varied.drop(good.index)
        text = (
            f"The pre-activation variance follows the q-map within {100 * tol:g}% in "
            f"{len(good)} of {len(varied)} settings"
        )
        if not bad.empty:
            parts = [
                f"{name(r)}: {fmt(r['var_ratio_mean'], 3)} ({q_star_words(r)})"
                for _, r in bad.iterrows()
            ]
            text += "; outside: " + "; ".join(parts)
            kept = bad[bad.apply(fluctuations_kept, axis=1)]
            if not kept.empty:
                shapes = sorted({(int(r["depth"]), int(r["width"])) for _, r in kept.iterrows()})
                text += (
                    f". {len(kept)} of these {len(bad)} sit where nothing restores the variance "
                    "(q* neutral, marginally stable, absent, or 0 so that the map is linear "
                    "there): relative finite-width errors are kept and accumulate with depth "
                    "(depth/width " + ", ".join(f"{d}/{w} = {d / w:.3g}" for d, w in shapes) + ")"
                )
        out.append(text + ".")
    crit = agreement[agreement["point"].str.startswith("critical,")]
    for code, words in (
        (3.0, "χ1 = 1 only on an unstable variance fixed point (not a usable critical point)"),
        (4.0, "χ1 = 1 at no variance fixed point"),
    ):
        hit = crit[crit["critical_status"] == code]
        if not hit.empty:
            out.append(
                "No critical point measured for "
                + ", ".join(f"{r['activation']} (σb = {r['sigma_b']:g})" for _, r in hit.iterrows())
                + f": {words}."
            )
    tut = summary["tutorial"]
    if not tut.empty:
        depth = int(tut["depth"].iloc[0])
        ordered = tut[tut["pred_chi_1"] < 1 - tol]
        if not ordered.empty:
            out.append(
                "Under the tutorial's Xavier init, mean-field theory puts "
                + ", ".join(
                    f"{r['activation']} (χ1 = {fmt(r['pred_chi_1'])})"
                    for _, r in ordered.iterrows()
                )
                + f" in the ordered phase: over {depth} layers the gradient norm shrinks by "
                "χ1^(depth/2)."
            )
        hidden = ordered[(ordered["pred_dw_factor"] - 1).abs() < 0.02]
        if not hidden.empty:
            out.append(
                f"For {', '.join(hidden['activation'])} q* = 0: the forward signal shrinks as "
                "fast as the gradient, so the predicted gradient-flow per-layer factor is "
                f"{', '.join(fmt(v) for v in hidden['pred_dw_factor'])} — a flat last/first "
                "profile that hides the vanishing."
            )
        cmp = tut[tut["gf_factor_mean"].notna() & tut["pred_dw_factor"].notna()]
        if not cmp.empty:
            err = (cmp["gf_factor_mean"] / cmp["pred_dw_factor"] - 1).abs()
            worst = cmp.loc[err.idxmax()]
            out.append(
                f"The gradient-flow study's measured per-layer factor is within "
                f"{100 * float(err.max()):.2g}% of the single-input mean-field prediction for "
                f"every activation (largest gap: {worst['activation']}, "
                f"{fmt(worst['gf_factor_mean'])} measured vs {fmt(worst['pred_dw_factor'])})."
            )
    return out
