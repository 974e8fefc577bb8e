"""Protocol experiment 4: representational capacity, inside and outside the training interval.

Each network (depth 5, width 64, Xavier weights, zero biases) is trained full batch with
Adam (lr 0.001, 500 steps, MSE) on one noiseless 1-d target sampled at `n_train` evenly
spaced points of [x_min, x_max]. The protocol's `test_mse` is measured on `n_test` evenly
spaced points of the same interval, so it measures interpolation only (a known fault of the
original); actlab adds an extrapolation test on two grids just outside it: `n_extrap`
evenly spaced points on each of [x_min - extrap_margin, x_min) and
(x_max, x_max + extrap_margin], the endpoints x_min and x_max excluded.

Metrics per trial (one row each, no layer/step):
  test_mse          MSE on the test grid (the protocol metric, interpolation)
  extrap_mse        MSE on both extrapolation grids pooled
  train_mse         MSE on the training grid after the final update
  diverged          1 if the loss rule (NaN, inf or > 1e6) stopped the run, else 0;
                    a diverged trial has NaN for all three MSEs and its predictions
  steps_completed   updates applied
  ended_plateau     1 if training ended on a plateau (the training loss had not fallen by
                    `min_improvement`, relatively, in the last `patience` updates), 0 if the
                    budget ran out while it was still falling; NaN for a diverged trial
  fitted            1 if the training MSE after training is below `learned_below` x the
                    target's variance on the training grid (a constant output scores 1 x),
                    else 0; NaN for a diverged trial
  target_variance   variance of the target on the test grid: the test MSE of the best
                    constant output
With `until = "steps"` (the protocol) every run takes all its steps, and ended_plateau only
labels how it ended; with `until = "plateau"` a fitted run stops on its plateau, `steps` is
the most a run may take, and a run resting at about a constant output's loss trains on
(networks can leave that plateau late: measured, Tanh on sin(10x) with its customary init
left it after 1000-1500 Adam steps at lr 1e-3).

How each run ended, one of four (summarize, the report):
  plateaued         fitted, on a plateau: by the plateau rule more steps of this training
                    bring little, so its MSE is the closest fit this network reaches trained
                    this way (like every measured fit, an upper bound on what it can
                    represent: another optimiser or schedule may go lower)
  still improving   the budget ran out while the loss still fell: it did not train in time,
                    and its MSE says how far it got, never what the network can represent
  constant          on a plateau at about a constant output's loss (not fitted): it cannot
                    represent the target, or had not yet left that plateau; the run cannot
                    tell which
  diverged          the loss rule stopped it (the worst outcome)
Per-point rows, for the prediction figure:
  prediction        the network's output at test-grid point `step` (0 .. n_test - 1)
  extrap_prediction the output at extrapolation-grid point `step` (0 .. 2 n_extrap - 1;
                    the left grid first, both in increasing x; see `grid_extrap`)

The targets only change y, so every trial of one shape (whatever its target) shares a
stack; within a seed every activation and every target starts from the same weights.
MSEs span decades, so statistics over seeds are taken on log10 values (geometric means);
an MSE of exactly 0 is floored at stats.LOG_FLOOR and counted, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from actlab.report.text import sci
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
    nan_if,
    property_frame,
    trial_table,
)

# name -> (formula, function of a tensor). Tensor methods only: no torch import at load time.
TARGETS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "sin": ("sin(x)", lambda x: x.sin()),
    "abs": ("|x|", lambda x: x.abs()),
    "step": ("sigmoid(10x)", lambda x: (10 * x).sigmoid()),
    "sin10": ("sin(10x)", lambda x: (10 * x).sin()),
    "cubic": ("x^3", lambda x: x**3),
}

MSE_METRICS = ("test_mse", "extrap_mse", "train_mse")
# The initialisations `studies.base.initial_params` accepts (engine/init.py, "critical" and
# "practice"); the protocol's is the first.


def target_fn(name: str) -> Callable[[Any], Any]:
    try:
        return TARGETS[name][1]
    except KeyError:
        raise ValueError(f"unknown target '{name}'; available: {', '.join(TARGETS)}") from None


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    targets: list[str] = Field(["sin", "abs", "step", "sin10", "cubic"], min_length=1)
    depth: int = Field(5, ge=1, le=1000)
    width: int = Field(64, ge=1, le=8192)
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(0.001, gt=0)
    steps: int = Field(
        500,
        ge=1,
        le=1_000_000,
        description="the step budget: every run's steps (until = 'steps'), or the most a "
        "run may take (until = 'plateau')",
    )
    until: Literal["steps", "plateau"] = Field(
        "steps",
        description="steps: train for the whole budget (the protocol); plateau: stop a run "
        "once its training loss has plateaued (see patience), at most `steps` steps",
    )
    patience: int = Field(
        100,
        ge=1,
        le=1_000_000,
        description="a plateau: this many updates without the training loss falling below "
        "(1 - min_improvement) x the loss that last did so",
    )
    min_improvement: float = Field(
        0.01, ge=0, lt=1, description="the relative fall that counts as improving"
    )
    learned_below: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="fitted: a training MSE below this fraction of the target's variance (a "
        "constant output scores 1); with until = 'plateau' only a fitted run stops on a plateau",
    )
    init: InitName = Field(DEFAULT_INIT, description="initial weights")
    sigma_b: float = Field(
        0.0, ge=0, le=10, description="bias standard deviation for init = 'critical'"
    )
    n_train: int = Field(200, ge=2, le=1_000_000)
    n_test: int = Field(500, ge=2, le=1_000_000)
    x_min: float = -2.0
    x_max: float = 2.0
    extrap_margin: float = Field(
        1.0, gt=0, description="the extrapolation grids reach this far beyond each end"
    )
    n_extrap: int = Field(100, ge=1, le=1_000_000, description="extrapolation points per side")

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, targets: list[str]) -> list[str]:
        for name in targets:
            target_fn(name)
        if len(set(targets)) != len(targets):
            raise ValueError(f"targets listed twice: {targets}")
        return targets

    @model_validator(mode="after")
    def _interval(self) -> Config:
        if not (math.isfinite(self.x_min) and math.isfinite(self.x_max)):
            raise ValueError("x_min and x_max must be finite")
        if not self.x_min < self.x_max:
            raise ValueError(
                f"x_min must be below x_max (got x_min={self.x_min}, x_max={self.x_max})"
            )
        return self


# -- data ---------------------------------------------------------------------------------------
def grid_train(cfg: Config, dtype=None):
    """`[n_train, 1]` evenly spaced points on [x_min, x_max], ends included."""
    import torch

    return torch.linspace(cfg.x_min, cfg.x_max, cfg.n_train, dtype=dtype).unsqueeze(1)


def grid_test(cfg: Config, dtype=None):
    """`[n_test, 1]` evenly spaced points on [x_min, x_max]: the protocol's test set."""
    import torch

    return torch.linspace(cfg.x_min, cfg.x_max, cfg.n_test, dtype=dtype).unsqueeze(1)


