"""What refuses a run before anything is written: a device that is not there, learnable
activations a study cannot take, and batches that would not fit in memory."""

from __future__ import annotations

import os
from pathlib import Path

from actlab.config import RunConfig
from actlab.errors import UserError


def check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError(
                "--device cuda was given but this machine has no CUDA device; use --device cpu"
            )


def available_memory(device: str = "cpu") -> int | None:
    """Bytes this process can still allocate without swapping (MemAvailable, capped by a
    cgroup v2 limit), or free memory on the CUDA device; None when unknown."""
    if device == "cuda":
        import torch

        return int(torch.cuda.mem_get_info()[0])
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            available = None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit.isdigit() and used.isdigit():
            room = max(int(limit) - int(used), 0)
            available = room if available is None else min(available, room)
    except OSError:
        pass
    return available


def network_bytes(study, trial, study_cfg, dtype: str) -> int:
    """A rough peak size of one network of a trial while it trains: the study's estimate of
    the activations kept for the backward pass, plus its parameters four times over
    (weights, gradients and two Adam moments)."""
    scale = 2 if dtype == "float64" else 1
    n_params = study.param_count(trial, study_cfg)
    return scale * (study.member_bytes(trial, study_cfg) + 4 * 4 * n_params)


def human_bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError  # unreachable


def check_memory(config: RunConfig, batches, executor) -> None:
    """Refuse, before anything is written, a run whose biggest batch (or, with a process
    pool, whose biggest batches running at once) cannot fit in the memory available now."""
    from actlab.studies import get_study

    available = available_memory(config.device)
    if available is None or not batches:
        return
    sizes = []
    for batch in batches:
        study = get_study(batch.study)
        one = network_bytes(study, batch.trials[0], config.study(batch.study), config.dtype)
        # A lone trial runs beside a copy of itself (run_batch) unless in exact mode.
        members = len(batch.trials) if config.exact else max(2, len(batch.trials))
        sizes.append((members * one, members, one, batch))
    sizes.sort(key=lambda s: s[0], reverse=True)
    at_once = min(getattr(executor, "workers", 1), len(sizes))
    need = sum(s[0] for s in sizes[:at_once])
    if need <= available:
        return
    _, members, one, batch = sizes[0]
    p = batch.trials[0].params
    shape = ", ".join(f"{k} {p[k]}" for k in ("architecture", "depth", "width", "in_dim") if k in p)
    study_cfg = config.study(batch.study)
    for name in ("n_samples", "n_points", "n_train"):
        if hasattr(study_cfg, name):
            shape += f", {name} {getattr(study_cfg, name)}"
            break
    networks = (
        f"{members} networks of {batch.study}" if members > 1 else f"one {batch.study} network"
    )
    what = f"{networks} ({shape}; about {human_bytes(one)} each)"
    if at_once > 1 and sizes[0][0] <= available:
        raise UserError(
            f"this run needs about {human_bytes(need)} with {at_once} worker processes "
            f"running batches at once (the biggest: {what}); the machine has "
            f"{human_bytes(available)} available; use fewer --workers or --executor local"
        )
    raise UserError(
        f"this run needs about {human_bytes(sizes[0][0])} for {what}; the machine has "
        f"{human_bytes(available)} available; reduce width, depth or the number of samples"
    )


def check_learnable(studies: list[str], table: dict) -> None:
    """Refuse a learnable activation in a study that cannot train its parameters."""
    from actlab.studies import available, get_study

    learnable = [name for name, act in table.items() if act.learnable is not None]
    if not learnable:
        return
    accepting = [s for s in available() if get_study(s).learnable_activations]
    for study_name in studies:
        if get_study(study_name).learnable_activations is None:
            raise UserError(
                f"activation '{learnable[0]}' is learnable, and study '{study_name}' cannot "
                "train activation parameters yet; learnable activations run in "
                f"{', '.join(accepting)}: choose those with --studies, or a fixed activation"
            )


# Seconds the manifest's git commit may take to find; a slow or missing git leaves it out.
