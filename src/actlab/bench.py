"""`actlab.bench`: your model and data on the bench. A run of the bench study
(studies/bench/): every activation on the same seeds, every activation of a seed from the
same initial weights and batches, an activation's seeds stacked with torch.func where the
model allows it; the run directory, resume, executors, verdicts and report are a run's.
`actlab bench` on the command line is this function.

    >>> actlab.bench("examples/digits_cnn.py:make_cnn", data="digits",
    ...              activations=["ReLU", "GELU", "Tanhshrink"], seeds=5)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from actlab.runner import Run, RunStart, run

BASELINES = ("ReLU", "GELU", "Swish", "Tanh")
# Run settings (RunConfig's); every other keyword is the bench study's (studies/bench/config.py).
RUN_SETTINGS = ("seed", "device", "dtype", "executor", "workers", "address", "max_members")


def bench(
    model: str | None = None,
    *,
    data: str = "digits",
    activations: list[str] | tuple[str, ...] = BASELINES,
    seeds: int = 5,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    on_start: Callable[[RunStart], None] | None = None,
    on_steps: Callable[[dict[str, float]], None] | None = None,
    report: bool = True,
    **settings: Any,
) -> Run:
    """Train `model` (a factory: 'module:attr' or 'path/file.py:attr') on `data` with each
    activation on `seeds` seeds; returns the Run. `settings`: the bench's (steps, lr,
    batch, optimizer, weight_decay, clip, eval_every, task, replace, train, stack) and the
    run's (executor, workers, device, seed, ...)."""
    from actlab.config import build_config
    from actlab.errors import UserError

    if resume is not None:
        return run(
            resume=resume,
            progress=progress,
            report=report,
            on_start=on_start,
            on_steps=on_steps,
        )
    if model is None:
        raise UserError("give a model: module:attr or path/file.py:attr (a factory)")
    run_settings = {k: settings.pop(k) for k in RUN_SETTINGS if settings.get(k) is not None}
    study = {k: v for k, v in settings.items() if v is not None}
    config = build_config(
        {
            "preset": "bench",  # not a preset file: the report's header and the directory say it
            "description": f"actlab bench: {model} on {data}",
            "seeds": seeds,
            "activations": list(activations),
            "studies": ["bench"],
            "study_config": {"bench": {"model": model, "data": data, **study}},
            **run_settings,
        },
        source="bench settings",
    )
    if out is None:
        from actlab.runner import default_run_dir

        out = default_run_dir(config)
    return run(
        config=config,
        out=out,
        progress=progress,
        report=report,
        on_start=on_start,
        on_steps=on_steps,
    )
