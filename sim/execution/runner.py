"""Replications: one seeded stream each, run in this process or spread over an executor.

The runner knows nothing of adoption: it maps `(scenario, engine, replication index)` to a
result. Replication i always draws from `SeedSequence(seed, spawn_key=(i,))`, so the results
are identical whatever the number of workers or the order in which they finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

from sim.engines import RunResult, engines
from sim.execution.batches import execute
from sim.execution.executor import Executor, LocalExecutor
from sim.execution.pool import default_jobs
from sim.execution.seeds import replication_rng
from sim.scenario import Scenario

__all__ = ["default_jobs", "replication_rng", "run_one", "run_replications"]


def run_one(scenario: Scenario, engine: str, seed: int, index: int) -> RunResult:
    """Replication `index` of `scenario` with `engine`: a pure function of its arguments."""
    return engines()[engine](scenario, replication_rng(seed, index))


def _run_batch(scenario: Scenario, engine: str, seed: int, indices: Sequence[int]
               ) -> tuple[list[tuple[int, RunResult]], float]:
    started = time.perf_counter()
    done = [(i, run_one(scenario, engine, seed, i)) for i in indices]
    return done, time.perf_counter() - started


def run_replications(
    scenario: Scenario,
    indices: Sequence[int],
    *,
    seed: int,
    engine: str = "des",
    jobs: int = 1,
    on_result: Callable[[int, RunResult], None] | None = None,
    executor: Executor | None = None,
) -> dict[int, RunResult]:
    """Run the replications `indices` on `executor` (default: `jobs` local processes); call
    `on_result` as each finishes (progress). Returns the results in index order. A lost
    worker or a failing run raises: a run is all its replications or nothing."""
    if engine not in engines():
        raise ValueError(f"unknown engine {engine!r} (known: {', '.join(engines())})")
    results: dict[int, RunResult] = {}

    def take(done: list[tuple[int, RunResult]]) -> None:
        for i, res in done:
            results[i] = res
            if on_result is not None:
                on_result(i, res)

    indices = list(indices)
    task = partial(_run_batch, scenario, engine, seed)
    if executor is not None:
        execute(executor, indices, task, on_results=take, key=lambda r: r[0])
    else:
        with LocalExecutor(jobs if len(indices) > 1 else 1) as local:
            execute(local, indices, task, on_results=take, key=lambda r: r[0])
    return dict(sorted(results.items()))
