"""`actlab search` end to end: the quick preset through the console script, seeds and data
kept apart between screening and confirmation, kill and resume to the same leaderboard, the
Ray executor's leaderboard, and bad input as one line with exit status 2."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from actlab.activations import parse_activation_arg
from actlab.cli import app
from actlab.errors import UserError
from actlab.search.run import search
from actlab.search.space import Candidate
from actlab.store import PROGRESS

ACTLAB = Path(sys.executable).parent / "actlab"

# Small enough for seconds: 6 candidates and 2 known activations, two rungs, 2 finalists
# on 2 fresh seeds, on the MLP and the CNN; the transfer on 2 seeds with the quick preset's
# small studies.
TINY = """\
candidates = 6
known = ["Tanh", "Tanhshrink"]
rung_steps = [20, 40]
rung_seeds = [1, 2]
finalists = 2
confirm_seeds = 2
confirm_steps = 30
second = "cnn"
transfer_seeds = 2
transfer_steps = 20
transfer_preset = "quick"
executor = "local"
max_members = 3
"""


@pytest.fixture(scope="module")
def tiny_toml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("search-cfg") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def reference(tiny_toml, tmp_path_factory):
    """The tiny search uninterrupted, in this process."""
    out = tmp_path_factory.mktemp("search-ref") / "s"
    return search(config=tiny_toml, out=out, report=False)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """`actlab search --preset quick` through the command line's own entry point."""
    root = tmp_path_factory.mktemp("search-quick")
    start = time.perf_counter()
    result = CliRunner().invoke(app, ["search", "--preset", "quick", "--out", str(root / "s")])
    assert result.exit_code == 0, result.output
    return root / "s", result, time.perf_counter() - start


@pytest.mark.slow  # a whole search end to end
def test_the_quick_preset_writes_a_complete_search_directory(quick):
    path, proc, seconds = quick
    for name in (
        "search.json",
        "candidates.csv",
        "drops.csv",
        "rungs.csv",
        "leaderboard.csv",
        "finalists.txt",
        "report.md",
        "report.html",
        "figures/search_survival.png",
        "figures/search_shapes.png",
        "transfer.csv",
        "transfer/manifest.json",
    ):
        assert (path / name).exists(), name
    manifest = json.loads((path / "search.json").read_text())
    assert manifest["status"] == "complete" and manifest["finished"]
    assert manifest["funnel"]["entered"] == 24
    # Progress is said stage by stage on stderr.
    assert "rung 1 of 2: 24 candidates" in proc.stderr and "confirmation on the mlp" in proc.stderr
    assert "transfer: 3 activations x 3 fresh seeds on cnn, transformer" in proc.stderr
    print(f"quick search: {seconds:.1f} s")


@pytest.mark.slow  # a whole search end to end
def test_the_leaderboard_ranks_by_confirmation_and_tests_against_relu(quick):
    path, _, _ = quick
    board = pd.read_csv(path / "leaderboard.csv")
    for column in (
        "rank",
        "name",
        "expression",
        "screen_score",
        "confirm_mean",
        "confirm_low",
        "confirm_high",
        "p_vs_relu",
    ):
        assert column in board, column
    # The quick preset confirms on the proxy only (second = none): the CNN is a transfer task
    assert "cnn_mean" not in board
    assert "cnn" in set(pd.read_csv(path / "transfer.csv")["task"])
    assert list(board["rank"]) == list(range(1, len(board) + 1))
    assert board["confirm_mean"].is_monotonic_decreasing
    # The finalists, the controls, and (issue 29) each finalist's nearest built-in that is
    # not a control already.
    nearest = pd.read_csv(path / "nearest.csv")
    finalists = board[board["kind"] == "finalist"]
    assert sorted(nearest["finalist"]) == sorted(finalists[~finalists["known"]]["name"])
    extra = sorted(set(nearest["known"]) - {"ReLU", "GELU", "Swish"} - set(finalists["name"]))
    assert sorted(board["kind"]) == ["control"] * 3 + ["finalist"] * 2 + ["nearest"] * len(extra)
    assert sorted(board[board["kind"] == "nearest"]["name"]) == extra
    # The known activations raced through the rungs beside the candidates
    rungs = pd.read_csv(path / "rungs.csv")
    first = rungs[rungs["rung"] == rungs["rung"].min()]
    assert sorted(first[first["kind"] == "known"]["name"]) == sorted(
        ["Tanh", "ELU", "Mish", "Tanhshrink", "SELU"]
    )
    # The confirmation's numbers are recomputable from its run: mean over 3 seeds.
    results = pd.read_csv(path / "confirm" / "mlp" / "results.csv")
    final = results[(results["metric"] == "test_accuracy") & results["step"].isna()]
    relu = board.set_index("name").loc["ReLU"]
    assert math.isclose(
        final[final["activation"] == "ReLU"]["value"].mean(), relu["confirm_mean"], rel_tol=1e-5
    )
    assert math.isnan(relu["p_vs_relu"])
    assert board.loc[board["name"] != "ReLU", "p_vs_relu"].between(0, 1).all()


