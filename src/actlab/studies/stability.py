"""Protocol experiment 3: stability under stress.

3a (part "lr"): SGD at rising learning rates, depth 10, both divergence rules (loss, then
    largest gradient entry > 1e6 before the update).
3b (part "depth"): Adam at lr 0.01 with rising depth, the loss rule only.

Data: 200 evenly spaced x on [-2, 2], y = sin(pi x). The protocol's rules are kept so the
numbers compare with the tutorial's, and three things it got wrong are fixed:
- the loss after the final update is recorded (`loss_after_training`), not only the last
  loss recorded before it (`final_loss`, the protocol's meaning);
- every trial is classified learned / stuck / failed / diverged: "stuck" means the final
  loss is not clearly below the variance of the target, which a constant output already
  reaches; "failed" means it stayed finite but ended far above it (by default more than
  10x: a Sigmoid run at loss 3e4 is not "stuck", it blew up without tripping the rule);
- no cap: a diverged trial is drawn as diverged, never as "loss 10";
- loss statistics are geometric means over the runs of one outcome, never a learned run
  averaged with a stuck one, with each outcome's count beside them;
- a cell's drawn state is its most common one, divergence included: a cell where most
  seeds diverged is drawn as diverged, never as the few runs that survived.

Beyond the protocol (defaults keep it exact): `steps_to_learn` per trial (how many updates
the loss took to fall below the "learned" threshold) shows whether a learning rate failed
or was only slow for the step budget; `until = "learned"` stops a run once it has learned
(cheap long budgets); `init` chooses the initialisation (the protocol's is Xavier-uniform;
"practice" is each activation's customary one).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from actlab.data import sine_data
from actlab.report.text import fmt, interval
from actlab.studies.base import (
    DEFAULT_INIT,
    OPTIMIZER_NAMES,
    InitName,
    PropertySpec,
    ReportContext,
    RunContext,
    Section,
    Study,
    Trial,
    build_stack,
    init_params,
    init_words,
    learned_rows,
    property_frame,
    trial_table,
)
from actlab.studies.outcomes import FINITE_STATES, STATES, outcome_rows

# The initialisations `studies.base.initial_params` accepts (engine/init.py, "critical" and
# "practice"); the protocol's is the first.


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
    failed_above: float = Field(
        10.0,
        gt=1,
        description="failed: a finite final loss above this many times the target's variance",
    )
    init: InitName = Field(DEFAULT_INIT, description="initial weights (both parts)")
    sigma_b: float = Field(
        0.0, ge=0, le=10, description="bias standard deviation for init = 'critical'"
    )
    until: Literal["steps", "learned"] = Field(
        "steps",
        description="steps: every run takes its part's whole step budget (the protocol); "
        "learned: a run also stops at the first step whose loss is below learned_below x the "
        "target's variance, before that step's update, so long budgets cost only the runs "
        "that need them",
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


class Stability(Study):
    name = "stability"
    learnable_activations = "trained"
    title = "Stability under stress"
    Config = Config
    param_columns = ("part", "depth", "width", "lr", "optimizer", "steps")

    def extra_params(self, config: Config) -> dict[str, Any]:
        """Trial parameters beyond the protocol's, present only when not at their default, so
        that the protocol's trial keys (and stored results) stay as they are."""
        extra = init_params(config)
        if config.until != "steps":
            extra["until"] = config.until
        return extra

    def columns(self, config: Config) -> tuple[str, ...]:
        return (*self.param_columns, *self.extra_params(config))

    def trials(self, config: Config, activations: list[str], seeds: int) -> list[Trial]:
        extra = self.extra_params(config)
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
                        **extra,
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
                        **extra,
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
        from actlab.engine import DivergenceRule, layer_sizes, make_optimizer, train_regression
        from actlab.engine.monitors import StopBelow

        cfg: Config = ctx.config
        p = trials[0].params
        x, y = (t.to(ctx.device, ctx.torch_dtype) for t in sine_data(cfg.n_points))
        sizes = layer_sizes(1, p["width"], p["depth"])
        model = build_stack(trials, ctx, sizes, p.get("init", DEFAULT_INIT))
        optimizer = make_optimizer(p["optimizer"], model, [t.params["lr"] for t in trials])
        grad_limit = cfg.grad_limit if p["part"] == "lr" else None
        rule = DivergenceRule(loss_limit=cfg.loss_limit, grad_limit=grad_limit)
        variance = float(y.double().var(unbiased=False))
        threshold = cfg.learned_below * variance
        monitors = [StopBelow(threshold)] if p.get("until") == "learned" else []
        result = train_regression(model, x, y, optimizer, p["steps"], rule, monitors=monitors)
        return [
            outcome_rows(result, m, variance, cfg.learned_below, cfg.failed_above)
            + [{"metric": "steps_to_learn", "value": steps_to_learn(result, m, threshold)}]
            + learned_rows(model, m, bool(result.diverged[m]))
            for m in range(len(trials))
        ]

    def summarize(self, results):
        return summarize(results)

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        figure = plot(summary, rctx.activations, figure_dir / "stability.png")
        return Section(self.title, report_markdown(summary, rctx, figure.name), [figure])

    property_specs = (
        PropertySpec(
            "learning-rate robustness",
            "share of the sweep's learning rates (SGD) at which the network learned",
            "higher",
            settings="learning rates",
            situation="a high or untuned learning rate",
            regime="the highest learning rate",
            rests_on=(),
        ),
        PropertySpec(
            "depth robustness",
            "share of the sweep's depths (Adam) at which the network learned",
            "higher",
            settings="depths",
            situation="a deep network (many layers)",
            regime="the greatest depth",
            rests_on=(),
        ),
    )

    def conditions(self, config: Config) -> dict[str, str]:
        """E.g. "SGD at learning rates 0.001-1, 100 steps, depth 10, width 64, Xavier-uniform
        init, sin(pi x) on 200 points"."""
        cfg = config
        data = f"sin(pi x) on {cfg.n_points} points"
        init = init_words(cfg.init, cfg.sigma_b)
        until = ", stopped once learned" if cfg.until == "learned" else ""
        lrs = sorted(cfg.lrs)
        rates = f"{lrs[0]:g}" if len(lrs) == 1 else f"{lrs[0]:g}-{lrs[-1]:g}"
        depths = sorted(cfg.depths)
        deep = f"{depths[0]}" if len(depths) == 1 else f"{depths[0]}-{depths[-1]}"
        return {
            self.property_specs[0].name: (
                f"{OPTIMIZER_NAMES[cfg.lr_optimizer]} at learning rates {rates}, "
                f"{cfg.lr_steps} steps{until}, depth {cfg.lr_depth}, width {cfg.width}, "
                f"{init}, {data}"
            ),
            self.property_specs[1].name: (
                f"{OPTIMIZER_NAMES[cfg.depth_optimizer]} at learning rate {cfg.depth_lr:g}, "
                f"{cfg.depth_steps} steps{until}, depths {deep}, width {cfg.width}, "
                f"{init}, {data}"
            ),
        }

    def limits(self, config: Config) -> dict[str, str]:
        out = {}
        if config.until == "steps":
            out[self.property_specs[0].name] = (
                f"a run that has not learned within {config.lr_steps} steps may be slow rather "
                "than unstable at its rate, so the share of rates that learned measures speed "
                "as much as robustness (the steps-to-learn table says which rate was slow; "
                'until = "learned" with a longer budget asks the question itself)'
            )
        if config.init == DEFAULT_INIT:
            out[self.property_specs[1].name] = (
                "every activation starts from the same Xavier uniform init, though each is "
                "used with its own in practice: a depth it fails at may be that init's"
            )
        return out

    def properties(self, summary, rctx: ReportContext):
        """Per seed and setting: 1 if the network learned there, else 0 (stuck, failed and
        diverged alike); the regime is the highest learning rate / the greatest depth."""
        trials = summary["trials"]
        rows = []
        for spec, part, key in (
            (self.property_specs[0], "lr", "lr"),
            (self.property_specs[1], "depth", "depth"),
        ):
            sub = trials[trials["part"] == part]
            if sub.empty:
                continue
            top = sub[key].max()
            for r in sub.itertuples():
                value = getattr(r, key)
                rows.append(
                    {
                        "property": spec.name,
                        "activation": r.activation,
                        "seed": int(r.seed),
                        "setting": f"{key}={value:g}",
                        "score": float(r.outcome == "learned"),
                        "outcome": r.outcome,
                        "regime": bool(value == top),
                    }
                )
        return property_frame(rows)

    def claims(self, summary, rctx: ReportContext) -> list:
        claims = (bounded_is_stable(summary, rctx), finite_means_learned(summary, rctx))
        return [c for c in claims if c is not None]

    def sheet_panels(self, summary, rctx: ReportContext, colours) -> list[Any]:
        panels = []
        for part, key, label in (("lr", "lr", "learning rate"), ("depth", "depth", "depth")):
            if not summary[part].empty:
                panels.append(
                    lambda ax, part=part, key=key, label=label: loss_panel(
                        ax, summary[part], key, rctx.activations, colours, label
                    )
                )
        return panels