def grid_extrap(cfg: Config, dtype=None):
    """`[2 n_extrap, 1]`: n_extrap evenly spaced points on [x_min - margin, x_min), then as
    many on (x_max, x_max + margin]; the training interval's ends are excluded."""
    import torch

    n, margin = cfg.n_extrap, cfg.extrap_margin
    left = torch.linspace(cfg.x_min - margin, cfg.x_min, n + 1, dtype=dtype)[:-1]
    right = torch.linspace(cfg.x_max, cfg.x_max + margin, n + 1, dtype=dtype)[1:]
    return torch.cat([left, right]).unsqueeze(1)


class Capacity(Study):
    name = "capacity"
    learnable_activations = "trained"
    title = "Representational capacity"
    Config = Config
    param_columns = ("target", "depth", "width", "lr", "optimizer", "steps")

    def extra_params(self, config: Config) -> dict[str, Any]:
        """Trial parameters beyond the protocol's, present only when not at their default, so
        that the protocol's trial keys (and stored results) stay as they are."""
        extra = init_params(config)
        if config.until != "steps":
            extra["until"] = config.until
            extra["patience"] = config.patience
            extra["min_improvement"] = config.min_improvement
            if config.learned_below != Config.model_fields["learned_below"].default:
                extra["learned_below"] = config.learned_below
        return extra

    def columns(self, config: Config) -> tuple[str, ...]:
        return (*self.param_columns, *self.extra_params(config))

    def trials(self, config: Config, activations: list[str], seeds: int) -> list[Trial]:
        extra = self.extra_params(config)
        return [
            Trial(
                self.name,
                act,
                seed,
                {
                    "target": target,
                    "depth": config.depth,
                    "width": config.width,
                    "lr": config.lr,
                    "optimizer": config.optimizer,
                    "steps": config.steps,
                    **extra,
                },
            )
            for target in config.targets
            for act in activations
            for seed in range(seeds)
        ]

    def batch_key(self, trial: Trial) -> tuple:
        # The target only changes y: trials of every target share one stack.
        return tuple(sorted((k, v) for k, v in trial.params.items() if k != "target"))

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        import torch

        from actlab.engine import DivergenceRule, layer_sizes, make_optimizer, train_regression
        from actlab.engine.monitors import Plateau

        cfg: Config = ctx.config
        p = trials[0].params
        dtype = ctx.torch_dtype
        sizes = layer_sizes(1, p["width"], p["depth"])
        model = build_stack(trials, ctx, sizes, p.get("init", DEFAULT_INIT))
        grids = {
            "train": grid_train(cfg, dtype),
            "test": grid_test(cfg, dtype),
            "extrap": grid_extrap(cfg, dtype),
        }
        # y per member, [M, n, 1]: members may have different targets.
        ys = {
            k: torch.stack([target_fn(t.params["target"])(x) for t in trials]).to(ctx.device)
            for k, x in grids.items()
        }
        xs = {k: x.to(ctx.device) for k, x in grids.items()}
        optimizer = make_optimizer(p["optimizer"], model, p["lr"])
        line = cfg.learned_below * ys["train"].double().var(dim=1, unbiased=False).squeeze(1)
        # With until = "steps" the monitor only watches: every run takes every step.
        plateau = Plateau(
            cfg.patience,
            cfg.min_improvement,
            stop=p.get("until") == "plateau",
            stop_below=line,
        )
        result = train_regression(
            model,
            xs["train"],
            ys["train"],
            optimizer,
            p["steps"],
            DivergenceRule(),
            monitors=[plateau],
        )
        plateaued = plateau.plateaued.cpu().tolist()
        fitted = (torch.as_tensor(result.loss_after, device=line.device) < line).cpu().tolist()
        variances = ys["test"].double().var(dim=1, unbiased=False).squeeze(1).cpu().tolist()
        with torch.no_grad():
            outputs = {k: model.forward(xs[k]) for k in ("test", "extrap")}
            test_mse = model.mse(outputs["test"], ys["test"]).double().cpu().tolist()
            extrap_mse = model.mse(outputs["extrap"], ys["extrap"]).double().cpu().tolist()
            preds = {k: v.squeeze(2).double().cpu().tolist() for k, v in outputs.items()}
        rows = []
        for m in range(len(trials)):
            diverged = bool(result.diverged[m])
            trial_rows = [
                {"metric": "test_mse", "value": nan_if(diverged, test_mse[m])},
                {"metric": "extrap_mse", "value": nan_if(diverged, extrap_mse[m])},
                {"metric": "train_mse", "value": nan_if(diverged, result.loss_after[m])},
                {"metric": "diverged", "value": float(diverged)},
                {"metric": "steps_completed", "value": float(result.steps_completed[m])},
                {"metric": "ended_plateau", "value": nan_if(diverged, plateaued[m])},
                {"metric": "fitted", "value": nan_if(diverged, fitted[m])},
                {"metric": "target_variance", "value": variances[m]},
            ]
            trial_rows += learned_rows(model, m, diverged)
            for metric, key in (("prediction", "test"), ("extrap_prediction", "extrap")):
                trial_rows += [
                    {"metric": metric, "step": i, "value": nan_if(diverged, v)}
                    for i, v in enumerate(preds[key][m])
                ]
            rows.append(trial_rows)
        return rows

    def summarize(self, results):
        return summarize(results)

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        cfg: Config = rctx.config
        activations = [a for a in rctx.activations if a in set(summary["cells"]["activation"])]
        targets = [t for t in cfg.targets if t in set(summary["cells"]["target"])]
        heatmap = plot_heatmaps(
            summary["cells"], activations, targets, rctx.seeds, figure_dir / "capacity_heatmap.png"
        )
        predictions = plot_predictions(
            summary["predictions"],
            activations,
            targets,
            cfg,
            figure_dir / "capacity_predictions.png",
        )
        markdown = report_markdown(
            summary, activations, targets, rctx, heatmap.name, predictions.name
        )
        return Section(self.title, markdown, [heatmap, predictions])

    property_specs = (
        PropertySpec(
            "fit (interpolation)",
            "log10 test MSE inside the training interval, per target",
            "lower",
            settings="targets",
            situation="the most accurate fit inside the data range",
        ),
        PropertySpec(
            "extrapolation",
            "log10 MSE outside the training interval, per target",
            "lower",
            settings="targets",
            situation="predictions outside the data range",
            # a prediction outside the data is no use from a network that cannot fit inside
            rests_on=("fit (interpolation)",),
        ),
    )

    def limits(self, config: Config) -> dict[str, str]:
        if config.until != "steps":
            return {}
        words = (
            f"a fixed budget of {config.steps} {OPTIMIZER_NAMES[config.optimizer]} steps: a "
            "network still at the target's variance may not have trained in time, so a poor "
            "fit is not shown to be a limit of what the activation can represent (until = "
            '"plateau" tells "cannot" from "not yet")'
        )
        return {spec.name: words for spec in self.property_specs}

    def conditions(self, config: Config) -> dict[str, str]:
        """E.g. "Adam at learning rate 0.001, 500 steps, depth 5, width 64, Xavier uniform
        init, 200 training points on [-2, 2], targets sin/abs/step/sin10/cubic"."""
        cfg = config
        fit = (
            f"{OPTIMIZER_NAMES[cfg.optimizer]} at learning rate {cfg.lr:g}, {budget_words(cfg)}, "
            f"depth {cfg.depth}, width {cfg.width}, {init_words(cfg.init, cfg.sigma_b)}, "
            f"{cfg.n_train} training points on [{cfg.x_min:g}, {cfg.x_max:g}], "
            f"targets {'/'.join(cfg.targets)}"
        )
        left = f"[{cfg.x_min - cfg.extrap_margin:g}, {cfg.x_min:g})"
        right = f"({cfg.x_max:g}, {cfg.x_max + cfg.extrap_margin:g}]"
        return {
            self.property_specs[0].name: f"{fit}; tested on {cfg.n_test} points inside",
            self.property_specs[1].name: f"{fit}; tested on {left} and {right}",
        }

    def properties(self, summary, rctx: ReportContext):
        """Per seed and target: log10 of the test (extrapolation) MSE, an exact zero floored
        and flagged; a diverged run scores +inf, below every run that fitted anything."""
        rows = []
        for spec, metric in zip(self.property_specs, ("test_mse", "extrap_mse"), strict=True):
            for r in summary["trials"].itertuples():
                diverged = r.diverged == 1
                rows.append(
                    {
                        "property": spec.name,
                        "activation": r.activation,
                        "seed": int(r.seed),
                        "setting": f"target={r.target}",
                        "score": math.inf if diverged else getattr(r, f"log10_{metric}"),
                        "outcome": "diverged" if diverged else "",
                        "floored": getattr(r, metric) == 0,
                    }
                )
        return property_frame(rows)

    def claims(self, summary, rctx: ReportContext) -> list:
        claim = smooth_fits_smooth(summary, rctx)
        return [claim] if claim is not None else []

    def sheet_panels(self, summary, rctx: ReportContext, colours) -> list:
        cfg: Config = rctx.config
        activations = [a for a in rctx.activations if a in set(summary["cells"]["activation"])]
        targets = [t for t in cfg.targets if t in set(summary["cells"]["target"])]

        def heatmap(ax) -> None:
            draw_heatmap(
                ax,
                summary["cells"],
                activations,
                targets,
                "test_",
                rctx.seeds,
                "Capacity: test MSE",
            )

        return [heatmap]


