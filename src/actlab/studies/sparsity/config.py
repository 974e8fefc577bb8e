"""The sparsity study's settings and the names of its metrics."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LAYER_METRICS = ("sparsity", "dead_rate", "saturated_rate", "zero_slope_rate")
# Measured on the initial weights too (`<metric>_init`).
INIT_METRICS = ("dead_rate", "saturated_rate", "zero_slope_rate")
NETWORK_METRICS = (
    *LAYER_METRICS,
    *(f"{m}_init" for m in INIT_METRICS),
    "act_mean",
    "act_std",
    "final_loss",
)
LABELS = {
    "sparsity": "sparsity",
    "dead_rate": "units with output ~0 on every input",
    "saturated_rate": "saturated units",
    "zero_slope_rate": "dead units (zero slope on every input)",
}


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    depth: int = Field(10, ge=1, le=1000)
    width: int = Field(128, ge=1, le=8192)
    in_dim: int = Field(10, ge=1, le=8192)
    n_samples: int = Field(1000, ge=1, le=1_000_000)
    noise: float = Field(0.1, ge=0, description="std of the Gaussian noise added to the target")
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.1, gt=0, le=1e6, description="learning rate (high on purpose)")
    steps: int = Field(100, ge=1, le=1_000_000)
    zero_threshold: float = Field(
        1e-6, ge=0, description="|a| below this is an exact zero (protocol: 1e-6)"
    )
    saturation_threshold: float = Field(
        1e-3,
        gt=0,
        description="a unit is saturated when |f'(z)| is below this for every sample "
        "(1e-3: Sigmoid beyond |z| ~ 6.9, Tanh beyond |z| ~ 3.8, ELU below z ~ -6.9; "
        "LeakyReLU's slope 0.01 never counts)",
    )
    init: Literal["xavier_uniform", "practice"] = Field(
        "xavier_uniform",
        description="initial weights: the protocol's Xavier uniform for every activation, or "
        "each activation's customary one ('practice': He, LeCun or Xavier)",
    )
    learned_below: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="a run learned when its loss after training is below this fraction of "
        "the target's variance",
    )
    bins: int = Field(100, ge=1, le=100_000, description="histogram bins")
    clip: float = Field(5.0, gt=0, description="histogram range [-clip, clip]")
