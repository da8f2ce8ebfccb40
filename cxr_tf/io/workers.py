"""The worker processes of build-time jobs (decoding images into records, drawing phantoms).

Workers fork from a fork server that has imported only the module doing the work: forking the
calling process could copy TensorFlow's threads (and deadlock), and spawning would re-import the
caller's ``__main__`` (pandas, maybe TensorFlow) in every worker.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Callable, Iterable, Iterator, TypeVar

from cxr_tf import reporting

log = reporting.logger("workers")

In = TypeVar("In")
Out = TypeVar("Out")


def worker_count(requested: int, flag: str = "--workers") -> int:
    """Processes for a ``--workers`` flag: 0 means one per core this process may use; more than that
    is capped there, with a log line (a thousand processes on two cores only thrash)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if requested > cores:
        log.warning("%s %d: capped at %d, the cores this machine gives the job", flag, requested, cores)
    return min(requested, cores) if requested else cores


class WorkerPool:
    """An ordered, lazy ``map`` in this process (``workers`` 1) or on ``workers`` forked processes.

    Use as a context manager; one pool serves any number of ``map`` calls. Leaving the block on an
    exception (an interrupt, a failed write) terminates the workers without waiting for queued items.

    Args:
        workers: processes; 1 runs everything in the calling process.
        preload: the module the fork server imports (the one defining the mapped functions); workers
            fork from it with nothing else imported.
    """

    def __init__(self, workers: int, preload: str) -> None:
        self.workers, self.preload = workers, preload
        self.pool: multiprocessing.pool.Pool | None = None

    def __enter__(self) -> "WorkerPool":
        if self.workers > 1:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([self.preload])
            self.pool = context.Pool(self.workers)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is None:
            return
        if exc[0] is None:
            self.pool.close()
        else:
            self.pool.terminate()
        self.pool.join()
        self.pool = None

    def map(self, function: Callable[[In], Out], items: Iterable[In], chunksize: int = 1) -> Iterator[Out]:
        """``function`` of each item, in the items' order (so results never depend on timing).

        ``function`` must be picklable (a module-level function, or an instance of a module-level class) when
        ``workers`` > 1; ``chunksize`` items travel to a worker at a time.
        """
        if self.pool is None:
            return map(function, items)
        return self.pool.imap(function, items, chunksize=chunksize)
