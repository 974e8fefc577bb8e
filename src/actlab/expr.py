"""A safe parser for one-line activation expressions in ``x``, such as ``x*tanh(softplus(x))``.

Python's ``ast`` module is used only to build a syntax tree; the tree is then checked against a
small whitelist and evaluated by our own walker. Nothing is ever passed to ``eval``, ``exec`` or
``compile``, so an expression can reach torch math and nothing else.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from actlab.errors import UserError

# Limits keep both parsing and evaluation cheap whatever the user types.
MAX_LENGTH = 500
MAX_NODES = 200
MAX_DEPTH = 50

ALLOWED_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


def _leaky_relu(a: Tensor, slope: Tensor | None = None) -> Tensor:
    # F.leaky_relu wants a Python number for the slope; ours may be a tensor expression.
    if slope is None:
        return F.leaky_relu(a)
    return torch.where(a > 0, a, a * slope)


def _sinc(a: Tensor) -> Tensor:
    # sin(x)/x with its limit 1 at 0 (Ramachandran et al.'s unnormalised sinc); torch.sinc
    # is sin(pi x)/(pi x), so its argument is rescaled. Its gradient at 0 is 0, as it should.
    return torch.sinc(a / math.pi)


def _clamp(a: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    return torch.minimum(torch.maximum(a, lo), hi)


@dataclass(frozen=True)
class _Function:
    impl: Callable[..., Tensor]
    min_args: int
    max_args: int


def _unary(impl: Callable[[Tensor], Tensor]) -> _Function:
    return _Function(impl, 1, 1)


def _binary(impl: Callable[[Tensor, Tensor], Tensor]) -> _Function:
    return _Function(impl, 2, 2)


_FUNCTIONS: dict[str, _Function] = {
    "sin": _unary(torch.sin),
    "cos": _unary(torch.cos),
    "tan": _unary(torch.tan),
    "tanh": _unary(torch.tanh),
    "sinh": _unary(torch.sinh),
    "cosh": _unary(torch.cosh),
    "asinh": _unary(torch.asinh),
    "atan": _unary(torch.atan),
    "sinc": _unary(_sinc),
    "arctan": _unary(torch.atan),
    "exp": _unary(torch.exp),
    "exp2": _unary(torch.exp2),
    "expm1": _unary(torch.expm1),
    "log": _unary(torch.log),
    "log1p": _unary(torch.log1p),
    "log2": _unary(torch.log2),
    "sqrt": _unary(torch.sqrt),
    "abs": _unary(torch.abs),
    "sign": _unary(torch.sign),
    "square": _unary(torch.square),
    "sigmoid": _unary(torch.sigmoid),
    "softplus": _unary(F.softplus),
    "softsign": _unary(F.softsign),
    "erf": _unary(torch.erf),
    "erfc": _unary(torch.erfc),
    "relu": _unary(F.relu),
    "gelu": _unary(F.gelu),
    "silu": _unary(F.silu),
    "swish": _unary(F.silu),
    "elu": _unary(F.elu),
    "selu": _unary(F.selu),
    "celu": _unary(F.celu),
    "mish": _unary(F.mish),
    "logsigmoid": _unary(F.logsigmoid),
    "hardtanh": _unary(F.hardtanh),
    "hardswish": _unary(F.hardswish),
    "hardsigmoid": _unary(F.hardsigmoid),
    "relu6": _unary(F.relu6),
    "leaky_relu": _Function(_leaky_relu, 1, 2),
    "min": _binary(torch.minimum),
    "minimum": _binary(torch.minimum),
    "max": _binary(torch.maximum),
    "maximum": _binary(torch.maximum),
    "clamp": _Function(_clamp, 3, 3),
    "clip": _Function(_clamp, 3, 3),
    # where() is special-cased: its first argument is a comparison, evaluated to a bool tensor.
    "where": _Function(torch.where, 3, 3),
}

ALLOWED_FUNCTIONS: tuple[str, ...] = tuple(_FUNCTIONS)

_BINARY_OPS: dict[type[ast.operator], Callable[[Tensor, Tensor], Tensor]] = {
    ast.Add: torch.add,
    ast.Sub: torch.sub,
    ast.Mult: torch.mul,
    ast.Div: torch.div,
    ast.Pow: torch.pow,
    ast.Mod: torch.remainder,
}

_COMPARISONS: dict[type[ast.cmpop], Callable[[Tensor, Tensor], Tensor]] = {
    ast.Lt: torch.lt,
    ast.LtE: torch.le,
    ast.Gt: torch.gt,
    ast.GtE: torch.ge,
    ast.Eq: torch.eq,
    ast.NotEq: torch.ne,
}

_OPERATOR_SYMBOLS: dict[type[ast.AST], str] = {
    ast.FloorDiv: "//",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Invert: "~",
    ast.Not: "not",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}

# Why each refused construct is refused, phrased as advice where there is an alternative.
_REFUSED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access is not allowed; use functions such as exp(x)",
    ast.Subscript: "indexing is not allowed",
    ast.Lambda: "lambda is not allowed; write the expression in x directly",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.Set: "sets are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Starred: "*-unpacking is not allowed",
    ast.NamedExpr: "assignment (:=) is not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.IfExp: "conditional expressions (a if c else b) are not allowed; use where(cond, a, b)",
    ast.BoolOp: "'and'/'or' are not allowed; use where(cond, a, b)",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Slice: "slices are not allowed",
}


def _allowed_names_text() -> str:
    return f"allowed names: x, {', '.join(ALLOWED_CONSTANTS)}; functions: {', '.join(_FUNCTIONS)}"


def _shown(text: str) -> str:
    """The text as quoted in a message: stripped, on one line."""
    return "".join(repr(ch)[1:-1] if len(f"a{ch}b".splitlines()) > 1 else ch for ch in text.strip())


def _fail(text: str, problem: str) -> UserError:
    return UserError(f"expression '{_shown(text)}': {problem}")


def _syntax_tree(text: str) -> ast.Expression:
    """Parse text into a tree, refusing oversized input before the parser sees it."""
    if not text.strip():
        raise UserError("cannot parse expression '': it is empty; give an expression in x")
    if len(text) > MAX_LENGTH:
        raise UserError(
            f"expression '{text[:40]}...' is {len(text)} characters long; the limit is {MAX_LENGTH}"
        )
    if len(text.strip().splitlines()) > 1:
        raise UserError(f"cannot parse expression '{_shown(text)}': it spans lines; give one line")
    try:
        # Leading spaces would be an IndentationError; they mean nothing here. Python's
        # SyntaxWarnings (e.g. '1if x') would print a second line; the refusal says enough.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            return ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise UserError(f"cannot parse expression '{_shown(text)}': {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise UserError(f"cannot parse expression '{_shown(text)}': {exc}") from None


def _expression_nodes(tree: ast.AST) -> list[ast.AST]:
    # Only expression nodes count: contexts (Load) and operator tokens are bookkeeping.
    return [node for node in ast.walk(tree) if isinstance(node, ast.expr)]


def _depth(tree: ast.AST) -> int:
    """Nesting depth, computed without recursion so a hostile tree cannot blow the stack."""
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend(
            (child, depth + 1)
            for child in ast.iter_child_nodes(node)
            if isinstance(child, ast.expr)
        )
    return deepest


def _check_size(text: str, tree: ast.Expression) -> None:
    count = len(_expression_nodes(tree))
    if count > MAX_NODES:
        raise _fail(text, f"has {count} terms; the limit is {MAX_NODES}")
    depth = _depth(tree)
    if depth > MAX_DEPTH:
        raise _fail(text, f"is nested {depth} levels deep; the limit is {MAX_DEPTH}")


class _Checker:
    """Walks the tree once and refuses anything outside the whitelist.

    Recursion is safe here because _check_size has already bounded the depth.
    """

    def __init__(self, text: str, params: tuple[str, ...] = ()) -> None:
        self.text = text
        self.params = params

    def check(self, node: ast.AST, condition_allowed: bool = False) -> None:
        if isinstance(node, ast.Constant):
            self._check_constant(node)
        elif isinstance(node, ast.Name):
            self._check_name(node)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY_OPS:
                raise self._operator_refused(node.op)
            self.check(node.left)
            self.check(node.right)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.UAdd | ast.USub):
                raise self._operator_refused(node.op)
            self.check(node.operand)
        elif isinstance(node, ast.Compare):
            self._check_compare(node, condition_allowed)
        elif isinstance(node, ast.Call):
            self._check_call(node)
        else:
            problem = _REFUSED.get(type(node), f"{type(node).__name__} is not allowed")
            raise _fail(self.text, problem)

    def _operator_refused(self, op: ast.AST) -> UserError:
        symbol = _OPERATOR_SYMBOLS.get(type(op), type(op).__name__)
        return _fail(self.text, f"operator '{symbol}' is not allowed; use + - * / ** %")

    def _check_constant(self, node: ast.Constant) -> None:
        value = node.value
        # bool is a subclass of int, so it must be refused before the int test.
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = "None" if value is None else type(value).__name__
            raise _fail(self.text, f"constants of type {kind} are not allowed; only numbers")

    def _check_name(self, node: ast.Name) -> None:
        if node.id == "x" or node.id in ALLOWED_CONSTANTS or node.id in self.params:
            return
        if node.id in _FUNCTIONS:
            raise _fail(self.text, f"'{node.id}' is a function; call it, as in {node.id}(x)")
        raise _fail(self.text, f"unknown name '{node.id}'; {_allowed_names_text()}")

    def _check_compare(self, node: ast.Compare, condition_allowed: bool) -> None:
        if not condition_allowed:
            raise _fail(self.text, "comparisons are only allowed as the first argument of where()")
        if len(node.ops) != 1:
            raise _fail(self.text, "chained comparisons are not allowed; use one of < <= > >=")
        if type(node.ops[0]) not in _COMPARISONS:
            raise self._operator_refused(node.ops[0])
        self.check(node.left)
        self.check(node.comparators[0])

    def _check_call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name):
            # Report the callee's own problem (e.g. attribute access) when it has one.
            self.check(node.func)
            raise _fail(self.text, "only named functions such as exp(x) can be called")
        name = node.func.id
        if name not in _FUNCTIONS:
            raise _fail(self.text, f"unknown function '{name}'; {_allowed_names_text()}")
        if node.keywords:
            raise _fail(self.text, f"keyword arguments are not allowed in {name}()")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise _fail(self.text, f"*-unpacking is not allowed in {name}()")
        self._check_arity(name, len(node.args))
        if name == "where" and not isinstance(node.args[0], ast.Compare):
            raise _fail(self.text, "where() needs a comparison such as x > 0 as first argument")
        for position, arg in enumerate(node.args):
            self.check(arg, condition_allowed=(name == "where" and position == 0))

    def _check_arity(self, name: str, given: int) -> None:
        function = _FUNCTIONS[name]
        if function.min_args <= given <= function.max_args:
            return
        if function.min_args == function.max_args:
            wanted = f"{function.min_args}"
        else:
            wanted = f"{function.min_args} to {function.max_args}"
        plural = "" if wanted == "1" else "s"
        raise _fail(self.text, f"{name}() takes {wanted} argument{plural}, {given} given")


def _uses_x(tree: ast.AST) -> bool:
    return any(isinstance(node, ast.Name) and node.id == "x" for node in ast.walk(tree))


def _validated_tree(text: str, params: tuple[str, ...] = ()) -> ast.Expression:
    tree = _syntax_tree(text)
    _check_size(text, tree)
    _Checker(text, params).check(tree.body)
    if not _uses_x(tree):
        raise _fail(text, "does not use x; an activation must depend on its input")
    return tree


class _Evaluator:
    """Evaluates a validated tree; every number becomes a tensor of x's dtype and device,
    so Python never does unbounded integer arithmetic (10**10**10 is just inf)."""

    def __init__(self, x: Tensor, values: Mapping[str, Tensor] | None = None) -> None:
        self.x = x
        self.values = values or {}

    def constant(self, value: float) -> Tensor:
        return torch.tensor(value, dtype=self.x.dtype, device=self.x.device)

    def evaluate(self, node: ast.AST) -> Tensor:
        if isinstance(node, ast.Constant):
            return self.constant(_as_float(node.value))
        if isinstance(node, ast.Name):
            if node.id == "x":
                return self.x
            if node.id in self.values:  # a learnable parameter (learnable.py)
                return self.values[node.id]
            return self.constant(ALLOWED_CONSTANTS[node.id])
        if isinstance(node, ast.BinOp):
            operation = _BINARY_OPS[type(node.op)]
            return operation(self.evaluate(node.left), self.evaluate(node.right))
        if isinstance(node, ast.UnaryOp):
            operand = self.evaluate(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.Compare):
            comparison = _COMPARISONS[type(node.ops[0])]
            return comparison(self.evaluate(node.left), self.evaluate(node.comparators[0]))
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            arguments = [self.evaluate(arg) for arg in node.args]
            return _FUNCTIONS[node.func.id].impl(*arguments)
        raise AssertionError(f"unvalidated node {type(node).__name__}")  # checker forbids this


def _callable_name(impl: Callable) -> str:
    """How plain PyTorch code calls `impl`: torch.X, F.X, or the helper's own name (the
    helpers of this module are copied into an exported file: helper_sources)."""
    name = impl.__name__
    if getattr(torch, name, None) is impl:
        return f"torch.{name}"
    if getattr(F, name, None) is impl:
        return f"F.{name}"
    return name


class _Writer:
    """Writes a validated tree as plain PyTorch code that computes what _Evaluator does, the
    same operations in the same order (so the same numbers): every number a tensor of x's
    dtype (`_c`), a parameter `self.NAME`."""

    def write(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant):
            return f"_c({_as_float(node.value)!r}, x)"
        if isinstance(node, ast.Name):
            if node.id == "x":
                return "x"
            if node.id in ALLOWED_CONSTANTS:
                return f"_c({ALLOWED_CONSTANTS[node.id]!r}, x)"
            return f"self.{node.id}"
        if isinstance(node, ast.BinOp):
            operation = _callable_name(_BINARY_OPS[type(node.op)])
            return f"{operation}({self.write(node.left)}, {self.write(node.right)})"
        if isinstance(node, ast.UnaryOp):
            operand = self.write(node.operand)
            return f"-({operand})" if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.Compare):
            comparison = _callable_name(_COMPARISONS[type(node.ops[0])])
            return f"{comparison}({self.write(node.left)}, {self.write(node.comparators[0])})"
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            arguments = ", ".join(self.write(arg) for arg in node.args)
            return f"{_callable_name(_FUNCTIONS[node.func.id].impl)}({arguments})"
        raise AssertionError(f"unvalidated node {type(node).__name__}")


def helper_sources() -> str:
    """The source of this module's helpers that written code may call (_leaky_relu, ...)."""
    import inspect

    helpers = (_leaky_relu, _sinc, _clamp)
    return "\n\n".join(inspect.getsource(helper).strip() for helper in helpers)


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer literal too big for a float
        return math.inf


