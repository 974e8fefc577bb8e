"""The sparsity study's report section: the results table, per-layer tables and the
findings, every sentence computed from the summary."""

from __future__ import annotations

import math
from typing import Any

from actlab.render.text import fmt, plural
from actlab.studies.base import OPTIMIZER_NAMES, ReportContext
from actlab.studies.sparsity.config import LABELS, LAYER_METRICS, Config


def fixed(value: float, decimals: int) -> str:
    """`decimals` fixed decimals, one format for a value and its interval alike; a non-zero
    value that would print as zero reads "<0.01" (for 2 decimals), never an e-notation or
    more digits beside its neighbours."""
    if value is None or not math.isfinite(value):
        return fmt(value)
    value = float(value) + 0.0  # no "-0.00"
    if value != 0 and round(value, decimals) == 0:
        smallest = f"{10**-decimals:.{decimals}f}"
        return f"<{smallest}" if value > 0 else f">-{smallest}"
    return f"{value:.{decimals}f}"


def rate(value: float) -> str:
    """A fraction as a percentage with two decimals ("<0.01" below 0.005%): the one
    format of every rate in this section (tables, per-layer tables, sentences)."""
    return fmt(value) if value is None or not math.isfinite(value) else fixed(100 * value, 2)


def loss(value: float) -> str:
    """A final loss with three decimals ("<0.001" below 0.0005): the loss column's one
    format."""
    return fixed(value, 3)


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
        "**Question.** After training at a high learning rate, how many hidden values are "
        "exactly zero (sparse), how many units have a slope of exactly zero for every input "
        "(dead: no gradient passes them), and how many have lost their slope for every input "
        "(saturated: almost no gradient passes them, whatever their output)?",
        "",
        f"**Method.** Networks of depth {cfg.depth}, width {cfg.width}, {init_words(cfg.init)}"
        f" and zero biases, trained full-batch on {cfg.n_samples} samples x ~ N(0, I_{cfg.in_dim}), "
        f"y = sin(sum of x) + {cfg.noise:g} N(0, 1), MSE loss, {OPTIMIZER_NAMES[cfg.optimizer]} at "
        f"learning rate {cfg.lr:g} for {cfg.steps} steps. A run whose loss becomes NaN, infinite "
        "or above 1e6 (during training or after the last update) is marked diverged and left "
        "out of every statistic below. After training, one forward pass over the training "
        f"inputs; per hidden layer: sparsity = fraction of values with |a| < "
        f"{cfg.zero_threshold:g}; output ~0 = a unit with |a| <= {cfg.zero_threshold:g} for "
        "every sample (the protocol's 'dead' count: for a saturating activation such as "
        "Sigmoid it counts units stuck near an output of 0 whose slope is small but not "
        f"zero); saturated = a unit with |f'(z)| < {cfg.saturation_threshold:g} for every "
        "sample (dead ReLU units are saturated too: their slope is 0); zero slope = a unit "
        "whose slope f'(z) is exactly 0 for every sample: *dead*, here and in every sentence "
        "below, in the one sense that applies to every activation. The same counts are taken "
        "on the initial weights, before any "
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
        "| activation | sparsity % | output ~0 % | saturated % | zero slope % at init | "
        "zero slope (dead) % after | learned seeds | diverged seeds | final loss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for act in names:
        r = table.loc[act]
        lines.append(
            f"| {act} | {cell(r, 'sparsity', rate, many)} | {cell(r, 'dead_rate', rate, many)} | "
            f"{cell(r, 'saturated_rate', rate, many)} | "
            f"{cell(r, 'zero_slope_rate_init', rate, many)} | "
            f"{cell(r, 'zero_slope_rate', rate, many)} | {int(r.get('learned', 0))} of "
            f"{int(r['n_seeds'])} | {int(r['diverged'])} of "
            f"{int(r['n_seeds'])} | {cell(r, 'final_loss', loss, many)} |"
        )
    lines += [
        "",
        "Rates are percentages with two decimals (<0.01: above zero but below 0.005%); "
        "the final loss has three decimals.",
        "",
        *per_layer_tables(summary["layers"], names, cfg.depth),
    ]
    lines += ["", "**What the data says.**", ""]
    lines += [f"- {f}" for f in findings(summary, names, cfg, rctx.specs)]
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
            vals = [rate(float(s[i])) if i in s.index else "–" for i in layer_ids]
            if all(v == "–" for v in vals):
                vals = ["diverged"] + ["–"] * (len(layer_ids) - 1)
            lines.append(f"| {act} | " + " | ".join(vals) + " |")
        lines.append("")
    lines.append("</details>")
    return lines


