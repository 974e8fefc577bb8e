"""The known activation nearest a found one: for each built-in g, the best fit
a*g(b*x + c) + e to the found f (scale, sign and shift of the input and the output; no
added linear term, since f and f + x make different networks), and how far it stays.

A search's finding is placed in the field with it before it is called new: a finalist
within a small error of a built-in after the fit is that built-in up to scale, sign or
shift (erf(x) - x is Tanhshrink's relative, not a discovery).

The fit is least squares on a grid of the range the proxy's pre-activations occupy:
(b, c) from a coarse grid (both signs of b: the reflection), then (a, e) in closed form
for each, and the best refined by scipy. The error is the fit's root-mean-square error
over f's standard deviation on the grid (0: the same function; 1: no better than a
constant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# |b| on a log grid from 1/4 to 4, both signs; c from -2 to 2.
B_GRID = np.concatenate([-np.geomspace(4, 0.25, 13), np.geomspace(0.25, 4, 13)])
C_GRID = np.linspace(-2.0, 2.0, 9)
SAME = 1e-3  # a relative error below this: the same function up to scale, sign or shift
CLOSE = 0.05  # below this: close to it


@dataclass(frozen=True)
class Fit:
    known: str
    a: float
    b: float
    c: float
    e: float
    error: float  # RMSE / std of f on the grid

    def formula(self) -> str:
        """'1.02*Tanh(-0.98*x + 0.1) - 0.03'."""
        inner = f"{self.b:.3g}*x" + (
            f" {'+' if self.c >= 0 else '-'} {abs(self.c):.3g}" if abs(self.c) > 5e-4 else ""
        )
        outer = f"{self.a:.3g}*{self.known}({inner})"
        return outer + (
            f" {'+' if self.e >= 0 else '-'} {abs(self.e):.3g}" if abs(self.e) > 5e-4 else ""
        )

    def words(self) -> str:
        """How the found function stands to this built-in, in words."""
        if self.error < SAME:  # on the fit's range: beyond it the two may part
            return f"{self.known} up to scale, sign or shift on the fit range ({self.formula()})"
        if self.error < CLOSE:
            return f"close to {self.known} ({self.formula()}, error {self.error:.1%})"
        return (
            f"no built-in within {CLOSE:.0%}: the nearest is {self.known} (error {self.error:.1%})"
        )


def fit_range(proxy=None) -> np.ndarray:
    """The grid the fit is judged on: +-4 standard deviations of the proxy's first-layer
    pre-activations at initialisation by mean-field theory (q1 = sigma_w^2 q0 + sigma_b^2),
    and never less than [-3, 3], where activations differ most. 241 points."""
    if proxy is None:
        from actlab.search.screen import ProxyInit

        proxy = ProxyInit()
    q1 = proxy.sigma_w**2 * proxy.q0 + proxy.sigma_b**2
    half = max(3.0, 4.0 * float(np.sqrt(q1)))
    return np.linspace(-half, half, 241)


def _values(fn, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return fn(torch.as_tensor(x, dtype=torch.float64)).to(torch.float64).numpy()


def _outer(target: np.ndarray, g: np.ndarray) -> tuple[float, float, float]:
    """(a, e, sum of squares) of the least-squares a*g + e to target."""
    design = np.stack([g, np.ones_like(g)], axis=1)
    (a, e), *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = target - (a * g + e)
    return float(a), float(e), float(residual @ residual)


def coarse_fit(f: np.ndarray, g_fn, x: np.ndarray) -> tuple[float, float, float, float, float]:
    """(sum of squares, a, b, c, e) of the best a*g(b*x + c) + e over the (b, c) grid: g on
    every grid point in one call, (a, e) in closed form for each."""
    bs, cs = np.meshgrid(B_GRID, C_GRID, indexing="ij")
    inputs = bs.reshape(-1, 1) * x + cs.reshape(-1, 1)  # [grid, points]
    g = _values(g_fn, inputs)
    best = (np.inf, 0.0, 1.0, 0.0, float(f.mean()))
    for row, b, c in zip(g, bs.ravel(), cs.ravel(), strict=True):
        if np.isfinite(row).all():
            a, e, sse = _outer(f, row)
            if sse < best[0]:
                best = (sse, a, float(b), float(c), e)
    return best


def fit_known(f: np.ndarray, g_fn, x: np.ndarray, name: str, start=None) -> Fit:
    """The best a*g(b*x + c) + e to f's values on x: the coarse grid's best (or `start`),
    refined by least squares."""
    from scipy.optimize import least_squares

    sse, a, b, c, e = coarse_fit(f, g_fn, x) if start is None else start
    if not np.isfinite(sse):
        return Fit(name, 0.0, 1.0, 0.0, float(f.mean()), 1.0)

    def residual(p: np.ndarray) -> np.ndarray:
        g = _values(g_fn, p[1] * x + p[2])
        return np.nan_to_num(p[0] * g + p[3] - f, nan=1e6, posinf=1e6, neginf=-1e6)

    refined = least_squares(residual, np.array([a, b, c, e]), method="lm", max_nfev=400)
    a, b, c, e = (float(v) for v in refined.x)
    spread = float(f.std()) or 1.0
    error = float(np.sqrt(np.mean(residual(refined.x) ** 2))) / spread
    return Fit(name, a, b, c, e, error)


REFINED = 4  # the built-ins nearest on the coarse grid that are refined


def nearest_known(fn, known: dict, x: np.ndarray | None = None) -> list[Fit]:
    """The known activations nearest `fn`, nearest first: every one on the coarse grid,
    the REFINED best of those refined. `known`: name -> Activation (fixed_builtins)."""
    x = fit_range() if x is None else x
    f = _values(fn, x)
    coarse = {name: coarse_fit(f, act.fn, x) for name, act in known.items()}
    order = sorted(coarse, key=lambda name: (coarse[name][0], name))[:REFINED]
    fits = [fit_known(f, known[name].fn, x, name, coarse[name]) for name in order]
    return sorted(fits, key=lambda fit: (fit.error, fit.known))


def fixed_builtins() -> dict:
    """The built-in activations a finding is held against: every one without learnable
    parameters (Linear left out: any function's fit to a line says nothing)."""
    from actlab.activations import BUILTINS

    return {n: a for n, a in BUILTINS.items() if a.learnable is None and n != "Linear"}
