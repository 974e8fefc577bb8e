"""Mean-field theory of deep signal propagation (Poole et al. 2016; Schoenholz et al. 2017).

For a deep fully connected network with weights N(0, sigma_w^2 / fan_in) and biases
N(0, sigma_b^2), the pre-activations of a wide layer are Gaussian, and three maps describe how
signals travel through depth:

* the variance map      q' = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2,  z ~ N(0, 1),
  with fixed point q* and slope dq'/dq = sigma_w^2 E[z phi(u) phi'(u)] / sqrt(q), u = sqrt(q) z
  (Stein's lemma turns this into Schoenholz et al.'s chi_1 + sigma_w^2 E[phi phi''];
  this module's form needs phi' only);
* chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]: below 1 ordered (gradients vanish), above 1 chaotic
  (gradients explode), 1 is the edge of chaos;
* the correlation map   c' = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q*, with
  u1 = sqrt(q*) z1, u2 = sqrt(q*) (c z1 + sqrt(1 - c^2) z2) (computed with q'(q*) in place of
  q*, equal at a fixed point, so c' = 1 at c = 1 exactly), its fixed point c* and slope
  chi_c = sigma_w^2 E[phi'(u1) phi'(u2)] at c*; depth scales xi_q = -1/ln|dq'/dq at q*| and
  xi_c = -1/ln(chi_c).

Quadrature
----------
Plain Gauss-Hermite converges slowly when the integrand has a kink (ReLU, its relatives, the
piecewise-linear "hard" functions): the error falls only algebraically with the node count
(E[ReLU(z)] with 200 probabilists' Gauss-Hermite nodes is still off by 8e-4). Here
every Gaussian expectation is a composite Gauss-Legendre rule (16 nodes a panel, float64) on the
truncated line z in [-12, 12] (the Gaussian mass outside is 4e-33), with panel edges at every
kink of the integrand, so each panel sees an analytic function and converges geometrically.
Panels are at most 1 wide in z and at most 4 wide in x = sqrt(q) z (so smooth features of size ~1
in x stay resolved at large q; the refinement stops at 32x, i.e. q ~ 1.6e4, and at 8x per
direction, q ~ 1e3, for 2-D rules). Kinks are known
exactly for the built-in activations (each entry's ``kinks``, activations.py) and found numerically for anything
else (:func:`detect_kinks`: jumps in phi, phi' or the slope of phi', scanned on [-128, 128] and
refined to ~1e-11). Two-dimensional expectations are iterated: the inner integral over z2 is a
1-D Gaussian expectation with per-node kinks; the outer rule over z1 also gets graded panel
edges around the points where the inner integral bends sharply (width sqrt(1 - c^2) / |c|), so
c near 1 stays accurate. Against scipy's adaptive quad the 1-D expectations agree to ~1e-12.

Conventions and degenerate cases
--------------------------------
* q* is the fixed point the variance map reaches from unit input variance q0 = 1: the nearest
  fixed point in the direction the map moves (exactly where iteration goes whenever q' is
  increasing in q, as for every built-in activation). None when the variance grows without
  bound (no fixed point below q = 1e6 q0).
* Stability: |dq'/dq| < 1 is "stable", > 1 "unstable". At |dq'/dq| = 1 the second order decides:
  "marginally stable" when q' < q just above (and q' > q just below) q*, e.g. tanh at
  sigma_w = 1, sigma_b = 0, where q -> 0 like 1/depth; "neutral" when q' = q around q*, e.g.
  ReLU at sigma_w^2 = 2, sigma_b = 0, whose variance map is the identity (every q is a fixed
  point: the input variance is kept, not restored; then q* is reported as q0); otherwise
  "unstable". Marginally stable counts as stable; neutral does not (it is not attracting).
* q* = 0 (sigma_b = 0 and phi(0) = 0, e.g. tanh with sigma_w < 1): quantities at q* are limits
  q -> 0+, so chi_1 = sigma_w^2 (phi'(0-)^2 + phi'(0+)^2) / 2. The correlation map is then
  degenerate (the signal vanishes and phi acts linearly on it), so c*, chi_c and xi_c are None.
* The edge of chaos: chi_1(q*) = 1 is solved along the curve of fixed points, parametrised by
  q*: each q* > sigma_b^2 fixes sigma_w^2 = (q* - sigma_b^2) / E[phi(sqrt(q*) z)^2], so
  chi_1 = (q* - sigma_b^2) E[phi'^2] / E[phi^2] is a function of q* alone and its roots give
  every (sigma_w, q*) with chi_1 = 1, on stable and unstable fixed points alike (iterating the
  variance map would only ever find the stable ones). With sigma_b = 0 and phi(0) = 0 the end
  point q* -> 0, sigma_w = 1 / sqrt(E[phi'(0+-)^2]) is also a root. A root on an unstable
  variance fixed point is reported as such (``sigma_w`` None, status "unstable"). The scan
  covers q* - sigma_b^2 in [1e-10, 1e4].
* What that finds for Swish and GELU (and Mish): at sigma_b = 0 the only chi_1 = 1 point is the
  end point q* = 0, sigma_w = 1/phi'(0) = 2 (1.667 for Mish), where q' = q + O(q^2) with a
  positive q^2 term, so the fixed point repels; for small sigma_b > 0 the chi_1 = 1 point has
  q* > 0 with dq'/dq > 1 (Swish at sigma_b = 0.1: sigma_w = 1.8200, q* = 0.260,
  dq'/dq = 1.072). It becomes stable only above sigma_b ~ 0.745 (Swish), 0.416 (GELU),
  0.307 (Mish), where q* is large (> 14, 3.6, 1.7) and sigma_w ~ 1.41. Smooth saturating
  functions (tanh, erf) and ELU/SELU have stable critical points for every sigma_b.
* The variance-preserving gain is the sigma_w for which q = 1 is a fixed point with
  sigma_b = 0: sigma_w = 1 / sqrt(E[phi(z)^2]) ("variance-preserving at unit input variance").
  ReLU gives sqrt(2) and LeakyReLU(s) sqrt(2 / (1 + s^2)), as torch.nn.init.calculate_gain;
  tanh gives 1.5925374197 (q = 1 is then a stable fixed point), not PyTorch's 5/3 (a
  heuristic choice, not this fixed-point condition).

torch is imported inside functions only, so importing this module is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from actlab.errors import UserError

if TYPE_CHECKING:
    from actlab.activations import Activation

ArrayFn = Callable[[np.ndarray], np.ndarray]

Z_MAX = 12.0  # z-range of every rule: N(0, 1) has mass 4e-33 outside [-12, 12]
NODES_PER_PANEL = 16
BASE_PANELS = 24  # panels of width 1 on [-12, 12]
X_PANEL_WIDTH = 4.0  # widest panel in x = sqrt(q) z
MAX_REFINE = 32  # at most 32x finer panels (reached at sqrt(q) = 128)
MAX_REFINE_2D = 8  # the same for each direction of 2-D rules (keeps them below ~1e7 points)
Q_TINY = 1e-40  # where "q -> 0+" limits are evaluated
Q_MAX_FACTOR = 2.0**20  # the fixed-point search looks up to q0 * 2^20 ~ 1e6 q0
SLOPE_TOL = 1e-6  # |slope - 1| below this is decided at second order
CHI_TOL = 1e-9  # |chi - 1| below this is critical

_GL_T, _GL_W = np.polynomial.legendre.leggauss(NODES_PER_PANEL)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_CHUNK = 2_000_000  # evaluation points per batch

# Points where a built-in activation is not infinitely differentiable (a jump in phi, phi' or
# phi''). Softplus switches to x above 20 (a jump of 2e-9); Mish's softplus is internal to torch.
# A built-in's kinks are part of its table entry (Activation.kinks in activations.py).


# ---------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True)
class MeanFieldActivation:
    """An activation ready for Gaussian integrals: numpy float64 phi and phi', and its kinks."""

    name: str
    kinks: tuple[float, ...]
    phi: ArrayFn = field(repr=False, compare=False)
    dphi: ArrayFn = field(repr=False, compare=False)