def findings(summary, names: list[str], cfg: Config, specs: dict | None = None) -> list[str]:
    """Sentences computed from the summary; nothing here is written in advance. A dead
    unit is one whose slope is exactly 0 on every input (the zero-slope rate), for every
    activation; a unit whose output is ~0 on every input is named for what it is. `specs`
    (name -> Activation) tells which activations have a region of zero slope."""
    t = summary["table"].set_index("activation").loc[names]
    out = []
    alive = t[t["sparsity_n"] > 0]
    zeros = alive[alive["sparsity_mean"] > 0]
    none_zero = [a for a in alive.index if a not in zeros.index]
    if not zeros.empty:
        out.append(
            f"Exact zeros (|a| < {cfg.zero_threshold:g}) appear with "
            f"{listing_of(zeros, 'sparsity')} "
            "of values" + (f"; never with {', '.join(none_zero)}." if none_zero else ".")
        )
    elif not alive.empty:
        out.append(
            f"No activation produced exact zeros (|a| < {cfg.zero_threshold:g}); the protocol's "
            "sparsity is 0 for all of them."
        )

    out += dead_findings(alive, cfg, specs)
    out += divergence_findings(t)
    loss_sentence = lowest_loss(summary, t, alive)
    if loss_sentence:
        out.append(loss_sentence)
    return out


def dead_findings(alive, cfg: Config, specs: dict | None) -> list[str]:
    """Dead (zero slope on every input), output ~0 on every input, and saturated (a slope
    below the threshold but not 0), each named for what it is."""
    from actlab.activations import get_activation, has_zero_slope_region

    if alive.empty:
        return []
    out = []
    modern = alive["zero_slope_rate_n"].gt(0).any()
    if not modern:  # runs stored before the zero-slope rate: only the output count exists
        low = alive[alive["dead_rate_mean"] > 0]
        if not low.empty:
            out.append(
                f"Units with output ~0 (|a| <= {cfg.zero_threshold:g}) on every input: "
                f"{listing_of(low, 'dead_rate')} of units (stored before the zero-slope "
                "count existed, so dead units, zero slope on every input, are not known here)."
            )
        return out

    def can_die(act: str) -> bool:
        spec = (specs or {}).get(act)
        if spec is None:  # not given: a built-in by its name; an unknown one may die
            try:
                spec = get_activation(act)
            except Exception:
                return True
        return has_zero_slope_region(spec)

    dies = alive.index.map(can_die).to_numpy(dtype=bool)
    dying = alive[dies]
    dead = dying[dying["zero_slope_rate_mean"] > 0]
    if not dead.empty:
        out.append(
            f"Dead units (slope exactly 0 on every input): {listing_of(dead, 'zero_slope_rate')} "
            "of units."
        )
    elif not dying.empty:
        out.append(
            f"No unit of {', '.join(dying.index)} was dead (slope exactly 0 on every input)."
        )
    rounded = alive[~dies & (alive["zero_slope_rate_mean"] > 0).to_numpy()]
    if not rounded.empty:
        out.append(
            f"{listing_of(rounded, 'zero_slope_rate')} of units had a slope that float "
            "rounding made exactly 0 on every input, far out on a tail that is never flat in "
            "exact arithmetic: not a region of zero slope, so these activations are not "
            "ranked on dead units."
        )

    # Output ~0 on every input: the protocol's "dead" count. Where it exceeds the zero-slope
    # count, the extra units sit near an output of 0 with a slope that is not 0.
    extra = alive["dead_rate_mean"] - alive["zero_slope_rate_mean"]
    near_zero = alive[extra > 0.5e-4]  # more than 0.005 points: visible at two decimals
    if not near_zero.empty:
        parts = [
            f"{a} {rate(r['dead_rate_mean'])}% (zero slope: {rate(r['zero_slope_rate_mean'])}%)"
            for a, r in near_zero.sort_values("dead_rate_mean", ascending=False).iterrows()
        ]
        out.append(
            f"Units with output ~0 (|a| <= {cfg.zero_threshold:g}) on every input but a slope "
            "that is not 0, so not dead (the protocol counted them as dead): "
            + "; ".join(parts)
            + ". They are saturated near an output of 0, counted with the saturated units."
        )

    # Saturated but not dead: a slope below the threshold that is not exactly 0.
    gap = alive["saturated_rate_mean"] - alive["zero_slope_rate_mean"]
    hidden = alive[gap > 0]
    if not hidden.empty:
        parts = [
            f"{a} {rate(r['saturated_rate_mean'])}% saturated "
            f"({rate(r['zero_slope_rate_mean'])}% dead)"
            for a, r in hidden.sort_values("saturated_rate_mean", ascending=False).iterrows()
        ]
        out.append(
            f"Saturated units (|f'| < {cfg.saturation_threshold:g} on every input: almost no "
            "gradient passes, though the slope is not 0 and the output need not be 0): "
            + "; ".join(parts)
            + "."
        )
    flat_is_dead = alive[(alive["saturated_rate_mean"] > 0) & (gap <= 0)]
    if not flat_is_dead.empty:
        out.append(
            f"For {', '.join(flat_is_dead.index)}, every saturated unit is a dead one "
            "(slope exactly 0)."
        )
    if (alive["saturated_rate_mean"] == 0).all():
        out.append("No activation had a saturated unit.")
    return out


