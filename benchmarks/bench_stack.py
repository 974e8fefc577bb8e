"""What stacking a seed's networks with torch.func buys `actlab bench`: the digits CNN of
examples/ trained with --stack and with --no-stack (one network after another), each as its
own fresh process as a user runs it (start-up and report included), alternating, in one
run, so the ratio is measured under the same conditions.

    python -m benchmarks.bench_stack [--seeds 8] [--steps 300] [--rounds 2]

Printed: each run's wall time, the load before it and the CPU other processes took, then
the median ratio no-stack / stack (above 1: the stack is faster).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from benchmarks.tutorial import actlab_command, run_timed

MODEL = "examples/digits_cnn.py:make_cnn"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="actlab-bench-stack-"))
    walls: dict[str, list[float]] = {"--stack": [], "--no-stack": []}
    base = [
        *actlab_command(),
        "bench",
        MODEL,
        "--activations",
        "ReLU,GELU",
        "--seeds",
        str(args.seeds),
        "--steps",
        str(args.steps),
        "--executor",
        "local",  # one process: what the stack changes, without a pool's share
    ]
    print(f"{MODEL}: ReLU and GELU x {args.seeds} seeds x {args.steps} steps", flush=True)
    for round_ in range(args.rounds):
        for flag in walls:
            out = root / f"{flag.strip('-')}-{round_}"
            timed = run_timed(
                f"bench {flag} (round {round_ + 1})", [*base, flag, "--out", str(out)]
            )
            walls[flag].append(timed.wall)
            shutil.rmtree(out, ignore_errors=True)
    ratio = statistics.median(walls["--no-stack"]) / statistics.median(walls["--stack"])
    print(f"\nno-stack / stack, median wall time: {ratio:.2f}x")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
