"""The stacked-ensemble engine: M networks of one shape trained as one.

Nothing here knows about studies, files or executors: it takes initial parameters,
activations and data, and returns tensors.
"""

from actlab.engine.init import init_mlp_params, layer_sizes
from actlab.engine.optim import StackedAdam, StackedSGD, make_optimizer
from actlab.engine.seeding import derive_seed, generator
from actlab.engine.stack import StackedMLP
from actlab.engine.train import DivergenceRule, TrainResult, train, train_regression

__all__ = [
    "DivergenceRule",
    "StackedAdam",
    "StackedMLP",
    "StackedSGD",
    "TrainResult",
    "derive_seed",
    "generator",
    "init_mlp_params",
    "layer_sizes",
    "make_optimizer",
    "train",
    "train_regression",
]
