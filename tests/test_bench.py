"""`actlab bench`: a user's own model and data on the bench (issue 30): the run it writes,
paired initial weights and batches, the torch.func stack against the one-at-a-time loop,
bad input as one line with exit status 2, and a kill and resume to the same numbers."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from actlab.activations import get_activation
from actlab.bench import bench
from actlab.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CNN = f"{EXAMPLES}/digits_cnn.py:make_cnn"
MLP = f"{EXAMPLES}/replaced_mlp.py:make_mlp"
ACTLAB = Path(sys.executable).parent / "actlab"
TIMING = {"seconds_per_step", "seconds"}


# The shared bench: the digits CNN, three activations, 2 seeds, 40 steps.
BENCHED = dict(
    data="digits", activations=["ReLU", "GELU", "Tanhshrink"], seeds=2, steps=40, eval_every=20
)


@pytest.fixture(scope="module")
def benched(tmp_path_factory):
    return bench(CNN, executor="local", out=tmp_path_factory.mktemp("bench") / "run", **BENCHED)


def test_a_benched_model_writes_a_run_with_answers_rankings_and_curves(benched):
    path = benched.path
    for name in ("manifest.json", "results.csv", "verdicts.csv", "report.md", "report.html"):
        assert (path / name).is_file(), name
    assert (path / "figures" / "bench_curves.png").is_file()
    text = (path / "report.md").read_text()
    assert "## Answers" in text and "## Your model on your data" in text
    assert "· preset `bench` ·" in text  # not "custom"
    for name in ("ReLU", "GELU", "Tanhshrink"):
        assert f"| {name} | " in text
    results = benched.results
    final = results[(results["metric"] == "test_accuracy") & results["step"].isna()]
    assert sorted(final["activation"].value_counts().to_dict().items()) == [
        ("GELU", 2),
        ("ReLU", 2),
        ("Tanhshrink", 2),
    ]
    # 40 steps take ReLU and GELU well past chance; Tanhshrink (x^3/3 near 0) not yet
    learned = final[final["activation"].isin(["ReLU", "GELU"])]["value"]
    assert learned.between(0.5, 1.0).all()
    curves = results[(results["metric"] == "test_accuracy") & results["step"].notna()]
    assert sorted(set(curves["step"])) == [20, 40]
    stacked = results[results["metric"] == "stacked"]["value"]
    assert (stacked == 1).all()  # no buffers: each activation's seeds in one torch.func stack
    verdicts = pd.read_csv(path / "verdicts.csv")
    assert "your model's test accuracy" in set(verdicts["property"])
    # Units and gradients per site and module: 3 activation sites, 4 parameterised modules
    ours = results[results["step"].isna()]
    for metric, sites in (("zero_slope_rate_init", 3), ("saturated_rate", 3), ("grad_norm", 4)):
        per = ours[(ours["metric"] == metric) & ours["layer"].notna()]
        assert per.groupby(["activation", "seed"])["layer"].apply(sorted).map(len).eq(sites).all()
    assert "passed to the model as `act_layer`: 3 activation modules" in text
    assert "**Units and gradients** (descriptive" in text
    assert "| ReLU | " in text.split("Units and")[1]
    # 2 seeds: the paired tests cannot reach p < 0.05, and the report says so first
    assert "the paired tests against" in text and "cannot reach p < 0.05 whatever" in text


def test_dead_and_saturated_units_are_the_ones_whose_slope_is_flat_on_every_sample():
    """A hand-built site: of 4 units, one has a bias so negative that ReLU is 0 on every
    input (dead), one so positive it is linear; Tanh's unit at a bias of 6 is saturated
    but not dead; the stack's members give the same counts as the modules themselves."""
    from torch import nn

    from actlab.nn import Activation
    from actlab.studies.bench.run import InTurn, Stack
    from actlab.studies.bench.units import site_slopes, slope_rows

    def model(act: str, bias: list[float]):
        layer = nn.Linear(3, 4)
        with torch.no_grad():
            layer.weight.fill_(0.1)
            layer.bias.copy_(torch.tensor(bias))
        return nn.Sequential(layer, Activation(act), nn.Linear(4, 2))

    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0)).clamp(-2, 2)
    relu = model("ReLU", [-100.0, 0.0, 100.0, -100.0])
    assert site_slopes(relu, x) == [(0.5, 0.5, 4)]  # units 0 and 3 of 4
    tanh = model("Tanh", [6.0, 0.0, 0.0, 0.0])
    assert site_slopes(tanh, x) == [(0.0, 0.25, 4)]  # slope 1 - tanh(6 +- 0.6)^2 < 1e-4, not 0
    members = [model("ReLU", [-100.0, 0, 0, 0]), model("ReLU", [0.0, 0, 0, 0])]
    stacked, in_turn = Stack(members).slopes(x), InTurn(members).slopes(x)
    assert stacked == in_turn == [[(0.25, 0.25, 4)], [(0.0, 0.0, 4)]]
    # Over the model, each site counts by its units: 0 of 16 and 16 of 64 dead is 20%
    overall = [r for r in slope_rows([(0.0, 0.0, 16), (0.25, 0.5, 64)]) if "layer" not in r]
    assert {r["metric"]: r["value"] for r in overall} == {
        "zero_slope_rate": 0.2,
        "saturated_rate": 0.4,
    }


