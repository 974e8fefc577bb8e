"""The bench's settings: the user's model and data, and how each member is trained."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(description="module:attr or path/file.py:attr: a model factory")
    data: str = Field("digits", description="a built-in (digits, mnist1d) or module:attr")
    task: Literal["auto", "classification", "regression"] = Field(
        "auto", description="auto: classification for integer labels, else regression"
    )
    replace: list[str] = Field(
        default_factory=list,
        description="activation module types replaced when the factory takes no act_layer "
        "(default: the torch.nn activations)",
    )
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD's momentum")
    weight_decay: float = Field(0.0, ge=0)
    steps: int = Field(500, ge=1, le=10_000_000, description="optimiser steps per member")
    batch: int = Field(64, ge=1, le=1_000_000, description="training samples per step")
    clip: float | None = Field(None, gt=0, description="gradient norm clipped to, per member")
    eval_every: int = Field(50, ge=1, description="steps between test evaluations")
    loss_limit: float = Field(1e6, gt=0, description="loss that marks a member diverged")
    stack: bool = Field(True, description="stack an activation's seeds with torch.func")
    train: str | None = Field(
        None, description="module:attr: a train function (model, data, seed, device) -> metrics"
    )
