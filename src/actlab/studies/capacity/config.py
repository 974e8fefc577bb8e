"""The capacity study's settings, its targets, and the plateau rule its words are judged by
("plateaued" / "still improving"), which stability reuses."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from actlab.studies.base import DEFAULT_INIT, OPTIMIZER_NAMES, InitName, init_words

# name -> (formula, function of a tensor). Tensor methods only: no torch import at load time.
TARGETS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "sin": ("sin(x)", lambda x: x.sin()),
    "abs": ("|x|", lambda x: x.abs()),
    "step": ("sigmoid(10x)", lambda x: (10 * x).sigmoid()),
    "sin10": ("sin(10x)", lambda x: (10 * x).sin()),
    "cubic": ("x^3", lambda x: x**3),
}

MSE_METRICS = ("test_mse", "extrap_mse", "train_mse")

# The plateau rule (engine.monitors.Plateau): a run's training loss has plateaued when
# PATIENCE updates have passed since it last fell below (1 - MIN_IMPROVEMENT) x the loss that
# last did so. The defaults of `patience` and `min_improvement` below, and the one home of
# the threshold by which stability tells a run still improving from a stuck one.
PATIENCE = 100
MIN_IMPROVEMENT = 0.01


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
        PATIENCE,
        ge=1,
        le=1_000_000,
        description="a plateau: this many updates without the training loss falling below "
        "(1 - min_improvement) x the loss that last did so",
    )
    min_improvement: float = Field(
        MIN_IMPROVEMENT, ge=0, lt=1, description="the relative fall that counts as improving"
    )
    learned_below: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="fitted: a training MSE below this fraction of the target's variance (a "
        "constant output scores 1); with until = 'plateau' only a fitted run stops on a plateau",
    )
    # The initialisations `studies.base.initial_params` accepts (engine/init.py, "critical"
    # and "practice"); the protocol's is the first.
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


def plateaued_at_end(
    losses, patience: int = PATIENCE, min_improvement: float = MIN_IMPROVEMENT
) -> bool:
    """engine.monitors.Plateau's verdict at the end of a run, from the losses it recorded
    (one per update, in order; NaN once stopped): `patience` or more updates had passed
    since the loss last fell below (1 - min_improvement) x its mark, the loss that last did
    so (the first recorded loss sets the mark). False is capacity's "still improving": the
    budget ran out while the loss still fell. A history of `patience` losses or fewer is
    never plateaued (the rule cannot hold in it): see `plateau_decides`."""
    mark, mark_step, n = math.inf, 0, 0
    for step, loss in enumerate(losses):
        loss = float(loss)
        if math.isnan(loss):
            break
        n = step + 1
        if loss < mark * (1 - min_improvement):
            mark, mark_step = loss, step
    return n - 1 - mark_step >= patience


def plateau_decides(updates: int, patience: int = PATIENCE) -> bool:
    """Whether the plateau rule can tell "plateaued" from "still improving" in a run of
    `updates` updates: only when it took more than `patience` of them (in a shorter one the
    rule cannot hold, whatever the loss does)."""
    return updates > patience


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


def condition_words(cfg: Config) -> tuple[str, str]:
    """What the two properties hold under (interpolation, extrapolation): e.g. "Adam at
    learning rate 0.001, 500 steps, depth 5, width 64, Xavier uniform init, 200 training
    points on [-2, 2], targets sin/abs/step/sin10/cubic; tested on 500 points inside"."""
    fit = (
        f"{OPTIMIZER_NAMES[cfg.optimizer]} at learning rate {cfg.lr:g}, {budget_words(cfg)}, "
        f"depth {cfg.depth}, width {cfg.width}, {init_words(cfg.init, cfg.sigma_b)}, "
        f"{cfg.n_train} training points on [{cfg.x_min:g}, {cfg.x_max:g}], "
        f"targets {'/'.join(cfg.targets)}"
    )
    left = f"[{cfg.x_min - cfg.extrap_margin:g}, {cfg.x_min:g})"
    right = f"({cfg.x_max:g}, {cfg.x_max + cfg.extrap_margin:g}]"
    return f"{fit}; tested on {cfg.n_test} points inside", f"{fit}; tested on {left} and {right}"
