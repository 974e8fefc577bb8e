"""The capacity study's report section: the MSE tables, how training ended, and the
findings, every sentence computed from the summary."""

from __future__ import annotations

import math

from actlab.render.text import curves_divergence, sci
from actlab.studies.base import OPTIMIZER_NAMES, ReportContext, init_words
from actlab.studies.capacity.config import TARGETS, Config, budget_words, plateau_words
from actlab.studies.capacity.summary import cell_lookup


def cell_text(row, seeds: int, *, newline: str = " ") -> str:
    """Geometric mean MSE of a cell (over its seeds that did not diverge), with its 95%
    interval when there is one, its diverged seeds, those still improving when the budget
    ran out (their MSE is an upper bound, not the network's capacity) and those resting at
    a constant output."""
    prefix = row["_prefix"]
    mean = row[f"{prefix}mean"]
    n_div, n_seeds = int(row["diverged"]), int(row["n_seeds"])
    if not math.isfinite(mean):
        return f"diverged ({n_div} of {n_seeds})" if n_div else "–"
    text = sci(10**mean)
    low, high = row[f"{prefix}ci_low"], row[f"{prefix}ci_high"]
    if seeds > 1 and math.isfinite(low) and math.isfinite(high):
        text += f"{newline}[{sci(10**low)}, {sci(10**high)}]"
    if n_div:
        text += f"{newline}({n_div} of {n_seeds} diverged)"
    improving, constant = int(row.get("improving", 0)), int(row.get("constant", 0))
    if improving:
        text += f"{newline}({improving} of {n_seeds} still improving)"
    if constant:
        text += f"{newline}({constant} of {n_seeds} at a constant output)"
    zeros = int(row.get(f"{prefix}zeros", 0))
    if zeros:
        text += f"{newline}({zeros} exact zero(s), floored)"
    return text


def ended_text(row, cfg: Config) -> str:
    """How a cell's runs ended: '6 plateaued (median 850 steps)', '2 plateaued, 4 still
    improving', '3 at a constant output, 1 diverged'; '–' for runs stored without the
    record."""
    counts = [
        (int(row["plateaued"]), "plateaued"),
        (int(row["improving"]), "still improving"),
        (int(row["constant"]), "at a constant output"),
        (int(row["diverged"]), "diverged"),
    ]
    text = ", ".join(f"{n} {what}" for n, what in counts if n)
    if not text:
        return "–"
    if cfg.until == "plateau" and math.isfinite(row["steps_median"]):
        text += f" (median {row['steps_median']:g} steps)"
    return text


def mse_table(cells, activations, targets, prefix: str, seeds: int, text=None) -> list[str]:
    """A markdown table, activations by targets; `text(row)` fills a cell (default: its
    MSE, cell_text)."""
    table = cell_lookup(cells, prefix)
    text = text or (lambda row: cell_text(row, seeds))
    lines = [
        "| activation | " + " | ".join(targets) + " |",
        "|---" * (len(targets) + 1) + "|",
    ]
    for act in activations:
        texts = [text(table.loc[(act, t)]) if (act, t) in table.index else "–" for t in targets]
        lines.append(f"| {act} | " + " | ".join(texts) + " |")
    return lines


def curves_caption(summary, cfg: Config, seeds: int) -> str:
    """What the training-curve figure draws: the median and range over how many seeds, the
    log scale, the training's conditions, and how many runs diverged (their curves end)."""
    per = "a single run" if seeds == 1 else f"the median over {seeds} seeds"
    band = "" if seeds == 1 else " and the range over seeds (lowest to highest) as a shaded band"
    text = (
        f"*Training curves: the training MSE (on the {cfg.n_train} training points, recorded "
        f"before each update) against step, log scale, one panel per target; for each "
        f"activation {per} as a line{band}. {OPTIMIZER_NAMES[cfg.optimizer]} at learning "
        f"rate {cfg.lr:g}, {budget_words(cfg)}, depth {cfg.depth}, width {cfg.width}. "
        "Dashed: the target's variance on the test grid (about a constant output's loss)."
    )
    cells = summary["cells"]
    diverged, total = int(cells["diverged"].sum()), int(cells["n_seeds"].sum())
    text += curves_divergence(diverged, total)
    if cfg.until == "plateau":
        text += (
            " A fitted run stops on its plateau, so later steps show only the seeds still training."
        )
    return text + "*"


