"""Statistics over seeds of the signal_propagation study, from stored results only."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from actlab.studies.signal_propagation.config import NAME, XAVIER

LAYER_METRICS = ("preact_var", "grad_sq", "grad_growth", "pred_q", "pred_growth")
RATIOS = ("var_ratio", "growth_ratio", "growth_vs_chi_1", "growth_mean")
THEORY = (
    "sigma_w",
    "sigma_b",
    "pred_q_star",
    "pred_q_status",
    "pred_q_slope",
    "pred_chi_1",
    "pred_growth_mean",
    "pred_var_mean",
    "critical_status",
    "critical_candidate_sigma_w",
    "critical_candidate_q_star",
    "pred_dw_factor",
)


def summarize(results) -> dict[str, Any]:
    """Per activation x point: measured/predicted ratios with 95% intervals over seeds
    ("agreement"), per-layer geometric means over seeds ("layers"), the tutorial
    explanation ("tutorial"; with the gradient_flow study's numbers when the run has them)."""

    import pandas as pd

    from actlab.stats import describe

    df = results[results["study"] == NAME]
    keys = ["activation", "point"]
    scal = df[df["layer"].isna()]
    wide = scal.pivot_table(
        index=["activation", "point", "seed"],
        columns="metric",
        values="value",
        aggfunc="first",
        dropna=False,
        sort=False,
    ).reset_index()
    wide.columns.name = None
    shape = df.groupby(keys, sort=False)[["width", "depth"]].first().reset_index()
    agreement = shape.copy()
    for col in THEORY:
        if col in wide:
            first = wide.groupby(keys, sort=False)[col].first().reset_index()
            agreement = agreement.merge(first, on=keys, how="left")
        else:
            agreement[col] = math.nan
    for col in RATIOS:
        if col in wide and wide[col].notna().any():
            stats = describe(wide[[*keys, col]].dropna(), keys, value=col)
            stats = stats.rename(columns={c: f"{col}_{c}" for c in stats if c not in keys})
            agreement = agreement.merge(stats, on=keys, how="left")
        else:
            for c in ("mean", "std", "n", "ci_low", "ci_high"):
                agreement[f"{col}_{c}"] = math.nan

    layers = df[df["layer"].notna() & df["metric"].isin(LAYER_METRICS)].copy()
    layers["log10"] = np.log10(layers["value"].where(layers["value"] > 0))
    layer_stats = describe(layers, [*keys, "metric", "layer"], value="log10")
    if layer_stats.empty:  # no network measured (e.g. only critical points that do not exist)
        layer_stats = pd.DataFrame(
            columns=[*keys, "metric", "layer", "mean", "std", "n", "ci_low", "ci_high"]
        )

    return {
        "agreement": agreement,
        "layers": layer_stats,
        "tutorial": tutorial_table(results, agreement),
    }


def tutorial_table(results, agreement):
    """Per activation under the tutorial's Xavier init: theory (q*, chi_1, the predicted
    gradient-flow per-layer factor), this study's measured growth at that width, and the
    gradient_flow study's measured (last / first)^(1 / depth) when the run has it."""
    import pandas as pd

    from actlab.stats import describe

    xav = agreement[agreement["point"] == XAVIER].copy()
    cols = [
        "activation",
        "width",
        "depth",
        "pred_q_star",
        "pred_q_status",
        "pred_chi_1",
        "growth_mean_mean",
        "growth_mean_ci_low",
        "growth_mean_ci_high",
        "pred_growth_mean",
        "growth_ratio_mean",
        "pred_dw_factor",
    ]
    xav = xav[cols].reset_index(drop=True)
    for c in ("gf_factor_mean", "gf_factor_ci_low", "gf_factor_ci_high", "gf_seeds"):
        xav[c] = math.nan
    gf = results[(results["study"] == "gradient_flow") & (results["metric"] == "grad_log10_ratio")]
    if xav.empty or gf.empty:
        return xav
    if "init" in gf:
        gf = gf[gf["init"] == XAVIER]
    if "in_dim" in gf:
        gf = gf[gf["in_dim"] == 1]
    for i, row in xav.iterrows():
        at = gf[
            (gf["activation"] == row["activation"])
            & (gf["depth"] == row["depth"])
            & (gf["width"] == row["width"])
        ].copy()
        if at.empty:
            continue
        at["factor"] = 10 ** (at["value"] / row["depth"])
        s = describe(at, ["activation"], value="factor").iloc[0]
        xav.loc[i, ["gf_factor_mean", "gf_factor_ci_low", "gf_factor_ci_high", "gf_seeds"]] = [
            s["mean"],
            s["ci_low"],
            s["ci_high"],
            s["n"],
        ]
    return pd.DataFrame(xav)