def steps_to_learn(result, m: int, threshold: float) -> float:
    """Updates member m took until its loss was first below `threshold` (0: it started
    there): the first recorded loss below it (recorded after that many updates), else the
    loss after the last update when that is below it and the run did not diverge; NaN if
    never. A run that fell below and then rose again (or diverged) keeps its first time."""
    import numpy as np

    below = np.flatnonzero(result.losses[m] < threshold)  # NaN compares False
    if below.size:
        return float(below[0])
    if not result.diverged[m] and result.loss_after[m] < threshold:
        return float(result.steps_completed[m])
    return math.nan


def outcome_of(row) -> str:
    """A trial's state from its stored indicators (runs made before "failed" existed
    have no such metric: their stuck runs stay stuck)."""
    if row["diverged"] == 1:
        return "diverged"
    if row["learned"] == 1:
        return "learned"
    return "failed" if row.get("failed", 0) == 1 else "stuck"


def summarize(results) -> dict[str, Any]:
    """`lr` and `depth`: per setting x activation, the count of each state and, for each
    finite state, the geometric mean of the loss after training over its runs with a 95%
    interval (`loss_<state>`, `_low`, `_high`) and its exact zeros (floored, counted in
    `zeros`); `budget` (the step budget) and `steps_median`, the median over every seed of
    the updates it took to learn, a seed that did not end learned counting as beyond the
    budget (inf when half the seeds or more did not learn; NaN for runs stored before
    `steps_to_learn` existed). `trials`: one row per trial with its `outcome`."""
    import numpy as np
    import pandas as pd

    from actlab.stats import log10_floored
    from actlab.stats import summarize as stat

    df = results[results["study"] == "stability"]
    metrics = [
        "diverged",
        "learned",
        "stuck",
        "failed",
        "loss_after_training",
        "target_variance",
        "steps_to_learn",
    ]
    index = ["part", "activation", "depth", "lr", "steps", "seed"]
    wide = trial_table(df, "stability", metrics, index)
    wide["failed"] = wide["failed"].fillna(0)
    wide["outcome"] = [outcome_of(r) for _, r in wide.iterrows()]
    wide["depth"] = wide["depth"].astype(int)
    wide["lr"] = wide["lr"].astype(float)
    rows = []
    for (part, act, depth, lr), g in wide.groupby(
        ["part", "activation", "depth", "lr"], sort=False
    ):
        learned = g["outcome"] == "learned"
        if learned.any() and g.loc[learned, "steps_to_learn"].isna().any():
            median = math.nan  # stored before steps_to_learn existed
        else:
            median = float(np.median(np.where(learned, g["steps_to_learn"], np.inf)))
        row = {
            "part": part,
            "activation": act,
            "depth": int(depth),
            "lr": float(lr),
            "seeds": len(g),
            **{state: int((g["outcome"] == state).sum()) for state in STATES},
            "variance": float(g["target_variance"].mean()),
            "budget": int(g["steps"].max()),
            "steps_median": median,
            "zeros": 0,
        }
        for state in FINITE_STATES:
            logs, zeros = log10_floored(g[g["outcome"] == state]["loss_after_training"])
            row["zeros"] += zeros
            s = stat(logs)
            row[f"loss_{state}"] = 10**s.mean if s.n else math.nan
            row[f"loss_{state}_low"] = 10**s.ci_low if s.n > 1 else math.nan
            row[f"loss_{state}_high"] = 10**s.ci_high if s.n > 1 else math.nan
        main = majority_state(row)
        row["state"] = main
        row["loss"] = row.get(f"loss_{main}", math.nan)
        row["loss_low"] = row.get(f"loss_{main}_low", math.nan)
        row["loss_high"] = row.get(f"loss_{main}_high", math.nan)
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["part"])
    return {
        "lr": table[table["part"] == "lr"].reset_index(drop=True),
        "depth": table[table["part"] == "depth"].reset_index(drop=True),
        "trials": wide,
    }


