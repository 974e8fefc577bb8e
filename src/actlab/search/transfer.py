"""Does it transfer? Each finalist and the built-in nearest it, on tasks the search never saw.

Screening and confirmation train on MNIST-1D's proxy architecture (and the `second`, where
one is set). Here the finalists, the nearest built-ins of the new ones (search/nearest.py)
and ReLU are trained again, on fresh seeds (a stream of their own: `transfer_seed`), in one
ordinary actlab run (`transfer/` in the search directory: stacked, spread over the
executor, resumable) of these tasks, each scored by one number per network:

  cnn, transformer  each MNIST-1D architecture not confirmed on, `transfer_steps` Adam
               steps: test accuracy (a diverged network scores 0)
  digits       the real_data study on the bundled 8x8 digits, 3 hidden layers, Adam until
               the validation loss stops falling (at most 300 epochs, or `transfer_steps`
               where fewer): test accuracy (diverged: 0)
  capacity     the capacity study of the run preset `transfer_preset` (five 1-D targets in
               the sound preset): the mean over targets of log10(test MSE / the target's
               variance), each capped at 0, the constant predictor's score (a diverged fit
               scores 0); lower is better
  stability    the stability study of that preset (a learning-rate sweep with SGD and a
               depth sweep with Adam; 8 settings in the sound preset): the settings at
               which the network learned (its loss fell below the learned line)

transfer.csv, one row per task and activation: task, activation, kind (finalist, nearest,
control), relative (a new finalist's nearest built-in), mean, low, high (95% t interval over
seeds), n_seeds, of (stability: the settings each seed ran), networks (trained: seeds times
targets or settings), diverged (of those networks), and for a
new finalist the paired difference from its relative on the same seeds (diff, diff_low,
diff_high; in the task's unit, oriented so that positive is better), the sign-flip test's p
and p_holm (Holm over the finalists compared on that task).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from actlab.search.config import ARCH_WORDS, SearchConfig

TRANSFER = "transfer"  # the run's directory in the search directory
DIGITS_DEPTH = 3


@dataclass(frozen=True)
class Task:
    name: str
    study: str
    words: str  # the column's heading
    unit: str  # how a value reads: "%" (a share), "log10" or "settings"
    higher_is_better: bool
    architecture: str | None = None  # an MNIST-1D task's


MNIST1D_TASKS = tuple(
    Task(arch, "mnist1d", f"MNIST-1D {words} test accuracy", "%", True, arch)
    for arch, words in ARCH_WORDS.items()
)
OTHER_TASKS = (
    Task("digits", "real_data", "digits test accuracy (3 hidden layers)", "%", True),
    Task(
        "capacity",
        "capacity",
        "capacity: mean log10 test MSE / variance (lower is better)",
        "log10",
        False,
    ),
    Task("stability", "stability", "stability: settings learned", "settings", True),
)
TASKS = {t.name: t for t in (*MNIST1D_TASKS, *OTHER_TASKS)}


def tasks_of(config: SearchConfig) -> list[Task]:
    """The tasks of a search's transfer: each MNIST-1D architecture it did not confirm on,
    then the digits, capacity and stability."""
    unseen = [t for t in MNIST1D_TASKS if t.architecture not in config.architectures]
    return [*unseen, *OTHER_TASKS]


def transfer_seed(config: SearchConfig) -> int:
    """The transfer networks' run seed: a stream of its own, so none starts from a
    screening or confirmation network's weights."""
    from actlab.engine.seeding import derive_seed
    from actlab.search.proxy import confirm_seed, screen_seed

    seed = derive_seed(config.seed, "search", "transfer") % 2**31
    while seed in (screen_seed(config), confirm_seed(config)):  # never, but never silently
        seed = (seed + 1) % 2**31
    return seed


