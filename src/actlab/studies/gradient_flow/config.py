"""The gradient_flow study's settings and the limits its words are judged by."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from actlab.studies.base import InitName

# A gradient that shrinks (grows) by more than this factor across the hidden layers has
# vanished (exploded): three decades, far outside seed noise at any depth of the protocol.
DECAY_LIMIT = 1e3
# The protocol's interpretation of last/first, checked top to bottom.
RATIO_BANDS = (
    (1e6, "severe vanishing"),
    (100.0, "significant decay"),
    (10.0, "moderate decay"),
    (0.1, "stable"),
)


def ratio_band(ratio: float) -> str:
    if math.isnan(ratio):
        return "undefined"
    for threshold, label in RATIO_BANDS:
        if ratio > threshold:
            return label
    return "amplification"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    depths: list[int] = Field([5, 10, 20, 50], min_length=1)
    width: int = Field(64, ge=1, le=8192)
    in_dim: int = Field(1, ge=1, le=8192)
    n_samples: int = Field(32, ge=1, le=1_000_000)
    init: InitName | list[InitName] = Field(
        "xavier_uniform",
        description="one initialisation for every activation, or a list of one and "
        "'critical' (each activation also at its edge of chaos, where theory gives one)",
    )
    sigma_b: float = Field(
        0.0, ge=0, le=10, description="bias standard deviation for init = 'critical'"
    )
    vanish_threshold: float = Field(
        1e-8,
        gt=0,
        description="a trial's gradients have collapsed when every layer's mean |dW| is below this",
    )

    report_depth: int = Field(20, ge=1, description="depth of the report's ratio table")

    def model_post_init(self, _context: Any) -> None:
        bad = [d for d in self.depths if not 1 <= d <= 1000]
        if bad:
            raise ValueError(f"depths must be between 1 and 1000 (got {bad[0]})")
        inits = self.inits
        if (
            not inits
            or len(set(inits)) != len(inits)
            or (len(inits) > 1 and (len(inits) != 2 or inits[1] != "critical"))
        ):
            raise ValueError(
                "init must be one initialisation or a list of one and 'critical' "
                f'(got {self.init}); e.g. init = ["practice", "critical"]'
            )

    @property
    def inits(self) -> list[str]:
        return [self.init] if isinstance(self.init, str) else list(self.init)

    @property
    def main_init(self) -> str:
        return self.inits[0]
