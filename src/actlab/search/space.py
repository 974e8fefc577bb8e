"""Candidate activations: Ramachandran et al.'s core-unit space, or a file of expressions.

The default space is the core unit b(u1(x), u2(x)) of Ramachandran, Zoph & Le, "Searching
for Activation Functions" (2017, arXiv:1710.05941, section 3), with their unary and binary
functions; beta takes each value of BETAS. `units=2` feeds a first unit's output into a
second one: b2(u3(y), u4(x)) with y the first unit, which is too many to enumerate, so it
is sampled.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from actlab.errors import UserError

BETAS = (0.5, 1.0, 2.0)
EPS = "1e-3"  # the small constant of log(|x| + eps) and x1 / (x2 + eps)

# "{}" is the argument, "{b}" the constant beta.
UNARY = (
    "{}",
    "-{}",
    "abs({})",
    "{}**2",
    "{}**3",
    "sqrt(abs({}))",
    "{b}*{}",
    "{} + {b}",
    f"log(abs({{}}) + {EPS})",
    "exp({})",
    "sin({})",
    "cos({})",
    "sinh({})",
    "cosh({})",
    "tanh({})",
    "asinh({})",
    "atan({})",
    "sinc({})",
    "max({}, 0)",
    "min({}, 0)",
    "sigmoid({})",
    "softplus({})",
    "exp(-{}**2)",
    "erf({})",
    "{b}",
)

# "{1}" and "{2}" are the two unary outputs.
BINARY = (
    "{1} + {2}",
    "{1} * {2}",
    "{1} - {2}",
    f"{{1}} / ({{2}} + {EPS})",
    "max({1}, {2})",
    "min({1}, {2})",
    "sigmoid({1}) * {2}",
    "exp(-{b}*({1} - {2})**2)",
    "exp(-{b}*abs({1} - {2}))",
    "{b}*{1} + (1 - {b})*{2}",
)

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


@dataclass(frozen=True)
class Candidate:
    name: str
    expression: str

    @property
    def spec(self) -> str:
        """The `NAME=EXPR` form that --activations and `actlab profile` accept."""
        return f"{self.name}={self.expression}"


def candidate_name(expression: str) -> str:
    """A name that depends only on the expression, so it is the same in every space."""
    return "cand-" + hashlib.sha1(expression.encode()).hexdigest()[:8]


def _atomic(text: str) -> bool:
    """True when text needs no parentheses as an operand: a name, a number, or one call."""
    if re.fullmatch(r"[A-Za-z_]\w*|\d+(\.\d+)?", text):
        return True
    head = re.match(r"[A-Za-z_]\w*\(", text)
    if not head:
        return False
    depth = 0
    for position in range(head.end() - 1, len(text)):
        depth += {"(": 1, ")": -1}.get(text[position], 0)
        if depth == 0:
            return position == len(text) - 1
    return False


def _wrap(text: str) -> str:
    return text if _atomic(text) else f"({text})"


def _fill(template: str, beta: float | None, **operands: str) -> str:
    """A template with its operands in place; operands go in parenthesised where needed,
    except as a function's whole argument, where the call's own parentheses suffice."""
    out = template.replace("{b}", _number(beta) if beta is not None else "{b}")
    for key, value in operands.items():
        slot = "{" + key + "}"
        # As a whole argument, f(...) needs no extra parentheses.
        out = out.replace(f"({slot})", f"({value})").replace(f"({slot},", f"({value},")
        out = out.replace(f", {slot})", f", {value})")
        out = out.replace(slot, _wrap(value))
    return out


def _number(value: float) -> str:
    return f"{value:g}"


def _with_betas(template: str) -> list[float | None]:
    return list(BETAS) if "{b}" in template else [None]


def unary_terms(argument: str = "x") -> list[str]:
    """Every unary function applied to argument, one entry per value of beta."""
    return [
        _fill(template.replace("{}", "{a}"), beta, a=argument)
        for template in UNARY
        for beta in _with_betas(template)
    ]


def binary_terms(left: str, right: str) -> list[str]:
    return [
        _fill(template, beta, **{"1": left, "2": right})
        for template in BINARY
        for beta in _with_betas(template)
    ]


def core_unit_expressions() -> Iterator[str]:
    """Every b(u1(x), u2(x)), in a fixed order; some do not depend on x (both unaries are
    constants) and are skipped."""
    terms = unary_terms()
    for left, right in itertools.product(terms, terms):
        for expression in binary_terms(left, right):
            if re.search(r"\bx\b", expression):
                yield expression


def two_unit_expressions(count: int, seed: int) -> list[str]:
    """`count` draws of b2(u3(y), u4(x)), y a core unit: the space is too big to list."""
    units = list(core_unit_expressions())
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        inner = rng.choice(units)
        left = rng.choice(unary_terms(_wrap(inner)))
        right = rng.choice(unary_terms())
        expression = rng.choice(binary_terms(left, right))
        if re.search(r"\bx\b", expression):
            out.append(expression)
    return out


def default_space(units: int = 1, *, sample: int = 20_000, seed: int = 0) -> list[Candidate]:
    if units == 1:
        expressions = list(core_unit_expressions())
    elif units == 2:
        expressions = two_unit_expressions(sample, seed)
    else:
        raise UserError(f"--units {units}: a search composes 1 or 2 core units; use 1 or 2")
    return [Candidate(candidate_name(e), e) for e in dict.fromkeys(expressions)]


STRUCTURAL = (0.0, 1.0, float(EPS))  # numbers that are part of a form, not a constant


def learnable_constants(expression: str) -> str | None:
    """The expression with its constants made learnable parameters (one per layer, each
    occurrence its own, starting at its value): 'x*sigmoid(2*x)' -> 'x * sigmoid(c1 * x)
    | c1=2.0'. Exponents, 0, 1 and the eps guard stay as they are (they are the form, and
    a learned eps could reach a division by zero); None when nothing is left to learn."""
    import ast

    tree = ast.parse(expression, mode="eval")
    exponents = {
        id(node.right) for node in ast.walk(tree) if isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Pow)
    }  # fmt: skip
    declarations: list[str] = []

    class Lift(ast.NodeTransformer):
        def visit_Constant(self, node: ast.Constant) -> ast.AST:
            value = node.value
            if (
                id(node) in exponents
                or isinstance(value, bool)
                or not isinstance(value, int | float)
                or float(value) in STRUCTURAL
            ):
                return node
            name = f"c{len(declarations) + 1}"
            declarations.append(f"{name}={float(value)!r}")
            return ast.Name(id=name, ctx=ast.Load())

    lifted = Lift().visit(tree)
    if not declarations:
        return None
    return ast.unparse(lifted) + " | " + " | ".join(declarations)


def with_learnable_constants(candidates: list[Candidate]) -> list[Candidate]:
    """Each candidate with constants as its learnable version, named NAME-learn; one
    without constants as it is."""
    out = []
    for c in candidates:
        learnable = learnable_constants(c.expression)
        out.append(c if learnable is None else Candidate(f"{c.name}-learn", learnable))
    return out


def read_space(path: str | Path) -> list[Candidate]:
    """A file of candidates, one per line: `NAME=EXPR` or `EXPR`; `#` starts a comment.
    Each expression is checked here, and a refusal names its line."""
    from actlab.expr import parse_expression

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(
            f"cannot read search space '{path}': {exc.strerror}; check the path"
        ) from None
    candidates: list[Candidate] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, expression = _split_named(line)
        try:
            parse_expression(expression)
        except UserError as exc:
            raise UserError(f"{path}, line {number}: {exc}") from None
        name = name or candidate_name(expression)
        if name in seen:
            raise UserError(
                f"{path}, line {number}: the name '{name}' is already used on line "
                f"{seen[name]}; give each candidate its own name"
            )
        seen[name] = number
        candidates.append(Candidate(name, expression))
    if not candidates:
        raise UserError(
            f"search space '{path}' holds no candidates; write one expression per line "
            "(NAME=EXPR or EXPR, # for comments)"
        )
    return candidates


def _split_named(line: str) -> tuple[str | None, str]:
    """`NAME=EXPR` -> (NAME, EXPR); an expression alone (which may hold '==' or '<=') -> (None, it)."""
    left, sep, right = line.partition("=")
    if sep and NAME.fullmatch(left.strip()) and not right.startswith("="):
        return left.strip(), right.strip()
    return None, line