def transfer_activations(board, relatives: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The run's activations as specs (the finalists best first, then the built-ins nearest
    the new ones, whatever their kind on the leaderboard, then ReLU), and each one's kind by
    name (finalist, nearest or control)."""
    specs: dict[str, str] = {}  # name -> spec
    kinds: dict[str, str] = {}
    for r in board.to_dict("records"):
        if r["kind"] == "finalist":
            specs[r["name"]] = r["name"] if r["known"] else f"{r['name']}={r['expression']}"
            kinds[r["name"]] = "finalist"
    for known in relatives.values():
        if known not in kinds:
            specs[known], kinds[known] = known, "nearest"
    if "ReLU" not in kinds:
        specs["ReLU"], kinds["ReLU"] = "ReLU", "control"
    return list(specs.values()), kinds


def run_config(config: SearchConfig, specs: list[str]):
    """The transfer run's RunConfig: its tasks (`tasks_of`), the capacity and stability
    settings of the run preset `transfer_preset`."""
    from actlab.config import RunConfig, preset_path, read_toml, split_tables

    _, tables = split_tables(read_toml(preset_path(config.transfer_preset)))
    tasks = tasks_of(config)
    return RunConfig(
        description="actlab search: transfer",
        seed=transfer_seed(config),
        seeds=config.transfer_seeds,
        activations=specs,
        studies=list(dict.fromkeys(t.study for t in tasks)),
        executor=config.executor,
        workers=config.workers,
        address=config.address,
        max_members=config.max_members,
        study_config={
            "mnist1d": {
                "architectures": [t.architecture for t in tasks if t.architecture],
                "steps": config.transfer_steps,
                "eval_every": min(250, config.transfer_steps),
                "time_steps": False,
            },
            "real_data": {
                "datasets": ["digits"],
                "depths": [DIGITS_DEPTH],
                "max_epochs": digits_epochs(config),
            },
            "capacity": tables.get("capacity", {}),
            "stability": tables.get("stability", {}),
        },
    )


def digits_epochs(config: SearchConfig) -> int:
    """The digits' epochs at most: the real_data study's default (300), or fewer where the
    transfer's steps are fewer (a small test search)."""
    from actlab.studies.real_data.config import Config

    return min(Config.model_fields["max_epochs"].default, config.transfer_steps)


def run_transfer(
    path: Path,
    config: SearchConfig,
    board,
    relatives: dict[str, str],
    say: Callable[[str], None],
    progress: Callable | None = None,
    on_start: Callable | None = None,
    on_steps: Callable | None = None,
):
    """The transfer run (started, continued or read), and transfer.csv written from it."""
    from actlab.rundir import write_atomic
    from actlab.search.proxy import run_or_resume

    specs, kinds = transfer_activations(board, relatives)
    tasks = tasks_of(config)
    header = (
        f"transfer: {len(specs)} activations x {config.transfer_seeds} fresh seeds on "
        + ", ".join(t.name for t in tasks)
    )
    run = run_or_resume(
        run_config(config, specs),
        path / TRANSFER,
        progress,
        header=header,
        say=say,
        on_start=on_start,
        on_steps=on_steps,
    )
    frame = transfer_table(task_scores(run.results, tasks), kinds, relatives)
    write_atomic(path / "transfer.csv", frame.to_csv(index=False, float_format="%.6g"))
    return frame


# -- one number per network ------------------------------------------------------------------
def task_scores(results, tasks: list[Task]):
    """One row per task, activation and seed: `score`, `diverged` (networks) and `of`."""
    import pandas as pd

    frames = [scores_of(task, results).assign(task=task.name) for task in tasks]
    columns = ["task", "activation", "seed", "score", "diverged", "networks", "of"]
    return pd.concat(frames, ignore_index=True).reindex(columns=columns)


def scores_of(task: Task, results):
    if task.study == "capacity":
        return capacity_scores(results)
    if task.study == "stability":
        return stability_scores(results)
    return accuracy_scores(results, task)


def accuracy_scores(results, task: Task):
    from actlab.studies.base import trial_table

    index = ["activation", "seed"] + (["architecture"] if task.architecture else [])
    wide = trial_table(results, task.study, ("test_accuracy", "diverged"), index)
    if task.architecture:
        wide = wide[wide["architecture"] == task.architecture]
    # A network without a finite accuracy diverged (the studies store NaN for it).
    gone = (wide["diverged"] == 1) | wide["test_accuracy"].isna()
    score = wide["test_accuracy"].where(~gone, 0.0)
    return wide.assign(diverged=gone.astype(int), score=score, networks=1)


def capacity_scores(results):
    import numpy as np

    from actlab.studies.capacity.summary import trial_metrics

    wide = trial_metrics(results)
    ratio = wide["test_mse"] / wide["target_variance"]
    diverged = (wide["diverged"] == 1) | ratio.isna()  # no finite error: it diverged
    # An exact fit would be -inf; 1e-12 is far below what float32 training reaches.
    score = np.log10(ratio.where(~diverged, 1.0).clip(1e-12, 1.0))
    wide = wide.assign(score=score, diverged=diverged.astype(int), networks=1)
    return wide.groupby(["activation", "seed"], sort=False, as_index=False)[
        ["score", "diverged", "networks"]
    ].agg({"score": "mean", "diverged": "sum", "networks": "sum"})


def stability_scores(results):
    from actlab.studies.stability.summary import summarize

    trials = summarize(results)["trials"]
    trials = trials.assign(
        score=(trials["outcome"] == "learned").astype(float),
        diverged=(trials["outcome"] == "diverged").astype(int),
        of=1.0,
        networks=1,
    )
    return trials.groupby(["activation", "seed"], sort=False, as_index=False)[
        ["score", "diverged", "networks", "of"]
    ].sum()