def plateau_words(cfg: Config) -> str:
    """What a plateau is, in words: "the training loss fell by less than 1% in 100
    updates"."""
    if cfg.min_improvement:
        share = f"{100 * cfg.min_improvement:.3g}%"
        return f"the training loss fell by less than {share} in {cfg.patience} updates"
    return f"the training loss reached no new lowest in {cfg.patience} updates"


def budget_words(cfg: Config) -> str:
    """How long the networks train, e.g. "500 steps" or "to a plateau (...), at most 5000
    steps"."""
    if cfg.until == "plateau":
        return f"trained to a plateau ({plateau_words(cfg)}), at most {cfg.steps} steps"
    return f"{cfg.steps} steps"


# -- statistics ---------------------------------------------------------------------------------
RUN_METRICS = ("diverged", "ended_plateau", "fitted", "steps_completed", "target_variance")


def trial_metrics(results):
    """One row per trial: activation, target, seed and each scalar metric as a column, with
    log10 columns for the MSEs (NaN for a diverged trial; an MSE of exactly 0 floored).
    Runs stored before `ended_plateau`, `fitted` and `target_variance` existed have NaN
    there."""
    from actlab.stats import log10_floored

    wide = trial_table(
        results, "capacity", [*MSE_METRICS, *RUN_METRICS], ["activation", "target", "seed"]
    )
    for metric in MSE_METRICS:
        wide[f"log10_{metric}"], _ = log10_floored(wide[metric])
    return wide


