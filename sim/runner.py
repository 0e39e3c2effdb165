"""Replications: one seeded stream each, run in this process or spread over local processes.

The runner knows nothing of adoption: it maps `(scenario, engine, replication index)` to a
result. Replication i always draws from `SeedSequence(seed, spawn_key=(i,))`, so the results
are identical whatever the number of workers or the order in which they finish.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import numpy as np

from .model import RunResult, simulate
from .scenario import Scenario

Engine = Callable[[Scenario, np.random.Generator], RunResult]


DETERMINISTIC = frozenset({"meanfield"})
"""Engines whose result does not depend on the seed: one replication says everything."""


def engines() -> dict[str, Engine]:
    """Engines by name: `des` exact discrete-event, `tau` fixed steps, `meanfield` the ODE limit."""
    from .meanfield import solve
    from .tau import simulate_tau

    return {"des": simulate, "tau": simulate_tau, "meanfield": solve}


def replication_rng(seed: int, *key: int) -> np.random.Generator:
    """The random stream of one replication (or one sweep point and replication)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(key)))


def run_one(scenario: Scenario, engine: str, seed: int, index: int) -> RunResult:
    """Replication `index` of `scenario` with `engine`: a pure function of its arguments."""
    return engines()[engine](scenario, replication_rng(seed, index))


def _run_chunk(scenario: Scenario, engine: str, seed: int, indices: Sequence[int]
               ) -> list[tuple[int, RunResult]]:
    return [(i, run_one(scenario, engine, seed, i)) for i in indices]


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
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        pending = {pool.submit(_run_chunk, scenario, engine, seed, chunk) for chunk in chunks}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    for i, res in fut.result():
                        take(i, res)
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    return results
