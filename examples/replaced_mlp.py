"""A model written with fixed activations (nn.ReLU, nn.Tanh) and no act_layer argument:
actlab builds it as it is and replaces every activation module by the one under test, and
says how many it replaced.

    actlab bench examples/replaced_mlp.py:make_mlp --data digits --activations ReLU,GELU --seeds 3
"""

from torch import nn


def make_mlp():
    return nn.Sequential(
        nn.Linear(64, 128),
        nn.ReLU(),
        nn.Linear(128, 128),
        nn.Tanh(),
        nn.Linear(128, 10),
    )
