"""The bench's model: the user's factory, given each activation.

MODEL is `module:attr` (importable from the current directory or the path) or
`path/file.py:attr`, a callable that returns an `nn.Module`. If it takes `act_layer`
(timm's convention: a class, or zero-argument callable, that builds the activation
module), each activation is passed that way; otherwise the model is built as it is and
its activation modules (the types in REPLACED, or those `replace` names) are replaced by
the activation. The seed's generator is set before the factory is called, so every
activation of a seed starts from the same initial weights; a model whose parameter shapes
depend on the activation is refused, since its comparisons could not be paired.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from actlab.errors import UserError

# The activation modules replaced when the factory takes no act_layer.
REPLACED = (
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Hardswish",
    "Hardsigmoid",
    "Hardtanh",
    "Sigmoid",
    "Tanh",
    "Softplus",
    "Softsign",
    "Tanhshrink",
)


def load_object(spec: str, what: str) -> Any:
    """`module:attr` or `path/file.py:attr`; one line naming the fix when it is not there."""
    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise UserError(f"{what} '{spec}' is not module:attr or path/file.py:attr")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise UserError(f"{what} '{spec}': the file '{where}' does not exist; check the path")
        name = f"actlab_user_{path.stem}_{abs(hash(str(path.resolve())))}"
        module = sys.modules.get(name)
        if module is None:
            loader = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(loader)
            sys.modules[name] = module
            try:
                loader.loader.exec_module(module)
            except Exception as e:
                del sys.modules[name]
                raise UserError(f"{what} '{spec}': importing '{where}' failed: {e}") from None
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # a module beside the user, as python -m
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as e:
            raise UserError(
                f"{what} '{spec}': no module '{e.name}'; run from the directory that holds "
                "it, or give path/file.py:attr"
            ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        own = sorted(
            k
            for k, v in vars(module).items()
            if callable(v)
            and not k.startswith("_")
            and getattr(v, "__module__", None) == module.__name__
        )
        offer = f"; it defines {', '.join(own)}" if own else ""
        raise UserError(f"{what} '{spec}': '{where}' has no '{attr}'{offer}") from None


def takes_act_layer(factory) -> bool:
    try:
        return "act_layer" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def act_layer(activation):
    """A class whose instances are `activation` as an nn.Module, whatever arguments a model
    passes it (timm passes inplace=True to some)."""
    from actlab.nn import Activation

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Activation.__init__(self, activation)

    return type(f"ActLayer_{activation.name}", (Activation,), {"__init__": __init__})


def build_model(factory, activation, seed: int, replace: list[str]):
    """The factory's model for `activation`, its weights drawn after torch's generator is
    set to `seed`; (model, how many activation modules were replaced, None for act_layer)."""
    import torch

    torch.manual_seed(seed)
    if takes_act_layer(factory):
        return factory(act_layer=act_layer(activation)), None
    model = factory()
    return model, replace_activations(model, activation, replace)


def how_placed(spec: str, replace: list[str]) -> str:
    """How the activations go into the model, in words: passed as act_layer, or the count
    of modules replaced by type ("3 modules replaced: ReLU x2, Tanh x1")."""
    from collections import Counter

    factory = load_object(spec, "model")
    if takes_act_layer(factory):
        return f"each activation is passed to {spec} as act_layer"
    import torch

    torch.manual_seed(0)
    model = factory()
    names = set(replace or REPLACED)
    found = Counter(type(m).__name__ for m in model.modules() if type(m).__name__ in names)
    listed = ", ".join(f"{k} x{v}" for k, v in found.items())
    total = sum(found.values())
    return f"{total} activation module{'s' if total != 1 else ''} of {spec} replaced ({listed})"


def replace_activations(model, activation, replace: list[str]) -> int:
    """Every module of the replaced types, anywhere in `model`, becomes `activation`."""
    from actlab.nn import Activation

    names = set(replace or REPLACED)
    count = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child).__name__ in names and not isinstance(child, Activation):
                setattr(parent, child_name, Activation(activation))
                count += 1
    return count


def check_model(spec: str, factory, activations: list, replace: list[str], data) -> None:
    """Refuse in one line, before anything is written: a factory that fails or returns no
    module, nothing to replace, parameter shapes that depend on the activation, or inputs
    the model cannot take."""
    import torch
    from torch import nn

    shapes = None
    for activation in activations:  # each builds one model: cheap, and none slips through
        if activation.learnable is not None and any(
            p.scope == "per-unit" for p in activation.learnable.params
        ):
            raise UserError(
                f"activation '{activation.name}' has per-unit parameters, which need the "
                "layer's width; the bench takes per-layer ones (a scalar per module)"
            )
        try:
            model, replaced = build_model(factory, activation, 0, replace)
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"model '{spec}' failed to build: {type(e).__name__}: {e}") from None
        if not isinstance(model, nn.Module):
            raise UserError(
                f"model '{spec}' returned a {type(model).__name__}, not a torch.nn.Module"
            )
        if replaced == 0:
            types = ", ".join(replace) if replace else "the activation modules actlab knows"
            has = sorted({type(m).__name__ for m in model.modules() if not list(m.children())})
            raise UserError(
                f"model '{spec}' has none of {types} to replace and takes no act_layer (its "
                f"modules: {', '.join(has) or 'none'}); name its activation module types with "
                "--replace, add an act_layer argument, or use nn modules for activations "
                "called as functions (F.relu cannot be replaced)"
            )
        mine = [(n, tuple(p.shape)) for n, p in model.named_parameters()]
        mine = [s for s in mine if ".values." not in s[0]]  # the activation's own
        if shapes is not None and mine != shapes:
            raise UserError(
                f"model '{spec}' has other parameter shapes with {activation.name} than with "
                f"{activations[0].name}; the comparison could not be paired (give the "
                "activation no say in the model's shapes)"
            )
        shapes = mine
        try:
            with torch.no_grad():
                out = model(data.x_test[:2])
        except Exception as e:
            raise UserError(
                f"model '{spec}' cannot take the data's inputs (shape "
                f"{tuple(data.x_test.shape[1:])} per sample): {type(e).__name__}: {e}"
            ) from None
        expected = (
            (data.classes,) if data.task == "classification" else tuple(data.y_test.shape[1:])
        )
        if tuple(out.shape[1:]) != expected and not (
            data.task == "regression" and out.shape[1:] == (1,) and expected == ()
        ):
            raise UserError(
                f"model '{spec}' gives outputs of shape {tuple(out.shape[1:])} per sample; the "
                f"data needs {expected} ({data.task})"
            )
