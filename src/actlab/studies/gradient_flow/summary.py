"""Statistics over seeds of the gradient_flow study, from stored results only."""

from __future__ import annotations

import math
from typing import Any

from actlab.studies.gradient_flow.config import DECAY_LIMIT, Config


def main_layers(summary, cfg: Config):
    """The per-layer statistics at the main initialisation (the figures show that one)."""
    layers = summary["layers"]
    return layers[layers["init"] == cfg.main_init] if "init" in layers else layers


def summarize(results) -> dict[str, Any]:
    """Geometric means over seeds with 95% intervals, per init, activation, depth and layer
    (`layers`); per init, activation and depth (`ratio`): the protocol's last/first ratio
    (`mean`, `ci_*`), the decay across the hidden layers (`decay`, `decay_low`,
    `decay_high`, log10), the first, last and weakest layers' geometric means, and per-seed
    counts of `vanished`, `exploded`, `collapsed`, `faint` and `zeros` (trials with an
    exactly zero layer, floored); `trials`: one row per trial (grad_min, grad_max,
    grad_collapsed, log10_min, log10_decay, log10_max: the strongest layer's, state); `no_edge`: per init, the
    activations that had no edge of chaos to be initialised at."""
    import pandas as pd

    from actlab.stats import describe, log10_floored
    from actlab.studies.base import trial_table

    df = results[results["study"] == "gradient_flow"]
    keys = ["init", "activation", "depth"]
    layers = df[df["metric"] == "grad_mean_abs"].copy()
    layers["log10"], _ = log10_floored(layers["value"])
    layer_stats = describe(layers, [*keys, "layer"], value="log10")
    trials = trial_table(
        df,
        "gradient_flow",
        # grad_vanished: the name runs stored before 2026-12-07 gave grad_collapsed
        ["grad_min", "grad_max", "grad_collapsed", "grad_vanished"],
        [*keys, "seed"],
    )
    trials["grad_collapsed"] = trials["grad_collapsed"].fillna(trials.pop("grad_vanished"))
    trials["depth"] = trials["depth"].astype(int)
    trials["log10_min"], _ = log10_floored(trials["grad_min"])
    decay = hidden_decay(layers)
    trials = trials.merge(decay, on=[*keys, "seed"], how="left")
    strongest = layers.groupby([*keys, "seed"], sort=False)["log10"].max().rename("log10_max")
    strongest = strongest.reset_index().astype({"depth": int, "seed": int})
    trials = trials.merge(strongest, on=[*keys, "seed"], how="left")
    trials["state"] = trial_states(trials)
    ratio = describe(df[df["metric"] == "grad_log10_ratio"], keys)
    ratio["depth"] = ratio["depth"].astype(int)
    decay_stats = describe(trials.rename(columns={"log10_decay": "value"}), keys).rename(
        columns={"mean": "decay", "ci_low": "decay_low", "ci_high": "decay_high"}
    )
    decay_stats = decay_stats[[*keys, "decay", "decay_low", "decay_high"]]
    first_last = []
    for (init, act, depth), g in layers.groupby(keys, sort=False):
        top = g["layer"].max()
        own = trials[
            (trials["init"] == init) & (trials["activation"] == act) & (trials["depth"] == depth)
        ]
        first_last.append(
            {
                "init": init,
                "activation": act,
                "depth": int(depth),
                "first_log10": g.loc[g["layer"] == 1, "log10"].mean(),
                "last_log10": g.loc[g["layer"] == top, "log10"].mean(),
                "min_log10": own["log10_min"].mean(),
                "max_log10": own["log10_max"].mean(),
                "vanished": int((own["state"] == "vanished").sum()),
                "exploded": int((own["state"] == "exploded").sum()),
                "collapsed": int(own["grad_collapsed"].sum()),
                "faint": int((own["state"] == "faint").sum()),
                "n_seeds": len(own),
                "zeros": int((own["grad_min"] == 0).sum()),
            }
        )
    table = ratio.merge(pd.DataFrame(first_last), on=keys)
    # the field's typical strongest layer per init and depth, beside which "faint" is judged
    table["median_max_log10"] = table.groupby(["init", "depth"])["max_log10"].transform("median")
    table = table.merge(decay_stats, on=keys, how="left")
    edgeless = df[df["metric"] == "no_critical_init"]
    no_edge = {
        init: list(dict.fromkeys(g["activation"]))
        for init, g in edgeless.groupby("init", sort=False)
    }
    return {"layers": layer_stats, "ratio": table, "trials": trials, "no_edge": no_edge}


def trial_states(trials) -> list[str]:
    """Each trial's word, first that applies: vanished / exploded (the decay across the
    hidden layers past DECAY_LIMIT), collapsed (every layer below the vanish threshold),
    faint (even its strongest layer more than DECAY_LIMIT below the median strongest layer
    of the activations measured on the same seed, depth and init, when there are three or
    more: a flat profile of tiny gradients, which the decay alone reads as kept), else ok."""
    import numpy as np

    limit = math.log10(DECAY_LIMIT)
    group = trials.groupby(["init", "depth", "seed"], sort=False)["log10_max"]
    median = group.transform("median")
    enough = group.transform("size") >= 3
    decay = trials["log10_decay"].fillna(0.0).to_numpy()
    return np.select(
        [
            decay > limit,
            decay < -limit,
            trials["grad_collapsed"].to_numpy() == 1,
            (enough & (trials["log10_max"] < median - limit)).to_numpy(),
        ],
        ["vanished", "exploded", "collapsed", "faint"],
        "ok",
    ).tolist()


def hidden_decay(layers):
    """Per trial, log10 of the last hidden layer's mean |dW| over the first hidden layer's
    (layers D and 2 of a depth-D network, both width x width; zeros floored); NaN for a
    network with fewer than two hidden layers of that shape."""
    import pandas as pd

    keys = ["init", "activation", "depth", "seed"]
    rows = []
    for (init, act, depth, seed), g in layers.groupby(keys, sort=False):
        depth = int(depth)
        by_layer = g.set_index("layer")["log10"]
        value = (
            by_layer.get(depth, math.nan) - by_layer.get(2, math.nan) if depth >= 3 else math.nan
        )
        rows.append(
            {
                "init": init,
                "activation": act,
                "depth": depth,
                "seed": int(seed),
                "log10_decay": value,
            }
        )
    return pd.DataFrame(rows, columns=keys + ["log10_decay"])
