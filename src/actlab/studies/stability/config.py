"""The stability study's settings, the states a run ends in, and the words for them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from actlab.studies.base import DEFAULT_INIT, OPTIMIZER_NAMES, InitName, init_words
from actlab.studies.capacity.config import MIN_IMPROVEMENT, PATIENCE, plateau_decides

# The states a trial ends in: studies/outcomes.py's four, with "stuck" split in two by
# capacity's plateau rule (capacity.config.plateaued_at_end): "improving" (shown as "still
# improving") is a stuck run whose loss was still falling when its step budget ran out.
# Runs stored before the split have no `still_improving` metric and stay stuck. A tie for
# a cell's most common state goes to the earlier one.
STATES = ("learned", "improving", "stuck", "failed", "diverged")
FINITE_STATES = ("learned", "improving", "stuck", "failed")
# A state in the report's words.
WORDS = {"improving": "still improving"}


def words(state: str) -> str:
    return WORDS.get(state, state)


def improving_words(whose: str = "its") -> str:
    """Capacity's plateau rule, as stability uses it: "its loss still fell by 1% or more in
    its last 100 updates" (capacity.config.plateau_words says the same of a plateau)."""
    return (
        f"{whose} loss still fell by {100 * MIN_IMPROVEMENT:.3g}% or more in {whose} last "
        f"{PATIENCE} updates"
    )


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
    # The initialisations `studies.base.initial_params` accepts (engine/init.py, "critical"
    # and "practice"); the protocol's is the first.
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


def judged(steps: int) -> bool:
    """Whether a run of `steps` updates is long enough for the plateau rule to tell "still
    improving" from "stuck" (capacity.config.plateau_decides); a shorter one stays stuck."""
    return plateau_decides(steps, PATIENCE)


def condition_words(cfg: Config) -> tuple[str, str]:
    """What the two properties hold under (learning rates, depths), e.g. "SGD at learning
    rates 0.001-1, 100 steps, depth 10, width 64, Xavier uniform init, sin(pi x) on 200
    points"."""
    data = f"sin(pi x) on {cfg.n_points} points"
    init = init_words(cfg.init, cfg.sigma_b)
    until = ", stopped once learned" if cfg.until == "learned" else ""
    lrs = sorted(cfg.lrs)
    rates = f"{lrs[0]:g}" if len(lrs) == 1 else f"{lrs[0]:g}-{lrs[-1]:g}"
    depths = sorted(cfg.depths)
    deep = f"{depths[0]}" if len(depths) == 1 else f"{depths[0]}-{depths[-1]}"
    return (
        f"{OPTIMIZER_NAMES[cfg.lr_optimizer]} at learning rates {rates}, "
        f"{cfg.lr_steps} steps{until}, depth {cfg.lr_depth}, width {cfg.width}, {init}, {data}",
        f"{OPTIMIZER_NAMES[cfg.depth_optimizer]} at learning rate {cfg.depth_lr:g}, "
        f"{cfg.depth_steps} steps{until}, depths {deep}, width {cfg.width}, {init}, {data}",
    )
