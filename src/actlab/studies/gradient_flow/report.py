"""The gradient_flow study's report section: the decay table per initialisation and the
findings, every sentence computed from the summary."""

from __future__ import annotations

import math
from typing import Any

from actlab.render.text import sci
from actlab.studies.base import ReportContext
from actlab.studies.gradient_flow.config import DECAY_LIMIT, Config, ratio_band


def band_reading(summary_row) -> str:
    """The protocol's band for the geometric mean, or the range of bands the 95% interval
    spans when the seeds do not agree on one."""
    central = ratio_band(10 ** summary_row["mean"])
    if math.isnan(summary_row["ci_low"]):
        return central
    low, high = ratio_band(10 ** summary_row["ci_low"]), ratio_band(10 ** summary_row["ci_high"])
    return central if low == high else f"{central} (interval spans {low} to {high})"


def reading(row, cfg: Config) -> str:
    """The table's reading of one activation at one depth, in the words of the module
    docstring: vanished / exploded (by the decay across the hidden layers) in how many
    seeds, else kept its size within the limit; collapsed and faint seeds said apart."""
    n = int(row["n_seeds"])
    limit = f"{DECAY_LIMIT:g}x"
    parts = []
    for state, verb in (("vanished", "shrank"), ("exploded", "grew")):
        k = int(row[state])
        if k:
            where = "in every seed" if k == n else f"in {k} of {n} seeds"
            parts.append(f"{state} {where} ({verb} more than {limit} across the hidden layers)")
    if not parts:
        parts.append(f"kept its size within {limit} in every seed")
    if row["collapsed"]:
        k = int(row["collapsed"])
        parts.append(
            f"collapsed in {'every seed' if k == n else f'{k} of {n} seeds'} (every layer "
            f"below {cfg.vanish_threshold:g}: the forward signal died out)"
        )
    if row.get("faint", 0):
        k = int(row["faint"])
        parts.append(
            f"faint in {'every seed' if k == n else f'{k} of {n} seeds'} (every layer more "
            f"than {limit} below the median activation's strongest layer)"
        )
    return "; ".join(parts)


def report_markdown(summary: dict[str, Any], rctx: ReportContext, figure_name: str) -> str:
    from actlab.studies.base import init_words

    cfg: Config = rctx.config
    ratio = summary["ratio"]
    depth = (
        cfg.report_depth if cfg.report_depth in set(ratio["depth"]) else int(ratio["depth"].max())
    )
    one_seed = rctx.seeds == 1
    inits = " and, separately, ".join(init_words(i) for i in cfg.inits)
    lines = [
        "**Question.** Does the gradient reaching the first layers of a deep, untrained "
        "network keep its size, or does it shrink (vanish) or grow (explode) layer by layer?",
        "",
        f"**Method.** Networks of depth {', '.join(map(str, cfg.depths))}, width {cfg.width}, "
        f"{inits}; {cfg.n_samples} inputs from "
        f"N(0, 1); loss = mean output; one backward pass. For each Linear layer, the mean "
        f"absolute weight gradient. {rctx.seeds} seed(s) per setting; within a seed all "
        "activations share inputs and the random numbers of their weights. The score is the "
        "decay across the hidden layers, which all have the same shape: the last hidden "
        "layer's gradient over the first's. Vanished: it shrank by more than "
        f"{DECAY_LIMIT:g}x; exploded: it grew by more than that; collapsed: every layer "
        f"below {cfg.vanish_threshold:g}; faint: a profile that kept its size but whose "
        f"strongest layer is more than {DECAY_LIMIT:g}x below the median activation's on the "
        "same seed (the decay alone would read it as kept). All four are failures of the "
        "property. What this can show: how the gradient's size "
        "changes with depth at this initialisation, before any training; whether a network "
        "then trains is the depth-stress test's question.",
        "",
        f"![Gradient magnitude per layer ({init_words(cfg.main_init)})](figures/{figure_name})",
        "",
    ]
    if one_seed:
        lines += ["*One seed: these numbers are single samples and carry no error bar.*", ""]
    for init in cfg.inits:
        own = ratio[ratio["init"] == init] if "init" in ratio else ratio
        lines += decay_table(own, rctx, depth, init, one_seed)
        missing = summary.get("no_edge", {}).get(init, [])
        if missing:
            lines += [
                f"No edge of chaos at sigma_b = {cfg.sigma_b:g} (mean-field theory), so not "
                f"measured at this initialisation: {', '.join(missing)}.",
                "",
            ]
    lines += [
        "A value above 1 means the gradient is smaller near the input than near the output (it "
        "shrank on its way back), below 1 that it grew. "
        "The protocol's last / first ratio divides the output layer's gradient (width -> 1) "
        "by the input layer's (1 -> width): the two differ in shape, so that ratio is shown "
        "for comparison with the original and not scored.",
        "",
        "**What the data says.**",
        "",
    ]
    for init in cfg.inits:
        own = ratio[ratio["init"] == init] if "init" in ratio else ratio
        prefix = f"{init_words(init).capitalize()}: " if len(cfg.inits) > 1 else ""
        lines += [f"- {prefix}{f}" for f in findings(own, rctx.activations, cfg)]
    if len(cfg.inits) > 1:
        lines += [f"- {f}" for f in disagreements(summary, rctx, cfg)]
    return "\n".join(lines)


