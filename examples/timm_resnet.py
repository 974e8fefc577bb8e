"""A model built by timm, which takes `act_layer` as it is: a small ResNet on the 8x8 digits
(timm is not a dependency of actlab; `pip install timm` first).

    actlab bench examples/timm_resnet.py:make_resnet --data digits --activations ReLU,GELU --seeds 3
"""

from torch import nn


def make_resnet(act_layer=nn.ReLU):
    import timm

    net = timm.create_model(
        "resnet10t", pretrained=False, num_classes=10, in_chans=1, act_layer=act_layer
    )
    return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), net)  # the digits' 64 features as an image
