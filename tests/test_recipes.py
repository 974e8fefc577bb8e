"""A run made with Python callables can be rebuilt in a new process: the manifest keeps each
callable's recipe (its source, or a module:attr path), or says why it cannot."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from actlab.activations import get_activation
from actlab.errors import UserError
from actlab.recipes import CHECK_GRID, rebuild, recipe, run_specs

SCALE = 3.0


def self_contained(x):
    return x * torch.sigmoid(2.0 * x)


def uses_a_global(x):
    return torch.tanh(SCALE * x)


def made_by(k):
    def inner(x):
        return torch.tanh(k * x)

    return inner


def values(fn):
    return fn(CHECK_GRID.clone())


def test_a_self_contained_function_is_kept_as_its_source_and_rebuilt_equal():
    made = recipe(get_activation(self_contained))
    assert made["kind"] == "source" and made["code"].startswith("def self_contained(x):")
    again = rebuild("self_contained", json.loads(json.dumps(made)))
    assert torch.equal(values(again), values(self_contained))
    assert again.formula == get_activation(self_contained).formula


def test_a_lambda_is_kept_as_its_own_text():
    made = recipe(get_activation(lambda x: x * torch.tanh(x)))
    assert made == {**made, "kind": "source", "code": "lambda x: x * torch.tanh(x)"}


def test_a_library_function_is_kept_as_its_import_path():
    made = recipe(get_activation(torch.sigmoid))
    assert made["kind"] == "import" and made["path"] == "torch:sigmoid"
    assert torch.equal(values(rebuild("sigmoid", made)), torch.sigmoid(CHECK_GRID))


@pytest.mark.parametrize(
    "fn, why",
    [
        (uses_a_global, "it uses 'SCALE', beyond torch, math, F and numpy"),
        (made_by(2.0), "it uses variables of the function that made it"),
    ],
)
def test_what_cannot_be_rebuilt_says_why_and_report_says_so_in_one_line(fn, why, monkeypatch):
    # As if written in a script or notebook: this test module itself is importable.
    monkeypatch.setattr("actlab.recipes.import_path", lambda fn: None)
    made = recipe(get_activation(fn, name="mine"))
    assert made["kind"] == "none" and made["why"] == why
    with pytest.raises(UserError) as caught:
        run_specs(["ReLU", "mine"], {"mine": made})
    message = str(caught.value)
    assert "\n" not in message and why in message and "'module:attr'" in message
    assert made["fix"] in message


def test_a_global_constant_is_named_in_the_fix_and_warned_of_at_the_start(monkeypatch):
    from actlab.recipes import recipes_for

    monkeypatch.setattr("actlab.recipes.import_path", lambda fn: None)
    act = get_activation(uses_a_global, name="mine")
    with pytest.warns(UserWarning, match="cannot be made again in a new process"):
        made = recipes_for({"mine": act}, {"mine": uses_a_global})
    assert made["mine"]["fix"].startswith("write the value of 'SCALE' into the function")


SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    import actlab

    def my_act(x):
        return x * torch.sigmoid(2.0 * x)

    actlab.run("quick", studies=["gradient_flow"], seeds=2, activations=["ReLU", my_act],
               out=sys.argv[1])
    """
)


@pytest.mark.slow  # two fresh processes: a whole run, then its report
def test_a_run_made_from_a_script_function_is_rebuilt_by_actlab_report(tmp_path):
    script = tmp_path / "experiment.py"
    script.write_text(SCRIPT)
    run_dir = tmp_path / "run"
    subprocess.run([sys.executable, str(script), str(run_dir)], check=True, cwd=tmp_path)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["activation_recipes"]["my_act"]["kind"] == "source"
    first = (run_dir / "report.md").read_bytes()
    (run_dir / "report.md").unlink()
    rebuilt = subprocess.run(
        [sys.executable, "-m", "actlab.cli", "report", str(run_dir)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (run_dir / "report.md").read_bytes() == first
