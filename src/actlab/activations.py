"""The activation registry: built-in activations with their analytic derivatives and facts,
plus custom ones made from expressions, callables or ``module:attr`` import paths.

Modelled on timm's ``create_act.py``: plain name-to-function tables with aliases and a paper
reference per entry. The derivatives are closed forms written by hand (no autograd) and follow
PyTorch autograd's value at every kink, so analytic and autograd analyses agree exactly.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from actlab.errors import UserError
from actlab.expr import parse_expression
from actlab.learnable import AtInit, Family, builtin_families, parse_learnable

INF = math.inf

# SELU's constants from Klambauer et al. 2017, as PyTorch defines them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
LEAKY_RELU_SLOPE = 0.01
PRELU_SLOPE = 0.25  # nn.PReLU's initial slope (learnable.py trains it from there)
QUICK_GELU_SCALE = 1.702
SOFTPLUS_THRESHOLD = 20.0  # F.softplus returns x itself above this, so its slope is exactly 1
GELU_TANH_COEFF = 0.044715
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

SATURATION_SIDES = ("none", "both", "negative", "positive")
INITS = ("he", "lecun", "xavier")


@dataclass(frozen=True)
class Activation:
    """An elementwise activation and what is known about it.

    ``zero_centred`` means the function is odd (f(-x) = -f(x)), so symmetric inputs give
    zero-mean outputs. ``saturating`` names the sides on which the slope tends to zero.
    ``smooth`` means infinitely differentiable; a kink anywhere makes it False.
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    deriv: Callable[[Tensor], Tensor] | None
    formula: str
    output_range: tuple[float, float]
    zero_centred: bool
    saturating: str
    monotonic: bool
    smooth: bool
    key_property: str
    reference: str
    aliases: tuple[str, ...] = ()
    builtin: bool = True
    source: str = ""
    # A learnable activation's family (learnable.py); `fn` is then the family at its
    # initial values, which is what every study at initialisation sees.
    learnable: Family | None = None
    # The weight initialisation it is customarily used with (INITS): "he" (He et al. 2015,
    # variance 2 / fan_in) for ReLU and the rectifiers modelled on it, "lecun" (variance
    # 1 / fan_in) for SELU, as Klambauer et al. 2017 prescribe, "xavier" (Glorot & Bengio
    # 2010, variance 2 / (fan_in + fan_out)) for the rest and for custom activations.
    init: str = "xavier"
    # Where phi, phi' or the slope of phi' jumps (ReLU's 0, Hardtanh's -1 and 1): mean-field
    # theory's quadrature puts panel edges there (theory.py). Exact for the built-ins (a
    # test checks each against the numerical detection), found numerically for the rest.
    kinks: tuple[float, ...] = ()

    def __call__(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def derivative(self, x: Tensor) -> Tensor:
        """The slope at each element of x: analytic when known, otherwise by autograd."""
        if self.deriv is not None:
            return self.deriv(x)
        return autograd_derivative(self.fn, x)


def autograd_derivative(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """d fn / dx elementwise, by autograd on a fresh leaf so the caller's tensor is untouched."""
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    with torch.enable_grad():
        leaf = x.detach().clone().requires_grad_(True)
        y = fn(leaf)
        if not y.requires_grad:  # e.g. where(x > 0, 1, 2): piecewise constant, slope 0
            return torch.zeros_like(x)
        (grad,) = torch.autograd.grad(y.sum(), leaf, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad.detach()


# ---------------------------------------------------------------------------------------------
# Forward functions that torch does not provide under one name.


def identity(x: Tensor) -> Tensor:
    return x


def leaky_relu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LEAKY_RELU_SLOPE)


def gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


def quick_gelu(x: Tensor) -> Tensor:
    return x * torch.sigmoid(QUICK_GELU_SCALE * x)


def squared_relu(x: Tensor) -> Tensor:
    return F.relu(x) ** 2


def prelu_fixed(x: Tensor) -> Tensor:
    return F.leaky_relu(x, PRELU_SLOPE)


# ---------------------------------------------------------------------------------------------
# Analytic derivatives. Masks are cast to x's dtype so fp32 stays fp32 and fp64 stays fp64.
# Kink values follow torch autograd (checked empirically, torch 2.13).


def _mask(condition: Tensor, like: Tensor) -> Tensor:
    return condition.to(like.dtype)


def _piecewise(condition: Tensor, inside: Tensor | float, outside: Tensor | float) -> Tensor:
    return torch.where(condition, inside, outside)


def d_identity(x: Tensor) -> Tensor:
    return torch.ones_like(x)


def d_sigmoid(x: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1 - s)


def d_tanh(x: Tensor) -> Tensor:
    t = torch.tanh(x)
    return 1 - t * t


def d_relu(x: Tensor) -> Tensor:
    return _mask(x > 0, x)  # autograd: relu'(0) = 0


def d_leaky_relu(x: Tensor) -> Tensor:
    return _piecewise(x > 0, torch.ones_like(x), torch.full_like(x, LEAKY_RELU_SLOPE))


def d_elu(x: Tensor) -> Tensor:
    return _piecewise(x > 0, torch.ones_like(x), torch.exp(x))


def d_gelu(x: Tensor) -> Tensor:
    cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2.0)))
    pdf = INV_SQRT_2PI * torch.exp(-0.5 * x * x)
    return cdf + x * pdf


