"""How an activation given as a Python object is written down, so that a new process (`actlab
report`, `actlab run --resume`) can make it again.

A name, an expression or a `module:attr` string rebuilds from the config alone. A callable
handed to `actlab.run` is known to the config only by its name, so the run's manifest keeps a
recipe for it under "activation_recipes":

- "source": the function's own text (a `def` or a lambda) when it is self-contained: run
  again in a namespace holding only `torch`, `math`, `F` (torch.nn.functional), `np` and
  `numpy`, it gives the same values on a grid. Preferred, because it rebuilds anywhere.
- "import": a `module:attr` path that imports to the same object (a function of an
  installed package or of a module on the path).
- "none": neither (a closure over local variables, a function typed into a REPL, a
  callable object); the manifest says why, and `report` / `--resume` say so in one line
  instead of failing on an unknown name.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import math
import textwrap
from collections.abc import Callable
from typing import Any

import torch

from actlab.activations import Activation, custom_activation
from actlab.errors import UserError

# Where the recipe's values are compared with the original's: the validation grid's range.
CHECK_GRID = torch.arange(-1000, 1001, dtype=torch.float64) / 100
HOW_TO_FIX = (
    "define it at the top level of a module or script using only torch, math, F "
    "(torch.nn.functional) and numpy, or give it as 'module:attr'"
)


def namespace() -> dict[str, Any]:
    """What a source recipe may use besides Python's builtins."""
    import numpy

    return {"torch": torch, "math": math, "F": torch.nn.functional, "np": numpy, "numpy": numpy}


def same_values(a: Callable, b: Callable) -> bool:
    try:
        with torch.no_grad():
            return bool(torch.equal(a(CHECK_GRID.clone()), b(CHECK_GRID.clone())))
    except Exception:  # the candidate fails where the original did not: not the same
        return False


def from_source(text: str, function: str) -> Callable:
    """The callable a source recipe writes: a `def` named `function`, or a lambda."""
    ns = namespace()
    if function == "<lambda>":
        return eval(compile(text, "<actlab recipe>", "eval"), ns)  # noqa: S307
    exec(compile(text, "<actlab recipe>", "exec"), ns)  # noqa: S102
    return ns[function]


def source_candidates(fn: Callable) -> list[str]:
    """The texts that may define `fn`: its `def` (decorators dropped), or each lambda of the
    statement it was written in."""
    try:
        text = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):  # typed into a REPL, or built in C
        return []
    if fn.__name__ != "<lambda>":
        return [text[text.index("def ") :]] if "def " in text else []
    try:
        tree = ast.parse(text)
    except SyntaxError:  # a lambda inside a statement that does not parse alone
        return []
    return [
        ast.get_source_segment(text, node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Lambda) and ast.get_source_segment(text, node)
    ]


def import_path(fn: Callable) -> str | None:
    """'module:attr' that imports to `fn` itself, else None (a builtin such as torch.sigmoid
    is found under its name: its qualified name is a private class's)."""
    module = getattr(fn, "__module__", None)
    if not module or module == "__main__":
        return None
    try:
        home = importlib.import_module(module)
    except Exception:  # an import that fails is no recipe
        return None
    for attr in (getattr(fn, "__qualname__", ""), getattr(fn, "__name__", "")):
        if attr.isidentifier() and getattr(home, attr, None) is fn:
            return f"{module}:{attr}"
    return None


def recipe(act: Activation) -> dict[str, Any]:
    """How to make `act` (given as a Python object) again in a new process."""
    kept = {"source": act.source}
    if act.learnable is not None or not isinstance(act.fn, Callable):
        return {**kept, "kind": "none", "why": "not a plain function"}
    fn = act.fn
    unknown = set()  # names a candidate needed that the recipe's namespace lacks
    if inspect.isfunction(fn) and not fn.__code__.co_freevars:
        for text in source_candidates(fn):
            try:
                candidate = from_source(text, fn.__name__)
                candidate(CHECK_GRID[:3].clone())
            except NameError as exc:
                unknown.add(exc.name)
                continue
            except Exception:  # does not run apart from where it was written
                continue
            if same_values(candidate, fn):
                return {**kept, "kind": "source", "function": fn.__name__, "code": text}
    path = import_path(fn)
    if path is not None:
        return {**kept, "kind": "import", "path": path}
    importable = "give it as 'module:attr' of a module on the Python path (PYTHONPATH)"
    if not inspect.isfunction(fn):
        why = f"a {type(fn).__name__} object, not a function"
        fix = f"wrap it in a function of x, or {importable}"
    elif fn.__code__.co_freevars:
        why = "it uses variables of the function that made it"
        fix = f"define it at the top level of a module or script, or {importable}"
    elif unknown:
        names = ", ".join(f"'{n}'" for n in sorted(unknown))
        why = f"it uses {names}, beyond torch, math, F and numpy"
        fix = f"write the value of {names} into the function, or {importable}"
    else:
        why = "its source cannot be read (typed into a REPL?)"
        fix = f"define it in a file, or {importable}"
    return {**kept, "kind": "none", "why": why, "fix": fix}


class FromSource:
    """A function made from a source recipe. It pickles as its recipe (a function made by
    exec has no module to be found in), so process-pool workers make it again."""

    def __init__(self, code: str, function: str) -> None:
        self.code, self.function = code, function
        self.fn = from_source(code, function)

    def __call__(self, x):
        return self.fn(x)

    def __reduce__(self):
        return FromSource, (self.code, self.function)


def rebuild(name: str, made: dict[str, Any]) -> Activation:
    """The activation a recipe describes, under its name; one line if it cannot be made."""
    kind = made.get("kind")
    if kind == "source":
        fn = FromSource(made["code"], made["function"])
    elif kind == "import":
        module, attr = made["path"].split(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except Exception as exc:
            raise UserError(
                f"activation '{name}' was given as {made['path']}, which no longer imports "
                f"({type(exc).__name__}: {exc}); make it importable again"
            ) from None
    else:
        raise UserError(
            f"activation '{name}' was given as a Python object that cannot be made again in "
            f"a new process ({made.get('why', 'no recipe')}); pass it again from Python "
            f"(actlab.run(resume=..., activations=[...]) or actlab.report), or next time "
            f"{made.get('fix', HOW_TO_FIX)}"
        )
    return custom_activation(name, fn, source=made.get("source") or name)


def recipes_for(table: dict[str, Activation], given: dict[str, Any]) -> dict[str, dict]:
    """A recipe for each activation of `table` that was given as an object (`given`); a
    warning, at the start of the run, for each that cannot be made again."""
    import warnings

    made = {name: recipe(act) for name, act in table.items() if name in given and not act.builtin}
    for name, r in made.items():
        if r["kind"] == "none":
            warnings.warn(
                f"activation '{name}' cannot be made again in a new process ({r['why']}): "
                f"actlab report and --resume will need it passed again; {r['fix']}",
                stacklevel=4,
            )
    return made


def run_specs(specs: list[str], recipes: dict[str, dict] | None) -> list[Any]:
    """A run's activation specs with each recipe'd name replaced by its rebuilt activation."""
    recipes = recipes or {}
    return [rebuild(s, recipes[s]) if s in recipes else s for s in specs]
