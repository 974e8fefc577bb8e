"""Trials -> batches: trials whose networks have the same shapes share one stack."""

from __future__ import annotations

from dataclasses import dataclass

from actlab.studies.base import Study, Trial


@dataclass
class Batch:
    study: str
    trials: list[Trial]

    @property
    def keys(self) -> list[str]:
        return [t.key for t in self.trials]


def plan(
    study: Study, trials: list[Trial], activation_order: list[str], max_members: int
) -> list[Batch]:
    """Group by the study's batch key; within a group, order by activation (so each
    activation is one contiguous run of members) and split into chunks of max_members."""
    rank = {name: i for i, name in enumerate(activation_order)}
    groups: dict[tuple, list[Trial]] = {}
    for trial in trials:
        groups.setdefault(study.batch_key(trial), []).append(trial)
    batches = []
    for members in groups.values():
        members.sort(key=lambda t: (rank.get(t.activation, len(rank)), t.seed, t.key))
        for start in range(0, len(members), max_members):
            batches.append(Batch(study.name, members[start : start + max_members]))
    return batches
