"""Time one stacked batch of a preset's study on one thread, as a worker runs it.

    python -m benchmarks.batch --study stability --where part=depth --where depth=50
    python -m benchmarks.batch --study capacity --activation GELU --repeats 5

The trials of the study (in the preset, default `tutorial`, with --seeds seeds) that match
every --where KEY=VALUE and the --activation, if given, run as one stack; printed are the
number of networks and the median wall time over --repeats runs. To compare two versions
of the engine on the same batch, run this from two checkouts in turn, e.g.
`git worktree add /tmp/old REV` and `PYTHONPATH=/tmp/old/src python -m benchmarks.batch ...`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def matches(trial, where: list[str], activation: str | None) -> bool:
    if activation is not None and trial.activation != activation:
        return False
    for condition in where:
        key, _, value = condition.partition("=")
        if str(trial.params.get(key)) != value:
            return False
    return True


def main(argv: list[str] | None = None) -> None:
    from actlab.activations import get_activation
    from actlab.config import load_config
    from actlab.studies import get_study
    from actlab.studies.base import RunContext

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tutorial")
    parser.add_argument("--study", required=True)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--activation", default=None)
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    cfg = load_config(args.preset, overrides={"studies": [args.study]})
    study, scfg = get_study(args.study), cfg.study(args.study)
    table = {n: get_activation(n) for n in cfg.activations}
    ctx = RunContext(run_seed=cfg.seed, config=scfg, activations=table)
    trials = [
        t
        for t in study.trials(scfg, cfg.activations, args.seeds)
        if matches(t, args.where, args.activation)
    ]
    if len(trials) < 2:
        parser.error(f"{len(trials)} trial(s) match; a stack needs at least 2")
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        study.run(trials, ctx)
        times.append(time.perf_counter() - start)
    print(
        f"{args.study}: {len(trials)} networks in one stack, one thread: "
        f"median {statistics.median(times):.2f} s over {args.repeats} runs "
        f"({', '.join(f'{t:.2f}' for t in times)})"
    )


if __name__ == "__main__":
    main()
