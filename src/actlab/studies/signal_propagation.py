"""Signal propagation: mean-field theory (actlab.theory) against finite networks at initialisation.

Mean-field theory (Poole et al. 2016; Schoenholz et al. 2017) says what an infinitely wide
network with weights N(0, sigma_w^2 / fan_in) and biases N(0, sigma_b^2) does to a signal:
the pre-activation variance follows the q-map q_{l+1} = sigma_w^2 E[phi(sqrt(q_l) z)^2] +
sigma_b^2, and going backwards the mean squared gradient is multiplied, per layer, by
chi(q_l) = sigma_w^2 E[phi'(sqrt(q_l) z)^2], which tends to chi_1 at the fixed point q*. This
study measures both in finite networks and sets them side by side.

Networks ("points")
-------------------
* fixed points: every activation at each (sigma_w, sigma_b) of ``points``. Default
  (1, 0) (the Gaussian twin of Xavier/LeCun between equal-width layers; ordered for most
  activations, marginal for tanh and ELU, neutral for Linear), (sqrt 2, 0) (He; the exact
  critical point of ReLU) and (1.5, 0.05) (chaotic for tanh, ordered for Sigmoid and Swish,
  unbounded variance for Linear, the ReLU family, ELU and GELU);
* critical points: each activation at its own edge-of-chaos sigma_w for every sigma_b in
  ``critical_sigma_b`` (default 0.05), when :func:`actlab.theory.edge_of_chaos` finds a usable
  (stable, marginally stable or neutral) one; otherwise no network is built and the trial
  records why (``critical_status``; e.g. Swish and GELU, whose chi_1 = 1 point repels);
* ``xavier``: the tutorial's networks (gradient-flow protocol: 1 input, width
  ``xavier_width``, ``xavier_depth`` hidden layers, 1 output, Xavier-uniform weights, zero
  biases). Between the equal-width hidden layers Xavier-uniform has sigma_w^2 = fan_in *
  2 / (fan_in + fan_out) = 1, sigma_b = 0; the first layer gives q_1 = 2 / (1 + width).

Gaussian networks have ``width`` inputs, ``depth`` hidden layers and a ``width``-wide output
layer, every layer N(0, sigma_w^2 / fan_in) weights and N(0, sigma_b^2) biases
(``init_mlp_params(scheme="gaussian", gain=sigma_w, bias_std=sigma_b)``). Inputs: n_samples x
N(0, I) vectors, so the first pre-activation variance is q_1 = sigma_w^2 + sigma_b^2.

Measurement: one forward pass (capturing every pre-activation z_l) and one backward pass of the
loss sum(out * r), r ~ N(0, 1) fixed per seed, so the gradient entering the network is
isotropic. The backward pass is written out layer by layer from the captured z_l and the
stack's weights (g_l = phi'(z_l) * (g_{l+1} W_{l+1})), member by member, so it is the same in
fast and exact mode (in exact mode the captured tensors are copies, off the autograd graph)
and a member's numbers never depend on its batch-mates.

Rows per trial (``layer`` 1 = first hidden layer):
  preact_var (layer)    mean over units and inputs of z_l^2 (the measured q_l)
  grad_sq (layer)       mean over units and inputs of (dloss/dz_l)^2
  grad_growth (layer)   grad_sq_l / grad_sq_{l+1}, l = 1 .. depth-1 (mean field: chi(q_l))
  pred_q (layer)        the q-map iterated from q_1 (theory)
  pred_growth (layer)   chi(pred_q_l) (theory)
  sigma_w, sigma_b      the point (sigma_w resolved for critical points; 1 for Xavier)
  pred_q_star           q* reached from q_1 (variance_fixed_point(q0=q_1)); NaN when the
                        variance grows without bound
  pred_q_status         0 stable, 1 marginally stable, 2 neutral, 3 unstable, 4 none
  pred_q_slope          dq'/dq at q* (NaN without q*)
  pred_chi_1            chi at q* (NaN without q*)
  growth_mean           geometric mean of grad_growth over the last half of the layers
                        (l > (depth-1) // 2), where the signal is nearest its fixed point
  pred_growth_mean      the same mean of pred_growth
  growth_ratio          growth_mean / pred_growth_mean
  growth_vs_chi_1       growth_mean / pred_chi_1
  var_mean, pred_var_mean, var_ratio
                        the same for preact_var and pred_q over layers l > depth // 2
  critical_status       critical points only: the edge of chaos's status (codes as above);
  critical_candidate_sigma_w, critical_candidate_q_star
                        its first chi_1 = 1 candidate when that one is not usable
  pred_dw_factor        Xavier trials only: mean-field prediction of the gradient-flow
                        protocol's (last / first mean |dW|)^(1 / depth) (see below)

Predictions are stored as rows (computed in ``run``, where the activation objects are), so
the tables need no theory calls; only the phase-diagram figure evaluates theory at report
time. Every trial of a batch shares one activation and one point (``batch_key``), so the
theory runs once per batch and a batch holds only its seeds' captured tensors.

The tutorial's gradient-flow metric, mean |dW_l| ~ |grad at z_l| x |input to layer l|,
multiplies the backward gradient by the forward signal. ``pred_dw_factor`` is its mean-field
value for one input: with G_l the mean squared gradient at layer l,
(last / first)^2 = E[phi(z_L)^2] G_out / (G_1 E[x^2]), G_1 = G_out (2 / (width + 1))
E[phi'(z_L)^2] prod_{l<L} chi(q_l). Where q* = 0 (ReLU, GELU, Swish under Xavier) the signal
shrinks forwards as fast as the gradient shrinks backwards, so the ratio stays near 1 while
every layer's gradient vanishes. (The protocol sums 32 inputs through a mean-output loss;
that changes the end layers by factors of order one, so the measured and predicted per-layer
factors can differ by several percent.)

Seeding: weights come from generator(run_seed, "signal_propagation/init", sizes, point label,
seed), keyed neither by the activation nor by sigma_w, so within a seed every activation at a
point shares the standard-normal draws (at a critical point each scales them by its own
sigma_w): common random numbers. Inputs and r are keyed by their shape and the seed only.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from actlab.report.text import fmt
from actlab.studies.base import ReportContext, RunContext, Section, Study, Trial

NAME = "signal_propagation"
XAVIER = "xavier_uniform"
STATUS_CODES = {"stable": 0, "marginally stable": 1, "neutral": 2, "unstable": 3, "none": 4}
STATUS_NAMES = {v: k for k, v in STATUS_CODES.items()}
USABLE = (0, 1, 2)
Q_LIMIT = 1e300  # the q-map trajectory stops (NaN) beyond this

# The phase-diagram figure's grid (theory.phase_diagram) and the q* grid that traces each
# activation's edge of chaos.
PHASE_SIGMA_W = tuple(float(x) for x in np.round(np.linspace(0.5, 3.0, 26), 10))
PHASE_SIGMA_B = tuple(float(x) for x in np.round(np.linspace(0.0, 0.5, 11), 10))
EDGE_Q = tuple(float(q) for q in np.geomspace(1e-5, 1e2, 56))


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sigma_w: float = Field(gt=0, le=100)
    sigma_b: float = Field(0.0, ge=0, le=100)


def default_points() -> list[Point]:
    return [
        Point(sigma_w=1.0, sigma_b=0.0),
        Point(sigma_w=math.sqrt(2.0), sigma_b=0.0),
        Point(sigma_w=1.5, sigma_b=0.05),
    ]


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(1000, ge=1, le=16384, description="hidden width of the Gaussian networks")
    depth: int = Field(40, ge=1, le=1000, description="hidden layers of the Gaussian networks")
    n_samples: int = Field(64, ge=1, le=100_000, description="inputs per network")
    points: list[Point] = Field(
        default_factory=default_points,
        description="(sigma_w, sigma_b) at which every activation is measured",
    )
    critical_sigma_b: list[float] = Field(
        [0.05],
        description="each activation is also measured at its own edge-of-chaos sigma_w at "
        "these sigma_b (where theory finds a usable one)",
    )
    xavier: bool = Field(True, description="also measure the tutorial's Xavier-uniform networks")
    xavier_width: int = Field(64, ge=1, le=16384)
    xavier_depth: int = Field(20, ge=1, le=1000)
    tolerance: float = Field(
        0.05, gt=0, lt=1, description="measured/predicted within 1 +- this counts as agreement"
    )
    phase_activation: str = Field(
        "Tanh", description="whose chi_1 is the phase-diagram figure's background"
    )

    @field_validator("critical_sigma_b")
    @classmethod
    def _sane_sigma_b(cls, values: list[float]) -> list[float]:
        bad = [v for v in values if not (math.isfinite(v) and 0 <= v <= 100)]
        if bad:
            raise ValueError(f"critical_sigma_b values must be in [0, 100] (got {bad[0]})")
        return values

    @model_validator(mode="after")
    def _distinct_points(self) -> Config:
        labels = point_labels(self)
        if len(set(labels)) != len(labels):
            dup = next(x for x in labels if labels.count(x) > 1)
            raise ValueError(f"point '{dup}' is listed twice; list each point once")
        return self


# -- points ------------------------------------------------------------------------------------
def fixed_label(sigma_w: float, sigma_b: float) -> str:
    return f"sw={sigma_w:g},sb={sigma_b:g}"


def critical_label(sigma_b: float) -> str:
    return f"critical,sb={sigma_b:g}"


def point_labels(cfg: Config) -> list[str]:
    """Every point's label, in the report's order."""
    labels = [fixed_label(p.sigma_w, p.sigma_b) for p in cfg.points]
    labels += [critical_label(sb) for sb in cfg.critical_sigma_b]
    return labels + ([XAVIER] if cfg.xavier else [])


def point_title(label: str, cfg: Config | None = None) -> str:
    """A label in words (the report's)."""
    if label == XAVIER:
        shape = f", width {cfg.xavier_width}, depth {cfg.xavier_depth}" if cfg else ""
        return f"Xavier-uniform{shape}"
    if label.startswith("critical,"):
        return f"critical σw at σb = {label.split('sb=')[1]}"
    sw, sb = (part.split("=")[1] for part in label.split(","))
    return f"σw = {sw}, σb = {sb}"


# -- theory ------------------------------------------------------------------------------------
def born_dead_probability(width: int, depth: int) -> float:
    """P(a ReLU network is born dead): zero biases, symmetric weights, one positive scalar input,
    ``depth`` hidden layers of ``width`` units. Each layer is entirely inactive with probability
    2^-width whatever came before (while the layer below is alive), so P = 1 - (1 - 2^-N)^L
    (Lu et al. 2019)."""
    if width < 1 or depth < 0:
        raise ValueError("width must be >= 1 and depth >= 0")
    return -math.expm1(depth * math.log1p(-(2.0**-width)))


def q_trajectory(
    activation: Any, q1: float, sigma_w: float, sigma_b: float, depth: int
) -> tuple[list[float], list[float]]:
    """(q_l, chi(q_l)) for l = 1 .. depth: the q-map iterated from q_1 and the per-layer
    gradient growth it predicts. NaN once q leaves [0, 1e300] (unbounded growth)."""
    from actlab import theory

    prep = theory.prepare(activation)
    qs, chis = [], []
    q = q1
    for _ in range(depth):
        if not (math.isfinite(q) and 0 <= q <= Q_LIMIT):
            q = math.nan
        qs.append(q)
        if math.isnan(q):
            chis.append(math.nan)
            continue
        chis.append(theory.chi_1(prep, q, sigma_w))
        q = theory.variance_map(prep, q, sigma_w, sigma_b)
    return qs, chis


def predictions(
    activation: Any, q1: float, sigma_w: float, sigma_b: float, depth: int
) -> dict[str, Any]:
    """The theory's numbers for one (activation, point, shape)."""
    from actlab import theory

    prep = theory.prepare(activation)
    qs, chis = q_trajectory(prep, q1, sigma_w, sigma_b, depth)
    fp = theory.variance_fixed_point(prep, sigma_w, sigma_b, q0=q1)
    chi1 = math.nan if fp.q is None else theory.chi_1(prep, fp.q, sigma_w)
    return {
        "pred_q": qs,
        "pred_growth": chis[:-1],
        "pred_q_star": math.nan if fp.q is None else fp.q,
        "pred_q_status": float(STATUS_CODES[fp.status]),
        "pred_q_slope": math.nan if fp.slope is None else fp.slope,
        "pred_chi_1": chi1,
    }


def protocol_dw_factor(activation: Any, width: int, depth: int) -> float:
    """Mean-field (last / first mean |dW|)^(1 / depth) of the gradient-flow protocol's network
    (1 input, Xavier-uniform, zero biases, 1 output) for one input x ~ N(0, 1); see the module
    docstring."""
    from actlab import theory

    prep = theory.prepare(activation)
    qs, chis = q_trajectory(prep, 2.0 / (width + 1), 1.0, 0.0, depth)
    q_last = qs[-1]
    if not math.isfinite(q_last):
        return math.nan
    m2 = theory.variance_map(prep, q_last, 1.0, 0.0)  # E[phi(z_L)^2]
    d2 = theory.chi_1(prep, q_last, 1.0)  # E[phi'(z_L)^2]
    logs = [math.log(2.0 / (width + 1)), _log(d2), *(_log(c) for c in chis[:-1])]
    log_ratio = 0.5 * (_log(m2) - sum(logs))
    return math.exp(log_ratio / depth) if math.isfinite(log_ratio) else math.nan


def _log(x: float) -> float:
    return math.log(x) if x > 0 and math.isfinite(x) else math.nan


def edge_point(activation: Any, q_star: float) -> tuple[float, float, float]:
    """(sigma_w, sigma_b, dq'/dq) of the edge-of-chaos point whose variance fixed point is
    q_star: chi_1 = 1 gives sigma_w^2 = 1 / E[phi'^2], and q* = sigma_w^2 E[phi^2] + sigma_b^2
    gives sigma_b^2 = q* - E[phi^2] / E[phi'^2]. NaN where that sigma_b^2 is negative."""
    from actlab import theory

    prep = theory.prepare(activation)
    d2 = theory.expectation(prep, q_star, derivative=True, power=2)
    m2 = theory.expectation(prep, q_star, power=2)
    if not (d2 > 0 and math.isfinite(d2) and math.isfinite(m2)):
        return math.nan, math.nan, math.nan
    sw = 1.0 / math.sqrt(d2)
    sb2 = q_star - m2 / d2
    if sb2 < -1e-9 * max(q_star, 1e-300):
        return math.nan, math.nan, math.nan
    slope = theory.variance_map_slope(prep, q_star, sw)
    return sw, math.sqrt(max(sb2, 0.0)), slope


@lru_cache(maxsize=64)
def edge_curve(activation: str) -> tuple[tuple[float, float, float], ...]:
    """The edge of chaos traced through its variance fixed points q* (``EDGE_Q``), including
    unstable ones: (sigma_w, sigma_b, dq'/dq) per q*. Cached (deterministic)."""
    return tuple(edge_point(activation, q) for q in EDGE_Q)


@lru_cache(maxsize=8)
def phase_background(activation: str):
    from actlab import theory

    return theory.phase_diagram(activation, PHASE_SIGMA_W, PHASE_SIGMA_B)


# -- the study ---------------------------------------------------------------------------------
class SignalPropagation(Study):
    name = NAME
    learnable_activations = "initial"
    title = "Signal propagation"
    Config = Config
    param_columns = ("point", "init", "sigma_w", "sigma_b", "width", "depth")
    reads = ("gradient_flow",)  # the tutorial table's measured gradient-flow factor

    def trials(self, config: Config, activations: list[str], seeds: int) -> list[Trial]:
        settings: list[dict[str, Any]] = []
        for p in config.points:
            settings.append(
                {
                    "point": fixed_label(p.sigma_w, p.sigma_b),
                    "init": "gaussian",
                    "sigma_w": p.sigma_w,
                    "sigma_b": p.sigma_b,
                    "width": config.width,
                    "depth": config.depth,
                }
            )
        for sb in config.critical_sigma_b:
            settings.append(
                {
                    "point": critical_label(sb),
                    "init": "gaussian",
                    "sigma_w": None,  # each activation's own, resolved in run
                    "sigma_b": sb,
                    "width": config.width,
                    "depth": config.depth,
                }
            )
        if config.xavier:
            settings.append(
                {
                    "point": XAVIER,
                    "init": XAVIER,
                    "sigma_w": 1.0,
                    "sigma_b": 0.0,
                    "width": config.xavier_width,
                    "depth": config.xavier_depth,
                }
            )
        return [
            Trial(self.name, act, seed, dict(params))
            for params in settings
            for act in activations
            for seed in range(seeds)
        ]

    def batch_key(self, trial: Trial) -> tuple:
        # One activation and one point per batch: theory once per batch, and only a few
        # members' captured pre-activations (width x depth x n_samples each) held at once.
        return (trial.activation, trial.params["point"], trial.params["width"])

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        """Rows per trial. The planner hands over one batch key at a time; any other mix is
        split here by batch key (each group measured as its own stack)."""
        groups: dict[tuple, list[int]] = {}
        for i, t in enumerate(trials):
            groups.setdefault(self.batch_key(t), []).append(i)
        out: list[list[dict[str, Any]]] = [[] for _ in trials]
        for idx in groups.values():
            for i, rows in zip(idx, self._run_group([trials[i] for i in idx], ctx), strict=True):
                out[i] = rows
        return out

    def _run_group(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        import torch

        from actlab import theory
        from actlab.engine import StackedMLP, generator, init_mlp_params, layer_sizes
        from actlab.engine.stack import Captured
        from actlab.errors import UserError

        cfg: Config = ctx.config
        p = trials[0].params
        act = ctx.activations[trials[0].activation]
        width, depth, sb = p["width"], p["depth"], float(p["sigma_b"])
        # Theory failures (a custom function the quadrature cannot handle) leave NaN
        # predictions; the measurement still runs wherever sigma_w is known.
        theory_errors = (UserError, ValueError, ArithmeticError)
        extra: dict[str, float] = {}
        if p["init"] == XAVIER:
            sizes = layer_sizes(1, width, depth, out_dim=1)
            sw, q1, scheme = 1.0, 2.0 / (1 + width), XAVIER
            try:
                extra["pred_dw_factor"] = protocol_dw_factor(act, width, depth)
            except theory_errors:
                extra["pred_dw_factor"] = math.nan
        else:
            sizes = layer_sizes(width, width, depth, out_dim=width)
            scheme = "gaussian"
            sw = p["sigma_w"]
            if sw is None or (isinstance(sw, float) and math.isnan(sw)):
                try:
                    edge = theory.edge_of_chaos(act, sb)
                except theory_errors:
                    edge = None
                extra["critical_status"] = (
                    math.nan if edge is None else float(STATUS_CODES[edge.status])
                )
                if edge is None or edge.sigma_w is None:
                    candidate = next(iter(edge.candidates), None) if edge else None
                    if candidate is not None:
                        extra["critical_candidate_sigma_w"] = candidate.sigma_w
                        extra["critical_candidate_q_star"] = candidate.q_star
                    rows = [{"metric": "sigma_w", "value": math.nan}]
                    rows += [{"metric": "sigma_b", "value": sb}]
                    rows += [{"metric": k, "value": v} for k, v in extra.items()]
                    return [list(rows) for _ in trials]
                sw = edge.sigma_w
            sw = float(sw)
            q1 = sw * sw + sb * sb
        try:
            pred = predictions(act, q1, sw, sb, depth)
        except theory_errors:
            pred = {
                "pred_q": [math.nan] * depth,
                "pred_growth": [math.nan] * (depth - 1),
                "pred_q_star": math.nan,
                "pred_q_status": math.nan,
                "pred_q_slope": math.nan,
                "pred_chi_1": math.nan,
            }

        dtype = ctx.torch_dtype
        in_dim, out_dim = sizes[0][0], sizes[-1][1]
        members = [
            init_mlp_params(
                sizes,
                # Keyed by shape, point and seed, not by activation (common random numbers);
                # every activation's critical point at one sigma_b shares the standard-normal
                # draws, each scaled by its own sigma_w.
                generator(ctx.run_seed, f"{NAME}/init", f"sizes={sizes}", p["point"], t.seed),
                scheme=scheme,
                gain=sw if scheme == "gaussian" else 1.0,
                bias_std=sb if scheme == "gaussian" else 0.0,
                dtype=dtype,
            )
            for t in trials
        ]
        model = StackedMLP(members, [act.fn] * len(trials), exact=ctx.exact, device=ctx.device)
        n = cfg.n_samples
        x = torch.stack(
            [
                torch.randn(
                    n,
                    in_dim,
                    dtype=dtype,
                    generator=generator(ctx.run_seed, f"{NAME}/input", n, in_dim, t.seed),
                )
                for t in trials
            ]
        ).to(ctx.device)
        capture = Captured()
        with torch.no_grad():
            model.forward(x, capture)
            out = []
            for m, t in enumerate(trials):
                r = torch.randn(
                    n,
                    out_dim,
                    dtype=dtype,
                    generator=generator(ctx.run_seed, f"{NAME}/output", n, out_dim, t.seed),
                ).to(ctx.device)
                preact_var, grad_sq = member_profile(
                    [z[m] for z in capture.pre], [w[m] for w in model.weights], r, act
                )
                out.append(trial_rows(preact_var, grad_sq, pred, sw, sb, extra))
        return out

    def summarize(self, results):
        return summarize(results)

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        cfg: Config = rctx.config
        order = [x for x in point_labels(cfg) if x in set(summary["layers"]["point"])]
        figures = [
            plot_profiles(
                summary["layers"],
                order,
                rctx,
                "preact_var",
                "pred_q",
                figure_dir / "signal_variance.png",
            ),
            plot_profiles(
                summary["layers"],
                order,
                rctx,
                "grad_growth",
                "pred_growth",
                figure_dir / "signal_gradients.png",
            ),
        ]
        phase, phase_notes = plot_phase(summary, rctx, figure_dir / "phase_diagram.png")
        figures.append(phase)
        markdown = report_markdown(summary, rctx, [f.name for f in figures], phase_notes)
        return Section(self.title, markdown, figures)


def member_profile(pre: list, weights: list, r, act) -> tuple[list[float], list[float]]:
    """One network's per-layer mean z_l^2 and mean (dloss/dz_l)^2 for loss = sum(out * r).

    ``pre``: its captured pre-activations [n, width] per hidden layer; ``weights``: its
    weight matrices [out, in], the output layer last. The backward pass: dloss/dout = r,
    then g_l = phi'(z_l) * (g_{l+1} W_{l+1}) down to the first layer. Means in float64."""
    preact_var = [float(z.double().square().mean()) for z in pre]
    grad_sq = [0.0] * len(pre)
    g = r
    for layer in range(len(pre) - 1, -1, -1):
        upstream = g @ weights[layer + 1]
        g = upstream * act.derivative(pre[layer])
        grad_sq[layer] = float(g.double().square().mean())
    return preact_var, grad_sq


def _geo_mean(values: list[float]) -> float:
    x = np.asarray(values, dtype=float)
    if x.size == 0 or not np.all(np.isfinite(x)) or not np.all(x > 0):
        return math.nan
    return float(np.exp(np.mean(np.log(x))))


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b != 0 else math.nan


def trial_rows(
    preact_var: list[float],
    grad_sq: list[float],
    pred: dict[str, Any],
    sigma_w: float,
    sigma_b: float,
    extra: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """A trial's rows from its measured profiles and the theory's predictions."""
    depth = len(preact_var)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = [
            float(np.float64(grad_sq[i]) / np.float64(grad_sq[i + 1])) for i in range(depth - 1)
        ]
    rows: list[dict[str, Any]] = []
    for metric, values in (
        ("preact_var", preact_var),
        ("grad_sq", grad_sq),
        ("grad_growth", growth),
        ("pred_q", pred["pred_q"]),
        ("pred_growth", pred["pred_growth"]),
    ):
        rows += [
            {"metric": metric, "layer": i + 1, "value": float(v)} for i, v in enumerate(values)
        ]
    var_layers = slice(depth // 2, depth)  # layers l > depth // 2
    growth_layers = slice((depth - 1) // 2, depth - 1)  # layers l > (depth - 1) // 2
    growth_mean = _geo_mean(growth[growth_layers])
    pred_growth_mean = _geo_mean(pred["pred_growth"][growth_layers])
    var_mean = _geo_mean(preact_var[var_layers])
    pred_var_mean = _geo_mean(pred["pred_q"][var_layers])
    scalars = {
        "sigma_w": sigma_w,
        "sigma_b": sigma_b,
        "pred_q_star": pred["pred_q_star"],
        "pred_q_status": pred["pred_q_status"],
        "pred_q_slope": pred["pred_q_slope"],
        "pred_chi_1": pred["pred_chi_1"],
        "growth_mean": growth_mean,
        "pred_growth_mean": pred_growth_mean,
        "growth_ratio": _ratio(growth_mean, pred_growth_mean),
        "growth_vs_chi_1": _ratio(growth_mean, pred["pred_chi_1"]),
        "var_mean": var_mean,
        "pred_var_mean": pred_var_mean,
        "var_ratio": _ratio(var_mean, pred_var_mean),
        **(extra or {}),
    }
    rows += [{"metric": k, "value": float(v)} for k, v in scalars.items()]
    return rows


# -- summaries ---------------------------------------------------------------------------------
LAYER_METRICS = ("preact_var", "grad_sq", "grad_growth", "pred_q", "pred_growth")
RATIOS = ("var_ratio", "growth_ratio", "growth_vs_chi_1", "growth_mean")
THEORY = (
    "sigma_w",
    "sigma_b",
    "pred_q_star",
    "pred_q_status",
    "pred_q_slope",
    "pred_chi_1",
    "pred_growth_mean",
    "pred_var_mean",
    "critical_status",
    "critical_candidate_sigma_w",
    "critical_candidate_q_star",
    "pred_dw_factor",
)


def summarize(results) -> dict[str, Any]:
    """Per activation x point: measured/predicted ratios with 95% intervals over seeds
    ("agreement"), per-layer geometric means over seeds ("layers"), the tutorial
    explanation ("tutorial"; with the gradient_flow study's numbers when the run has them)."""

    import pandas as pd

    from actlab.stats import describe

    df = results[results["study"] == NAME]
    keys = ["activation", "point"]
    scal = df[df["layer"].isna()]
    wide = scal.pivot_table(
        index=["activation", "point", "seed"],
        columns="metric",
        values="value",
        aggfunc="first",
        dropna=False,
        sort=False,
    ).reset_index()
    wide.columns.name = None
    shape = df.groupby(keys, sort=False)[["width", "depth"]].first().reset_index()
    agreement = shape.copy()
    for col in THEORY:
        if col in wide:
            first = wide.groupby(keys, sort=False)[col].first().reset_index()
            agreement = agreement.merge(first, on=keys, how="left")
        else:
            agreement[col] = math.nan
    for col in RATIOS:
        if col in wide and wide[col].notna().any():
            stats = describe(wide[[*keys, col]].dropna(), keys, value=col)
            stats = stats.rename(columns={c: f"{col}_{c}" for c in stats if c not in keys})
            agreement = agreement.merge(stats, on=keys, how="left")
        else:
            for c in ("mean", "std", "n", "ci_low", "ci_high"):
                agreement[f"{col}_{c}"] = math.nan

    layers = df[df["layer"].notna() & df["metric"].isin(LAYER_METRICS)].copy()
    layers["log10"] = np.log10(layers["value"].where(layers["value"] > 0))
    layer_stats = describe(layers, [*keys, "metric", "layer"], value="log10")
    if layer_stats.empty:  # no network measured (e.g. only critical points that do not exist)
        layer_stats = pd.DataFrame(
            columns=[*keys, "metric", "layer", "mean", "std", "n", "ci_low", "ci_high"]
        )

    return {
        "agreement": agreement,
        "layers": layer_stats,
        "tutorial": tutorial_table(results, agreement),
    }


def tutorial_table(results, agreement):
    """Per activation under the tutorial's Xavier init: theory (q*, chi_1, the predicted
    gradient-flow per-layer factor), this study's measured growth at that width, and the
    gradient_flow study's measured (last / first)^(1 / depth) when the run has it."""
    import pandas as pd

    from actlab.stats import describe

    xav = agreement[agreement["point"] == XAVIER].copy()
    cols = [
        "activation",
        "width",
        "depth",
        "pred_q_star",
        "pred_q_status",
        "pred_chi_1",
        "growth_mean_mean",
        "growth_mean_ci_low",
        "growth_mean_ci_high",
        "pred_growth_mean",
        "growth_ratio_mean",
        "pred_dw_factor",
    ]
    xav = xav[cols].reset_index(drop=True)
    for c in ("gf_factor_mean", "gf_factor_ci_low", "gf_factor_ci_high", "gf_seeds"):
        xav[c] = math.nan
    gf = results[(results["study"] == "gradient_flow") & (results["metric"] == "grad_log10_ratio")]
    if xav.empty or gf.empty:
        return xav
    if "init" in gf:
        gf = gf[gf["init"] == XAVIER]
    if "in_dim" in gf:
        gf = gf[gf["in_dim"] == 1]
    for i, row in xav.iterrows():
        at = gf[
            (gf["activation"] == row["activation"])
            & (gf["depth"] == row["depth"])
            & (gf["width"] == row["width"])
        ].copy()
        if at.empty:
            continue
        at["factor"] = 10 ** (at["value"] / row["depth"])
        s = describe(at, ["activation"], value="factor").iloc[0]
        xav.loc[i, ["gf_factor_mean", "gf_factor_ci_low", "gf_factor_ci_high", "gf_seeds"]] = [
            s["mean"],
            s["ci_low"],
            s["ci_high"],
            s["n"],
        ]
    return pd.DataFrame(xav)


# -- figures -----------------------------------------------------------------------------------
def plot_profiles(layer_stats, order, rctx, measured, predicted, path: Path) -> Path:
    """One panel per point: measured per-layer values (markers: geometric mean over seeds,
    bars: 95% interval) against the theory (lines), one colour per activation."""
    from actlab.report.figures import activation_colours, pyplot, save

    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    cfg: Config = rctx.config
    n = max(1, len(order))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols, 4.0 * rows), squeeze=False)
    colours = activation_colours(rctx.activations)
    for ax, label in zip(axes.flat, order, strict=False):
        at = layer_stats[layer_stats["point"] == label]
        for act in rctx.activations:
            mine = at[at["activation"] == act]
            meas = mine[mine["metric"] == measured].sort_values("layer")
            pred = mine[mine["metric"] == predicted].sort_values("layer")
            if not pred.empty and pred["mean"].notna().any():
                ax.plot(pred["layer"], 10 ** pred["mean"], color=colours[act], lw=1.2)
            if not meas.empty:
                y = 10 ** meas["mean"]
                err = None
                if meas["n"].max() > 1:
                    err = [y - 10 ** meas["ci_low"], 10 ** meas["ci_high"] - y]
                ax.errorbar(
                    meas["layer"],
                    y,
                    yerr=err,
                    fmt="o",
                    ms=2.5,
                    color=colours[act],
                    elinewidth=0.6,
                    label=act,
                )
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(point_title(label, cfg), fontsize=10)
        ax.set_xlabel("layer (1 = input side)")
        ax.set_ylabel(
            "pre-activation variance q_l"
            if measured == "preact_var"
            else "gradient growth per layer (backwards)"
        )
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if axes.flat[0].get_legend_handles_labels()[0]:
        axes.flat[0].legend(fontsize=7, ncol=2)
    what = (
        "Pre-activation variance per layer"
        if measured == "preact_var"
        else "Per-layer growth of the mean squared gradient"
    )
    fig.suptitle(
        f"{what}: measured (markers, geometric mean over seeds, 95% interval) vs mean-field "
        "theory (lines)",
        fontsize=11,
    )
    fig.subplots_adjust(hspace=0.35, wspace=0.3)
    return save(fig, path)


def _resolvable(name: str) -> bool:
    from actlab import theory
    from actlab.errors import UserError

    try:
        theory.prepare(name)
    except (UserError, ValueError, TypeError):
        return False
    return True


def plot_phase(summary, rctx, path: Path) -> tuple[Path, list[str]]:
    """Background: chi_1 of ``phase_activation`` over (sigma_w, sigma_b) (log2 scale); lines:
    each activation's edge of chaos, solid where its variance fixed point is stable, dashed
    where it repels; markers: the points measured."""
    from actlab.report.figures import activation_colours, pyplot, save

    plt = pyplot()
    from matplotlib.colors import TwoSlopeNorm

    cfg: Config = rctx.config
    notes: list[str] = []
    colours = activation_colours(rctx.activations)
    single = False  # an edge of chaos that is one point (ReLU, Linear: chi_1 = 1 for every q*)
    fig, ax = plt.subplots(figsize=(8.2, 5.6))
    sw_lim, sb_lim = (PHASE_SIGMA_W[0], PHASE_SIGMA_W[-1]), (PHASE_SIGMA_B[0], PHASE_SIGMA_B[-1])
    background = cfg.phase_activation
    if background and _resolvable(background):
        pd_ = phase_background(background)
        chi = np.array(
            [[np.nan if c is None else c for c in row] for row in pd_.chi_1], dtype=float
        )
        log_chi = np.log2(np.clip(chi, 2.0**-2.5, 2.0**2.5))
        mesh = ax.pcolormesh(
            pd_.sigma_w,
            pd_.sigma_b,
            np.ma.masked_invalid(log_chi),
            shading="gouraud",
            cmap="coolwarm",
            norm=TwoSlopeNorm(0.0, -2.5, 2.5),
        )
        bar = fig.colorbar(mesh, ax=ax)
        bar.set_label(f"log2 chi_1 of {pd_.activation} (blue ordered, red chaotic)")
        ax.contour(pd_.sigma_w, pd_.sigma_b, log_chi, levels=[0.0], colors="k", linewidths=0.6)
    elif background:
        notes.append(f"no background: theory cannot evaluate '{background}' by name")
    for act in rctx.activations:
        if not _resolvable(act):
            notes.append(f"{act}: no edge-of-chaos curve (theory cannot evaluate it by name)")
            continue
        curve = np.array(edge_curve(act), dtype=float)
        sw, sb, slope = curve[:, 0], curve[:, 1], curve[:, 2]
        ok = np.isfinite(sw) & np.isfinite(sb)
        if not ok.any():
            continue
        stable = ok & (slope <= 1 + 1e-6)
        unstable = ok & (slope > 1 + 1e-6)
        if np.ptp(sw[ok]) < 1e-6 and np.ptp(sb[ok]) < 1e-6:  # one point (ReLU, Linear)
            ax.plot(
                sw[ok][:1],
                sb[ok][:1],
                "*",
                ms=13,
                color=colours[act],
                mec="k",
                mew=0.5,
                zorder=5,
                clip_on=False,
            )
            single = True
            continue
        ax.plot(
            np.where(stable, sw, np.nan),
            np.where(stable, sb, np.nan),
            "-",
            lw=1.6,
            color=colours[act],
        )
        ax.plot(
            np.where(unstable, sw, np.nan),
            np.where(unstable, sb, np.nan),
            "--",
            lw=1.2,
            color=colours[act],
        )
    # the points measured
    agreement = summary["agreement"]
    outside: list[str] = []
    drawn: set[tuple] = set()
    for _, row in agreement.iterrows():
        sw, sb = row["sigma_w"], row["sigma_b"]
        if not (math.isfinite(sw) and math.isfinite(sb)):
            continue
        inside = sw_lim[0] <= sw <= sw_lim[1] and sb_lim[0] <= sb <= sb_lim[1]
        if row["point"].startswith("critical,"):
            if inside:
                ax.plot(
                    sw,
                    sb,
                    "o",
                    ms=6,
                    color=colours.get(row["activation"], "k"),
                    mec="k",
                    mew=0.6,
                    zorder=4,
                    clip_on=False,
                )
            else:
                outside.append(f"{row['activation']} critical σw = {sw:.3g} at σb = {sb:g}")
        elif inside and (row["point"], sw, sb) not in drawn:
            drawn.add((row["point"], sw, sb))
            marker = "s" if row["point"] == XAVIER else "X"
            ax.plot(sw, sb, marker, ms=8, color="k", mfc="none", mew=1.2, zorder=3, clip_on=False)
    if outside:
        notes.append("outside the axes: " + "; ".join(outside))
    handles = [plt.Line2D([], [], color=colours[a], lw=2, label=a) for a in rctx.activations]
    handles += [
        plt.Line2D([], [], color="k", ls="-", label="edge of chaos, stable q*"),
        plt.Line2D([], [], color="k", ls="--", label="edge of chaos, unstable q*"),
        plt.Line2D([], [], color="k", marker="X", ls="", mfc="none", label="fixed point measured"),
        plt.Line2D(
            [], [], color="grey", marker="o", ls="", mec="k", label="critical point measured"
        ),
    ]
    if single:
        handles.append(
            plt.Line2D(
                [], [], color="grey", marker="*", ls="", mec="k", label="edge of chaos: one point"
            )
        )
    if cfg.xavier:
        handles.append(
            plt.Line2D([], [], color="k", marker="s", ls="", mfc="none", label="Xavier (tutorial)")
        )
    ax.legend(handles=handles, fontsize=7, loc="upper right", ncol=2)
    ax.set_xlim(*sw_lim)
    ax.set_ylim(*sb_lim)
    ax.set_xlabel("sigma_w")
    ax.set_ylabel("sigma_b")
    ax.set_title("Order and chaos: chi_1 and each activation's edge of chaos (chi_1 = 1)")
    return save(fig, path), notes


# -- the report --------------------------------------------------------------------------------
def with_interval(row, col: str, digits: int = 4) -> str:
    mean, lo, hi = row[f"{col}_mean"], row[f"{col}_ci_low"], row[f"{col}_ci_high"]
    if isinstance(mean, float) and math.isnan(mean):
        return "–"
    if isinstance(lo, float) and math.isnan(lo):
        return fmt(mean, digits)
    return f"{fmt(mean, digits)} [{fmt(lo, digits)}, {fmt(hi, digits)}]"


def q_star_text(row) -> str:
    code = row["pred_q_status"]
    if isinstance(code, float) and math.isnan(code):
        return "–"
    status = STATUS_NAMES.get(int(code), "?")
    if status == "none":
        return "none (grows without bound)"
    return f"{fmt(row['pred_q_star'])} ({status})"


def q_star_words(row) -> str:
    code = row["pred_q_status"]
    if isinstance(code, float) and math.isnan(code):
        return "q* unknown"
    status = STATUS_NAMES.get(int(code), "?")
    if status == "none":
        return "no q*: the variance grows without bound"
    return f"q* = {fmt(row['pred_q_star'])}, {status}"


def fluctuations_kept(row) -> bool:
    """Nothing pulls the measured variance back to the q-map: q* neutral, marginally stable
    or absent, or q* = 0 (there the map is linear in q, so relative errors are kept)."""
    code = row["pred_q_status"]
    return code in (1.0, 2.0, 4.0) or row["pred_q_star"] == 0


def _within(value: float, tol: float) -> bool:
    return math.isfinite(value) and abs(value - 1) <= tol


def report_markdown(summary, rctx: ReportContext, figures: list[str], phase_notes: list[str]):
    cfg: Config = rctx.config
    agreement = summary["agreement"]
    order = point_labels(cfg)
    rank = {label: i for i, label in enumerate(order)}
    act_rank = {a: i for i, a in enumerate(rctx.activations)}
    agreement = agreement.assign(
        _p=agreement["point"].map(lambda x: rank.get(x, len(rank))),
        _a=agreement["activation"].map(lambda x: act_rank.get(x, len(act_rank))),
    ).sort_values(["_p", "_a"])
    measured = agreement[
        agreement["growth_ratio_mean"].notna() | agreement["var_ratio_mean"].notna()
    ]
    one_seed = rctx.seeds == 1
    fixed = ", ".join(f"({p.sigma_w:.4g}, {p.sigma_b:g})" for p in cfg.points) or "none"
    crit = ", ".join(f"{sb:g}" for sb in cfg.critical_sigma_b) or "none"
    lines = [
        "**Question.** Mean-field theory (Poole et al. 2016; Schoenholz et al. 2017) predicts, "
        "for an infinitely wide network with weights N(0, σw²/fan_in) and biases N(0, σb²), "
        "the pre-activation variance of every layer (the q-map q' = σw² E[φ(√q z)²] + σb²) "
        "and the factor χ = σw² E[φ'(√q z)²] by which the mean squared gradient grows per "
        "layer going backwards; at the fixed point q*, χ1 < 1 is ordered (vanishing), "
        "χ1 > 1 chaotic (exploding). Do finite networks follow it, and where not?",
        "",
        f"**Method.** Width {cfg.width}, {cfg.depth} hidden layers, a width-{cfg.width} "
        f"output layer; Gaussian weights and biases at (σw, σb) = {fixed}, and at each "
        f"activation's own edge-of-chaos σw for σb = {crit} where theory finds a usable "
        f"(stable) one. {cfg.n_samples} inputs x ~ N(0, I), so q1 = σw² + σb². One forward "
        "pass and one backward pass of loss = Σ out·r with fixed r ~ N(0, 1) (an isotropic "
        "gradient at the output). Measured per layer: q_l, the mean of z_l² over units and "
        "inputs, and the mean squared gradient at z_l; growth = its ratio between layer l and "
        "l+1. Theory: the q-map iterated from q1 and χ(q_l) along it. The summaries are "
        "geometric means over the last half of the layers, where the signal is nearest q*; "
        f"intervals are 95% over {rctx.seeds} seed(s). Within a seed every activation shares "
        "the inputs and the standard-normal weight draws of each point.",
    ]
    if cfg.xavier:
        lines += [
            "",
            f"The tutorial's networks are measured too: 1 input, width {cfg.xavier_width}, "
            f"{cfg.xavier_depth} hidden layers, 1 output, Xavier-uniform, zero biases (σw² = 1 "
            f"between hidden layers, q1 = 2/(1 + width) = {2 / (1 + cfg.xavier_width):.3g}).",
        ]
    lines += ["", *(f"![{name}](figures/{name})" for name in figures), ""]
    if phase_notes:
        lines += [f"*Phase diagram: {'; '.join(phase_notes)}.*", ""]
    if one_seed:
        lines += ["*One seed: these numbers are single samples and carry no error bar.*", ""]
    lines += [
        "**Agreement** (measured / predicted, mean over seeds"
        + ("" if one_seed else " [95% interval]")
        + "; the prediction is the theory along the same layers; χ1 is at q*):",
        "",
        "| activation | point | σw | width | q* (theory) | χ1 (theory) | measured q / q-map | "
        "measured growth / predicted | measured growth / χ1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in measured.iterrows():
        lines.append(
            f"| {row['activation']} | {point_title(row['point'], cfg)} | {fmt(row['sigma_w'], 4)} "
            f"| {int(row['width'])} | {q_star_text(row)} | {fmt(row['pred_chi_1'], 4)} | "
            f"{with_interval(row, 'var_ratio')} | {with_interval(row, 'growth_ratio')} | "
            f"{with_interval(row, 'growth_vs_chi_1')} |"
        )
    lines += ["", *critical_lines(agreement, cfg)]
    lines += tutorial_lines(summary["tutorial"], rctx)
    lines += ["", "**What the data says.**", ""]
    lines += [f"- {f}" for f in findings(summary, rctx)]
    return "\n".join(lines)


def critical_lines(agreement, cfg: Config) -> list[str]:
    crit = agreement[agreement["point"].str.startswith("critical,")]
    if crit.empty:
        return []
    lines = ["**Critical points** (edge of chaos, χ1 = 1 at q*):", ""]
    for _, row in crit.iterrows():
        sb = row["sigma_b"]
        code = row["critical_status"]
        status = STATUS_NAMES.get(int(code), "?") if math.isfinite(code) else "?"
        if status in ("stable", "marginally stable", "neutral"):
            text = f"σw = {fmt(row['sigma_w'], 5)} ({status} q* = {fmt(row['pred_q_star'], 4)})"
        elif status == "unstable":
            text = (
                f"none usable: χ1 = 1 at σw = {fmt(row['critical_candidate_sigma_w'], 5)} "
                f"(q* = {fmt(row['critical_candidate_q_star'], 4)}) sits on an unstable "
                "variance fixed point, so no network was built"
            )
        else:
            text = "none: χ1 = 1 has no solution at any variance fixed point"
        lines.append(f"- {row['activation']} at σb = {sb:g}: {text}.")
    return [*lines, ""]


def tutorial_lines(tut, rctx: ReportContext) -> list[str]:
    if tut.empty:
        return []
    cfg: Config = rctx.config
    have_gf = tut["gf_factor_mean"].notna().any()
    depth = int(tut["depth"].iloc[0])
    width = int(tut["width"].iloc[0])
    lines = [
        f"**Explaining the tutorial** (Xavier-uniform, width {width}, depth {depth}, zero "
        "biases, so σw = 1, σb = 0 between hidden layers). χ1 < 1 means the gradient norm "
        f"shrinks by about χ1^(depth/2) = χ1^{depth / 2:g} from the output to the input. The "
        "gradient-flow study's mean |dW| also carries each layer's input, which shrinks "
        "forwards where q* = 0, so its last/first ratio can stay near 1 while every gradient "
        "vanishes:",
        "",
        "| activation | q* | χ1 | χ1^(depth/2) | measured growth per layer "
        + ("" if rctx.seeds == 1 else "[95%] ")
        + "| predicted (same layers) | predicted gradient-flow (last/first)^(1/depth) "
        + ("| measured by the gradient-flow study |" if have_gf else "|"),
        "|---|---|---|---|---|---|---|" + ("---|" if have_gf else ""),
    ]
    order = {a: i for i, a in enumerate(rctx.activations)}
    tut = tut.assign(_a=tut["activation"].map(lambda a: order.get(a, len(order)))).sort_values("_a")
    for _, row in tut.iterrows():
        chi = row["pred_chi_1"]
        decay = chi ** (depth / 2) if math.isfinite(chi) else math.nan
        measured = (
            f"{fmt(row['growth_mean_mean'], 3)} [{fmt(row['growth_mean_ci_low'], 3)}, "
            f"{fmt(row['growth_mean_ci_high'], 3)}]"
            if math.isfinite(row["growth_mean_ci_low"])
            else fmt(row["growth_mean_mean"], 3)
        )
        line = (
            f"| {row['activation']} | {q_star_text(row)} | {fmt(chi, 3)} | {fmt(decay, 3)} | "
            f"{measured} | {fmt(row['pred_growth_mean'], 3)} | {fmt(row['pred_dw_factor'], 3)} |"
        )
        if have_gf:
            gf = (
                f"{fmt(row['gf_factor_mean'], 3)} [{fmt(row['gf_factor_ci_low'], 3)}, "
                f"{fmt(row['gf_factor_ci_high'], 3)}]"
                if math.isfinite(row["gf_factor_ci_low"])
                else fmt(row["gf_factor_mean"], 3)
            )
            line += f" {gf} |"
        lines.append(line)
    if not have_gf:
        lines += [
            "",
            f"*The gradient-flow study's measured factor appears here when the same run includes "
            f"gradient_flow at depth {cfg.xavier_depth} and width {cfg.xavier_width}.*",
        ]
    return [*lines, ""]


def findings(summary, rctx: ReportContext) -> list[str]:
    """Sentences computed from the summary; nothing here is written in advance."""
    cfg: Config = rctx.config
    tol = cfg.tolerance
    agreement = summary["agreement"]
    out: list[str] = []

    def name(row) -> str:
        return f"{row['activation']} at {point_title(row['point'], cfg)}"

    grown = agreement[agreement["growth_ratio_mean"].notna()]
    if not grown.empty:
        good = grown[grown["growth_ratio_mean"].map(lambda v: _within(v, tol))]
        bad = grown.drop(good.index)
        out.append(
            f"Gradient growth per layer agrees with mean-field theory within "
            f"{100 * tol:g}% in {len(good)} of {len(grown)} settings"
            + (
                "; outside: "
                + "; ".join(
                    f"{name(r)} (width {int(r['width'])}): {fmt(r['growth_ratio_mean'], 4)}"
                    for _, r in bad.iterrows()
                )
                if not bad.empty
                else ""
            )
            + "."
        )
        by_width = grown.groupby("width")["growth_ratio_mean"].apply(
            lambda s: float(np.nanmax(np.abs(s - 1)))
        )
        if len(by_width) > 1:
            out.append(
                "Largest gradient-growth disagreement by width: "
                + ", ".join(f"width {int(w)}: {100 * v:.3g}%" for w, v in by_width.items())
                + "."
            )
        chi_ok = grown[grown["growth_vs_chi_1_mean"].notna()]
        slow = chi_ok[
            ~chi_ok["growth_vs_chi_1_mean"].map(lambda v: _within(v, tol))
            & chi_ok["growth_ratio_mean"].map(lambda v: _within(v, tol))
        ]
        if not slow.empty:
            out.append(
                "Measured growth matches the theory layer by layer but not yet χ1 at q* for "
                + "; ".join(
                    f"{name(r)} (growth/χ1 {fmt(r['growth_vs_chi_1_mean'], 4)})"
                    for _, r in slow.iterrows()
                )
                + ": the variance has not reached its fixed point within the last half of "
                "the layers (slow convergence)."
            )
    varied = agreement[agreement["var_ratio_mean"].notna()]
    if not varied.empty:
        good = varied[varied["var_ratio_mean"].map(lambda v: _within(v, tol))]
        bad = varied.drop(good.index)
        text = (
            f"The pre-activation variance follows the q-map within {100 * tol:g}% in "
            f"{len(good)} of {len(varied)} settings"
        )
        if not bad.empty:
            parts = [
                f"{name(r)}: {fmt(r['var_ratio_mean'], 3)} ({q_star_words(r)})"
                for _, r in bad.iterrows()
            ]
            text += "; outside: " + "; ".join(parts)
            kept = bad[bad.apply(fluctuations_kept, axis=1)]
            if not kept.empty:
                shapes = sorted({(int(r["depth"]), int(r["width"])) for _, r in kept.iterrows()})
                text += (
                    f". {len(kept)} of these {len(bad)} sit where nothing restores the variance "
                    "(q* neutral, marginally stable, absent, or 0 so that the map is linear "
                    "there): relative finite-width errors are kept and accumulate with depth "
                    "(depth/width " + ", ".join(f"{d}/{w} = {d / w:.3g}" for d, w in shapes) + ")"
                )
        out.append(text + ".")
    crit = agreement[agreement["point"].str.startswith("critical,")]
    for code, words in (
        (3.0, "χ1 = 1 only on an unstable variance fixed point (not a usable critical point)"),
        (4.0, "χ1 = 1 at no variance fixed point"),
    ):
        hit = crit[crit["critical_status"] == code]
        if not hit.empty:
            out.append(
                "No critical point measured for "
                + ", ".join(f"{r['activation']} (σb = {r['sigma_b']:g})" for _, r in hit.iterrows())
                + f": {words}."
            )
    tut = summary["tutorial"]
    if not tut.empty:
        depth = int(tut["depth"].iloc[0])
        ordered = tut[tut["pred_chi_1"] < 1 - tol]
        if not ordered.empty:
            out.append(
                "Under the tutorial's Xavier init, mean-field theory puts "
                + ", ".join(
                    f"{r['activation']} (χ1 = {fmt(r['pred_chi_1'])})"
                    for _, r in ordered.iterrows()
                )
                + f" in the ordered phase: over {depth} layers the gradient norm shrinks by "
                "χ1^(depth/2)."
            )
        hidden = ordered[(ordered["pred_dw_factor"] - 1).abs() < 0.02]
        if not hidden.empty:
            out.append(
                f"For {', '.join(hidden['activation'])} q* = 0: the forward signal shrinks as "
                "fast as the gradient, so the predicted gradient-flow per-layer factor is "
                f"{', '.join(fmt(v) for v in hidden['pred_dw_factor'])} — a flat last/first "
                "profile that hides the vanishing."
            )
        cmp = tut[tut["gf_factor_mean"].notna() & tut["pred_dw_factor"].notna()]
        if not cmp.empty:
            err = (cmp["gf_factor_mean"] / cmp["pred_dw_factor"] - 1).abs()
            worst = cmp.loc[err.idxmax()]
            out.append(
                f"The gradient-flow study's measured per-layer factor is within "
                f"{100 * float(err.max()):.2g}% of the single-input mean-field prediction for "
                f"every activation (largest gap: {worst['activation']}, "
                f"{fmt(worst['gf_factor_mean'])} measured vs {fmt(worst['pred_dw_factor'])})."
            )
    return out


STUDY = SignalPropagation()