def report_markdown(
    summary,
    activations,
    targets,
    rctx: ReportContext,
    heatmap: str,
    predictions: str,
    curves: str | None = None,
) -> str:
    """The section's text; `curves`, the training-curve figure, with its caption
    (curves_caption) when one was drawn."""
    cfg: Config = rctx.config
    cells = summary["cells"]
    one_seed = rctx.seeds == 1
    target_list = ", ".join(f"{t} = {TARGETS[t][0]}" for t in targets)
    interval = f"[{cfg.x_min:g}, {cfg.x_max:g}]"
    left = f"[{cfg.x_min - cfg.extrap_margin:g}, {cfg.x_min:g})"
    right = f"({cfg.x_max:g}, {cfg.x_max + cfg.extrap_margin:g}]"
    with_ci = "" if one_seed else ", with 95% interval"
    lines = [
        "**Question.** How well does a small network with each activation fit smooth, "
        "kinked, steep and oscillating functions, and what does it predict just outside "
        "the interval it was trained on?",
        "",
        f"**Method.** Targets ({target_list}) on x in {interval}. Networks of depth "
        f"{cfg.depth}, width {cfg.width}, {init_words(cfg.init, cfg.sigma_b)}, trained "
        f"full batch with {OPTIMIZER_NAMES[cfg.optimizer]} (learning rate {cfg.lr:g}), "
        f"{budget_words(cfg)}, on {cfg.n_train} evenly spaced points of {interval}, MSE "
        f"loss. Test MSE (the protocol's metric) on {cfg.n_test} evenly spaced points of the "
        f"same interval measures interpolation only; extrapolation MSE on {cfg.n_extrap} "
        f"evenly spaced points on each of {left} and {right}. A run is on a plateau when "
        f"{plateau_words(cfg)}. It ended *plateaued* when it was on one with its training "
        f"MSE below {cfg.learned_below:g} x the target's variance: its MSE is the fit this "
        "network reaches under this training. It ended *at a constant output* when it was "
        "on one at or above that line, about where a constant output sits: it cannot "
        "represent the target, or had not yet left that plateau, and the run cannot tell "
        + ("which (such a run trains on to the budget). " if cfg.until == "plateau" else "which. ")
        + "A run not on a plateau when the budget ran out was *still improving*: it did not "
        "train in time, and its MSE says how far it got, not what the network can represent. "
        "A run whose loss becomes NaN, infinite or "
        "exceeds 1e6 is marked diverged: counted in every table, left out of the MSE means "
        f"and ranked below every run that fitted anything. {rctx.seeds} seed(s) per setting; "
        "within a seed all activations and targets start from the same weights.",
        "",
        f"![Test and extrapolation MSE](figures/{heatmap})",
        "",
        f"![Predictions per target](figures/{predictions})",
        "",
    ]
    if curves:
        lines += [
            f"![Training loss per step](figures/{curves})",
            "",
            curves_caption(summary, cfg, rctx.seeds),
            "",
        ]
    if one_seed:
        lines += [
            "*One seed: these numbers are single samples; they carry no error bar and no "
            "ranking is tested.*",
            "",
        ]
    lines += [
        f"**Test MSE (interpolation, on {interval})**, geometric mean over seeds{with_ci}:",
        "",
        *mse_table(cells, activations, targets, "test_", rctx.seeds),
        "",
        f"**Extrapolation MSE (on {left} and {right})**, geometric mean over seeds{with_ci}:",
        "",
        *mse_table(cells, activations, targets, "extrap_", rctx.seeds),
        "",
    ]
    if (cells["plateaued"] + cells["improving"] + cells["constant"]).sum():
        lines += [
            f"**How training ended** (budget {cfg.steps} steps; on a plateau: "
            f"{plateau_words(cfg)}):",
            "",
            *mse_table(
                cells, activations, targets, "test_", rctx.seeds, lambda r: ended_text(r, cfg)
            ),
            "",
        ]
    lines += ["**What the data says.**", ""]
    lines += [f"- {s}" for s in findings(summary, activations, targets, rctx.seeds, cfg)]
    return "\n".join(lines)


