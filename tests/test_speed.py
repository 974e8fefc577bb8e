"""The speed study: timings are measured, normalised to ReLU in the same batch."""

from __future__ import annotations

import actlab
from actlab.studies import get_study


def test_speed_study_measures_every_activation_against_relu(tmp_path):
    cfg = {"speed": {"sizes": {"small": [64, 256], "tiny": [1000]}, "rounds": 3, "warmup": 1}}
    run = actlab.run(
        config=actlab.RunConfig(
            activations=["GELU", "Tanh", "ReLU"], studies=["speed"], seeds=2, study_config=cfg
        ),
        out=tmp_path / "r",
    )
    df = run.results
    rel = df[df["metric"] == "rel_relu_fwdbwd"]
    assert (rel[rel["activation"] == "ReLU"]["value"] == 1.0).all()
    assert len(rel) == 3 * 2 * 2  # activations x sizes x seeds
    ns = df[df["metric"] == "ns_per_element_fwd"]["value"]
    assert (ns > 0).all() and (ns < 1e6).all()
    eps = df[df["metric"] == "elements_per_s_fwd"].set_index("trial")["value"]
    nsi = df[df["metric"] == "ns_per_element_fwd"].set_index("trial")["value"]
    assert ((eps * nsi / 1e9 - 1).abs() < 1e-9).all()  # consistent units
    report = run.report_path.read_text()
    assert "## Speed" in report and "| GELU |" in report
    assert (run.path / "figures" / "speed.png").stat().st_size > 5_000


def test_relu_is_always_measured_as_the_yardstick():
    study = get_study("speed")
    cfg = study.Config(sizes={"s": [128]}, rounds=3, warmup=0)
    from actlab.activations import get_activation
    from actlab.studies.base import RunContext

    acts = {"GELU": get_activation("gelu")}
    trials = study.trials(cfg, ["GELU"], seeds=1)
    rows = study.run(trials, RunContext(0, cfg, acts))
    metrics = {r["metric"] for r in rows[0]}
    assert {"rel_relu_fwd", "rel_relu_fwdbwd"} <= metrics  # ReLU timed though not listed
    assert len(rows) == 1


def test_timing_batches_run_alone_after_the_parallel_work(tmp_path, monkeypatch):
    """The speed study is exclusive: its batches run in the main process, after the pool."""
    import os

    from actlab.studies.speed import Speed

    seen = []
    original = Speed.run

    def spy(self, trials, ctx):
        seen.append(os.getpid())
        return original(self, trials, ctx)

    monkeypatch.setattr(Speed, "run", spy)
    cfg = {
        "speed": {"sizes": {"tiny": [512]}, "rounds": 3, "warmup": 0},
        "gradient_flow": {"depths": [2, 3], "width": 8, "n_samples": 8, "report_depth": 3},
    }
    actlab.run(
        config=actlab.RunConfig(
            activations=["ReLU", "Tanh"],
            seeds=2,
            studies=["gradient_flow", "speed"],
            study_config=cfg,
            executor="process",
            workers=2,
        ),
        out=tmp_path / "r",
        report=False,
    )
    assert seen and set(seen) == {os.getpid()}
