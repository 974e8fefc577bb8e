"""The search's report: report.md and report.html (with the activation explorer) from the
files in the search directory only, so it can be rebuilt without training.

Every verdict names its test: a finalist is "better than ReLU" only where the paired
sign-flip test over the confirmation seeds, Holm-adjusted over every comparison with ReLU
on that architecture, gives p < 0.05 (leaderboard.csv's p_vs_relu_holm and ARCH_p_vs_relu_holm).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from actlab.search.config import ARCH_WORDS
from actlab.search.learned import learned_lines
from actlab.search.transfer import (
    read_transfer,
    stored_settings,
    transfer_findings,
    transfer_lines,
)
from actlab.stats import SIGNIFICANCE

EXAMPLES = 3  # drops shown per reason; drops.csv has them all


def pct(value: float, digits: int = 1) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.{digits}f}"


def interval(mean: float, low: float, high: float) -> str:
    if not math.isfinite(low):
        return f"{pct(mean)}%"
    return f"{pct(mean)}% [{pct(low)}, {pct(high)}]"


def p_text(p: float) -> str:
    return "–" if not math.isfinite(p) else f"{p:.2g}"


def versus_relu(row, prefix: str, n: int, family: int) -> str:
    """One verdict against ReLU from the leaderboard's columns, naming its test."""
    diff = row[f"{prefix}diff_vs_relu"]
    p, q = row[f"{prefix}p_vs_relu"], row[f"{prefix}p_vs_relu_holm"]
    if not math.isfinite(p):
        return f"cannot be tested against ReLU ({n} paired seeds)"
    test = (
        f"{100 * diff:+.1f} points; paired sign-flip test over {n} seeds, p = {p:.2g}, "
        f"Holm-adjusted over {family} comparisons with ReLU p = {q:.2g}"
    )
    if q < SIGNIFICANCE:
        word = "better than" if diff > 0 else "worse than"
        return f"{word} ReLU ({test})"
    return f"not separated from ReLU ({test})"


def theory_rows(board, proxy) -> list[str]:
    """q*, chi_1 and the correlation depth at the proxy's initialisation, per row."""
    from actlab.activations import get_activation
    from actlab.theory import summarise

    lines = [
        "| activation | q* | chi_1 | phase | xi_c (layers) |",
        "|---|---|---|---|---|",
    ]
    for r in board.itertuples():
        act = get_activation(
            r.expression if r.kind == "finalist" and not getattr(r, "known", False) else r.name
        )
        mf = summarise(act, proxy.sigma_w, proxy.sigma_b).mean_field
        q = "none" if mf.q_star is None else f"{mf.q_star:.3g}"
        chi = "–" if mf.chi_1 is None else f"{mf.chi_1:.3g}"
        xi = "–" if mf.xi_c is None or not math.isfinite(mf.xi_c) else f"{mf.xi_c:.3g}"
        lines.append(f"| {r.name} | {q} | {chi} | {mf.phase} | {xi} |")
    return lines


def funnel_lines(manifest: dict[str, Any], drops) -> list[str]:
    funnel = manifest["funnel"]
    dropped = funnel["dropped"]
    lines = [
        "| expressions in the space | examined (in the seed's order) | dropped before training "
        "| entered the first rung |",
        "|---|---|---|---|",
        f"| {funnel['space']:,} | {funnel['examined']:,} | {sum(dropped.values()):,} "
        f"| {funnel['entered']:,} |",
        "",
    ]
    for reason, count in sorted(dropped.items(), key=lambda kv: -kv[1]):
        examples = [d for d in drops if d.reason == reason][:EXAMPLES]
        shown = "; ".join(
            f"`{d.expression}`" + (f" ({d.detail})" if d.detail else "") for d in examples
        )
        lines.append(f"- **{reason}**: {count:,}, e.g. {shown}")
    lines.append(
        f"\nScreening the space took {funnel['seconds']:.1f} s. Every drop, with its reason, "
        "is in `drops.csv`."
    )
    return lines


