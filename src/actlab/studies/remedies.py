"""Remedies: do the usual fixes rescue the stress settings where plain training fails?

Settings (the tutorial's hardest, from the stability study): deep networks trained with
Adam (part "depth"), and SGD at high learning rates (part "lr"). On each, plain training
(Xavier-uniform weights, no normalisation, no skip, no clipping) is compared with one
remedy at a time:
- initialisation: Kaiming-normal, LeCun-normal, orthogonal, and "critical" (Gaussian at
  the activation's edge of chaos from the mean-field theory; an activation without one is
  recorded as skipped, metric `skipped` = 1, with no other metric);
- architecture: batch normalisation, layer normalisation (before each hidden activation),
  residual connections (every hidden block after the first);
- optimisation: gradient-norm clipping of each network's total gradient norm.
Metrics per trial: learned / stuck / diverged (stability's classifier), the loss after
training and the protocol's last recorded loss, and the gradient ratio last/first layer
(mean |dW|) of one MSE forward/backward at initialisation. (The gradient-flow study's
mean-output loss would give batch-normalised networks an exactly zero gradient: batch
norm removes the part of the gradient that is constant over the samples.)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from actlab.data import sine_data
from actlab.studies.base import (
    ReportContext,
    RunContext,
    Section,
    Study,
    Trial,
    applied,
    initial_params,
    learned_rows,
)

Remedy = Literal[
    "plain",
    "kaiming_normal",
    "lecun_normal",
    "orthogonal",
    "critical",
    "batchnorm",
    "layernorm",
    "residual",
    "clip",
]
REMEDIES: tuple[str, ...] = Remedy.__args__  # type: ignore[attr-defined]
INIT_REMEDIES = ("kaiming_normal", "lecun_normal", "orthogonal", "critical")
NORM_OF = {"batchnorm": "batch", "layernorm": "layer"}


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parts: list[Literal["depth", "lr"]] = Field(["depth", "lr"], min_length=1)
    remedies: list[Remedy] = Field(list(REMEDIES), min_length=1)
    # depth stress
    depths: list[int] = Field([20, 50], min_length=1)
    depth_lr: float = Field(0.01, gt=0)
    depth_optimizer: Literal["sgd", "adam"] = "adam"
    depth_steps: int = Field(200, ge=1, le=100_000)
    # learning-rate stress
    lrs: list[float] = Field([0.5, 1.0], min_length=1)
    lr_depth: int = Field(10, ge=1, le=1000)
    lr_optimizer: Literal["sgd", "adam"] = "sgd"
    lr_steps: int = Field(100, ge=1, le=100_000)
    grad_limit: float = Field(1e6, gt=0, description="lr part: largest |gradient| that stops a run")
    # remedies
    clip_norm: float = Field(1.0, gt=0, description="clip: largest total gradient norm")
    sigma_b: float = Field(0.0, ge=0, le=10, description="critical: bias standard deviation")
    # shared
    width: int = Field(64, ge=1, le=8192)
    n_points: int = Field(200, ge=2, le=1_000_000)
    loss_limit: float = Field(1e6, gt=0)
    learned_below: float = Field(0.5, gt=0, lt=1)
    failed_above: float = Field(10.0, gt=1)

    def model_post_init(self, _context: Any) -> None:
        bad = [d for d in [*self.depths, self.lr_depth] if not 1 <= d <= 1000]
        if bad:
            raise ValueError(f"depths must be between 1 and 1000 (got {bad[0]})")
        if any(not lr > 0 for lr in self.lrs):
            raise ValueError("learning rates must be positive")
        if "plain" not in self.remedies:
            raise ValueError("remedies must include 'plain', the baseline they are compared to")


def setting_name(part: str, depth: int, lr: float) -> str:
    return f"depth {depth}" if part == "depth" else f"lr {lr:g}"


class Remedies(Study):
    name = "remedies"
    learnable_activations = "trained"
    title = "Remedies for the stress settings"
    Config = Config
    param_columns = ("setting", "part", "depth", "width", "lr", "optimizer", "steps", "remedy")

    def trials(self, config: Config, activations: list[str], seeds: int) -> list[Trial]:
        settings = []
        if "depth" in config.parts:
            settings += [
                ("depth", d, config.depth_lr, config.depth_optimizer, config.depth_steps)
                for d in config.depths
            ]
        if "lr" in config.parts:
            settings += [
                ("lr", config.lr_depth, lr, config.lr_optimizer, config.lr_steps)
                for lr in config.lrs
            ]
        return [
            Trial(
                self.name,
                act,
                seed,
                {
                    "setting": setting_name(part, depth, lr),
                    "part": part,
                    "depth": depth,
                    "width": config.width,
                    "lr": lr,
                    "optimizer": opt,
                    "steps": steps,
                    "remedy": remedy,
                },
            )
            for part, depth, lr, opt, steps in settings
            for remedy in config.remedies
            for act in activations
            for seed in range(seeds)
        ]

    def check(self, config, activations) -> None:
        """Nothing to refuse: an activation with no edge of chaos has its critical trials
        recorded as skipped."""

    def batch_key(self, trial: Trial) -> tuple:
        # Same architecture and options; the learning rate is per member.
        p = trial.params
        return (p["part"], p["depth"], p["width"], p["optimizer"], p["steps"], p["remedy"])

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        from actlab.engine import (
            DivergenceRule,
            StackedMLP,
            layer_sizes,
            make_optimizer,
            train_regression,
        )
        from actlab.errors import UserError
        from actlab.studies.outcomes import outcome_rows

        cfg: Config = ctx.config
        p = trials[0].params
        remedy = p["remedy"]
        sizes = layer_sizes(1, p["width"], p["depth"])
        scheme = remedy if remedy in INIT_REMEDIES else "xavier_uniform"
        members, keep, out = [], [], [None] * len(trials)
        for i, t in enumerate(trials):
            try:
                members.append(
                    initial_params(ctx, sizes, scheme, t.seed, t.activation, cfg.sigma_b)
                )
                keep.append(i)
            except UserError:  # no edge of chaos: the report marks the cell skipped
                out[i] = [{"metric": "skipped", "value": 1.0}]
        if not keep:
            return out
        acts = [applied(ctx.activations[trials[i].activation]) for i in keep]
        lrs = [trials[i].params["lr"] for i in keep]
        if len(keep) == 1 and not ctx.exact:  # never a stack of one (see runner.run_batch)
            members, acts, lrs = members * 2, acts * 2, lrs * 2
        model = StackedMLP(
            members,
            acts,
            exact=ctx.exact,
            device=ctx.device,
            norm=NORM_OF.get(remedy),
            residual=remedy == "residual",
        )
        x, y = (t.to(ctx.device, ctx.torch_dtype) for t in sine_data(cfg.n_points))
        # The initial gradient ratio: one MSE forward/backward before training.
        model.zero_grad()
        model.mse(model.forward(x), y).sum().backward()
        grads = model.weight_grad_mean_abs().double().cpu().numpy()
        optimizer = make_optimizer(p["optimizer"], model, lrs)
        grad_limit = cfg.grad_limit if p["part"] == "lr" else None
        rule = DivergenceRule(loss_limit=cfg.loss_limit, grad_limit=grad_limit)
        clip = cfg.clip_norm if remedy == "clip" else None
        result = train_regression(model, x, y, optimizer, p["steps"], rule, clip=clip)
        variance = float(y.double().var(unbiased=False))
        for k, i in enumerate(keep):
            rows = outcome_rows(result, k, variance, cfg.learned_below, cfg.failed_above)
            first, last = float(grads[k, 0]), float(grads[k, -1])
            rows += [
                {"metric": "skipped", "value": 0.0},
                {"metric": "grad_log10_ratio", "value": _log10(last) - _log10(first)},
            ]
            rows += learned_rows(model, k, bool(result.diverged[k]))
            out[i] = rows
        return out

    def summarize(self, results):
        return summarize(results)

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        figure = plot(summary, rctx, figure_dir / "remedies.png")
        return Section(self.title, report_markdown(summary, rctx, figure.name), [figure])


def _log10(v: float) -> float:
    return math.log10(v) if v > 0 else (-math.inf if v == 0 else math.nan)


def summarize(results) -> dict[str, Any]:
    """Per activation x setting x remedy: seeds run, state counts, the geometric mean of
    the loss after training (runs that did not diverge) and the mean log10 gradient ratio."""
    import numpy as np
    import pandas as pd

    df = results[results["study"] == "remedies"]
    keys = ["activation", "setting", "part", "depth", "lr", "remedy"]
    metrics = [
        "skipped",
        "learned",
        "stuck",
        "failed",
        "diverged",
        "loss_after_training",
        "grad_log10_ratio",
    ]
    wide = df[df["metric"].isin(metrics)].pivot_table(
        index=[*keys, "seed"], columns="metric", values="value"
    )
    for m in metrics:
        if m not in wide:
            wide[m] = np.nan
    rows = []
    for key, g in wide.groupby(level=list(range(len(keys))), sort=False):
        ran = g[g["skipped"] != 1]
        alive = ran[ran["diverged"] == 0]["loss_after_training"]
        alive = alive[alive > 0]
        ratio = ran["grad_log10_ratio"].replace([np.inf, -np.inf], np.nan).dropna()
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "seeds": len(ran),
                "skipped": int((g["skipped"] == 1).sum()),
                "learned": int(ran["learned"].sum()),
                "stuck": int(ran["stuck"].sum()),
                "failed": int(ran["failed"].fillna(0).sum()),
                "diverged": int(ran["diverged"].sum()),
                "loss": float(10 ** np.log10(alive).mean()) if len(alive) else math.nan,
                "grad_log10_ratio": float(ratio.mean()) if len(ratio) else math.nan,
            }
        )
    table = pd.DataFrame(rows)
    if not table.empty:
        table["fraction"] = table["learned"] / table["seeds"].where(table["seeds"] > 0)
    return {"table": table}


def _order(table, rctx: ReportContext):
    """Rows (activation, setting) in run order and settings depth first; remedies in
    the config's order."""
    settings = []
    for part in ("depth", "lr"):
        sub = table[table["part"] == part]
        key = "depth" if part == "depth" else "lr"
        for _, r in sub.sort_values(key).drop_duplicates("setting").iterrows():
            settings.append(r["setting"])
    rows = [
        (a, s)
        for a in rctx.activations
        for s in settings
        if ((table["activation"] == a) & (table["setting"] == s)).any()
    ]
    remedies = [r for r in rctx.config.remedies if r in set(table["remedy"])]
    return rows, remedies


