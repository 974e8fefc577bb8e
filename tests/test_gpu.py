"""--device cuda: the same batches on a GPU, with TF32 off, giving the CPU's numbers within
float rounding. Skipped, with the reason shown, on a machine without a CUDA device (CI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import actlab
from actlab.activations import get_activation
from actlab.engine import StackedMLP, generator, init_mlp_params, layer_sizes

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine"
)

MIXED = ["Linear", "Tanh", "ReLU", "Sigmoid", "GELU", "Swish", "ELU", "LeakyReLU", "SELU"]

SMALL = {
    "gradient_flow": {"depths": [3, 6], "width": 16, "n_samples": 16, "report_depth": 6},
    "stability": {
        "lrs": [0.01, 1.0],
        "lr_depth": 3,
        "lr_steps": 5,
        "depths": [3],
        "depth_steps": 5,
        "width": 16,
        "n_points": 40,
    },
    "capacity": {"depth": 2, "width": 16, "steps": 5, "n_train": 40, "n_test": 50},
    "sparsity": {"depth": 3, "width": 16, "in_dim": 4, "n_samples": 64, "steps": 5},
}


def test_fused_stack_on_the_gpu_matches_the_cpu():
    sizes = layer_sizes(3, 24, 5)
    members = [init_mlp_params(sizes, generator(1, "gpu", k)) for k in range(len(MIXED))]
    fns = [get_activation(n).fn for n in MIXED]
    x = torch.randn(40, 3, generator=generator(2, "x"))
    grads = {}
    for device in ("cpu", "cuda"):
        model = StackedMLP(members, fns, device=device)
        model.output_mean(model.forward(x.to(device))).sum().backward()
        grads[device] = model.flat_grad.cpu()
    torch.testing.assert_close(grads["cuda"], grads["cpu"], rtol=1e-4, atol=1e-6)


def test_a_gpu_run_gives_the_cpu_numbers_with_tf32_off(tmp_path):
    def run(device):
        cfg = actlab.RunConfig(
            activations=["ReLU", "Tanh", "GELU"],
            studies=list(SMALL),
            seeds=2,
            study_config=SMALL,
            device=device,
        )
        return actlab.run(config=cfg, out=tmp_path / device, report=False).results

    cpu, gpu = run("cpu"), run("cuda")
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert sorted(cpu["trial"].unique()) == sorted(gpu["trial"].unique())
    # One forward and backward pass, no training: within rounding.
    keys = ["trial", "metric", "layer"]
    a = cpu[cpu["study"] == "gradient_flow"].sort_values(keys)
    b = gpu[gpu["study"] == "gradient_flow"].sort_values(keys)
    np.testing.assert_allclose(b["value"].to_numpy(), a["value"].to_numpy(), rtol=1e-3)
    # The loss before the first update of every stress run, likewise.
    first = [
        df[(df["study"] == "stability") & (df["metric"] == "loss") & (df["step"] == 1)]
        .sort_values("trial")["value"]
        .to_numpy()
        for df in (cpu, gpu)
    ]
    np.testing.assert_allclose(first[1], first[0], rtol=1e-4)
    assert isinstance(gpu, pd.DataFrame) and gpu["value"].notna().any()


def test_a_bench_on_the_gpu_gives_the_cpus_numbers(tmp_path):
    """Issue 30: `actlab bench --device cuda`, the torch.func stack on the GPU."""
    from pathlib import Path

    from actlab.bench import bench

    model = f"{Path(__file__).resolve().parents[1]}/examples/digits_cnn.py:make_cnn"
    losses = {}
    for device in ("cuda", "cpu"):
        run = bench(
            model,
            activations=["GELU"],
            seeds=2,
            steps=20,
            device=device,
            executor="local",
            out=tmp_path / device,
            report=False,
        )
        rows = run.results[(run.results["metric"] == "test_loss") & run.results["step"].isna()]
        losses[device] = rows.sort_values("seed")["value"].to_numpy()
    np.testing.assert_allclose(losses["cuda"], losses["cpu"], rtol=1e-3)
