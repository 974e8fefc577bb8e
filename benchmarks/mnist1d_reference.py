"""The repository's MNIST-1D models trained one at a time (reference.py), against the paper.

    python -m benchmarks.mnist1d_reference [--seeds 3] [--steps 6000] [--models mlp,cnn]
                                           [--activation ReLU]

Each model is trained with the repository's protocol (Adam, lr 1e-2, batches of 100 in
order, cross-entropy) on the paper's data (the package's defaults, seed 42), once per seed
(torch's generator seeded with the seed), on one thread. Printed per model: final test
accuracy, mean over seeds with a t-based 95% interval, the paper's figure beside it, and
the seconds per network. These are the oracle numbers the stacked architectures of the
mnist1d study must reproduce.
"""

from __future__ import annotations

import argparse
import time

import torch

PAPER = {"mlp": 0.68, "cnn": 0.94}  # Greydanus & Kobak 2020, table of test accuracies
MODELS = {"mlp": "Mnist1dMLP", "cnn": "Mnist1dCNN", "transformer": "Mnist1dTransformer"}


def main(argv: list[str] | None = None) -> None:
    from actlab import reference
    from actlab.activations import get_activation
    from actlab.data import mnist1d_dataset
    from actlab.stats import summarize

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--activation", default="ReLU")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    act = get_activation(args.activation)
    data = mnist1d_dataset()
    for name in args.models.split(","):
        accuracies, seconds = [], []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            model = getattr(reference, MODELS[name])(act.fn)
            start = time.perf_counter()
            result = reference.classify(model, data, args.steps)
            seconds.append(time.perf_counter() - start)
            accuracies.append(result["test_accuracy"][-1])
        s = summarize(accuracies)
        paper = f"; paper {PAPER[name]:.0%}" if name in PAPER else ""
        print(
            f"{name:<12} {act.name}: test accuracy {s.mean:.3f} "
            f"[{s.ci_low:.3f}, {s.ci_high:.3f}] over {s.n} seeds "
            f"({', '.join(f'{a:.3f}' for a in accuracies)}){paper}; "
            f"{sum(seconds) / len(seconds):.1f} s per network, {args.steps} steps, one thread",
            flush=True,
        )


if __name__ == "__main__":
    main()