def test_every_activation_of_a_seed_starts_from_the_same_weights():
    from actlab.studies.bench.model import build_model, load_object

    factory = load_object(CNN, "model")
    relu, _ = build_model(factory, get_activation("ReLU"), 7, [])
    gelu, _ = build_model(factory, get_activation("GELU"), 7, [])
    other, _ = build_model(factory, get_activation("ReLU"), 8, [])
    for (name, a), (_, b), (_, c) in zip(
        relu.named_parameters(), gelu.named_parameters(), other.named_parameters(), strict=True
    ):
        assert torch.equal(a, b), name
        assert not torch.equal(a, c), name
    mlp, replaced = build_model(load_object(MLP, "model"), get_activation("GELU"), 0, [])
    assert replaced == 2 and "GELU" in repr(mlp) and "ReLU()" not in repr(mlp)


def small_config(**changes):
    from actlab.studies.bench.config import Config

    return Config(model=CNN, steps=25, batch=32, eval_every=25, clip=0.5, **changes)


def trained(members_class, seeds, cfg):
    from actlab.studies.bench.data import load_data
    from actlab.studies.bench.model import build_model, load_object
    from actlab.studies.bench.run import train

    factory = load_object(CNN, "model")
    act = get_activation("x*sigmoid(b*x) | b=1.0")  # a learnable one: its b is stacked too
    models = [build_model(factory, act, s, [])[0] for s in seeds]
    orders = [torch.Generator().manual_seed(100 + s) for s in seeds]
    return train(members_class(models), load_data("digits"), orders, cfg, torch.device("cpu"))


def test_the_torch_func_stack_and_the_one_at_a_time_loop_agree():
    from actlab.studies.bench.run import InTurn, Stack

    cfg = small_config()
    stacked = trained(Stack, [1, 2, 3], cfg)
    in_turn = trained(InTurn, [1, 2, 3], cfg)
    for a, b in zip(stacked, in_turn, strict=True):
        values_a = {(r["metric"], r.get("step"), r.get("layer")): r["value"] for r in a}
        values_b = {(r["metric"], r.get("step"), r.get("layer")): r["value"] for r in b}
        assert values_a.keys() == values_b.keys()
        for key, value in values_a.items():
            if key[0] in TIMING | {"stacked"}:
                continue
            assert value == pytest.approx(values_b[key], rel=1e-4, abs=1e-5), key
    assert {r["value"] for m in stacked for r in m if r["metric"] == "stacked"} == {1.0}


