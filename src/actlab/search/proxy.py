"""Training candidates: every rung and every confirmation is an ordinary actlab run of the
mnist1d study in its own directory under the search's, so it is stacked, spread over the
executor (a process pool or Ray) and resumable exactly like `actlab run`.

Seeds. Screening networks draw their initial weights from the run seed `screen_seed`,
confirmation networks from `confirm_seed`: two different streams derived from the search
seed, so no confirmation network starts from a screening network's weights. Screening is
scored on `holdout` training samples held out of training; confirmation on the test set,
which screening never sees.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from actlab.search.config import SearchConfig


def screen_seed(config: SearchConfig) -> int:
    from actlab.engine.seeding import derive_seed

    return derive_seed(config.seed, "search", "screen") % 2**31


def confirm_seed(config: SearchConfig) -> int:
    from actlab.engine.seeding import derive_seed

    seed = derive_seed(config.seed, "search", "confirm") % 2**31
    if seed == screen_seed(config):  # 1 in 2^31: never, but never silently
        seed = (seed + 1) % 2**31
    return seed


def run_config(
    config: SearchConfig,
    specs: list[str],
    *,
    architecture: str,
    steps: int,
    seeds: int,
    confirm: bool,
):
    """The RunConfig of one rung (confirm=False) or one confirmation."""
    from actlab.config import RunConfig

    study = {
        "architectures": [architecture],
        "steps": steps,
        "time_steps": False,  # a search compares accuracy; step timing would double rung 0
    }
    if confirm:
        study["eval_every"] = min(250, steps)  # learning curves, as in a plain run
    else:
        study["eval_every"] = steps  # one evaluation, at the end
        study["holdout"] = config.holdout
    return RunConfig(
        description="actlab search: " + ("confirmation" if confirm else "screening rung"),
        seed=confirm_seed(config) if confirm else screen_seed(config),
        seeds=seeds,
        activations=specs,
        studies=["mnist1d"],
        executor=config.executor,
        workers=config.workers,
        address=config.address,
        max_members=config.max_members,
        study_config={"mnist1d": study},
    )


def run_or_resume(
    run_config_,
    path: Path,
    progress: Callable | None = None,
    *,
    header: str | None = None,
    say: Callable[[str], None] | None = None,
    on_start: Callable | None = None,
    on_steps: Callable | None = None,
):
    """The run in `path`: read if complete, continued if interrupted, started if absent.

    With `header` and `say`, the stage is said in one line: the header, and once the run
    has planned its work, about how long it will take ('rung 1 of 4: ...; about 40 s on 2
    workers'); the runner's `on_start` and `on_steps` reach the caller's progress."""
    from actlab.runner import execute, load
    from actlab.store import read_manifest

    def tell(text: str) -> None:
        if header is not None and say is not None:
            say(f"{header}; {text}")

    def started(info) -> None:
        from actlab.progress import about, planned_seconds, plural_workers

        took = f"{about(planned_seconds(info))} on {plural_workers(info)}"
        if info.resumed and info.stored:
            whole = info.stored + info.to_run
            took = f"{info.stored} of {whole} trials stored, the rest {took}"
        tell(took)
        if on_start is not None:
            on_start(info)

    calls = {"progress": progress, "on_start": started, "on_steps": on_steps}
    if path.exists() and (path / "manifest.json").exists():
        if read_manifest(path).get("status") == "complete":
            tell("stored")
            return load(path)
        return execute(run_config_, resume=path, report=False, verdicts=False, **calls)
    return execute(run_config_, out=path, report=False, verdicts=False, **calls)


def trial_scores(run) -> object:
    """One row per trial: activation, seed, accuracy (a diverged network scores 0: worse
    than chance, so a candidate that diverges on some seeds is not ranked on the rest)."""
    from actlab.studies.base import trial_table

    wide = trial_table(
        run.results, "mnist1d", ("test_accuracy", "diverged"), ["activation", "seed"]
    )
    wide["accuracy"] = wide["test_accuracy"].where(wide["diverged"] == 0, 0.0).fillna(0.0)
    return wide[["activation", "seed", "accuracy"]]


def mean_scores(run) -> dict[str, float]:
    table = trial_scores(run)
    means = table.groupby("activation", sort=False)["accuracy"].mean()
    return {str(k): float(v) if math.isfinite(v) else math.nan for k, v in means.items()}
