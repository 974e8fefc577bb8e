"""Protocol experiment 3: stability under stress.

3a (part "lr"): SGD at rising learning rates, depth 10, both divergence rules (loss, then
    largest gradient entry > 1e6 before the update).
3b (part "depth"): Adam at lr 0.01 with rising depth, the loss rule only.

Data: 200 evenly spaced x on [-2, 2], y = sin(pi x). The protocol's rules are kept so the
numbers compare with the tutorial's, and three things it got wrong are fixed:
- the loss after the final update is recorded (`loss_after_training`), not only the last
  loss recorded before it (`final_loss`, the protocol's meaning);
- every trial is classified learned / stuck / failed / diverged: "stuck" means the final
  loss is not clearly below the variance of the target, which a constant output already
  reaches; "failed" means it stayed finite but ended far above it (by default more than
  10x: a Sigmoid run at loss 3e4 is not "stuck", it blew up without tripping the rule);
- a run "stuck" by its final loss whose loss was still falling when its step budget ran out
  is "still improving" (state "improving"): slow, not stuck, and a longer budget may make
  it learn. The metric `still_improving` (1/0, for a finite run that did not learn) records
  it, by the capacity study's plateau rule on the losses the run recorded
  (capacity.config.plateaued_at_end: still improving unless its loss last fell by 1% or
  more, relatively, 100 or more updates before the end). A run of 100 updates or fewer is
  too short for the rule and has no such metric; nor have runs stored before it existed:
  both stay "stuck". The properties (share of settings learned) count it as not learned;
- no cap: a diverged trial is drawn as diverged, never as "loss 10";
- loss statistics are geometric means over the runs of one outcome, never a learned run
  averaged with a stuck one, with each outcome's count beside them;
- a cell's drawn state is its most common one, divergence included: a cell where most
  seeds diverged is drawn as diverged, never as the few runs that survived.

Beyond the protocol (defaults keep it exact): `steps_to_learn` per trial (how many updates
the loss took to fall below the "learned" threshold) shows whether a learning rate failed
or was only slow for the step budget; `until = "learned"` stops a run once it has learned
(cheap long budgets); `init` chooses the initialisation (the protocol's is Xavier-uniform;
"practice" is each activation's customary one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actlab.data import sine_data
from actlab.studies.base import (
    DEFAULT_INIT,
    PropertySpec,
    ReportContext,
    RunContext,
    Section,
    Study,
    Trial,
    build_stack,
    init_params,
    property_frame,
)
from actlab.studies.capacity.config import PATIENCE
from actlab.studies.stability.claims import bounded_is_stable, finite_means_learned
from actlab.studies.stability.config import (
    FINITE_STATES,
    STATES,
    WORDS,
    Config,
    condition_words,
    improving_words,
    judged,
    words,
)
from actlab.studies.stability.figures import (
    HATCH,
    MARKER,
    ceiling,
    loss_panel,
    marker_legend,
    plot,
    plot_curves,
)
from actlab.studies.stability.report import (
    cell,
    curves_caption,
    findings,
    grid,
    improving_finding,
    report_markdown,
    steps_cell,
    unjudged_words,
)
from actlab.studies.stability.run import steps_to_learn, still_improving_rows, trial_rows
from actlab.studies.stability.summary import loss_curves, majority_state, outcome_of, summarize

__all__ = [
    "FINITE_STATES",
    "HATCH",
    "MARKER",
    "STATES",
    "STUDY",
    "WORDS",
    "Config",
    "Stability",
    "bounded_is_stable",
    "budget_limit",
    "ceiling",
    "cell",
    "condition_words",
    "curves_caption",
    "finite_means_learned",
    "findings",
    "grid",
    "improving_finding",
    "improving_words",
    "judged",
    "loss_curves",
    "loss_panel",
    "majority_state",
    "marker_legend",
    "outcome_of",
    "plot",
    "plot_curves",
    "report_markdown",
    "sine_data",
    "steps_cell",
    "steps_to_learn",
    "still_improving_rows",
    "summarize",
    "trial_rows",
    "unjudged_words",
    "words",
]


class Stability(Study):
    name = "stability"
    learnable_activations = "trained"
    title = "Stability under stress"
    Config = Config
    param_columns = ("part", "depth", "width", "lr", "optimizer", "steps")

    def extra_params(self, config: Config) -> dict[str, Any]:
        """Trial parameters beyond the protocol's, present only when not at their default, so
        that the protocol's trial keys (and stored results) stay as they are."""
        extra = init_params(config)
        if config.until != "steps":
            extra["until"] = config.until
        return extra

    def columns(self, config: Config) -> tuple[str, ...]:
        return (*self.param_columns, *self.extra_params(config))

    def trials(self, config: Config, activations: list[str], seeds: int) -> list[Trial]:
        extra = self.extra_params(config)
        out = []
        if "lr" in config.parts:
            out += [
                Trial(
                    self.name,
                    act,
                    seed,
                    {
                        "part": "lr",
                        "depth": config.lr_depth,
                        "width": config.width,
                        "lr": lr,
                        "optimizer": config.lr_optimizer,
                        "steps": config.lr_steps,
                        **extra,
                    },
                )
                for lr in config.lrs
                for act in activations
                for seed in range(seeds)
            ]
        if "depth" in config.parts:
            out += [
                Trial(
                    self.name,
                    act,
                    seed,
                    {
                        "part": "depth",
                        "depth": depth,
                        "width": config.width,
                        "lr": config.depth_lr,
                        "optimizer": config.depth_optimizer,
                        "steps": config.depth_steps,
                        **extra,
                    },
                )
                for depth in config.depths
                for act in activations
                for seed in range(seeds)
            ]
        return out

    def batch_key(self, trial: Trial) -> tuple:
        # The learning rate is per member, so trials differing only in lr share a stack.
        return tuple(v for k, v in trial.params.items() if k != "lr")

    def run(self, trials: list[Trial], ctx: RunContext) -> list[list[dict[str, Any]]]:
        from actlab.engine import DivergenceRule, layer_sizes, make_optimizer, train_regression
        from actlab.engine.monitors import StopBelow

        cfg: Config = ctx.config
        p = trials[0].params
        x, y = (t.to(ctx.device, ctx.torch_dtype) for t in sine_data(cfg.n_points))
        sizes = layer_sizes(1, p["width"], p["depth"])
        model = build_stack(trials, ctx, sizes, p.get("init", DEFAULT_INIT))
        optimizer = make_optimizer(p["optimizer"], model, [t.params["lr"] for t in trials])
        grad_limit = cfg.grad_limit if p["part"] == "lr" else None
        rule = DivergenceRule(loss_limit=cfg.loss_limit, grad_limit=grad_limit)
        variance = float(y.double().var(unbiased=False))
        threshold = cfg.learned_below * variance
        monitors = [StopBelow(threshold)] if p.get("until") == "learned" else []
        result = train_regression(model, x, y, optimizer, p["steps"], rule, monitors=monitors)
        return [trial_rows(result, m, model, variance, cfg) for m in range(len(trials))]

    def summarize(self, results):
        return summarize(results)

    def report(self, summary, figure_dir: Path, rctx: ReportContext) -> Section:
        figure = plot(summary, rctx.activations, figure_dir / "stability.png")
        curves = plot_curves(summary, rctx.activations, figure_dir / "stability_curves.png")
        markdown = report_markdown(summary, rctx, figure.name, curves.name if curves else None)
        return Section(self.title, markdown, [figure, *([curves] if curves else [])])

    property_specs = (
        PropertySpec(
            "learning-rate robustness",
            "share of the sweep's learning rates (SGD) at which the network learned",
            "higher",
            settings="learning rates",
            situation="a high or untuned learning rate",
            regime="the highest learning rate",
            rests_on=(),
        ),
        PropertySpec(
            "depth robustness",
            "share of the sweep's depths (Adam) at which the network learned",
            "higher",
            settings="depths",
            situation="a deep network (many layers)",
            regime="the greatest depth",
            rests_on=(),
        ),
    )

    def conditions(self, config: Config) -> dict[str, str]:
        """E.g. "SGD at learning rates 0.001-1, 100 steps, depth 10, width 64, Xavier uniform
        init, sin(pi x) on 200 points"."""
        names = (spec.name for spec in self.property_specs)
        return dict(zip(names, condition_words(config), strict=True))

    def limits(self, config: Config) -> dict[str, str]:
        out: dict[str, list[str]] = {spec.name: [] for spec in self.property_specs}
        lr, depth = (spec.name for spec in self.property_specs)
        if config.until == "steps":
            out[lr].append(
                f"a run that has not learned within {config.lr_steps} steps may be slow rather "
                "than unstable at its rate, so the share of rates that learned measures speed "
                "as much as robustness (the steps-to-learn table says which rate was slow; "
                'until = "learned" with a longer budget asks the question itself)'
            )
        for name, steps in ((lr, config.lr_steps), (depth, config.depth_steps)):
            out[name].append(budget_limit(steps))
        if config.init == DEFAULT_INIT:
            out[depth].append(
                "every activation starts from the same Xavier uniform init, though each is "
                "used with its own in practice: a depth it fails at may be that init's"
            )
        return {name: "; ".join(parts) for name, parts in out.items() if parts}

    def properties(self, summary, rctx: ReportContext):
        """Per seed and setting: 1 if the network learned there, else 0 (still improving,
        stuck, failed and diverged alike); the regime is the highest learning rate / the
        greatest depth. A run still improving at the end of its budget has the outcome
        "still improving": the verdicts count it among the failures of its setting
        (studies.base.FAILURES), having not learned there, and name it apart from stuck."""
        trials = summary["trials"]
        rows = []
        for spec, part, key in (
            (self.property_specs[0], "lr", "lr"),
            (self.property_specs[1], "depth", "depth"),
        ):
            sub = trials[trials["part"] == part]
            if sub.empty:
                continue
            top = sub[key].max()
            for r in sub.itertuples():
                value = getattr(r, key)
                rows.append(
                    {
                        "property": spec.name,
                        "activation": r.activation,
                        "seed": int(r.seed),
                        "setting": f"{key}={value:g}",
                        "score": float(r.outcome == "learned"),
                        "outcome": WORDS.get(r.outcome, r.outcome),
                        "regime": bool(value == top),
                    }
                )
        return property_frame(rows)

    def claims(self, summary, rctx: ReportContext) -> list:
        claims = (bounded_is_stable(summary, rctx), finite_means_learned(summary, rctx))
        return [c for c in claims if c is not None]

    def sheet_panels(self, summary, rctx: ReportContext, colours) -> list[Any]:
        panels = []
        for part, key, label in (("lr", "lr", "learning rate"), ("depth", "depth", "depth")):
            if not summary[part].empty:
                panels.append(
                    lambda ax, part=part, key=key, label=label: loss_panel(
                        ax, summary[part], key, rctx.activations, colours, label
                    )
                )
        return panels


def budget_limit(steps: int) -> str:
    """What the step budget leaves open about a run that did not learn."""
    if not judged(steps):
        return (
            f"a run of {steps} steps is too short for the plateau rule that tells a run still "
            f"improving at the end of its budget from a stuck one (it needs more than "
            f"{PATIENCE} updates): a run that did not learn is called stuck though it may "
            "only be slow"
        )
    return (
        f"a run that has not learned within {steps} steps but was still improving at the end "
        f"of the budget ({improving_words()}) is slow, not stuck, and a longer budget may make "
        "it learn; the share learned counts it as not learned, and the findings say how many "
        "such runs there were"
    )


STUDY = Stability()
