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
        _MNIST1D_CACHE[key] = _mnist1d_from_disk(key)
    return _MNIST1D_CACHE[key]


def cache_dir():
    """Where generated data sets are kept between processes: $ACTLAB_CACHE, else
    ~/.cache/actlab; ACTLAB_CACHE=off keeps nothing. Generating MNIST-1D takes about 1.6 s,
    and every worker process of every run needs it; reading it back takes milliseconds."""
    import os
    from pathlib import Path

    setting = os.environ.get("ACTLAB_CACHE", "")
    if setting.lower() == "off":
        return None
    return Path(setting) if setting else Path.home() / ".cache" / "actlab"


def _mnist1d_from_disk(key: tuple) -> dict:
    """The data set for `key`, read from the cache when a file for it (and this version of
    the mnist1d package) is there and sound, generated and stored otherwise. A cache that
    cannot be read or written is skipped: the data are generated as without one."""
    import hashlib
    import os
    from importlib.metadata import version

    import torch

    folder = cache_dir()
    if folder is None:
        return _generate_mnist1d(dict(key))
    ident = hashlib.sha256(repr((key, version("mnist1d"))).encode()).hexdigest()[:16]
    path = folder / f"mnist1d-{ident}.pt"
    try:
        data = torch.load(path, weights_only=True)
        if set(data) == {"x", "y", "x_test", "y_test"}:
            return data
    except Exception:  # absent, unreadable or damaged: generate it again
        pass
    data = _generate_mnist1d(dict(key))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(data, partial)
        os.replace(partial, path)  # whole or not at all, whoever writes at the same time
    except OSError:
        pass
    return data


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