def findings(summary, activations, targets, seeds: int, cfg: Config | None = None) -> list[str]:
    """Sentences computed from the results; nothing here is written in advance. Each
    target's best-vs-runner-up comparison is one test of a family (the targets), adjusted
    by Holm's method; when that family cannot reach p < 0.05 at these seeds, a sentence
    says so before the targets' results. A diverged run is the worst outcome: an activation
    with diverged seeds on a target ranks below every one without, and a mean over the
    seeds that survived says so. A run still improving when its budget ran out is never
    called unable to fit."""
    from actlab.stats import paired_by_seed, tests_reach, versus_runner_up, with_holm

    cells, wide = summary["cells"], summary["trials"]
    cells = cells[cells["activation"].isin(activations)]
    wide = wide[wide["activation"].isin(activations)]
    out = []
    pending = []  # (index in out, best, runner, sentence start, comparison)
    for target in targets:
        at = cells[(cells["target"] == target) & cells["test_mean"].notna()]
        at = at.sort_values(["diverged", "test_mean"], kind="stable")
        if at.empty:
            out.append(f"{target}: every run diverged; nothing to compare.")
            continue
        best = at.iloc[0]
        sentence = (
            f"{target} ({TARGETS[target][0]}): lowest geometric-mean test MSE with "
            f"{best['activation']} ({sci(10 ** best['test_mean'])}{survivors(best)})"
        )
        if len(at) == 1:
            out.append(sentence + "; no other activation has a valid run.")
            continue
        runner = at.iloc[1]
        sentence += (
            f", then {runner['activation']} ({sci(10 ** runner['test_mean'])}{survivors(runner)})"
        )
        if at["diverged"].any():
            sentence += " (an activation with diverged seeds ranks below every one without)"
        if seeds == 1:
            out.append(sentence + "; one seed, so the ranking is not tested.")
            continue
        at_target = wide[wide["target"] == target]
        c = paired_by_seed(at_target, "log10_test_mse", best["activation"], runner["activation"])
        pending.append((len(out), best["activation"], runner["activation"], sentence, c))
        out.append("")
    family = f"{len(pending)} targets"
    for (i, best, runner, sentence, _), c in zip(
        pending, with_holm([p[-1] for p in pending]), strict=True
    ):
        out[i] = f"{sentence}: {versus_runner_up(best, runner, c, family=family)}."
    # Said before the per-target results: a family that cannot reach p < 0.05 at these seeds,
    # where "not separated" would otherwise read as a finding.
    reach = tests_reach(
        [p[-1] for p in pending], "the per-target tests of the lowest MSE against the runner-up"
    )
    if reach:
        out.insert(0, reach)

    out += training_findings(cells, activations, targets, cfg)

    # Hardest and easiest target, by geometric mean over activations and seeds.
    valid = wide[wide["log10_test_mse"].notna()]
    n_div = int((wide["diverged"] == 1).sum())
    over = (
        f"the {len(valid)} of {len(wide)} runs that did not diverge"
        if n_div
        else "activations and seeds"
    )
    if valid["target"].nunique() > 1:
        per_target = valid.groupby("target")["log10_test_mse"].mean().sort_values()
        out.append(
            f"Hardest target to fit: {per_target.index[-1]} (geometric mean test MSE over "
            f"{over} {sci(10 ** per_target.iloc[-1])}); easiest: "
            f"{per_target.index[0]} ({sci(10 ** per_target.iloc[0])}); descriptive, untested."
        )

    # Extrapolation, judged on the extrapolation error itself; diverged activations last.
    outside = valid[valid["log10_extrap_mse"].notna()]
    if not outside.empty:
        per_act = outside.groupby("activation")["log10_extrap_mse"].mean()
        runs = wide.groupby("activation")["diverged"].agg(["sum", "count"])
        order = sorted(per_act.index, key=lambda a: (runs.loc[a, "sum"] > 0, per_act[a]))
        listed = ", ".join(
            f"{act} {sci(10 ** per_act[act])}"
            + (
                f" (over the {int(runs.loc[act, 'count'] - runs.loc[act, 'sum'])} of "
                f"{int(runs.loc[act, 'count'])} runs that did not diverge)"
                if runs.loc[act, "sum"]
                else ""
            )
            for act in order
        )
        out.append(
            "Outside the training interval, geometric-mean extrapolation MSE over targets and "
            f"seeds, lowest first (an activation with diverged runs after every one without): "
            f"{listed} (descriptive; the tested ranking is the extrapolation row of the "
            "best-and-worst table)."
        )

    div = wide[wide["diverged"] == 1]
    if div.empty:
        out.append(f"No run diverged ({len(wide)} runs).")
    else:
        parts = [
            f"{act} on {target} ({len(g)} of {seeds})"
            for (act, target), g in div.groupby(["activation", "target"], sort=False)
        ]
        out.append(
            f"{len(div)} of {len(wide)} runs diverged and are left out of the statistics "
            "(counted here and in every table; ranked last in the verdicts): "
            + "; ".join(parts)
            + "."
        )
    return out


