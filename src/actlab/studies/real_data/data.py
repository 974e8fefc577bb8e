"""The real_data study's data: bundled data sets loaded offline, the stratified per-seed
split, standardisation, and the per-member tensors of a batch."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from actlab.studies.base import RunContext, Trial
from actlab.studies.real_data.config import DATASETS, Config, class_split


@cache
def load_dataset(name: str):
    """(x float64 [n, features], y int64 [n]) of a bundled data set; read from the files
    scikit-learn ships, never downloaded."""
    import numpy as np
    from sklearn import datasets

    try:
        info = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset '{name}'; available: {', '.join(DATASETS)}") from None
    bunch = getattr(datasets, info.loader)()
    x = np.ascontiguousarray(bunch.data, dtype=np.float64)
    y = np.ascontiguousarray(bunch.target, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def split_indices(name: str, seed: int, run_seed: int, cfg: Config):
    """Stratified (train, val, test) index arrays, sorted, keyed by run seed, data set and
    seed only: every activation gets the same split within a seed."""
    import numpy as np
    import torch

    from actlab.engine import generator

    _, y = load_dataset(name)
    gen = generator(run_seed, "real_data", "split", name, seed)
    parts: tuple[list, list, list] = ([], [], [])
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        order = torch.randperm(len(members), generator=gen).numpy()
        shuffled = members[order]
        n_train, n_val, _ = class_split(len(members), cfg)
        parts[0].append(shuffled[:n_train])
        parts[1].append(shuffled[n_train : n_train + n_val])
        parts[2].append(shuffled[n_train + n_val :])
    return tuple(np.sort(np.concatenate(p)) for p in parts)


@dataclass
class SplitData:
    """One seed's standardised splits, as float64 numpy arrays and int64 labels."""

    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    x_test: Any
    y_test: Any


def prepare(name: str, seed: int, run_seed: int, cfg: Config) -> SplitData:
    """The seed's split, standardised with the training split's mean and standard
    deviation; features constant on the training split become 0."""
    import numpy as np

    x, y = load_dataset(name)
    train, val, test = split_indices(name, seed, run_seed, cfg)
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    scale = np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)

    def standardise(idx):
        return (x[idx] - mean) * scale

    return SplitData(
        standardise(train), y[train], standardise(val), y[val], standardise(test), y[test]
    )


def stacked_data(trials: list[Trial], ctx: RunContext) -> dict[str, Any]:
    """Per-member tensors: x [M, n, features] and y [M, n] for each split."""
    import numpy as np
    import torch

    cfg: Config = ctx.config
    name = trials[0].params["dataset"]
    per_seed = {s: prepare(name, s, ctx.run_seed, cfg) for s in sorted({t.seed for t in trials})}
    out = {}
    for split in ("train", "val", "test"):
        xs = np.stack([getattr(per_seed[t.seed], f"x_{split}") for t in trials])
        ys = np.stack([getattr(per_seed[t.seed], f"y_{split}") for t in trials])
        out[split] = (
            torch.from_numpy(xs).to(ctx.device, ctx.torch_dtype),
            torch.from_numpy(ys).to(ctx.device),
        )
    return out
