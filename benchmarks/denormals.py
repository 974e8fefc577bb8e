"""Does flushing subnormal floats to zero speed up the deep stress runs on this machine?

    python -m benchmarks.denormals [--depth 100] [--steps 40] [--repeats 2]

Per activation, the stability study's depth-stress networks (2 seeds in one stack, one
thread) are timed with `torch.set_flush_denormal` off and on, interleaved; printed are the
median times and their ratio (on/off). Deep networks whose signals shrink toward zero are
where subnormal arithmetic would show, if this CPU is slow at it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main(argv: list[str] | None = None) -> None:
    from actlab.activations import get_activation
    from actlab.config import load_config
    from actlab.studies import get_study
    from actlab.studies.base import RunContext

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    cfg = load_config("tutorial", overrides={"studies": ["stability"]})
    study = get_study("stability")
    scfg = cfg.study("stability").model_copy(
        update={"depths": [args.depth], "depth_steps": args.steps, "parts": ["depth"]}
    )
    table = {n: get_activation(n) for n in cfg.activations}
    ctx = RunContext(run_seed=cfg.seed, config=scfg, activations=table)
    print(f"depth {args.depth}, {args.steps} Adam steps, 2 networks per stack, 1 thread")
    for name in cfg.activations:
        trials = [t for t in study.trials(scfg, cfg.activations, 2) if t.activation == name]
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for flush in (False, True):
                torch.set_flush_denormal(flush)
                start = time.perf_counter()
                study.run(trials, ctx)
                times[flush].append(time.perf_counter() - start)
        torch.set_flush_denormal(False)
        off, on = statistics.median(times[False]), statistics.median(times[True])
        print(f"{name:10s} off {off:6.2f} s   on {on:6.2f} s   on/off {on / off:5.2f}")


if __name__ == "__main__":
    main()
