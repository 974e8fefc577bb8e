"""Speed: how fast each activation runs, measured, not claimed.

For each tensor size, every activation's forward and forward+backward pass is timed in
interleaved rounds (ReLU always included as the yardstick, so all activations share
the machine's state), after warm-up; a trial's numbers are medians over its rounds. Each
seed is an independent repetition; intervals are over seeds. Speeds are reported as
nanoseconds per element and relative to ReLU measured in the same batch.

Timing needs the machine to itself: the study is `exclusive`, so its batches run one at
a time in the main process after any parallel work.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from actlab.studies.base import (
    PropertySpec,
    ReportContext,
    RunContext,
    Section,
    Study,
    Trial,
    property_frame,
)

BASELINE = "ReLU"
# Sizes typical of small MLPs and of a transformer's MLP block (batch x tokens x hidden).
DEFAULT_SIZES = {"mlp": [256, 1024], "transformer-mlp": [8, 256, 3072]}


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sizes: dict[str, list[int]] = Field(default_factory=lambda: dict(DEFAULT_SIZES))
    rounds: int = Field(15, ge=3, le=10_000, description="timed rounds per trial (median)")
    warmup: int = Field(3, ge=0, le=1000)

    @field_validator("sizes")
    @classmethod
    def _sane(cls, sizes: dict[str, list[int]]) -> dict[str, list[int]]:
        if not sizes:
            raise ValueError("give at least one size")
        for name, shape in sizes.items():
            if not shape or any(d < 1 for d in shape) or math.prod(shape) > 2**28:
                raise ValueError(
                    f"size '{name}' must be positive dimensions with at most "
                    f"2^28 elements (got {shape})"
                )
        return sizes


def time_call(fn, device: str) -> float:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def timed_function(act, x):
    """What is timed: the function; for a learnable activation, its family with its
    parameters at their initial values as leaves that want gradients (per layer, or per
    unit along x's last dimension), so the backward includes theirs, as in training."""
    if act.learnable is None:
        return act.fn
    values = {
        spec.name: spec.initial(x.shape[-1], x.dtype).to(x.device).requires_grad_()
        for spec in act.learnable.params
    }
    return lambda z: act.learnable.apply(z, values)


class Speed(Study):
    name = "speed"
    learnable_activations = "timed"
    title = "Speed"
    Config = Config
    param_columns = ("size", "elements")
    exclusive = True

    def trials(self, config: Config, activations: list[str], seeds: int) -> list[Trial]:
        names = activations if BASELINE in activations else [*activations]
        return [
            Trial(self.name, act, seed, {"size": size, "elements": math.prod(shape)})
            for size, shape in config.sizes.items()
            for act in names
            for seed in range(seeds)
        ]

    def batch_key(self, trial: Trial) -> tuple:
        return (trial.params["size"], trial.seed)

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        import torch

        from actlab.activations import get_activation
        from actlab.engine import generator

        cfg: Config = ctx.config
        shape = cfg.sizes[trials[0].params["size"]]
        gen = generator(ctx.run_seed, "speed/input", trials[0].params["size"], trials[0].seed)
        x = torch.randn(*shape, generator=gen, dtype=ctx.torch_dtype).to(ctx.device)
        acts = {t.activation: timed_function(ctx.activations[t.activation], x) for t in trials}
        if BASELINE not in acts:  # the yardstick is always measured, even if not reported
            acts[BASELINE] = get_activation(BASELINE).fn
        grad_out = torch.ones_like(x)

        def forward(fn):
            with torch.no_grad():
                fn(x)

        def forward_backward(fn):
            leaf = x.detach().requires_grad_()
            fn(leaf).backward(grad_out)

        times: dict[str, dict[str, list[float]]] = {a: {"fwd": [], "fwdbwd": []} for a in acts}
        for r in range(cfg.warmup + cfg.rounds):
            for name, fn in acts.items():  # interleaved: every activation sees the same drift
                f = time_call(lambda fn=fn: forward(fn), ctx.device)
                fb = time_call(lambda fn=fn: forward_backward(fn), ctx.device)
                if r >= cfg.warmup:
                    times[name]["fwd"].append(f)
                    times[name]["fwdbwd"].append(fb)
        n = x.numel()
        med = {a: {k: statistics.median(v) for k, v in t.items()} for a, t in times.items()}
        rows = []
        for t in trials:
            m = med[t.activation]
            rows.append(
                [
                    {"metric": "ns_per_element_fwd", "value": 1e9 * m["fwd"] / n},
                    {"metric": "ns_per_element_fwdbwd", "value": 1e9 * m["fwdbwd"] / n},
                    {"metric": "elements_per_s_fwd", "value": n / m["fwd"]},
                    {"metric": "rel_relu_fwd", "value": m["fwd"] / med[BASELINE]["fwd"]},
                    {"metric": "rel_relu_fwdbwd", "value": m["fwdbwd"] / med[BASELINE]["fwdbwd"]},
                ]
            )
        return rows

    def summarize(self, results):
        return summarize(results)

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        table = summary["table"]
        figure = plot(table, rctx.activations, figure_dir / "speed.png")
        return Section(self.title, report_markdown(table, rctx, figure.name), [figure])

    property_specs = (
        PropertySpec(
            "speed",
            "forward + backward time relative to ReLU's in the same run, per tensor size",
            "lower",
            settings="sizes",
            situation="the cheapest computation",
        ),
    )

    def properties(self, summary, rctx: ReportContext):
        """Per seed and size: forward + backward time relative to ReLU."""
        rows = [
            {
                "property": "speed",
                "activation": r.activation,
                "seed": int(r.seed),
                "setting": f"size={r.size}",
                "score": float(r.value),
            }
            for r in summary["trials"].itertuples()
        ]
        return property_frame(rows)


def summarize(results):
    """`table`: per size x activation x metric, mean and 95% interval over seeds (log-space
    for the ratios, which are multiplicative); `trials`: each trial's forward + backward
    time relative to ReLU."""
    import numpy as np

    from actlab.stats import describe

    df = results[results["study"] == "speed"].copy()
    df["log"] = np.log(df["value"])
    table = describe(df, ["size", "activation", "metric"], value="log")
    for col in ("mean", "ci_low", "ci_high"):
        table[col] = np.exp(table[col])
    trials = df[df["metric"] == "rel_relu_fwdbwd"][["activation", "seed", "size", "value"]]
    return {"table": table, "trials": trials.reset_index(drop=True)}


def plot(table, activations: list[str], path: Path) -> Path:
    import numpy as np

    from actlab.render.figures import activation_colours, pyplot, save

    plt = pyplot()
    sizes = list(dict.fromkeys(table["size"]))
    colours = activation_colours(activations)
    fig, axes = plt.subplots(1, len(sizes), figsize=(6.5 * len(sizes), 4.2), squeeze=False)
    for ax, size in zip(axes.flat, sizes, strict=True):
        at = table[(table["size"] == size) & (table["metric"] == "rel_relu_fwdbwd")]
        at = at.set_index("activation")
        names = [a for a in activations if a in at.index]
        means = np.array([at.loc[a, "mean"] for a in names])
        low = np.array([at.loc[a, "ci_low"] for a in names])
        high = np.array([at.loc[a, "ci_high"] for a in names])
        has_ci = np.isfinite(low).all()
        ax.bar(
            range(len(names)),
            means,
            color=[colours[a] for a in names],
            yerr=np.vstack([means - low, high - means]) if has_ci else None,
            capsize=3,
        )
        ax.axhline(1.0, color="grey", ls="--", lw=1)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("forward + backward time / ReLU's")
        ax.set_title(f"{size}")
    fig.suptitle("Activation cost relative to ReLU, measured in the same run")
    return save(fig, path)


def report_markdown(table, rctx: ReportContext, figure_name: str) -> str:
    cfg: Config = rctx.config
    sizes = list(dict.fromkeys(table["size"]))
    lines = [
        "**Question.** How much does each activation cost to compute, forward and forward + "
        "backward, compared with ReLU?",
        "",
        f"**Method.** Tensors of sizes {', '.join(f'{k} {v}' for k, v in cfg.sizes.items())} "
        f"(float32), {cfg.warmup} warm-up and {cfg.rounds} timed rounds per seed, every "
        "activation timed in each round in turn so that all share the machine's state; a "
        "trial's value is the median over its rounds, and the interval is over "
        f"{rctx.seeds} seed(s). Times are ns per element; ratios are to ReLU in the same "
        "batch. Absolute times depend on the machine; the ratios travel better.",
        "",
        f"![Speed relative to ReLU](figures/{figure_name})",
        "",
    ]
    if rctx.seeds == 1:
        lines += ["*One seed: these numbers are single samples and carry no error bar.*", ""]
    for size in sizes:
        at = table[table["size"] == size]
        lines += [
            f"**{size}**:",
            "",
            "| activation | forward ns/element | forward + backward ns/element | "
            "forward / ReLU | forward + backward / ReLU |",
            "|---|---|---|---|---|",
        ]
        for act in rctx.activations:
            cells = []
            for metric in (
                "ns_per_element_fwd",
                "ns_per_element_fwdbwd",
                "rel_relu_fwd",
                "rel_relu_fwdbwd",
            ):
                r = at[(at["activation"] == act) & (at["metric"] == metric)]
                if r.empty:
                    cells.append("–")
                    continue
                r = r.iloc[0]
                text = f"{r['mean']:.3g}"
                if math.isfinite(r["ci_low"]):
                    text += f" [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"
                cells.append(text)
            lines.append(f"| {act} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["**What the data says.**", ""]
    lines += [f"- {f}" for f in findings(table, rctx.activations)]
    return "\n".join(lines)


def findings(table, activations: list[str]) -> list[str]:
    out = []
    for size in dict.fromkeys(table["size"]):
        at = table[(table["size"] == size) & (table["metric"] == "rel_relu_fwdbwd")]
        at = at[at["activation"].isin(activations)].set_index("activation")
        if at.empty:
            continue
        slowest = at["mean"].idxmax()
        fastest = at["mean"].idxmin()
        s = at.loc[slowest]
        out.append(
            f"{size}: forward + backward, by geometric mean over seeds (descriptive; the "
            f"tested ranking is the speed row of the best-and-worst table), {slowest} is the "
            f"slowest at {s['mean']:.2g}x ReLU's time and {fastest} the fastest "
            f"({at.loc[fastest, 'mean']:.2g}x)."
        )
        same = [
            a
            for a, r in at.iterrows()
            if math.isfinite(r["ci_low"]) and r["ci_low"] <= 1.0 <= r["ci_high"] and a != BASELINE
        ]
        if same:
            out.append(
                f"{size}: indistinguishable from ReLU within the 95% interval: {', '.join(same)}."
            )
    return out


STUDY = Speed()