@dataclass(frozen=True)
class VarianceFixedPoint:
    """q* and its stability. ``status``: 'stable', 'marginally stable', 'neutral', 'unstable' or
    'none' (no fixed point: the variance grows without bound); ``q``/``slope``/``stable`` are
    None for 'none'."""

    q: float | None
    slope: float | None
    stable: bool | None
    status: str
    note: str = ""


@dataclass(frozen=True)
class CorrelationFixedPoint:
    """c* and chi_c. ``status``: 'ordered' (c* = 1, chi_1 < 1), 'critical' (c* = 1, chi_1 = 1),
    'chaotic' (c* < 1) or 'undefined' (no q* > 0 to work at)."""

    c: float | None
    chi_c: float | None
    status: str
    note: str = ""


@dataclass(frozen=True)
class MeanField:
    """Everything mean-field theory says about one (activation, sigma_w, sigma_b).

    ``phase``: 'ordered' (chi_1 < 1), 'chaotic' (chi_1 > 1), 'critical' (chi_1 = 1 within 1e-9)
    or 'unbounded' (no variance fixed point). Depth scales are math.inf where they diverge
    (|slope| = 1) and None where undefined."""

    activation: str
    sigma_w: float
    sigma_b: float
    q_star: float | None
    q_star_stable: bool | None
    q_status: str
    q_slope: float | None
    chi_1: float | None
    c_star: float | None
    chi_c: float | None
    xi_q: float | None
    xi_c: float | None
    phase: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CriticalPoint:
    """One solution of chi_1(q*) = 1: the sigma_w, its variance fixed point and that point's
    stability (see :class:`VarianceFixedPoint`)."""

    sigma_w: float
    q_star: float
    slope: float
    status: str


@dataclass(frozen=True)
class EdgeOfChaos:
    """The critical sigma_w for a sigma_b. ``sigma_w`` is a usable critical initialisation: the
    first candidate (by q*) whose variance fixed point is stable, marginally stable or neutral;
    None otherwise. ``status`` is that point's stability, 'unstable' when every candidate sits
    on an unstable fixed point, or 'none' when chi_1 = 1 has no solution."""

    activation: str
    sigma_b: float
    sigma_w: float | None
    q_star: float | None
    status: str
    note: str
    candidates: tuple[CriticalPoint, ...] = ()


@dataclass(frozen=True)
class PhaseDiagram:
    """Order/chaos over a grid; rows follow ``sigma_b``, columns ``sigma_w``."""

    activation: str
    sigma_w: tuple[float, ...]
    sigma_b: tuple[float, ...]
    q_star: tuple[tuple[float | None, ...], ...]
    chi_1: tuple[tuple[float | None, ...], ...]
    phase: tuple[tuple[str, ...], ...]
    edge: tuple[EdgeOfChaos, ...]


