"""Replications: one seeded stream each, run in this process or spread over local processes.

The runner knows nothing of adoption: it maps `(scenario, engine, replication index)` to a
result. Replication i always draws from `SeedSequence(seed, spawn_key=(i,))`, so the results
are identical whatever the number of workers or the order in which they finish.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import numpy as np

from sim.engines import RunResult, engines
from sim.scenario import Scenario


def replication_rng(seed: int, *key: int) -> np.random.Generator:
    """The random stream of one replication (or one sweep point and replication)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(key)))


def run_one(scenario: Scenario, engine: str, seed: int, index: int) -> RunResult:
    """Replication `index` of `scenario` with `engine`: a pure function of its arguments."""
    return engines()[engine](scenario, replication_rng(seed, index))


def _run_chunk(scenario: Scenario, engine: str, seed: int, indices: Sequence[int]
               ) -> list[tuple[int, RunResult]]:
    return [(i, run_one(scenario, engine, seed, i)) for i in indices]


def worker_init(parent: int) -> None:
    """Workers leave Ctrl-C (sent to the whole process group) to the parent, which stops
    them, and die with the parent even when it is killed with SIGKILL (Linux)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not sys.platform.startswith("linux"):  # pragma: no cover
        return
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: drop queued work and kill the running workers instead of waiting
    for their chunks to finish (an interrupted run keeps nothing of them, and a worker
    holds nothing that needs cleaning up)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(OSError, ValueError):  # already gone, or already closed
            proc.kill()
            proc.join(timeout=5)


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def run_replications(
    scenario: Scenario,
    indices: Sequence[int],
    *,
    seed: int,
    engine: str = "des",
    jobs: int = 1,
    on_result: Callable[[int, RunResult], None] | None = None,
) -> dict[int, RunResult]:
    """Run the replications `indices`; call `on_result` as each finishes (for progress/saving)."""
    if engine not in engines():
        raise ValueError(f"unknown engine {engine!r} (known: {', '.join(engines())})")
    results: dict[int, RunResult] = {}

    def take(i: int, res: RunResult) -> None:
        results[i] = res
        if on_result is not None:
            on_result(i, res)

    indices = list(indices)
    if jobs <= 1 or len(indices) <= 1:
        for i in indices:
            take(i, run_one(scenario, engine, seed, i))
        return results

    # Chunks small enough to balance the load and report progress, large enough to amortise
    # the cost of shipping the scenario to a worker.
    n_chunks = min(len(indices), jobs * 8)
    chunks = [indices[c::n_chunks] for c in range(n_chunks)]
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=worker_init,
                               initargs=(os.getpid(),))
    try:
        pending = {pool.submit(_run_chunk, scenario, engine, seed, chunk) for chunk in chunks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                for i, res in fut.result():
                    take(i, res)
    except BaseException:  # Ctrl-C, SIGTERM, a lost worker: stop now, keep nothing half-done
        stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    return results