def summarize(results) -> dict[str, Any]:
    """`cells`: per activation x target, mean and 95% interval over seeds of log10 test and
    extrapolation MSE (prefixed `test_` and `extrap_`, over the seeds that did not
    diverge), diverged count, seed count and exact zeros (`test_zeros`, `extrap_zeros`);
    how the runs that did not diverge ended (see the module docstring): `plateaued`,
    `improving` and `constant` counts (all 0 for runs stored before these existed),
    `steps_median` (their median steps) and `variance` (the target's, on the test grid).
    `predictions`: per activation x target x grid point, the mean prediction over the seeds
    that did not diverge. `trials`: the per-trial table the two are computed from."""
    from actlab.stats import describe

    wide = trial_metrics(results)
    keys = ["activation", "target"]
    ok = wide["diverged"] != 1
    flat = ok & (wide["ended_plateau"] == 1)
    wide["_plateaued"] = (flat & (wide["fitted"] == 1)).astype(int)
    wide["_constant"] = (flat & (wide["fitted"] == 0)).astype(int)
    wide["_improving"] = (ok & (wide["ended_plateau"] == 0)).astype(int)
    wide["_steps"] = wide["steps_completed"].where(ok)
    cells = (
        wide.groupby(keys, sort=False)
        .agg(
            diverged=("diverged", "sum"),
            n_seeds=("diverged", "count"),
            plateaued=("_plateaued", "sum"),
            improving=("_improving", "sum"),
            constant=("_constant", "sum"),
            steps_median=("_steps", "median"),
            variance=("target_variance", "mean"),
        )
        .reset_index()
    )
    wide = wide.drop(columns=["_plateaued", "_improving", "_constant", "_steps"])
    for metric, prefix in (("test_mse", "test_"), ("extrap_mse", "extrap_")):
        stats = describe(wide, keys, value=f"log10_{metric}")
        stats = stats.rename(columns={c: prefix + c for c in stats.columns if c not in keys})
        zeros = wide.groupby(keys, sort=False)[metric].agg(lambda v: int((v == 0).sum()))
        stats = stats.merge(zeros.rename(f"{prefix}zeros").reset_index(), on=keys)
        cells = cells.merge(stats, on=keys)
    df = results[(results["study"] == "capacity") & results["step"].notna()]
    df = df[df["metric"].isin(["prediction", "extrap_prediction"])]
    predictions = (
        df.groupby(["activation", "target", "metric", "step"], sort=False)["value"]
        .mean()
        .reset_index()
    )
    return {"cells": cells, "predictions": predictions, "trials": wide}