def rung_lines(rungs, manifest: dict[str, Any], controls: list[str], cores: int) -> list[str]:
    seconds = manifest.get("rung_seconds", {})
    head = "| rung | steps | seeds | candidates | went on | best candidate | " + " | ".join(
        controls
    )
    lines = [
        head + " | networks | seconds | candidates per core-minute |",
        "|" + "---|" * (9 + len(controls)),
    ]
    for i in sorted(rungs["rung"].unique()):
        at = rungs[rungs["rung"] == i]
        cands = at[at["kind"] == "candidate"]
        best = cands.sort_values("rank").iloc[0]
        ctrl = " | ".join(pct(at.loc[at["name"] == c, "score"].iloc[0]) + "%" for c in controls)
        networks = (len(cands) + len(controls)) * int(at["seeds"].iloc[0])
        s = seconds.get(str(i))
        rate = f"{len(cands) / (s * cores / 60):.1f}" if s else "– (resumed)"
        lines.append(
            f"| {i + 1} | {int(at['steps'].iloc[0])} | {int(at['seeds'].iloc[0])} | "
            f"{len(cands)} | {int((cands['went_on'] == 1).sum())} | "
            f"{best['name']} {pct(best['score'])}% | {ctrl} | {networks:,} | "
            f"{'–' if not s else f'{s:.1f}'} | {rate} |"
        )
    return lines


def selection_bias(board) -> tuple[float, float, float]:
    """(finalists' mean change from screening to confirmation, the controls' mean change,
    the bias: how much more the finalists lost, or less they gained, than the controls).
    The controls were not selected, so their change is what the move from the rung's budget
    and holdout set to the full budget and test set does on its own."""
    change = board["confirm_mean"] - board["screen_score"]
    finalists = float(change[board["kind"] == "finalist"].mean())
    controls = float(change[board["kind"] == "control"].mean())
    return finalists, controls, controls - finalists


def bias_sentence(board, entered: int) -> str:
    f_change, c_change, bias = selection_bias(board)
    k = int((board["kind"] == "finalist").sum())
    m = int((board["kind"] == "control").sum())
    moved = (
        f"from screening to confirmation the {k} finalists' accuracy changed by "
        f"{100 * f_change:+.1f} points on average, the {m} unselected controls' by "
        f"{100 * c_change:+.1f}"
    )
    if bias > 0:
        verdict = (
            f"screening overstated the finalists by {100 * bias:.1f} points: what being picked "
            f"as the best of {entered:,} added to their screening scores"
        )
    else:
        verdict = (
            f"no selection bias shows: the finalists kept up with the controls "
            f"({100 * -bias:.1f} points better)"
        )
    return f"{moved}; {verdict} (an estimate from {k} finalists and {m} controls)"


