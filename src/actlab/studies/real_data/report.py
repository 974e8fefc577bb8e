"""The real_data study's report section: per data set the accuracy table and, with more
than one seed, each activation against a reference named before the data; then the
findings. Within a data set and depth every pair of activations is tested (paired over
seeds, Holm over all the setting's pairs), and an activation is called the best only where
those tests separate it from every other (studies/compare.py). Every sentence is computed
from the summary."""

from __future__ import annotations

import math

from actlab.render.text import missing, pct
from actlab.stats import family_reach
from actlab.studies.base import ReportContext
from actlab.studies.compare import (
    all_pairs,
    family_floor,
    listed,
    reference_activation,
    top_group,
    top_sentence,
    versus,
    versus_text,
)
from actlab.studies.real_data.config import DATASETS, Config


def percent(value: float) -> str:
    """A fraction as a percentage with one decimal: the one format of the accuracy table's
    numbers (0.0 near zero, never more decimals or e-notation there); "–" when missing."""
    if missing(value):
        return "–"
    return f"{100 * float(value):.1f}"


def epochs_text(value: float, seeds: int) -> str:
    """A mean epoch: a whole number for one seed, one decimal for a mean over seeds (12.5
    is not 12, nor the same as 12.0)."""
    return f"{value:.0f}" if seeds < 2 else f"{value:.1f}"


def cell_text(row, seeds: int) -> str:
    """Test accuracy in % [95% interval], then epochs to the target (seeds reaching it)."""
    n, n_div = int(row["n_seeds"]), int(row["diverged"])
    if n_div == n:
        return f"diverged ({n_div} of {n})"
    text = percent(row["acc_mean"]) + "%"
    if seeds > 1 and math.isfinite(row["acc_ci_low"]):
        text += f" [{percent(row['acc_ci_low'])}, {percent(row['acc_ci_high'])}]"
    reached = int(row["reached"])
    if reached:
        text += f"; target at epoch {epochs_text(row['ett_mean'], seeds)}"
        if seeds > 1:
            text += f" ({reached} of {n})"
    else:
        text += "; target not reached"
    if n_div:
        text += f"; {n_div} of {n} diverged"
    return text


def setting(summary, activations, dataset: str, depth: int):
    """(cells of the setting by activation, the activations with a mean test accuracy in
    the run's order, all_pairs over them) for one data set and depth."""
    cells, wide = summary["cells"], summary["trials"]
    at = cells[(cells["dataset"] == dataset) & (cells["depth"] == depth)]
    at = at.set_index("activation")
    present = set(at.index[at["acc_mean"].notna()])
    names = [a for a in activations if a in present]
    table = wide[(wide["dataset"] == dataset) & (wide["depth"] == depth)]
    return at, names, all_pairs(table, "test_accuracy", names)


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


def versus_table(summary, activations, dataset: str, depths: list[int]) -> list[str]:
    """Each activation against the pre-named reference at each depth: the mean paired
    difference in test accuracy and its Holm-adjusted p over all the depth's pairs."""
    ref = reference_activation(activations)
    columns = {}
    for depth in depths:
        at, names, tests = setting(summary, activations, dataset, depth)
        column = {}
        for act in activations:
            if act == ref:
                column[act] = "reference" if ref in names else "reference: no value"
            elif act in names and ref in names:
                column[act] = versus_text(versus(tests, act, ref), at.loc[ref, "acc_mean"])
            else:
                column[act] = "–"
        columns[depth] = column
    lines = [
        "| activation | " + " | ".join(f"depth {d} vs {ref}" for d in depths) + " |",
        "|---" * (len(depths) + 1) + "|",
    ]
    for act in activations:
        lines.append(f"| {act} | " + " | ".join(columns[d][act] for d in depths) + " |")
    return lines


