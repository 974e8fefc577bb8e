"""Executors run batches and hand each finished batch's rows back, in completion order.

- `local`: in this process, one batch after another.
- `process`: a pool of worker processes (stdlib), one torch thread each, batches
  started in the order given. The default when the machine has more than one core: two processes
  with one thread each beat one process with two threads, and a trial's numbers are the
  same whichever worker runs it.
- `ray`: Ray core tasks (`pip install actlab[ray]`), on a Ray cluster (`address`) or a
  local Ray instance started for the run; one torch thread per task, failed workers'
  batches retried. Ray is imported only when this executor runs.
A study never knows which executor ran it; the store commits batches as they arrive.

Progress within a batch: `map(..., on_steps=f)` calls `f(batch, fraction)` while a batch
trains, a few times a second (engine/train.py `reporting`): the local executor directly;
the process pool through one shared-memory float per batch, written by the worker and
read by this process between waits; Ray per batch only (no reports within a batch).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

from actlab.plan import Batch
from actlab.studies.base import RunContext

RunBatch = Callable[[Batch, RunContext], list[list[dict]]]
# on_steps(batch, fraction of its training done), while the batch trains
OnSteps = Callable[[Batch, float], None]
# Seconds between a training batch's progress reports (engine/train.py StepMeter), and
# between the process pool's looks at them.
STEP_REPORT_SECONDS = 0.2
POLL_SECONDS = 0.25


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
        self,
        batches: list[Batch],
        contexts: dict[str, RunContext],
        run_batch: RunBatch,
        on_steps: OnSteps | None = None,
    ) -> Iterator[tuple[Batch, list[list[dict]]]]:
        with one_intra_op_thread():
            for batch in batches:
                if on_steps is None:
                    rows = run_batch(batch, contexts[batch.study])
                else:
                    from actlab.engine.train import reporting

                    told = partial(on_steps, batch)
                    with reporting(told, STEP_REPORT_SECONDS):
                        rows = run_batch(batch, contexts[batch.study])
                yield batch, rows


def _init_worker() -> None:
    import signal

    import torch

    # Ctrl-C reaches the whole process group; only the parent acts on it (it stops the
    # workers), so a worker never prints a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


# A batch worker's shared progress slots (one float per batch of the map), or None, and
# the seconds between its reports.
_SLOTS = None
_EVERY = STEP_REPORT_SECONDS


def _init_batch_worker(slots, every: float) -> None:
    global _SLOTS, _EVERY
    _init_worker()
    _SLOTS, _EVERY = slots, every


def _run_in_worker(
    run_batch: RunBatch, batch: Batch, ctx: RunContext, slot: int | None = None
) -> list[list[dict]]:
    if slot is None or _SLOTS is None:
        return run_batch(batch, ctx)
    from actlab.engine.train import reporting

    slots = _SLOTS

    def sink(fraction: float) -> None:
        slots[slot] = fraction  # one aligned double: the parent never reads half of it

    with reporting(sink, _EVERY):
        return run_batch(batch, ctx)


WORKER_PRELOAD = ["torch", "actlab.engine", "actlab.studies.base"]


def start_fork_server() -> None:
    """Start the process pool's fork server now, so that it imports torch (about 1.5 s)
    while this process is still importing and planning; the pool finds it ready."""
    import multiprocessing
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(WORKER_PRELOAD)
    forkserver.ensure_running()


def may_use_pool(config) -> bool:
    """Whether choose_executor is likely to pick the process pool for this run, judged
    from the config alone (before activations are resolved and batches planned)."""
    from actlab.studies import get_study

    if config.executor not in (None, "process") or config.address:
        return False
    if config.device == "cuda" and config.executor is None:
        return False
    if (config.workers or os.cpu_count() or 1) < 2 or not main_module_is_safe():
        return False
    if config.executor == "process":
        return True
    work = 0.0
    for name in config.studies:
        study, cfg = get_study(name), config.study(name)
        work += sum(study.trial_cost(t, cfg) for t in study.trials(cfg, config.activations, 1))
    return work * config.seeds > POOL_THRESHOLD


class ProcessExecutor:
    name = "process"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1

    def map(
        self,
        batches: list[Batch],
        contexts: dict[str, RunContext],
        run_batch: RunBatch,
        on_steps: OnSteps | None = None,
    ) -> Iterator[tuple[Batch, list[list[dict]]]]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if not batches:
            return
        ordered = list(batches)  # in the caller's order (runner: plan.study_major)
        # Workers fork from a server process that has imported torch but never run it: as
        # cheap to start as fork, without forking a parent whose OpenMP/MKL threads can hang
        # a child.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(WORKER_PRELOAD)
        # Each batch's training progress: a float the worker running it writes (0 to 1).
        slots = context.RawArray("d", len(ordered)) if on_steps is not None else None
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(ordered)),
            mp_context=context,
            initializer=_init_batch_worker,
            initargs=(slots, STEP_REPORT_SECONDS),
        )
        finished = False
        try:
            futures = {
                pool.submit(
                    _run_in_worker,
                    run_batch,
                    b,
                    contexts[b.study],
                    None if slots is None else i,
                ): i
                for i, b in enumerate(ordered)
            }
            if slots is None:
                for future in as_completed(futures):
                    yield ordered[futures[future]], future.result()
            else:
                yield from self._polled(ordered, futures, slots, on_steps)
            finished = True
        finally:
            if not finished:
                # Interrupted (Ctrl-C, an error, the consumer closed us): stop the workers
                # now rather than wait for the batches they are running.
                stop_workers(pool)
            pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _polled(ordered, futures, slots, on_steps: OnSteps):
        """Finished batches as they come, and between them, every POLL_SECONDS, each running
        batch's progress as its worker last wrote it."""
        from concurrent.futures import FIRST_COMPLETED, wait

        pending = set(futures)
        told = [0.0] * len(ordered)
        while pending:
            done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=futures.get):
                yield ordered[futures[future]], future.result()
            for future in pending:
                i = futures[future]
                fraction = slots[i]
                if fraction != told[i]:
                    told[i] = fraction
                    on_steps(ordered[i], fraction)


