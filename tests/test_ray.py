"""The Ray executor: the local executor's numbers, retried batches, clear failures."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pandas as pd
import pytest

import actlab
from actlab.errors import UserError
from actlab.executors import RAY_MISSING, choose_executor, ray_installed

# End to end on a local Ray cluster (about a minute): `make test-slow` (and CI) runs these;
# `make test` leaves them out.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ray_installed(), reason=RAY_MISSING),
]

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

TINY = {
    "gradient_flow": {"depths": [2, 3], "width": 8, "n_samples": 8, "report_depth": 3},
    "stability": {
        "lrs": [0.01, 1.0],
        "lr_depth": 3,
        "lr_steps": 10,
        "depths": [2, 4],
        "depth_steps": 10,
        "width": 8,
        "n_points": 30,
    },
}
TOML = """
seeds = 2
activations = ["ReLU", "Tanh", "x*sigmoid(x)"]
studies = ["gradient_flow"]
[gradient_flow]
depths = [2, 3]
width = 8
n_samples = 8
report_depth = 3
"""


def tiny(tmp_path, name, **extra):
    cfg = actlab.RunConfig(
        activations=["ReLU", "Tanh", "x*sigmoid(x)"],
        studies=list(TINY),
        seeds=2,
        study_config=TINY,
        **extra,
    )
    return actlab.run(config=cfg, out=tmp_path / name, report=False)


def sort(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["trial", "metric", "layer", "step"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def ray_instance():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_results(tmp_path_factory):
    return sort(tiny(tmp_path_factory.mktemp("local"), "run", executor="local").results)


def test_ray_gives_the_local_executors_numbers(tmp_path, ray_instance, local_results):
    run = tiny(tmp_path, "ray", executor="ray", max_members=3)
    assert run.manifest["status"] == "complete"
    pd.testing.assert_frame_equal(local_results, sort(run.results))


def test_a_batch_whose_worker_dies_is_retried_and_nothing_is_lost_or_doubled(
    tmp_path, ray_instance, local_results, monkeypatch
):
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("ACTLAB_TEST_RAY_KILL_ONCE", str(marker))
    run = tiny(tmp_path, "ray", executor="ray", max_members=3)
    assert marker.exists()  # a worker did die
    assert run.manifest["status"] == "complete"
    results = sort(run.results)
    assert not results.duplicated(["trial", "metric", "layer", "step"]).any()
    pd.testing.assert_frame_equal(local_results, results)


def test_the_cli_starts_and_stops_its_own_local_ray(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TOML)
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "actlab.cli", "run", "--config", str(config), "--executor"]
        + ["ray", "--out", str(out), "--no-report"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert actlab.load(out).manifest["status"] == "complete"
    assert len(actlab.load(out).results) > 0


def test_an_unreachable_address_fails_fast_with_one_line_and_exit_2(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TOML)
    out = tmp_path / "run"
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "actlab.cli", "run", "--config", str(config), "--executor"]
        + ["ray", "--address", "127.0.0.1:1", "--out", str(out), "--no-report"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert time.monotonic() - start < 30
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach a Ray cluster at 127.0.0.1:1" in lines[0], lines
    assert not out.exists()  # refused before anything was written


def test_address_is_not_hashed_and_implies_ray(monkeypatch):
    base = actlab.RunConfig(activations=["ReLU"], studies=["gradient_flow"])
    assert base.model_copy(update={"address": "auto"}).hash() == base.hash()
    with pytest.raises(UserError, match="cannot reach a Ray cluster at 127.0.0.1:1"):
        choose_executor(None, None, {}, [], address="127.0.0.1:1")  # an address means ray
    with pytest.raises(UserError, match="cannot reach a Ray cluster"):
        choose_executor("ray", None, {}, [], address="127.0.0.1:1")
    with pytest.raises(UserError, match="give auto or HOST:PORT"):
        choose_executor("ray", None, {}, [], address="nowhere")
    monkeypatch.setattr("actlab.executors.ray_installed", lambda: False)
    with pytest.raises(UserError, match=r"ray is not installed \(pip install actlab\[ray\]\)"):
        choose_executor("ray", None, {}, [])


def test_a_search_on_ray_gives_the_local_leaderboard(tmp_path, ray_instance):
    """`actlab search --executor ray`: every rung and confirmation through Ray tasks, the
    same files byte for byte as with the local executor."""
    from actlab.search.run import search

    settings = tmp_path / "tiny.toml"
    settings.write_text(
        "candidates = 5\nrung_steps = [20, 40]\nrung_seeds = [1, 2]\nfinalists = 2\n"
        "confirm_seeds = 2\nconfirm_steps = 30\nmax_members = 3\n"
        # the transfer small too (its defaults are the default search's 14 minutes)
        'transfer_seeds = 2\ntransfer_steps = 20\ntransfer_preset = "quick"\n'
    )
    local = search(config=settings, out=tmp_path / "local", executor="local", report=False)
    on_ray = search(config=settings, out=tmp_path / "ray", executor="ray", report=False)
    for name in ("leaderboard.csv", "rungs.csv", "finalists.txt", "transfer.csv"):
        assert (on_ray.path / name).read_bytes() == (local.path / name).read_bytes(), name


def test_a_bench_on_ray_gives_the_local_numbers(tmp_path, ray_instance):
    """`actlab bench --executor ray`: each (activation, seeds) batch as a Ray task, the same
    numbers as the local executor's."""
    from pathlib import Path

    import pandas as pd

    from actlab.bench import bench

    model = f"{Path(__file__).resolve().parents[1]}/examples/digits_cnn.py:make_cnn"
    settings = dict(activations=["ReLU", "GELU"], seeds=2, steps=20, eval_every=10, report=False)
    local = bench(model, executor="local", out=tmp_path / "local", **settings)
    on_ray = bench(model, executor="ray", out=tmp_path / "ray", **settings)
    order = ["activation", "seed", "metric", "layer", "step"]

    def numbers(run):
        kept = run.results[~run.results["metric"].isin(["seconds_per_step", "seconds"])]
        return kept.sort_values(order).reset_index(drop=True)[[*order, "value"]]

    pd.testing.assert_frame_equal(numbers(on_ray), numbers(local))