def d_swish(x: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1 + x * (1 - s))


def d_selu(x: Tensor) -> Tensor:
    # autograd takes the exponential branch at 0, so selu'(0) = scale * alpha ~ 1.758.
    return SELU_SCALE * _piecewise(x > 0, torch.ones_like(x), SELU_ALPHA * torch.exp(x))


def d_celu(x: Tensor) -> Tensor:
    return _piecewise(x > 0, torch.ones_like(x), torch.exp(x))  # alpha = 1


def d_softplus(x: Tensor) -> Tensor:
    return _piecewise(x > SOFTPLUS_THRESHOLD, torch.ones_like(x), torch.sigmoid(x))


def d_mish(x: Tensor) -> Tensor:
    tsp = torch.tanh(F.softplus(x))
    return tsp + x * torch.sigmoid(x) * (1 - tsp * tsp)


def d_hardswish(x: Tensor) -> Tensor:
    # autograd: 0 for x <= -3, 1 for x >= 3, x/3 + 1/2 strictly between (so not continuous
    # at the ends: the inner formula would give -1/2 and 3/2 there).
    inner = x / 3 + 0.5
    return _piecewise(x <= -3, torch.zeros_like(x), _piecewise(x >= 3, torch.ones_like(x), inner))


def d_hardsigmoid(x: Tensor) -> Tensor:
    # 1/6 strictly inside (-3, 3). Note: torch's fp64 backward uses the fp32 constant 1/6
    # (0.16666667163...), off by 5e-9; we return the exact value.
    return _mask((x > -3) & (x < 3), x) / 6


def d_relu6(x: Tensor) -> Tensor:
    return _mask((x > 0) & (x < 6), x)  # autograd: 0 at both x = 0 and x = 6


def d_hardtanh(x: Tensor) -> Tensor:
    return _mask((x > -1) & (x < 1), x)  # autograd: 0 at both x = -1 and x = 1


def d_softsign(x: Tensor) -> Tensor:
    return 1 / (1 + x.abs()) ** 2


def d_logsigmoid(x: Tensor) -> Tensor:
    return torch.sigmoid(-x)


def d_tanhshrink(x: Tensor) -> Tensor:
    t = torch.tanh(x)
    return t * t


def d_gelu_tanh(x: Tensor) -> Tensor:
    inner = SQRT_2_OVER_PI * (x + GELU_TANH_COEFF * x**3)
    t = torch.tanh(inner)
    d_inner = SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_COEFF * x * x)
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner


def d_quick_gelu(x: Tensor) -> Tensor:
    s = torch.sigmoid(QUICK_GELU_SCALE * x)
    return s + QUICK_GELU_SCALE * x * s * (1 - s)


def d_squared_relu(x: Tensor) -> Tensor:
    return 2 * F.relu(x)


def d_prelu_fixed(x: Tensor) -> Tensor:
    return _piecewise(x > 0, torch.ones_like(x), torch.full_like(x, PRELU_SLOPE))


