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

from pathlib import Path
from typing import Any

from actlab.studies.base import ReportContext, RunContext, Section, Study, Trial
from actlab.studies.signal_propagation.config import (
    EDGE_Q,
    NAME,
    PHASE_SIGMA_B,
    PHASE_SIGMA_W,
    Q_LIMIT,
    STATUS_CODES,
    STATUS_NAMES,
    USABLE,
    XAVIER,
    Config,
    Point,
    critical_label,
    default_points,
    fixed_label,
    point_labels,
    point_title,
)
from actlab.studies.signal_propagation.figures import plot_phase, plot_profiles
from actlab.studies.signal_propagation.meanfield import (
    born_dead_probability,
    edge_curve,
    edge_point,
    phase_background,
    predictions,
    protocol_dw_factor,
    q_trajectory,
)
from actlab.studies.signal_propagation.report import (
    critical_lines,
    findings,
    fluctuations_kept,
    q_star_text,
    q_star_words,
    report_markdown,
    tutorial_lines,
    with_interval,
)
from actlab.studies.signal_propagation.run import member_profile, run_group, trial_rows
from actlab.studies.signal_propagation.summary import (
    LAYER_METRICS,
    RATIOS,
    THEORY,
    summarize,
    tutorial_table,
)

__all__ = [
    "EDGE_Q",
    "LAYER_METRICS",
    "NAME",
    "PHASE_SIGMA_B",
    "PHASE_SIGMA_W",
    "Q_LIMIT",
    "RATIOS",
    "STATUS_CODES",
    "STATUS_NAMES",
    "STUDY",
    "THEORY",
    "USABLE",
    "XAVIER",
    "Config",
    "Point",
    "SignalPropagation",
    "born_dead_probability",
    "critical_label",
    "critical_lines",
    "default_points",
    "edge_curve",
    "edge_point",
    "findings",
    "fixed_label",
    "fluctuations_kept",
    "member_profile",
    "phase_background",
    "plot_phase",
    "plot_profiles",
    "point_labels",
    "point_title",
    "predictions",
    "protocol_dw_factor",
    "q_star_text",
    "q_star_words",
    "q_trajectory",
    "report_markdown",
    "run_group",
    "summarize",
    "trial_rows",
    "tutorial_lines",
    "tutorial_table",
    "with_interval",
]


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
        return run_group(trials, ctx)

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


STUDY = SignalPropagation()
