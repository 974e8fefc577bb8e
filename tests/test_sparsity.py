"""Experiment 2: exact zeros, dead and saturated units, divergence kept apart, the report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

import actlab
from actlab import reference
from actlab.activations import get_activation
from actlab.engine import StackedMLP, generator, init_mlp_params, layer_sizes
from actlab.engine.stack import Captured
from actlab.studies import get_study
from actlab.studies.base import ReportContext, RunContext
from actlab.studies.sparsity import (
    Config,
    dead_rate,
    layer_metrics,
    make_data,
    saturated_rate,
    sparsity,
    trial_rows,
)

TINY = {"depth": 3, "width": 8, "in_dim": 4, "n_samples": 32, "steps": 5, "bins": 20}


def tiny_run(tmp_path, name="run", activations=("Linear", "Sigmoid", "ReLU"), **overrides):
    settings = {"seeds": 2, "max_members": 64, **overrides}
    return actlab.run(
        config=actlab.RunConfig(
            activations=list(activations),
            studies=["sparsity"],
            seeds=settings["seeds"],
            max_members=settings["max_members"],
            study_config={"sparsity": {**TINY, **settings.get("sparsity", {})}},
        ),
        out=tmp_path / name,
        report=settings.get("report", True),
    )


def forward_capture(params, act_name: str, x: torch.Tensor) -> Captured:
    model = StackedMLP([params], [get_activation(act_name).fn])
    capture = Captured()
    with torch.no_grad():
        model.forward(x, capture)
    return capture


def metrics_of(params, act_name: str, x: torch.Tensor) -> dict[str, np.ndarray]:
    act = get_activation(act_name)
    cap = forward_capture(params, act_name, x)
    derivs = [act.derivative(z) for z in cap.pre]
    return {k: v[0] for k, v in layer_metrics(cap.post, derivs, 1e-6, 1e-3).items()}


def random_params(depth=3, width=16, in_dim=4, seed=0):
    sizes = layer_sizes(in_dim, width, depth)
    return init_mlp_params(sizes, generator(0, "test-init", seed))


# -- the metric functions ------------------------------------------------------------------------


def test_metric_functions_count_by_hand():
    # Two members, 3 samples, 4 units. Member 0: unit 0 zero for every sample (dead), unit 1
    # zero for one sample only; member 1: nothing is zero.
    post = torch.ones(2, 3, 4)
    post[0, :, 0] = 0.0
    post[0, 1, 1] = 1e-8
    assert sparsity(post).tolist() == [4 / 12, 0.0]
    assert dead_rate(post).tolist() == [1 / 4, 0.0]
    # |a| = 1e-6 is not an exact zero (strict <) but is dead (<=), as the protocol says.
    edge = torch.full((1, 2, 1), 1e-6, dtype=torch.float64)
    assert sparsity(edge).tolist() == [0.0] and dead_rate(edge).tolist() == [1.0]
    deriv = torch.ones(2, 3, 4)
    deriv[1, :, 2:] = 1e-5
    deriv[0, 0, 3] = 0.0  # flat on one sample only: not saturated
    assert saturated_rate(deriv).tolist() == [0.0, 0.5]


def test_a_relu_network_killed_on_purpose_is_fully_dead_and_sparse():
    params = random_params()
    w1, b1 = params[0]
    params[0] = (w1, torch.full_like(b1, -100.0))  # every first-layer pre-activation < 0
    x = torch.randn(50, 4, generator=generator(0, "test-x"))
    m = metrics_of(params, "ReLU", x)
    # Layer 1 is zero by construction; deeper layers see zero input and zero bias: relu(0) = 0.
    assert m["sparsity"].tolist() == [1.0, 1.0, 1.0]
    assert m["dead_rate"].tolist() == [1.0, 1.0, 1.0]
    assert m["saturated_rate"].tolist() == [1.0, 1.0, 1.0]  # relu'(z <= 0) = 0


def test_a_linear_network_has_no_zeros_no_dead_and_no_saturated_units():
    x = torch.randn(200, 4, generator=generator(0, "test-x"))
    m = metrics_of(random_params(), "Linear", x)
    assert m["sparsity"].tolist() == [0.0, 0.0, 0.0]
    assert m["dead_rate"].tolist() == [0.0, 0.0, 0.0]
    assert m["saturated_rate"].tolist() == [0.0, 0.0, 0.0]


def test_a_sigmoid_unit_stuck_at_one_is_saturated_not_dead_or_sparse():
    params = random_params(depth=1, width=4)
    w1, b1 = params[0]
    b1 = b1.clone()
    b1[0] = 40.0  # sigmoid(~40) = 1: output far from zero, slope ~4e-18
    b1[1] = -40.0  # sigmoid(~-40) ~ 4e-18: an exact zero, dead and saturated
    params[0] = (w1 * 0.01, b1)
    x = torch.randn(100, 4, generator=generator(0, "test-x"))
    m = metrics_of(params, "Sigmoid", x)
    assert m["saturated_rate"].tolist() == [0.5]
    assert m["dead_rate"].tolist() == [0.25]
    assert m["sparsity"].tolist() == [0.25]


def test_a_diverged_trial_is_nan_never_dead():
    rows = trial_rows(
        {
            "sparsity": [0.0, 0.0],
            "dead_rate": [1.0, 1.0],
            "saturated_rate": [1.0, 1.0],
            "zero_slope_rate": [1.0, 1.0],
        },
        {"zero_slope_rate": [0.25, 0.75]},
        act_mean=math.nan,
        act_std=math.nan,
        hist=[0.0, 0.0],
        diverged=True,
        final_loss=math.inf,
        steps_completed=3,
        target_var=0.5,
        state="diverged",
    )
    by = {(r["metric"], r.get("layer"), r.get("step")): r["value"] for r in rows}
    assert by[("diverged", None, None)] == 1.0
    assert by[("steps_completed", None, None)] == 3.0
    # what was measured before training stands: the network existed then
    assert by[("zero_slope_rate_init", None, None)] == 0.5
    assert by[("zero_slope_rate_init", 2, None)] == 0.75
    for metric in ("sparsity", "dead_rate", "saturated_rate", "zero_slope_rate"):
        assert math.isnan(by[(metric, None, None)])
        assert math.isnan(by[(metric, 1, None)]) and math.isnan(by[(metric, 2, None)])
    assert math.isnan(by[("final_loss", None, None)])
    assert math.isnan(by[("hist_count", None, 0)])


def test_linear_at_lr_5_diverges_and_is_reported_as_diverged(tmp_path):
    study = get_study("sparsity")
    cfg = Config(**{**TINY, "lr": 5.0, "steps": 20})
    acts = {"Linear": get_activation("Linear")}
    trials = study.trials(cfg, ["Linear"], seeds=2)
    for rows in study.run(trials, RunContext(0, cfg, acts)):
        by = {(r["metric"], r.get("layer")): r["value"] for r in rows}
        assert by[("diverged", None)] == 1.0
        assert by[("steps_completed", None)] < 20
        measured = [
            r["value"]
            for r in rows
            if r["metric"] not in ("diverged", "steps_completed", "target_var")
            and r["metric"] not in ("learned", "stuck", "failed")
            and not r["metric"].endswith("_init")  # measured before training: it stands
        ]
        assert measured and all(math.isnan(v) for v in measured)
        assert by[("learned", None)] == by[("stuck", None)] == by[("failed", None)] == 0.0
        assert math.isfinite(by[("zero_slope_rate_init", None)])
    # At lr 0.5 (these tiny sizes) Linear diverges and Sigmoid does not: the report and
    # the best/worst scores keep the diverged network apart, with no dead-rate number.
    run = tiny_run(tmp_path, activations=("Linear", "Sigmoid"), sparsity={"lr": 0.5, "steps": 20})
    report = run.report_path.read_text()
    assert "| Linear | diverged | diverged | diverged | " in report
    assert "| diverged | 0 of 2 | 2 of 2 | diverged |" in report
    assert "| Sigmoid | " in report and "| Sigmoid | diverged" not in report
    assert "Linear diverged in every seed" in report
    rctx = ReportContext(2, ["Linear", "Sigmoid"], cfg)
    props = study.properties(study.summarize(run.results), rctx)
    lin = props[props["activation"] == "Linear"]
    assert len(lin) == 4 and lin["score"].isna().all() and (lin["outcome"] == "diverged").all()
    assert set(props["property"]) == {"dead units", "saturated units"}
    assert props[props["activation"] == "Sigmoid"]["score"].notna().all()
    assert {s.better for s in study.property_specs} == {"lower"}
    # With the activations known, neither can have a unit of zero slope: not ranked on
    # dead units, and said so. The diverged network ranks last on saturated units (a
    # diverged run is the worst outcome, never left out of the ranking).
    verdicts = pd.read_csv(run.path / "verdicts.csv").set_index(["property", "activation"])
    assert verdicts.loc[("dead units", "Linear"), "group"] == "not ranked"
    # (this read "cannot die 2", hiding the divergence the saturated row shows: audit T9b)
    assert verdicts.loc[("dead units", "Linear"), "outcomes"] == "diverged (cannot die) 2"
    assert verdicts.loc[("saturated units", "Linear"), "outcomes"] == "diverged 2"
    assert verdicts.loc[("saturated units", "Linear"), "mean_rank"] == 2


def test_config_validates_ranges():
    assert Config().model_dump()["lr"] == 0.1
    for bad in (
        {"lr": 0.0},
        {"depth": 0},
        {"width": 0},
        {"steps": 0},
        {"n_samples": 0},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            Config(**bad)
    with pytest.raises(actlab.errors.UserError, match="lr"):
        actlab.run(activations=["ReLU"], studies=["sparsity"], sparsity={"lr": -1})


# -- protocol fidelity and invariance ------------------------------------------------------------


def test_exact_mode_matches_the_reference_training_loop():
    """Trained with the reference nn.Sequential + torch.optim loop from the same init and
    data, the network's post-activations give the same metrics as the study's rows."""
    study = get_study("sparsity")
    cfg = Config(**{**TINY, "steps": 8, "lr": 0.5})
    names = ["ReLU", "Sigmoid"]
    acts = {n: get_activation(n) for n in names}
    trials = study.trials(cfg, names, seeds=1)
    ctx = RunContext(run_seed=3, config=cfg, activations=acts, exact=True)
    rows = study.run(trials, ctx)
    sizes = layer_sizes(cfg.in_dim, cfg.width, cfg.depth)
    for trial, trial_rows_ in zip(trials, rows, strict=True):
        params = init_mlp_params(
            sizes, generator(3, "init", f"sizes={sizes}", "xavier_uniform", trial.seed)
        )
        x, y = make_data(ctx, cfg, cfg.in_dim, trial.seed)
        result, model = reference.train(params, acts[trial.activation].fn, x, y, "sgd", 0.5, 8)
        posts, h = [], x
        with torch.no_grad():
            for layer in list(model)[:-1]:
                h = layer(h)
                if isinstance(layer, reference.Act):
                    posts.append(h)
        expected = [float(sparsity(p.unsqueeze(0))[0]) for p in posts]
        got = [r["value"] for r in trial_rows_ if r["metric"] == "sparsity" and "layer" in r]
        assert got == expected
        expected_dead = [float(dead_rate(p.unsqueeze(0))[0]) for p in posts]
        got_dead = [r["value"] for r in trial_rows_ if r["metric"] == "dead_rate" and "layer" in r]
        assert got_dead == expected_dead
        final = next(r["value"] for r in trial_rows_ if r["metric"] == "final_loss")
        assert final == float(result.loss_after[0])


def test_data_is_paired_across_activations_and_differs_across_seeds():
    cfg = Config(**TINY)
    ctx = RunContext(0, cfg, {})
    x0, y0 = make_data(ctx, cfg, 4, seed=0)
    x1, _ = make_data(ctx, cfg, 4, seed=1)
    assert x0.shape == (32, 4) and y0.shape == (32, 1)
    assert not torch.equal(x0, x1)
    noise = y0 - torch.sin(x0.sum(dim=1, keepdim=True))
    assert 0.02 < float(noise.std()) < 0.3  # noise 0.1


def test_results_do_not_depend_on_batch_mates(tmp_path):
    names = ("Sigmoid", "ReLU", "GELU")
    together = tiny_run(tmp_path, "together", activations=names, report=False).results
    alone = tiny_run(tmp_path, "alone", activations=names, max_members=1, report=False).results
    key = ["trial", "metric", "layer", "step"]
    pd.testing.assert_frame_equal(
        together.sort_values(key).reset_index(drop=True),
        alone.sort_values(key).reset_index(drop=True),
    )


# -- end to end ----------------------------------------------------------------------------------


def test_run_end_to_end_writes_rows_figures_and_report(tmp_path):
    run = tiny_run(tmp_path)
    df = run.results
    assert set(df["study"]) == {"sparsity"} and df["trial"].nunique() == 6
    assert {"depth", "width", "in_dim", "lr", "optimizer", "steps"} <= set(df.columns)
    one = df[df["trial"] == df["trial"].iloc[0]]
    assert sorted(one[one["metric"] == "dead_rate"]["layer"].dropna().tolist()) == [1, 2, 3]
    assert one[one["metric"] == "hist_count"]["step"].tolist() == list(range(20))
    for stem in ("sparsity", "sparsity_histograms"):
        assert (run.path / "figures" / f"{stem}.png").stat().st_size > 5_000
    report = run.report_path.read_text()
    # "dead" is zero slope on every input; the output-below-threshold count is named as such
    assert (
        "| activation | sparsity % | output ~0 % | saturated % | zero slope % at init | "
        "zero slope (dead) % after | learned seeds | diverged seeds | final loss |"
    ) in report
    assert "figures/sparsity.png" in report and "figures/sparsity_histograms.png" in report
    # A table number comes from the stored rows: ReLU's mean layer-mean sparsity.
    relu = df[(df["activation"] == "ReLU") & (df["metric"] == "sparsity") & df["layer"].isna()]
    assert f"| ReLU | {100 * relu['value'].mean():.2f} [" in report
    assert "**What the data says.**" in report


def test_one_seed_report_says_there_is_no_error_bar(tmp_path):
    report = tiny_run(tmp_path, seeds=1).report_path.read_text()
    assert "no error bar" in report
    assert " [" not in report.split("| final loss |")[1].split("\n\n")[0]  # no intervals


# -- the audit's sparsity findings: dead means zero slope, divergence one way, floors first,
# -- one number format (planted summaries, no training) ---------------------------------------


def planted_summary(per_seed: dict[str, list[dict]]):
    """The study's summary of hand-made stored rows: per activation, one dict of network
    metrics per seed (NETWORK_METRICS by name, `diverged` 0/1); a diverged seed's
    measurements are NaN, as the study stores them, and layers 1 and 2 repeat the mean."""
    from actlab.studies.sparsity import summarize
    from actlab.studies.sparsity.config import LAYER_METRICS, NETWORK_METRICS

    rows = []
    for act, seeds in per_seed.items():
        for seed, values in enumerate(seeds):
            diverged = values.get("diverged", 0)

            def add(metric, value, layer=math.nan, act=act, seed=seed):
                rows.append(
                    {"study": "sparsity", "trial": f"sparsity/{act}/seed={seed}",
                     "activation": act, "seed": seed, "metric": metric,
                     "value": float(value), "layer": layer, "step": math.nan}
                )  # fmt: skip

            for metric in NETWORK_METRICS:
                value = values.get(metric, 0.0)
                if diverged and not metric.endswith("_init"):
                    value = math.nan
                add(metric, value)
                if metric in LAYER_METRICS:
                    add(metric, value, 1.0)
                    add(metric, value, 2.0)
            add("diverged", diverged)
            add("steps_completed", 4 if diverged else 100)
            add("target_var", 0.5)
            for state in ("learned", "stuck", "failed"):
                add(state, 0.0 if diverged else float(state == "learned"))
    return summarize(pd.DataFrame(rows))


AUDIT_ACTS = ["ReLU", "Sigmoid", "Tanh", "ELU"]


def audit_summary(seeds: int = 4):
    """ReLU: 5.3% of units with zero slope; Sigmoid: 4.65% of units with output ~0 but
    only 0.00013% with zero slope (float rounding); Tanh: the lowest loss over its surviving
    seeds but diverged in the last two; ELU: a sparsity of 1.76e-5 %."""
    relu = [
        {"sparsity": 0.4857, "dead_rate": 0.053, "zero_slope_rate": 0.053,
         "saturated_rate": 0.053, "zero_slope_rate_init": 0.05 + 0.001 * s,
         "final_loss": 0.47 + 0.01 * s}
        for s in range(seeds)
    ]  # fmt: skip
    sigmoid = [
        {"dead_rate": 0.0465, "zero_slope_rate": 1.3e-6, "saturated_rate": 0.047,
         "final_loss": 0.49}
        for s in range(seeds)
    ]  # fmt: skip
    tanh = [
        {"saturated_rate": 0.10 + 0.01 * s, "final_loss": 0.40, "diverged": int(s >= seeds - 2)}
        for s in range(seeds)
    ]
    elu = [
        {"sparsity": 1.76e-7, "saturated_rate": 0.02 + 0.001 * s,
         "final_loss": 0.46 + 0.003 * (-1) ** s}
        for s in range(seeds)
    ]  # fmt: skip
    return planted_summary({"ReLU": relu, "Sigmoid": sigmoid, "Tanh": tanh, "ELU": elu})


def audit_rctx(seeds: int = 4):
    return ReportContext(seeds, AUDIT_ACTS, Config(), {a: get_activation(a) for a in AUDIT_ACTS})


def test_dead_means_zero_slope_everywhere_and_output_near_zero_is_named_for_what_it_is():
    """Audit T11: "Dead units (zero for every input): ReLU 5.33%, Sigmoid 4.65%": Sigmoid's
    were units with output below 1e-6, saturated, not units with zero slope."""
    from actlab.render.figures import activation_colours, pyplot
    from actlab.studies.sparsity import TITLES, findings, report_markdown

    summary, rctx = audit_summary(), audit_rctx()
    said = findings(summary, AUDIT_ACTS, rctx.config, rctx.specs)
    dead = next(s for s in said if s.startswith("Dead units"))
    assert dead == "Dead units (slope exactly 0 on every input): ReLU 5.30% of units."
    assert not any("zero for every input" in s for s in said)
    near = next(s for s in said if s.startswith("Units with output ~0"))
    assert "Sigmoid 4.65% (zero slope: <0.01%)" in near and "not dead" in near
    assert "ReLU" not in near  # its output-~0 units are its zero-slope units
    rounded = next(s for s in said if s.startswith("Sigmoid <0.01% of units had a slope"))
    assert "not ranked on dead units" in rounded
    report = report_markdown(summary, rctx, "b.png", "h.png")
    assert "| output ~0 % |" in report and "| dead % |" not in report
    # The summary sheet's second panel and the figure's middle panel draw the zero-slope
    # rate under the title "Dead units (zero slope ...)": Sigmoid's bar is ~0, not 4.65.
    plt = pyplot()
    fig, ax = plt.subplots()
    panels = get_study("sparsity").sheet_panels(summary, rctx, activation_colours(AUDIT_ACTS))
    panels[1](ax)
    assert ax.get_title() == TITLES["zero_slope_rate"]
    assert ax.get_title().startswith("Dead units (zero slope")
    heights = [bar.get_height() for bar in ax.patches]
    assert heights[AUDIT_ACTS.index("ReLU")] == pytest.approx(5.3)
    assert heights[AUDIT_ACTS.index("Sigmoid")] == pytest.approx(1.3e-4)
    plt.close(fig)


def test_an_activation_that_diverged_in_a_seed_is_never_the_lowest_loss():
    """Audit T9a: "Lowest mean final loss (means over the seeds that did not diverge ...):
    Tanh" although Tanh diverged in 2 of its seeds."""
    from actlab.studies.sparsity import findings

    summary, rctx = audit_summary(), audit_rctx()
    said = findings(summary, AUDIT_ACTS, rctx.config, rctx.specs)
    sentence = next(s for s in said if "final loss" in s)
    # Tanh's 0.400 over its two surviving seeds is the lowest number, but it comes last
    assert sentence.startswith(
        "Lowest mean final loss among the activations that never diverged: ELU (0.460), "
        "then ReLU (0.485)."
    )
    assert "Ranked after every activation that never diverged" in sentence
    assert "Tanh (0.400 over the surviving seeds, diverged 2 of 4)" in sentence
    assert sentence.index("ELU (0.460)") < sentence.index("Tanh (0.400")
    # Every activation with a diverged seed: none is named lowest.
    every = planted_summary(
        {
            "A": [{"final_loss": 0.1}, {"diverged": 1}],
            "B": [{"diverged": 1}, {"final_loss": 0.2}],
        }
    )
    (loss_sentence,) = [s for s in findings(every, ["A", "B"], Config()) if "final loss" in s]
    assert loss_sentence.startswith("Every activation diverged in some seed, so none is named")
    assert "Lowest" not in loss_sentence