# -- text ---------------------------------------------------------------------------------------
def cell_text(row, seeds: int, *, newline: str = " ") -> str:
    """Geometric mean MSE of a cell (over its seeds that did not diverge), with its 95%
    interval when there is one, its diverged seeds, those still improving when the budget
    ran out (their MSE is an upper bound, not the network's capacity) and those resting at
    a constant output."""
    prefix = row["_prefix"]
    mean = row[f"{prefix}mean"]
    n_div, n_seeds = int(row["diverged"]), int(row["n_seeds"])
    if not math.isfinite(mean):
        return f"diverged ({n_div} of {n_seeds})" if n_div else "–"
    text = sci(10**mean)
    low, high = row[f"{prefix}ci_low"], row[f"{prefix}ci_high"]
    if seeds > 1 and math.isfinite(low) and math.isfinite(high):
        text += f"{newline}[{sci(10**low)}, {sci(10**high)}]"
    if n_div:
        text += f"{newline}({n_div} of {n_seeds} diverged)"
    improving, constant = int(row.get("improving", 0)), int(row.get("constant", 0))
    if improving:
        text += f"{newline}({improving} of {n_seeds} still improving)"
    if constant:
        text += f"{newline}({constant} of {n_seeds} at a constant output)"
    zeros = int(row.get(f"{prefix}zeros", 0))
    if zeros:
        text += f"{newline}({zeros} exact zero(s), floored)"
    return text


def ended_text(row, cfg: Config) -> str:
    """How a cell's runs ended: '6 plateaued (median 850 steps)', '2 plateaued, 4 still
    improving', '3 at a constant output, 1 diverged'; '–' for runs stored without the
    record."""
    counts = [
        (int(row["plateaued"]), "plateaued"),
        (int(row["improving"]), "still improving"),
        (int(row["constant"]), "at a constant output"),
        (int(row["diverged"]), "diverged"),
    ]
    text = ", ".join(f"{n} {what}" for n, what in counts if n)
    if not text:
        return "–"
    if cfg.until == "plateau" and math.isfinite(row["steps_median"]):
        text += f" (median {row['steps_median']:g} steps)"
    return text


def cell_lookup(cells, prefix: str):
    table = cells.copy()
    table["_prefix"] = prefix
    return table.set_index(["activation", "target"])


def mse_table(cells, activations, targets, prefix: str, seeds: int, text=None) -> list[str]:
    """A markdown table, activations by targets; `text(row)` fills a cell (default: its
    MSE, cell_text)."""
    table = cell_lookup(cells, prefix)
    text = text or (lambda row: cell_text(row, seeds))
    lines = [
        "| activation | " + " | ".join(targets) + " |",
        "|---" * (len(targets) + 1) + "|",
    ]
    for act in activations:
        texts = [text(table.loc[(act, t)]) if (act, t) in table.index else "–" for t in targets]
        lines.append(f"| {act} | " + " | ".join(texts) + " |")
    return lines


def report_markdown(
    summary, activations, targets, rctx: ReportContext, heatmap: str, predictions: str
) -> str:
    cfg: Config = rctx.config
    cells = summary["cells"]
    one_seed = rctx.seeds == 1
    target_list = ", ".join(f"{t} = {TARGETS[t][0]}" for t in targets)
    interval = f"[{cfg.x_min:g}, {cfg.x_max:g}]"
    left = f"[{cfg.x_min - cfg.extrap_margin:g}, {cfg.x_min:g})"
    right = f"({cfg.x_max:g}, {cfg.x_max + cfg.extrap_margin:g}]"
    with_ci = "" if one_seed else ", with 95% interval"
    lines = [
        "**Question.** How well does a small network with each activation fit smooth, "
        "kinked, steep and oscillating functions, and what does it predict just outside "
        "the interval it was trained on?",
        "",
        f"**Method.** Targets ({target_list}) on x in {interval}. Networks of depth "
        f"{cfg.depth}, width {cfg.width}, {init_words(cfg.init, cfg.sigma_b)}, trained "
        f"full batch with {OPTIMIZER_NAMES[cfg.optimizer]} (learning rate {cfg.lr:g}), "
        f"{budget_words(cfg)}, on {cfg.n_train} evenly spaced points of {interval}, MSE "
        f"loss. Test MSE (the protocol's metric) on {cfg.n_test} evenly spaced points of the "
        f"same interval measures interpolation only; extrapolation MSE on {cfg.n_extrap} "
        f"evenly spaced points on each of {left} and {right}. A run is on a plateau when "
        f"{plateau_words(cfg)}. It ended *plateaued* when it was on one with its training "
        f"MSE below {cfg.learned_below:g} x the target's variance: its MSE is the fit this "
        "network reaches under this training. It ended *at a constant output* when it was "
        "on one at or above that line, about where a constant output sits: it cannot "
        "represent the target, or had not yet left that plateau, and the run cannot tell "
        + ("which (such a run trains on to the budget). " if cfg.until == "plateau" else "which. ")
        + "A run not on a plateau when the budget ran out was *still improving*: it did not "
        "train in time, and its MSE says how far it got, not what the network can represent. "
        "A run whose loss becomes NaN, infinite or "
        "exceeds 1e6 is marked diverged: counted in every table, left out of the MSE means "
        f"and ranked below every run that fitted anything. {rctx.seeds} seed(s) per setting; "
        "within a seed all activations and targets start from the same weights.",
        "",
        f"![Test and extrapolation MSE](figures/{heatmap})",
        "",
        f"![Predictions per target](figures/{predictions})",
        "",
    ]
    if one_seed:
        lines += [
            "*One seed: these numbers are single samples; they carry no error bar and no "
            "ranking is tested.*",
            "",
        ]
    lines += [
        f"**Test MSE (interpolation, on {interval})**, geometric mean over seeds{with_ci}:",
        "",
        *mse_table(cells, activations, targets, "test_", rctx.seeds),
        "",
        f"**Extrapolation MSE (on {left} and {right})**, geometric mean over seeds{with_ci}:",
        "",
        *mse_table(cells, activations, targets, "extrap_", rctx.seeds),
        "",
    ]
    if (cells["plateaued"] + cells["improving"] + cells["constant"]).sum():
        lines += [
            f"**How training ended** (budget {cfg.steps} steps; on a plateau: "
            f"{plateau_words(cfg)}):",
            "",
            *mse_table(
                cells, activations, targets, "test_", rctx.seeds, lambda r: ended_text(r, cfg)
            ),
            "",
        ]
    lines += ["**What the data says.**", ""]
    lines += [f"- {s}" for s in findings(summary, activations, targets, rctx.seeds, cfg)]
    return "\n".join(lines)


