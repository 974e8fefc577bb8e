"""What changed between two runs: `actlab diff RUN_A RUN_B` and `actlab.diff(a, b)`.

Five parts, in this order, each from the stored files alone (no training):

1. the settings that differ between the two configs (`config.config_differences`, the
   same list a refused `--resume` gives), and the code or versions that made them;
2. the activations only in A or only in B;
3. the answers that changed, per property: the activations recommended and to avoid
   (`report.summary.advice`, the same advice as the report's Answers) and the best group;
4. per property x activation: a mean rank or mean score that moved beyond a tolerance,
   a group (best / middle / worst / not separated / not ranked) that changed, and the
   settings where it alone failed;
5. the claims whose outcome (supported, contradicted, not separated, untested) changed.

The comparisons are small pure functions over DataFrames and dicts; `diff` reads the two
run directories and joins them into a `Diff`, whose `text()` is what the command prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from actlab.callable_module import callable_as

RANK_TOL = 0.25  # a mean rank that moved by more than this is shown
SCORE_TOL = 0.05  # a mean score that moved by more than this fraction of A's is shown


@dataclass
class Answer:
    """One property's answer: what the report recommends and says to avoid for its
    situation ("" when the property answers none) and its best group."""

    situation: str
    recommended: list[str]
    avoid: list[str]
    best: list[str]


@dataclass
class Diff:
    """The differences between run A and run B, as lines per part; `text()` prints them."""

    a: str
    b: str
    header: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)
    rank_tol: float = RANK_TOL
    score_tol: float = SCORE_TOL

    @property
    def same(self) -> bool:
        return not (
            self.settings
            or self.only_a
            or self.only_b
            or self.answers
            or self.verdicts
            or self.claims
        )

    def text(self) -> str:
        lines = list(self.header)
        if self.same:
            return "\n".join([*lines, "no differences"])
        lines += section("Settings that differ", self.settings, "none")
        lines.append("")
        if self.only_a or self.only_b:
            lines.append("Activations:")
            lines += [f"  only in A: {', '.join(self.only_a) or 'none'}"]
            lines += [f"  only in B: {', '.join(self.only_b) or 'none'}"]
        else:
            lines.append("Activations: the same in both")
        lines += section("Answers that changed", self.answers, "none")
        tol = f"mean rank by more than {self.rank_tol:g}, mean score by more than " + (
            f"{self.score_tol * 100:g}%; or group, or failing alone"
        )
        lines += section(f"Verdicts that changed ({tol})", self.verdicts, "none")
        lines += section("Claims whose outcome changed", self.claims, "none")
        return "\n".join(lines)

    __str__ = text


def section(title: str, items: list[str], empty: str) -> list[str]:
    if not items:
        return ["", f"{title}: {empty}"]
    return ["", f"{title}:", *(f"  {item}" for item in items)]


# -- 1. settings -------------------------------------------------------------------------------
def settings_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The settings that differ between two configs' hashed dicts, worded for A and B:
    ['seeds: 2 in A, 3 in B', '[sparsity] width: 32 in A, 16 in B']."""
    from actlab.config import config_differences

    out = []
    for line in config_differences(before, after):  # "key: old in the run, new here"
        head, sep, tail = line.rpartition(" in the run, ")
        if sep and tail.endswith(" here"):
            line = f"{head} in A, {tail[: -len(' here')]} in B"
        out.append(line)
    return out


def provenance_changes(manifest_a: dict[str, Any], manifest_b: dict[str, Any]) -> list[str]:
    """The code and versions that differ: git commit (and uncommitted changes), actlab,
    torch and numpy."""

    def commit(m: dict[str, Any]) -> str:
        c = m.get("git_commit")
        return (
            f"{str(c)[:7]}{' with uncommitted changes' if m.get('git_dirty') else ''}" if c else ""
        )

    def env(m: dict[str, Any], key: str) -> str:
        e = m.get("environment")
        return str(e.get(key, "")) if isinstance(e, dict) else ""

    pairs = [("git commit", commit(manifest_a), commit(manifest_b))]
    pairs += [(k, env(manifest_a, k), env(manifest_b, k)) for k in ("actlab", "torch", "numpy")]
    return [
        f"{what}: {a or 'not recorded'} in A, {b or 'not recorded'} in B"
        for what, a, b in pairs
        if a != b
    ]


