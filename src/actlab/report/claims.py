"""The tutorial's claims, tested: every Claim the studies make (studies/base.py), judged
together. Each claim is one paired sign-flip test over seeds; the p-values are corrected
over all the claims of the run (Holm), and only then is a claim called supported or
contradicted. A claim that the run's seeds cannot decide whatever the data says so.

The verdicts, one row per claim, are also written to `claims.csv`, so that a reader can
recompute every one from `results.csv`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from actlab.stats import (
    SIGNIFICANCE,
    family_reach,
    p_text,
    smallest_adjusted_p,
    smallest_p,
    with_holm,
)

CLAIM_COLUMNS = (
    "claim",
    "measured",
    "conditions",
    "mean_difference",
    "ci_low",
    "ci_high",
    "n_seeds",
    "p",
    "p_holm",
    "verdict",
)


def judge(claims: list) -> list[dict[str, Any]]:
    """One row per claim (CLAIM_COLUMNS), Holm-adjusted over the claims that could be
    tested. Verdict: "supported" or "contradicted" (adjusted p < 0.05, by the direction of
    the difference), "not separated" (tested, not significant), "untested" (fewer than two
    paired seeds)."""
    tested = [c for c in claims if c.test.tested]
    adjusted = dict(zip(map(id, tested), with_holm([c.test for c in tested]), strict=True))
    rows = []
    for c in claims:
        t = adjusted.get(id(c), c.test)
        if not t.tested:
            verdict = "untested"
        elif not t.significant:
            verdict = "not separated"
        else:
            verdict = "supported" if math.copysign(1, t.mean_diff) == c.supports else "contradicted"
        rows.append(
            {
                "claim": c.belief,
                "measured": c.measured,
                "conditions": c.conditions,
                "mean_difference": t.mean_diff,
                "ci_low": t.ci_low,
                "ci_high": t.ci_high,
                "n_seeds": t.n,
                "p": t.p_value,
                "p_holm": t.p_adjusted,
                "verdict": verdict,
            }
        )
    return rows


def claims_section(rows: list[dict[str, Any]]) -> str:
    """The report's table: what the tutorial claimed, what this run finds."""
    if not rows:
        return ""
    n = max((r["n_seeds"] for r in rows), default=0)
    m = sum(1 for r in rows if r["verdict"] != "untested")
    lines = [
        "The original tutorial wrote these findings before it ran anything. Each is tested "
        "here by one paired sign-flip test over seeds between two groups of activations "
        "(within a seed both groups start from the same random numbers), and "
        + (
            f"the {m} p-values are corrected together (Holm)"
            if m != 1
            else "its p-value is the family's only one"
        )
        + " before a claim is called supported or "
        "contradicted. Supported and contradicted hold only under the conditions given.",
        "",
    ]
    reach = family_reach(n, m, "these claims") if m else None
    if reach:
        lines += [f"*{reach}*", ""]
    elif m:
        lines += [
            f"With {n} seeds the smallest p one claim can reach is {smallest_p(n):.2g} (every "
            f"seed's difference of one sign), {smallest_adjusted_p(n, m):.2g} after Holm over "
            f"the {m} claims: a claim at that floor is as decided as these seeds allow.",
            "",
        ]
    lines += [
        "| what the tutorial claimed | what was compared | conditions | difference [95% interval] "
        "| p (Holm over the claims) | this run finds |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["verdict"] == "untested":
            diff, p = "–", "–"
        else:
            diff = f"{r['mean_difference']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"
            p = f"{p_text(r['p'])}; Holm {p_text(r['p_holm'])}".replace("p = ", "").replace(
                "p < ", "< "
            )
        lines.append(
            f"| {r['claim']} | {r['measured']} | {r['conditions'] or '–'} | {diff} | {p} | "
            f"**{r['verdict']}** |"
        )
    lines += [
        "",
        f"Supported or contradicted: Holm-adjusted p < {SIGNIFICANCE:g}, by the sign of the "
        "difference; not separated: the seeds do not tell the groups apart, which is not "
        "evidence that they are alike. Every number is in `claims.csv`.",
    ]
    return "\n".join(lines)


def sheet_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The decided claims, for the summary sheet's findings."""
    return [
        f"{r['claim']} {r['verdict']} here"
        for r in rows
        if r["verdict"] in ("supported", "contradicted")
    ]


def save_claims(rows: list[dict[str, Any]], run_path) -> Path:
    """Write claims.csv atomically."""
    import pandas as pd

    path = Path(run_path) / "claims.csv"
    tmp = path.with_suffix(".csv.tmp")
    pd.DataFrame(rows, columns=list(CLAIM_COLUMNS)).to_csv(tmp, index=False, float_format="%.6g")
    tmp.replace(path)
    return path
