"""The baseline: the tutorial protocol one network at a time, the way the original script runs.

    python -m benchmarks.baseline [--seeds 1] [--studies a,b]

A stand-in for the original single-file script, driven through `actlab.reference`: one
nn.Sequential at a time, torch.optim, torch's default threads, the loss read once per
step and judged in Python. It computes what the original computes and nothing more (no
loss after the last update, no extrapolation set, no stored results, no figures), so it
is a faithful stand-in for the original's experiments and not a softer one. It starts
from the same initial weights and data as actlab's own run of the protocol, so both sides
train the same networks along the same trajectories (the same runs diverge early, the
same deep networks reach subnormal gradients).

The harness (`python -m benchmarks.tutorial`) runs this file as its own fresh process and
times the whole process, start-up included, as a user of the original would wait for it.
"""

from __future__ import annotations

import argparse
import time

import torch


def hidden_metrics(model: torch.nn.Sequential, x: torch.Tensor) -> list[tuple[float, float]]:
    """Experiment 2's measurement after training: per hidden layer, the fraction of
    post-activation values below 1e-6 in magnitude and the fraction of dead units."""
    from actlab.reference import Act

    out = []
    with torch.no_grad():
        h = x
        for layer in model:
            h = layer(h)
            if isinstance(layer, Act):
                small = h.abs() < 1e-6
                out.append((small.float().mean().item(), small.all(dim=0).float().mean().item()))
    return out


def run(config, seeds: int) -> None:
    from actlab import reference
    from actlab.activations import get_activation
    from actlab.data import sine_data
    from actlab.engine import DivergenceRule, generator, layer_sizes
    from actlab.studies import capacity, sparsity
    from actlab.studies.base import RunContext, initial_params

    acts = {n: get_activation(n).fn for n in config.activations}

    def network(ctx, sizes, init, seed, fn):
        return reference.build_mlp(initial_params(ctx, sizes, init, seed), fn)

    for name in config.studies:
        c = config.study(name)
        ctx = RunContext(run_seed=config.seed, config=c, activations={})
        for seed in range(seeds):
            for fn in acts.values():
                if name == "gradient_flow":
                    for depth in c.depths:
                        gen = generator(
                            config.seed, "gradient_flow/input", c.n_samples, c.in_dim, seed
                        )
                        x = torch.randn(c.n_samples, c.in_dim, generator=gen)
                        model = network(
                            ctx, layer_sizes(c.in_dim, c.width, depth), c.init, seed, fn
                        )
                        model(x).mean().backward()
                        [
                            layer.weight.grad.abs().mean().item()
                            for layer in reference.linears(model)
                        ]
                elif name == "sparsity":
                    x, y = sparsity.make_data(ctx, c, c.in_dim, seed)
                    sizes = layer_sizes(c.in_dim, c.width, c.depth)
                    model = network(ctx, sizes, "xavier_uniform", seed, fn)
                    opt = reference.make_optimizer(model, c.optimizer, c.lr)
                    reference.fit(model, opt, x, y, c.steps)
                    hidden_metrics(model, x)
                elif name == "stability":
                    x, y = sine_data(c.n_points)
                    for lr in c.lrs:
                        sizes = layer_sizes(1, c.width, c.lr_depth)
                        model = network(ctx, sizes, "xavier_uniform", seed, fn)
                        opt = reference.make_optimizer(model, c.lr_optimizer, lr)
                        reference.fit(
                            model, opt, x, y, c.lr_steps, DivergenceRule(grad_limit=c.grad_limit)
                        )
                    for depth in c.depths:
                        model = network(
                            ctx, layer_sizes(1, c.width, depth), "xavier_uniform", seed, fn
                        )
                        opt = reference.make_optimizer(model, c.depth_optimizer, c.depth_lr)
                        reference.fit(model, opt, x, y, c.depth_steps)
                elif name == "capacity":
                    x, x_test = capacity.grid_train(c), capacity.grid_test(c)
                    for target in c.targets:
                        f = capacity.target_fn(target)
                        sizes = layer_sizes(1, c.width, c.depth)
                        model = network(ctx, sizes, "xavier_uniform", seed, fn)
                        opt = reference.make_optimizer(model, c.optimizer, c.lr)
                        reference.fit(model, opt, x, f(x), c.steps)
                        with torch.no_grad():
                            torch.nn.functional.mse_loss(model(x_test), f(x_test)).item()


def main(argv: list[str] | None = None) -> None:
    from actlab.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--studies", default=None, help="comma-separated subset")
    args = parser.parse_args(argv)
    overrides = {"seeds": args.seeds}
    if args.studies:
        overrides["studies"] = args.studies.split(",")
    start = time.perf_counter()
    run(load_config("tutorial", overrides=overrides), args.seeds)
    print(
        f"baseline compute: {time.perf_counter() - start:.2f} s on {torch.get_num_threads()} threads"
    )


if __name__ == "__main__":
    main()