# ---------------------------------------------------------------------------------------------
# The table. Minima of the non-monotonic ones are rounded outwards to 6 decimals.

_FAMILIES = builtin_families()


def learnable_builtin(
    name: str, family: Family, formula: str, key: str, ref: str, **facts: Any
) -> Activation:
    """A built-in learnable activation: its fixed-function fields (`facts`: output_range,
    saturating, monotonic, smooth) describe the initial function, the one a study at
    initialisation sees; training changes the function."""
    return Activation(
        name=name,
        fn=AtInit(family),
        deriv=None,
        formula=formula,
        zero_centred=False,
        key_property=key + " (learnable)",
        reference=ref,
        learnable=family,
        **facts,
    )


_TABLE: tuple[Activation, ...] = (
    Activation(
        name="Linear",
        fn=identity,
        deriv=d_identity,
        formula="x",
        output_range=(-INF, INF),
        zero_centred=True,
        saturating="none",
        monotonic=True,
        smooth=True,
        key_property="no nonlinearity: a deep stack collapses to a single linear map",
        reference="Baseline identity map (no paper)",
        aliases=("identity", "none"),
    ),
    Activation(
        name="Sigmoid",
        fn=torch.sigmoid,
        deriv=d_sigmoid,
        formula="1 / (1 + exp(-x))",
        output_range=(0.0, 1.0),
        zero_centred=False,
        saturating="both",
        monotonic=True,
        smooth=True,
        key_property="slope at most 0.25 and outputs always positive: gradients vanish with depth",
        reference="Rumelhart, Hinton & Williams 1986, https://doi.org/10.1038/323533a0",
        aliases=("logistic",),
    ),
    Activation(
        name="Tanh",
        fn=torch.tanh,
        deriv=d_tanh,
        formula="tanh(x)",
        output_range=(-1.0, 1.0),
        zero_centred=True,
        saturating="both",
        monotonic=True,
        smooth=True,
        key_property="zero-centred sigmoid with slope 1 at 0; saturates on both sides",
        reference="LeCun et al. 1998, http://yann.lecun.com/exdb/publis/pdf/lecun-98b.pdf",
    ),
    Activation(
        name="ReLU",
        kinks=(0.0,),
        fn=F.relu,
        deriv=d_relu,
        formula="max(0, x)",
        output_range=(0.0, INF),
        zero_centred=False,
        saturating="negative",
        monotonic=True,
        smooth=False,
        key_property="slope exactly 1 for x > 0 and 0 below: sparse, but units can die",
        reference="Nair & Hinton 2010, https://www.cs.toronto.edu/~hinton/absps/reluICML.pdf",
        init="he",
    ),
    Activation(
        name="LeakyReLU",
        kinks=(0.0,),
        fn=leaky_relu,
        deriv=d_leaky_relu,
        formula="x if x > 0 else 0.01 x",
        output_range=(-INF, INF),
        zero_centred=False,
        saturating="none",
        monotonic=True,
        smooth=False,
        key_property="slope 0.01 for x < 0 keeps a gradient flowing, so units cannot die",
        reference=(
            "Maas, Hannun & Ng 2013, "
            "https://ai.stanford.edu/~amaas/papers/relu_hybrid_icml2013_final.pdf"
        ),
        aliases=("leaky_relu", "lrelu"),
        init="he",
    ),
    Activation(
        name="ELU",
        kinks=(0.0,),
        fn=F.elu,
        deriv=d_elu,
        formula="x if x > 0 else exp(x) - 1",
        output_range=(-1.0, INF),
        zero_centred=False,
        saturating="negative",
        monotonic=True,
        smooth=False,
        key_property="negative outputs down to -1 pull mean activations towards zero",
        reference="Clevert, Unterthiner & Hochreiter 2015, https://arxiv.org/abs/1511.07289",
        init="he",
    ),
    Activation(
        name="GELU",
        fn=F.gelu,
        deriv=d_gelu,
        formula="x * Phi(x) = x/2 * (1 + erf(x / sqrt(2)))",
        output_range=(-0.169972, INF),
        zero_centred=False,
        saturating="negative",
        monotonic=False,
        smooth=True,
        key_property="x weighted by the Gaussian CDF; dips to -0.17 at x = -0.75",
        reference="Hendrycks & Gimpel 2016, https://arxiv.org/abs/1606.08415",
        init="he",
    ),
    Activation(
        name="Swish",
        fn=F.silu,
        deriv=d_swish,
        formula="x * sigmoid(x)",
        output_range=(-0.278465, INF),
        zero_centred=False,
        saturating="negative",
        monotonic=False,
        smooth=True,
        key_property="self-gated x * sigmoid(x); dips to -0.28 at x = -1.28",
        reference="Ramachandran, Zoph & Le 2017, https://arxiv.org/abs/1710.05941",
        aliases=("silu",),
        init="he",
    ),
    Activation(
        name="SELU",
        kinks=(0.0,),
        fn=F.selu,
        deriv=d_selu,
        formula="1.0507 * (x if x > 0 else 1.6733 * (exp(x) - 1))",
        output_range=(-SELU_SCALE * SELU_ALPHA, INF),
        zero_centred=False,
        saturating="negative",
        monotonic=True,
        smooth=False,
        key_property="constants chosen so activations self-normalise to mean 0, variance 1",
        reference="Klambauer et al. 2017, https://arxiv.org/abs/1706.02515",
        init="lecun",
    ),
    Activation(
        name="CELU",
        kinks=(0.0,),
        fn=F.celu,
        deriv=d_celu,
        formula="max(0, x) + min(0, exp(x) - 1)",
        output_range=(-1.0, INF),
        zero_centred=False,
        saturating="negative",
        monotonic=True,
        smooth=False,
        key_property="continuously differentiable ELU; identical to ELU at alpha = 1",
        reference="Barron 2017, https://arxiv.org/abs/1704.07483",
        init="he",
    ),
    Activation(
        name="Softplus",
        kinks=(20.0,),
        fn=F.softplus,
        deriv=d_softplus,
        formula="log(1 + exp(x)) (x itself above 20)",
        output_range=(0.0, INF),
        zero_centred=False,
        saturating="negative",
        monotonic=True,
        smooth=True,
        key_property="smooth ReLU whose slope is the sigmoid; never exactly zero",
        reference="Glorot, Bordes & Bengio 2011, https://proceedings.mlr.press/v15/glorot11a.html",
        init="he",
    ),
    Activation(
        name="Mish",
        fn=F.mish,
        deriv=d_mish,
        formula="x * tanh(softplus(x))",
        output_range=(-0.308844, INF),
        zero_centred=False,
        saturating="negative",
        monotonic=False,
        smooth=True,
        key_property="self-regularised non-monotonic; dips to -0.31 at x = -1.19",
        reference="Misra 2019, https://arxiv.org/abs/1908.08681",
        init="he",
    ),
    Activation(
        name="Hardswish",
        kinks=(-3.0, 3.0),
        fn=F.hardswish,
        deriv=d_hardswish,
        formula="x * relu6(x + 3) / 6",
        output_range=(-0.375, INF),
        zero_centred=False,
        saturating="negative",
        monotonic=False,
        smooth=False,
        key_property="piecewise-quadratic Swish for mobile hardware; dips to -0.375 at x = -1.5",
        reference="Howard et al. 2019 (MobileNetV3), https://arxiv.org/abs/1905.02244",
        aliases=("hard_swish",),
        init="he",
    ),
    Activation(
        name="Hardsigmoid",
        kinks=(-3.0, 3.0),
        fn=F.hardsigmoid,
        deriv=d_hardsigmoid,
        formula="relu6(x + 3) / 6",
        output_range=(0.0, 1.0),
        zero_centred=False,
        saturating="both",
        monotonic=True,
        smooth=False,
        key_property="piecewise-linear sigmoid: slope 1/6 on (-3, 3), exactly 0 outside",
        reference="Howard et al. 2019 (MobileNetV3), https://arxiv.org/abs/1905.02244",
        aliases=("hard_sigmoid",),
    ),
    Activation(
        name="ReLU6",
        kinks=(0.0, 6.0),
        fn=F.relu6,
        deriv=d_relu6,
        formula="min(max(0, x), 6)",
        output_range=(0.0, 6.0),
        zero_centred=False,
        saturating="both",
        monotonic=True,
        smooth=False,
        key_property="ReLU capped at 6 for low-precision arithmetic; slope 0 above 6",
        reference="Krizhevsky 2010, https://www.cs.toronto.edu/~kriz/conv-cifar10-aug2010.pdf",
        init="he",
    ),
    Activation(
        name="Hardtanh",
        kinks=(-1.0, 1.0),
        fn=F.hardtanh,
        deriv=d_hardtanh,
        formula="min(max(-1, x), 1)",
        output_range=(-1.0, 1.0),
        zero_centred=True,
        saturating="both",
        monotonic=True,
        smooth=False,
        key_property="piecewise-linear tanh: slope 1 on (-1, 1), exactly 0 outside",
        reference="Collobert 2004 (PhD thesis); https://pytorch.org/docs/stable/generated/torch.nn.Hardtanh.html",
        aliases=("hard_tanh",),
    ),
    Activation(
        name="Softsign",
        kinks=(0.0,),
        fn=F.softsign,
        deriv=d_softsign,
        formula="x / (1 + |x|)",
        output_range=(-1.0, 1.0),
        zero_centred=True,
        saturating="both",
        monotonic=True,
        smooth=False,
        key_property="tanh-like but saturates polynomially (slope ~ 1/x^2), not exponentially",
        reference="Glorot & Bengio 2010, https://proceedings.mlr.press/v9/glorot10a.html",
    ),
    Activation(
        name="LogSigmoid",
        fn=F.logsigmoid,
        deriv=d_logsigmoid,
        formula="log(sigmoid(x)) = -softplus(-x)",
        output_range=(-INF, 0.0),
        zero_centred=False,
        saturating="positive",
        monotonic=True,
        smooth=True,
        key_property="mirror image of Softplus: linear for x << 0, flat at 0 for x >> 0",
        reference="PyTorch docs, https://pytorch.org/docs/stable/generated/torch.nn.LogSigmoid.html",
    ),
    Activation(
        name="Tanhshrink",
        fn=F.tanhshrink,
        deriv=d_tanhshrink,
        formula="x - tanh(x)",
        output_range=(-INF, INF),
        zero_centred=True,
        saturating="none",
        monotonic=True,
        smooth=True,
        key_property="flat near 0 (slope tanh(x)^2, zero at 0) and linear far out",
        reference="PyTorch docs, https://pytorch.org/docs/stable/generated/torch.nn.Tanhshrink.html",
    ),
    Activation(
        name="GELU-tanh",
        fn=gelu_tanh,
        deriv=d_gelu_tanh,
        formula="x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))",
        output_range=(-0.170041, INF),
        zero_centred=False,
        saturating="negative",
        monotonic=False,
        smooth=True,
        key_property="tanh approximation of GELU used by BERT and GPT-2; within 5e-4 of exact",
        reference="Hendrycks & Gimpel 2016, https://arxiv.org/abs/1606.08415",
        aliases=("gelu_tanh", "gelu_new", "approx_gelu"),
        init="he",
    ),
    Activation(
        name="QuickGELU",
        fn=quick_gelu,
        deriv=d_quick_gelu,
        formula="x * sigmoid(1.702 x)",
        output_range=(-0.163611, INF),
        zero_centred=False,
        saturating="negative",
        monotonic=False,
        smooth=True,
        key_property="sigmoid approximation of GELU used by OpenAI CLIP; Swish with beta 1.702",
        reference="Hendrycks & Gimpel 2016, https://arxiv.org/abs/1606.08415; "
        "CLIP: Radford et al. 2021, https://arxiv.org/abs/2103.00020",
        aliases=("quick_gelu",),
        init="he",
    ),
    Activation(
        name="SquaredReLU",
        kinks=(0.0,),
        fn=squared_relu,
        deriv=d_squared_relu,
        formula="max(0, x)^2",
        output_range=(0.0, INF),
        zero_centred=False,
        saturating="negative",
        monotonic=True,
        smooth=False,
        key_property="slope grows linearly (2x) for x > 0; found by search for Transformers",
        reference="So et al. 2021 (Primer), https://arxiv.org/abs/2109.08668",
        aliases=("relu2", "squared_relu", "relu_squared"),
        init="he",
    ),
    Activation(
        name="PReLU",
        kinks=(0.0,),
        fn=prelu_fixed,  # its function at the initial slope (with a kernel and derivative)
        deriv=d_prelu_fixed,
        formula="x if x > 0 else a x, a learned per layer (init 0.25, nn.PReLU's)",
        output_range=(-INF, INF),
        zero_centred=False,
        saturating="none",
        monotonic=True,
        smooth=False,
        key_property="negative slope a trained with the weights, one per layer, from 0.25 "
        "(learnable; max(x, 0.25*x) is its frozen twin)",
        reference="He et al. 2015, https://arxiv.org/abs/1502.01852",
        learnable=_FAMILIES["PReLU"],
        init="he",
    ),
    learnable_builtin(
        "Swish-beta",
        _FAMILIES["Swish-beta"],
        "x * sigmoid(b x), b learned per layer (init 1)",
        "Swish whose sharpness b is trained with the weights",
        "Ramachandran et al. 2017, https://arxiv.org/abs/1710.05941",
        output_range=(-0.278465, INF),
        saturating="negative",
        monotonic=False,
        smooth=True,
    ),
    learnable_builtin(
        "PAU",
        _FAMILIES["PAU"],
        "P5(x) / (1 + |b1 x + ... + b4 x^4|), 10 coefficients learned per layer",
        "Pade activation unit, initialised to fit Leaky ReLU on [-3, 3]",
        "Molina et al. 2020, https://arxiv.org/abs/1907.06732",
        output_range=(-INF, INF),
        saturating="none",
        monotonic=False,
        smooth=True,
    ),
    learnable_builtin(
        "Spline",
        _FAMILIES["Spline"],
        "piecewise linear through 9 knots on [-3, 3], learned per unit (init ReLU)",
        "a learnable shape per unit, as on the edges of Kolmogorov-Arnold networks",
        "Liu et al. 2024, https://arxiv.org/abs/2404.19756",
        output_range=(0.0, INF),
        saturating="negative",
        monotonic=True,
        smooth=False,
        kinks=(0.0,),  # starts as ReLU: straight through every other knot
    ),
)

