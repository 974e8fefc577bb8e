"""The mnist1d study's report section: the paper's table beside actlab's, then per
architecture the accuracy of every activation with intervals, paired tests against the
best, learning curves and time per step. Every sentence is computed from the summary."""

from __future__ import annotations

from actlab.report.text import pct
from actlab.stats import SIGNIFICANCE, smallest_p
from actlab.studies.mnist1d.config import PAPER, PAPER_SOURCE, Config


def acc_text(row, seeds: int) -> str:
    if row is None or not row["acc_mean"] == row["acc_mean"]:
        return "–"
    text = f"{pct(row['acc_mean'], 1)}%"
    if seeds > 1 and row["acc_ci_low"] == row["acc_ci_low"]:
        text += f" [{pct(row['acc_ci_low'], 1)}, {pct(row['acc_ci_high'], 1)}]"
    return text


def paper_lines(cells, rctx, cfg: Config) -> list[str]:
    """The published table with ReLU's accuracy here beside each row it can be measured
    for, and the difference named."""
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
    lines = [
        f"**Beside the paper.** Test accuracy on MNIST-1D as published ({PAPER_SOURCE}), "
        f"and ReLU's here: mean over {rctx.seeds} seed(s)"
        + (" with its 95% t interval" if rctx.seeds > 1 else "")
        + f", after {cfg.steps} steps.",
        "",
        "| model | paper | actlab (ReLU) | actlab − paper |",
        "|---|---|---|---|",
    ]
    notes = []
    for label, arch, published in PAPER:
        ours = relu.loc[arch] if arch in relu.index else None
        if ours is None or not ours["acc_mean"] == ours["acc_mean"]:
            why = "not measured" if arch is None or arch not in cfg.architectures else "diverged"
            lines.append(f"| {label} | {100 * published:.0f}% | {why} | |")
            continue
        diff = 100 * (ours["acc_mean"] - published)
        lines.append(
            f"| {label} | {100 * published:.0f}% | {acc_text(ours, rctx.seeds)} | "
            f"{diff:+.1f} points |"
        )
        low, high = ours["acc_ci_low"], ours["acc_ci_high"]
        if rctx.seeds > 1 and low == low:
            inside = low <= published <= high
            notes.append(
                f"{label}: the paper's {100 * published:.0f}% is "
                + ("inside" if inside else "outside")
                + f" actlab's 95% interval ({diff:+.1f} points)"
            )
    if (
        "transformer" in relu.index
        and relu.loc["transformer", "acc_mean"] == relu.loc["transformer", "acc_mean"]
    ):
        lines.append(
            f"| transformer (ours; no published number) | – | "
            f"{acc_text(relu.loc['transformer'], rctx.seeds)} | |"
        )
    lines.append("")
    if notes:
        lines += ["; ".join(notes) + ".", ""]
    return lines


def versus_best(wide, cells, arch: str, activations: list[str]):
    """(best activation, [(activation, Paired), ...]) for one architecture: the highest
    mean test accuracy against every other activation, paired by seed, Holm-adjusted
    within the architecture; (None, []) when no activation has a value."""
    from actlab.stats import paired_by_seed, with_holm

    at = cells[(cells["architecture"] == arch) & cells["acc_mean"].notna()]
    at = at[at["activation"].isin(activations)]
    if at.empty:
        return None, []
    best = at.sort_values("acc_mean", ascending=False, kind="stable").iloc[0]["activation"]
    table = wide[wide["architecture"] == arch]
    others = [a for a in activations if a != best and a in set(at["activation"])]
    tests = with_holm([paired_by_seed(table, "test_accuracy", best, a) for a in others])
    return best, list(zip(others, tests, strict=True))


