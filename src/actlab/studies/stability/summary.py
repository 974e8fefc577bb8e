"""Statistics over seeds of the stability study, from stored results only."""

from __future__ import annotations

import math
from typing import Any

from actlab.studies.base import trial_table
from actlab.studies.stability.config import FINITE_STATES, STATES


def outcome_of(row) -> str:
    """A trial's state from its stored indicators: a stuck run whose loss was still
    falling when its budget ran out (`still_improving` 1) is "improving". Runs made before
    "failed" or `still_improving` existed have no such metric: their stuck runs stay
    stuck."""
    if row["diverged"] == 1:
        return "diverged"
    if row["learned"] == 1:
        return "learned"
    if row.get("failed", 0) == 1:
        return "failed"
    return "improving" if row.get("still_improving", 0) == 1 else "stuck"


def summarize(results) -> dict[str, Any]:
    """`lr` and `depth`: per setting x activation, the count of each state and, for each
    finite state, the geometric mean of the loss after training over its runs with a 95%
    interval (`loss_<state>`, `_low`, `_high`) and its exact zeros (floored, counted in
    `zeros`); `budget` (the step budget) and `steps_median`, the median over every seed of
    the updates it took to learn, a seed that did not end learned counting as beyond the
    budget (inf when half the seeds or more did not learn; NaN for runs stored before
    `steps_to_learn` existed). The states are config.STATES: "improving" (a stuck run
    still improving when its budget ran out) is counted apart from "stuck". `trials`: one
    row per trial with its `outcome`. `curves`: the stored training losses (`loss_curves`)."""
    import numpy as np
    import pandas as pd

    from actlab.stats import log10_floored
    from actlab.stats import summarize as stat

    df = results[results["study"] == "stability"]
    metrics = [
        "diverged",
        "learned",
        "stuck",
        "failed",
        "loss_after_training",
        "target_variance",
        "steps_to_learn",
        "still_improving",
    ]
    index = ["part", "activation", "depth", "lr", "steps", "seed"]
    wide = trial_table(df, "stability", metrics, index)
    wide["failed"] = wide["failed"].fillna(0)
    wide["outcome"] = [outcome_of(r) for _, r in wide.iterrows()]
    wide["depth"] = wide["depth"].astype(int)
    wide["lr"] = wide["lr"].astype(float)
    rows = []
    for (part, act, depth, lr), g in wide.groupby(
        ["part", "activation", "depth", "lr"], sort=False
    ):
        learned = g["outcome"] == "learned"
        if learned.any() and g.loc[learned, "steps_to_learn"].isna().any():
            median = math.nan  # stored before steps_to_learn existed
        else:
            median = float(np.median(np.where(learned, g["steps_to_learn"], np.inf)))
        row = {
            "part": part,
            "activation": act,
            "depth": int(depth),
            "lr": float(lr),
            "seeds": len(g),
            **{state: int((g["outcome"] == state).sum()) for state in STATES},
            "variance": float(g["target_variance"].mean()),
            "budget": int(g["steps"].max()),
            "steps_median": median,
            "zeros": 0,
        }
        for state in FINITE_STATES:
            logs, zeros = log10_floored(g[g["outcome"] == state]["loss_after_training"])
            row["zeros"] += zeros
            s = stat(logs)
            row[f"loss_{state}"] = 10**s.mean if s.n else math.nan
            row[f"loss_{state}_low"] = 10**s.ci_low if s.n > 1 else math.nan
            row[f"loss_{state}_high"] = 10**s.ci_high if s.n > 1 else math.nan
        main = majority_state(row)
        row["state"] = main
        row["loss"] = row.get(f"loss_{main}", math.nan)
        row["loss_low"] = row.get(f"loss_{main}_low", math.nan)
        row["loss_high"] = row.get(f"loss_{main}_high", math.nan)
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["part"])
    return {
        "lr": table[table["part"] == "lr"].reset_index(drop=True),
        "depth": table[table["part"] == "depth"].reset_index(drop=True),
        "trials": wide,
        "curves": loss_curves(df),
    }


def loss_curves(df):
    """The training loss per recorded step of every stability trial: part, activation,
    depth, lr, optimizer, seed, step, value and `diverged` (the trial's 1 / 0). The loss at step s is
    the one recorded before the s-th update; a run has none after it stopped."""
    import pandas as pd

    columns = [
        "part",
        "activation",
        "depth",
        "lr",
        "optimizer",
        "seed",
        "step",
        "value",
        "diverged",
    ]
    loss = df[(df["metric"] == "loss") & df["step"].notna()]
    if loss.empty:
        return pd.DataFrame(columns=columns)
    diverged = df[df["metric"] == "diverged"].set_index("trial")["value"]
    out = loss.assign(diverged=loss["trial"].map(diverged).fillna(0))[columns]
    return out.astype({"depth": int, "lr": float, "step": int, "value": float}).reset_index(
        drop=True
    )


def majority_state(row) -> str:
    """The most common state of a cell, divergence included (a tie goes to the earlier of
    learned, still improving, stuck, failed, and divergence wins every tie it is in: it is
    the worst outcome). Its runs give the cell's plotted loss (`loss`, `loss_low`,
    `loss_high`; NaN for "diverged"); partial divergence is drawn beside it. A state the
    row lacks (a summary made before it existed) counts 0."""
    finite = max(FINITE_STATES, key=lambda s: (row.get(s, 0), -FINITE_STATES.index(s)))
    return "diverged" if row["diverged"] >= max(row.get(finite, 0), 1) else finite
