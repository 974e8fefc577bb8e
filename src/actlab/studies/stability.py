"""Protocol experiment 3: stability under stress.

3a (part "lr"): SGD at rising learning rates, depth 10, both divergence rules (loss, then
    largest gradient entry > 1e6 before the update).
3b (part "depth"): Adam at lr 0.01 with rising depth, the loss rule only.

Data: 200 evenly spaced x on [-2, 2], y = sin(pi x). The protocol's rules are kept so the
numbers compare with the tutorial's, and three things it got wrong are fixed:
- the loss after the final update is recorded (`loss_after_training`), not only the last
  loss recorded before it (`final_loss`, the protocol's meaning);
- every trial is classified learned / stuck / diverged: "stuck" means the final loss is
  not clearly below the variance of the target, which a constant output already reaches;
- no cap: a diverged trial is drawn as diverged, never as "loss 10".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from actlab.studies.base import ReportContext, RunContext, Section, Study, Trial, build_stack

STATES = ("learned", "stuck", "diverged")


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parts: list[Literal["lr", "depth"]] = Field(["lr", "depth"], min_length=1)
    # 3a: learning-rate stress
    lrs: list[float] = Field([0.001, 0.01, 0.1, 0.5, 1.0], min_length=1)
    lr_depth: int = Field(10, ge=1, le=1000)
    lr_optimizer: Literal["sgd", "adam"] = "sgd"
    lr_steps: int = Field(100, ge=1, le=100_000)
    grad_limit: float = Field(1e6, gt=0, description="3a: largest |gradient| that stops a run")
    # 3b: depth stress
    depths: list[int] = Field([5, 10, 20, 50, 100], min_length=1)
    depth_lr: float = Field(0.01, gt=0)
    depth_optimizer: Literal["sgd", "adam"] = "adam"
    depth_steps: int = Field(200, ge=1, le=100_000)
    # shared
    width: int = Field(64, ge=1, le=8192)
    n_points: int = Field(200, ge=2, le=1_000_000)
    loss_limit: float = Field(1e6, gt=0, description="loss that stops a run (both parts)")
    learned_below: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="learned: final loss below this fraction of the "
        "target's variance (a constant output scores 1)",
    )

    @field_validator("lrs")
    @classmethod
    def _positive_lrs(cls, lrs: list[float]) -> list[float]:
        bad = [lr for lr in lrs if not lr > 0]
        if bad:
            raise ValueError(f"learning rates must be positive (got {bad[0]})")
        return lrs

    @field_validator("depths")
    @classmethod
    def _sane_depths(cls, depths: list[int]) -> list[int]:
        bad = [d for d in depths if not 1 <= d <= 1000]
        if bad:
            raise ValueError(f"depths must be between 1 and 1000 (got {bad[0]})")
        return depths


def classify(
    diverged: bool, loss_after: float, target_variance: float, learned_below: float
) -> str:
    """learned / stuck / diverged for one trial."""
    if diverged:
        return "diverged"
    if math.isfinite(loss_after) and loss_after < learned_below * target_variance:
        return "learned"
    return "stuck"


def sine_data(n_points: int):
    import torch

    x = torch.linspace(-2, 2, n_points)[:, None]
    return x, torch.sin(math.pi * x)


class Stability(Study):
    name = "stability"
    title = "Stability under stress"
    Config = Config
    param_columns = ("part", "depth", "width", "lr", "optimizer", "steps")

    def trials(self, config: Config, activations: list[str], seeds: int) -> list[Trial]:
        out = []
        if "lr" in config.parts:
            out += [
                Trial(
                    self.name,
                    act,
                    seed,
                    {
                        "part": "lr",
                        "depth": config.lr_depth,
                        "width": config.width,
                        "lr": lr,
                        "optimizer": config.lr_optimizer,
                        "steps": config.lr_steps,
                    },
                )
                for lr in config.lrs
                for act in activations
                for seed in range(seeds)
            ]
        if "depth" in config.parts:
            out += [
                Trial(
                    self.name,
                    act,
                    seed,
                    {
                        "part": "depth",
                        "depth": depth,
                        "width": config.width,
                        "lr": config.depth_lr,
                        "optimizer": config.depth_optimizer,
                        "steps": config.depth_steps,
                    },
                )
                for depth in config.depths
                for act in activations
                for seed in range(seeds)
            ]
        return out

    def batch_key(self, trial: Trial) -> tuple:
        # The learning rate is per member, so trials differing only in lr share a stack.
        return tuple(v for k, v in trial.params.items() if k != "lr")

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        from actlab.engine import DivergenceRule, layer_sizes, make_optimizer, train

        cfg: Config = ctx.config
        p = trials[0].params
        x, y = (t.to(ctx.device, ctx.torch_dtype) for t in sine_data(cfg.n_points))
        model = build_stack(trials, ctx, layer_sizes(1, p["width"], p["depth"]))
        optimizer = make_optimizer(p["optimizer"], model, [t.params["lr"] for t in trials])
        grad_limit = cfg.grad_limit if p["part"] == "lr" else None
        rule = DivergenceRule(loss_limit=cfg.loss_limit, grad_limit=grad_limit)
        result = train(model, x, y, optimizer, p["steps"], rule)
        variance = float(y.double().var(unbiased=False))
        return [trial_rows(result, m, variance, cfg.learned_below) for m in range(len(trials))]

    def summarize(self, results):
        return summarize(results)

    def report(self, results, figure_dir: Path, rctx: ReportContext) -> Section:
        summary = summarize(results)
        figure = plot(summary, rctx.activations, figure_dir / "stability.png")
        return Section(self.title, report_markdown(summary, rctx, figure.name), [figure])

    def properties(self, results, rctx: ReportContext):
        """Per seed: how many of the learning rates / depths the activation learned at."""
        import pandas as pd

        df = results[(results["study"] == self.name) & (results["metric"] == "learned")]
        rows = []
        for part, prop in (("lr", "learning-rate robustness"), ("depth", "depth robustness")):
            sub = df[df["part"] == part]
            for (act, seed), g in sub.groupby(["activation", "seed"], sort=False):
                rows.append(
                    {
                        "property": prop,
                        "activation": act,
                        "seed": seed,
                        "score": float(g["value"].sum()),
                        "better": "higher",
                    }
                )
        return pd.DataFrame(rows, columns=["property", "activation", "seed", "score", "better"])


def trial_rows(result, m: int, variance: float, learned_below: float) -> list[dict[str, Any]]:
    diverged = bool(result.diverged[m])
    loss_after = float(result.loss_after[m])
    state = classify(diverged, loss_after, variance, learned_below)
    rows = [
        {"metric": "diverged", "value": float(diverged)},
        {"metric": "final_loss", "value": float(result.last_recorded_loss[m])},
        {"metric": "loss_after_training", "value": loss_after},
        {"metric": "steps_completed", "value": float(result.steps_completed[m])},
        {"metric": "target_variance", "value": variance},
    ]
    rows += [{"metric": s, "value": float(state == s)} for s in ("learned", "stuck")]
    rows += [
        {"metric": "loss", "step": t + 1, "value": float(v)}
        for t, v in enumerate(result.losses[m])
        if not math.isnan(v)
    ]
    return rows


def summarize(results) -> dict[str, Any]:
    """Per part x setting x activation: state counts and the geometric mean (with 95%
    interval) of the loss after training over the seeds that did not diverge."""
    import numpy as np
    import pandas as pd

    from actlab.stats import summarize as stat

    df = results[results["study"] == "stability"]
    wide = df[
        df["metric"].isin(
            ["diverged", "learned", "stuck", "loss_after_training", "final_loss", "target_variance"]
        )
    ].pivot_table(
        index=["part", "activation", "depth", "lr", "seed"], columns="metric", values="value"
    )
    rows = []
    for (part, act, depth, lr), g in wide.groupby(level=[0, 1, 2, 3], sort=False):
        alive = g[g["diverged"] == 0]["loss_after_training"]
        s = stat(np.log10(alive[alive > 0]))
        rows.append(
            {
                "part": part,
                "activation": act,
                "depth": int(depth),
                "lr": float(lr),
                "seeds": len(g),
                "learned": int(g["learned"].sum()),
                "stuck": int(g["stuck"].sum()),
                "diverged": int(g["diverged"].sum()),
                "loss": 10**s.mean if s.n else math.nan,
                "loss_low": 10**s.ci_low if s.n > 1 else math.nan,
                "loss_high": 10**s.ci_high if s.n > 1 else math.nan,
                "variance": float(g["target_variance"].mean()),
            }
        )
    table = pd.DataFrame(rows)
    return {
        "lr": table[table["part"] == "lr"].reset_index(drop=True),
        "depth": table[table["part"] == "depth"].reset_index(drop=True),
    }


def majority_state(row) -> str:
    counts = {s: row[s] for s in STATES}
    return max(STATES, key=lambda s: (counts[s], -STATES.index(s)))


def plot(summary: dict[str, Any], activations: list[str], path: Path) -> Path:
    """Left: loss after training per learning rate (grouped bars); right: against depth.
    Learned = solid, stuck = hatched / open marker, diverged = red cross with its count."""
    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import NullFormatter

    from actlab.report.figures import activation_colours, pyplot, save

    plt = pyplot()
    colours = activation_colours(activations)
    parts = [p for p in ("lr", "depth") if not summary[p].empty]
    fig, axes = plt.subplots(1, len(parts), figsize=(7.5 * len(parts), 4.8), squeeze=False)
    for ax, part in zip(axes.flat, parts, strict=True):
        table = summary[part]
        variance = float(table["variance"].mean())
        ax.axhline(variance, color="grey", ls="--", lw=1)
        ax.set_yscale("log")
        if part == "lr":
            lrs = sorted(table["lr"].unique())
            width = 0.8 / max(len(activations), 1)
            top = np.nanmax(table["loss"].to_numpy()) if table["loss"].notna().any() else 1.0
            for i, act in enumerate(activations):
                rows = table[table["activation"] == act].set_index("lr")
                for j, lr in enumerate(lrs):
                    if lr not in rows.index:
                        continue
                    r = rows.loc[lr]
                    xpos = j - 0.4 + width * (i + 0.5)
                    if r["diverged"] == r["seeds"]:
                        ax.plot(xpos, max(top, variance) * 3, marker="x", color="red", ms=7)
                        continue
                    hatch = "//" if majority_state(r) == "stuck" else None
                    ax.bar(
                        xpos,
                        r["loss"],
                        width,
                        color=colours[act],
                        hatch=hatch,
                        edgecolor="black" if hatch else colours[act],
                        linewidth=0.5,
                    )
                    if r["diverged"]:
                        ax.annotate(
                            f"{r['diverged']}/{r['seeds']} div.",
                            (xpos, r["loss"]),
                            fontsize=6,
                            rotation=90,
                            ha="center",
                            va="bottom",
                            color="red",
                        )
            ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
            ax.set_xlabel("learning rate (SGD)")
            ax.set_title("3a: learning-rate stress")
        else:
            for act in activations:
                rows = table[table["activation"] == act].sort_values("depth")
                if rows.empty:
                    continue
                ax.plot(rows["depth"], rows["loss"], color=colours[act], lw=1.2, label=act)
                for _, r in rows.iterrows():
                    state = majority_state(r)
                    if state == "diverged":
                        ax.plot(r["depth"], variance * 30, marker="x", color="red", ms=7)
                    else:
                        ax.plot(
                            r["depth"],
                            r["loss"],
                            marker="o",
                            ms=6,
                            color=colours[act],
                            markerfacecolor=colours[act] if state == "learned" else "white",
                        )
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            depths = sorted(table["depth"].unique())
            ax.set_xticks(depths, [str(d) for d in depths])
            ax.set_xlabel("depth (Adam)")
            ax.set_title("3b: depth stress")
        ax.set_ylabel("loss after training (geometric mean over seeds)")
        ax.grid(True, which="major", alpha=0.3)
    handles = [Patch(color=colours[a], label=a) for a in activations] + [
        Line2D([], [], color="grey", ls="--", label="target variance (constant output)"),
        Patch(facecolor="white", edgecolor="black", hatch="//", label="stuck (bar)"),
        Line2D(
            [],
            [],
            marker="o",
            color="black",
            markerfacecolor="black",
            ls="",
            label="learned (marker)",
        ),
        Line2D(
            [],
            [],
            marker="o",
            color="black",
            markerfacecolor="white",
            ls="",
            label="stuck (marker)",
        ),
        Line2D([], [], marker="x", color="red", ls="", label="diverged in every seed"),
    ]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(7, len(handles)),
        fontsize=8,
        bbox_to_anchor=(0.5, -0.12),
    )
    fig.suptitle("Loss after training under stress: learned, stuck and diverged kept apart")
    return save(fig, path)


def fmt(v: float) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def cell(r) -> str:
    """One table cell: the state counts, then the loss of the runs that did not diverge."""
    states = ", ".join(f"{r[s]} {s}" for s in STATES if r[s])
    loss = "" if math.isnan(r["loss"]) else f"; loss {fmt(r['loss'])}"
    if not math.isnan(r["loss_low"]):
        loss += f" [{fmt(r['loss_low'])}, {fmt(r['loss_high'])}]"
    return states + loss


def report_markdown(summary: dict[str, Any], rctx: ReportContext, figure_name: str) -> str:
    cfg: Config = rctx.config
    lines = [
        "**Question.** Does training stay stable when the learning rate is too high, or the "
        "network too deep, and does a run that stays finite actually learn?",
        "",
        f"**Method.** Target y = sin(pi x) on {cfg.n_points} evenly spaced points of [-2, 2]; "
        f"width {cfg.width}, Xavier-uniform weights. 3a: depth {cfg.lr_depth}, "
        f"{cfg.lr_optimizer.upper()} for up to {cfg.lr_steps} steps at learning rates "
        f"{', '.join(f'{lr:g}' for lr in cfg.lrs)}; a run diverges when its loss is NaN, "
        f"infinite or above {cfg.loss_limit:g}, or a gradient entry exceeds "
        f"{cfg.grad_limit:g}. 3b: depths {', '.join(map(str, cfg.depths))}, "
        f"{cfg.depth_optimizer.capitalize()} at learning rate {cfg.depth_lr:g} for up to "
        f"{cfg.depth_steps} steps, loss rule only. A run that does not diverge has *learned* "
        f"when its loss after the last update is below {cfg.learned_below:g} x the target's "
        "variance, and is *stuck* otherwise (a constant output scores exactly the variance).",
        "",
        f"![Stability under stress](figures/{figure_name})",
        "",
    ]
    if rctx.seeds == 1:
        lines += ["*One seed: these numbers are single samples and carry no error bar.*", ""]
    for part, label, key in (("lr", "learning rate", "lr"), ("depth", "depth", "depth")):
        table = summary[part]
        if table.empty:
            continue
        settings = sorted(table[key].unique())
        title = "3a, learning-rate stress" if part == "lr" else "3b, depth stress"
        lines += [
            f"**{title}** (state counts over {rctx.seeds} seed(s); loss after training, "
            "geometric mean over the runs that did not diverge"
            + ("" if rctx.seeds == 1 else ", 95% interval")
            + "):",
            "",
            "| activation | " + " | ".join(f"{label} {s:g}" for s in settings) + " |",
            "|---|" + "---|" * len(settings),
        ]
        for act in rctx.activations:
            rows = table[table["activation"] == act].set_index(key)
            if rows.empty:
                continue
            lines.append(
                f"| {act} | "
                + " | ".join(cell(rows.loc[s]) if s in rows.index else "–" for s in settings)
                + " |"
            )
        lines.append("")
    lines += ["**What the data says.**", ""]
    lines += [f"- {f}" for f in findings(summary, rctx.activations)]
    return "\n".join(lines)


def findings(summary: dict[str, Any], activations: list[str]) -> list[str]:
    """Sentences computed from the state counts; nothing written in advance."""
    out = []
    lr = summary["lr"]
    if not lr.empty:
        for rate in sorted(lr["lr"].unique()):
            at = lr[lr["lr"] == rate]
            div = at[at["diverged"] > 0]
            if not div.empty:
                names = ", ".join(
                    f"{r.activation} ({r.diverged}/{r.seeds})" for r in div.itertuples()
                )
                out.append(
                    f"At learning rate {rate:g} these diverged in some or all seeds: {names}."
                )
        learned_all = [
            a
            for a in activations
            if not lr[lr["activation"] == a].empty
            and (lr[lr["activation"] == a]["learned"] == lr[lr["activation"] == a]["seeds"]).all()
        ]
        if learned_all:
            out.append(f"Learned at every learning rate in every seed: {', '.join(learned_all)}.")
    depth = summary["depth"]
    if not depth.empty:
        for act in activations:
            rows = depth[depth["activation"] == act].sort_values("depth")
            failed = rows[rows["learned"] < rows["seeds"]]
            if not rows.empty and not failed.empty:
                first = failed.iloc[0]
                what = ", ".join(f"{first[s]} {s}" for s in ("stuck", "diverged") if first[s])
                out.append(
                    f"{act} first fails to learn at depth {int(first['depth'])} "
                    f"({what} of {first['seeds']} seeds)."
                )
        stuck = depth["stuck"].sum()
        total = depth["seeds"].sum()
        if stuck:
            out.append(
                f"{stuck} of {total} depth-stress runs stayed finite but ended stuck at "
                "about the target's variance: the original tutorial counted these "
                "as stable."
            )
    return out or ["Every run learned: no divergence and no stuck run."]


STUDY = Stability()
