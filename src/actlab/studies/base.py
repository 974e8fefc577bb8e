"""What every study provides.

A study is data plus four functions:
  Config            pydantic model of its settings, defaults = the tutorial protocol
  trials(...)       the networks to build, one Trial each
  run(trials, ctx)  measure a batch of trials that share shapes (through the engine)
  summarize(df)     tables with statistics over seeds, from stored results only; run once
  report(summary)   figures and a markdown section, from that summary
and, for the report's cross-study verdicts, `property_specs` with `properties(summary)`
(scores per seed and setting, ranked in `report/verdicts.py`) and `claims(summary)`
(the tutorial's beliefs, each a Claim tested against its own data, judged together in
`report/claims.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from actlab.activations import Activation


@dataclass
class Trial:
    """One network to build, train or probe, and measure."""

    study: str
    activation: str
    seed: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Stable identity of the trial: the same settings always give the same key."""
        parts = [f"{k}={v}" for k, v in self.params.items()]
        return "/".join([self.study, f"activation={self.activation}", *parts, f"seed={self.seed}"])


@dataclass
class RunContext:
    """What a study's `run` needs besides its trials; no files, no executor."""

    run_seed: int
    config: BaseModel  # the study's own config
    activations: dict[str, Activation]
    device: str = "cpu"
    dtype: str = "float32"
    exact: bool = False
    flush_denormals: bool = False

    @property
    def torch_dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype)


@dataclass
class ReportContext:
    """What a study's report needs besides its stored results."""

    seeds: int
    activations: list[str]  # in the run's order
    config: BaseModel  # the study's own config
    # name -> Activation, for claims about families (bounded, smooth) rather than names
    specs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PropertySpec:
    """One property a study scores every activation on, for the best-and-worst table, the
    recommendations and verdicts.csv.

    `description` says how the score is measured; `settings` names, in the plural, what
    the property's settings are when it spans a sweep ("learning rates"; "" for one
    setting); `situation` is the decision guide's "if you need ..." that the property
    answers ("" for none); `regime` names the setting a recommendation must not fail in
    (e.g. "the highest learning rate"), marked per row by the `regime` column of
    `properties()`; `rests_on` names the properties a recommendation for the situation
    also depends on."""

    name: str
    description: str
    better: str  # "higher" or "lower"
    settings: str = ""
    situation: str = ""
    regime: str = ""
    # Properties the situation depends on: an activation in the worst group of one of
    # them, or failing most of its runs there (stuck, failed, diverged, vanished), is never
    # recommended for this situation (a function that cannot train a deep network is no
    # answer to "gradients that keep their size through depth").
    rests_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Claim:
    """A belief the tutorial states as a finding (written before any data), tested on this
    run: one paired sign-flip comparison over seeds (stats.paired_comparison) between two
    groups of activations. `supports` is +1 when a positive mean difference supports the
    belief, -1 when a negative one does. The report corrects the p-values over every claim
    of the run (Holm) before it calls one supported or contradicted."""

    belief: str  # the claim, as the tutorial puts it
    measured: str  # what was compared: the quantity, the two groups, the settings
    test: Any  # stats.Paired: group A - group B over seeds
    supports: int
    conditions: str = ""  # what the comparison holds under (init, optimiser, steps, ...)


# Columns of Study.properties(): one row per property x activation x seed x setting (a
# "block" of the ranking). `score` is NaN when the trial has no value (e.g. it diverged and
# the property cannot be measured on it), +-inf when it is worse than any finite score (a
# diverged fit); `outcome` is the trial's state ("learned", "stuck", "failed", "diverged",
# "vanished", or "" where none applies); `floored` marks an exact zero whose logarithm was
# floored (stats.LOG_FLOOR).
PROPERTY_COLUMNS = (
    "property",
    "activation",
    "seed",
    "setting",
    "score",
    "outcome",
    "regime",
    "floored",
)
# Outcomes that count as failing a property (its regime, or most of its runs).
FAILURES = (
    "stuck",
    "still improving",
    "failed",
    "diverged",
    "vanished",
    "exploded",
    "collapsed",
    "faint",
    "not fitted",
)


def property_frame(rows: list[dict[str, Any]]):
    """Rows -> a properties() table with every column (defaults filled in)."""
    import pandas as pd

    defaults = {"setting": "", "outcome": "", "regime": False, "floored": False}
    return pd.DataFrame([{**defaults, **r} for r in rows], columns=list(PROPERTY_COLUMNS))