@dataclass(frozen=True)
class Summary:
    """What ``actlab theory`` prints: the mean field at (sigma_w, sigma_b), the edge of chaos at
    that sigma_b and the variance-preserving gain."""

    mean_field: MeanField
    edge: EdgeOfChaos
    gain: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: exactly the CLI's keys; None (null) where undefined or infinite."""
        mf = self.mean_field
        return {
            "activation": mf.activation,
            "sigma_w": mf.sigma_w,
            "sigma_b": mf.sigma_b,
            "q_star": _finite_or_none(mf.q_star),
            "q_star_stable": mf.q_star_stable,
            "chi_1": _finite_or_none(mf.chi_1),
            "c_star": _finite_or_none(mf.c_star),
            "xi_q": _finite_or_none(mf.xi_q),
            "xi_c": _finite_or_none(mf.xi_c),
            "critical_sigma_w": _finite_or_none(self.edge.sigma_w),
            "gain": _finite_or_none(self.gain),
        }

    def text(self) -> str:
        """The human-readable report of ``actlab theory``."""
        mf, edge = self.mean_field, self.edge
        rows: list[tuple[str, str]] = []
        if mf.q_star is None:
            rows.append(("q*", "none (the variance grows without bound)"))
        else:
            rows.append(("q*", f"{mf.q_star:.6g}  ({mf.q_status}, dq'/dq = {mf.q_slope:.6g})"))
        rows.append(("chi_1", "undefined" if mf.chi_1 is None else f"{mf.chi_1:.6g}  ({mf.phase})"))
        if mf.c_star is None:
            rows.append(("c*", "undefined"))
        else:
            rows.append(("c*", f"{mf.c_star:.6g}  (chi_c = {mf.chi_c:.6g})"))
        rows.append(("xi_q", _layers(mf.xi_q)))
        rows.append(("xi_c", _layers(mf.xi_c)))
        if edge.sigma_w is not None:
            crit = f"{edge.sigma_w:.6g} at sigma_b = {edge.sigma_b:g}  ({edge.status} q* = {edge.q_star:.6g})"
        else:
            crit = f"none usable at sigma_b = {edge.sigma_b:g}  ({edge.status})"
        rows.append(("critical sigma_w", crit))
        gain = "undefined" if self.gain is None else f"{self.gain:.6g}"
        rows.append(("gain", f"{gain}  (variance-preserving at unit input variance, sigma_b = 0)"))
        lines = [f"{mf.activation} at sigma_w = {mf.sigma_w:g}, sigma_b = {mf.sigma_b:g}"]
        lines += [f"  {label:<17} {value}" for label, value in rows]
        notes = list(mf.notes)
        if edge.note and edge.note not in notes:
            notes.append(f"edge of chaos: {edge.note}")
        lines += [f"  note: {n}" for n in notes]
        return "\n".join(lines)


def _layers(xi: float | None) -> str:
    if xi is None:
        return "undefined"
    if math.isinf(xi):
        return "inf (diverges)"
    return f"{xi:.6g} layers"


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# ---------------------------------------------------------------------------------------------
# Activations as numpy functions, and their kinks


def _numpy(torch_fn: Callable[[Any], Any]) -> ArrayFn:
    def fn(x: np.ndarray) -> np.ndarray:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
        with torch.no_grad():
            y = torch_fn(t)
        return np.asarray(y.detach().to(torch.float64).cpu().numpy(), dtype=np.float64)

    return fn


def prepare(activation: Any) -> MeanFieldActivation:
    """Resolve anything :func:`actlab.activations.get_activation` accepts (or pass a
    MeanFieldActivation through). Names and expressions are cached."""
    if isinstance(activation, MeanFieldActivation):
        return activation
    if isinstance(activation, str):
        return _prepare_text(activation)
    from actlab.activations import get_activation

    act = get_activation(activation)
    try:
        hash(act)
    except TypeError:  # an unhashable callable inside: no caching
        return _prepare_activation.__wrapped__(act)
    return _prepare_activation(act)


@lru_cache(maxsize=256)
def _prepare_text(spec: str) -> MeanFieldActivation:
    from actlab.activations import get_activation

    return _prepare_activation(get_activation(spec))


@lru_cache(maxsize=256)
def _prepare_activation(act: Activation) -> MeanFieldActivation:
    phi = _numpy(act.fn)
    dphi = _numpy(act.derivative)
    kinks = _builtin_kinks(act)
    if kinks is None:
        kinks = _detect(phi, dphi)
    return MeanFieldActivation(name=act.name, kinks=kinks, phi=phi, dphi=dphi)


def _builtin_kinks(act: Activation) -> tuple[float, ...] | None:
    """The table's kinks when ``act`` computes a built-in function (found by identity of the
    forward function, so renamed built-ins keep their kinks)."""
    from actlab.activations import BUILTINS

    for builtin in BUILTINS.values():
        if builtin.fn is act.fn and (act.deriv is None or act.deriv is builtin.deriv):
            return builtin.kinks
    return None


