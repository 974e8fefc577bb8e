"""Data shared by several studies."""

from __future__ import annotations

import math


def sine_data(n_points: int):
    import torch

    x = torch.linspace(-2, 2, n_points)[:, None]
    return x, torch.sin(math.pi * x)


# -- MNIST-1D (Greydanus & Kobak, "Scaling down deep learning", 2020) --------------------------
# 4000 training and 1000 test sequences of length 40, 10 classes, generated procedurally by the
# `mnist1d` package (never downloaded). The package's defaults (seed 42) give the paper's set.


def mnist1d_defaults() -> dict:
    """The package's dataset arguments and their defaults (the download URL left out: the
    data are always generated here)."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args.pop("url", None)
    return args


def unknown_mnist1d_arguments(arguments) -> str | None:
    """The message naming arguments the package does not take, or None."""
    defaults = mnist1d_defaults()
    unknown = sorted(set(arguments) - set(defaults))
    if not unknown:
        return None
    return (
        f"unknown MNIST-1D data argument(s) {', '.join(map(repr, unknown))}; "
        f"available: {', '.join(defaults)}"
    )


def mnist1d_dataset(**arguments):
    """MNIST-1D as tensors: {"x": [n_train, 40] float32, "y": [n_train] int64, "x_test",
    "y_test"}, generated from the package's defaults with `arguments` (its own names, e.g.
    num_samples, shuffle_seq, max_translation, corr_noise_scale, iid_noise_scale, seed).
    An unknown name is refused; each argument set is generated once per process."""
    from actlab.errors import UserError

    defaults = mnist1d_defaults()
    problem = unknown_mnist1d_arguments(arguments)
    if problem:
        raise UserError(problem)
    key = tuple(sorted((k, _hashable(v)) for k, v in {**defaults, **arguments}.items()))
    return _mnist1d_cached(key)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


_MNIST1D_CACHE: dict[tuple, dict] = {}


def _mnist1d_cached(key: tuple) -> dict:
    if key not in _MNIST1D_CACHE:
        _MNIST1D_CACHE[key] = _generate_mnist1d(dict(key))
    return _MNIST1D_CACHE[key]


def _generate_mnist1d(arguments: dict) -> dict:
    """The package seeds numpy's and Python's global generators; their states are put back
    afterwards, so generating data never changes any other random stream."""
    import random

    import numpy as np
    import torch
    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    arguments = {k: list(v) if isinstance(v, tuple) else v for k, v in arguments.items()}
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(ObjectView(dict(arguments)))
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return {
        "x": torch.as_tensor(data["x"], dtype=torch.float32),
        "y": torch.as_tensor(data["y"], dtype=torch.int64),
        "x_test": torch.as_tensor(data["x_test"], dtype=torch.float32),
        "y_test": torch.as_tensor(data["y_test"], dtype=torch.int64),
    }
