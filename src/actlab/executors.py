"""Executors run batches and hand each finished batch's rows back, in completion order.

The local executor runs in this process. (A process pool and Ray join the registry in
their own issues; a study never knows which executor ran it.)
"""

from __future__ import annotations

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


EXECUTORS = {"local": LocalExecutor}


def get_executor(name: str):
    try:
        return EXECUTORS[name]()
    except KeyError:
        from actlab.errors import UserError

        raise UserError(f"unknown executor '{name}'; available: {', '.join(EXECUTORS)}") from None
