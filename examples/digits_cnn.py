"""A small CNN for the bundled 8x8 digits that takes timm's `act_layer`: actlab passes each
activation as a class whose instances are the activation module.

    actlab bench examples/digits_cnn.py:make_cnn --data digits --activations ReLU,GELU,Tanhshrink --seeds 5
"""

from torch import nn


def make_cnn(act_layer=nn.ReLU, channels: int = 16):
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),  # the digits' 64 features are an 8x8 image
        nn.Conv2d(1, channels, 3, padding=1),
        act_layer(),
        nn.Conv2d(channels, channels, 3, padding=1),
        act_layer(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(channels * 16, 64),
        act_layer(),
        nn.Linear(64, 10),
    )
