"""The signal_propagation study's settings, constants and points: the (sigma_w, sigma_b) at
which networks are measured, their labels and their titles."""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = "signal_propagation"
XAVIER = "xavier_uniform"
STATUS_CODES = {"stable": 0, "marginally stable": 1, "neutral": 2, "unstable": 3, "none": 4}
STATUS_NAMES = {v: k for k, v in STATUS_CODES.items()}
USABLE = (0, 1, 2)
Q_LIMIT = 1e300  # the q-map trajectory stops (NaN) beyond this

# The phase-diagram figure's grid (theory.phase_diagram) and the q* grid that traces each
# activation's edge of chaos.
PHASE_SIGMA_W = tuple(float(x) for x in np.round(np.linspace(0.5, 3.0, 26), 10))
PHASE_SIGMA_B = tuple(float(x) for x in np.round(np.linspace(0.0, 0.5, 11), 10))
EDGE_Q = tuple(float(q) for q in np.geomspace(1e-5, 1e2, 56))


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sigma_w: float = Field(gt=0, le=100)
    sigma_b: float = Field(0.0, ge=0, le=100)


def default_points() -> list[Point]:
    return [
        Point(sigma_w=1.0, sigma_b=0.0),
        Point(sigma_w=math.sqrt(2.0), sigma_b=0.0),
        Point(sigma_w=1.5, sigma_b=0.05),
    ]


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(1000, ge=1, le=16384, description="hidden width of the Gaussian networks")
    depth: int = Field(40, ge=1, le=1000, description="hidden layers of the Gaussian networks")
    n_samples: int = Field(64, ge=1, le=100_000, description="inputs per network")
    points: list[Point] = Field(
        default_factory=default_points,
        description="(sigma_w, sigma_b) at which every activation is measured",
    )
    critical_sigma_b: list[float] = Field(
        [0.05],
        description="each activation is also measured at its own edge-of-chaos sigma_w at "
        "these sigma_b (where theory finds a usable one)",
    )
    xavier: bool = Field(True, description="also measure the tutorial's Xavier-uniform networks")
    xavier_width: int = Field(64, ge=1, le=16384)
    xavier_depth: int = Field(20, ge=1, le=1000)
    tolerance: float = Field(
        0.05, gt=0, lt=1, description="measured/predicted within 1 +- this counts as agreement"
    )
    phase_activation: str = Field(
        "Tanh", description="whose chi_1 is the phase-diagram figure's background"
    )

    @field_validator("critical_sigma_b")
    @classmethod
    def _sane_sigma_b(cls, values: list[float]) -> list[float]:
        bad = [v for v in values if not (math.isfinite(v) and 0 <= v <= 100)]
        if bad:
            raise ValueError(f"critical_sigma_b values must be in [0, 100] (got {bad[0]})")
        return values

    @model_validator(mode="after")
    def _distinct_points(self) -> Config:
        labels = point_labels(self)
        if len(set(labels)) != len(labels):
            dup = next(x for x in labels if labels.count(x) > 1)
            raise ValueError(f"point '{dup}' is listed twice; list each point once")
        return self


# -- points ------------------------------------------------------------------------------------
def fixed_label(sigma_w: float, sigma_b: float) -> str:
    return f"sw={sigma_w:g},sb={sigma_b:g}"


def critical_label(sigma_b: float) -> str:
    return f"critical,sb={sigma_b:g}"


def point_labels(cfg: Config) -> list[str]:
    """Every point's label, in the report's order."""
    labels = [fixed_label(p.sigma_w, p.sigma_b) for p in cfg.points]
    labels += [critical_label(sb) for sb in cfg.critical_sigma_b]
    return labels + ([XAVIER] if cfg.xavier else [])


def point_title(label: str, cfg: Config | None = None) -> str:
    """A label in words (the report's)."""
    if label == XAVIER:
        shape = f", width {cfg.xavier_width}, depth {cfg.xavier_depth}" if cfg else ""
        return f"Xavier-uniform{shape}"
    if label.startswith("critical,"):
        return f"critical σw at σb = {label.split('sb=')[1]}"
    sw, sb = (part.split("=")[1] for part in label.split(","))
    return f"σw = {sw}, σb = {sb}"