def detect_kinks(activation: Any, lo: float = -128.0, hi: float = 128.0) -> tuple[float, ...]:
    """Numerically located points in [lo, hi] where phi or phi' jumps or phi' has a kink.

    A float64 grid of step 2^-7 is scanned for second differences far larger than their
    neighbours'; each hit is refined by zooming (x16 per step, 8 steps) to ~1e-11, and snapped
    to 6 decimals when within 1e-8 of them. Extra points (false alarms at sharp but smooth
    bends) only add panel edges, so they never hurt accuracy."""
    if isinstance(activation, MeanFieldActivation):
        return _detect(activation.phi, activation.dphi, lo, hi)
    from actlab.activations import get_activation

    act = get_activation(activation)
    return _detect(_numpy(act.fn), _numpy(act.derivative), lo, hi)


def _detect(
    phi: ArrayFn, dphi: ArrayFn, lo: float = -128.0, hi: float = 128.0
) -> tuple[float, ...]:
    step = 2.0**-7
    x = np.arange(math.floor(lo / step), math.ceil(hi / step) + 1) * step
    found: list[tuple[float, float]] = []  # (location, strength)
    for fn in (phi, dphi):
        y = fn(x)
        if not np.all(np.isfinite(y)):
            y = np.where(np.isfinite(y), y, 0.0)
        d2 = np.abs(y[2:] - 2.0 * y[1:-1] + y[:-2])  # centred at x[1:-1]
        ref = np.zeros_like(d2)
        gap = 4
        ref[gap:] = np.maximum(ref[gap:], d2[:-gap])
        ref[:-gap] = np.maximum(ref[:-gap], d2[gap:])
        scale = 1.0 + np.abs(y[1:-1])
        hits = np.flatnonzero((d2 > 32.0 * ref) & (d2 > 1e-12 * scale))
        # group neighbouring hits (a jump marks two adjacent centres)
        groups: list[list[int]] = []
        for i in hits:
            if groups and i - groups[-1][-1] <= 3:
                groups[-1].append(int(i))
            else:
                groups.append([int(i)])
        for g in groups:
            a, b = x[g[0]], x[g[-1] + 2]  # d2[i] spans x[i] .. x[i+2]
            found.append((_zoom(fn, a, b), float(d2[g].max())))
    if len(found) > 32:  # a noisy function: keep the strongest
        found = sorted(found, key=lambda t: -t[1])[:32]
    points: list[float] = []
    for t, _ in sorted(found):
        snapped = round(t, 6)
        t = snapped if abs(t - snapped) < 1e-8 else t
        t = 0.0 if t == 0 else t  # no -0.0
        if not points or abs(t - points[-1]) > 1e-6:
            points.append(t)
    return tuple(points)


def _zoom(fn: ArrayFn, a: float, b: float, steps: int = 8) -> float:
    for _ in range(steps):
        x = np.linspace(a, b, 33)
        y = fn(x)
        d2 = np.abs(y[2:] - 2.0 * y[1:-1] + y[:-2])
        i = int(np.argmax(d2)) + 1
        a, b = x[i - 1], x[i + 1]
    return float((a + b) / 2)


# ---------------------------------------------------------------------------------------------
# Quadrature


def _refine_level(std: np.ndarray, cap: int) -> np.ndarray:
    s = np.clip(std / X_PANEL_WIDTH, 1.0, float(cap))
    return np.ceil(np.log2(s) - 1e-12).astype(int)


