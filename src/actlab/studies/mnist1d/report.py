"""The mnist1d study's report section: the paper's table and the authors' notebook runs
beside actlab's, then per architecture the accuracy of every activation with intervals,
paired tests over every pair of activations (the table reads them against a pre-named
reference), learning curves and time per step. Every sentence is computed from the
summary."""

from __future__ import annotations

import math

from actlab.engine.architectures import describe
from actlab.render.text import pct
from actlab.studies.compare import (
    all_pairs,
    family_floor,
    listed,
    reference_activation,
    top_sentence,
    versus,
    versus_text,
)
from actlab.studies.mnist1d.config import (
    NOTEBOOK,
    NOTEBOOK_SOURCE,
    NOTEBOOK_STEPS,
    PAPER,
    PAPER_SOURCE,
    Config,
)


def acc_text(row, seeds: int) -> str:
    if row is None or not row["acc_mean"] == row["acc_mean"]:
        return "–"
    text = f"{pct(row['acc_mean'], 1)}%"
    if seeds > 1 and row["acc_ci_low"] == row["acc_ci_low"]:
        text += f" [{pct(row['acc_ci_low'], 1)}, {pct(row['acc_ci_high'], 1)}]"
    return text


def prediction_interval(row) -> tuple[float, float]:
    """The 95% t prediction interval for one more run: mean +- t * sd * sqrt(1 + 1/n),
    clipped to [0, 1]; NaN with fewer than 2 seeds."""
    from actlab.stats import t_quantile

    n, sd = row.get("acc_n", math.nan), row.get("acc_std", math.nan)
    if not n >= 2 or not sd == sd:
        return math.nan, math.nan
    half = t_quantile(int(n)) * sd * math.sqrt(1 + 1 / n)
    return max(0.0, row["acc_mean"] - half), min(1.0, row["acc_mean"] + half)


def single_run_note(who: str, value: float, shown: str, row) -> str:
    """Where one published run falls among the spread of single runs here: against the
    range of the seeds and the 95% prediction interval for one more run."""
    n = int(row["acc_n"])
    low, high = prediction_interval(row)
    lo, hi = row["acc_min"], row["acc_max"]
    if value < lo:
        place = f"below all {n} of actlab's runs ({pct(lo, 1)}–{pct(hi, 1)}%)"
    elif value > hi:
        place = f"above all {n} of actlab's runs ({pct(lo, 1)}–{pct(hi, 1)}%)"
    else:
        place = f"within the range of actlab's {n} runs ({pct(lo, 1)}–{pct(hi, 1)}%)"
    inside = "inside" if low <= value <= high else "outside"
    return (
        f"{who} ({shown}) is {place} and {inside} the 95% prediction interval "
        f"for one more run, [{pct(low, 1)}, {pct(high, 1)}]"
    )