def _init_report_worker(draws: bool) -> None:
    """A report worker imports what drawing needs once, at its start (during the compute
    when the pool is opened early), not on the report's critical path."""
    _init_worker()
    import pandas  # noqa: F401

    import actlab.report.parts  # noqa: F401
    import actlab.report.pipeline  # noqa: F401
    import actlab.report.summary  # noqa: F401
    import actlab.studies  # noqa: F401

    if draws:
        from actlab.render.figures import warm_up

        warm_up()


def _ready() -> None:
    """A no-op task: submitting one per worker starts the workers (and their imports)."""


def report_pool(workers: int | None = None, draws: bool = True):
    """Worker processes for a report's parts (each study's summary and verdicts, and with
    `draws` its figures), or None where a pool cannot or should not run: one core, or a
    calling script whose workers would re-run it. The workers start at once and import
    what they need while the caller goes on."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if (os.cpu_count() or 1) < 2 or not main_module_is_safe():
        return None
    workers = workers or os.cpu_count() or 1
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_report_worker,
        initargs=(draws,),
    )
    for _ in range(workers):
        pool.submit(_ready)
    return pool


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
    """A batch's work, for ordering and splitting: its trials' Study.trial_cost, which the
    plan sets (the study asks its architecture), or one unit per trial for a batch made
    by hand."""
    unit = 1.0 if batch.unit_cost is None else batch.unit_cost
    return len(batch.trials) * unit


def picklable(obj: object) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:  # noqa: BLE001 - any failure means "cannot ship to a worker"
        return False
    return True


RAY_MISSING = "ray is not installed (pip install actlab[ray])"
# A batch whose worker process dies (killed, out of memory, node lost) is run again this
# many times; an exception raised by the study itself is never retried.
RAY_MAX_RETRIES = 3
# Seconds to wait for a TCP connection to a given Ray address before refusing the run.
RAY_CONNECT_TIMEOUT = 5.0


def ray_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def check_ray_address(address: str, timeout: float = RAY_CONNECT_TIMEOUT) -> None:
    """Fail fast (UserError) when HOST:PORT does not accept connections: ray.init keeps
    retrying an unreachable address for minutes. `auto` is left to Ray, which fails at
    once when no cluster is running on this machine."""
    import socket

    from actlab.errors import UserError

    if address == "auto":
        address = find_local_cluster()
        if address is None:
            return  # Ray's lookup changed: ray.init will say what it finds
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit():
        raise UserError(f"invalid --address '{address}'; give auto or HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        raise UserError(
            f"cannot reach a Ray cluster at {hostport} ({reason}); start one with "
            "'ray start --head' and pass --address auto or its HOST:PORT"
        ) from None


def find_local_cluster() -> str | None:
    """HOST:PORT of the cluster `ray start --head` started on this machine (what Ray's
    `auto` connects to); None when Ray's (private) lookup is not available."""
    from actlab.errors import UserError

    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:
        return None
    try:
        found = canonicalize_bootstrap_address("auto")
    except ConnectionError:  # Ray found no cluster
        found = None
    except Exception:  # noqa: BLE001 - an unexpected lookup failure: let ray.init decide
        return None
    if found is None:
        raise UserError(
            "--address auto: no Ray cluster is running on this machine; start one with "
            "'ray start --head', or leave out --address to start a local Ray for this run"
        )
    return found


