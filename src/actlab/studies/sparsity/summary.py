"""Statistics over seeds of the sparsity study, from stored results only."""

from __future__ import annotations

import math
from typing import Any

from actlab.studies.base import trial_table
from actlab.studies.outcomes import FINITE_STATES
from actlab.studies.sparsity.config import INIT_METRICS, LAYER_METRICS, NETWORK_METRICS


def summarize(results) -> dict[str, Any]:
    """Mean and 95% interval over the seeds that did not diverge; diverged seeds counted apart.
    Intervals of the layer means are clipped to their feasible range ([0, 1] for rates).

    Returns `table` (one row per activation: `<metric>_mean/_low/_high/_n` for the layer
    means, `diverged`, `n_seeds`, `max_steps_diverged`, `target_var`), `layers` (per
    activation, metric and layer), and `histograms` (per activation: summed counts over
    non-diverged seeds, or None when every seed diverged; pooled mean and std).
    """
    import numpy as np
    import pandas as pd

    from actlab.stats import describe

    df = results[results["study"] == "sparsity"]
    order = list(dict.fromkeys(df["activation"]))
    per_layer = df[df["metric"].isin(LAYER_METRICS) & df["layer"].notna()]
    layers = describe(per_layer, ["activation", "metric", "layer"])
    means = describe(
        df[df["metric"].isin(NETWORK_METRICS) & df["layer"].isna()], ["activation", "metric"]
    )

    rows = []
    for act in order:
        a = df[df["activation"] == act]
        div = a[a["metric"] == "diverged"]
        steps = a[a["metric"] == "steps_completed"].set_index("seed")["value"]
        diverged_seeds = div[div["value"] == 1]["seed"]
        row: dict[str, Any] = {
            "activation": act,
            "n_seeds": len(div),
            "diverged": int((div["value"] == 1).sum()),
            "max_steps_diverged": (
                float(steps.reindex(diverged_seeds).max()) if len(diverged_seeds) else math.nan
            ),
            "target_var": float(a[a["metric"] == "target_var"]["value"].mean()),
        }
        m = means[means["activation"] == act].set_index("metric")
        for metric in NETWORK_METRICS:
            r = m.loc[metric] if metric in m.index else None
            row[f"{metric}_mean"] = math.nan if r is None else float(r["mean"])
            low = math.nan if r is None else float(r["ci_low"])
            high = math.nan if r is None else float(r["ci_high"])
            # A t interval can leave the feasible range: clip rates to [0, 1], std and loss at 0.
            if metric != "act_mean" and math.isfinite(low):
                low = max(low, 0.0)
            row[f"{metric}_low"] = low
            if metric in LAYER_METRICS and math.isfinite(high):
                high = min(high, 1.0)
            row[f"{metric}_high"] = high
            row[f"{metric}_n"] = 0 if r is None else int(r["n"])
        rows.append(row)
    table = pd.DataFrame(rows)

    hist_rows = df[df["metric"] == "hist_count"]
    histograms = {}
    for act in order:
        h = hist_rows[hist_rows["activation"] == act]
        counts = (
            h.groupby("step")["value"].sum(min_count=1).sort_index().to_numpy(dtype=float)
            if not h.empty
            else np.array([])
        )
        stats = df[(df["activation"] == act) & df["metric"].isin(["act_mean", "act_std"])]
        wide = stats.pivot_table(index="seed", columns="metric", values="value").dropna()
        if wide.empty or counts.size == 0 or not np.isfinite(counts).all():
            histograms[act] = {"counts": None, "mean": math.nan, "std": math.nan}
            continue
        # Pooled over seeds (equal sample sizes): total mean, and std by total variance.
        mean = float(wide["act_mean"].mean())
        var = float((wide["act_std"] ** 2 + wide["act_mean"] ** 2).mean() - mean**2)
        histograms[act] = {"counts": counts, "mean": mean, "std": math.sqrt(max(var, 0.0))}
    trials = trial_table(
        df,
        "sparsity",
        [
            "dead_rate",
            "saturated_rate",
            "zero_slope_rate",
            *(f"{m}_init" for m in INIT_METRICS),
            "final_loss",
            "diverged",
            *FINITE_STATES,
        ],
        ["activation", "seed"],
    )
    trials["state"] = [state_of(r) for _, r in trials.iterrows()]
    table["learned"] = [
        int((trials[trials["activation"] == a]["state"] == "learned").sum())
        for a in table["activation"]
    ]
    return {"table": table, "layers": layers, "histograms": histograms, "trials": trials}


def state_of(row) -> str:
    """The state a trial ended in ("" for runs stored before states were recorded)."""
    if row["diverged"] == 1:
        return "diverged"
    for state in FINITE_STATES:
        if row[state] == 1:
            return state
    return ""
