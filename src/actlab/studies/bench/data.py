"""The bench's data: a built-in name or the user's `module:attr` / `path/file.py:attr`.

A user's data object (or the value its factory returns when called with no arguments) is
one of:
  - a dict with x_train, y_train, x_test, y_test (tensors or numpy arrays);
  - a tuple (x_train, y_train, x_test, y_test), or ((x_train, y_train), (x_test, y_test));
  - a tuple (train_loader, test_loader) of DataLoaders: read once, whole, into tensors
    (the bench draws its own batches from them, so that every activation and seed sees
    the data in the order its seed fixes).
Classification when the labels are integers (cross-entropy, accuracy), regression when
they are floating point (mean squared error); `task` in the config overrides.

Built-in: "digits" (scikit-learn's bundled 8x8 digits: 64 standardised features, 10
classes, a fixed stratified 80/20 split) and "mnist1d" (the MNIST-1D study's data: 40
features, 10 classes, its own train/test split).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actlab.errors import UserError

BUILTIN_DATA = ("digits", "mnist1d")


@dataclass
class Data:
    x_train: Any  # tensors
    y_train: Any
    x_test: Any
    y_test: Any
    task: str  # "classification" or "regression"

    @property
    def classes(self) -> int:
        return int(self.y_train.max()) + 1 if self.task == "classification" else 0


def load_data(spec: str, task: str = "auto") -> Data:
    """The data `spec` names, as tensors; one line naming the fix when it cannot be read."""
    if spec in BUILTIN_DATA:
        parts = builtin(spec)
    elif ":" in spec:
        from actlab.studies.bench.model import load_object

        value = load_object(spec, "data")
        if callable(value) and not isinstance(value, tuple | list | dict):
            value = value()
        parts = unpack(spec, value)
    else:
        from actlab.errors import closest

        near = closest(spec, list(BUILTIN_DATA))
        hint = f" (did you mean '{near}'?)" if near else ""
        raise UserError(
            f"unknown data '{spec}'{hint}; give a built-in ({', '.join(BUILTIN_DATA)}) or "
            "module:attr / path/file.py:attr returning (x_train, y_train, x_test, y_test)"
        )
    return as_data(spec, parts, task)


def builtin(name: str) -> tuple:
    import numpy as np
    import torch

    if name == "mnist1d":
        from actlab.data import mnist1d_dataset

        d = mnist1d_dataset()
        return d["x"], d["y"], d["x_test"], d["y_test"]
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.data.astype(np.float32)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))  # fixed: the data, not a seed
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):  # stratified: a fifth of each class is the test split
        members = order[y[order] == label]
        test[members[: len(members) // 5]] = True
    mean, sd = x[~test].mean(0), x[~test].std(0)
    x = (x - mean) / np.where(sd > 0, sd, 1.0)
    t = torch.from_numpy
    return t(x[~test]), t(y[~test]), t(x[test]), t(y[test])


def unpack(spec: str, value: Any) -> tuple:
    from torch.utils.data import DataLoader

    if isinstance(value, dict):
        keys = ("x_train", "y_train", "x_test", "y_test")
        missing = [k for k in keys if k not in value]
        if missing:
            raise UserError(f"data '{spec}' is a dict without {', '.join(missing)}; give all four")
        return tuple(value[k] for k in keys)
    if isinstance(value, tuple | list):
        if len(value) == 2 and all(isinstance(v, DataLoader) for v in value):
            return (*whole(value[0]), *whole(value[1]))
        if len(value) == 2 and all(isinstance(v, tuple | list) and len(v) == 2 for v in value):
            return (*value[0], *value[1])
        if len(value) == 4:
            return tuple(value)
    raise UserError(
        f"data '{spec}' gave a {type(value).__name__}; return (x_train, y_train, x_test, "
        "y_test), ((x_train, y_train), (x_test, y_test)), a dict of those four, or "
        "(train_loader, test_loader)"
    )


def whole(loader) -> tuple:
    """A DataLoader's (inputs, targets), concatenated."""
    import torch

    xs, ys = [], []
    for batch in loader:
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise UserError("a data loader must yield (inputs, targets) pairs")
        xs.append(torch.as_tensor(batch[0]))
        ys.append(torch.as_tensor(batch[1]))
    return torch.cat(xs), torch.cat(ys)


def as_data(spec: str, parts: tuple, task: str) -> Data:
    import torch

    x_train, y_train, x_test, y_test = (torch.as_tensor(p) for p in parts)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise UserError(
            f"data '{spec}': inputs and targets differ in length ({len(x_train)} and "
            f"{len(y_train)} for training, {len(x_test)} and {len(y_test)} for test)"
        )
    if len(x_train) == 0 or len(x_test) == 0:
        raise UserError(f"data '{spec}' has an empty split; give training and test samples")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UserError(
            f"data '{spec}': training inputs are {tuple(x_train.shape[1:])} per sample, test "
            f"inputs {tuple(x_test.shape[1:])}; give both the same shape"
        )
    if task == "auto":
        task = "regression" if y_train.is_floating_point() else "classification"
    if task == "classification":
        if y_train.is_floating_point():
            raise UserError(
                f"data '{spec}': classification needs integer class labels; these are "
                f"{y_train.dtype} (use --task regression for real-valued targets)"
            )
        y_train, y_test = y_train.long(), y_test.long()
    else:
        y_train, y_test = y_train.float(), y_test.float()
    return Data(x_train.float(), y_train, x_test.float(), y_test, task)