def trial_table(results, study: str, metrics, index: list[str]):
    """One row per trial of `study`: the `index` columns and each scalar metric (rows
    without a layer or step) as a column, NaN where a trial lacks it."""
    df = results[(results["study"] == study) & results["step"].isna()]
    if "layer" in df:
        df = df[df["layer"].isna()]
    df = df[df["metric"].isin(list(metrics))]
    # unstack, not pivot_table: only the trials that exist, NaN values kept
    wide = df.set_index([*index, "metric"])["value"].unstack("metric")
    wide = wide.reindex(columns=list(metrics)).reset_index()
    wide.columns.name = None
    wide["seed"] = wide["seed"].astype(int)
    return wide


def nan_if(diverged: bool, value: float) -> float:
    """A diverged trial's measurement is not a measurement: NaN."""
    import math

    return math.nan if diverged else float(value)


@dataclass
class Section:
    """A study's part of the report."""

    title: str
    markdown: str
    figures: list[Path] = field(default_factory=list)


def samples_of(config: BaseModel, default: int = 256) -> int:
    """The number of samples a study's networks see per step, from its config."""
    for name in ("n_samples", "n_points", "n_train"):
        if hasattr(config, name):
            return int(getattr(config, name))
    return default


class Study:
    name: ClassVar[str]
    title: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    # Trial parameters that become columns of the results table.
    param_columns: ClassVar[tuple[str, ...]] = ()

    def trials(self, config: BaseModel, activations: list[str], seeds: int) -> list[Trial]:
        raise NotImplementedError

    def columns(self, config: BaseModel) -> tuple[str, ...]:
        """The results table's columns for this study's trial parameters under `config`."""
        return self.param_columns

    def check(self, config: BaseModel, activations: dict[str, Activation]) -> None:
        """Refuse, with a UserError, a config that cannot run with these activations; called
        before anything is written."""
        if getattr(config, "init", None) == "critical":
            for act in activations.values():
                critical_sigma_w(act, getattr(config, "sigma_b", 0.0))

    def batch_key(self, trial: Trial) -> tuple:
        """Trials with equal keys have equal shapes and may share one stack."""
        return tuple(sorted(trial.params.items()))

    def member_bytes(self, trial: Trial, config: BaseModel) -> int:
        """A rough size of one network in a stack: the activations autograd keeps for the
        backward pass dominate (about six float tensors of depth x samples x width)."""
        p = trial.params
        return 4 * 6 * int(p.get("depth", 1)) * int(p.get("width", 1)) * samples_of(config)

    def param_count(self, trial: Trial, config: BaseModel) -> int:
        """Parameters of one network: a depth x width MLP from in_dim inputs to one output."""
        p = trial.params
        depth, width = int(p.get("depth", 1)), int(p.get("width", 1))
        in_dim = int(p.get("in_dim", 1))
        return (in_dim + 1) * width + max(depth - 1, 0) * (width + 1) * width + width + 1

    def trial_cost(self, trial: Trial, config: BaseModel) -> float:
        """A rough measure of one trial's work, to order and split batches between workers:
        steps x samples x depth x width x (width + 16), i.e. the matmuls plus about as much
        elementwise work per unit as 16 multiply-adds (measured on the tutorial's layers)."""
        p = trial.params
        steps = p.get("steps") or getattr(config, "steps", None) or getattr(config, "max_epochs", 1)
        width = int(p.get("width", 1))
        return float(steps) * samples_of(config) * int(p.get("depth", 1)) * width * (width + 16)

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        """Rows (metric, value, and layer/step where they apply) for each trial, in order."""
        raise NotImplementedError

    # The properties this study scores (see PropertySpec); () for none.
    property_specs: ClassVar[tuple[PropertySpec, ...]] = ()
    # Stacks hold one activation each when every activation has two trials or more
    # (plan.split_by_activation); a study whose networks gain more from wide stacks than
    # from one activation per stack turns this off.
    one_activation_per_stack: ClassVar[bool] = True
    # Timing studies run alone, after every other batch, so nothing competes for the CPU.
    exclusive: ClassVar[bool] = False
    # How the study treats a learnable activation (learnable.py): "trained" (its
    # parameters are trained with the weights and reported), "initial" (the study looks
    # only at initialisation, where the initial values define the function), "timed" (its
    # function and parameter gradients are timed), or None (refused before anything runs:
    # a frozen stand-in must never be measured under a learnable activation's name).
    learnable_activations: ClassVar[str | None] = None
    # Other studies whose results this one's summary reads when the run has them (its
    # report part is built once they are stored too).
    reads: ClassVar[tuple[str, ...]] = ()

    def summarize(self, results: pd.DataFrame) -> dict[str, Any]:
        raise NotImplementedError

    def report(self, summary: dict[str, Any], figure_dir: Path, rctx: ReportContext) -> Section:
        """Write this study's figures into figure_dir and return its report section, from
        the output of `summarize`."""
        raise NotImplementedError

    def properties(self, summary: dict[str, Any], rctx: ReportContext) -> pd.DataFrame:
        """Scores of every property in `property_specs`, one row per property x activation
        x seed x setting, with the columns PROPERTY_COLUMNS (see there)."""
        return property_frame([])

    def conditions(self, config: BaseModel) -> dict[str, str]:
        """What each property's verdict holds under (initialisation, optimiser, learning
        rate, steps, depth, ...), in words, by property name: a verdict is about these
        networks trained this way, not about the activation in general. The default lists
        the study's settings; a study says it better in its own words."""
        words = config_words(config)
        return {spec.name: words for spec in self.property_specs}

    def limits(self, config: BaseModel) -> dict[str, str]:
        """What each property, measured under `config`, cannot show though its name
        suggests it, one sentence by property name ({} when the protocol answers the
        question its name asks). The report lists them beside the verdicts."""
        return {}

    def sheet_panels(
        self, summary: dict[str, Any], rctx: ReportContext, colours: dict[str, Any]
    ) -> list[Any]:
        """Panels for the report's summary sheet: functions that each draw on one
        matplotlib axis (`colours` maps activation names to their colour in every figure)."""
        return []

    def claims(self, summary: dict[str, Any], rctx: ReportContext) -> list[Claim]:
        """The tutorial's beliefs this study's data can test, each as a Claim with its
        paired test (whatever the outcome: the report judges them together, after Holm)."""
        return []


