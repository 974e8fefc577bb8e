"""The real_data study's report section: per data set the accuracy table, then the
findings. Every sentence is computed from the summary."""

from __future__ import annotations

import math

from actlab.report.text import pct
from actlab.studies.base import ReportContext
from actlab.studies.real_data.config import DATASETS, Config


def cell_text(row, seeds: int) -> str:
    """Test accuracy in % [95% interval], then epochs to the target (seeds reaching it)."""
    n, n_div = int(row["n_seeds"]), int(row["diverged"])
    if n_div == n:
        return f"diverged ({n_div} of {n})"
    text = pct(row["acc_mean"], 1) + "%"
    if seeds > 1 and math.isfinite(row["acc_ci_low"]):
        text += f" [{pct(row['acc_ci_low'], 1)}, {pct(row['acc_ci_high'], 1)}]"
    reached = int(row["reached"])
    if reached:
        text += f"; target at epoch {row['ett_mean']:.0f}"
        if seeds > 1:
            text += f" ({reached}/{n})"
    else:
        text += "; target not reached"
    if n_div:
        text += f"; {n_div} of {n} diverged"
    return text


def accuracy_table(cells, activations, dataset: str, depths: list[int], seeds: int) -> list[str]:
    table = cells[cells["dataset"] == dataset].set_index(["activation", "depth"])
    lines = [
        "| activation | " + " | ".join(f"depth {d}" for d in depths) + " |",
        "|---" * (len(depths) + 1) + "|",
    ]
    for act in activations:
        texts = [
            cell_text(table.loc[(act, d)], seeds) if (act, d) in table.index else "–"
            for d in depths
        ]
        lines.append(f"| {act} | " + " | ".join(texts) + " |")
    return lines


def report_markdown(summary, activations, datasets, rctx: ReportContext, accuracy, curves) -> str:
    cfg: Config = rctx.config
    cells = summary["cells"]
    one_seed = rctx.seeds == 1
    described = "; ".join(
        f"{d} ({DATASETS[d].description}: {DATASETS[d].samples} samples, "
        f"{DATASETS[d].features} features, {DATASETS[d].classes} classes)"
        for d in datasets
    )
    with_ci = "" if one_seed else " [95% interval over seeds]"
    lines = [
        "**Question.** Away from toy targets, on real if small classification data, how "
        "accurate and how fast to train is a network with each activation, and does that "
        "change with depth?",
        "",
        f"**Method.** Data sets bundled with scikit-learn (read from its installed files, "
        f"never downloaded): {described}. Per seed, one stratified split into "
        f"{cfg.train_fraction:.0%} training, {cfg.val_fraction:.0%} validation and "
        f"{cfg.test_fraction:.0%} test, the same for every activation; features "
        "standardised with the training split's mean and standard deviation. MLPs of "
        f"depth {', '.join(map(str, sorted({int(d) for d in cells['depth']})))} (hidden "
        f"layers) and width {cfg.width}, Xavier-uniform weights, zero biases, softmax "
        f"cross-entropy. Full-batch training: one {cfg.optimizer.capitalize()} step "
        f"(learning rate {cfg.lr:g}) per epoch on the whole training split, for at most "
        f"{cfg.max_epochs} epochs. Early stopping: the parameters with the lowest validation "
        f"loss are kept, training stops after {cfg.patience} epochs without a new lowest, "
        "and the test split is measured once, on the restored parameters. Epochs to target: "
        f"the first epoch whose validation accuracy reached {cfg.target_accuracy:.0%}. A run "
        f"whose loss becomes NaN, infinite or exceeds {cfg.loss_limit:g} is marked diverged "
        f"and left out of the statistics. {rctx.seeds} seed(s); within a seed all "
        "activations share the split and the initial weights, so comparisons are paired; "
        "95% intervals are t intervals over seeds, clipped to [0%, 100%].",
        "",
        f"![Test accuracy against depth](figures/{accuracy})",
        "",
        f"![Validation accuracy during training](figures/{curves})",
        "",
    ]
    if one_seed:
        lines += [
            "*One seed: these numbers are single samples; they carry no error bars and no "
            "ranking is tested.*",
            "",
        ]
    for dataset in datasets:
        depths = sorted(int(d) for d in cells[cells["dataset"] == dataset]["depth"].unique())
        lines += [
            f"**{dataset}**: test accuracy in %{with_ci}, then the mean epoch at which the "
            f"validation accuracy first reached {cfg.target_accuracy:.0%}"
            + ("" if one_seed else " (seeds that reached it)")
            + ":",
            "",
            *accuracy_table(cells, activations, dataset, depths, rctx.seeds),
            "",
        ]
    lines += ["**What the data says.**", ""]
    lines += [f"- {s}" for s in findings(summary, activations, datasets, rctx)]
    return "\n".join(lines)


