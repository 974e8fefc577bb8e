"""Executors run batches and hand each finished batch's rows back, in completion order.

- `local`: in this process, one batch after another.
- `process`: a pool of worker processes (stdlib), one torch thread each, the biggest
  batches first. The default when the machine has more than one core: two processes
  with one thread each beat one process with two threads, and a trial's numbers are the
  same whichever worker runs it.
A study never knows which executor ran it; the store commits batches as they arrive.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from actlab.plan import Batch
from actlab.studies.base import RunContext

RunBatch = Callable[[Batch, RunContext], list[list[dict]]]


@contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """Run torch on one thread inside this block.

    Why: a multi-threaded BLAS splits one matrix product's reduction across threads
    differently depending on how many matrices are in the batch, so a trial's last bits
    would depend on its batch-mates (measured on the protocol's 10 -> 128 first layer).
    With one thread per worker, a trial's numbers are the same alone or in any batch;
    parallelism comes from running batches in separate workers instead.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class LocalExecutor:
    name = "local"

    def map(
        self, batches: list[Batch], contexts: dict[str, RunContext], run_batch: RunBatch
    ) -> Iterator[tuple[Batch, list[list[dict]]]]:
        with one_intra_op_thread():
            for batch in batches:
                yield batch, run_batch(batch, contexts[batch.study])


def _init_worker() -> None:
    import signal

    import torch

    # Ctrl-C reaches the whole process group; only the parent acts on it (it stops the
    # workers), so a worker never prints a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def _run_in_worker(run_batch: RunBatch, batch: Batch, ctx: RunContext) -> list[list[dict]]:
    return run_batch(batch, ctx)


class ProcessExecutor:
    name = "process"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1

    def map(
        self, batches: list[Batch], contexts: dict[str, RunContext], run_batch: RunBatch
    ) -> Iterator[tuple[Batch, list[list[dict]]]]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if not batches:
            return
        # Longest first: the pool then finishes close together (LPT scheduling).
        ordered = sorted(batches, key=batch_cost, reverse=True)
        # Workers fork from a server process that has imported torch but never run it: as
        # cheap to start as fork, without forking a parent whose OpenMP/MKL threads can hang
        # a child.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["torch", "actlab.engine", "actlab.studies.base"])
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(ordered)),
            mp_context=context,
            initializer=_init_worker,
        )
        finished = False
        try:
            futures = {
                pool.submit(_run_in_worker, run_batch, b, contexts[b.study]): b for b in ordered
            }
            for future in as_completed(futures):
                yield futures[future], future.result()
            finished = True
        finally:
            if not finished:
                # Interrupted (Ctrl-C, an error, the consumer closed us): stop the workers
                # now rather than wait for the batches they are running.
                stop_workers(pool)
            pool.shutdown(wait=True, cancel_futures=True)


def stop_workers(pool) -> None:
    """Terminate a ProcessPoolExecutor's worker processes (3.14 has terminate_workers)."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()


def batch_cost(batch: Batch) -> float:
    """A rough size for ordering: members x depth x width^2 x steps."""
    p = batch.trials[0].params
    return len(batch.trials) * p.get("depth", 1) * p.get("width", 1) ** 2 * p.get("steps", 1)


def picklable(obj: object) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:  # noqa: BLE001 - any failure means "cannot ship to a worker"
        return False
    return True


EXECUTORS = {"local": LocalExecutor, "process": ProcessExecutor}


# Below this much work (batch_cost units; about 3 s on one core) starting worker
# processes costs more than it saves.
POOL_THRESHOLD = 5e7


def choose_executor(
    name: str | None, workers: int | None, contexts: dict[str, RunContext], batches: list[Batch]
):
    """The named executor, or by default a process pool when there is more than one core,
    enough work to pay for starting workers, and activations that can be sent to them."""
    if name is None:
        cores = workers or os.cpu_count() or 1
        big = len(batches) > 1 and sum(map(batch_cost, batches)) > POOL_THRESHOLD
        name = "process" if cores > 1 and big and picklable(contexts) else "local"
    if name == "process" and not picklable(contexts):
        from actlab.errors import UserError

        raise UserError(
            "--executor process needs activations that can be sent to worker "
            "processes (a lambda or a function defined in __main__ cannot); "
            "use a module-level function, an expression, or --executor local"
        )
    return get_executor(name, workers)


def get_executor(name: str, workers: int | None = None):
    if name not in EXECUTORS:
        from actlab.errors import UserError

        raise UserError(f"unknown executor '{name}'; available: {', '.join(EXECUTORS)}")
    return ProcessExecutor(workers) if name == "process" else EXECUTORS[name]()