def architecture_lines(summary, arch: str, activations, rctx) -> list[str]:
    cells, wide = summary["cells"], summary["trials"]
    at = cells[cells["architecture"] == arch].set_index("activation")
    best, tests = versus_best(wide, cells, arch, activations)
    paired = dict(tests)
    many = rctx.seeds > 1
    lines = [
        f"**{arch}**: final test accuracy"
        + (" [95% interval]" if many else "")
        + ", the best during training, and each activation against the best"
        + (" (paired over seeds, Holm-adjusted)" if many else "")
        + ":",
        "",
        "| activation | test accuracy | best during training | vs best | diverged | ms per step |",
        "|---|---|---|---|---|---|",
    ]
    for act in activations:
        if act not in at.index:
            continue
        row = at.loc[act]
        if act == best:
            versus = "best"
        elif act in paired and paired[act].tested:
            c = paired[act]
            versus = f"{100 * -c.mean_diff:+.1f} points, p = {c.p_decisive:.2g}" + (
                " (separated)" if c.significant else " (not separated)"
            )
        else:
            versus = "–"
        best_text = (
            "–" if not row["best_mean"] == row["best_mean"] else f"{pct(row['best_mean'], 1)}%"
        )
        step_text = (
            "–" if row["step_time"] != row["step_time"] else f"{1000 * row['step_time']:.2f}"
        )
        lines.append(
            f"| {act} | {acc_text(row, rctx.seeds)} | {best_text} | {versus} | "
            f"{int(row['diverged'])} of {int(row['n_seeds'])} | {step_text} |"
        )
    lines.append("")
    lines += [f"- {s}" for s in architecture_findings(summary, arch, best, tests, rctx)]
    lines.append("")
    return lines


def architecture_findings(summary, arch, best, tests, rctx) -> list[str]:
    cells = summary["cells"]
    at = cells[cells["architecture"] == arch].set_index("activation")
    if best is None:
        return [f"{arch}: every run diverged; nothing to compare."]
    out = []
    sentence = (
        f"{arch}: highest mean test accuracy with {best} ({pct(at.loc[best, 'acc_mean'], 1)}%)"
    )
    if rctx.seeds < 2:
        out.append(sentence + "; one seed, so no ranking is tested.")
    elif smallest_p(rctx.seeds) >= SIGNIFICANCE:
        out.append(
            sentence + f"; with {rctx.seeds} seeds a paired sign-flip test cannot reach "
            f"p < {SIGNIFICANCE:g} (its smallest p is {smallest_p(rctx.seeds):.2g}), so no "
            "activation is separated from it; 6 seeds are the fewest that can separate two."
        )
    else:
        tied = [a for a, c in tests if not c.significant]
        below = [a for a, c in tests if c.significant and c.mean_diff > 0]
        test = f"paired sign-flip tests over seeds, Holm-adjusted over {len(tests)} comparisons"
        if tied:
            sentence += f"; not separated from it ({test}): {', '.join(tied)}"
        if below:
            sentence += f"; below it: {', '.join(below)}"
        out.append(sentence + ".")
    timed = at[at["step_time"].notna()]
    if len(timed) > 1:
        fast, slow = timed["step_time"].idxmin(), timed["step_time"].idxmax()
        out.append(
            f"{arch}: time per training step per network, measured in this run on stacks of "
            f"each activation's networks (descriptive): fastest {fast} "
            f"({1000 * timed.loc[fast, 'step_time']:.2f} ms), slowest {slow} "
            f"({1000 * timed.loc[slow, 'step_time']:.2f} ms, "
            f"{timed.loc[slow, 'step_time'] / timed.loc[fast, 'step_time']:.2g}x)."
        )
    diverged = at[at["diverged"] > 0]
    if not diverged.empty:
        parts = [f"{a} ({int(r.diverged)} of {int(r.n_seeds)})" for a, r in diverged.iterrows()]
        out.append(f"{arch}: diverged and left out of the statistics: {', '.join(parts)}.")
    return out


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
        + "; ".join(ARCH_WORDS[a] for a in architectures)
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


ARCH_WORDS = {
    "mlp": "mlp, the repository's MLP (40 -> 100 -> 100 with a residual connection -> 10)",
    "cnn": "cnn, its ConvBase (three Conv1d layers of 25 channels, kernels 5, 3, 3, stride 2, "
    "then a linear layer)",
    "transformer": "transformer, a pre-norm encoder of ours (patches of 4 samples as tokens "
    "with learned positions, width 32, 2 heads, 2 layers, MLP ratio 4, mean pooling)",
}