def test_the_rectifier_claim_keeps_a_diverged_seed_out_of_both_sides_and_says_so():
    """Audit T8: the group mean silently dropped Tanh's diverged seeds, so the comparison
    group changed from seed to seed."""
    from actlab.studies.sparsity import rectifiers_die_most

    summary, rctx = audit_summary(), audit_rctx()
    claim = rectifiers_die_most(summary, rctx, "its conditions")
    assert claim.test.n == 2  # seeds 2 and 3 left out of both groups
    assert (
        "2 of 4 seeds left out of both groups because Tanh diverged in 2, and a diverged "
        "network has no units to count"
    ) in claim.measured
    # The difference over seeds 0 and 1, with all three other activations in the group.
    others = {s: (0.047 + (0.10 + 0.01 * s) + (0.02 + 0.001 * s)) / 3 for s in (0, 1)}
    expected = np.mean([0.053 - others[s] for s in (0, 1)])
    assert claim.test.mean_diff == pytest.approx(expected)
    # Nothing diverged: every seed counts and nothing is said about leaving seeds out.
    calm = audit_summary(seeds=3)
    calm["trials"]["diverged"] = 0.0
    calm["trials"]["saturated_rate"] = calm["trials"]["saturated_rate"].fillna(0.1)
    claim = rectifiers_die_most(calm, audit_rctx(3), "its conditions")
    assert claim.test.n == 3 and "left out" not in claim.measured