def _ray_task(
    run_batch: RunBatch, batch: Batch, contexts: dict[str, RunContext], kill_marker: str | None
) -> list[list[dict]]:
    """One batch in a Ray worker, with one torch thread (the local executor's numbers)."""
    if kill_marker:
        # Test-only fault (ACTLAB_TEST_RAY_KILL_ONCE): the first task to create the marker
        # file dies as a killed worker would; Ray then retries its batch.
        try:
            os.close(os.open(kill_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            os._exit(1)
    with one_intra_op_thread():
        return run_batch(batch, contexts[batch.study])


class RayExecutor:
    """Batches as Ray core tasks. With an address, connect to that cluster (`auto`: the
    one started on this machine with `ray start --head`); without one, start a local Ray
    instance (no dashboard, on loopback) for the run and shut it down at the end. A Ray
    already initialized in this process is used as it is and left running."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        from actlab.errors import UserError

        if not ray_installed():
            raise UserError(f"--executor ray: {RAY_MISSING}")
        # Ray's own convention: RAY_ADDRESS names the cluster when --address is not given.
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        # CPUs of a local instance, and how many batches share one GPU with --device cuda.
        self.workers = workers or os.cpu_count() or 1
        if self.address is not None:
            check_ray_address(self.address)

    def _connect(self) -> bool:
        """Connect or start Ray; True when this executor must shut it down at the end."""
        import logging

        import ray

        from actlab.errors import UserError

        if ray.is_initialized():
            return False
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
        if self.address is not None:
            try:
                ray.init(address=self.address, **quiet)
            except ConnectionError as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise UserError(f"cannot connect to Ray at '{self.address}': {first}") from None
            return True
        ray.init(
            num_cpus=self.workers,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            **quiet,
        )
        return True

    def map(
        self,
        batches: list[Batch],
        contexts: dict[str, RunContext],
        run_batch: RunBatch,
        on_steps: OnSteps | None = None,
    ) -> Iterator[tuple[Batch, list[list[dict]]]]:
        # `on_steps` is not called: Ray reports per finished batch only (a task's progress
        # would need an actor or Ray's own state API polled from here; not worth it yet).
        if not batches:
            return
        import ray

        owned = self._connect()
        pending: dict = {}
        try:
            gpu = any(c.device == "cuda" for c in contexts.values())
            task = ray.remote(_ray_task).options(
                num_cpus=1,
                num_gpus=1 / self.workers if gpu else 0,
                max_retries=RAY_MAX_RETRIES,
                retry_exceptions=False,
            )
            shared = ray.put(contexts)  # sent once, read by every task
            kill_marker = os.environ.get("ACTLAB_TEST_RAY_KILL_ONCE") or None
            ordered = list(batches)  # in the caller's order (runner: plan.study_major)
            pending = {task.remote(run_batch, b, shared, kill_marker): b for b in ordered}
            while pending:
                [done], _ = ray.wait(list(pending), num_returns=1)
                rows = ray.get(done)
                yield pending.pop(done), rows
        finally:
            for ref in pending:  # interrupted or failed: stop what is still running
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - best effort on the way out
                    pass
            if owned:
                ray.shutdown()


EXECUTORS = {"local": LocalExecutor, "process": ProcessExecutor, "ray": RayExecutor}


# Below this much work (batch_cost units: about 7.5e9 a second on one core of the 2-core
# machine, measured on the tutorial's capacity and depth-stress batches; so about 3 s)
# starting worker processes costs more than it saves.
POOL_THRESHOLD = 2e10


def main_module_is_safe() -> bool:
    """Whether worker processes may start here without re-running the caller's script.

    A worker re-imports the parent's main module; a plain script without an
    `if __name__ == "__main__":` guard would then run again inside every worker. Safe: the
    `actlab` command, `python -m module` (run under its own name), interactive sessions
    and notebooks (no main file), and a script whose call into actlab sits under that
    guard. Any other script runs locally.
    """
    import sys

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and getattr(spec, "name", None):
        return True
    path = getattr(main, "__file__", None)
    if path is None or os.path.basename(path) == "actlab":
        return True
    return called_under_main_guard(main)


def called_under_main_guard(main) -> bool:
    """Whether the main script's top-level statement now running lies inside an
    `if __name__ == "__main__":` block (read from the script's source)."""
    import ast
    import sys

    frame = sys._getframe()
    while frame is not None and not (
        frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>"
    ):
        frame = frame.f_back
    if frame is None:
        return False
    try:
        with open(main.__file__, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return False
    line = frame.f_lineno
    return any(
        isinstance(node, ast.If)
        and _is_main_test(node.test)
        and node.body[0].lineno <= line <= (node.body[-1].end_lineno or line)
        for node in tree.body
    )


def _is_main_test(test) -> bool:
    """`__name__ == "__main__"`, either way round."""
    import ast

    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(mains) == 1


def choose_executor(
    name: str | None,
    workers: int | None,
    contexts: dict[str, RunContext],
    batches: list[Batch],
    address: str | None = None,
):
    """The named executor, or by default a process pool when there is more than one core,
    enough work to pay for starting workers, and activations that can be sent to them."""
    if name is None and address:
        name = "ray"  # an address only means something to Ray; other executors ignore it
    if name is None and any(c.device == "cuda" for c in contexts.values()):
        name = "local"  # one process drives the GPU; its batches run there in parallel
    if name is None:
        cores = workers or os.cpu_count() or 1
        big = len(batches) > 1 and sum(map(batch_cost, batches)) > POOL_THRESHOLD
        pool_ok = cores > 1 and big and picklable(contexts) and main_module_is_safe()
        name = "process" if pool_ok else "local"
    if name == "process" and not main_module_is_safe():
        from actlab.errors import UserError

        raise UserError(
            "executor 'process' starts workers that re-import this script; put the call "
            'under `if __name__ == "__main__":`, or use executor="local"'
        )
    if name == "process" and not picklable(contexts):
        from actlab.errors import UserError

        raise UserError(
            "--executor process needs activations that can be sent to worker "
            "processes (a lambda or a function defined in __main__ cannot); "
            "use a module-level function, an expression, or --executor local"
        )
    return get_executor(name, workers, address)


def get_executor(name: str, workers: int | None = None, address: str | None = None):
    if name not in EXECUTORS:
        from actlab.errors import UserError

        raise UserError(f"unknown executor '{name}'; available: {', '.join(EXECUTORS)}")
    if name == "ray":
        return RayExecutor(workers, address)
    return ProcessExecutor(workers) if name == "process" else EXECUTORS[name]()