def findings(summary, activations, datasets, rctx: ReportContext) -> list[str]:
    """Sentences computed from the results; nothing here is written in advance. The
    best-vs-runner-up comparisons (one per data set and depth) form one family, adjusted
    by Holm's method."""
    from actlab.stats import paired_by_seed, versus_runner_up, with_holm

    cfg: Config = rctx.config
    cells, wide = summary["cells"], summary["trials"]
    cells = cells[cells["activation"].isin(activations)]
    wide = wide[wide["activation"].isin(activations)]
    out = []
    pending = []
    for dataset in datasets:
        at_set = cells[cells["dataset"] == dataset]
        for depth in sorted(int(d) for d in at_set["depth"].unique()):
            at = at_set[(at_set["depth"] == depth) & at_set["acc_mean"].notna()]
            at = at.sort_values("acc_mean", ascending=False, kind="stable")
            label = f"{dataset}, depth {depth}"
            if at.empty:
                out.append(f"{label}: every run diverged; nothing to compare.")
                continue
            best = at.iloc[0]
            sentence = (
                f"{label}: highest mean test accuracy with {best['activation']} "
                f"({pct(best['acc_mean'], 1)}%)"
            )
            if len(at) == 1:
                out.append(sentence + "; no other activation has a valid run.")
                continue
            runner = at.iloc[1]
            sentence += f", then {runner['activation']} ({pct(runner['acc_mean'], 1)}%)"
            if rctx.seeds == 1:
                out.append(sentence + "; one seed, so the ranking is not tested.")
                continue
            setting = wide[(wide["dataset"] == dataset) & (wide["depth"] == depth)]
            c = paired_by_seed(setting, "test_accuracy", best["activation"], runner["activation"])
            pending.append((len(out), best["activation"], runner["activation"], sentence, c))
            out.append("")
        # Depth: the mean over activations (valid runs) per depth.
        valid = wide[(wide["dataset"] == dataset) & wide["test_accuracy"].notna()]
        if valid["depth"].nunique() > 1:
            per_depth = valid.groupby("depth")["test_accuracy"].mean()
            listed = ", ".join(f"depth {int(d)} {pct(v, 1)}%" for d, v in per_depth.items())
            out.append(
                f"{dataset}: mean test accuracy over activations and seeds by depth: {listed}."
            )
        # Speed: fewest epochs to the target, per depth, among cells every seed reached.
        fast = at_set[(at_set["reached"] == at_set["n_seeds"]) & (at_set["reached"] > 0)]
        if not fast.empty:
            parts = []
            for depth, g in fast.groupby("depth", sort=True):
                top = g.sort_values("ett_mean", kind="stable").iloc[0]
                parts.append(
                    f"depth {int(depth)} {top['activation']} ({top['ett_mean']:.0f} epochs)"
                )
            out.append(
                f"{dataset}: fewest mean epochs to {cfg.target_accuracy:.0%} validation "
                f"accuracy (among activations that reached it in every seed; descriptive, "
                f"untested): {'; '.join(parts)}."
            )

    family = f"{len(pending)} data set x depth settings"
    for (i, best, runner, sentence, _), c in zip(
        pending, with_holm([p[-1] for p in pending]), strict=True
    ):
        diff = f"{100 * c.mean_diff:+.1f} points [{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}]"
        out[i] = f"{sentence}: {versus_runner_up(best, runner, c, diff, family)}."

    never = cells[(cells["reached"] == 0) & (cells["diverged"] < cells["n_seeds"])]
    some = cells[(cells["reached"] > 0) & (cells["reached"] < cells["n_seeds"])]
    if never.empty and some.empty:
        out.append(
            f"Every run that did not diverge reached {cfg.target_accuracy:.0%} validation "
            f"accuracy within {cfg.max_epochs} epochs."
        )
    if not never.empty:
        parts = [f"{r.activation} ({r.dataset}, depth {r.depth})" for r in never.itertuples()]
        out.append(
            f"Never reached {cfg.target_accuracy:.0%} validation accuracy within "
            f"{cfg.max_epochs} epochs, in any seed: {'; '.join(parts)}."
        )
    if not some.empty:
        parts = [
            f"{r.activation} ({r.dataset}, depth {r.depth}: {r.reached} of {r.n_seeds})"
            for r in some.itertuples()
        ]
        out.append(f"Reached the target in some seeds only: {'; '.join(parts)}.")

    alive = wide[wide["diverged"] == 0]
    if not alive.empty:
        unfinished = int((alive["epochs_run"] >= cfg.max_epochs).sum())
        if unfinished:
            out.append(
                f"{unfinished} of {len(alive)} runs were still finding lower validation "
                f"losses when they reached the {cfg.max_epochs}-epoch limit (no early stop): "
                "more epochs could change their numbers."
            )
        else:
            out.append(f"All {len(alive)} runs stopped early, before the epoch limit.")

    div = wide[wide["diverged"] == 1]
    if div.empty:
        out.append(f"No run diverged ({len(wide)} runs).")
    else:
        parts = [
            f"{act} on {dataset} at depth {depth} ({len(g)} of {rctx.seeds})"
            for (act, dataset, depth), g in div.groupby(
                ["activation", "dataset", "depth"], sort=False
            )
        ]
        out.append(
            f"{len(div)} of {len(wide)} runs diverged and are left out of the statistics: "
            + "; ".join(parts)
            + "."
        )
    return out