def test_tests_at_too_few_seeds_say_so_before_not_separated():
    """Audits T7 and L5: "Tanh and ELU are not separated by 4 seeds (... p = 0.62)" and
    "no change separated from seed noise (... over 3 seeds, p = 0.25)" were given as
    findings, although these tests could not reach p < 0.05 at those seeds."""
    from actlab.studies.sparsity import findings, training_findings

    summary, rctx = audit_summary(), audit_rctx()
    sentence = next(s for s in findings(summary, AUDIT_ACTS, rctx.config) if "final loss" in s)
    floor = (
        "With 4 seeds and one comparison, the paired test of ELU against ReLU cannot reach "
        "p < 0.05 whatever the data (the smallest attainable p is 0.12); 6 seeds would be "
        "needed"
    )
    assert floor in sentence
    assert sentence.index(floor) < sentence.index("ELU and ReLU are not separated by 4 seeds")
    said = training_findings(summary, AUDIT_ACTS, rctx)
    reach = next(i for i, s in enumerate(said) if s.startswith("With 4 seeds and one comparison"))
    assert "at initialisation against after training cannot reach p < 0.05" in said[reach]
    relu = next(i for i, s in enumerate(said) if s.startswith("ReLU: "))
    assert reach < relu
    assert "these seeds cannot separate a change from seed noise" in said[relu]
    assert "no change separated from seed noise" not in said[relu]
    # At 8 seeds one comparison can reach p < 0.05 (2 / 2^8): no floor sentence, and ELU's
    # lower loss in every seed separates it.
    eight = findings(audit_summary(seeds=8), AUDIT_ACTS, rctx.config)
    assert not any("cannot reach" in s for s in eight)
    assert any("ELU is better than Sigmoid (paired sign-flip" in s for s in eight)


