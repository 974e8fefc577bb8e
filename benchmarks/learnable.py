"""The cost of learning an activation's parameters: a stack of networks with a learnable
activation against the same stack with its frozen twin (the same function at the start),
each side its own fresh process, interleaved, start-up and data generation included.

    python -m benchmarks.learnable [--arch mlp] [--members 16] [--steps 1000] [--repeats 3]

Pairs: PReLU (slope learned per layer) against max(x, 0.25*x); Swish-beta against Swish;
Spline (9 knots per unit) against ReLU. Each side trains `members` MNIST-1D networks of
`arch` as one stack in fast mode (engine.classify.train_classifier: Adam, lr 1e-2, batches
of 100), torch on one thread, as actlab's worker processes do. Printed: each run's wall
time with the load before it, then per pair the medians and the overhead learned / frozen.
"""

from __future__ import annotations

import argparse
import sys

PAIRS = [
    ("PReLU", "max(x, 0.25*x)"),
    ("Swish-beta", "Swish"),
    ("Spline", "ReLU"),
]


def side(spec: str, arch: str, members: int, steps: int) -> None:
    import torch

    from actlab.activations import get_activation
    from actlab.data import mnist1d_dataset
    from actlab.engine.architectures import get_architecture
    from actlab.engine.classify import train_classifier
    from actlab.studies.base import applied

    torch.set_num_threads(1)
    data = mnist1d_dataset()
    cls = get_architecture(arch)
    act = applied(get_activation(spec))
    params = [cls.initial({}, m, activation=act) for m in range(members)]
    train_classifier(cls({}, params, [act] * members), data, steps)


def main(argv: list[str] | None = None) -> None:
    from benchmarks.tutorial import median, run_timed

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        side(args.side, args.arch, args.members, args.steps)
        return
    print(
        f"MNIST-1D {args.arch}: {args.members} networks x {args.steps} steps per side, one "
        f"thread, {args.repeats} rounds of fresh processes",
        flush=True,
    )
    walls: dict[str, list[float]] = {spec: [] for pair in PAIRS for spec in pair}
    for _ in range(args.repeats):
        for pair in PAIRS:
            for spec in pair:
                command = [
                    sys.executable, "-m", "benchmarks.learnable", "--side", spec,
                    "--arch", args.arch, "--members", str(args.members),
                    "--steps", str(args.steps),
                ]  # fmt: skip
                walls[spec].append(run_timed(spec, command).wall)
    for learned, frozen in PAIRS:
        a, b = median(walls[learned]), median(walls[frozen])
        print(f"{learned} {a:.2f} s against {frozen} {b:.2f} s: learned / frozen = {a / b:.2f}x")


if __name__ == "__main__":
    main()