def plot(summary: dict[str, Any], rctx: ReportContext, path: Path) -> Path:
    import numpy as np

    from actlab.render.figures import pyplot, save

    plt = pyplot()
    table = summary["table"]
    rows, remedies = _order(table, rctx)
    grid = np.full((len(rows), len(remedies)), np.nan)
    idx = table.set_index(["activation", "setting", "remedy"])
    for i, (a, s) in enumerate(rows):
        for j, r in enumerate(remedies):
            if (a, s, r) in idx.index:
                grid[i, j] = idx.loc[(a, s, r), "fraction"]
    fig, ax = plt.subplots(figsize=(1.0 * len(remedies) + 3, 0.32 * len(rows) + 2))
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(remedies)):
            if np.isnan(grid[i, j]):
                ax.text(j, i, "skip", ha="center", va="center", fontsize=6, color="black")
    ax.set_xticks(range(len(remedies)), remedies, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), [f"{a}, {s}" for a, s in rows], fontsize=7)
    fig.colorbar(im, ax=ax, label="fraction of seeds that learned")
    ax.set_title("Learned fraction per remedy (grey: skipped, no edge of chaos)")
    return save(fig, path)


def report_markdown(summary: dict[str, Any], rctx: ReportContext, figure_name: str) -> str:
    cfg: Config = rctx.config
    table = summary["table"]
    rows, remedies = _order(table, rctx)
    idx = table.set_index(["activation", "setting", "remedy"])
    lines = [
        "**Question.** Where plain training fails (deep networks, high learning rates), which "
        "of the usual remedies rescues it, and which make it worse?",
        "",
        f"**Method.** Target y = sin(pi x) on {cfg.n_points} points of [-2, 2], width "
        f"{cfg.width}. Depth stress: depths {', '.join(map(str, cfg.depths))}, "
        f"{cfg.depth_optimizer.capitalize()} at learning rate {cfg.depth_lr:g} for "
        f"{cfg.depth_steps} steps. Learning-rate stress: depth {cfg.lr_depth}, "
        f"{cfg.lr_optimizer.upper()} at {', '.join(f'{lr:g}' for lr in cfg.lrs)} for "
        f"{cfg.lr_steps} steps, with the gradient rule ({cfg.grad_limit:g}). Plain = "
        "Xavier-uniform weights; each remedy changes one thing: the initialisation "
        "(Kaiming, LeCun, orthogonal, critical = edge of chaos at sigma_b "
        f"{cfg.sigma_b:g}), batch or layer normalisation before each hidden activation, "
        "residual connections, or clipping the total gradient norm to "
        f"{cfg.clip_norm:g}. States as in the stability study (learned: final loss below "
        f"{cfg.learned_below:g} x the target's variance; failed: above "
        f"{cfg.failed_above:g} x).",
        "",
        f"![Remedies](figures/{figure_name})",
        "",
        f"**Learned / seeds** ({rctx.seeds} seed(s); – = skipped):",
        "",
        "| activation | setting | " + " | ".join(remedies) + " |",
        "|---|---|" + "---|" * len(remedies),
    ]
    for a, s in rows:
        cells = []
        for r in remedies:
            if (a, s, r) not in idx.index or idx.loc[(a, s, r), "seeds"] == 0:
                cells.append("–")
            else:
                row = idx.loc[(a, s, r)]
                cells.append(f"{int(row['learned'])}/{int(row['seeds'])}")
        lines.append(f"| {a} | {s} | " + " | ".join(cells) + " |")
    lines += ["", "**What the data says.**", ""]
    lines += [f"- {f}" for f in findings(summary, rctx)]
    return "\n".join(lines)