def majority_state(row) -> str:
    """The most common state of a cell, divergence included (a tie goes to the earlier of
    learned, stuck, failed, and divergence wins every tie it is in: it is the worst
    outcome). Its runs give the cell's plotted loss (`loss`, `loss_low`, `loss_high`; NaN
    for "diverged"); partial divergence is drawn beside it."""
    finite = max(FINITE_STATES, key=lambda s: (row[s], -FINITE_STATES.index(s)))
    return "diverged" if row["diverged"] >= max(row[finite], 1) else finite


def plot(summary: dict[str, Any], activations: list[str], path: Path) -> Path:
    """Left: loss after training per learning rate (grouped bars); right: against depth.
    Each cell shows its most common state's geometric-mean loss: learned = solid, stuck =
    hatched / open marker, failed = cross-hatched / square; a cell where most seeds diverged
    is a cross in the activation's colour (with "k/n" unless all did); partial divergence
    is written beside the cell."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

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
            top = ceiling(table)
            for i, act in enumerate(activations):
                rows = table[table["activation"] == act].set_index("lr")
                for j, lr in enumerate(lrs):
                    if lr not in rows.index:
                        continue
                    r = rows.loc[lr]
                    xpos = j - 0.4 + width * (i + 0.5)
                    if r["state"] == "diverged":
                        ax.plot(xpos, top, marker="x", color=colours[act], ms=7, mew=2)
                        if r["diverged"] < r["seeds"]:
                            ax.annotate(
                                f"{r['diverged']}/{r['seeds']}",
                                (xpos, top),
                                fontsize=6,
                                color="red",
                                ha="center",
                                xytext=(0, 5),
                                textcoords="offset points",
                            )
                        continue
                    ax.bar(
                        xpos,
                        r["loss"],
                        width,
                        color=colours[act],
                        hatch=HATCH[r["state"]],
                        edgecolor="black" if HATCH[r["state"]] else colours[act],
                        linewidth=0.5,
                    )
                    if math.isfinite(r["loss_low"]):
                        ax.errorbar(
                            xpos,
                            r["loss"],
                            yerr=[[r["loss"] - r["loss_low"]], [r["loss_high"] - r["loss"]]],
                            color="black",
                            lw=0.7,
                            capsize=1.5,
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
            loss_panel(ax, table, "depth", activations, colours, "depth (Adam)")
            ax.set_title("3b: depth stress")
        ax.set_ylabel("loss after training (geometric mean, most common state)")
        ax.grid(True, which="major", alpha=0.3)
    handles = [Patch(color=colours[a], label=a) for a in activations] + [
        Line2D([], [], color="grey", ls="--", label="target variance (constant output)"),
        Patch(facecolor="white", edgecolor="black", hatch="//", label="stuck (bar)"),
        Patch(facecolor="white", edgecolor="black", hatch="xx", label="failed (bar)"),
        *marker_legend(),
    ]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(7, len(handles)),
        fontsize=8,
        bbox_to_anchor=(0.5, -0.16),
    )
    fig.suptitle("Loss after training under stress: learned, stuck, failed and diverged apart")
    return save(fig, path)


HATCH = {"learned": None, "stuck": "//", "failed": "xx", "diverged": None}
MARKER = {"learned": "o", "stuck": "o", "failed": "s"}


def ceiling(table) -> float:
    """Where all-diverged cells are drawn: above every finite loss and the variance."""
    import numpy as np

    losses = table["loss"].to_numpy(dtype=float)
    top = np.nanmax(losses) if np.isfinite(losses).any() else 1.0
    return max(float(top), float(table["variance"].mean())) * 3


def marker_legend() -> list[Any]:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], marker="o", color="black", ls="", label="learned"),
        Line2D([], [], marker="o", color="black", markerfacecolor="white", ls="", label="stuck"),
        Line2D([], [], marker="s", color="black", markerfacecolor="white", ls="", label="failed"),
        Line2D([], [], marker="x", color="black", ls="", label="diverged in most seeds"),
    ]


def loss_panel(ax, table, key: str, activations: list[str], colours, label: str) -> None:
    """Loss after training against a setting (log x), one line per activation through its
    cells' most common state, with its 95% interval. Activations sit side by side at each
    setting, and a cell where most seeds diverged is a cross in the activation's colour in
    a band above the data, one row per activation, so that no mark hides another's;
    divergence short of all seeds is written as "k/n" beside the mark."""
    import numpy as np
    from matplotlib.ticker import NullFormatter

    top = ceiling(table)
    settings = sorted(table[key].unique())
    # Side by side within 60% of the narrowest gap between settings (in log x).
    gap = float(np.min(np.diff(np.log10(settings)))) if len(settings) > 1 else 0.3
    step = 0.6 * gap / max(len(activations) - 1, 1)
    for i, act in enumerate(activations):
        rows = table[table["activation"] == act].sort_values(key)
        if rows.empty:
            continue
        shift = 10 ** (step * (i - (len(activations) - 1) / 2))
        x = rows[key].to_numpy(dtype=float) * shift
        finite = rows["state"] != "diverged"
        ax.plot(x[finite.to_numpy()], rows["loss"][finite], color=colours[act], lw=1)
        for xi, (_, r) in zip(x, rows.iterrows(), strict=True):
            if r["state"] == "diverged":  # one row per activation in the band above
                band = top * 10 ** (0.12 * i)
                ax.plot(xi, band, marker="x", color=colours[act], ms=6, mew=2)
                if r["diverged"] < r["seeds"]:
                    ax.annotate(
                        f"{r['diverged']}/{r['seeds']}",
                        (xi, band),
                        fontsize=6,
                        color="red",
                        xytext=(2, 2),
                        textcoords="offset points",
                    )
                continue
            filled = colours[act] if r["state"] == "learned" else "white"
            ax.plot(
                xi,
                r["loss"],
                marker=MARKER[r["state"]],
                ms=5,
                color=colours[act],
                markerfacecolor=filled,
            )
            if math.isfinite(r["loss_low"]):
                ax.plot([xi, xi], [r["loss_low"], r["loss_high"]], color=colours[act], lw=0.8)
            if r["diverged"]:
                ax.annotate(
                    f"{r['diverged']}/{r['seeds']}",
                    (xi, r["loss"]),
                    fontsize=6,
                    color="red",
                    xytext=(2, 2),
                    textcoords="offset points",
                )
    ax.axhline(float(table["variance"].mean()), color="grey", ls="--", lw=1)
    ax.axhline(top, color="0.8", lw=0.5)
    ax.text(
        0.01,
        top,
        "diverged",
        transform=ax.get_yaxis_transform(),
        fontsize=7,
        va="bottom",
        color="0.4",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(settings, [f"{v:g}" for v in settings])
    ax.set_xlabel(label)
    ax.set_ylabel("loss after training")
    ax.set_title(f"Loss vs {label} (o learned, open stuck, square failed, x diverged)", fontsize=9)


def cell(r) -> str:
    """One table cell: each state's count, and for each finite state the geometric mean of
    its runs' loss after training (95% interval with two or more runs)."""
    parts = []
    for state in STATES:
        n = int(r[state])
        if not n:
            continue
        text = f"{n} {state}"
        if state in FINITE_STATES and math.isfinite(r[f"loss_{state}"]):
            text += f" {fmt(r[f'loss_{state}'])}"
            text += interval(r[f"loss_{state}_low"], r[f"loss_{state}_high"])
        parts.append(text)
    if r.get("zeros", 0):
        parts.append(f"{int(r['zeros'])} exact zero(s) floored at 1e-45")
    return "; ".join(parts)