@pytest.mark.slow  # a whole search end to end
def test_finalists_are_the_last_rungs_best_and_accepted_as_activations(quick):
    path, _, _ = quick
    rungs = pd.read_csv(path / "rungs.csv")
    # 24 candidates and 5 known activations race: 29 -> ceil(29/3) = 10 -> the top 2
    for rung, kept in ((0, 10), (1, 2)):
        at = rungs[(rungs["rung"] == rung) & rungs["kind"].isin(["candidate", "known"])]
        went = at[at["went_on"] == 1]
        assert len(went) == kept
        assert went["score"].min() >= at[at["went_on"] == 0]["score"].max()
    lines = (path / "finalists.txt").read_text().splitlines()
    board = pd.read_csv(path / "leaderboard.csv")
    finalists = board[board["kind"] == "finalist"]
    assert lines == [
        r.name if r.known else f"{r.name}={r.expression}" for r in finalists.itertuples()
    ]
    assert set(finalists["name"]) == set(
        rungs[(rungs["rung"] == 1) & (rungs["went_on"] == 1)]["name"]
    )
    for line in lines:
        assert parse_activation_arg(line).name == line.split("=", 1)[0]


@pytest.mark.slow  # a whole search end to end
def test_the_report_shows_the_confirmation_the_selection_bias_and_the_funnel(quick):
    path, _, _ = quick
    text = (path / "report.md").read_text()
    board = pd.read_csv(path / "leaderboard.csv")
    assert "2 finalists from 24 candidates" in text
    assert "## Selection bias" in text and "## Confirmation" in text
    for name in board["name"]:
        assert name in text
    change = board["confirm_mean"] - board["screen_score"]
    bias = change[board["kind"] == "control"].mean() - change[board["kind"] == "finalist"].mean()
    assert (f"{100 * bias:.1f} points" in text) or (f"{100 * -bias:.1f} points better" in text)
    html = (path / "report.html").read_text()
    assert all(name in html for name in board["name"])  # the explorer draws each one
    # Issue 29: the finalists ranked against each other and every confirmed activation
    assert "## Finalists against each other" in text and "## Held against the known" in text
    assert "**MLP test accuracy** (Friedman p = " in text
    assert (path / "figures" / "search_critical_differences.png").is_file()
    # and carried to tasks the search never saw, against the nearest built-ins
    assert "## Does it transfer?" in text and (path / "transfer.csv").is_file()
    assert (
        "| activation | MNIST-1D CNN test accuracy | MNIST-1D transformer test accuracy |" in text
    )


def test_best_is_said_only_where_nemenyi_separates_it():
    from actlab.report.verdicts import verdict_table
    from actlab.search.report import ranking_lines
    from actlab.studies.base import PropertySpec

    def lines(levels: dict[str, float], seeds: int):
        rows = [
            {
                "property": "MLP test accuracy",
                "activation": a,
                "seed": s,
                "setting": "",
                "score": level + 0.001 * s,
                "outcome": "",
                "regime": False,
                "floored": False,
            }
            for a, level in levels.items()
            for s in range(seeds)
        ]
        spec = {"MLP test accuracy": PropertySpec("MLP test accuracy", "accuracy", "higher")}
        return ranking_lines(verdict_table(pd.DataFrame(rows), spec))

    clear = lines({"A": 0.9, "B": 0.5, "C": 0.4, "D": 0.3}, seeds=30)
    assert "A is best, separated from every other" in clear[0]
    close = lines({"A": 0.9, "B": 0.85, "C": 0.4, "D": 0.3}, seeds=4)
    assert "A is best" not in close[0] and close[0].endswith("no best.")