def _rule(extra: np.ndarray, panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and Gaussian-weighted weights, one row per row of ``extra`` (additional panel edges,
    clipped to [-Z, Z]), on ``panels`` equal panels of [-Z, Z] split at those edges."""
    rows = extra.shape[0]
    base = np.broadcast_to(np.linspace(-Z_MAX, Z_MAX, panels + 1), (rows, panels + 1))
    edges = np.concatenate([base, np.clip(extra, -Z_MAX, Z_MAX)], axis=1)
    edges.sort(axis=1)
    half = (edges[:, 1:] - edges[:, :-1]) / 2
    mid = (edges[:, 1:] + edges[:, :-1]) / 2
    z = mid[..., None] + half[..., None] * _GL_T
    w = half[..., None] * _GL_W * np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return z.reshape(rows, -1), w.reshape(rows, -1)


def _expect_rows(
    f: ArrayFn,
    mean: np.ndarray | float,
    std: np.ndarray | float,
    kinks: Sequence[float],
    cap: int = MAX_REFINE,
) -> np.ndarray:
    """E[f(mean_r + std_r z)] for each row r, z ~ N(0, 1). ``kinks`` are points in x where f is
    not smooth: each row's panels are split at (kink - mean_r) / std_r."""
    mean, std = np.broadcast_arrays(np.asarray(mean, float), np.asarray(std, float))
    mean, std = mean.ravel(), std.ravel()
    out = np.empty(mean.shape[0])
    point = std == 0
    if point.any():
        with np.errstate(over="ignore", invalid="ignore"):
            out[point] = f(mean[point])
    kinks_arr = np.asarray(kinks, dtype=float)
    levels = _refine_level(std, cap)
    for level in np.unique(levels[~point]):
        idx = np.flatnonzero(~point & (levels == level))
        panels = BASE_PANELS * (1 << int(level))
        per_row = (panels + len(kinks_arr)) * NODES_PER_PANEL
        chunk = max(1, _CHUNK // per_row)
        for start in range(0, len(idx), chunk):
            rows = idx[start : start + chunk]
            m, s = mean[rows, None], std[rows, None]
            with np.errstate(over="ignore", invalid="ignore"):  # fast growth gives inf / nan
                z, w = _rule((kinks_arr[None, :] - m) / s, panels)
                out[rows] = np.sum(w * f(m + s * z), axis=1)
    return out


def gaussian_expectation(
    f: ArrayFn, q: float = 1.0, *, mean: float = 0.0, kinks: Sequence[float] = ()
) -> float:
    """E[f(mean + sqrt(q) z)], z ~ N(0, 1), for a vectorised numpy function f whose
    non-smooth points (in its own argument) are ``kinks``."""
    return float(_expect_rows(f, float(mean), math.sqrt(_check_q(q)), kinks)[0])


def _integrand(prep: MeanFieldActivation, derivative: bool, power: int = 1) -> ArrayFn:
    g = prep.dphi if derivative else prep.phi
    return g if power == 1 else (lambda x: g(x) ** power)


def expectation(
    activation: Any, q: float = 1.0, *, derivative: bool = False, power: int = 1
) -> float:
    """E[g(sqrt(q) z)^power] with g = phi, or phi' when ``derivative``."""
    prep = prepare(activation)
    return gaussian_expectation(_integrand(prep, derivative, power), q, kinks=prep.kinks)


def _pair(
    fa: ArrayFn, fb: ArrayFn, kinks_a: Sequence[float], kinks_b: Sequence[float], q: float, c: float
) -> float:
    """E[fa(u1) fb(u2)], u1 = sqrt(q) z1, u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2)."""
    c = min(1.0, max(-1.0, c))
    r = math.sqrt(q)
    s = math.sqrt(max(0.0, 1.0 - c * c))
    ka, kb = np.asarray(kinks_a, float), np.asarray(kinks_b, float)
    if r == 0:
        return float(fa(np.zeros(1))[0]) * float(fb(np.zeros(1))[0])
    if s == 0:  # u2 = c u1
        both = np.concatenate([ka, kb / c])
        return float(_expect_rows(lambda x: fa(x) * fb(c * x), 0.0, r, both)[0])
    level = int(_refine_level(np.array([r]), MAX_REFINE_2D)[0])
    h = 2 * Z_MAX / (BASE_PANELS * (1 << level))
    edges = [ka / r]
    if c != 0:
        # The inner integral bends within ~ s/|c| of z1 = k / (r c): grade the panels there.
        width = s / abs(c)
        if width < h:
            n = int(math.ceil(math.log2(h / width))) + 3
            offsets = width * 2.0 ** np.arange(-3, n + 1)
            for k in kb:
                centre = k / (r * c)
                edges.append(np.concatenate([[centre], centre - offsets, centre + offsets]))
        else:
            edges.append(kb / (r * c))
    z1, w1 = _rule(np.concatenate(edges)[None, :], BASE_PANELS * (1 << level))
    z1, w1 = z1[0], w1[0]
    keep = w1 > 0
    z1, w1 = z1[keep], w1[keep]
    inner = _expect_rows(fb, r * c * z1, r * s, kb, cap=MAX_REFINE_2D)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sum(w1 * fa(r * z1) * inner))


def pair_expectation(activation: Any, q: float, c: float, *, derivative: bool = False) -> float:
    """E[g(u1) g(u2)] with u1 = sqrt(q) z1, u2 = sqrt(q)(c z1 + sqrt(1-c^2) z2), g = phi or
    phi'. 2-D, by iterated composite Gauss-Legendre."""
    prep = prepare(activation)
    g = _integrand(prep, derivative)
    return _pair(g, g, prep.kinks, prep.kinks, q, c)


# ---------------------------------------------------------------------------------------------
# The maps


def _check_sigma(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0:
        raise UserError(f"{name} must be a finite number >= 0, got {value}")
    return value


def _check_q(q: float) -> float:
    q = float(q)
    if not math.isfinite(q) or q < 0:
        raise UserError(f"a variance q must be a finite number >= 0, got {q}")
    return q


def _second_moment(prep: MeanFieldActivation, q: np.ndarray | float) -> np.ndarray:
    q = np.maximum(np.asarray(q, float), Q_TINY)
    return _expect_rows(_integrand(prep, False, 2), 0.0, np.sqrt(q), prep.kinks)


def _slope_moment(prep: MeanFieldActivation, q: float) -> float:
    """E[z phi(u) phi'(u)] / sqrt(q) = E[u phi(u) phi'(u)] / q, u = sqrt(q) z (limit at 0+)."""
    q = max(q, Q_TINY)
    f = lambda x: x * prep.phi(x) * prep.dphi(x)  # noqa: E731
    return float(_expect_rows(f, 0.0, math.sqrt(q), prep.kinks)[0]) / q


def _chi_moment(prep: MeanFieldActivation, q: float) -> float:
    q = max(q, Q_TINY)
    return float(_expect_rows(_integrand(prep, True, 2), 0.0, math.sqrt(q), prep.kinks)[0])


def variance_map(activation: Any, q: float, sigma_w: float, sigma_b: float = 0.0) -> float:
    """q' = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2."""
    prep = prepare(activation)
    sw, sb = _check_sigma("sigma_w", sigma_w), _check_sigma("sigma_b", sigma_b)
    q = _check_q(q)
    if q == 0:
        return sw * sw * float(prep.phi(np.zeros(1))[0]) ** 2 + sb * sb
    return sw * sw * float(_second_moment(prep, q)[0]) + sb * sb


def variance_map_slope(activation: Any, q: float, sigma_w: float) -> float:
    """dq'/dq = sigma_w^2 E[z phi(u) phi'(u)] / sqrt(q), u = sqrt(q) z; at q = 0 the limit
    q -> 0+. (By Stein's lemma this equals chi_1 + sigma_w^2 E[phi(u) phi''(u)].)"""
    prep = prepare(activation)
    sw = _check_sigma("sigma_w", sigma_w)
    return sw * sw * _slope_moment(prep, _check_q(q))


def chi_1(activation: Any, q: float, sigma_w: float) -> float:
    """chi_1 = sigma_w^2 E[phi'(sqrt(q) z)^2] (the limit q -> 0+ at q = 0)."""
    prep = prepare(activation)
    sw = _check_sigma("sigma_w", sigma_w)
    return sw * sw * _chi_moment(prep, _check_q(q))


def correlation_map(
    activation: Any, c: float, q: float, sigma_w: float, sigma_b: float = 0.0
) -> float:
    """c' = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q', with u1, u2 at variance q and
    correlation c, and q' = variance_map(q) (= q at a fixed point, the textbook form)."""
    prep = prepare(activation)
    sw, sb = _check_sigma("sigma_w", sigma_w), _check_sigma("sigma_b", sigma_b)
    return _cmap(prep, c, _check_q(q), sw, sb)


def _cmap(prep: MeanFieldActivation, c: float, q: float, sw: float, sb: float) -> float:
    num = sw * sw * _pair(prep.phi, prep.phi, prep.kinks, prep.kinks, q, c) + sb * sb
    den = sw * sw * float(_second_moment(prep, q)[0]) + sb * sb
    return num / den


def chi_c(activation: Any, c: float, q: float, sigma_w: float) -> float:
    """chi_c = sigma_w^2 E[phi'(u1) phi'(u2)], the slope of the correlation map at c."""
    prep = prepare(activation)
    sw = _check_sigma("sigma_w", sigma_w)
    return sw * sw * _pair(prep.dphi, prep.dphi, prep.kinks, prep.kinks, _check_q(q), c)


# ---------------------------------------------------------------------------------------------
# Fixed points


def _classify(prep: MeanFieldActivation, q: float, sw: float, sb: float) -> tuple[float, str]:
    """(dq'/dq at q, stability status) for a fixed point q of the variance map."""
    slope = sw * sw * _slope_moment(prep, q)
    if abs(slope) < 1 - SLOPE_TOL:
        return slope, "stable"
    if abs(slope) > 1 + SLOPE_TOL:
        return slope, "unstable"

    def rel_gap(p: float) -> float:  # (q'(p) - p) / |p - q|
        return (sw * sw * float(_second_moment(prep, p)[0]) + sb * sb - p) / abs(p - q)

    delta = 1e-3 * q if q > 0 else 1e-4
    above = rel_gap(q + delta)
    below = rel_gap(q - delta) if q > 0 else None
    tol = 1e-9
    if abs(above) <= tol and (below is None or abs(below) <= tol):
        return slope, "neutral"
    if above < -tol and (below is None or below > tol):
        return slope, "marginally stable"
    return slope, "unstable"


_STABLE = ("stable", "marginally stable")
_NOTES = {
    "stable": "",
    "marginally stable": "|dq'/dq| = 1 but q' < q just above q*: attracting, at a power-law "
    "rather than exponential rate",
    "neutral": "the variance map is the identity around q* (every q is a fixed point): the "
    "input variance is kept but not restored; q* is reported as the input variance",
    "unstable": "the variance fixed point repels: nearby variances move away from it",
}


def _gap(prep: MeanFieldActivation, q: np.ndarray, sw: float, sb: float) -> np.ndarray:
    gap = sw * sw * _second_moment(prep, q) + sb * sb - q
    return np.where(np.isnan(gap), np.inf, gap)  # inf - inf: growing without bound


def variance_fixed_point(
    activation: Any, sigma_w: float, sigma_b: float = 0.0, *, q0: float = 1.0
) -> VarianceFixedPoint:
    """The fixed point q* that the variance map reaches from input variance q0 (see the module
    docstring), with dq'/dq there and its stability."""
    from scipy.optimize import brentq

    prep = prepare(activation)
    sw, sb = _check_sigma("sigma_w", sigma_w), _check_sigma("sigma_b", sigma_b)
    q0 = _check_q(q0)
    if q0 == 0:
        raise UserError("the input variance q0 must be > 0")
    g0 = float(_gap(prep, np.array([q0]), sw, sb)[0])
    tol = 1e-12 * max(1.0, q0)

    def gap(q: float) -> float:
        return float(_gap(prep, np.array([q]), sw, sb)[0])

    if abs(g0) <= tol:
        q_star = q0
    elif g0 < 0:
        grid = q0 * 2.0 ** (-np.arange(1, 81) / 2)  # down to ~1e-12 q0
        gaps = _gap(prep, grid, sw, sb)
        up = np.flatnonzero(gaps >= 0)
        if up.size:
            k = int(up[0])
            hi = q0 if k == 0 else float(grid[k - 1])
            q_star = (
                float(grid[k])
                if gaps[k] == 0
                else brentq(gap, float(grid[k]), hi, xtol=1e-300, rtol=1e-14)
            )
        else:
            g_zero = sw * sw * float(prep.phi(np.zeros(1))[0]) ** 2 + sb * sb
            if g_zero <= 1e-300:
                q_star = 0.0
            else:
                q_star = brentq(gap, 0.0, float(grid[-1]), xtol=1e-300, rtol=1e-14)
    else:
        grid = q0 * 2.0 ** (np.arange(1, 41) / 2)  # up to 2^20 q0
        gaps = _gap(prep, grid, sw, sb)
        down = np.flatnonzero(gaps <= 0)
        if not down.size:
            return VarianceFixedPoint(
                None,
                None,
                None,
                "none",
                f"no fixed point between q0 = {q0:g} and {grid[-1]:.3g}: the variance grows "
                "without bound",
            )
        k = int(down[0])
        lo = q0 if k == 0 else float(grid[k - 1])
        q_star = (
            float(grid[k])
            if gaps[k] == 0
            else brentq(gap, lo, float(grid[k]), xtol=1e-300, rtol=1e-14)
        )
    slope, status = _classify(prep, q_star, sw, sb)
    return VarianceFixedPoint(q_star, slope, status in _STABLE, status, _NOTES[status])


def correlation_fixed_point(
    activation: Any, sigma_w: float, sigma_b: float = 0.0, *, q_star: float | None = None
) -> CorrelationFixedPoint:
    """c* of the correlation map at variance q* (found from q0 = 1 unless given) and chi_c.

    With chi_1 <= 1 at q*, c* = 1 and chi_c = chi_1. With chi_1 > 1, c = 1 repels and c* is the
    unique root of c'(c) = c in [0, 1) (the map is a power series in c with non-negative
    coefficients, hence convex and increasing on [0, 1])."""
    from scipy.optimize import brentq

    prep = prepare(activation)
    sw, sb = _check_sigma("sigma_w", sigma_w), _check_sigma("sigma_b", sigma_b)
    if q_star is None:
        q_star = variance_fixed_point(prep, sw, sb).q
    if q_star is None:
        return CorrelationFixedPoint(None, None, "undefined", "no variance fixed point")
    if q_star <= 0:
        return CorrelationFixedPoint(
            None,
            None,
            "undefined",
            "q* = 0: the signal vanishes and phi acts linearly on it, so every correlation "
            "is kept (the correlation map is degenerate)",
        )
    chi1 = sw * sw * _chi_moment(prep, q_star)
    if chi1 <= 1 + CHI_TOL:
        status = "critical" if chi1 >= 1 - CHI_TOL else "ordered"
        return CorrelationFixedPoint(1.0, chi1, status, "")

    def g(c: float) -> float:
        return _cmap(prep, c, q_star, sw, sb) - c

    hi = None
    for delta in (0.5, 1e-1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-8, 1e-10):
        if g(1.0 - delta) < 0:
            hi = 1.0 - delta
            break
    if hi is None:  # chi_1 so close to 1 that c* is indistinguishable from 1
        return CorrelationFixedPoint(1.0, chi1, "critical", "c* within 1e-10 of 1")
    g0 = g(0.0)
    c_star = 0.0 if g0 <= 1e-14 else brentq(g, 0.0, hi, xtol=1e-13, rtol=1e-13)
    chic = sw * sw * _pair(prep.dphi, prep.dphi, prep.kinks, prep.kinks, q_star, c_star)
    return CorrelationFixedPoint(c_star, chic, "chaotic", "")


def _depth_scale(slope: float | None) -> float | None:
    """-1/ln|slope|: 0 for slope 0, inf at |slope| = 1, None above (no convergence)."""
    if slope is None:
        return None
    a = abs(slope)
    if a == 0:
        return 0.0
    if abs(a - 1) <= CHI_TOL:
        return math.inf
    if a > 1:
        return None
    return -1.0 / math.log(a)


def _phase(chi1: float | None) -> str:
    if chi1 is None:
        return "unbounded"
    if chi1 < 1 - CHI_TOL:
        return "ordered"
    if chi1 > 1 + CHI_TOL:
        return "chaotic"
    return "critical"


def mean_field(activation: Any, sigma_w: float = 1.0, sigma_b: float = 0.0) -> MeanField:
    """q*, its stability, chi_1, c*, chi_c and the depth scales at (sigma_w, sigma_b)."""
    prep = prepare(activation)
    sw, sb = _check_sigma("sigma_w", sigma_w), _check_sigma("sigma_b", sigma_b)
    fp = variance_fixed_point(prep, sw, sb)
    notes = [fp.note] if fp.note else []
    if fp.q is None:
        return MeanField(
            activation=prep.name,
            sigma_w=sw,
            sigma_b=sb,
            q_star=None,
            q_star_stable=None,
            q_status=fp.status,
            q_slope=None,
            chi_1=None,
            c_star=None,
            chi_c=None,
            xi_q=None,
            xi_c=None,
            phase="unbounded",
            notes=tuple(notes),
        )
    chi1 = sw * sw * _chi_moment(prep, fp.q)
    cfp = correlation_fixed_point(prep, sw, sb, q_star=fp.q)
    if cfp.note:
        notes.append(cfp.note)
    xi_q = _depth_scale(fp.slope) if fp.status != "unstable" else None
    xi_c = _depth_scale(cfp.chi_c)
    return MeanField(
        activation=prep.name,
        sigma_w=sw,
        sigma_b=sb,
        q_star=fp.q,
        q_star_stable=fp.stable,
        q_status=fp.status,
        q_slope=fp.slope,
        chi_1=chi1,
        c_star=cfp.c,
        chi_c=cfp.chi_c,
        xi_q=xi_q,
        xi_c=xi_c,
        phase=_phase(chi1),
        notes=tuple(notes),
    )


def edge_of_chaos(activation: Any, sigma_b: float = 0.0) -> EdgeOfChaos:
    """sigma_w with chi_1(q*) = 1 at this sigma_b, by root finding along the curve of variance
    fixed points (see the module docstring), each candidate classified by its q*'s stability."""
    from scipy.optimize import brentq

    prep = prepare(activation)
    sb = _check_sigma("sigma_b", sigma_b)
    b2 = sb * sb

    def parts(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # d = q* - sigma_b^2 > 0
        q = d + b2
        m2 = _second_moment(prep, q)
        dm2 = _expect_rows(_integrand(prep, True, 2), 0.0, np.sqrt(q), prep.kinks)
        return m2, dm2

    def h_of(d: np.ndarray) -> np.ndarray:
        m2, dm2 = parts(d)
        with np.errstate(divide="ignore", invalid="ignore"):
            return d * dm2 / m2 - 1.0

    def h_scalar(d: float) -> float:
        return float(h_of(np.array([d]))[0])

    grid = 2.0 ** (np.arange(-66, 28) / 2)  # q* - sigma_b^2 from 1e-10 to 1e4
    h = h_of(grid)
    roots: list[float] = []
    tol = 1e-9
    for i in range(len(grid) - 1):
        a, b = h[i], h[i + 1]
        if np.isfinite(a) and np.isfinite(b) and abs(a) > tol and abs(b) > tol and a * b < 0:
            roots.append(brentq(h_scalar, grid[i], grid[i + 1], xtol=1e-300, rtol=1e-14))
    candidates: list[CriticalPoint] = []
    phi0 = float(prep.phi(np.zeros(1))[0])
    if sb == 0 and phi0 == 0:
        dm2 = _chi_moment(prep, 0.0)  # (phi'(0-)^2 + phi'(0+)^2) / 2
        if dm2 > 0:
            sw = 1.0 / math.sqrt(dm2)
            slope, status = _classify(prep, 0.0, sw, 0.0)
            candidates.append(CriticalPoint(sw, 0.0, slope, status))
    for d in roots:
        q = d + b2
        sw = math.sqrt(d / float(_second_moment(prep, q)[0]))
        slope, status = _classify(prep, q, sw, sb)
        candidates.append(CriticalPoint(sw, q, slope, status))
    usable = [p for p in candidates if p.status in (*_STABLE, "neutral")]
    if usable:
        p = usable[0]
        note = _NOTES[p.status]
        if p.status == "neutral":
            note = (
                f"chi_1 = 1 at sigma_w = {p.sigma_w:.6g} for every q*: the variance map is "
                "the identity, so any input variance is kept (neutral, not attracting)"
            )
        return EdgeOfChaos(prep.name, sb, p.sigma_w, p.q_star, p.status, note, tuple(candidates))
    if candidates:
        listed = ", ".join(f"sigma_w = {p.sigma_w:.6g} (q* = {p.q_star:.4g})" for p in candidates)
        return EdgeOfChaos(
            prep.name,
            sb,
            None,
            None,
            "unstable",
            f"chi_1 = 1 only on unstable variance fixed points: {listed}; not a usable "
            "critical initialisation",
            tuple(candidates),
        )
    note = f"chi_1 != 1 at every variance fixed point with q* <= {grid[-1] + b2:.3g}"
    return EdgeOfChaos(prep.name, sb, None, None, "none", note)


def phase_diagram(
    activation: Any, sigma_w: Sequence[float], sigma_b: Sequence[float]
) -> PhaseDiagram:
    """Phase ('ordered', 'chaotic', 'critical', 'unbounded'), q* and chi_1 at every
    (sigma_b, sigma_w) on the grid (q* reached from q0 = 1), plus the edge of chaos per sigma_b."""
    prep = prepare(activation)
    sws = tuple(_check_sigma("sigma_w", w) for w in sigma_w)
    sbs = tuple(_check_sigma("sigma_b", b) for b in sigma_b)
    q_rows, chi_rows, phase_rows = [], [], []
    for sb in sbs:
        qs, chis, phases = [], [], []
        for sw in sws:
            fp = variance_fixed_point(prep, sw, sb)
            chi1 = None if fp.q is None else sw * sw * _chi_moment(prep, fp.q)
            qs.append(fp.q)
            chis.append(chi1)
            phases.append(_phase(chi1))
        q_rows.append(tuple(qs))
        chi_rows.append(tuple(chis))
        phase_rows.append(tuple(phases))
    edge = tuple(edge_of_chaos(prep, sb) for sb in sbs)
    return PhaseDiagram(
        prep.name, sws, sbs, tuple(q_rows), tuple(chi_rows), tuple(phase_rows), edge
    )


def variance_preserving_gain(activation: Any) -> float | None:
    """sigma_w = 1 / sqrt(E[phi(z)^2]): with sigma_b = 0 it makes q = 1 a fixed point, i.e. the
    variance-preserving gain at unit input variance. None if E[phi(z)^2] = 0."""
    prep = prepare(activation)
    m2 = float(_second_moment(prep, 1.0)[0])
    return 1.0 / math.sqrt(m2) if m2 > 0 and math.isfinite(m2) else None


def summarise(activation: Any, sigma_w: float = 1.0, sigma_b: float = 0.0) -> Summary:
    """The CLI's numbers: :func:`mean_field`, :func:`edge_of_chaos` at sigma_b and the gain."""
    prep = prepare(activation)
    mf = mean_field(prep, sigma_w, sigma_b)
    return Summary(mf, edge_of_chaos(prep, mf.sigma_b), variance_preserving_gain(prep))