def findings(summary, activations, targets, seeds: int, cfg: Config | None = None) -> list[str]:
    """Sentences computed from the results; nothing here is written in advance. Each
    target's best-vs-runner-up comparison is one test of a family (the targets), adjusted
    by Holm's method. A diverged run is the worst outcome: an activation with diverged seeds
    on a target ranks below every one without, and a mean over the seeds that survived
    says so. A run still improving when its budget ran out is never called unable to fit."""
    from actlab.stats import paired_by_seed, versus_runner_up, with_holm

    cells, wide = summary["cells"], summary["trials"]
    cells = cells[cells["activation"].isin(activations)]
    wide = wide[wide["activation"].isin(activations)]
    out = []
    pending = []  # (index in out, best, runner, sentence start, comparison)
    for target in targets:
        at = cells[(cells["target"] == target) & cells["test_mean"].notna()]
        at = at.sort_values(["diverged", "test_mean"], kind="stable")
        if at.empty:
            out.append(f"{target}: every run diverged; nothing to compare.")
            continue
        best = at.iloc[0]
        sentence = (
            f"{target} ({TARGETS[target][0]}): lowest geometric-mean test MSE with "
            f"{best['activation']} ({sci(10 ** best['test_mean'])}{survivors(best)})"
        )
        if len(at) == 1:
            out.append(sentence + "; no other activation has a valid run.")
            continue
        runner = at.iloc[1]
        sentence += (
            f", then {runner['activation']} ({sci(10 ** runner['test_mean'])}{survivors(runner)})"
        )
        if at["diverged"].any():
            sentence += " (an activation with diverged seeds ranks below every one without)"
        if seeds == 1:
            out.append(sentence + "; one seed, so the ranking is not tested.")
            continue
        at_target = wide[wide["target"] == target]
        c = paired_by_seed(at_target, "log10_test_mse", best["activation"], runner["activation"])
        pending.append((len(out), best["activation"], runner["activation"], sentence, c))
        out.append("")
    family = f"{len(pending)} targets"
    for (i, best, runner, sentence, _), c in zip(
        pending, with_holm([p[-1] for p in pending]), strict=True
    ):
        out[i] = f"{sentence}: {versus_runner_up(best, runner, c, family=family)}."

    out += training_findings(cells, activations, targets, cfg)

    # Hardest and easiest target, by geometric mean over activations and seeds.
    valid = wide[wide["log10_test_mse"].notna()]
    n_div = int((wide["diverged"] == 1).sum())
    over = (
        f"the {len(valid)} of {len(wide)} runs that did not diverge"
        if n_div
        else "activations and seeds"
    )
    if valid["target"].nunique() > 1:
        per_target = valid.groupby("target")["log10_test_mse"].mean().sort_values()
        out.append(
            f"Hardest target to fit: {per_target.index[-1]} (geometric mean test MSE over "
            f"{over} {sci(10 ** per_target.iloc[-1])}); easiest: "
            f"{per_target.index[0]} ({sci(10 ** per_target.iloc[0])}); descriptive, untested."
        )

    # Extrapolation, judged on the extrapolation error itself; diverged activations last.
    outside = valid[valid["log10_extrap_mse"].notna()]
    if not outside.empty:
        per_act = outside.groupby("activation")["log10_extrap_mse"].mean()
        runs = wide.groupby("activation")["diverged"].agg(["sum", "count"])
        order = sorted(per_act.index, key=lambda a: (runs.loc[a, "sum"] > 0, per_act[a]))
        listed = ", ".join(
            f"{act} {sci(10 ** per_act[act])}"
            + (
                f" (over the {int(runs.loc[act, 'count'] - runs.loc[act, 'sum'])} of "
                f"{int(runs.loc[act, 'count'])} runs that did not diverge)"
                if runs.loc[act, "sum"]
                else ""
            )
            for act in order
        )
        out.append(
            "Outside the training interval, geometric-mean extrapolation MSE over targets and "
            f"seeds, lowest first (an activation with diverged runs after every one without): "
            f"{listed} (descriptive; the tested ranking is the extrapolation row of the "
            "best-and-worst table)."
        )

    div = wide[wide["diverged"] == 1]
    if div.empty:
        out.append(f"No run diverged ({len(wide)} runs).")
    else:
        parts = [
            f"{act} on {target} ({len(g)} of {seeds})"
            for (act, target), g in div.groupby(["activation", "target"], sort=False)
        ]
        out.append(
            f"{len(div)} of {len(wide)} runs diverged and are left out of the statistics "
            "(counted here and in every table; ranked last in the verdicts): "
            + "; ".join(parts)
            + "."
        )
    return out


