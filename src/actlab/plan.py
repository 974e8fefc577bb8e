"""Trials -> batches: trials whose networks have the same shapes share one stack."""

from __future__ import annotations

import math
from dataclasses import dataclass

from actlab.studies.base import Study, Trial


@dataclass
class Batch:
    study: str
    trials: list[Trial]
    unit_cost: float | None = None  # Study.trial_cost of each trial, when the plan knew it

    @property
    def keys(self) -> list[str]:
        return [t.key for t in self.trials]


def plan(
    study: Study,
    trials: list[Trial],
    activation_order: list[str],
    max_members: int,
    max_bytes: int | None = None,
    config=None,
    signatures: dict[str, tuple | None] | None = None,
) -> list[Batch]:
    """Group by the study's batch key and activation; order each group by seed and split it
    into chunks of at most
    max_members networks and, when max_bytes is given, of about that much memory. How a
    group is split never changes a number: a trial gives the same bits in any batch."""
    rank = {name: i for i, name in enumerate(activation_order)}
    groups: dict[tuple, list[Trial]] = {}
    for trial in trials:
        # Learnable activations stack only with their own kind: their parameters have
        # one layout per signature (learnable.Family.signature).
        kind = (signatures or {}).get(trial.activation)
        groups.setdefault((study.batch_key(trial), kind), []).append(trial)
    parts = [
        part
        for members in groups.values()
        for part in (split_by_activation(members) if study.one_activation_per_stack else [members])
    ]
    batches = []
    for members in parts:
        members.sort(key=lambda t: (rank.get(t.activation, len(rank)), t.seed, t.key))
        size = max_members
        unit = study.trial_cost(members[0], config) if config is not None else None
        if max_bytes is not None and config is not None:
            per_member = max(study.member_bytes(members[0], config), 1)
            size = max(2, min(size, max_bytes // per_member))
        for start in range(0, len(members), size):
            batches.append(Batch(study.name, members[start : start + size], unit))
    return batches


def split_by_activation(members: list[Trial]) -> list[list[Trial]]:
    """One activation per batch when every activation has at least two trials: the
    activation is then applied to the whole stack at once, with no split and
    concatenation per layer (measured: 7% of a step). With one trial per activation
    (one seed) they stay together: a stack of one would be run beside a copy of itself,
    doubling its cost."""
    by_act: dict[str, list[Trial]] = {}
    for t in members:
        by_act.setdefault(t.activation, []).append(t)
    if min(len(v) for v in by_act.values()) >= 2:
        return list(by_act.values())
    return [members]


def balance(batches: list[Batch], workers: int, cost) -> list[Batch]:
    """Split big batches so that `workers` processes can share the work: no batch keeps
    more than about 1 / (2 x workers) of the total cost while it has members to spare.
    Splitting never changes a number (a trial gives the same bits in any batch)."""
    if workers <= 1 or not batches:
        return batches
    target = sum(cost(b) for b in batches) / (2 * workers)
    out = []
    for batch in batches:
        pieces = min(math.ceil(cost(batch) / target), len(batch.trials) // 2) if target else 1
        if pieces <= 1:
            out.append(batch)
            continue
        size = math.ceil(len(batch.trials) / pieces)
        out += [
            Batch(batch.study, batch.trials[i : i + size], batch.unit_cost)
            for i in range(0, len(batch.trials), size)
        ]
    return out


def study_major(batches: list[Batch], cost) -> list[Batch]:
    """The order batches are handed to the executor: study by study, the cheapest study
    first, each study's batches biggest first. Studies then finish one after another, so
    each one's report part (summary, figures, verdicts) is built while the later ones still
    compute; the most expensive study runs last, and its small batches fill the tail so the
    workers finish together."""
    totals: dict[str, float] = {}
    for batch in batches:
        totals[batch.study] = totals.get(batch.study, 0.0) + cost(batch)
    rank = {study: i for i, study in enumerate(sorted(totals, key=lambda s: (totals[s], s)))}
    return sorted(batches, key=lambda b: (rank[b.study], -cost(b)))
