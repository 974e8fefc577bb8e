"""The mnist1d study's settings, and the published numbers it is held against."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from actlab.engine.architectures import NAMES as ARCHITECTURES

ArchitectureName = Literal[ARCHITECTURES]  # every registered architecture

# Test accuracies published with the data set: Greydanus & Kobak, "Scaling down deep
# learning" (2020, arXiv:2011.14439), and the table in the README of
# github.com/greydanus/mnist1d. Fractions.
PAPER = (
    ("logistic regression", None, 0.32),
    ("MLP", "mlp", 0.68),
    ("CNN", "cnn", 0.94),
    ("GRU", None, 0.91),
    ("human", None, 0.96),
)
PAPER_SOURCE = (
    'Greydanus & Kobak, "Scaling down deep learning" (2020, arXiv:2011.14439), the table '
    "in github.com/greydanus/mnist1d"
)
# Each of those numbers is one training run. The repository's classification notebook
# (notebooks/mnist1d-classification.ipynb) trains the same MLP and CNN with ReLU for 6,000
# steps from seed 42 and prints the final test accuracy of one run each: another single
# run by the authors, beside the published one. None for the other rows. Fractions.
NOTEBOOK = {"mlp": 0.651, "cnn": 0.923}
NOTEBOOK_STEPS = 6000
NOTEBOOK_SOURCE = (
    "the MNIST-1D repository's classification notebook (notebooks/mnist1d-classification"
    ".ipynb: the same models, 6,000 steps, seed 42)"
)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    architectures: list[ArchitectureName] = Field(
        default_factory=lambda: list(ARCHITECTURES), min_length=1
    )
    steps: int = Field(6000, ge=1, le=10_000_000, description="Adam steps per network")
    lr: float = Field(1e-2, gt=0)
    batch: int = Field(100, ge=1, le=1_000_000, description="training samples per step")
    eval_every: int = Field(250, ge=1, description="steps between test evaluations")
    loss_limit: float = Field(1e6, gt=0, description="loss that marks a run diverged")
    patch: int = Field(4, ge=1, description="samples per transformer token")
    holdout: int = Field(
        0,
        ge=0,
        description="training samples held out: networks train on the rest and are evaluated "
        "on these instead of the test set (a search selects on them, never on the test set)",
    )
    time_steps: bool = Field(
        True, description="time each activation's training step after training (step_time)"
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="the mnist1d package's dataset arguments, by its own names",
    )

    @field_validator("architectures")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError(f"architectures listed twice: {names}")
        return names

    @field_validator("data")
    @classmethod
    def _known_data_arguments(cls, data: dict[str, Any]) -> dict[str, Any]:
        from actlab.data import mnist1d_defaults, unknown_mnist1d_arguments

        problem = unknown_mnist1d_arguments(data)
        if problem:
            raise ValueError(problem)
        defaults = mnist1d_defaults()
        for name, value in data.items():
            default = defaults[name]
            kinds = (int, float) if isinstance(default, float) else (type(default),)
            if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, kinds):
                raise ValueError(
                    f"MNIST-1D data argument {name!r} takes a {type(default).__name__} like "
                    f"its default {default!r}, got {value!r}"
                )
        return data

    @model_validator(mode="after")
    def _shapes(self) -> Config:
        length = self.data_arguments()["final_seq_length"]
        if "transformer" in self.architectures and length % self.patch:
            raise ValueError(
                f"patch size {self.patch} does not divide the sequence length {length}; "
                "use a divisor of it (e.g. 4 or 5 for 40)"
            )
        train = round(self.data_arguments()["num_samples"] * self.data_arguments()["train_split"])
        if self.holdout >= train:
            raise ValueError(
                f"holdout {self.holdout} leaves none of the {train} training samples to train "
                "on; hold out fewer"
            )
        train -= self.holdout
        if self.batch > train:
            raise ValueError(
                f"batch {self.batch} is larger than the {train} training samples; lower batch"
            )
        return self

    def data_arguments(self) -> dict[str, Any]:
        """Every dataset argument: the package's defaults with `data` over them."""
        from actlab.data import mnist1d_defaults

        return {**mnist1d_defaults(), **self.data}

    def changed_data(self) -> dict[str, Any]:
        """The data arguments that differ from the package's defaults (the paper's set)."""
        from actlab.data import mnist1d_defaults

        defaults = mnist1d_defaults()
        return {k: v for k, v in self.data.items() if v != defaults[k]}

    def shape(self, architecture: str) -> dict[str, Any]:
        """The reference module's keyword arguments for this data set."""
        from actlab.engine.architectures import get_architecture

        length = self.data_arguments()["final_seq_length"]
        return get_architecture(architecture).shape_for(length, self.patch)