def findings(summary: dict[str, Any], rctx: ReportContext) -> list[str]:
    """Sentences computed from the learned counts; nothing written in advance."""
    table = summary["table"]
    if table.empty:
        return ["No trial ran."]
    rows, remedies = _order(table, rctx)
    idx = table.set_index(["activation", "setting", "remedy"])
    out, hurt, failing = [], {}, 0
    for a, s in rows:
        if (a, s, "plain") not in idx.index:
            continue
        plain = idx.loc[(a, s, "plain")]
        if plain["seeds"] == 0:
            continue
        pf = plain["learned"] / plain["seeds"]
        better, worse = [], []
        for r in remedies:
            if r == "plain" or (a, s, r) not in idx.index:
                continue
            row = idx.loc[(a, s, r)]
            if row["seeds"] == 0:
                continue
            f = row["learned"] / row["seeds"]
            label = f"{r} ({int(row['learned'])}/{int(row['seeds'])})"
            if f > pf:
                better.append(label)
            elif f < pf:
                worse.append(r)
        for r in worse:
            hurt.setdefault(r, []).append(f"{a} at {s}")
        if pf < 1:
            failing += 1
            state = ", ".join(
                f"{int(plain[k])} {k}" for k in ("stuck", "failed", "diverged") if plain[k]
            )
            if better:
                out.append(
                    f"{a} at {s}: plain learned {int(plain['learned'])}/{int(plain['seeds'])} "
                    f"({state}); learned more often (counts over seeds, untested) with "
                    f"{', '.join(better)}."
                )
            else:
                out.append(
                    f"{a} at {s}: plain learned {int(plain['learned'])}/"
                    f"{int(plain['seeds'])} ({state}) and no remedy did better."
                )
    if not failing:
        out.append("Plain training learned in every setting and seed: nothing to rescue.")
    for r, where in hurt.items():
        out.append(
            f"{r} learned less often than plain (counts, untested) in {len(where)} case(s): "
            f"{', '.join(where)}."
        )
    return out


STUDY = Remedies()