def report_markdown(summary: dict[str, Any], rctx: ReportContext, figure_name: str) -> str:
    cfg: Config = rctx.config
    lines = [
        "**Question.** Does training stay stable when the learning rate is too high, or the "
        "network too deep, and does a run that stays finite actually learn?",
        "",
        f"**Method.** Target y = sin(pi x) on {cfg.n_points} evenly spaced points of [-2, 2]; "
        f"width {cfg.width}, {init_words(cfg.init, cfg.sigma_b)}. 3a: depth {cfg.lr_depth}, "
        f"{OPTIMIZER_NAMES[cfg.lr_optimizer]} for up to {cfg.lr_steps} steps at learning "
        f"rates {', '.join(f'{lr:g}' for lr in cfg.lrs)}; a run diverges when its loss is "
        f"NaN, infinite or above {cfg.loss_limit:g}, or a gradient entry exceeds "
        f"{cfg.grad_limit:g}. 3b: depths {', '.join(map(str, cfg.depths))}, "
        f"{OPTIMIZER_NAMES[cfg.depth_optimizer]} at learning rate {cfg.depth_lr:g} for up to "
        f"{cfg.depth_steps} steps, loss rule only. A run that does not diverge has *learned* "
        f"when its loss after the last update is below {cfg.learned_below:g} x the target's "
        f"variance, has *failed* when that loss is above {cfg.failed_above:g} x the variance "
        "(finite, yet far worse than a constant output, which scores exactly the variance), "
        "and is *stuck* in between.",
        "",
    ]
    if cfg.until == "learned":
        lines += [
            "Each run stops at the first step whose loss is below the *learned* threshold, "
            "before that step's update: a learned run's loss after training is that loss, "
            "just under the threshold, so it says only that the run learned; how fast it "
            "did is in the steps-to-learn tables.",
            "",
        ]
    lines += [f"![Stability under stress](figures/{figure_name})", ""]
    if rctx.seeds == 1:
        lines += ["*One seed: these numbers are single samples and carry no error bar.*", ""]
    for part, label, key in (("lr", "learning rate", "lr"), ("depth", "depth", "depth")):
        table = summary[part]
        if table.empty:
            continue
        settings = sorted(table[key].unique())
        title = "3a, learning-rate stress" if part == "lr" else "3b, depth stress"
        lines += [
            f"**{title}**: runs in each state (of {rctx.seeds} seed(s)), each finite state "
            "with the geometric mean of its own runs' loss after training"
            + ("" if rctx.seeds == 1 else " [95% interval, from two or more runs]")
            + ":",
            "",
            *grid(table, key, label, settings, rctx.activations, cell),
            "",
        ]
        if "steps_median" in table and table["steps_median"].notna().any():
            budget = int(table["budget"].max())
            lines += [
                f"**{title[:2]}, steps to learn**: the median over {rctx.seeds} seed(s) of "
                f"the updates a run took until its loss was below {cfg.learned_below:g} x "
                f"the target's variance, a seed that did not end learned counting as beyond "
                f'the budget of {budget} steps ("> {budget}": half the seeds or more did '
                "not learn), and how many seeds ended learned:",
                "",
                *grid(table, key, label, settings, rctx.activations, steps_cell),
                "",
            ]
    lines += ["**What the data says.**", ""]
    lines += [f"- {f}" for f in findings(summary, rctx.activations)]
    return "\n".join(lines)