@pytest.mark.slow  # a whole search end to end
def test_actlab_report_rebuilds_a_search_report_identically(quick, tmp_path):
    import shutil

    path, _, _ = quick
    copy = shutil.copytree(path, tmp_path / "s")
    before = {p: (copy / p).read_bytes() for p in ("report.md", "report.html")}
    (copy / "report.md").unlink()
    result = CliRunner().invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    for name, content in before.items():
        assert (copy / name).read_bytes() == content, name


def init_seeds(run_dir: Path) -> set[int]:
    """Every initial-weight stream a run's networks drew from."""
    from actlab.studies.mnist1d.config import Config
    from actlab.studies.mnist1d.run import init_seed

    config = json.loads((run_dir / "manifest.json").read_text())["config"]
    study = config["study_config"]["mnist1d"]
    shape = Config(**study).shape
    return {
        init_seed(config["seed"], arch, shape(arch), s)
        for arch in study["architectures"]
        for s in range(config["seeds"])
    }


def test_confirmation_never_reuses_a_screening_seed_or_sees_the_test_set_in_screening(reference):
    path = reference.path
    screening = [path / "rungs" / f"rung-{i}" for i in range(2)]
    confirming = [path / "confirm" / "mlp", path / "confirm" / "cnn"]
    screened = set().union(*(init_seeds(p) for p in screening))
    confirmed = set().union(*(init_seeds(p) for p in confirming))
    assert screened and confirmed and not screened & confirmed
    transferred = init_seeds(path / "transfer")  # issue 29: fresh seeds for the transfer too
    assert transferred and not transferred & (screened | confirmed)
    for p in screening:
        study = json.loads((p / "manifest.json").read_text())["config"]["study_config"]["mnist1d"]
        assert study["holdout"] == 500  # scored on held-out training samples
    for p in confirming:
        study = json.loads((p / "manifest.json").read_text())["config"]["study_config"]["mnist1d"]
        assert study["holdout"] == 0 and study["steps"] == 30  # the test set, full budget


def kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the search ended before the kill point"
        assert time.monotonic() < deadline, "the kill point never came"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def committed(run_dir: Path) -> int:
    file = run_dir / PROGRESS
    return len(file.read_text().splitlines()) if file.exists() else 0


@pytest.mark.slow  # a whole search end to end
def test_a_killed_search_resumes_to_the_same_leaderboard(reference, tiny_toml, tmp_path):
    out = tmp_path / "s"
    env = {**os.environ, "ACTLAB_TEST_BATCH_DELAY": "0.15"}
    start = [str(ACTLAB), "search", "--config", str(tiny_toml), "--no-report"]
    # Killed in the middle of the second rung, then in the middle of the confirmation.
    for kill_point in (out / "rungs" / "rung-1", out / "confirm" / "cnn"):
        args = start + (["--resume", str(out)] if out.exists() else ["--out", str(out)])
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        kill_when(proc, lambda p=kill_point: committed(p) >= 1)
        assert json.loads((out / "search.json").read_text())["status"] == "running"
    search(resume=out, report=False)  # what `actlab search --resume` calls
    assert json.loads((out / "search.json").read_text())["status"] == "complete"
    for name in (
        "leaderboard.csv",
        "rungs.csv",
        "finalists.txt",
        "candidates.csv",
        "drops.csv",
        "nearest.csv",
        "transfer.csv",
    ):
        assert (out / name).read_bytes() == (reference.path / name).read_bytes(), name


def test_the_same_seed_gives_the_same_search_and_another_seed_another_sample(reference, tiny_toml):
    from actlab.search.config import search_config
    from actlab.search.select import select

    same = search_config(None, tiny_toml)
    other = search_config(None, tiny_toml, seed=1)
    first = select(same, same.controls).kept
    assert [c.name for c in first] == list(pd.read_csv(reference.path / "candidates.csv")["name"])
    assert [c.name for c in select(other, other.controls).kept] != [c.name for c in first]