# -- the table -------------------------------------------------------------------------------
def transfer_table(scores, kinds: dict[str, str], relatives: dict[str, str]):
    """transfer.csv's frame (see the module docstring) from `task_scores`; `kinds`: each
    activation's kind, in the table's order; `relatives`: each new finalist's nearest
    built-in."""
    import pandas as pd

    from actlab.stats import paired_by_seed, summarize, with_holm

    rows = []
    for task_name in dict.fromkeys(scores["task"]):
        task = TASKS[task_name]
        here = scores[scores["task"] == task_name]
        sign = 1.0 if task.higher_is_better else -1.0
        pairs = [(f, k) for f, k in relatives.items() if f in set(here["activation"])]
        tests = with_holm(
            [
                paired_by_seed(here.assign(score=sign * here["score"]), "score", f, k)
                for f, k in pairs
            ]
        )
        tested = {f: t for (f, _), t in zip(pairs, tests, strict=True)}
        for name, kind in kinds.items():
            mine = here[here["activation"] == name]
            if mine.empty:
                continue
            s = summarize(mine["score"])
            test = tested.get(name)
            rows.append(
                {
                    "task": task.name,
                    "activation": name,
                    "kind": kind,
                    "relative": relatives.get(name, ""),
                    "mean": s.mean,
                    "low": s.ci_low,
                    "high": s.ci_high,
                    "n_seeds": s.n,
                    "of": mine["of"].max(),  # stability: the settings each seed ran
                    "networks": int(mine["networks"].sum()),
                    "diverged": int(mine["diverged"].sum()),
                    "diff": test.mean_diff if test else math.nan,
                    "diff_low": test.ci_low if test else math.nan,
                    "diff_high": test.ci_high if test else math.nan,
                    "p": test.p_value if test else math.nan,
                    "p_holm": test.p_adjusted if test else math.nan,
                }
            )
    return pd.DataFrame(rows, columns=TRANSFER_COLUMNS)


TRANSFER_COLUMNS = [
    "task",
    "activation",
    "kind",
    "relative",
    "mean",
    "low",
    "high",
    "n_seeds",
    "of",
    "networks",
    "diverged",
    "diff",
    "diff_low",
    "diff_high",
    "p",
    "p_holm",
]


# -- the report's section ----------------------------------------------------------------------
def read_transfer(path: Path):
    """transfer.csv of a search, or None (no transfer run, or made before it existed)."""
    import pandas as pd

    file = path / "transfer.csv"
    return pd.read_csv(file, keep_default_na=False, na_values=[""]) if file.is_file() else None


def value_text(task: Task, mean: float, low: float, high: float, of: float = math.nan) -> str:
    """A task's value with its 95% interval, in the task's unit."""
    if task.unit == "%":  # a share's interval stays within [0, 1]
        text = f"{100 * mean:.1f}%"
        rest = f" [{100 * max(low, 0.0):.1f}, {100 * min(high, 1.0):.1f}]"
    else:
        digits = 2 if task.unit == "log10" else 1
        text = f"{mean:.{digits}f}" + (f" of {of:g}" if math.isfinite(of) else "")
        rest = f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text + (rest if math.isfinite(low) else "")


def diff_text(task: Task, r) -> str:
    """The finalist minus its relative (positive favours the finalist), with its interval."""
    scale, unit, digits = (100, " points", 1) if task.unit == "%" else (1, "", 2)
    d = [scale * r[k] for k in ("diff", "diff_low", "diff_high")]
    rest = f" [{d[1]:+.{digits}f}, {d[2]:+.{digits}f}]" if math.isfinite(d[1]) else ""
    return f"{d[0]:+.{digits}f}{unit}{rest}"


def verdict(r) -> str:
    """'better', 'worse' or 'not separated', from the Holm-adjusted paired test."""
    if not r["p_holm"] < 0.05:
        return "not separated"
    return "better" if r["diff"] > 0 else "worse"


def transfer_findings(frame) -> list[str]:
    """Per new finalist, one line: on which tasks it beats, loses to or is not separated
    from its nearest built-in."""
    from actlab.stats import SIGNIFICANCE, seeds_for_family, smallest_adjusted_p

    if frame is None:
        return []
    out = []
    compared = frame[frame["relative"].notna() & frame["p"].notna()]
    for name, rows in compared.groupby("activation", sort=False):
        by_verdict: dict[str, list[str]] = {}
        for r in rows.to_dict("records"):
            by_verdict.setdefault(verdict(r), []).append(r["task"])
        said = "; ".join(f"{v} on {', '.join(t)}" for v, t in by_verdict.items())
        n = int(rows["n_seeds"].max())
        m = int(compared.groupby("task").size().max())  # the tested ones (p not NaN)
        reach = ""
        if smallest_adjusted_p(n, m) >= SIGNIFICANCE:
            reach = f"; {n} seeds cannot separate anything here, {seeds_for_family(m)} could"
        out.append(
            f"{name} against {rows['relative'].iloc[0]} on architectures and tasks the search "
            f"never trained on: {said} (paired sign-flip test over {n} fresh seeds, Holm over "
            f"the finalists per task, none across tasks{reach}; see *Does it transfer?*)."
        )
    return out


