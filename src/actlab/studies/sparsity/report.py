"""The sparsity study's report section: the results table, per-layer tables and the
findings, every sentence computed from the summary."""

from __future__ import annotations

import math
from typing import Any

from actlab.report.text import fmt, pct
from actlab.studies.base import OPTIMIZER_NAMES, ReportContext
from actlab.studies.sparsity.config import LABELS, LAYER_METRICS, Config


def cell(r, metric: str, form, with_interval: bool) -> str:
    if r[f"{metric}_n"] == 0:
        return "diverged"
    text = form(r[f"{metric}_mean"])
    if with_interval and math.isfinite(r[f"{metric}_low"]):
        text += f" [{form(r[f'{metric}_low'])}, {form(r[f'{metric}_high'])}]"
    return text


def report_markdown(summary: dict[str, Any], rctx: ReportContext, bars: str, hists: str) -> str:
    from actlab.studies.base import init_words

    cfg: Config = rctx.config
    table = summary["table"].set_index("activation")
    names = [a for a in rctx.activations if a in table.index]
    many = rctx.seeds > 1
    lines = [
        "**Question.** After training at a high learning rate, how many hidden units output "
        "exactly zero (sparse), how many are zero for every input (dead), and how many have "
        "lost their slope for every input (saturated: no gradient passes them, whatever their "
        "output)?",
        "",
        f"**Method.** Networks of depth {cfg.depth}, width {cfg.width}, {init_words(cfg.init)}"
        f" and zero biases, trained full-batch on {cfg.n_samples} samples x ~ N(0, I_{cfg.in_dim}), "
        f"y = sin(sum of x) + {cfg.noise:g} N(0, 1), MSE loss, {OPTIMIZER_NAMES[cfg.optimizer]} at "
        f"learning rate {cfg.lr:g} for {cfg.steps} steps. A run whose loss becomes NaN, infinite "
        "or above 1e6 (during training or after the last update) is marked diverged and left "
        "out of every statistic below. After training, one forward pass over the training "
        f"inputs; per hidden layer: sparsity = fraction of values with |a| < "
        f"{cfg.zero_threshold:g}; dead = a unit with |a| <= {cfg.zero_threshold:g} for every "
        f"sample; saturated = a unit with |f'(z)| < {cfg.saturation_threshold:g} for every "
        "sample (dead ReLU units are saturated too: their slope is 0); zero slope = a unit "
        "whose slope f'(z) is exactly 0 for every sample, dead in the one sense that applies "
        "to every activation. The same counts are taken on the initial weights, before any "
        f"update, so that what training did shows. A run learned when its loss after training "
        f"is below {cfg.learned_below:g} x the target's variance. Values are means over "
        f"the {cfg.depth} layers. {rctx.seeds} seed(s); within a seed every activation starts "
        "from the same random numbers and sees the same data.",
        "",
        f"![Sparsity, dead and saturated units](figures/{bars})",
        "",
        f"![Distribution of post-activation values](figures/{hists})",
        "",
        "The histogram panels are annotated with the mean and standard deviation of the "
        "unclipped finite values.",
        "",
    ]
    if not many:
        lines += ["*One seed: these numbers are single samples and carry no error bar.*", ""]
    lines += [
        "**Results** (% of values or units, mean over layers"
        + (
            " and non-diverged seeds, with 95% interval clipped to the feasible range"
            if many
            else ""
        )
        + "; final loss is the MSE after the last update):",
        "",
        "| activation | sparsity % | dead % | saturated % | zero slope % at init | "
        "zero slope % after | learned seeds | diverged seeds | final loss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for act in names:
        r = table.loc[act]
        lines.append(
            f"| {act} | {cell(r, 'sparsity', pct, many)} | {cell(r, 'dead_rate', pct, many)} | "
            f"{cell(r, 'saturated_rate', pct, many)} | "
            f"{cell(r, 'zero_slope_rate_init', pct, many)} | "
            f"{cell(r, 'zero_slope_rate', pct, many)} | {int(r.get('learned', 0))} of "
            f"{int(r['n_seeds'])} | {int(r['diverged'])} of "
            f"{int(r['n_seeds'])} | {cell(r, 'final_loss', fmt, many)} |"
        )
    lines += ["", *per_layer_tables(summary["layers"], names, cfg.depth)]
    lines += ["", "**What the data says.**", ""]
    lines += [f"- {f}" for f in findings(summary, names, cfg)]
    lines += [f"- {f}" for f in training_findings(summary, names, rctx)]
    return "\n".join(lines)


def per_layer_tables(layers, names: list[str], depth: int) -> list[str]:
    lines = ["<details><summary>Per-layer values (%, mean over non-diverged seeds)</summary>", ""]
    layer_ids = list(range(1, depth + 1))
    for metric in LAYER_METRICS:
        sel = layers[layers["metric"] == metric]
        lines += [
            f"*{LABELS[metric]} by layer (1 = input side)*",
            "",
            "| activation | " + " | ".join(str(i) for i in layer_ids) + " |",
            "|---|" + "---|" * len(layer_ids),
        ]
        for act in names:
            s = sel[sel["activation"] == act].set_index("layer")["mean"]
            vals = [pct(float(s[i])) if i in s.index else "–" for i in layer_ids]
            if all(v == "–" for v in vals):
                vals = ["diverged"] + ["–"] * (len(layer_ids) - 1)
            lines.append(f"| {act} | " + " | ".join(vals) + " |")
        lines.append("")
    lines.append("</details>")
    return lines


def findings(summary, names: list[str], cfg: Config) -> list[str]:
    """Sentences computed from the summary; nothing here is written in advance."""
    t = summary["table"].set_index("activation").loc[names]
    out = []
    alive = t[t["sparsity_n"] > 0]

    def listing(rows, metric: str) -> str:
        rows = rows.sort_values(f"{metric}_mean", ascending=False)
        return ", ".join(f"{a} {pct(v)}%" for a, v in rows[f"{metric}_mean"].items())

    zeros = alive[alive["sparsity_mean"] > 0]
    none_zero = [a for a in alive.index if a not in zeros.index]
    if not zeros.empty:
        out.append(
            f"Exact zeros (|a| < {cfg.zero_threshold:g}) appear with {listing(zeros, 'sparsity')} "
            "of values" + (f"; never with {', '.join(none_zero)}." if none_zero else ".")
        )
    elif not alive.empty:
        out.append(
            f"No activation produced exact zeros (|a| < {cfg.zero_threshold:g}); the protocol's "
            "sparsity is 0 for all of them."
        )

    dead = alive[alive["dead_rate_mean"] > 0]
    if not dead.empty:
        out.append(f"Dead units (zero for every input): {listing(dead, 'dead_rate')} of units.")
    elif not alive.empty:
        out.append("No activation had a dead unit.")

    # Saturated but not dead: flat slope on a non-zero output, invisible to the protocol.
    gap = alive["saturated_rate_mean"] - alive["dead_rate_mean"]
    hidden = alive[gap > 0]
    if not hidden.empty:
        parts = [
            f"{a} {pct(r['saturated_rate_mean'])}% saturated vs {pct(r['dead_rate_mean'])}% dead"
            for a, r in hidden.sort_values("saturated_rate_mean", ascending=False).iterrows()
        ]
        out.append(
            "Units with no slope but a non-zero output, which the sparsity and dead-unit "
            f"metrics cannot see (|f'| < {cfg.saturation_threshold:g} for every input): "
            + "; ".join(parts)
            + "."
        )
    flat_is_dead = alive[(alive["saturated_rate_mean"] > 0) & (gap <= 0)]
    if not flat_is_dead.empty:
        out.append(
            f"For {', '.join(flat_is_dead.index)}, every saturated unit is a dead one "
            "(slope and output both zero)."
        )
    if not alive.empty and (alive["saturated_rate_mean"] == 0).all():
        out.append("No activation had a saturated unit.")

    for act, r in t.iterrows():
        if r["diverged"] == 0:
            continue
        steps = r["max_steps_diverged"]
        after = f" after at most {int(steps)} update(s)" if math.isfinite(steps) else ""
        if r["diverged"] == r["n_seeds"]:
            out.append(
                f"{act} diverged in every seed ({int(r['n_seeds'])} of {int(r['n_seeds'])})"
                f"{after}; it is reported as diverged, not as dead or sparse."
            )
        else:
            out.append(
                f"{act} diverged in {int(r['diverged'])} of {int(r['n_seeds'])} seeds{after}; "
                f"its numbers above come from the other {int(r['n_seeds'] - r['diverged'])}."
            )

    trained = alive[alive["final_loss_mean"].notna()].sort_values("final_loss_mean")
    if not trained.empty:
        best = trained.index[0]
        var = float(trained["target_var"].mean())
        over = (
            " (means over the seeds that did not diverge; diverged: "
            + ", ".join(
                f"{a} {int(r['diverged'])} of {int(r['n_seeds'])}"
                for a, r in t.iterrows()
                if r["diverged"]
            )
            + ")"
            if (t["diverged"] > 0).any()
            else ""
        )
        sentence = (
            f"Lowest mean final loss{over}: {best} ({fmt(trained.loc[best, 'final_loss_mean'])})"
        )
        if len(trained) > 1:
            from actlab.stats import paired_by_seed, versus_runner_up

            runner = trained.index[1]
            c = paired_by_seed(summary["trials"], "final_loss", best, runner)
            sentence += f", then {runner} ({fmt(trained.loc[runner, 'final_loss_mean'])}): "
            sentence += versus_runner_up(best, runner, c)
        sentence += f". The target's variance, the loss of a constant output, is {fmt(var)}."
        stuck = trained[trained["final_loss_mean"] >= 0.9 * trained["target_var"]]
        if not stuck.empty:
            sentence += (
                f" {', '.join(stuck.index)} ended at 90% or more of it: learned little or nothing."
            )
        out.append(sentence)
    return out


def training_findings(summary, names: list[str], rctx: ReportContext) -> list[str]:
    """What training did to the units: for each activation with a region of zero slope, its
    zero-slope units at initialisation against after training, paired by seed over the seeds
    that did not diverge (sign-flip test, Holm over the activations tested); and whether
    the networks learned at all, without which the counts say little about training."""
    from actlab.activations import has_zero_slope_region
    from actlab.stats import paired_comparison, test_text, with_holm

    trials = summary["trials"]
    if "zero_slope_rate_init" not in trials or trials["zero_slope_rate_init"].isna().all():
        return []
    out = []
    can_die = [a for a in names if a in rctx.specs and has_zero_slope_region(rctx.specs[a])]
    cannot = [a for a in names if a in rctx.specs and a not in can_die]
    if cannot:
        out.append(
            f"{', '.join(cannot)} have no region of zero slope (in exact arithmetic), so they "
            "are not ranked on dead units; saturation, a slope near but not at zero, is "
            "counted for them. Far out, a float's rounding can still zero a slope: the "
            "zero-slope column shows where that happened."
        )
    tests = []
    for act in can_die:
        own = trials[(trials["activation"] == act) & (trials["diverged"] != 1)]
        tests.append(
            (act, own, paired_comparison(own["zero_slope_rate"], own["zero_slope_rate_init"]))
        )
    adjusted = with_holm([c for _, _, c in tests]) if tests else []
    family = f"the {len(tests)} activations" if len(tests) > 1 else ""
    for (act, own, _), c in zip(tests, adjusted, strict=True):
        if not c.n:
            continue
        before, after = own["zero_slope_rate_init"].mean(), own["zero_slope_rate"].mean()
        if c.significant:
            verdict = "training killed units" if c.mean_diff > 0 else "training revived units"
        else:
            verdict = "no change separated from seed noise"
        out.append(
            f"{act}: {pct(before)}% of units had zero slope on every input at initialisation, "
            f"{pct(after)}% after training ({verdict}; {test_text(c, family)})."
        )
    states = trials[trials["activation"].isin(names)]
    if "state" in states and (states["state"] != "").any():
        learned = states.groupby("activation", sort=False)["state"].apply(
            lambda s: int((s == "learned").sum())
        )
        none = [a for a in names if a in learned.index and learned[a] == 0]
        if none:
            out.append(
                f"No seed of {', '.join(none)} learned (loss after training at or above "
                f"{rctx.config.learned_below:g} x the target's variance): their unit counts "
                "describe networks that did not fit the data, not the effect of training on "
                "a working network."
            )
    return out