def confirmation_lines(board, config, n: int) -> list[str]:
    extra = config.architectures[1:]
    head = (
        f"| rank | name | expression | screened | {ARCH_WORDS[config.proxy]} test accuracy "
        "[95% CI] | vs ReLU (Holm p) |"
    )
    for arch in extra:
        head += f" {ARCH_WORDS[arch]} [95% CI] | vs ReLU (Holm p) |"
    lines = [head, "|" + "---|" * (6 + 2 * len(extra))]
    for r in board.to_dict("records"):
        expr = (
            f"`{r['expression']}`"
            if r["kind"] == "finalist"
            else f"{r['kind']}: `{r['expression']}`"
        )
        screened = f"{pct(r['screen_score'])}%" if r["kind"] != "known" else "not screened"
        cells = [
            str(r["rank"]),
            f"**{r['name']}**" if r["kind"] == "finalist" else r["name"],
            expr,
            screened,
            interval(r["confirm_mean"], r["confirm_low"], r["confirm_high"]),
            "–"
            if r["name"] == "ReLU"
            else f"{100 * r['diff_vs_relu']:+.1f} ({p_text(r['p_vs_relu_holm'])})",
        ]
        for arch in extra:
            cells.append(interval(r[f"{arch}_mean"], r[f"{arch}_low"], r[f"{arch}_high"]))
            cells.append(
                "–"
                if r["name"] == "ReLU"
                else f"{100 * r[f'{arch}_diff_vs_relu']:+.1f} ({p_text(r[f'{arch}_p_vs_relu_holm'])})"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def read_nearest(path: Path):
    """nearest.csv of a search, or None (searches made before it was written)."""
    import pandas as pd

    file = path / "nearest.csv"
    return pd.read_csv(file) if file.is_file() else None


def nearest_verdict(r) -> str:
    """The finalist against its nearest built-in, from the paired test (Holm)."""
    if not r["p_holm"] < 0.05:
        return f"not separated from {r['known']} (Holm p = {p_text(r['p_holm'])})"
    side = "beats" if r["diff"] > 0 else "loses to"
    return f"{side} {r['known']} ({r['diff']:+.1f} points, Holm p = {p_text(r['p_holm'])})"


def nearest_findings(nearest) -> list[str]:
    """One line per finalist: what it is in the field, and whether it beats its relative."""
    if nearest is None:
        return []
    return [
        f"{r['finalist']} in the field: {r['in_words']}; on the same seeds, {nearest_verdict(r)}."
        for r in nearest.to_dict("records")
    ]


def nearest_lines(nearest, proxy: str, n: int) -> list[str]:
    """The section's table: each finalist, its nearest built-in and the paired test."""
    lines = [
        "Each finalist against every built-in activation without learnable parameters: the "
        "best fit a*g(b*x + c) + e (scale, sign and shift of input and output; no added "
        "linear term) on the range the proxy's pre-activations occupy at initialisation, "
        "and its error (root-mean-square over the finalist's standard deviation there). The "
        f"nearest built-in was confirmed with the finalists on the same {n} seeds; the "
        f"difference is the finalist's {proxy} test accuracy minus the built-in's, in "
        "points, with its 95% interval and the paired sign-flip test (Holm over the "
        "finalists).",
        "",
        "| finalist | nearest built-in (fit) | error | difference [95% CI] | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in nearest.to_dict("records"):
        lines.append(
            f"| {r['finalist']} | {r['in_words']} | {100 * r['error']:.1f}% | "
            f"{r['diff']:+.1f} [{r['diff_low']:+.1f}, {r['diff_high']:+.1f}] | "
            f"{nearest_verdict(r)} |"
        )
    return lines


def ranking(path: Path, config):
    """Friedman and Nemenyi over every confirmed activation (finalists, controls, known),
    one property per confirmation architecture, the seeds as blocks: the verdicts table."""
    import pandas as pd

    from actlab.report.verdicts import verdict_table
    from actlab.runner import load
    from actlab.search.proxy import trial_scores
    from actlab.studies.base import PropertySpec

    frames, specs = [], {}
    for arch in config.architectures:
        name = f"{ARCH_WORDS[arch]} test accuracy"
        specs[name] = PropertySpec(name, f"confirmed {name}, fresh seeds", "higher")
        table = trial_scores(load(path / "confirm" / arch))
        frames.append(
            table.assign(
                property=name,
                setting="",
                score=table["accuracy"],
                outcome="",
                regime=False,
                floored=False,
            )
        )
    return verdict_table(pd.concat(frames, ignore_index=True), specs)


def ranking_lines(verdicts) -> list[str]:
    """Per architecture: the Friedman test, the best group and whether its first is
    separated from the runner-up; "best" only where Nemenyi separates it."""
    out = []
    for prop, v in verdicts.groupby("property", sort=False):
        v = v.sort_values("mean_rank")
        first, second = v.iloc[0], v.iloc[1]
        best = v[v["group"] == "best"]["activation"].tolist()
        head = f"**{prop}** ({first['test']}): "
        nemenyi = f"Nemenyi p = {p_text(first['nemenyi_p_vs_next'])}"
        if not best:
            out.append(head + "no activation is separated from the others.")
        elif first["nemenyi_p_vs_next"] < 0.05 and len(best) == 1:
            out.append(
                head
                + f"{first['activation']} is best, separated from every other ({nemenyi} against {second['activation']})."
            )
        elif len(best) == 1:
            out.append(
                head + f"{first['activation']} ranks first (mean rank {first['mean_rank']:.2f}) "
                f"and is separated from the worst, but not from {second['activation']} ({nemenyi}): no best."
            )
        else:
            out.append(
                head + f"the best group is {', '.join(best)}, not separated from one another "
                f"(first {first['activation']}, mean rank {first['mean_rank']:.2f}): no best."
            )
    return out


def findings(board, config, n: int, entered: int, nearest=None, transfer=None) -> list[str]:
    finalists = board[board["kind"] == "finalist"]
    family = len(board) - 1
    proxy = ARCH_WORDS[config.proxy]
    out = []
    top = board.iloc[0]
    out.append(
        f"Highest confirmed {proxy} test accuracy: {top['name']} "
        f"({interval(top['confirm_mean'], top['confirm_low'], top['confirm_high'])}, "
        f"mean over {n} fresh seeds; the leaderboard ranks by this mean)."
    )
    racing = sorted(config.known_racers()) if "known" in board else []
    known = finalists[finalists["known"]]["name"].tolist() if "known" in board else []
    if racing:
        out.append(
            f"Known activations in the race: {len(racing)} built-ins ran every rung beside "
            f"the candidates; {len(known)} of the {len(finalists)} finalists "
            + ("is a known one" if len(known) == 1 else "are known ones")
            + (f" ({', '.join(known)})" if known else "")
            + "."
        )
    for line in nearest_findings(nearest):
        out.append(line)
    out += transfer_findings(transfer)
    for r in finalists.to_dict("records"):
        what = "a known activation" if r.get("known", False) else f"`{r['expression']}`"
        text = f"{r['name']} ({what}) on the {proxy}: " + versus_relu(r, "", n, family)
        for arch in config.architectures[1:]:
            text += f"; on the {ARCH_WORDS[arch]}: " + versus_relu(r, f"{arch}_", n, family)
        out.append(text + ".")
    out.append(
        f"Selection bias: the {len(finalists)} finalists were picked from {entered:,} "
        f"candidates; {bias_sentence(board, entered)}."
    )
    return out


def write_report(search, board) -> Path:
    """report.md, report.html and the figures of a finished search."""
    import pandas as pd

    from actlab.search.directory import read_drops
    from actlab.search.figures import plot_shapes, plot_survival
    from actlab.search.select import proxy_init

    path = search.path
    config = search.config
    manifest = search.manifest
    rungs = pd.read_csv(path / "rungs.csv")
    drops = read_drops(path)
    n = int(board["n_seeds"].iloc[0])
    entered = manifest["funnel"]["entered"]
    cores = config.workers or os.cpu_count() or 1
    figures = path / "figures"
    survival = plot_survival(rungs, config.controls, figures / "search_survival.png")
    acts = activations_of(board)
    nearest = read_nearest(path)
    transfer = read_transfer(path)
    finalists = set(board[board["kind"] == "finalist"]["name"])
    learned = learned_lines(path, config, {n: a for n, a in acts.items() if n in finalists})
    from actlab.report.cd_diagram import plot_cd_diagrams

    ranked = ranking(path, config)
    cd = plot_cd_diagrams(ranked, figures / "search_critical_differences.png")
    shapes = plot_shapes(acts, figures / "search_shapes.png")
    proxy = ARCH_WORDS[config.proxy]
    space = (
        "Ramachandran et al.'s core unit b(u1(x), u2(x))"
        + (" composed twice" if config.units == 2 else "")
        if config.space == "default"
        else f"the expressions in `{config.space}`"
    )
    last = config.rung_steps[-1]
    md = [
        f"# actlab search: {int((board['kind'] == 'finalist').sum())} finalists from {entered:,} candidates",
        "",
        f"Searched {space} (seed {config.seed}{', modulo a positive scale' if config.modulo_scale else ''})"
        f" on MNIST-1D: screened by successive halving on the {proxy} (eta {config.eta:g}), "
        f"scored on {config.holdout} training samples held out of training; the finalists and "
        f"the controls ({', '.join(config.controls)}), with the built-in activation nearest each "
        f"finalist, confirmed at {config.confirm_steps} steps "
        f"on {n} seeds no screening network used, on the test set, on "
        + " and ".join(f"the {ARCH_WORDS[a]}" for a in config.architectures)
        + ".",
        "",
        "## Findings",
        "",
        *[f"- {line}" for line in findings(board, config, n, entered, nearest, transfer)],
        "",
        "## Confirmation",
        "",
        "The only numbers the leaderboard ranks by: test accuracy at the full budget on fresh "
        "seeds (mean and 95% t interval), and the difference from ReLU in points with the "
        "paired sign-flip test's p, Holm-adjusted over the comparisons with ReLU "
        "(`leaderboard.csv`). *Screened*: the last rung's holdout accuracy.",
        "",
        *confirmation_lines(board, config, n),
        "",
        *(
            ["## Held against the known activations", "", *nearest_lines(nearest, proxy, n), ""]
            if nearest is not None
            else []
        ),
        "## Finalists against each other",
        "",
        "Every confirmed activation ranked by Friedman's test with the confirmation seeds as "
        "blocks and Nemenyi's post-hoc test (Demšar 2006), per architecture: a finalist is "
        "called best only where the test separates it from every other.",
        "",
        *[f"- {line}" for line in ranking_lines(ranked)],
        "",
        f"![critical differences]({cd.relative_to(path)})",
        "",
        *(
            [
                "## Does it transfer?",
                "",
                *transfer_lines(transfer, config, stored_settings(path)),
                "",
            ]
            if transfer is not None
            else []
        ),
        *(["## What the learnable finalists learned", "", *learned] if learned else []),
        "## Selection bias",
        "",
        f"Screening scored the last rung at {last} steps on held-out training samples; "
        f"confirmation at {config.confirm_steps} steps on the test set, so every score moves "
        "between the two. The controls were not selected, so their change measures that part; "
        f"{bias_sentence(board, entered)}.",
        "",
        "| name | kind | screened | confirmed | change |",
        "|---|---|---|---|---|",
        *[
            f"| {r['name']} | {r['kind']} | {pct(r['screen_score'])}% | "
            f"{pct(r['confirm_mean'])}% | {100 * (r['confirm_mean'] - r['screen_score']):+.1f} |"
            for r in board.to_dict("records")
            if r["kind"] != "nearest"
        ],
        "",
        "## Screening",
        "",
        *funnel_lines(manifest, drops),
        "",
        f"Rung by rung, on the {proxy} (scores: mean holdout accuracy over the rung's seeds; a "
        "diverged network scores 0). *Candidates per core-minute*: candidates over the rung's "
        f"wall-clock minutes times the {cores} cores it ran on.",
        "",
        *rung_lines(rungs, manifest, config.controls, cores),
        "",
        f"![survival]({survival.relative_to(path)})",
        "",
        "## Finalists in theory",
        "",
        "Mean-field numbers at the proxy's initialisation (PyTorch's default: sigma_w^2 = 1/3, "
        "sigma_b^2 = 1/300; `actlab theory NAME=EXPR --sigma-w 0.577 --sigma-b 0.0577`).",
        "",
        *theory_rows(board, proxy_init(config)),
        "",
        "## Shapes",
        "",
        f"![shapes]({shapes.relative_to(path)})",
        "",
        "`finalists.txt` holds them as `NAME=EXPR` lines, best confirmed first; "
        "`--activations` and `actlab profile` take each as it is, e.g. "
        f"`actlab profile '{first_finalist(board)}'`.",
        "",
    ]
    text = "\n".join(md)
    (path / "report.md").write_text(text)
    from actlab.report.html import build_html

    build_html(search, text, acts)
    return path / "report.md"


def first_finalist(board) -> str:
    row = board[board["kind"] == "finalist"].iloc[0]
    return row["name"] if row.get("known", False) else f"{row['name']}={row['expression']}"


def activations_of(board) -> dict[str, Any]:
    from actlab.activations import get_activation

    out = {}
    for r in board.to_dict("records"):
        if r["kind"] == "finalist" and not r.get("known", False):
            out[r["name"]] = get_activation(r["expression"], name=r["name"])
        else:
            out[r["name"]] = get_activation(r["name"])
    return out


def rebuild(path: Path) -> Path:
    """The report of a finished search, again, from its files (`actlab report DIR`)."""
    import pandas as pd

    from actlab.errors import UserError
    from actlab.search.directory import Search

    search = Search(Path(path))
    if search.manifest.get("status") != "complete":
        raise UserError(
            f"search '{path}' has not finished (status {search.manifest.get('status')}); "
            f"finish it with `actlab search --resume {path}`"
        )
    return write_report(search, pd.read_csv(Path(path) / "leaderboard.csv"))