class Expression:
    """A parsed, whitelisted expression in x, callable on tensors.

    `params` names parameters the expression may use besides x (learnable.py); a call then
    gives their values, tensors that broadcast against x.
    Pickles as its source text only; the tree is rebuilt (and re-validated) on unpickling.
    """

    def __init__(self, source: str, params: tuple[str, ...] = ()) -> None:
        self.source = source
        self.params = tuple(params)
        self._tree = _validated_tree(source, self.params)

    def torch_source(self) -> str:
        """The expression as plain PyTorch code in `x` (parameters as `self.NAME`), which
        gives the same numbers as calling this Expression (export.py)."""
        return _Writer().write(self._tree.body)

    def names_used(self) -> set[str]:
        return {node.id for node in ast.walk(self._tree) if isinstance(node, ast.Name)}

    def __call__(self, x: Tensor, values: Mapping[str, Tensor] | None = None) -> Tensor:
        if not (x.is_floating_point() or x.is_complex()):  # ints and bools: compute in float
            x = x.to(torch.get_default_dtype())
        missing = [p for p in self.params if not values or p not in values]
        if missing:
            raise _fail(self.source, f"no value given for the parameter(s) {', '.join(missing)}")
        try:
            result = _Evaluator(x, values).evaluate(self._tree.body)
        except Exception as exc:  # torch errors are the user's expression failing, not a bug
            raise _fail(self.source, f"cannot be evaluated: {exc}") from None
        # An expression like where(x > 0, 1, 2) is still per-element: give it x's shape
        # (or, with parameters of a wider shape, the broadcast of the two).
        if result.shape != x.shape:
            shape = torch.broadcast_shapes(result.shape, x.shape)
            return result.expand(shape).clone()
        return result

    def __getstate__(self) -> dict:
        if not self.params:
            return {"source": self.source}
        return {"source": self.source, "params": self.params}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["source"], tuple(state.get("params", ())))

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def parse_expression(text: str) -> Callable[[Tensor], Tensor]:
    """Parse a one-line expression in x into a callable on tensors; UserError if refused."""
    return Expression(text)