# Settings that say how a study is measured or reported, not what its networks are.
NOT_CONDITIONS = {"report_depth", "bins", "clip", "vanish_threshold", "zero_threshold"}


def config_words(config: BaseModel) -> str:
    """A study's settings as 'name value' pairs (lists joined by '/'), for conditions."""
    out = []
    for name, value in config.model_dump().items():
        if name in NOT_CONDITIONS or isinstance(value, dict):
            continue
        if isinstance(value, list | tuple):
            value = "/".join(str(v) for v in value)
        out.append(f"{name.replace('_', ' ')} {value}")
    return ", ".join(out)


def initial_params(
    ctx: RunContext,
    sizes: list[tuple[int, int]],
    scheme: str,
    seed: int,
    activation: str | None = None,
    sigma_b: float = 0.0,
):
    """A trial's initial weights. The stream is keyed by shapes, scheme and seed but not by
    the activation (common random numbers): within a seed, every activation starts from
    the same weights, so differences between activations are paired.

    `scheme = "critical"` is Gaussian initialisation at the activation's edge of chaos,
    sigma_w*(sigma_b) from the mean-field theory (Schoenholz et al. 2017), with biases of
    standard deviation sigma_b; an activation with no usable critical point is refused.
    """
    from actlab.engine import generator, init_mlp_params

    gen = generator(ctx.run_seed, "init", f"sizes={sizes}", scheme, seed)
    if scheme == "practice":
        return practice_params(sizes, gen, ctx.activations[activation].init, ctx.torch_dtype)
    if scheme == "critical":
        gain = critical_sigma_w(ctx.activations[activation], sigma_b)
        return init_mlp_params(
            sizes, gen, scheme="gaussian", gain=gain, bias_std=sigma_b, dtype=ctx.torch_dtype
        )
    return init_mlp_params(sizes, gen, scheme=scheme, dtype=ctx.torch_dtype)


def practice_std(init: str, fan_in: int, fan_out: int) -> float:
    """The weight standard deviation of an activation's customary initialisation
    (Activation.init)."""
    import math

    if init == "he":
        return math.sqrt(2.0 / fan_in)
    if init == "lecun":
        return math.sqrt(1.0 / fan_in)
    return math.sqrt(2.0 / (fan_in + fan_out))


def practice_params(sizes: list[tuple[int, int]], gen, init: str, dtype):
    """Gaussian weights at each activation's customary scale (He, LeCun or Xavier), zero
    biases. The standard normal draws come from a stream keyed by shapes and seed alone,
    so within a seed every activation's weights are the same numbers times its own scale:
    the comparison stays paired (common random numbers) across initialisations."""
    import torch

    params = []
    for fan_in, fan_out in sizes:
        z = torch.randn(fan_out, fan_in, dtype=torch.float64, generator=gen)
        w = (z * practice_std(init, fan_in, fan_out)).to(dtype)
        params.append((w, torch.zeros(fan_out, dtype=dtype)))
    return params