def survivors(row) -> str:
    """'; over the 4 of 6 seeds that did not diverge' for a cell with diverged seeds, and
    '; 5 of 6 still improving' for one whose budget ran out before some seeds plateaued
    (their MSE is how far they got)."""
    n_div, n = int(row["diverged"]), int(row["n_seeds"])
    text = f"; over the {n - n_div} of {n} seeds that did not diverge" if n_div else ""
    improving = int(row.get("improving", 0))
    return text + (f"; {improving} of {n} still improving" if improving else "")


def training_findings(cells, activations, targets, cfg: Config | None) -> list[str]:
    """How training ended, cell by cell (activation x target): did not train in time
    (budget ran out while the loss still fell), at a constant output (cannot represent the
    target, or had not left that plateau: undecided), and plateaued (the fit these networks
    reach under this training). Nothing for runs stored without the record."""
    if not (cells["plateaued"] + cells["improving"] + cells["constant"]).sum():
        return []
    cells = cells[cells["activation"].isin(activations) & cells["target"].isin(targets)]
    cells = cells.assign(
        _a=cells["activation"].map({a: i for i, a in enumerate(activations)}),
        _t=cells["target"].map({t: j for j, t in enumerate(targets)}),
    ).sort_values(["_a", "_t"])
    budget = f"{cfg.steps} steps" if cfg else "the step budget"
    plateau = plateau_words(cfg) if cfg else "the training loss stopped falling"
    line = f"{cfg.learned_below:g}" if cfg else "0.5"

    def listed(rows, column: str) -> str:
        return "; ".join(
            f"{r.activation} on {r.target} ({int(getattr(r, column))} of {int(r.n_seeds)} seeds)"
            for r in rows.itertuples()
        )

    out = []
    late = cells[cells["improving"] > 0]
    if not late.empty:
        out.append(
            f"Did not train in time: the budget of {budget} ran out while the training loss "
            f"was still falling (not on a plateau, where {plateau}), so their MSE says how far "
            f"training got, not what the network can represent: {listed(late, 'improving')}."
        )
    constant = cells[cells["constant"] > 0]
    if not constant.empty:
        out.append(
            f"At a constant output when training ended (on a plateau with a training MSE of "
            f"{line} x the target's variance or more): these networks either cannot represent "
            "the target or had not yet left the plateau where a network outputs about its "
            f"mean, and these runs cannot tell which: {listed(constant, 'constant')}."
        )
    done = cells[
        (cells["plateaued"] > 0) & (cells["plateaued"] + cells["diverged"] == cells["n_seeds"])
    ]
    if not done.empty:
        out.append(
            f"Plateaued in every seed that did not diverge ({len(done)} of {len(cells)} "
            f"activation-target pairs): their progress had slowed until {plateau}, so their "
            "test MSE is the fit these networks reach trained this way, and they cannot "
            "represent the target much more closely under this training (a slow fall may go "
            "on; another optimiser or schedule may go lower). The others are listed above, or "
            "mix endings (see the table)."
        )
    return out


# -- claims ---------------------------------------------------------------------------------------
SMOOTH_TARGETS = ("sin", "step", "sin10", "cubic")  # every target but |x|, which has a kink


def smooth_fits_smooth(summary, rctx: ReportContext):
    """ "Smooth activations fit smooth functions better than ReLU", tested: per seed, the
    log10 test MSE on the smooth targets (mean over targets and activations) of the
    unbounded activations with a kink (ReLU and kin) minus that of the smooth ReLU variants
    (GELU, Swish, ...; not Sigmoid or Tanh, which are no variant of ReLU), by a paired sign-flip test over seeds; a positive difference supports
    the claim. A diverged run is the worst fit (+inf): a seed where one diverged has an
    infinite mean and leaves the test, and the measurement says how many seeds did."""
    import numpy as np

    from actlab.activations import INF, is_affine, is_smooth_rectifier
    from actlab.stats import paired_comparison
    from actlab.studies.base import Claim

    specs, wide = rctx.specs, summary["trials"]
    acts = [a for a in rctx.activations if a in specs and not is_affine(specs[a])]
    # The claim sets the smooth variants of ReLU against ReLU and its kinked kin: bounded
    # smooth functions (Sigmoid, Tanh) are neither, and would decide it on their own.
    smooth = [a for a in acts if is_smooth_rectifier(specs[a])]
    rough = [a for a in acts if not specs[a].smooth and specs[a].output_range[1] == INF]
    on = wide[wide["target"].isin(SMOOTH_TARGETS) & wide["activation"].isin(acts)]
    if not smooth or not rough or on.empty:
        return None
    on = on.assign(_log=np.where(on["diverged"] == 1, np.inf, on["log10_test_mse"]))
    per = on.groupby(["seed", "activation"])["_log"].mean().unstack("activation")
    r, sm = per.reindex(columns=rough).mean(axis=1), per.reindex(columns=smooth).mean(axis=1)
    targets = ", ".join(t for t in SMOOTH_TARGETS if t in set(on["target"]))
    lost = int((~(np.isfinite(r) & np.isfinite(sm))).sum())
    left_out = f" ({lost} of {len(per)} seeds with a diverged run left out)" if lost else ""
    return Claim(
        "Smooth activations fit smooth functions better than ReLU.",
        f"log10 test MSE on the smooth targets ({targets}), mean over targets, per seed: "
        f"{', '.join(rough)} minus {', '.join(smooth)}; above 0 supports{left_out}",
        paired_comparison(r, sm),
        supports=1,
        conditions=Capacity().conditions(rctx.config)["fit (interpolation)"],
    )


