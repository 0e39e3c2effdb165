"""Replications: seeded streams, run in this process or spread over an executor.

The runner knows nothing of adoption: it maps `(scenario, engine, replication index)` to a
result. Replication i draws from `SeedSequence(seed, spawn_key=(i,))`; with an engine that
runs replications together (tau), the block of `batch_size` replications i belongs to
draws from `SeedSequence(seed, spawn_key=(BLOCK, b))`. Blocks are fixed by the indices
alone, so the results are identical whatever the number of workers or the order in which
they finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

from sim.engines import RunResult, batched, engines
from sim.execution.batches import execute
from sim.execution.executor import Executor, LocalExecutor
from sim.execution.pool import default_jobs, settle
from sim.execution.seeds import BLOCK, block_of, replication_rng
from sim.scenario import Scenario

__all__ = ["default_jobs", "replication_rng", "run_block", "run_one", "run_replications"]


def run_one(scenario: Scenario, engine: str, seed: int, index: int) -> RunResult:
    """Replication `index` of `scenario` with `engine`: a pure function of its arguments."""
    return engines()[engine](scenario, replication_rng(seed, index))


def run_block(scenario: Scenario, engine: str, seed: int, block: int, members: range
              ) -> list[tuple[int, RunResult]]:
    """Block `block` of replications (`members`) run together by a batched engine."""
    found = batched(engine)
    assert found is not None
    results = found[0](scenario, replication_rng(seed, BLOCK, block), len(members))
    return list(zip(members, results, strict=True))


def _run_batch(scenario: Scenario, engine: str, seed: int, indices: Sequence[int]
               ) -> tuple[list[tuple[int, RunResult]], float]:
    started = time.perf_counter()
    done = [(i, run_one(scenario, engine, seed, i)) for i in indices]
    elapsed = time.perf_counter() - started
    settle()
    return done, elapsed


def _run_blocks(scenario: Scenario, engine: str, seed: int,
                blocks: Sequence[tuple[int, range, frozenset[int]]]
                ) -> tuple[list[tuple[int, RunResult]], float]:
    started = time.perf_counter()
    done = [(i, res) for b, members, wanted in blocks
            for i, res in run_block(scenario, engine, seed, b, members) if i in wanted]
    elapsed = time.perf_counter() - started
    settle()
    return done, elapsed


def run_replications(
    scenario: Scenario,
    indices: Sequence[int],
    *,
    seed: int,
    engine: str = "des",
    jobs: int = 1,
    on_result: Callable[[int, RunResult], None] | None = None,
    executor: Executor | None = None,
    total: int | None = None,
) -> dict[int, RunResult]:
    """Run the replications `indices` (of a run of `total`, default one past the largest
    index) on `executor` (default: `jobs` local processes); call `on_result` as each
    finishes (progress). Returns the results in index order. A lost worker or a failing
    run raises: a run is all its replications or nothing."""
    if engine not in engines():
        raise ValueError(f"unknown engine {engine!r} (known: {', '.join(engines())})")
    results: dict[int, RunResult] = {}

    def take(done: list[tuple[int, RunResult]]) -> None:
        for i, res in done:
            results[i] = res
            if on_result is not None:
                on_result(i, res)

    indices = list(indices)
    found = batched(engine)
    items: list
    if found is not None and indices:
        size = found[1](scenario)
        total = max(indices) + 1 if total is None else total
        wanted: dict[int, tuple[range, set[int]]] = {}
        for i in indices:
            b, members = block_of(i, size, total)
            wanted.setdefault(b, (members, set()))[1].add(i)
        items = [(b, members, frozenset(want)) for b, (members, want) in sorted(wanted.items())]
        task = partial(_run_blocks, scenario, engine, seed)
    else:
        items, task = indices, partial(_run_batch, scenario, engine, seed)
    if executor is not None:
        execute(executor, items, task, on_results=take, key=lambda r: r[0])
    else:
        with LocalExecutor(jobs if len(items) > 1 else 1) as local:
            execute(local, items, task, on_results=take, key=lambda r: r[0])
    return dict(sorted(results.items()))