def test_a_model_with_batch_norm_trains_one_member_at_a_time(tmp_path):
    model_file = tmp_path / "bn.py"
    model_file.write_text(
        "from torch import nn\n"
        "def make():  # no act_layer: its ReLU is replaced\n"
        "    return nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),"
        " nn.Linear(32, 10))\n"
    )
    run = bench(
        f"{model_file}:make",
        activations=["ReLU", "GELU"],
        seeds=2,
        steps=10,
        eval_every=10,
        executor="local",
        out=tmp_path / "run",
        report=False,
    )
    stacked = run.results[run.results["metric"] == "stacked"]["value"]
    assert len(stacked) == 4 and (stacked == 0).all()
    placed = run.results[run.results["metric"].isin(["sites", "replaced"])]
    assert len(placed) == 8 and (placed["value"] == 1).all()  # one ReLU replaced, per member


def test_a_user_train_function_that_returns_nan_is_a_diverged_member(tmp_path):
    train_file = tmp_path / "mine.py"
    train_file.write_text(
        "import math\n"
        "def fit(model, data, seed, device):\n"
        "    return {'test_accuracy': math.nan if seed == 0 else 0.5, 'test_loss': 1.0}\n"
    )
    run = bench(
        CNN,
        activations=["ReLU"],
        seeds=2,
        train=f"{train_file}:fit",
        executor="local",
        out=tmp_path / "run",
    )
    rows = run.results[run.results["step"].isna()]
    diverged = rows[rows["metric"] == "diverged"].set_index("seed")["value"]
    assert diverged.to_dict() == {0: 1.0, 1: 0.0}
    accuracy = rows[rows["metric"] == "test_accuracy"].set_index("seed")["value"]
    assert math.isnan(accuracy[0]) and accuracy[1] == 0.5
    assert "| 1 of 2 |" in (run.path / "report.md").read_text()  # the diverged column


# -- bad input -------------------------------------------------------------------------------


def model_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "m.py"
    path.write_text("from torch import nn\n" + body)
    return f"{path}:make"