# -- figures ------------------------------------------------------------------------------------
def draw_heatmap(ax, cells, activations, targets, prefix: str, seeds: int, title: str):
    """One heatmap of log10 MSE (rows activations, columns targets) annotated with the
    geometric-mean MSE and its interval; a cell where most seeds diverged is grey, like one
    where all did (a diverged run is the worst outcome, not a gap). Returns the image for a
    colour bar."""
    import numpy as np

    table = cell_lookup(cells, prefix)
    grid = np.full((len(activations), len(targets)), np.nan)
    for i, act in enumerate(activations):
        for j, t in enumerate(targets):
            if (act, t) in table.index:
                row = table.loc[(act, t)]
                if 2 * row["diverged"] <= row["n_seeds"]:
                    grid[i, j] = row[f"{prefix}mean"]
    finite = grid[np.isfinite(grid)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    masked = np.ma.masked_invalid(grid)
    image = ax.imshow(masked, cmap="viridis", vmin=lo, vmax=hi, aspect="auto")
    ax.set_facecolor("0.85")  # diverged / missing cells
    ax.set_xticks(range(len(targets)), [f"{t}\n{TARGETS[t][0]}" for t in targets], fontsize=8)
    ax.set_yticks(range(len(activations)), activations, fontsize=8)
    for i, act in enumerate(activations):
        for j, t in enumerate(targets):
            if (act, t) not in table.index:
                continue
            text = cell_text(table.loc[(act, t)], seeds, newline="\n")
            value = grid[i, j]
            dark = math.isfinite(value) and (value - lo) / (hi - lo) < 0.6
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=6.5 if seeds > 1 else 7.5,
                color="white" if dark else "black",
            )
    ax.set_title(title, fontsize=10)
    return image


def plot_heatmaps(cells, activations, targets, seeds: int, path: Path) -> Path:
    from actlab.report.figures import pyplot, save

    plt = pyplot()
    width = 1.25 * len(targets) + 2.0
    height = 0.55 * len(activations) + 1.8
    fig, axes = plt.subplots(1, 2, figsize=(2 * width, height), squeeze=False)
    for ax, prefix, title in (
        (axes[0, 0], "test_", "log10 test MSE (interpolation)"),
        (axes[0, 1], "extrap_", "log10 extrapolation MSE"),
    ):
        image = draw_heatmap(ax, cells, activations, targets, prefix, seeds, title)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="log10 MSE")
    note = "geometric mean over seeds [95% interval]" if seeds > 1 else "one seed"
    fig.suptitle(f"Representational capacity: MSE per activation and target ({note})")
    fig.tight_layout()
    return save(fig, path)


def plot_predictions(predictions, activations, targets, cfg: Config, path: Path) -> Path:
    import numpy as np
    import torch

    from actlab.report.figures import activation_colours, pyplot, save

    plt = pyplot()
    cols = min(3, len(targets))
    rows = math.ceil(len(targets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 3.8 * rows), squeeze=False)
    colours = activation_colours(activations)
    x_test = grid_test(cfg, torch.float64).squeeze(1).numpy()
    x_ext = grid_extrap(cfg, torch.float64).squeeze(1).numpy()
    n = cfg.n_extrap
    lo, hi = cfg.x_min - cfg.extrap_margin, cfg.x_max + cfg.extrap_margin
    dense = torch.linspace(lo, hi, 1201, dtype=torch.float64)
    for ax, target in zip(axes.flat, targets, strict=False):
        truth = target_fn(target)(dense).numpy()
        ax.axvspan(cfg.x_min, cfg.x_max, color="0.92", zorder=0, label="training interval")
        ax.plot(dense.numpy(), truth, color="black", lw=2.2, ls="--", label="target", zorder=3)
        for act in activations:
            at = predictions[(predictions["activation"] == act) & (predictions["target"] == target)]
            test = at[at["metric"] == "prediction"].sort_values("step")
            ext = at[at["metric"] == "extrap_prediction"].sort_values("step")
            style = {"color": colours[act], "lw": 1.1, "zorder": 4}
            if len(test) == len(x_test):
                ax.plot(x_test, test["value"].to_numpy(), label=act, **style)
            if len(ext) == len(x_ext):
                values = ext["value"].to_numpy()
                ax.plot(x_ext[:n], values[:n], **style)
                ax.plot(x_ext[n:], values[n:], **style)
        span = float(np.max(truth) - np.min(truth)) or 1.0
        ax.set_ylim(np.min(truth) - 0.3 * span, np.max(truth) + 0.3 * span)
        ax.set_xlim(lo, hi)
        ax.set_title(f"{target}: {TARGETS[target][0]}", fontsize=10)
        ax.set_xlabel("x")
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(targets) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False
    )
    fig.suptitle(
        "Predictions (mean over seeds that did not diverge); shaded: training interval, "
        "outside it: extrapolation"
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save(fig, path)


STUDY = Capacity()