def paper_lines(cells, rctx, cfg: Config) -> list[str]:
    """The published table and the authors' notebook runs with ReLU's accuracy here beside
    each row it can be measured for. Both are single runs, so each is placed among the
    spread of single runs here (the seeds' range and a 95% prediction interval), not against
    the interval of the mean."""
    changed = cfg.changed_data()
    if changed:
        listed = ", ".join(f"{k} = {v!r}" for k, v in changed.items())
        return [
            f"*The paper's table is not compared: this run's data differ from the paper's set "
            f"({listed}).*",
            "",
        ]
    if "ReLU" not in rctx.activations:
        return [
            "*The paper's table is not compared: ReLU, the paper's activation, is not "
            "among this run's activations.*",
            "",
        ]
    relu = cells[cells["activation"] == "ReLU"].set_index("architecture")
    many = rctx.seeds > 1
    lines = [
        f"**Beside the paper.** Test accuracy on MNIST-1D as published ({PAPER_SOURCE}), "
        f"the final accuracy printed by {NOTEBOOK_SOURCE}, and ReLU's here: mean over "
        f"{rctx.seeds} seed(s)"
        + (" with its 95% t interval" if many else "")
        + f", after {cfg.steps} steps. The published and the notebook numbers are each one "
        "training run, so they are compared with the spread of single runs here (the range "
        "of the seeds and the 95% t prediction interval for one more run, mean ± t·sd·"
        "√(1 + 1/n)), not with the interval of the mean, which narrows with more seeds "
        "while one run's spread does not.",
        "",
        "| model | paper (one run) | notebook (one run) | actlab (ReLU) | actlab − paper "
        "| one more run here (95% prediction) |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    for label, arch, published in PAPER:
        notebook = NOTEBOOK.get(arch) if arch is not None else None
        book = "–" if notebook is None else f"{100 * notebook:.1f}%"
        ours = relu.loc[arch] if arch in relu.index else None
        if ours is None or not ours["acc_mean"] == ours["acc_mean"]:
            why = "not measured" if arch is None or arch not in cfg.architectures else "diverged"
            lines.append(f"| {label} | {100 * published:.0f}% | {book} | {why} | | |")
            continue
        diff = 100 * (ours["acc_mean"] - published)
        low, high = prediction_interval(ours) if many else (math.nan, math.nan)
        spread = "–" if not low == low else f"[{pct(low, 1)}, {pct(high, 1)}]"
        lines.append(
            f"| {label} | {100 * published:.0f}% | {book} | {acc_text(ours, rctx.seeds)} | "
            f"{diff:+.1f} points | {spread} |"
        )
        if low == low:
            paper_text = f"{100 * published:.0f}%"
            notes.append(single_run_note(f"{label}: the paper's run", published, paper_text, ours))
            if notebook is not None:
                notes.append(single_run_note(f"{label}: the notebook's run", notebook, book, ours))
    if (
        "transformer" in relu.index
        and relu.loc["transformer", "acc_mean"] == relu.loc["transformer", "acc_mean"]
    ):
        lines.append(
            f"| transformer (ours; no published number) | – | – | "
            f"{acc_text(relu.loc['transformer'], rctx.seeds)} | | |"
        )
    lines.append("")
    if notes:
        lines += [f"- {note}." for note in notes] + [""]
        # The protocol difference this run knows of is named first, before the unknown ones.
        steps = (
            f"first, this run trained {cfg.steps} steps, the paper and the notebook "
            f"{NOTEBOOK_STEPS:,}; then "
            if cfg.steps != NOTEBOOK_STEPS
            else ""
        )
        lines += [
            "Inside the prediction interval, a published run is what one more run here could "
            "give. Outside it, it is a run this protocol would give less than 1 time in 20 "
            "(if runs scatter normally about actlab's mean): a pointer to a difference in "
            f"protocol ({steps}code, library versions, hardware) or to chance, not a measured "
            "difference of means, which one run cannot give.",
            "",
        ]
    elif not many:
        lines += ["*One seed: no spread of single runs to place the published runs in.*", ""]
    if cfg.steps != NOTEBOOK_STEPS and not notes:
        lines += [
            f"*This run trained {cfg.steps} steps; the notebook's runs trained "
            f"{NOTEBOOK_STEPS:,}.*",
            "",
        ]
    return lines


def architecture_lines(summary, arch: str, activations, rctx) -> list[str]:
    cells, wide = summary["cells"], summary["trials"]
    at = cells[cells["architecture"] == arch].set_index("activation")
    present = set(at.index[at["acc_mean"].notna()])
    names = [a for a in activations if a in present]
    tests = all_pairs(wide[wide["architecture"] == arch], "test_accuracy", names)
    ref = reference_activation(activations)
    m, _ = family_floor(tests)
    many = rctx.seeds > 1
    lines = [
        f"**{arch}**: final test accuracy"
        + (" [95% interval]" if many else "")
        + f", the best during training, and each activation against {ref} (the pre-named "
        "reference: ReLU when the run has it, else its first activation)"
        + (
            f": the mean difference with the paired sign-flip test over seeds, Holm-adjusted "
            f"over all {m} pairs of activations"
            if many
            else ""
        )
        + ":",
        "",
        f"| activation | test accuracy | best during training | vs {ref} | diverged "
        "| ms per step |",
        "|---|---|---|---|---|---|",
    ]
    for act in activations:
        if act not in at.index:
            continue
        row = at.loc[act]
        against = "–"
        if act == ref:
            against = "reference"
        elif act in names and ref in names:
            against = versus_text(versus(tests, act, ref), at.loc[ref, "acc_mean"])
        best_text = (
            "–" if not row["best_mean"] == row["best_mean"] else f"{pct(row['best_mean'], 1)}%"
        )
        step_text = (
            "–" if row["step_time"] != row["step_time"] else f"{1000 * row['step_time']:.2f}"
        )
        lines.append(
            f"| {act} | {acc_text(row, rctx.seeds)} | {best_text} | {against} | "
            f"{int(row['diverged'])} of {int(row['n_seeds'])} | {step_text} |"
        )
    lines.append("")
    lines += [f"- {s}" for s in architecture_findings(summary, arch, names, tests, rctx)]
    lines.append("")
    return lines


def architecture_findings(summary, arch, names, tests, rctx) -> list[str]:
    cells = summary["cells"]
    at = cells[cells["architecture"] == arch].set_index("activation")
    if not names:
        return [f"{arch}: every run diverged; nothing to compare."]
    means = {a: at.loc[a, "acc_mean"] for a in names}
    out = [top_sentence(arch, names, tests, means, rctx.seeds, samples="test sequences")]
    rank = rank_note(arch, names, means, summary["trials"], rctx.seeds)
    if rank:
        out.append(rank)
    timing = timing_sentence(arch, summary["trials"], names)
    if timing:
        out.append(timing)
    diverged = at[at["diverged"] > 0]
    if not diverged.empty:
        parts = [f"{a} ({int(r.diverged)} of {int(r.n_seeds)})" for a, r in diverged.iterrows()]
        out.append(f"{arch}: diverged and left out of the statistics: {', '.join(parts)}.")
    return out


def stack_times(trials, arch: str, names: list[str]) -> dict[str, list[float]]:
    """Per activation, its distinct step times in seconds: one measurement per stack of
    its networks (the networks of one stack share the value), in the order stored."""
    at = trials[(trials["architecture"] == arch) & trials["activation"].isin(names)]
    if "step_time" not in at:
        return {}
    out = {}
    for act in names:
        values = at.loc[at["activation"] == act, "step_time"].dropna()
        if not values.empty:
            out[act] = list(dict.fromkeys(float(v) for v in values))
    return out


def timing_sentence(arch: str, trials, names: list[str]) -> str | None:
    """Time per training step: one measurement per stack of an activation's networks,
    taken after training on a machine whose other load is not recorded. The value shown is
    the median over the activation's networks (the table's). An activation is called the
    fastest (slowest) only where its lead over the next one is larger than the largest
    spread between two stacks of one activation; with no activation measured twice, that
    spread is unknown and nothing is ranked. Unranked times are listed in the run's order,
    with the reason."""
    import statistics

    times = stack_times(trials, arch, names)
    if len(times) < 2:
        return None
    at = trials[(trials["architecture"] == arch) & trials["activation"].isin(list(times))]
    median = {
        a: statistics.median(at.loc[at["activation"] == a, "step_time"].dropna()) for a in times
    }

    def ms(v: float) -> str:
        return f"{1000 * v:.2f} ms"

    def shown(act: str) -> str:
        v = times[act]
        stacks = f" (stacks {', '.join(ms(x) for x in v)})" if len(v) > 1 else ""
        return f"{act} {ms(median[act])}{stacks}"

    head = (
        f"{arch}: time per training step per network, one measurement per stack of an "
        "activation's networks, taken after training under whatever else the machine was "
        "running (not recorded); descriptive"
    )
    listing = ", ".join(shown(a) for a in times)
    spreads = {a: max(v) / min(v) for a, v in times.items() if len(v) > 1}
    if not spreads:
        return (
            f"{head}: {listing}. Not ranked: each activation was measured on one stack, so "
            "nothing shows how much a repeat would differ."
        )
    widest = max(spreads, key=spreads.get)
    order = sorted(median, key=median.get)
    lead_fast = median[order[1]] / median[order[0]]
    lead_slow = median[order[-1]] / median[order[-2]]
    spread = spreads[widest]
    named = []
    if lead_fast > spread:
        named.append(f"fastest {order[0]} ({lead_fast:.2g}x ahead of {order[1]})")
    if lead_slow > spread:
        named.append(f"slowest {order[-1]} ({lead_slow:.2g}x behind {order[-2]})")
    within = f"two stacks of one activation differ by up to {spread:.2g}x ({widest})"
    if not named:
        return (
            f"{head}: {listing}. Not ranked: {within}, more than the gap between the two "
            "lowest medians and between the two highest, so these times do not order the "
            "activations."
        )
    gaps = "each gap is" if len(named) > 1 else "the gap is"
    return (
        f"{head}: {listing}; {' and '.join(named)}: {gaps} larger than the largest "
        f"difference between two stacks of one activation, {spread:.2g}x ({widest})."
    )


def rank_note(arch: str, names: list[str], means: dict, trials, seeds: int) -> str | None:
    """The highest mean is descriptive; the best-and-worst table and the recommendations
    rank by mean rank over seeds (a diverged run last). Where the two tops differ, both are
    named, and why they can: a mean adds up each seed's margins, a rank keeps only the
    order within each seed."""
    from actlab.studies.compare import mean_ranks, top_group

    if seeds < 2 or len(names) < 2:
        return None
    ranks = mean_ranks(trials[trials["architecture"] == arch], "test_accuracy", names)
    if not ranks:
        return None
    by_mean = top_group({a: float(means[a]) for a in names})
    by_rank = top_group({a: -r for a, r in ranks.items()})
    n = int(trials[(trials["architecture"] == arch)]["seed"].nunique())
    rank_words = ", ".join(f"{a} {ranks[a]:.2f}" for a in by_rank)
    if set(by_rank) == set(by_mean):
        return (
            f"{arch}: the best mean rank over the {n} seeds, the order the best-and-worst "
            f"table and the recommendations rank by, is also {listed(by_rank)}'s "
            f"({rank_words}); the highest mean by itself is descriptive."
        )
    mean_words = ", ".join(f"{a} {ranks[a]:.2f}" for a in by_mean)
    return (
        f"{arch}: the highest mean ({listed(by_mean)}, {pct(means[by_mean[0]], 1)}%) is "
        "descriptive; by mean rank over the "
        f"{n} seeds, the order the best-and-worst table and the recommendations rank by, the "
        f"top is {listed(by_rank)} ({rank_words}; {mean_words}). The two can differ: a mean "
        "adds up each seed's margins, a rank keeps only the order within each seed, so a "
        "large lead in one seed can top the mean while another activation places higher in "
        "the others."
    )


def report_markdown(summary, activations, architectures, rctx, accuracy, curves) -> str:
    cfg: Config = rctx.config
    data = cfg.changed_data()
    described = (
        "the paper's data set (the package's defaults, seed 42)"
        if not data
        else "the package's generator with " + ", ".join(f"{k} = {v!r}" for k, v in data.items())
    )
    arguments = cfg.data_arguments()
    n_train = round(arguments["num_samples"] * arguments["train_split"])
    lines = [
        "**Question.** Does the activation's verdict hold in real architectures — an MLP, a "
        "convolutional network and a transformer — on a benchmark that separates models "
        "sharply, and do the numbers match the published ones?",
        "",
        f"**Method.** MNIST-1D (Greydanus & Kobak 2020), generated by the `mnist1d` package "
        f"(never downloaded): {described}; {n_train} training and "
        f"{arguments['num_samples'] - n_train} test sequences of length "
        f"{arguments['final_seq_length']}, 10 classes. Architectures: "
        + "; ".join(f"{a}, {describe(a, cfg.shape(a))}" for a in architectures)
        + f". The repository's protocol: PyTorch's default initialisation, Adam (learning "
        f"rate {cfg.lr:g}), cross-entropy, batches of {cfg.batch} taken in order, "
        f"{cfg.steps} steps; test accuracy every {cfg.eval_every} steps. A run whose loss "
        f"becomes NaN, infinite or exceeds {cfg.loss_limit:g} is marked diverged. "
        f"{rctx.seeds} seed(s); within a seed every activation starts from the same weights, "
        "so comparisons are paired. Each architecture's networks train as one stacked "
        "ensemble.",
        "",
        *paper_lines(summary["cells"], rctx, cfg),
        f"![Test accuracy per activation and architecture](figures/{accuracy})",
        "",
        f"![Test accuracy during training](figures/{curves})",
        "",
    ]
    if rctx.seeds == 1:
        lines += ["*One seed: single samples, no error bars, no ranking tested.*", ""]
    for arch in architectures:
        lines += architecture_lines(summary, arch, activations, rctx)
    return "\n".join(lines)
