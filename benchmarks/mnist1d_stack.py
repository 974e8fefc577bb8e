"""The stacked engine against the plain one-network loop on MNIST-1D, each side its own
fresh process, interleaved, start-up and data generation included.

    python -m benchmarks.mnist1d_stack [--arch cnn] [--members 24] [--steps 1000]
                                       [--repeats 3]

plain:   the members one after another, each an nn.Module trained by reference.classify
         (the repository's loop: Adam, lr 1e-2, batches of 100, test accuracy every 250
         steps)
stacked: the same members (the same initial weights, the tutorial's eight activations
         over seeds) as one stack through engine.classify.train_classifier, fast mode
Both run torch on one thread, as actlab's worker processes do. Printed: each run's wall
time, the load before it and the CPU other processes took, then the medians and the
speed-up plain / stacked.
"""

from __future__ import annotations

import argparse
import sys

ACTIVATIONS = ["Linear", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "ELU", "GELU", "Swish"]


def side(which: str, arch: str, members: int, steps: int) -> None:
    import torch

    from actlab import reference
    from actlab.activations import get_activation
    from actlab.data import mnist1d_dataset
    from actlab.engine.architectures import get_architecture
    from actlab.engine.classify import train_classifier

    torch.set_num_threads(1)
    data = mnist1d_dataset()
    cls = get_architecture(arch)
    names = [ACTIVATIONS[m % len(ACTIVATIONS)] for m in range(members)]
    acts = [get_activation(n).fn for n in names]
    params = [cls.initial({}, m // len(ACTIVATIONS)) for m in range(members)]
    if which == "stacked":
        train_classifier(cls({}, params, acts), data, steps)
        return
    for act, p in zip(acts, params, strict=True):
        module = cls.reference(act)
        module.load_state_dict(p)
        reference.classify(module, data, steps)


def main(argv: list[str] | None = None) -> None:
    from benchmarks.tutorial import median, run_timed

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="cnn")
    parser.add_argument("--members", type=int, default=24)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--side", choices=("plain", "stacked"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        side(args.side, args.arch, args.members, args.steps)
        return
    print(
        f"MNIST-1D {args.arch}: {args.members} networks x {args.steps} steps, one thread, "
        f"{args.repeats} rounds of fresh processes",
        flush=True,
    )
    walls: dict[str, list[float]] = {"plain": [], "stacked": []}
    for _ in range(args.repeats):
        for which in ("plain", "stacked"):
            command = [
                sys.executable, "-m", "benchmarks.mnist1d_stack", "--side", which,
                "--arch", args.arch, "--members", str(args.members), "--steps", str(args.steps),
            ]  # fmt: skip
            walls[which].append(run_timed(which, command).wall)
    plain, stacked = median(walls["plain"]), median(walls["stacked"])
    print(
        f"median wall: plain {plain:.2f} s, stacked {stacked:.2f} s; "
        f"speed-up plain / stacked = {plain / stacked:.2f}x"
    )


if __name__ == "__main__":
    main()
