"""Executors and planning: any executor and any batching give the same numbers."""

from __future__ import annotations

import pandas as pd
import pytest

import actlab
from actlab.executors import batch_cost, choose_executor, picklable
from actlab.plan import Batch, balance, plan
from actlab.studies import get_study

SMALL = {
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


def small(tmp_path, name, **extra):
    cfg = actlab.RunConfig(
        activations=["ReLU", "Tanh", "x*sigmoid(x)"],
        studies=list(SMALL),
        seeds=2,
        study_config=SMALL,
        **extra,
    )
    return actlab.run(config=cfg, out=tmp_path / name, report=False).results


def sort(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["trial", "metric", "layer", "step"]).reset_index(drop=True)


@pytest.mark.slow  # end to end in subprocesses
def test_process_pool_gives_the_local_executors_numbers(tmp_path):
    local = small(tmp_path, "local", executor="local")
    pooled = small(tmp_path, "pool", executor="process", workers=2, max_members=3)
    pd.testing.assert_frame_equal(sort(local), sort(pooled))


def test_plan_puts_one_activation_per_batch_and_respects_limits():
    study = get_study("stability")
    cfg = study.Config(**SMALL["stability"])
    trials = study.trials(cfg, ["ReLU", "Tanh"], seeds=3)
    batches = plan(study, trials, ["ReLU", "Tanh"], max_members=2)
    assert all(len({t.activation for t in b.trials}) == 1 for b in batches)
    assert all(len(b.trials) <= 2 for b in batches)
    assert sorted(t.key for b in batches for t in b.trials) == sorted(t.key for t in trials)
    tight = plan(study, trials, ["ReLU", "Tanh"], 64, max_bytes=1, config=cfg)
    assert all(len(b.trials) == 2 or len(b.trials) == 1 for b in tight)  # floor of 2 members


def test_balance_splits_the_big_batch_for_the_workers_and_keeps_every_trial():
    study = get_study("stability")
    cfg = study.Config(**SMALL["stability"])
    trials = study.trials(cfg, ["ReLU"], seeds=8)
    one = [
        Batch(
            "stability",
            [t for t in trials if t.params["part"] == "depth" and t.params["depth"] == 4],
        )
    ]
    split = balance(one, workers=2, cost=batch_cost)
    assert len(split) >= 2
    assert [t.key for b in split for t in b.trials] == [t.key for t in one[0].trials]
    assert balance(one, workers=1, cost=batch_cost) == one


def test_default_executor_is_local_for_small_work_and_refuses_unpicklable(tmp_path):
    from actlab.errors import UserError
    from actlab.studies.base import RunContext

    study = get_study("gradient_flow")
    cfg = study.Config(depths=[2], width=4)
    trials = study.trials(cfg, ["ReLU"], 1)
    batches = plan(study, trials, ["ReLU"], 64)
    ok = {"gradient_flow": RunContext(0, cfg, {"ReLU": actlab.get_activation("relu")})}
    assert choose_executor(None, 2, ok, batches).name == "local"  # too little work
    bad = {"gradient_flow": RunContext(0, cfg, {"f": actlab.get_activation(lambda x: x * 2)})}
    assert not picklable(bad)
    with pytest.raises(UserError, match="executor"):
        choose_executor("process", 2, bad, batches)


def test_one_seed_keeps_activations_together_so_no_stack_is_a_lone_trial():
    study = get_study("stability")
    cfg = study.Config(**SMALL["stability"])
    trials = [
        t
        for t in study.trials(cfg, ["ReLU", "Tanh", "GELU"], seeds=1)
        if t.params["part"] == "depth"
    ]
    batches = plan(study, trials, ["ReLU", "Tanh", "GELU"], max_members=64)
    assert len(batches) == len(cfg.depths)
    assert all(len(b.trials) == 3 for b in batches)  # one per activation, mixed
    assert [t.activation for t in batches[0].trials] == ["ReLU", "Tanh", "GELU"]


@pytest.mark.slow  # end to end in subprocesses
def test_an_unguarded_script_runs_once_and_completes(tmp_path):
    """A worker process re-imports the caller's main module; a plain script without a
    __main__ guard must not be re-run in workers, so by default it runs locally."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import actlab, actlab.executors\n"
        "actlab.executors.POOL_THRESHOLD = 0  # would pick the pool for any multi-batch run\n"
        f"r = actlab.run(config=actlab.RunConfig(activations=['ReLU', 'Tanh'], seeds=2,\n"
        f"    studies=['gradient_flow'], study_config={SMALL!r}), out={str(tmp_path / 'r')!r},\n"
        "    report=False)\n"
        "print('ran', len(r.results))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("ran ") == 1


def test_plan_costs_batches_by_their_work_and_splitting_keeps_the_cost():
    """Batches carry their trials' estimated work (steps x samples x layer sizes), which
    orders them longest-first and decides how balance() splits them."""
    from actlab.config import load_config

    cfg = load_config("tutorial")
    sparsity, capacity = get_study("sparsity"), get_study("capacity")
    sp_cfg, cap_cfg = cfg.study("sparsity"), cfg.study("capacity")
    sp = plan(sparsity, sparsity.trials(sp_cfg, ["ReLU"], 2), ["ReLU"], 64, config=sp_cfg)
    cap = plan(capacity, capacity.trials(cap_cfg, ["ReLU"], 2), ["ReLU"], 64, config=cap_cfg)
    trial = sp[0].trials[0]
    expected = sp_cfg.steps * sp_cfg.n_samples * sp_cfg.depth * sp_cfg.width * (sp_cfg.width + 16)
    assert sp[0].unit_cost == sparsity.trial_cost(trial, sp_cfg) == expected
    assert batch_cost(sp[0]) == len(sp[0].trials) * expected
    # Per network, the sparsity protocol (1000 samples, width 128) is more work than the
    # capacity protocol's (200 samples, width 64, but 5x the steps).
    assert sp[0].unit_cost > cap[0].unit_cost
    pieces = balance(cap, workers=2, cost=batch_cost)
    assert len(pieces) > len(cap)
    assert all(p.unit_cost == cap[0].unit_cost for p in pieces)


def test_the_pool_is_foreseen_from_the_config_alone():
    from actlab.config import load_config
    from actlab.executors import may_use_pool

    assert may_use_pool(load_config("tutorial", overrides={"workers": 2}))
    assert not may_use_pool(load_config("quick", overrides={"workers": 2}))  # too little work
    assert not may_use_pool(load_config("tutorial", overrides={"workers": 1}))
    assert not may_use_pool(load_config("tutorial", overrides={"executor": "local"}))
    assert may_use_pool(load_config("quick", overrides={"executor": "process", "workers": 2}))


def run_script(tmp_path, body: str):
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(body)
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path
    )


SPY = (
    "import actlab, actlab.executors as ex\n"
    "ex.POOL_THRESHOLD = 0  # the pool for any multi-batch run\n"
    "_map = ex.ProcessExecutor.map\n"
    "def spy(self, *a, **k):\n"
    "    print('pool used')\n"
    "    yield from _map(self, *a, **k)\n"
    "ex.ProcessExecutor.map = spy\n"
)


@pytest.mark.slow  # end to end in subprocesses
def test_a_script_with_a_main_guard_gets_the_process_pool(tmp_path):
    done = run_script(
        tmp_path,
        SPY + "if __name__ == '__main__':\n"
        f"    cfg = actlab.RunConfig(activations=['ReLU', 'Tanh'], seeds=2, workers=2,\n"
        f"        studies=['gradient_flow'], study_config={SMALL!r})\n"
        f"    r = actlab.run(config=cfg, out={str(tmp_path / 'r')!r}, report=False)\n"
        "    print('ran', len(r.results))\n",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("pool used") == 1 and done.stdout.count("ran ") == 1


@pytest.mark.slow  # end to end in subprocesses
def test_asking_for_the_pool_in_an_unguarded_script_is_one_clear_error(tmp_path):
    done = run_script(
        tmp_path,
        SPY + "cfg = actlab.RunConfig(activations=['ReLU', 'Tanh'], seeds=2, workers=2,\n"
        f"    executor='process', studies=['gradient_flow'], study_config={SMALL!r})\n"
        f"actlab.run(config=cfg, out={str(tmp_path / 'r')!r}, report=False)\n",
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "UserError" in last and "if __name__ ==" in last, done.stderr[-2000:]
    assert "bootstrapping" not in done.stderr and "pool used" not in done.stdout
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_gpu_runs_default_to_one_process_with_tf32_off(monkeypatch):
    import torch

    import actlab.executors
    from actlab.config import load_config
    from actlab.executors import may_use_pool
    from actlab.runner import prepare_device
    from actlab.studies.base import RunContext

    study = get_study("stability")
    cfg = study.Config(**SMALL["stability"])
    batches = plan(study, study.trials(cfg, ["ReLU"], 8), ["ReLU"], 2, config=cfg)
    table = {"ReLU": actlab.get_activation("relu")}
    on_gpu = {"stability": RunContext(0, cfg, table, device="cuda")}
    monkeypatch.setattr(actlab.executors, "POOL_THRESHOLD", 0)  # any work is worth a pool
    on_cpu = {"stability": RunContext(0, cfg, table)}
    assert choose_executor(None, 2, on_cpu, batches).name == "process"
    assert choose_executor(None, 2, on_gpu, batches).name == "local"
    assert not may_use_pool(load_config("tutorial", overrides={"device": "cuda", "workers": 2}))
    before = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        prepare_device("cuda")
        assert torch.backends.cuda.matmul.allow_tf32 is False
        assert torch.get_float32_matmul_precision() == "highest"
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