# -- bad input ---------------------------------------------------------------------------------


def bad_space(tmp_path: Path, text: str) -> str:
    path = tmp_path / "space.txt"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "make_args, fragments",
    [
        (lambda t: ["--space", bad_space(t, "# nothing\n\n")], ("holds no candidates",)),
        (
            lambda t: ["--space", bad_space(t, "a=x*x\n\nb=sin(x\n")],
            ("space.txt, line 3",),
        ),
        (
            lambda t: ["--space", bad_space(t, "c=x*0 + 1\nexp(exp(exp(x)))\n")],
            ("no candidate of the space (2 expressions) survived",),
        ),
        (lambda t: ["--confirm-seeds", "1"], ("too small to confirm anything",)),
        (lambda t: ["--preset", "huge"], ("unknown search preset 'huge'", "available:")),
        (lambda t: ["--resume", str(t)], ("is not a search directory",)),
        (lambda t: ["--space", bad_space(t, "ReLU=x*x\n")], ("'ReLU', which is a control",)),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path, monkeypatch, make_args, fragments
):
    monkeypatch.chdir(tmp_path)
    args = make_args(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(app, ["search", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("actlab: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no runs/ made


def test_an_existing_directory_is_not_overwritten(reference):
    with pytest.raises(UserError, match="--resume"):
        search("quick", out=reference.path)


def test_learnable_constants_are_searched_as_parameters(tiny_toml, tmp_path):
    from actlab.search.space import learnable_constants

    assert learnable_constants("x*sigmoid(2*x)") == "x * sigmoid(c1 * x) | c1=2.0"
    assert learnable_constants("x**2 + 0.5*x") == "x ** 2 + c1 * x | c1=0.5"  # not exponents
    assert learnable_constants("log(abs(x) + 1e-3)") is None  # nor the eps guard
    space = tmp_path / "space.txt"
    space.write_text("a=x*sigmoid(2*x)\nb=tanh(0.5*x) + x\nc=max(x, 0.1*x)\nd=x*tanh(x)\n")
    result = search(
        config=tiny_toml,
        space=str(space),
        candidates=4,
        second="none",
        transfer_seeds=0,  # the learned values are the confirmation's; no transfer needed
        learnable_constants=True,
        out=tmp_path / "s",
        report=False,
    )
    entered = pd.read_csv(result.path / "candidates.csv")
    assert sorted(entered["name"]) == ["a-learn", "b-learn", "c-learn", "d"]
    rung = pd.read_csv(result.path / "rungs" / "rung-0" / "results.csv")
    learned = rung[rung["metric"] == "learned_c1"]
    assert set(learned["activation"]) == {"a-learn", "b-learn", "c-learn"}
    assert (
        learned["value"]
        != learned["activation"].map({"a-learn": 2.0, "b-learn": 0.5, "c-learn": 0.1})
    ).all()  # trained away from the start
    for line in (result.path / "finalists.txt").read_text().splitlines():
        act = parse_activation_arg(line)
        assert (act.learnable is not None) == act.name.endswith("-learn")
    # The report shows what each learnable finalist's networks learned (issue 29).
    from actlab.search.report import write_report

    text = write_report(result, result.leaderboard).read_text()
    learnable = [n for n in result.leaderboard["name"] if n.endswith("-learn")]
    assert learnable and "## What the learnable finalists learned" in text
    for name in learnable:
        assert f"**{name}**" in text
    assert "| MNIST-1D mlp | 1 |" in text  # its first layer on the proxy


def test_each_finalist_is_held_against_its_nearest_builtin_on_the_same_seeds(reference):
    """Issue 29: the nearest built-in of every finalist is confirmed with it, and the
    paired test of the two is on the same seeds."""
    from actlab.activations import BUILTINS

    nearest = pd.read_csv(reference.path / "nearest.csv")
    board = pd.read_csv(reference.path / "leaderboard.csv")
    finalists = board[board["kind"] == "finalist"]
    assert sorted(nearest["finalist"]) == sorted(finalists[~finalists["known"]]["name"])
    assert set(nearest["known"]) <= set(BUILTINS)
    confirmed = set(board["name"])
    assert set(nearest["known"]) <= confirmed  # nearest rows, controls or finalists alike
    extra = board[board["kind"] == "nearest"]
    assert extra["screen_score"].isna().all() and not extra["confirm_mean"].isna().any()
    assert board["known"].tolist() == board["name"].isin(BUILTINS).tolist()
    assert (nearest["n_seeds"] == board["n_seeds"].iloc[0]).all()


def test_family_members_are_placed_with_their_builtin_and_a_stranger_with_none():
    from actlab.search.config import search_config
    from actlab.search.nearest import SAME
    from actlab.search.run import nearest_fits

    family = [
        Candidate("t1", "2*tanh(0.5*x) + 0.1"),
        Candidate("t2", "tanh(1 - x)"),
        Candidate("s1", "x*sigmoid(1.7*x)"),
        Candidate("m1", "x*tanh(softplus(1.3*x))"),
        Candidate("u", "sin(3*x)*exp(-x*x)"),
    ]
    fits = nearest_fits(family, search_config("quick"))
    # A scaled, shifted Sigmoid is Tanh exactly (sigmoid(2x) = (tanh(x) + 1) / 2), and
    # QuickGELU a Swish of scaled input: either is the family's built-in.
    assert fits["t1"].known in {"Tanh", "Sigmoid"} and fits["t2"].known in {"Tanh", "Sigmoid"}
    assert fits["s1"].known in {"Swish", "QuickGELU"} and fits["m1"].known == "Mish"
    assert all(fits[n].error < SAME for n in ("t1", "t2", "s1", "m1"))
    assert fits["t1"].words().startswith(f"{fits['t1'].known} up to scale, sign or shift")
    assert fits["u"].error > 0.05 and fits["u"].words().startswith("no built-in within 5%")


# -- does it transfer (issue 29) -------------------------------------------------------------


def test_the_finalists_and_their_nearest_builtins_are_carried_to_unseen_tasks(reference):
    from actlab.search.transfer import tasks_of

    path = reference.path
    table = pd.read_csv(path / "transfer.csv")
    board = pd.read_csv(path / "leaderboard.csv")
    nearest = pd.read_csv(path / "nearest.csv")
    # the finalists, every new one's nearest built-in (a control or not) and ReLU
    relatives = set(pd.read_csv(path / "nearest.csv")["known"])
    expected = set(board[board["kind"] == "finalist"]["name"]) | relatives | {"ReLU"}
    tasks = tasks_of(reference.config)  # confirmed on the MLP and the CNN: not those
    assert [t.name for t in tasks] == ["transformer", "digits", "capacity", "stability"]
    assert list(dict.fromkeys(table["task"])) == [t.name for t in tasks]
    for task in tasks:
        here = table[table["task"] == task.name]
        assert set(here["activation"]) == expected, task.name
        assert (here["n_seeds"] == 2).all()
    # each new finalist is compared with the built-in nearest it, on every task
    relatives = dict(zip(nearest["finalist"], nearest["known"], strict=True))
    compared = table[table["relative"].notna()]
    assert set(compared["activation"]) == set(relatives)
    assert all(relatives[r.activation] == r.relative for r in compared.itertuples())
    assert compared["p"].notna().all() and len(compared) == len(relatives) * len(tasks)
    # recomputable from the transfer run: ReLU's digits accuracy is the mean over seeds
    results = pd.read_csv(path / "transfer" / "results.csv")
    digits = results[
        (results["study"] == "real_data")
        & (results["metric"] == "test_accuracy")
        & (results["activation"] == "ReLU")
    ]
    row = table[(table["task"] == "digits") & (table["activation"] == "ReLU")].iloc[0]
    assert math.isclose(digits["value"].mean(), row["mean"], rel_tol=1e-5)
    manifest = json.loads((path / "transfer" / "manifest.json").read_text())["config"]
    assert manifest["study_config"]["mnist1d"]["architectures"] == ["transformer"]
    assert manifest["study_config"]["real_data"]["datasets"] == ["digits"]


def test_the_transfer_test_favours_the_finalist_in_each_tasks_own_direction():
    """Capacity's score is a log10 MSE (lower is better): a finalist whose MSE is lower on
    every seed gets a positive difference; the accuracy tasks the other way round."""
    from actlab.search.transfer import transfer_table

    kinds = {"new": "finalist", "Tanh": "nearest", "ReLU": "control"}
    seeds = range(8)
    rows = []
    for s in seeds:
        for task, better, worse in (
            ("transformer", 0.8, 0.7),
            ("digits", 0.9, 0.95),
            ("capacity", -2.0, -1.0),
            ("stability", 4.0, 4.0),
        ):
            rows.append({"task": task, "activation": "new", "seed": s, "score": better})
            rows.append({"task": task, "activation": "Tanh", "seed": s, "score": worse})
            rows.append({"task": task, "activation": "ReLU", "seed": s, "score": 0.5})
    scores = pd.DataFrame(rows).assign(diverged=0, networks=1, of=float("nan"))
    table = transfer_table(scores, kinds, {"new": "Tanh"}).set_index(["task", "activation"])
    assert table.loc[("transformer", "new"), "diff"] == pytest.approx(0.1)
    assert table.loc[("digits", "new"), "diff"] == pytest.approx(-0.05)
    assert table.loc[("capacity", "new"), "diff"] == pytest.approx(1.0)  # lower MSE: better
    assert table.loc[("transformer", "new"), "p_holm"] < 0.05
    assert table.loc[("stability", "new"), "diff"] == 0
    assert table.loc[("transformer", "ReLU"), "kind"] == "control"
    assert math.isnan(table.loc[("transformer", "Tanh"), "diff"])  # a relative is not compared


def test_a_search_over_one_family_and_a_stranger_places_each_and_drops_its_symmetries(
    tiny_toml, tmp_path
):
    """Issue 29's done-when, end to end: members of the Tanh family and one unrelated
    function; the members' sign and reflection copies are dropped with those reasons, each
    member's nearest built-in is the family's, and the stranger has none within 5%."""
    space = tmp_path / "family.txt"
    space.write_text(
        "t_scaled=2*tanh(0.5*x) + 0.1\n"
        "t_shift=tanh(1 - x)\n"
        "t_neg=-tanh(1 - x)\n"  # t_shift's sign
        "t_mirror=tanh(1 + x)\n"  # t_shift's reflection (and t_neg's sign and reflection)
        "stranger=sin(3*x)*exp(-x*x)\n"
    )
    result = search(
        config=tiny_toml,
        space=str(space),
        candidates=5,
        known=[],
        rung_steps=[20],
        rung_seeds=[1],
        finalists=3,
        second="none",
        transfer_seeds=0,
        out=tmp_path / "s",
        report=False,
    )
    drops = pd.read_csv(result.path / "drops.csv").set_index("name")
    trio = {"t_shift", "t_neg", "t_mirror"}
    assert set(drops.index) < trio and len(drops) == 2  # whichever came first is kept
    symmetric = {
        "duplicate up to sign",
        "duplicate up to reflection",
        "duplicate up to sign and reflection",
    }
    assert set(drops["reason"]) <= symmetric
    kept = (trio - set(drops.index)).pop()
    assert all(
        detail.startswith(f"is -{kept}") or f"{kept} at -x" in detail for detail in drops["detail"]
    )
    assert "approximate" in drops["detail"].iloc[0]  # the MLP proxy has a residual connection
    nearest = pd.read_csv(result.path / "nearest.csv").set_index("finalist")
    assert set(nearest.index) == {"t_scaled", kept, "stranger"}
    for member in ("t_scaled", kept):
        # A scaled, shifted Sigmoid is Tanh exactly: either is the family's built-in.
        assert nearest.loc[member, "known"] in {"Tanh", "Sigmoid"}
        assert nearest.loc[member, "in_words"].startswith(
            f"{nearest.loc[member, 'known']} up to scale, sign or shift"
        )
    assert nearest.loc["stranger", "in_words"].startswith("no built-in within 5%")
    funnel = json.loads((result.path / "search.json").read_text())["funnel"]
    assert sum(funnel["dropped"].get(r, 0) for r in symmetric) == 2
