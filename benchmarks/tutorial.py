"""The tutorial protocol through the engine and through the plain reference loop, in one run.

    python -m benchmarks.tutorial [--seeds 1] [--repeats 1] [--studies a,b]

The reference (`actlab.reference`: one nn.Sequential at a time, torch.optim, torch's
default threads) stands in for the original single-file script. Both compute the same
protocol from the same initial weights and data. Engine and reference runs are
interleaved (E R E R ...) so machine noise hits both; medians are reported. Printed:
wall time of each, their ratio, the matmul GFLOP/s each achieved, the machine's peak
sgemm GFLOP/s measured in this run, achieved/peak, and peak memory (resident set of the
whole process tree, sampled, shared pages counted once).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch


# -- memory: the resident set of this process and all its children, sampled -----------------
def tree_pss_bytes(root: int) -> int:
    """Proportional set size of `root` and its descendants: shared pages (worker processes
    forked from one server share torch's) are counted once, split between sharers."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
        stack += children.get(pid, [])
    return total


class PeakMemory:
    """Samples the tree's PSS twice a second (reading smaps is not free: sampling much
    faster measurably slowed the runs being measured)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.peak = 0
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_pss_bytes(os.getpid()))
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_pss_bytes(os.getpid()))


# -- work: matmul FLOPs of the protocol ----------------------------------------------------
def mlp_flops(sizes: list[tuple[int, int]], samples: int, passes: int) -> float:
    """passes = 1 for a forward pass, 3 for forward + backward (two matmuls per layer)."""
    return 2.0 * samples * sum(i * o for i, o in sizes) * passes


def protocol_flops(config, seeds: int) -> float:
    from actlab.engine import layer_sizes

    total = 0.0
    acts = len(config.activations)
    for name in config.studies:
        c = config.study(name)
        if name == "gradient_flow":
            total += sum(
                mlp_flops(layer_sizes(c.in_dim, c.width, d), c.n_samples, 3) for d in c.depths
            )
        elif name == "sparsity":
            sizes = layer_sizes(c.in_dim, c.width, c.depth)
            total += mlp_flops(sizes, c.n_samples, 3) * c.steps + mlp_flops(sizes, c.n_samples, 2)
        elif name == "stability":
            total += (
                len(c.lrs)
                * mlp_flops(layer_sizes(1, c.width, c.lr_depth), c.n_points, 3)
                * c.lr_steps
            )
            total += sum(
                mlp_flops(layer_sizes(1, c.width, d), c.n_points, 3) * c.depth_steps
                for d in c.depths
            )
        elif name == "capacity":
            sizes = layer_sizes(1, c.width, c.depth)
            total += len(c.targets) * (
                mlp_flops(sizes, c.n_train, 3) * c.steps
                + mlp_flops(sizes, c.n_test + 2 * c.n_extrap, 1)
            )
    return total * acts * seeds


def peak_sgemm_gflops(threads: int, n: int = 1024, repeats: int = 20) -> float:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, (time.perf_counter() - start) / repeats)
    torch.set_num_threads(before)
    return 2 * n**3 / best / 1e9


# -- the two implementations -------------------------------------------------------------------
def run_engine(config, out_root: Path) -> None:
    from actlab.runner import execute

    execute(config, out=out_root / f"engine-{time.monotonic_ns()}", report=False)


def run_reference(config, seeds: int) -> None:
    """The protocol one network at a time, from the same weights and data as the engine."""
    from actlab import reference
    from actlab.activations import get_activation
    from actlab.engine import DivergenceRule, generator, layer_sizes
    from actlab.studies import capacity, sparsity, stability
    from actlab.studies.base import RunContext, initial_params

    acts = {n: get_activation(n) for n in config.activations}
    for name in config.studies:
        c = config.study(name)
        ctx = RunContext(run_seed=config.seed, config=c, activations=acts)
        for seed in range(seeds):
            for act in acts.values():
                if name == "gradient_flow":
                    for depth in c.depths:
                        sizes = layer_sizes(c.in_dim, c.width, depth)
                        x = torch.randn(
                            c.n_samples,
                            c.in_dim,
                            generator=generator(
                                config.seed, "gradient_flow/input", c.n_samples, c.in_dim, seed
                            ),
                        )
                        reference.gradient_flow(initial_params(ctx, sizes, c.init, seed), act.fn, x)
                elif name == "sparsity":
                    sizes = layer_sizes(c.in_dim, c.width, c.depth)
                    x, y = sparsity.make_data(ctx, c, c.in_dim, seed)
                    _, net = reference.train(
                        initial_params(ctx, sizes, "xavier_uniform", seed),
                        act.fn,
                        x,
                        y,
                        c.optimizer,
                        c.lr,
                        c.steps,
                    )
                    with torch.no_grad():
                        h = x
                        for layer in net:  # the protocol's post-training forward pass
                            h = layer(h)
                elif name == "stability":
                    x, y = stability.sine_data(c.n_points)
                    sizes = layer_sizes(1, c.width, c.lr_depth)
                    for lr in c.lrs:
                        reference.train(
                            initial_params(ctx, sizes, "xavier_uniform", seed),
                            act.fn,
                            x,
                            y,
                            c.lr_optimizer,
                            lr,
                            c.lr_steps,
                            DivergenceRule(grad_limit=c.grad_limit),
                        )
                    for depth in c.depths:
                        sizes = layer_sizes(1, c.width, depth)
                        reference.train(
                            initial_params(ctx, sizes, "xavier_uniform", seed),
                            act.fn,
                            x,
                            y,
                            c.depth_optimizer,
                            c.depth_lr,
                            c.depth_steps,
                        )
                elif name == "capacity":
                    sizes = layer_sizes(1, c.width, c.depth)
                    xs = {
                        k: f(c)
                        for k, f in (
                            ("train", capacity.grid_train),
                            ("test", capacity.grid_test),
                            ("extrap", capacity.grid_extrap),
                        )
                    }
                    for target in c.targets:
                        fn = capacity.target_fn(target)
                        _, net = reference.train(
                            initial_params(ctx, sizes, "xavier_uniform", seed),
                            act.fn,
                            xs["train"],
                            fn(xs["train"]),
                            c.optimizer,
                            c.lr,
                            c.steps,
                        )
                        with torch.no_grad():
                            net(xs["test"]), net(xs["extrap"])


def timed(fn, *args) -> tuple[float, int]:
    with PeakMemory() as memory:
        start = time.perf_counter()
        fn(*args)
        elapsed = time.perf_counter() - start
    return elapsed, memory.peak


def main(argv: list[str] | None = None) -> None:
    from actlab.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="interleaved pairs to run")
    parser.add_argument("--studies", default=None, help="comma-separated subset")
    parser.add_argument(
        "--reference-seeds",
        type=int,
        default=1,
        help="seeds for the reference (the targets compare with its 1 seed)",
    )
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args(argv)

    overrides = {"seeds": args.seeds}
    if args.studies:
        overrides["studies"] = args.studies.split(",")
    engine_cfg = load_config("tutorial", overrides=overrides)
    ref_cfg = load_config("tutorial", overrides={**overrides, "seeds": args.reference_seeds})
    threads = torch.get_num_threads()
    peak = peak_sgemm_gflops(threads)
    peak_one = peak_sgemm_gflops(1)
    engine_times, ref_times, engine_mem, ref_mem = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            t, mem = timed(run_engine, engine_cfg, Path(tmp))
            engine_times.append(t)
            engine_mem.append(mem)
            if not args.no_reference:
                t, mem = timed(run_reference, ref_cfg, args.reference_seeds)
                ref_times.append(t)
                ref_mem.append(mem)
    e = statistics.median(engine_times)
    e_flops = protocol_flops(engine_cfg, args.seeds)
    print(
        f"protocol: {', '.join(engine_cfg.studies)}; engine {args.seeds} seed(s), "
        f"reference {args.reference_seeds} seed(s); {args.repeats} interleaved repeat(s)"
    )
    print(
        f"peak sgemm (1024^3, this run): {peak:.1f} GFLOP/s on {threads} threads, "
        f"{peak_one:.1f} on 1 thread"
    )
    print(
        f"engine    : {e:8.2f} s  {e_flops / e / 1e9:6.1f} GFLOP/s  "
        f"({e_flops / e / 1e9 / peak:.2f} of peak)  peak memory {max(engine_mem) / 2**20:.0f} MiB"
    )
    if ref_times:
        r = statistics.median(ref_times)
        r_flops = protocol_flops(ref_cfg, args.reference_seeds)
        print(
            f"reference : {r:8.2f} s  {r_flops / r / 1e9:6.1f} GFLOP/s  "
            f"({r_flops / r / 1e9 / peak:.2f} of peak)  peak memory "
            f"{max(ref_mem) / 2**20:.0f} MiB"
        )
        print(f"ratio engine/reference wall time: {e / r:.3f}")


if __name__ == "__main__":
    main()