BAD = {
    "module not found": (lambda t: "no_such_module_here:make", "no module"),
    "file not found": (lambda t: f"{t}/missing.py:make", "does not exist"),
    "attribute not found": (lambda t: f"{EXAMPLES}/digits_cnn.py:nothing", "has no 'nothing'"),
    "nothing to replace": (
        lambda t: model_file(t, "def make():\n    return nn.Linear(64, 10)\n"),
        "to replace",
    ),
    "shapes depend on the activation": (
        lambda t: model_file(
            t,
            "def make(act_layer=nn.ReLU):\n"
            "    w = 32 if 'GELU' in act_layer.__name__ else 16\n"
            "    return nn.Sequential(nn.Linear(64, w), act_layer(), nn.Linear(w, 10))\n",
        ),
        "other parameter shapes",
    ),
    "a factory that fails": (
        lambda t: model_file(t, "def make(act_layer=nn.ReLU):\n    raise ValueError('boom')\n"),
        "failed to build: ValueError: boom",
    ),
    "not a factory": (lambda t: model_file(t, "make = 3\n"), "not a factory"),
    "inputs that do not fit": (
        lambda t: model_file(t, "def make(act_layer=nn.ReLU):\n    return nn.Linear(10, 10)\n"),
        "cannot take the data's inputs",
    ),
    "outputs that do not fit": (
        lambda t: model_file(
            t,
            "def make(act_layer=nn.ReLU):\n"
            "    return nn.Sequential(nn.Linear(64, 8), act_layer(), nn.Linear(8, 5))\n",
        ),
        "gives outputs of shape (5,)",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path):
    make, fragment = BAD[case]
    out = tmp_path / "out"
    # GELU last: a model whose shapes change with it is caught past the first two
    args = ["bench", make(tmp_path), "--activations", "ReLU,Tanh,GELU", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()  # that line only, nothing said before it
    assert len(lines) == 1 and lines[0].startswith("actlab: error"), result.stderr
    assert fragment in lines[0], result.stderr
    assert not out.exists()


def test_unknown_builtin_data_names_the_nearest(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["bench", CNN, "--data", "digitz", "--out", str(out)])
    assert result.exit_code == 2
    assert "unknown data 'digitz' (did you mean 'digits'?)" in result.stderr
    assert not out.exists()


# -- kill and resume -------------------------------------------------------------------------


def final_values(path: Path) -> pd.DataFrame:
    results = pd.read_csv(path / "results.csv")
    kept = results[~results["metric"].isin(TIMING)]
    order = ["activation", "seed", "metric", "layer", "step"]
    return kept.sort_values(order).reset_index(drop=True)


@pytest.mark.slow  # a process pool's start-up
def test_the_process_pool_gives_the_local_numbers(benched, tmp_path):
    pooled = bench(
        CNN, executor="process", workers=2, out=tmp_path / "run", report=False, **BENCHED
    )
    pd.testing.assert_frame_equal(final_values(pooled.path), final_values(benched.path))


@pytest.mark.slow  # two bench processes, one killed
def test_a_killed_bench_resumes_to_the_same_numbers(benched, tmp_path):
    out = tmp_path / "run"
    args = [
        str(ACTLAB),
        "bench",
        CNN,
        "--activations",
        "ReLU,GELU,Tanhshrink",
        "--seeds",
        "2",
        "--steps",
        "40",
        "--eval-every",
        "20",
        "--executor",
        "local",
    ]
    env = {**os.environ, "ACTLAB_TEST_BATCH_DELAY": "1.0"}
    proc = subprocess.Popen([*args, "--out", str(out)], env=env, stderr=subprocess.PIPE)
    progress = out / "progress.jsonl"
    deadline = time.monotonic() + 120
    while not (progress.is_file() and progress.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    assert progress.read_text().count("\n") < 3  # killed before the last batch
    subprocess.run([str(ACTLAB), "bench", "--resume", str(out)], check=True, capture_output=True)
    pd.testing.assert_frame_equal(final_values(out), final_values(benched.path))


# -- by hand ---------------------------------------------------------------------------------


def readme_snippet() -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index("```python\nimport torch\nimport torch.nn.functional as F")
    return text[start + len("```python\n") : text.index("```", start + 10)]


def test_the_readmes_snippet_trains_the_same_member_as_the_bench(benched, tmp_path, capsys):
    """Issue 30: one (activation, seed) network by hand in plain PyTorch gives the bench's
    numbers for that member (GELU, seed 1; the fixture's 40 steps)."""
    code = readme_snippet()
    assert code.count("\n") <= 21 and "range(500)" in code  # twenty lines, by hand
    sys.path.insert(0, str(EXAMPLES.parent))
    try:
        exec(compile(code.replace("range(500)", "range(40)"), "README.md", "exec"), {})
    finally:
        sys.path.remove(str(EXAMPLES.parent))
    by_hand = float(capsys.readouterr().out.strip().splitlines()[-1])
    results = benched.results
    row = results[
        (results["metric"] == "test_loss")
        & results["step"].isna()
        & (results["activation"] == "GELU")
        & (results["seed"] == 1)
    ]
    assert by_hand == pytest.approx(float(row["value"].iloc[0]), rel=1e-4)


def test_a_timm_model_takes_each_activation_as_its_act_layer(tmp_path):
    """Issue 30: a model built by timm works as it is (timm is optional: without it this
    test skips and says so)."""
    pytest.importorskip("timm", reason="timm is not installed (an optional example)")
    run = bench(
        f"{EXAMPLES}/timm_resnet.py:make_resnet",
        activations=["ReLU", "GELU"],
        seeds=2,
        steps=5,
        eval_every=5,
        executor="local",
        out=tmp_path / "run",
        report=False,
    )
    final = run.results[(run.results["metric"] == "test_loss") & run.results["step"].isna()]
    assert len(final) == 4 and final["value"].notna().all()
