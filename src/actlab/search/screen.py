"""Drops before any training: candidates that are not finite, constant, or the same
function as one already kept, judged on a fixed probe set of inputs.

Two expressions are the same function here when they agree on every probe point to six
significant digits of their largest magnitude; with `modulo_scale`, after dividing each
by that magnitude, so 2*tanh(x) and tanh(x) are one (a positive scale). A function is also
dropped when it is a kept one up to sign (-f), reflection (f(-x)) or both (-f(-x)): in a
network without residual connections or normalisation whose weights and biases are drawn
from zero-mean symmetric distributions, negating the next layer's weights (sign) or the
layer's own weights and biases (reflection) turns one into the other with the same
distribution of networks, so training cannot tell them apart. With a residual connection
or normalisation the symmetry is approximate, and the drop's detail says so. The first
in the space's order is kept. A derivative that is not finite on a
probe point (sqrt(|x|) at 0, where autograd gives NaN) is a drop too: one such input
poisons every gradient after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from actlab.search.space import Candidate

PROBE_RANGE = 10.0
PROBE_GRID = 401  # a spacing of 0.05, with 0 exactly
PROBE_RANDOM = 64  # standard normal draws, x3, from a fixed seed: off-grid points
DIGITS = 6


@dataclass(frozen=True)
class Drop:
    name: str
    expression: str
    reason: str  # "not finite", "derivative not finite", "constant", "duplicate", ...
    detail: str = ""  # e.g. which candidate it duplicates


def probe_points():
    import torch

    grid = torch.linspace(-PROBE_RANGE, PROBE_RANGE, PROBE_GRID, dtype=torch.float64)
    grid[PROBE_GRID // 2] = 0.0  # exactly: where |x|, sqrt and division have their trouble
    generator = torch.Generator().manual_seed(20171016)  # fixed: the probe set never changes
    extra = 3.0 * torch.randn(PROBE_RANDOM, generator=generator, dtype=torch.float64)
    return torch.cat([grid, extra])


def function_of(expression: str):
    """The function of a candidate; a learnable one ('EXPR | c1=2.0') at its initial
    values, which is what screening judges."""
    from actlab.expr import parse_expression

    if "|" in expression:
        from actlab.learnable import AtInit, parse_learnable

        return AtInit(parse_learnable(expression))
    return parse_expression(expression)


def _values(expression: str, x):
    """f and f' on the probe points and f on their negatives (the reflection), as numpy
    arrays; Nones if the expression fails."""
    import torch

    from actlab.errors import UserError

    try:
        fn = function_of(expression)
        x = x.clone().requires_grad_(True)
        y = fn(x)
        (slope,) = torch.autograd.grad(y.sum(), x)
        with torch.no_grad():
            mirrored = fn(-x.detach())
    except (UserError, RuntimeError):
        return None, None, None
    return y.detach().numpy(), slope.numpy(), mirrored.numpy()


# (reason, how the kept function is changed into the candidate), checked in this order.
SYMMETRIES = (
    ("duplicate up to sign", "-{kept}"),
    ("duplicate up to reflection", "{kept} at -x"),
    ("duplicate up to sign and reflection", "-{kept} at -x"),
)


def fingerprint(values, modulo_scale: bool) -> bytes:
    """Equal for functions equal on the probe set (see the module docstring)."""
    import numpy as np

    scale = float(np.abs(values).max())
    shape = np.round(values / scale * 10**DIGITS).astype(np.int64).tobytes()
    if modulo_scale:
        return shape
    return shape + f"{scale:.{DIGITS - 1}e}".encode()


def known_fingerprints(names: list[str], modulo_scale: bool) -> dict[bytes, str]:
    """The fingerprints of built-in activations (the controls and the known ones racing),
    to seed `dedupe`: a candidate that is one of them, or one of them up to sign or
    reflection, is dropped as a duplicate of a known activation."""
    import torch

    from actlab.activations import BUILTINS

    x = probe_points()
    seen: dict[bytes, str] = {}
    for name in names:
        with torch.no_grad():
            values = BUILTINS[name].fn(x).to(torch.float64).numpy()
        seen.setdefault(fingerprint(values, modulo_scale), f"{name} (a known activation)")
    return seen


def dedupe(
    candidates: list[Candidate],
    *,
    modulo_scale: bool = False,
    seen: dict[bytes, str] | None = None,
    symmetric_proxy: bool = True,
) -> tuple[list[Candidate], list[Drop]]:
    """The candidates kept (in order) and every drop with its reason. `seen` (fingerprint
    -> name) carries the functions kept so far from one call to the next, so a space can be
    screened a piece at a time. `symmetric_proxy`: whether sign and reflection are exact
    symmetries of the proxy network (no residual connection, no normalisation)."""
    import numpy as np

    x = probe_points()
    kept: list[Candidate] = []
    drops: list[Drop] = []
    seen = {} if seen is None else seen
    how = (
        ""
        if symmetric_proxy
        else ("; approximate: the proxy's residual connection or normalisation breaks the symmetry")
    )
    for candidate in candidates:
        values, slope, mirrored = _values(candidate.expression, x)
        reason, detail = "", ""
        if values is None or not np.isfinite(values).all():
            reason = "not finite"
            detail = f"on the probe set [-{PROBE_RANGE:g}, {PROBE_RANGE:g}]"
        elif not np.isfinite(slope).all():
            reason = "derivative not finite"
            detail = f"on the probe set [-{PROBE_RANGE:g}, {PROBE_RANGE:g}]"
        elif np.ptp(values) <= 1e-9 * max(1.0, float(np.abs(values).max())):
            reason = "constant"
        else:
            key = fingerprint(values, modulo_scale)
            variants = (-values, mirrored, -mirrored)
            if key in seen:
                reason, detail = "duplicate", f"same function as {seen[key]}"
            elif np.isfinite(mirrored).all():
                for (name, form), variant in zip(SYMMETRIES, variants, strict=True):
                    other = seen.get(fingerprint(variant, modulo_scale))
                    if other is not None:
                        reason, detail = name, f"is {form.format(kept=other)}{how}"
                        break
            if not reason:
                seen[key] = candidate.name
        if reason:
            drops.append(Drop(candidate.name, candidate.expression, reason, detail))
        else:
            kept.append(candidate)
    return kept, drops


@dataclass(frozen=True)
class ProxyInit:
    """The proxy network's initialisation, as mean-field theory sees it. The defaults are
    the mnist1d MLP's: PyTorch's nn.Linear default draws weights with variance
    1/(3 fan_in) (kaiming_uniform with a = sqrt(5)), so sigma_w^2 = 1/3, and biases with
    variance 1/(3 fan_in), 1/300 at the hidden width 100; two activation layers; inputs
    of about unit variance."""

    depth: int = 2
    sigma_w: float = (1 / 3) ** 0.5
    sigma_b: float = (1 / 300) ** 0.5
    q0: float = 1.0


EXPLODES, COLLAPSES = 1e4, 1e-4  # the signal's variance after the proxy's depth, over q0


def theory_screen(
    candidates: list[Candidate], proxy: ProxyInit = ProxyInit()
) -> tuple[list[Candidate], list[Drop]]:
    """Drop candidates whose signal explodes or collapses within the proxy's depth by the
    mean-field variance map q' = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2 (theory.py):
    explodes when q grows past EXPLODES x q0 (or stops being finite), collapses when the
    activation's part of it, q - sigma_b^2, falls below COLLAPSES x q0 (the bias alone
    carries the signal: every input looks the same)."""
    import math

    from actlab import theory

    kept, drops = [], []
    for candidate in candidates:
        q, reason = proxy.q0, ""
        for layer in range(1, proxy.depth + 1):
            q = theory.variance_map(candidate.expression, q, proxy.sigma_w, proxy.sigma_b)
            if not math.isfinite(q) or q > EXPLODES * proxy.q0:
                reason = "signal explodes"
            elif q - proxy.sigma_b**2 < COLLAPSES * proxy.q0:
                reason = "signal collapses"
            if reason:
                detail = f"variance {q:.3g} after layer {layer} of {proxy.depth} from {proxy.q0:g}"
                drops.append(Drop(candidate.name, candidate.expression, reason, detail))
                break
        else:
            kept.append(candidate)
    return kept, drops