# -- 2. activations ----------------------------------------------------------------------------
def activation_changes(
    verdicts_a: pd.DataFrame, verdicts_b: pd.DataFrame
) -> tuple[list[str], list[str]]:
    """(only in A, only in B), each in its run's order."""
    a = list(dict.fromkeys(verdicts_a["activation"]))
    b = list(dict.fromkeys(verdicts_b["activation"]))
    return [x for x in a if x not in b], [x for x in b if x not in a]


# -- 3. answers --------------------------------------------------------------------------------
def answers_of(verdicts: pd.DataFrame, specs: dict[str, Any]) -> dict[str, Answer]:
    """Per property (in the table's order): the recommendation of its situation, as the
    report's Answers give it, and its best group. A property without a spec (measured by a
    study this version does not know) gets its best group alone."""
    from actlab.report.summary import advice, group, of_property

    verdicts = tidy_verdicts(verdicts)
    known = verdicts[verdicts["property"].isin(specs)]
    advised = {a.property: a for a in advice(known, specs)} if not known.empty else {}
    out = {}
    for prop in dict.fromkeys(verdicts["property"]):
        best = group(of_property(verdicts, prop), "best")
        a = advised.get(prop)
        if a is None:
            out[prop] = Answer("", [], [], best)
        elif a.untested_or_flat:
            out[prop] = Answer(a.situation, [], [], best)
        else:
            out[prop] = Answer(a.situation, list(a.recommended), list(a.avoid), best)
    return out


def answer_changes(answers_a: dict[str, Answer], answers_b: dict[str, Answer]) -> list[str]:
    """One entry per property whose recommended set, avoid set or best group changed
    (properties measured in one run only are left to parts 1 and 4)."""
    out = []
    for prop in answers_a:
        if prop not in answers_b:
            continue
        a, b = answers_a[prop], answers_b[prop]
        changed = [
            f"{what}: {listed(x)} in A, {listed(y)} in B"
            for what, x, y in (
                ("recommended", a.recommended, b.recommended),
                ("avoid", a.avoid, b.avoid),
                ("best group", a.best, b.best),
            )
            if sorted(x) != sorted(y)
        ]
        if changed:
            situation = a.situation or b.situation
            out.append(f"for {situation} (by {prop}):" if situation else f"{prop}:")
            out += [f"  {line}" for line in changed]
    return out