def survivors(row) -> str:
    """'; over the 4 of 6 seeds that did not diverge' for a cell with diverged seeds, and
    '; 5 of 6 still improving' for one whose budget ran out before some seeds plateaued
    (their MSE is how far they got)."""
    n_div, n = int(row["diverged"]), int(row["n_seeds"])
    text = f"; over the {n - n_div} of {n} seeds that did not diverge" if n_div else ""
    improving = int(row.get("improving", 0))
    return text + (f"; {improving} of {n} still improving" if improving else "")


def training_findings(cells, activations, targets, cfg: Config | None) -> list[str]:
    """How training ended, cell by cell (activation x target): did not train in time
    (budget ran out while the loss still fell), at a constant output (cannot represent the
    target, or had not left that plateau: undecided), and plateaued (the fit these networks
    reach under this training). Nothing for runs stored without the record."""
    if not (cells["plateaued"] + cells["improving"] + cells["constant"]).sum():
        return []
    cells = cells[cells["activation"].isin(activations) & cells["target"].isin(targets)]
    cells = cells.assign(
        _a=cells["activation"].map({a: i for i, a in enumerate(activations)}),
        _t=cells["target"].map({t: j for j, t in enumerate(targets)}),
    ).sort_values(["_a", "_t"])
    budget = f"{cfg.steps} steps" if cfg else "the step budget"
    plateau = plateau_words(cfg) if cfg else "the training loss stopped falling"
    line = f"{cfg.learned_below:g}" if cfg else "0.5"

    def listed(rows, column: str) -> str:
        return "; ".join(
            f"{r.activation} on {r.target} ({int(getattr(r, column))} of {int(r.n_seeds)} seeds)"
            for r in rows.itertuples()
        )

    out = []
    late = cells[cells["improving"] > 0]
    if not late.empty:
        out.append(
            f"Did not train in time: the budget of {budget} ran out while the training loss "
            f"was still falling (not on a plateau, where {plateau}), so their MSE says how far "
            f"training got, not what the network can represent: {listed(late, 'improving')}."
        )
    constant = cells[cells["constant"] > 0]
    if not constant.empty:
        out.append(
            f"At a constant output when training ended (on a plateau with a training MSE of "
            f"{line} x the target's variance or more): these networks either cannot represent "
            "the target or had not yet left the plateau where a network outputs about its "
            f"mean, and these runs cannot tell which: {listed(constant, 'constant')}."
        )
    done = cells[
        (cells["plateaued"] > 0) & (cells["plateaued"] + cells["diverged"] == cells["n_seeds"])
    ]
    if not done.empty:
        out.append(
            f"Plateaued in every seed that did not diverge ({len(done)} of {len(cells)} "
            f"activation-target pairs): their progress had slowed until {plateau}, so their "
            "test MSE is the fit these networks reach trained this way, and they cannot "
            "represent the target much more closely under this training (a slow fall may go "
            "on; another optimiser or schedule may go lower). The others are listed above, or "
            "mix endings (see the table)."
        )
    return out
