"""The real_data study's settings, the bundled data sets it knows (shapes and class
counts, known up front) and the per-class split sizes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


@dataclass(frozen=True)
class DatasetInfo:
    loader: str  # the sklearn.datasets function; each reads files bundled with sklearn
    description: str
    features: int
    class_counts: tuple[int, ...]  # samples per class, label 0 first

    @property
    def samples(self) -> int:
        return sum(self.class_counts)

    @property
    def classes(self) -> int:
        return len(self.class_counts)

    @property
    def majority(self) -> float:
        """Share of the largest class: the accuracy of always guessing it."""
        return max(self.class_counts) / self.samples


# Shapes and class counts are known up front (tests check them against the loaded data),
# so planning and validation never need to load anything.
DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "load_digits",
        "handwritten digits, 8x8 pixels",
        64,
        (178, 182, 177, 183, 181, 182, 181, 179, 174, 180),
    ),
    "breast_cancer": DatasetInfo("load_breast_cancer", "Wisconsin breast cancer", 30, (212, 357)),
    "wine": DatasetInfo("load_wine", "wine cultivars", 13, (59, 71, 48)),
}

DatasetName = Literal["digits", "breast_cancer", "wine"]


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    datasets: list[DatasetName] = Field(["digits"], min_length=1)
    depths: list[int] = Field([1, 3, 6], min_length=1, description="hidden layers")
    width: int = Field(64, ge=1, le=8192)
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    max_epochs: int = Field(300, ge=1, le=1_000_000, description="full-batch steps at most")
    patience: int = Field(
        25, ge=1, le=1_000_000, description="epochs without a lower validation loss that stop"
    )
    train_fraction: float = Field(0.6, gt=0, lt=1)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    target_accuracy: float = Field(
        0.9, gt=0, le=1, description="validation accuracy counted by epochs_to_target"
    )
    loss_limit: float = Field(1e6, gt=0, description="loss that marks a run diverged")

    @field_validator("datasets")
    @classmethod
    def _distinct_datasets(cls, datasets: list[str]) -> list[str]:
        if len(set(datasets)) != len(datasets):
            raise ValueError(f"datasets listed twice: {datasets}")
        return datasets

    @field_validator("depths")
    @classmethod
    def _sane_depths(cls, depths: list[int]) -> list[int]:
        bad = [d for d in depths if not 1 <= d <= 1000]
        if bad:
            raise ValueError(f"depths must be between 1 and 1000 (got {bad[0]})")
        if len(set(depths)) != len(depths):
            raise ValueError(f"depths listed twice: {depths}")
        return depths

    @model_validator(mode="after")
    def _fractions(self) -> Config:
        total = self.train_fraction + self.val_fraction + self.test_fraction
        if abs(total - 1.0) > 1e-9:
            raise ValueError(
                "train_fraction + val_fraction + test_fraction must be 1 "
                f"(got {self.train_fraction:g} + {self.val_fraction:g} + "
                f"{self.test_fraction:g} = {total:g})"
            )
        for name in self.datasets:
            for label, sizes in enumerate(split_sizes(DATASETS[name].class_counts, self)):
                if min(sizes) < 1:
                    raise ValueError(
                        f"the split fractions leave class {label} of {name} with no sample "
                        f"in some split (train, val, test = {sizes}); use larger fractions"
                    )
        return self


def class_split(n: int, cfg: Config) -> tuple[int, int, int]:
    """(train, val, test) counts for one class of n samples: rounded fractions, test the rest."""
    n_train = math.floor(cfg.train_fraction * n + 0.5)
    n_val = min(math.floor(cfg.val_fraction * n + 0.5), n - n_train)
    return n_train, n_val, n - n_train - n_val


def split_sizes(class_counts, cfg: Config):
    """Per class (train, val, test) counts; equal for every seed."""
    return [class_split(int(c), cfg) for c in class_counts]
