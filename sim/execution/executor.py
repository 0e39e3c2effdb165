"""One interface to whatever does the work: this process, local processes or a Dask cluster.

In the spirit of EMA Workbench's evaluators: an executor is a context manager (entering
starts its workers or connects, leaving stops them, and kills them when leaving on an
exception); in between, `submit` sends a picklable task and `wait` hands back outcomes.
Optional back ends (Dask) are imported only inside their executor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from sim.execution.pool import start_pool, stop_pool

CONNECT_TIMEOUT = "10s"
"""How long to try to reach a Dask scheduler before giving up."""

Task = Callable[[Any], Any]
"""A picklable function of one argument, run on a worker."""


@runtime_checkable
class Executor(Protocol):
    """Runs tasks on workers. `workers` is how many run at once; `shared_fate` says that
    one lost worker fails every task in flight (a local pool), not just its own."""

    workers: int
    shared_fate: bool

    def __enter__(self) -> Executor: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def submit(self, task: Task, arg: Any) -> Hashable:
        """Start `task(arg)`; returns a handle to wait for."""
        ...

    def wait(self, handles: set[Hashable], timeout: float) -> list[tuple[Hashable, Any]]:
        """The handles that finished within `timeout` seconds (at least one, if any finish),
        each with its task's return value or the exception that ended it."""
        ...

    def recover(self, exc: BaseException) -> bool:
        """After a task ended with `exc`: True when a worker was lost and the executor can
        take the task again (resubmitting makes sense), False for any other failure."""
        ...

    def close(self, *, kill: bool = False) -> None:
        """Release the workers; `kill` stops running tasks instead of waiting for them."""
        ...


class _Base:
    """The context-manager half of the protocol, shared by both executors."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(kill=exc is not None)

    def close(self, *, kill: bool = False) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class LocalExecutor(_Base):
    """`jobs` spawned worker processes, started on first use; with one job, tasks run in
    this process as they are submitted."""

    shared_fate = True  # one dead worker breaks the pool and every task in it

    def __init__(self, jobs: int):
        self.workers = max(1, jobs)
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, task: Task, arg: Any) -> Future:
        if self.workers <= 1:
            fut: Future = Future()
            fut.set_result(task(arg))
            return fut
        if self._pool is None:
            self._pool = start_pool(self.workers)
        return self._pool.submit(task, arg)

    def wait(self, handles: set[Hashable], timeout: float) -> list[tuple[Hashable, Any]]:
        done, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)  # type: ignore[arg-type]
        out: list[tuple[Hashable, Any]] = []
        for fut in done:
            exc = fut.exception()
            out.append((fut, exc if exc is not None else fut.result()))
        return out

    def recover(self, exc: BaseException) -> bool:
        """A dead worker breaks the whole pool: start a fresh one for the resubmitted tasks."""
        if isinstance(exc, BrokenProcessPool):
            self.close(kill=True)
            return True
        return False

    def close(self, *, kill: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if kill:
            stop_pool(pool)
        else:
            pool.shutdown(wait=True)


class DaskExecutor(_Base):
    """Tasks sent to a running Dask distributed scheduler (Dask is imported only here)."""

    shared_fate = False  # the scheduler reschedules a lost worker's other tasks itself

    def __init__(self, address: str, client: Any = None):
        from distributed import Client

        self.client = client if client is not None else Client(address, timeout=CONNECT_TIMEOUT)
        self._own = client is None
        self.workers = max(1, sum(w.get("nthreads", 1) for w in
                                  self.client.scheduler_info()["workers"].values()))

    def submit(self, task: Task, arg: Any) -> Hashable:
        return self.client.submit(task, arg, pure=False)

    def wait(self, handles: set[Hashable], timeout: float) -> list[tuple[Hashable, Any]]:
        from distributed import wait as dask_wait

        try:
            done, _ = dask_wait(list(handles), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        # A future the scheduler is recomputing (its worker died after finishing it) can be
        # reported done and then be pending again: it is still in flight, not an outcome.
        return [(fut, self._outcome(fut)) for fut in done if fut.status != "pending"]

    @staticmethod
    def _outcome(fut: Any) -> Any:
        if fut.status == "finished":
            return fut.result()
        try:
            exc = fut.exception()
        except Exception as err:  # noqa: BLE001 - e.g. the future was cancelled
            return err
        # 'lost' (or any state without an error of its own) is a failure to resubmit.
        return exc if exc is not None else RuntimeError(f"task {fut.status}")

    def recover(self, exc: BaseException) -> bool:
        return True  # the scheduler already moved the other tasks; resubmit this one

    def close(self, *, kill: bool = False) -> None:
        if self._own:
            with contextlib.suppress(Exception):
                self.client.close(timeout=5)


def make_executor(jobs: int | None = None, scheduler: str | None = None) -> Executor:
    """A Dask executor for a scheduler address, else `jobs` local processes (default: all
    cores). Raises ImportError without Dask, OSError/TimeoutError when it cannot connect."""
    from sim.execution.pool import default_jobs

    if scheduler:
        return DaskExecutor(scheduler)
    return LocalExecutor(jobs or default_jobs())