def listing_of(rows, metric: str) -> str:
    rows = rows.sort_values(f"{metric}_mean", ascending=False)
    return ", ".join(f"{a} {rate(v)}%" for a, v in rows[f"{metric}_mean"].items())


def divergence_findings(t) -> list[str]:
    out = []
    for act, r in t.iterrows():
        if r["diverged"] == 0:
            continue
        steps = r["max_steps_diverged"]
        after = ""
        if math.isfinite(steps):  # 0: the loss was not finite before the first update
            after = (
                f" after at most {plural(int(steps), 'update')}"
                if steps > 0
                else " before its first update"
            )
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
    return out


def lowest_loss(summary, t, alive) -> str | None:
    """The lowest mean final loss, named only among the activations that never diverged: a
    diverged run is the worst outcome, so an activation with a diverged seed ranks after
    every one without, and its mean over the seeds that survived is listed apart. The
    runner-up test is the paired sign-flip test; when its seeds cannot reach p < 0.05,
    that is said first."""
    from actlab.stats import family_reach, paired_by_seed, versus_runner_up

    trained = alive[alive["final_loss_mean"].notna()].sort_values("final_loss_mean")
    if trained.empty:
        return None
    var = float(trained["target_var"].mean())
    clean = trained[trained["diverged"] == 0]
    apart = t[t["diverged"] > 0]

    def apart_text(act: str, r) -> str:
        mean = (
            f"{loss(r['final_loss_mean'])} over the surviving seeds, "
            if act in trained.index
            else ""
        )
        return f"{act} ({mean}diverged {int(r['diverged'])} of {int(r['n_seeds'])})"

    listed_apart = ", ".join(apart_text(a, r) for a, r in apart.iterrows())
    if clean.empty:
        sentence = (
            "Every activation diverged in some seed, so none is named lowest in final loss "
            f"(a diverged run is the worst outcome); means over the seeds that did not "
            f"diverge: {listed_apart}."
        )
    else:
        best = clean.index[0]
        among = " among the activations that never diverged" if not apart.empty else ""
        sentence = (
            f"Lowest mean final loss{among}: {best} ({loss(clean.loc[best, 'final_loss_mean'])})"
        )
        if len(clean) > 1:
            runner = clean.index[1]
            c = paired_by_seed(summary["trials"], "final_loss", best, runner)
            sentence += f", then {runner} ({loss(clean.loc[runner, 'final_loss_mean'])})."
            reach = (
                family_reach(c.n, 1, f"the paired test of {best} against {runner}")
                if c.tested
                else None
            )
            if reach:
                sentence += f" {reach}"
            verdict = versus_runner_up(best, runner, c)
            sentence += f" {verdict[0].upper()}{verdict[1:]}"
        else:
            sentence += "; no other activation that never diverged to test it against"
        sentence += "."
        if not apart.empty:
            sentence += (
                " Ranked after every activation that never diverged, since a diverged run is "
                f"the worst outcome (a mean over the seeds that survived would hide it): "
                f"{listed_apart}."
            )
    sentence += f" The target's variance, the loss of a constant output, is {fmt(var)}."
    stuck = trained[trained["final_loss_mean"] >= 0.9 * trained["target_var"]]
    if not stuck.empty:
        sentence += (
            f" {', '.join(stuck.index)} ended at 90% or more of it: learned little or nothing."
        )
    return sentence


def training_findings(summary, names: list[str], rctx: ReportContext) -> list[str]:
    """What training did to the units: for each activation with a region of zero slope, its
    zero-slope units at initialisation against after training, paired by seed over the seeds
    that did not diverge (sign-flip test, Holm over the activations tested); and whether
    the networks learned at all, without which the counts say little about training."""
    from actlab.activations import has_zero_slope_region
    from actlab.stats import paired_comparison, test_text, tests_reach, with_holm

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
    tested = [c for c in adjusted if c.tested]
    family = f"the {len(tested)} activations" if len(tested) > 1 else ""
    # Said before the results: a family that cannot reach p < 0.05 at these seeds.
    reach = tests_reach(
        tested, "the paired tests of zero-slope units at initialisation against after training"
    )
    if reach:
        out.append(reach)
    for (act, own, _), c in zip(tests, adjusted, strict=True):
        if not c.n:
            continue
        before, after = own["zero_slope_rate_init"].mean(), own["zero_slope_rate"].mean()
        if c.significant:
            verdict = "training killed units" if c.mean_diff > 0 else "training revived units"
        elif reach:
            verdict = "these seeds cannot separate a change from seed noise, as said above"
        else:
            verdict = "no change separated from seed noise"
        out.append(
            f"{act}: {rate(before)}% of units had zero slope on every input at initialisation, "
            f"{rate(after)}% after training ({verdict}; {test_text(c, family)})."
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
