"""Issue 29, take it home: `actlab export` writes plain PyTorch that runs without actlab and
gives the expression's values and slopes; `actlab.nn.Activation` is any activation as an
nn.Module."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from typer.testing import CliRunner

import actlab
from actlab.activations import parse_activation_arg
from actlab.cli import app
from actlab.errors import UserError
from actlab.export import export

SPECS = {
    "erf_minus_x": "erf(x) - x",
    "leaky": "where(x < 0, 0.1*x, x) + sinc(x)*pi",
    "swish_beta": "x*sigmoid(b*x) | b=1.5",
    "prelu_unit": "where(x > 0, x, a*x) | a=0.25 per-unit",
    "pau": "PAU",
}
GRID = torch.linspace(-5, 5, 401)

# Runs in a fresh Python where `import actlab` fails: each exported module on the float32
# grid (a per-unit one with one feature), its values and autograd slopes, as JSON.
CHILD = textwrap.dedent(
    """
    import importlib, json, sys
    import torch
    sys.modules["actlab"] = None  # as if actlab were not installed
    sys.path.insert(0, sys.argv[1])
    out = {}
    for module_name in sys.argv[2:]:
        module = importlib.import_module(module_name)
        cls = [v for k, v in vars(module).items()
               if isinstance(v, type) and issubclass(v, torch.nn.Module)
               and v.__module__ == module_name][0]
        per_unit = "num_features" in cls.__init__.__code__.co_varnames
        act = cls(1) if per_unit else cls()
        x = torch.linspace(-5, 5, 401).reshape(-1, 1) if per_unit else torch.linspace(-5, 5, 401)
        x.requires_grad_(True)
        y = act(x)
        (slope,) = torch.autograd.grad(y.sum(), x)
        module.check()
        out[module_name] = [y.flatten().tolist(), slope.flatten().tolist()]
    print(json.dumps(out))
    """
)


def actlab_values(spec: str):
    """f and f' of the spec as actlab computes them, float32, at the initial values."""
    act = parse_activation_arg(spec)
    x = GRID.clone().requires_grad_(True)
    y = act.fn(x)
    (slope,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), slope


def test_exported_modules_run_without_actlab_and_match_it_in_float32(tmp_path):
    for module_name, spec in SPECS.items():
        export(spec, tmp_path / f"{module_name}.py")
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), *SPECS],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert child.returncode == 0, child.stderr
    *checks, last = child.stdout.strip().splitlines()
    assert len(checks) == len(SPECS) and all("match actlab's at 81 points" in c for c in checks)
    got = json.loads(last)
    for module_name, spec in SPECS.items():
        y, slope = actlab_values(spec)
        values, slopes = (torch.tensor(v) for v in got[module_name])
        torch.testing.assert_close(values, y, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(slopes, slope, rtol=1e-6, atol=1e-6)


def test_the_command_writes_the_file_and_refuses_a_builtin_in_one_line(tmp_path):
    runner = CliRunner()
    done = runner.invoke(app, ["export", "x - tanh(x)", "--name", "shrink", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    written = tmp_path / "shrink.py"
    assert f"module: {written}" in done.stdout and "class Shrink(nn.Module)" in written.read_text()
    assert "import actlab" not in written.read_text()
    refused = runner.invoke(app, ["export", "GELU", "--out", str(tmp_path)])
    assert refused.exit_code == 2
    (line,) = refused.stderr.strip().splitlines()
    assert "'GELU' is a built-in activation, not an expression" in line


def test_nn_activation_is_the_function_and_trains_its_parameters():
    x = torch.linspace(-3, 3, 61)
    fixed = actlab.nn.Activation("erf(x) - x")
    assert list(fixed.parameters()) == []
    torch.testing.assert_close(fixed(x), torch.erf(x) - x)
    beta = actlab.nn.Activation("x*sigmoid(b*x) | b=1.0")
    torch.testing.assert_close(beta(x), x * torch.sigmoid(x))
    optimizer = torch.optim.SGD(beta.parameters(), lr=0.1)
    (beta(x) - 2 * x * torch.sigmoid(2 * x)).pow(2).mean().backward()
    optimizer.step()
    assert beta.values["b"].item() > 1.0  # moved towards the target's b = 2
    per_unit = actlab.nn.Activation("where(x > 0, x, a*x) | a=0.25 per-unit", num_features=4)
    assert per_unit.values["a"].shape == (4,)
    with pytest.raises(UserError, match="give num_features"):
        actlab.nn.Activation("where(x > 0, x, a*x) | a=0.25 per-unit")