BUILTINS: dict[str, Activation] = {act.name: act for act in _TABLE}

TUTORIAL_SET: tuple[str, ...] = (
    "Linear",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "GELU",
    "Swish",
)


def normalise_name(name: str) -> str:
    """Lookup key: case, '-', '_' and spaces do not matter, so 'GELU_tanh' finds 'GELU-tanh'."""
    return re.sub(r"[-_\s]", "", name.lower())


def _build_index(activations: dict[str, Activation]) -> dict[str, str]:
    index: dict[str, str] = {}
    for act in activations.values():
        for label in (act.name, *act.aliases):
            key = normalise_name(label)
            if index.get(key, act.name) != act.name:  # a clash would make lookup ambiguous
                raise RuntimeError(f"'{label}' names both {index[key]} and {act.name}")
            index[key] = act.name
    return index


_INDEX: dict[str, str] = _build_index(BUILTINS)

IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_EXAMPLE_EXPRESSION = "x*tanh(softplus(x))"


def available() -> list[str]:
    """Canonical names of the built-in activations, in table order."""
    return list(BUILTINS)


def get_activation(spec: Any, name: str | None = None) -> Activation:
    """Resolve an Activation, a registered name or alias, a 'module:attr' path, a callable or
    an expression in x. Anything not built in is validated first; problems raise UserError."""
    if isinstance(spec, Activation):
        act = dataclasses.replace(spec, name=name) if name else spec
    elif isinstance(spec, str):
        act = _from_text(spec, name)
    elif callable(spec):
        act = custom_activation(name or _callable_name(spec), spec, source=_callable_path(spec))
    else:
        raise UserError(
            f"cannot make an activation from a {type(spec).__name__}; give a name, "
            "an expression in x, a module:attr path or a callable"
        )
    if not act.builtin:
        validate_custom(act)
    return act