def grid(table, key: str, label: str, settings, activations: list[str], text) -> list[str]:
    """A markdown table: one row per activation, one column per setting, `text(row)` in
    each cell ("–" where the activation has no runs at the setting)."""
    lines = [
        "| activation | " + " | ".join(f"{label} {s:g}" for s in settings) + " |",
        "|---|" + "---|" * len(settings),
    ]
    for act in activations:
        rows = table[table["activation"] == act].set_index(key)
        if rows.empty:
            continue
        lines.append(
            f"| {act} | "
            + " | ".join(text(rows.loc[s]) if s in rows.index else "–" for s in settings)
            + " |"
        )
    return lines


def steps_cell(r) -> str:
    """'120 (6/6 learned)', '> 1000 (2/6 learned; 1 diverged)', or '–' without the data."""
    median = r["steps_median"]
    if math.isnan(median):
        return "–"
    text = f"{median:g}" if math.isfinite(median) else f"> {int(r['budget'])}"
    text += f" ({int(r['learned'])}/{int(r['seeds'])} learned"
    if r["diverged"]:
        text += f"; {int(r['diverged'])} diverged"
    return text + ")"


def findings(summary: dict[str, Any], activations: list[str]) -> list[str]:
    """Sentences computed from the state counts; nothing written in advance. Every count
    is over all seeds: a diverged run is counted as diverged, never left out."""
    out = []
    lr = summary["lr"]
    if not lr.empty:
        for rate in sorted(lr["lr"].unique()):
            at = lr[lr["lr"] == rate]
            for state in ("diverged", "failed"):
                hit = at[at[state] > 0]
                if hit.empty:
                    continue
                listed = ", ".join(
                    f"{r.activation} ({r[state]}/{r.seeds})" for _, r in hit.iterrows()
                )
                out.append(
                    f"At learning rate {rate:g} these {state} in some or all seeds: {listed}."
                )
            # Slow, not unstable: most seeds did not learn here and none blew up, yet most
            # learned at a higher rate of the sweep.
            higher = lr[(lr["lr"] > rate) & (2 * lr["learned"] > lr["seeds"])]["activation"]
            slow = at[
                (2 * at["learned"] <= at["seeds"])
                & (at["diverged"] + at["failed"] == 0)
                & at["activation"].isin(set(higher) & set(activations))
            ]
            if not slow.empty:
                listed = ", ".join(
                    f"{r.activation} ({r.learned}/{r.seeds})" for _, r in slow.iterrows()
                )
                out.append(
                    f"At learning rate {rate:g} these learned in at most half of the seeds "
                    f"within {int(slow['budget'].max())} steps, none diverged or failed, and "
                    f"they learned at a higher rate: {listed}; too slow for the budget at this "
                    "rate, not unstable."
                )
        majority = lr[2 * lr["learned"] > lr["seeds"]]["activation"]
        never = [a for a in activations if a in set(lr["activation"]) - set(majority)]
        if never:
            out.append(
                "Learned in most seeds at no learning rate of the sweep (stuck, failed or "
                f"diverged at every one): {', '.join(never)}."
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
            failing = rows[rows["learned"] < rows["seeds"]]
            if not rows.empty and not failing.empty:
                first = failing.iloc[0]
                what = ", ".join(
                    f"{first[s]} {s}" for s in ("stuck", "failed", "diverged") if first[s]
                )
                out.append(
                    f"{act} first fails to learn at depth {int(first['depth'])} "
                    f"({what} of {first['seeds']} seeds)."
                )
        stuck = int(depth["stuck"].sum())
        if stuck:
            out.append(
                f"{stuck} of {int(depth['seeds'].sum())} depth-stress runs stayed finite but "
                "ended stuck at about the target's variance: the original tutorial counted "
                "these as stable."
            )
    return out or ["Every run learned: no divergence, no stuck and no failed run."]


# -- claims ---------------------------------------------------------------------------------------
def bounded_is_stable(summary: dict[str, Any], rctx: ReportContext):
    """ "Bounded activations are the stable choice at high learning rates", tested: per seed,
    the number of the sweep's learning rates at which a run diverged, averaged over the
    bounded activations, minus that of the unbounded non-linear ones (one paired sign-flip
    test over seeds); a negative difference supports the claim."""
    from actlab.activations import is_affine, is_bounded
    from actlab.stats import paired_comparison
    from actlab.studies.base import Claim

    trials = summary["trials"]
    trials = trials[trials["part"] == "lr"] if not trials.empty else trials
    specs = rctx.specs
    if trials.empty or not specs:
        return None
    acts = [a for a in rctx.activations if a in specs and not is_affine(specs[a])]
    bounded = [a for a in acts if is_bounded(specs[a])]
    unbounded = [a for a in acts if not is_bounded(specs[a])]
    if not bounded or not unbounded:
        return None
    # Stable means neither diverged nor blown up to a finite loss far above a constant
    # output's (failed): a run at 1e4 x the target's variance is no stable choice.
    blown = trials["outcome"].isin(["diverged", "failed"])
    per = blown.groupby([trials["activation"], trials["seed"]]).sum()
    per = per.unstack("activation")
    b = per.reindex(columns=bounded).mean(axis=1)
    u = per.reindex(columns=unbounded).mean(axis=1)
    return Claim(
        "Bounded activations are the stable choice at high learning rates.",
        f"learning rates (of {trials['lr'].nunique()}) at which a run diverged or failed "
        f"(finite, above {rctx.config.failed_above:g}x the target's variance), per seed: "
        f"{', '.join(bounded)} minus {', '.join(unbounded)}; below 0 supports",
        paired_comparison(b, u),
        supports=-1,
        conditions=Stability().conditions(rctx.config)["learning-rate robustness"],
    )


def finite_means_learned(summary: dict[str, Any], rctx: ReportContext):
    """ "A run that did not diverge is stable", tested: per seed, the share of depth-stress
    runs that stayed finite yet did not learn (stuck or failed), against none (a sign-flip
    test of the share against 0); a share above 0 contradicts the claim."""
    import pandas as pd

    from actlab.stats import paired_comparison
    from actlab.studies.base import Claim

    trials = summary["trials"]
    trials = trials[trials["part"] == "depth"] if not trials.empty else trials
    if trials.empty:
        return None
    unlearned = trials["outcome"].isin(["stuck", "failed"])
    share = unlearned.groupby(trials["seed"]).mean()
    return Claim(
        "A run that did not diverge is stable.",
        "share of depth-stress runs that stayed finite yet did not learn (stuck or failed), "
        "per seed, minus 0; above 0 contradicts",
        paired_comparison(share, pd.Series(0.0, index=share.index)),
        supports=-1,
        conditions=Stability().conditions(rctx.config)["depth robustness"],
    )


STUDY = Stability()
