"""Confirmation and the leaderboard.

The finalists and the controls are trained again at the proxy's full budget, on seeds no
screening network used (proxy.confirm_seed), on the proxy architecture and a second one,
and scored on the test set, which screening never saw. These are the only numbers the
leaderboard ranks by: the proxy architecture's mean test accuracy over the confirmation
seeds, with its 95% t interval, and a paired sign-flip test against ReLU (seeds paired:
common initial weights within a seed), Holm-adjusted over every comparison with ReLU on
that architecture (the finalists' and the other controls').

leaderboard.csv, one row per finalist and control, best first:
  rank, name, expression, kind (finalist, control, or nearest: a built-in nearest a new
  finalist, search/nearest.py, that did not race), known (a built-in, not a new find),
  screen_score (the last rung's mean holdout accuracy; none for a nearest one, which was
  not screened), confirm_mean, confirm_low, confirm_high, p_vs_relu (raw),
  p_vs_relu_holm, diff_vs_relu, n_seeds, and per extra architecture ARCH_mean, ARCH_low,
  ARCH_high, ARCH_p_vs_relu, ARCH_diff_vs_relu.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from actlab.search.config import SearchConfig
from actlab.search.halving import RungResult
from actlab.search.space import Candidate


def confirm(
    path: Path,
    config: SearchConfig,
    finalists: list[Candidate],
    say: Callable[[str], None],
    progress: Callable | None,
    on_start: Callable | None = None,
    on_steps: Callable | None = None,
    known: list[str] = (),
) -> dict[str, object]:
    """Per architecture, the per-trial table (activation, seed, accuracy) of its run: the
    finalists, the controls and the `known` built-ins nearest the finalists, on the same
    seeds."""
    from actlab.search.proxy import run_config, run_or_resume, trial_scores

    # A known finalist (a built-in that raced) by its name, a new one as NAME=EXPR.
    specs = [c.name if c.name == c.expression else c.spec for c in finalists]
    specs += list(config.controls) + list(known)
    tables = {}
    for arch in config.architectures:
        header = (
            f"confirmation on the {arch}: {len(specs)} activations x "
            f"{config.confirm_seeds} fresh seeds x {config.confirm_steps} steps"
        )
        cfg = run_config(
            config,
            specs,
            architecture=arch,
            steps=config.confirm_steps,
            seeds=config.confirm_seeds,
            confirm=True,
        )
        run = run_or_resume(
            cfg,
            path / "confirm" / arch,
            progress,
            header=header,
            say=say,
            on_start=on_start,
            on_steps=on_steps,
        )
        tables[arch] = trial_scores(run)
    return tables


def architecture_columns(table, names: list[str], prefix: str) -> dict[str, dict]:
    """Per name: mean, interval, paired test against ReLU (Holm over the non-ReLU names)."""
    from actlab.stats import paired_by_seed, summarize, with_holm

    out: dict[str, dict] = {}
    others = [n for n in names if n != "ReLU"]
    family = with_holm([paired_by_seed(table, "accuracy", n, "ReLU") for n in others])
    tests = dict(zip(others, family, strict=True))
    for name in names:
        s = summarize(table.loc[table["activation"] == name, "accuracy"])
        row = {
            f"{prefix}_mean": s.mean,
            f"{prefix}_low": s.ci_low,
            f"{prefix}_high": s.ci_high,
        }
        test = tests.get(name)
        row[f"{prefix}_diff_vs_relu"] = test.mean_diff if test else 0.0
        row[f"{prefix}_p_vs_relu"] = test.p_value if test else math.nan
        row[f"{prefix}_p_vs_relu_holm"] = test.p_adjusted if test else math.nan
        row["n_seeds"] = s.n
        out[name] = row
    return out


def leaderboard(
    config: SearchConfig,
    results: list[RungResult],
    by_name: dict[str, Candidate],
    tables: dict[str, object],
    known: list[str] = (),
):
    """The leaderboard frame (see the module docstring)."""
    import pandas as pd

    from actlab.activations import BUILTINS, get_activation

    finalists = list(results[-1].survivors)
    names = finalists + list(config.controls) + list(known)
    last = results[-1].scores
    rows = {
        n: {
            "name": n,
            "expression": get_activation(n).formula if n in BUILTINS else by_name[n].expression,
            "kind": "finalist"
            if n in finalists
            else "control"
            if n in config.controls
            else "nearest",
            "known": n in BUILTINS,
            "screen_score": last.get(n, math.nan),
        }
        for n in names
    }
    for i, arch in enumerate(config.architectures):
        prefix = "confirm" if i == 0 else arch
        for name, cols in architecture_columns(tables[arch], names, prefix).items():
            if i > 0:
                cols.pop("n_seeds")
            rows[name].update(cols)
    frame = pd.DataFrame(list(rows.values()))
    frame = frame.rename(
        columns={
            "confirm_p_vs_relu": "p_vs_relu",
            "confirm_p_vs_relu_holm": "p_vs_relu_holm",
            "confirm_diff_vs_relu": "diff_vs_relu",
        }
    )
    frame = frame.sort_values(["confirm_mean", "name"], ascending=[False, True], kind="stable")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def write_leaderboard(
    path: Path,
    config: SearchConfig,
    results: list[RungResult],
    by_name: dict[str, Candidate],
    tables: dict[str, object],
    known: list[str] = (),
):
    from actlab.rundir import write_atomic

    board = leaderboard(config, results, by_name, tables, known)
    write_atomic(path / "leaderboard.csv", board.to_csv(index=False, float_format="%.6g"))
    finalists = board[board["kind"] == "finalist"]
    lines = [r.name if r.known else f"{r.name}={r.expression}" for r in finalists.itertuples()]
    # Nothing but NAME=EXPR lines (a known finalist: its name), best confirmed first: each is accepted as it is by
    # --activations and `actlab profile`.
    write_atomic(path / "finalists.txt", "\n".join(lines) + "\n")
    return board


NEAREST_COLUMNS = [
    "finalist",
    "known",
    "a",
    "b",
    "c",
    "e",
    "error",
    "in_words",
    "diff",
    "diff_low",
    "diff_high",
    "p",
    "p_holm",
    "n_seeds",
]


def nearest_rows(fits: dict, table) -> list[dict]:
    """Per finalist, its nearest built-in's fit and the paired test of the two on the
    proxy's confirmation seeds (finalist minus built-in, accuracy in points; sign-flip,
    Holm over the finalists)."""
    from actlab.stats import paired_by_seed, with_holm

    tests = with_holm([paired_by_seed(table, "accuracy", f, fit.known) for f, fit in fits.items()])
    return [
        {
            "finalist": finalist,
            "known": fit.known,
            "a": fit.a,
            "b": fit.b,
            "c": fit.c,
            "e": fit.e,
            "error": fit.error,
            "in_words": fit.words(),
            "diff": 100 * test.mean_diff,
            "diff_low": 100 * test.ci_low,
            "diff_high": 100 * test.ci_high,
            "p": test.p_value,
            "p_holm": test.p_adjusted,
            "n_seeds": test.n,
        }
        for (finalist, fit), test in zip(fits.items(), tests, strict=True)
    ]


def write_nearest(path: Path, fits: dict, table) -> None:
    """nearest.csv: `nearest_rows`, one per finalist."""
    import pandas as pd

    from actlab.rundir import write_atomic

    frame = pd.DataFrame(nearest_rows(fits, table), columns=NEAREST_COLUMNS)
    write_atomic(path / "nearest.csv", frame.to_csv(index=False, float_format="%.6g"))