def test_every_rate_in_a_column_and_a_cell_is_written_one_way():
    """Audit T14: "48.57 [47.55, 49.59]" beside "0.000176 [1.94e-05, 0.000332]" in one
    column, and "0.000391" beside "0.00" in the per-layer tables."""
    import re

    from actlab.studies.sparsity import report_markdown
    from actlab.studies.sparsity.report import loss, rate

    assert rate(1.76e-6) == "<0.01" and rate(0.0) == "0.00" and rate(0.4857) == "48.57"
    assert rate(-0.0) == "0.00" and rate(4.9e-5) == "<0.01" and rate(5.1e-5) == "0.01"
    assert loss(0.46) == "0.460" and loss(2e-5) == "<0.001"
    report = report_markdown(audit_summary(), audit_rctx(), "b.png", "h.png")
    table = report[report.index("| activation | sparsity %") : report.index("</details>")]
    rows = [x for x in table.splitlines() if x.startswith("| ") and not x.startswith("| activ")]
    assert len(rows) == 4 * 5  # the results table and four per-layer tables
    percent = re.compile(r"^(<0\.01|\d+\.\d\d)$")
    seen = 0
    for row in rows:
        cells = row.strip("| ").split(" | ")[1:]
        rates = cells[:5] if len(cells) == 8 else cells  # results table: the five % columns
        for c in rates:
            for number in re.findall(r"[^\s\[\],]+", c):
                if number not in ("–", "diverged"):
                    assert percent.match(number), (row, number)
                    seen += 1
    assert seen == 4 * 5 * 3 + 4 * 4 * 2  # every value and bound; layers 1 and 2 planted
    assert "e-" not in table and "e+" not in table
    assert "| ELU | <0.01 [<0.01, <0.01] |" in report