def listed(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


# -- 4. verdicts -------------------------------------------------------------------------------
STRING_COLUMNS = ("group", "regime", "outcomes", "all_failed", "failed_where_others_did_not")


def tidy_verdicts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """verdicts.csv as read back: empty text cells are "" again, not NaN."""
    v = verdicts.copy()
    for col in STRING_COLUMNS:
        if col in v:
            v[col] = v[col].astype(object).where(v[col].notna(), "").astype(str)
    return v


def number(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def moved(x: float, y: float, tol: float, relative: bool) -> bool:
    """Whether x -> y is a change beyond tol (NaN to a number is one; NaN to NaN is not)."""
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) != math.isnan(y)
    if x == y:
        return False
    if math.isinf(x) or math.isinf(y):
        return True
    scale = abs(x) if relative and x != 0 else 1.0
    return abs(y - x) > tol * scale


def shown(x: float, missing: str = "none") -> str:
    return missing if math.isnan(x) else f"{x:.3g}"


def verdict_changes(
    verdicts_a: pd.DataFrame,
    verdicts_b: pd.DataFrame,
    rank_tol: float = RANK_TOL,
    score_tol: float = SCORE_TOL,
    ranks: bool = True,
) -> list[str]:
    """Per property x activation in both runs, what moved: the mean rank (by more than
    rank_tol), the mean score (by more than score_tol of A's), the group, and the settings
    at which it alone failed. Properties in A's order, then activations in A's order.
    `ranks` False (the runs rank different activations): ranks and groups are left out,
    since a rank among other activations is another quantity."""
    a, b = tidy_verdicts(verdicts_a), tidy_verdicts(verdicts_b)
    rows_b = {(r["property"], r["activation"]): r for r in b.to_dict("records")}
    out: list[str] = []
    current = None
    for ra in a.to_dict("records"):
        rb = rows_b.get((ra["property"], ra["activation"]))
        if rb is None:
            continue
        parts = []
        ka, kb = number(ra["mean_rank"]), number(rb["mean_rank"])
        if ranks and moved(ka, kb, rank_tol, relative=False):
            parts.append(f"mean rank {shown(ka, 'not ranked')} -> {shown(kb, 'not ranked')}")
        ma, mb = number(ra["mean"]), number(rb["mean"])
        if moved(ma, mb, score_tol, relative=True):
            change = ""
            if math.isfinite(ma) and math.isfinite(mb) and ma != 0:
                worse = (mb < ma) == (ra.get("better") == "higher")
                change = f" ({(mb - ma) / abs(ma):+.0%}, {'worse' if worse else 'better'})"
            parts.append(f"mean {shown(ma)} -> {shown(mb)}{change}")
        if ranks and ra["group"] != rb["group"]:
            parts.append(f"group {ra['group'] or 'none'} -> {rb['group'] or 'none'}")
        fa = ra.get("failed_where_others_did_not", "")
        fb = rb.get("failed_where_others_did_not", "")
        if fa != fb:
            parts.append(f"failed where others did not: {fa or 'nowhere'} -> {fb or 'nowhere'}")
        if parts:
            if ra["property"] != current:
                current = ra["property"]
                better = ra.get("better", "")
                out.append(f"{current}{f' ({better} is better)' if better else ''}:")
            out.append(f"  {ra['activation']}: " + "; ".join(parts))
    return out


# -- 5. claims ---------------------------------------------------------------------------------
def claim_changes(claims_a: pd.DataFrame, claims_b: pd.DataFrame) -> list[str]:
    """The claims (by their text) whose verdict changed, and those judged in one run only."""
    va = dict(zip(claims_a["claim"], claims_a["verdict"], strict=True))
    vb = dict(zip(claims_b["claim"], claims_b["verdict"], strict=True))
    out = [f"{c} {va[c]} in A, {vb[c]} in B" for c in va if c in vb and va[c] != vb[c]]
    out += [f"{c} judged in A only ({va[c]})" for c in va if c not in vb]
    out += [f"{c} judged in B only ({vb[c]})" for c in vb if c not in va]
    return out


# -- reading two runs --------------------------------------------------------------------------
@dataclass
class RunTables:
    path: Path
    manifest: dict[str, Any]
    config: dict[str, Any]  # the hashed settings
    verdicts: pd.DataFrame
    claims: pd.DataFrame
    specs: dict[str, Any]


def hashed_config(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The settings that decide a run's numbers; a config made by another version is
    compared as stored."""
    from actlab.config import NOT_HASHED, build_config
    from actlab.errors import UserError

    try:
        return build_config(manifest["config"], source=f"run '{path}'").hashed_dict()
    except UserError:
        raw = manifest["config"] if isinstance(manifest["config"], dict) else {}
        return {k: v for k, v in raw.items() if k not in NOT_HASHED}


def study_specs(studies: list[str]) -> dict[str, Any]:
    """Property name -> PropertySpec of the given studies (unknown ones skipped)."""
    from actlab.errors import UserError
    from actlab.studies import get_study

    out: dict[str, Any] = {}
    for name in studies:
        try:
            out.update({spec.name: spec for spec in get_study(name).property_specs})
        except UserError:
            continue
    return out


def computed_tables(run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(verdicts, claims) computed from the run's results, in memory (nothing is written)."""
    from actlab.activations import resolve_activations
    from actlab.report.claims import CLAIM_COLUMNS, judge
    from actlab.report.parts import PartBuilder
    from actlab.report.verdicts import verdicts_frame

    config = run.config
    _, activations = resolve_activations(config.activations)
    parts = PartBuilder(config, activations, None).summaries(run.results)
    claims = judge([claim for part in parts.values() for claim in part.claims])
    rows = [row for part in parts.values() for row in part.verdict_rows]  # the run's order
    return verdicts_frame(rows), pd.DataFrame(claims, columns=list(CLAIM_COLUMNS))


def read_tables(run_dir: str | Path) -> RunTables:
    """A run's manifest, settings, verdicts and claims: verdicts.csv and claims.csv, or,
    where one is missing (a run made with --no-report has no claims.csv), computed from
    its results. One clear UserError for anything that is not a run."""
    from actlab.errors import UserError
    from actlab.runner import load

    path = Path(getattr(run_dir, "path", run_dir))
    if (path / "search.json").is_file():
        raise UserError(
            f"'{path}' is a search directory; diff compares two run directories "
            "(a search's leaderboard.csv holds its numbers)"
        )
    run = load(path)
    manifest = run.manifest
    files = {name: path / f"{name}.csv" for name in ("verdicts", "claims")}
    tables = {name: pd.read_csv(f) for name, f in files.items() if f.is_file()}
    if len(tables) < len(files):
        try:
            computed = dict(zip(files, computed_tables(run), strict=True))
        except UserError as e:
            raise UserError(
                f"run '{path}' has no {' or '.join(f.name for n, f in files.items() if n not in tables)} "
                f"and they cannot be computed here ({e}); rebuild them with: actlab report {path}"
            ) from None
        tables = {**computed, **tables}
    config = hashed_config(path, manifest)
    studies = config.get("studies") or manifest["config"].get("studies") or []
    return RunTables(
        path,
        manifest,
        config,
        tidy_verdicts(tables["verdicts"]),
        tables["claims"],
        study_specs(list(studies)),
    )


def described(label: str, t: RunTables) -> str:
    """'A: runs/quick-x (quick, 2 seeds, 8 activations, commit f87e198)'."""
    raw = t.manifest.get("config") or {}
    bits = [str(raw.get("preset") or "custom config")]
    if "seeds" in t.config:
        bits.append(f"{t.config['seeds']} seed{'s' if t.config['seeds'] != 1 else ''}")
    bits.append(f"{t.verdicts['activation'].nunique()} activations")
    if t.manifest.get("git_commit"):
        bits.append(f"commit {str(t.manifest['git_commit'])[:7]}")
    status = t.manifest.get("status")
    if status and status != "complete":
        bits.append(f"status: {status}")
    return f"{label}: {t.path} ({', '.join(bits)})"


def compare(
    a: RunTables, b: RunTables, rank_tol: float = RANK_TOL, score_tol: float = SCORE_TOL
) -> Diff:
    only_a, only_b = activation_changes(a.verdicts, b.verdicts)
    specs = {**b.specs, **a.specs}
    same_field = not (only_a or only_b)
    verdicts = verdict_changes(a.verdicts, b.verdicts, rank_tol, score_tol, ranks=same_field)
    if verdicts and not same_field:
        verdicts.insert(
            0, "(means only: ranks and groups are not compared, A and B rank other activations)"
        )
    props_a, props_b = set(a.verdicts["property"]), set(b.verdicts["property"])
    verdicts += [
        f"{p}: measured in A only"
        for p in dict.fromkeys(a.verdicts["property"])
        if p not in props_b
    ]
    verdicts += [
        f"{p}: measured in B only"
        for p in dict.fromkeys(b.verdicts["property"])
        if p not in props_a
    ]
    return Diff(
        a=str(a.path),
        b=str(b.path),
        header=[described("A", a), described("B", b)],
        settings=settings_changes(a.config, b.config) + provenance_changes(a.manifest, b.manifest),
        only_a=only_a,
        only_b=only_b,
        answers=answer_changes(answers_of(a.verdicts, specs), answers_of(b.verdicts, specs)),
        verdicts=verdicts,
        claims=claim_changes(a.claims, b.claims),
        rank_tol=rank_tol,
        score_tol=score_tol,
    )


def diff(
    a: str | Path | Any,
    b: str | Path | Any,
    *,
    rank_tol: float = RANK_TOL,
    score_tol: float = SCORE_TOL,
) -> Diff:
    """What changed from run A to run B (directories or `Run`s): differing settings,
    activations in one run only, changed answers (recommended, avoid, best group), mean
    ranks that moved by more than `rank_tol` and mean scores by more than `score_tol` (a
    fraction of A's), changed groups, and claims whose outcome changed. Nothing is
    trained or written; `print(actlab.diff(a, b))` shows it as `actlab diff` does.

    >>> d = actlab.diff("runs/quick-a", "runs/quick-b")
    >>> d.same, d.answers
    """
    return compare(read_tables(a), read_tables(b), rank_tol, score_tol)


callable_as(__name__, "actlab.diff:diff")  # `actlab.diff(a, b)` once the module is imported