def _from_text(spec: str, name: str | None) -> Activation:
    text = spec.strip()
    canonical = _INDEX.get(normalise_name(text)) if text else None
    if canonical is not None:
        act = BUILTINS[canonical]
        return dataclasses.replace(act, name=name) if name else act
    if IMPORT_PATH.match(text):
        return _from_import_path(text, name)
    if "|" in text:  # a learnable expression: 'EXPR | b=1.0'
        family = parse_learnable(text)
        act = custom_activation(name or text, AtInit(family), source=text)
        return dataclasses.replace(act, learnable=family)
    try:
        expression = parse_expression(text)
    except UserError:
        if text.isidentifier():  # meant as a name, so list the names rather than parse
            from actlab.errors import closest, unknown_name

            raise UserError(
                unknown_name(
                    "activation",
                    spec,
                    available(),
                    near=closest(text, _INDEX, key=normalise_name),
                    otherwise=f"give an expression in x such as '{_EXAMPLE_EXPRESSION}'",
                )
            ) from None
        raise
    return custom_activation(name or text, expression, source=text)


def _from_import_path(path: str, name: str | None) -> Activation:
    module_name, attr = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"cannot import module '{module_name}' (from '{path}'): {exc}") from None
    except Exception as exc:  # the module's own code failed while importing
        raise UserError(
            f"importing module '{module_name}' (from '{path}') failed: {type(exc).__name__}: {exc}"
        ) from None
    if not hasattr(module, attr):
        raise UserError(f"module '{module_name}' has no attribute '{attr}'")
    target = getattr(module, attr)
    if isinstance(target, Activation):
        return dataclasses.replace(target, name=name) if name else target
    if not callable(target):
        raise UserError(f"'{path}' is not callable; it is a {type(target).__name__}")
    return custom_activation(name or path, target, source=path)


