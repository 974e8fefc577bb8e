"""The study registry: one line per study, name -> module.

Adding a study is one new file in this folder (defining `STUDY`, an instance of
`actlab.studies.base.Study`) and one line below. Modules are imported only when the study
is used, and must not import torch at module level.
"""

from __future__ import annotations

import importlib

from actlab.errors import UserError

STUDY_MODULES: dict[str, str] = {
    "gradient_flow": "actlab.studies.gradient_flow",
    "sparsity": "actlab.studies.sparsity",
    "stability": "actlab.studies.stability",
    "capacity": "actlab.studies.capacity",
    "signal_propagation": "actlab.studies.signal_propagation",
    "speed": "actlab.studies.speed",
    "real_data": "actlab.studies.real_data",
    "remedies": "actlab.studies.remedies",
    "mnist1d": "actlab.studies.mnist1d",
    "bench": "actlab.studies.bench",
}


def available() -> list[str]:
    return list(STUDY_MODULES)


def get_study(name: str):
    key = name.strip().lower().replace("-", "_")
    if key not in STUDY_MODULES:
        from actlab.errors import closest, unknown_name

        near = closest(key, available())
        raise UserError(unknown_name("study", name, available(), near=near))
    return importlib.import_module(STUDY_MODULES[key]).STUDY