def decay_table(ratio, rctx: ReportContext, depth: int, init: str, one_seed: bool) -> list[str]:
    from actlab.studies.base import init_words

    cfg: Config = rctx.config
    at = ratio[ratio["depth"] == depth].set_index("activation")
    lines = [
        f"**Gradient decay at depth {depth}, {init_words(init)}** (geometric means over seeds"
        + ("" if one_seed else ", with 95% intervals")
        + "; layer 1 is the input side):",
        "",
        f"| activation | hidden layer {depth} / layer 2 | 95% interval | reading | "
        "first layer mean abs dW | weakest layer | protocol's last / first |",
        "|---|---|---|---|---|---|---|",
    ]
    for act in rctx.activations:
        if act not in at.index:
            continue
        r = at.loc[act]
        decay = 10 ** r["decay"] if math.isfinite(r["decay"]) else math.nan
        interval = (
            "–"
            if not math.isfinite(r["decay_low"])
            else f"{sci(10 ** r['decay_low'])} – {sci(10 ** r['decay_high'])}"
        )
        zeros = f" ({int(r['zeros'])} exact zero(s), floored)" if r["zeros"] else ""
        geo = 10 ** r["mean"] if math.isfinite(r["mean"]) else math.nan
        lines.append(
            f"| {act} | {sci(decay)} | {interval} | {reading(r, cfg)} | "
            f"{sci(10 ** r['first_log10'])} | {sci(10 ** r['min_log10'])}{zeros} | "
            f"{sci(geo)} |"
        )
    return [*lines, ""]


def disagreements(summary, rctx: ReportContext, cfg: Config) -> list[str]:
    """Where the verdict depends on the initialisation: activations whose gradient vanished
    or exploded (in most seeds) at one init and kept its size at the other, per depth."""
    from actlab.studies.base import init_words

    ratio = summary["ratio"]
    main, other = cfg.inits[0], cfg.inits[1]
    out = []
    for depth in sorted(ratio["depth"].unique()):
        a = ratio[(ratio["init"] == main) & (ratio["depth"] == depth)].set_index("activation")
        b = ratio[(ratio["init"] == other) & (ratio["depth"] == depth)].set_index("activation")
        moved = []
        for act in rctx.activations:
            if act not in a.index or act not in b.index:
                continue
            sa, sb = majority_reading(a.loc[act]), majority_reading(b.loc[act])
            if sa != sb:
                moved.append(f"{act} ({sa} at the first, {sb} at the second)")
        if moved:
            out.append(
                f"Depth {depth}: the verdict depends on the initialisation "
                f"({init_words(main)} against {init_words(other)}): {'; '.join(moved)}."
            )
    if not out:
        out.append(
            "At every depth, each activation measured at both initialisations got the same "
            "reading (vanished, exploded or kept its size, in most seeds) at both."
        )
    return out