# The initialisations a study's `init` setting accepts (engine/init.py's schemes, and
# "practice" and "critical" above); the protocol's is Xavier uniform.
InitName = Literal[
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_normal",
    "orthogonal",
    "critical",
    "practice",
]
DEFAULT_INIT = "xavier_uniform"
# Optimisers as the prose names them.
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam"}

INIT_WORDS = {
    "practice": "each activation's customary initialisation (He for the rectifiers, LeCun "
    "for SELU, Xavier for the rest), Gaussian",
    "critical": "Gaussian at each activation's edge of chaos (mean-field theory)",
}


def init_params(config: BaseModel) -> dict[str, Any]:
    """A study's init setting as trial parameters, present only when it is not the
    protocol's, so that the protocol's trial keys (and stored results) stay as they are."""
    extra: dict[str, Any] = {}
    if config.init != DEFAULT_INIT:
        extra["init"] = config.init
        if config.init == "critical":
            extra["sigma_b"] = config.sigma_b
    return extra


def init_words(scheme: str, sigma_b: float | None = None) -> str:
    """An initialisation scheme in words, for conditions (with sigma_b where it counts)."""
    if scheme in INIT_WORDS:
        words = INIT_WORDS[scheme]
    else:
        words = (
            scheme.replace("_", " ").replace("xavier", "Xavier").replace("kaiming", "He") + " init"
        )
    return (
        f"{words}, sigma_b {sigma_b:g}" if scheme == "critical" and sigma_b is not None else words
    )


_CRITICAL: dict[tuple[str, float], float] = {}


def critical_sigma_w(activation, sigma_b: float) -> float:
    """sigma_w*(sigma_b) for an activation, or a UserError naming why there is none."""
    from actlab.errors import UserError

    key = (activation.name, sigma_b)
    if key not in _CRITICAL:
        from actlab.theory import edge_of_chaos

        edge = edge_of_chaos(activation, sigma_b)
        if edge.sigma_w is None:
            raise UserError(
                f"init 'critical' needs an edge of chaos, and {activation.name} has "
                f"no usable one at sigma_b = {sigma_b:g} ({edge.status}: "
                f"{edge.note}); choose another init or sigma_b"
            )
        _CRITICAL[key] = edge.sigma_w
    return _CRITICAL[key]


def build_stack(
    trials: list[Trial],
    ctx: RunContext,
    sizes: list[tuple[int, int]],
    scheme: str = "xavier_uniform",
):
    """One StackedMLP holding every trial of a batch, each with its own initial weights."""
    from actlab.engine import StackedMLP

    sigma_b = getattr(ctx.config, "sigma_b", 0.0)
    members = [initial_params(ctx, sizes, scheme, t.seed, t.activation, sigma_b) for t in trials]
    return StackedMLP(
        members,
        [applied(ctx.activations[t.activation]) for t in trials],
        exact=ctx.exact,
        device=ctx.device,
    )


def applied(act: Activation):
    """What a trained network applies: a learnable family (its parameters trained with the
    weights), or the fixed function."""
    return act.learnable if act.learnable is not None else act.fn


def learned_rows(model, m: int, diverged: bool = False) -> list[dict[str, Any]]:
    """A member's learnable activation parameters after training, per hidden layer
    (`layer` 1, 2, ...): `learned_NAME` (a per-unit one: the mean over units; a shaped one:
    per element, `learned_NAME[i]`) and, for a per-unit scalar, `learned_NAME_sd` (the
    standard deviation across units). Nothing for a fixed activation."""
    if not model.learnable:
        return []
    family = model.activations[m]
    rows = []
    for layer, values in enumerate(model.learned_sites(m), start=1):
        for spec in family.params:
            value = values[spec.name].double()
            per_unit = spec.scope == "per-unit"
            mean = value.mean(dim=0) if per_unit else value
            for i, v in enumerate(mean.reshape(-1).tolist()):
                label = f"learned_{spec.name}" + (f"[{i}]" if spec.shape else "")
                rows.append({"metric": label, "layer": layer, "value": nan_if(diverged, v)})
            if per_unit and not spec.shape:
                sd = float(value.std()) if value.numel() > 1 else 0.0
                rows.append(
                    {
                        "metric": f"learned_{spec.name}_sd",
                        "layer": layer,
                        "value": nan_if(diverged, sd),
                    }
                )
    return rows