def _callable_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _callable_path(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    return f"{module}:{qualname}" if module and qualname else repr(fn)


def custom_activation(name: str, fn: Callable[[Tensor], Tensor], source: str) -> Activation:
    """Wrap a user function. Its shape properties are unknown, so the descriptive fields are
    neutral placeholders and the derivative comes from autograd."""
    return Activation(
        name=name,
        fn=fn,
        deriv=None,
        formula=source,
        output_range=(-INF, INF),
        zero_centred=False,
        saturating="none",
        monotonic=False,
        smooth=False,
        key_property="custom activation: shape properties not declared; derivative by autograd",
        reference="",
        builtin=False,
        source=source,
    )


DISPLAY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def parse_activation_arg(text: str) -> Activation:
    """A CLI argument: 'NAME=EXPR' (e.g. 'mish2=x*tanh(softplus(x))') or a plain spec.

    Split on the first '=' only when the left side is a name (letters, digits, '_', '-', '.',
    starting with a letter or '_') and the right side does not start with '=', so an
    expression such as 'where(x==0, 1, x)' or 'where(x<=0, 0, x)' is never split."""
    left, equals, right = text.partition("=")
    if equals and DISPLAY_NAME.fullmatch(left.strip()) and not right.startswith("="):
        return get_activation(right.strip(), name=left.strip())
    return get_activation(text)


def resolve_activations(specs) -> tuple[list[str], dict[str, Activation]]:
    """Specs (names, expressions, NAME=EXPR, module:attr, callables, Activations) ->
    (display names in order, name -> Activation)."""
    names, table = [], {}
    for spec in specs:
        act = parse_activation_arg(spec.strip()) if isinstance(spec, str) else get_activation(spec)
        if act.name in table:
            raise UserError(f"activation '{act.name}' is listed twice; list each once")
        names.append(act.name)
        table[act.name] = act
    return names, table


def _call_user(act: Activation, x: Tensor) -> Any:
    try:
        return act.fn(x)
    except UserError:
        raise
    except Exception as exc:  # any failure in user code is the user's to fix
        raise UserError(
            f"activation '{act.name}' raised {type(exc).__name__} when called: {exc}"
        ) from None


def _check_output(act: Activation, x: Tensor, y: Any) -> Tensor:
    if not isinstance(y, Tensor) or y.shape != x.shape:
        got = f"shape {tuple(y.shape)}" if isinstance(y, Tensor) else type(y).__name__
        raise UserError(
            f"activation '{act.name}' must return a tensor of its input's shape (elementwise); "
            f"for input shape {tuple(x.shape)} it returned {got}"
        )
    if not y.is_floating_point():
        raise UserError(f"activation '{act.name}' must return floating point, got {y.dtype}")
    return y.to(torch.float64)


def validate_custom(act: Activation) -> None:
    """Refuse a custom activation that is not finite, not elementwise or edits its input,
    judged on a float64 grid over [-10, 10] in steps of 0.01."""
    # Built from integers rather than linspace so the grid holds exactly 0 (linspace gives
    # -2e-16 there) and 1/x-style singularities are caught.
    grid = torch.arange(-1000, 1001, dtype=torch.float64) / 100
    pristine = grid.clone()
    y = _check_output(act, grid, _call_user(act, grid))
    if not torch.equal(grid, pristine):
        raise UserError(f"activation '{act.name}' modifies its input in place; it must not")
    bad = ~torch.isfinite(y)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0])
        raise UserError(
            f"activation '{act.name}' is not finite at x = {grid[first].item():g} "
            f"(gives {y[first].item()}); an activation must be finite for every real input"
        )
    # An elementwise function commutes with reordering its input and with taking a part of it;
    # the second catches reductions that ignore order, such as x - x.mean().
    scale = max(1.0, float(y.abs().max()))
    flipped = _check_output(act, grid, _call_user(act, grid.flip(0)))
    half = grid[: grid.numel() // 2]
    partial = _check_output(act, half, _call_user(act, half))
    if not (
        torch.allclose(flipped, y.flip(0), rtol=1e-12, atol=1e-12 * scale)
        and torch.allclose(partial, y[: half.numel()], rtol=1e-12, atol=1e-12 * scale)
    ):
        raise UserError(
            f"activation '{act.name}' is not elementwise: its output at a point changes "
            "when the other inputs are reordered or dropped"
        )


# ---------------------------------------------------------------------------------------------
# Families, judged from the function itself on a float64 grid over [-10, 10], so that a claim
# about "bounded" or "rectifier-like" activations covers custom ones too, not a list of names.
FAMILY_GRID = torch.arange(-1000, 1001, dtype=torch.float64) / 100


def _values(act: Activation) -> Tensor:
    with torch.no_grad():
        return act.fn(FAMILY_GRID).to(torch.float64)


def is_affine(act: Activation) -> bool:
    """f(x) = a x + b on the grid: no non-linearity at all (the identity, Linear)."""
    y = _values(act)
    a = (y[-1] - y[0]) / (FAMILY_GRID[-1] - FAMILY_GRID[0])
    line = y[0] + a * (FAMILY_GRID - FAMILY_GRID[0])
    return bool(torch.allclose(y, line, rtol=0, atol=1e-9 * max(1.0, float(y.abs().max()))))


def is_bounded(act: Activation) -> bool:
    """Both ends of the declared output range are finite (Sigmoid, Tanh, Hardtanh, ...)."""
    lo, hi = act.output_range
    return math.isfinite(lo) and math.isfinite(hi)


def has_zero_region(act: Activation) -> bool:
    """Exactly zero on every input of [-10, -1] (the rectifiers: ReLU, ReLU6, ...): a unit
    whose inputs all fall there outputs zero and passes no gradient."""
    y = _values(act)
    return bool((y[FAMILY_GRID <= -1] == 0).all())


def has_zero_slope_region(act: Activation) -> bool:
    """A slope of exactly zero over some stretch of [-6, 6] in float64 (ReLU below 0, ReLU6
    above 6, Hardtanh beyond +-1, ...): such an activation can have a unit that passes no
    gradient for any input of a data set by its shape. Sigmoid's slope is small far out,
    never zero; far beyond 6 a float's rounding can zero any slope (a tanh-based GELU's
    below about -9), which the study measures but does not count as a shape."""
    grid = FAMILY_GRID[FAMILY_GRID.abs() <= 6].clone()
    slope = act.derivative(grid).to(torch.float64)
    zero = slope == 0
    return bool((zero[1:] & zero[:-1]).any())


def is_smooth_rectifier(act: Activation) -> bool:
    """Declared smooth, non-affine, unbounded above and bounded below: the smooth ReLU
    variants (GELU, Swish, Mish, Softplus)."""
    lo, hi = act.output_range
    return act.smooth and not is_affine(act) and hi == INF and math.isfinite(lo)