def majority_reading(row) -> str:
    n = int(row["n_seeds"])
    for state in ("vanished", "exploded", "faint"):
        if 2 * int(row[state]) > n:
            return state
    return "kept its size"


def findings(ratio, activations: list[str], cfg: Config) -> list[str]:
    """Sentences computed from the summary; nothing here is written in advance. Vanished,
    exploded and collapsed as the module docstring defines them, per seed."""
    out = []
    for depth in sorted(ratio["depth"].unique()):
        at = ratio[(ratio["depth"] == depth) & ratio["activation"].isin(activations)]
        at = at[at["decay"].notna()]
        if at.empty:
            continue
        kept = at[
            (at["vanished"] == 0)
            & (at["exploded"] == 0)
            & (at["faint"] == 0)
            & (at["collapsed"] == 0)
        ]
        if len(kept) > 1:
            flattest = kept.loc[kept["decay"].abs().idxmin()]
            steepest = kept.loc[kept["decay"].abs().idxmax()]
            out.append(
                f"Depth {depth}, among activations whose gradient kept its size within "
                f"{DECAY_LIMIT:g}x (neither collapsed nor faint) in every seed, by geometric mean over seeds "
                "(descriptive, untested): the smallest change across the hidden layers is "
                f"{flattest['activation']}'s ({decay_text(flattest)}), the largest "
                f"{steepest['activation']}'s ({decay_text(steepest)})."
            )
        for state, verb in (("vanished", "shrank"), ("exploded", "grew")):
            every = at[at[state] == at["n_seeds"]]["activation"].tolist()
            some = at[(at[state] > 0) & (at[state] < at["n_seeds"])]
            if every:
                out.append(
                    f"Depth {depth}: the gradient {state} ({verb} more than "
                    f"{DECAY_LIMIT:g}x across the hidden layers) in every seed for "
                    f"{', '.join(every)}."
                )
            if not some.empty:
                listed = ", ".join(
                    f"{r.activation} ({int(getattr(r, state))} of {int(r.n_seeds)})"
                    for r in some.itertuples()
                )
                out.append(f"Depth {depth}: the gradient {state} in some seeds only: {listed}.")
        faint = at[at["faint"] > 0]
        if not faint.empty:
            listed = ", ".join(
                f"{r.activation} ({int(r.faint)} of {int(r.n_seeds)}; strongest layer "
                f"{sci(10**r.max_log10)} against the median activation's "
                f"{sci(10**r.median_max_log10)})"
                for r in faint.itertuples()
            )
            out.append(
                f"Depth {depth}: the gradient kept its size across the hidden layers but was "
                f"faint (even its strongest layer more than {DECAY_LIMIT:g}x below the "
                f"median activation's, by geometric mean over seeds) for {listed}: small "
                "everywhere, not preserved."
            )
        collapsed = at[at["collapsed"] > 0]
        if not collapsed.empty:
            listed = ", ".join(
                f"{r.activation} ({int(r.collapsed)} of {int(r.n_seeds)})"
                for r in collapsed.itertuples()
            )
            out.append(
                f"Depth {depth}: every layer's gradient was below {cfg.vanish_threshold:g} "
                f"(collapsed: the forward signal died out at this initialisation) for {listed}."
            )
    return out


def decay_text(row) -> str:
    """The geometric-mean decay with its 95% interval when there is one."""
    text = f"last hidden / first hidden {sci(10 ** row['decay'])}"
    if math.isfinite(row["decay_low"]):
        text += f", 95% interval {sci(10 ** row['decay_low'])} to {sci(10 ** row['decay_high'])}"
    return text