def stored_settings(path: Path) -> dict:
    """The transfer run's study settings as it stored them (its manifest), so a rebuilt
    report describes what ran, not today's defaults."""
    import json

    return json.loads((path / TRANSFER / "manifest.json").read_text())["config"]["study_config"]


def transfer_lines(frame, config: SearchConfig, settings: dict) -> list[str]:
    """The section: what ran (`settings`: `stored_settings`), a table of every activation
    on each task, and each new finalist against its nearest built-in."""
    from actlab.stats import family_reach

    tasks = [TASKS[name] for name in dict.fromkeys(frame["task"])]
    n = int(frame["n_seeds"].max())
    archs = [ARCH_WORDS[t.architecture] for t in tasks if t.architecture]
    mnist1d = settings.get("mnist1d", {})
    digits = settings.get("real_data", {})
    lines = [
        "Each finalist, the built-in nearest each new finalist and ReLU, trained again on "
        f"{n} fresh seeds on architectures and tasks the search never trained on: "
        + (
            f"MNIST-1D's {' and '.join(archs)} ({mnist1d.get('steps')} Adam steps); "
            if archs
            else ""
        )
        + f"the digits (8x8 pixels, {DIGITS_DEPTH} hidden layers, full-batch Adam until the "
        f"validation loss stops falling, {digits.get('max_epochs')} epochs at most); and the "
        f"capacity and stability studies with the {config.transfer_preset} preset's settings "
        "(as stored in `transfer/manifest.json`). Capacity: the mean over its targets of "
        "log10(test MSE / the target's variance), each capped at 0 (the constant "
        "predictor), lower is better; stability: the settings (learning rates and depths) "
        "at which the network learned. Mean and 95% t interval over seeds; a diverged "
        "network scores 0 (the transfer run: `transfer/`; the table: `transfer.csv`).",
        "",
        "| activation | " + " | ".join(t.words for t in tasks) + " |",
        "|---" * (len(tasks) + 1) + "|",
    ]
    for name, rows in frame.groupby("activation", sort=False):
        by_task = {r["task"]: r for r in rows.to_dict("records")}
        cells = []
        for t in tasks:
            r = by_task.get(t.name)
            cell = "–" if r is None else value_text(t, r["mean"], r["low"], r["high"], r["of"])
            if r is not None and r["diverged"]:
                cell += f" ({int(r['diverged'])} of {int(r['networks'])} networks diverged)"
            cells.append(cell)
        label = f"{name} ({rows['kind'].iloc[0]})"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    compared = frame[frame["relative"].notna()]
    if compared.empty:
        return lines
    tested = compared[compared["p"].notna()]
    m = int(tested.groupby("task").size().max()) if not tested.empty else 0
    lines += [
        "",
        "Each new finalist minus its nearest built-in on the same seeds (positive favours "
        "the finalist: higher accuracy, lower log10 MSE, more settings learned), 95% "
        "interval, and the paired sign-flip test Holm-adjusted over the finalists compared "
        f"on that task. There is no correction across the {len(tasks)} tasks: over that "
        "many, one 'better' or 'worse' by chance is not unlikely, so a finding that "
        "transfers holds on most of them.",
        "",
    ]
    reach = family_reach(n, m, "these comparisons") if m else None
    if reach:
        lines += [reach, ""]
    lines += [
        "| finalist | nearest built-in | " + " | ".join(t.name for t in tasks) + " |",
        "|---|---" + "|---" * len(tasks) + "|",
    ]
    for name, rows in compared.groupby("activation", sort=False):
        by_task = {r["task"]: r for r in rows.to_dict("records")}
        cells = []
        for t in tasks:
            r = by_task.get(t.name)
            if r is None or not math.isfinite(r["diff"]):
                cells.append("–")
                continue
            p = "–" if not math.isfinite(r["p_holm"]) else f"{r['p_holm']:.2g}"
            cells.append(f"{diff_text(t, r)}, Holm p = {p}: {verdict(r)}")
        lines.append(f"| {name} | {rows['relative'].iloc[0]} | " + " | ".join(cells) + " |")
    return lines