def report_markdown(summary, activations, datasets, rctx: ReportContext, accuracy, curves) -> str:
    cfg: Config = rctx.config
    cells = summary["cells"]
    one_seed = rctx.seeds == 1
    ref = reference_activation(activations) if activations else "the first activation"
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
        "95% intervals are t intervals over seeds, clipped to [0%, 100%]. Within a data set "
        "and depth every pair of activations is compared by a paired sign-flip test over "
        "seeds, Holm-adjusted over all the pairs of that data set and depth"
        + (
            ""
            if one_seed
            else f"; the second table reads them against {ref}, named before the data (ReLU "
            "when the run has it, else its first activation)"
        )
        + "; an activation is called the best only where the tests separate it from every "
        "other, and an exact tie (as many correct test samples) is a tie.",
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
        if not one_seed:
            lines += [
                f"**{dataset}**: each activation's test accuracy minus "
                f"{ref}'s in points (paired over seeds), with "
                "the sign-flip test's p, Holm-adjusted over all pairs of activations at that "
                "depth:",
                "",
                *versus_table(summary, activations, dataset, depths),
                "",
            ]
    lines += ["**What the data says.**", ""]
    lines += [f"- {s}" for s in findings(summary, activations, datasets, rctx)]
    return "\n".join(lines)


def findings(summary, activations, datasets, rctx: ReportContext) -> list[str]:
    """Sentences computed from the results; nothing here is written in advance. Within each
    data set and depth, every pair of activations is tested (paired over seeds, Holm over
    the setting's pairs); the highest mean is called the best only where those tests
    separate it from every other, and an exact tie for the top is a tie. A family whose
    tests cannot reach p < 0.05 at these seeds is said so first."""
    cfg: Config = rctx.config
    cells, wide = summary["cells"], summary["trials"]
    cells = cells[cells["activation"].isin(activations)]
    wide = wide[wide["activation"].isin(activations)]
    summary = {**summary, "cells": cells, "trials": wide}
    out, reach = [], []
    for dataset in datasets:
        at_set = cells[cells["dataset"] == dataset]
        for depth in sorted(int(d) for d in at_set["depth"].unique()):
            at, names, tests = setting(summary, activations, dataset, depth)
            label = f"{dataset}, depth {depth}"
            if not names:
                out.append(f"{label}: every run diverged; nothing to compare.")
                continue
            m, _ = family_floor(tests)
            note = None
            if m:
                n = max(t.n for t in tests.values() if t.tested)
                note = family_reach(
                    n, m, "the paired tests of one data set and depth's activations"
                )
            if note is not None and note not in reach:
                reach.append(note)
            means = {a: at.loc[a, "acc_mean"] for a in names}
            out.append(
                top_sentence(label, names, tests, means, rctx.seeds, reach_noted=note is not None)
            )
        # Depth: the mean over activations (valid runs) per depth.
        valid = wide[(wide["dataset"] == dataset) & wide["test_accuracy"].notna()]
        if valid["depth"].nunique() > 1:
            per_depth = valid.groupby("depth")["test_accuracy"].mean()
            by_depth = ", ".join(f"depth {int(d)} {pct(v, 1)}%" for d, v in per_depth.items())
            out.append(
                f"{dataset}: mean test accuracy over activations and seeds by depth: {by_depth}."
            )
        # Speed: fewest epochs to the target, per depth, among cells every seed reached; an
        # exact tie names every activation in it.
        fast = at_set[(at_set["reached"] == at_set["n_seeds"]) & (at_set["reached"] > 0)]
        if not fast.empty:
            parts = []
            for depth, g in fast.groupby("depth", sort=True):
                ett = g.set_index("activation")["ett_mean"]
                top = top_group({a: -ett[a] for a in activations if a in ett.index})
                shown = epochs_text(ett[top[0]], rctx.seeds)
                if len(top) > 1:
                    parts.append(f"depth {int(depth)} {listed(top)} (tie, {shown} epochs each)")
                else:
                    parts.append(f"depth {int(depth)} {top[0]} ({shown} epochs)")
            out.append(
                f"{dataset}: fewest mean epochs to {cfg.target_accuracy:.0%} validation "
                f"accuracy (among activations that reached it in every seed; descriptive, "
                f"untested): {'; '.join(parts)}."
            )
    out = reach + out

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
