"""Runs too big for the machine are refused up front, with an estimate, before anything is
written; ordinary runs are not. (The CLI's bad-input table has the command-line case.)"""

from __future__ import annotations

import re

import pytest

import actlab
from actlab import preflight
from actlab.config import load_config
from actlab.errors import UserError
from actlab.plan import plan
from actlab.studies import get_study

HUGE = {"depths": [1000], "width": 8192, "n_samples": 1_000_000}  # ~200 TB per network
MODERATE = {"depths": [50], "width": 1024, "n_samples": 1000}  # ~1.3 GB per network


def config(gradient_flow, **extra):
    return actlab.RunConfig(
        activations=["ReLU", "Tanh"],
        studies=["gradient_flow"],
        seeds=4,
        study_config={"gradient_flow": gradient_flow},
        **extra,
    )


def test_a_run_no_machine_can_hold_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(UserError) as info:
        actlab.run(config=config(HUGE), out=tmp_path / "run")
    message = str(info.value)
    assert re.search(r"needs about [\d.]+ TB for 2 networks of gradient_flow", message)
    assert "depth 1000, width 8192" in message and "n_samples 1000000" in message
    assert re.search(r"the machine has [\d.]+ [kMGT]?B available", message)
    assert "reduce width, depth or the number of samples" in message
    assert list(tmp_path.iterdir()) == []


def test_the_limit_is_the_memory_available_now(tmp_path, monkeypatch):
    monkeypatch.setattr(preflight, "available_memory", lambda device="cpu": 500 * 10**6)
    with pytest.raises(UserError, match=r"needs about [\d.]+ GB .*has 500 MB available"):
        actlab.run(config=config(MODERATE), out=tmp_path / "run", report=False)
    assert not (tmp_path / "run").exists()

    monkeypatch.setattr(preflight, "available_memory", lambda device="cpu": 64 * 10**9)
    shrunk = {**MODERATE, "depths": [2], "width": 8, "n_samples": 8}
    actlab.run(config=config(shrunk), out=tmp_path / "ok", report=False)  # fits: runs


def batches_of(cfg):
    batches = []
    for name in cfg.studies:
        study, study_cfg = get_study(name), cfg.study(name)
        trials = study.trials(study_cfg, cfg.activations, cfg.seeds)
        cap = cfg.batch_memory_mb * 2**20
        batches += plan(study, trials, cfg.activations, cfg.max_members, cap, study_cfg)
    return batches


class Pool:
    workers = 4


def test_a_process_pool_counts_the_batches_it_runs_at_once(monkeypatch):
    cfg = config(MODERATE, executor="process", workers=4)
    batches = batches_of(cfg)
    assert len(batches) >= 4
    study = get_study("gradient_flow")
    biggest = max(
        max(2, len(b.trials))
        * preflight.network_bytes(study, b.trials[0], cfg.study(b.study), "float32")
        for b in batches
    )
    monkeypatch.setattr(preflight, "available_memory", lambda device="cpu": int(biggest * 1.5))
    with pytest.raises(UserError, match="with 4 worker processes running batches at once"):
        preflight.check_memory(cfg, batches, Pool())
    preflight.check_memory(cfg, batches, object())  # one batch at a time fits


@pytest.mark.parametrize("preset", ["quick", "tutorial"])
def test_the_presets_fit_in_a_small_machine(preset, monkeypatch):
    """The estimate must not refuse ordinary work: each preset fits in 2 GB, 4 workers."""
    monkeypatch.setattr(preflight, "available_memory", lambda device="cpu": 2 * 10**9)
    cfg = load_config(preset)
    preflight.check_memory(cfg, batches_of(cfg), Pool())
