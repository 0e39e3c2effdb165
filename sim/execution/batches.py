"""Work split into batches and spread over an executor, results passed on as they come.

Used by `sim run` (replications), `sim sweep` and `sim solve` (point runs) alike. Batches
are plain data and every item draws from its own seeded stream, so what comes back does
not depend on the executor, the number of workers or the order in which batches finish.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from sim.execution.executor import Executor

BATCH_SECONDS = 0.5
"""Work per batch once run times are known: long enough to hide per-task overhead."""
RETRIES = 3
"""Times a batch is resubmitted after its worker died before its items are given up."""

Item = TypeVar("Item")
Result = TypeVar("Result")


def execute(
    executor: Executor,
    items: Sequence[Item],
    task: Callable[[tuple[Item, ...]], tuple[list[Result], float]],
    *,
    on_results: Callable[[list[Result]], None],
    key: Callable[[Result], Hashable],
    failed: Callable[[tuple[Item, ...], str], list[Result]] | None = None,
    retries: int = RETRIES,
) -> None:
    """Do `items` in batches: `task(batch)` runs on a worker and returns its results and the
    seconds spent; `on_results` is called here as each batch returns, with each result
    (told apart by `key`) once. Batches start with one item and grow to about BATCH_SECONDS
    of work; at most two per worker are in flight. A batch whose worker died is resubmitted
    up to `retries` times; then `failed(batch, reason)` stands in for its results, or,
    without `failed`, the error is raised (as is any error of the task itself)."""
    queue = list(items)
    queue.reverse()  # pop() from the end takes items in their given order
    workers = max(1, executor.workers)
    in_flight: dict[Hashable, tuple[tuple[Item, ...], int]] = {}
    timing = [0.0, 0]  # seconds, items
    delivered: set[Hashable] = set()

    def deliver(results: list[Result]) -> None:
        # A batch can come back twice (a worker judged lost that finished after all, or
        # rescheduled by Dask as well as by us): each result is passed on once, the first time.
        fresh = [res for res in results if key(res) not in delivered]
        delivered.update(key(res) for res in fresh)
        if fresh:
            on_results(fresh)

    def next_batch() -> tuple[Item, ...]:
        per_item = timing[0] / timing[1] if timing[1] else math.inf
        size = 1 if math.isinf(per_item) else int(BATCH_SECONDS / max(per_item, 1e-6))
        size = max(1, min(size, len(queue) // (2 * workers) or 1, 1000))
        return tuple(queue.pop() for _ in range(min(size, len(queue))))

    def fill() -> None:
        while queue and len(in_flight) < 2 * workers:
            batch = next_batch()
            in_flight[executor.submit(task, batch)] = (batch, 0)

    try:
        fill()
        while in_flight:
            for handle, outcome in executor.wait(set(in_flight), timeout=0.25):
                if handle not in in_flight:
                    continue  # resubmitted with its broken pool below
                batch, tries = in_flight.pop(handle)
                if isinstance(outcome, BaseException):
                    if tries + 1 < retries and failed is not None and executor.recover(outcome):
                        again = [(batch, tries + 1)]
                        if executor.shared_fate:  # a broken local pool fails every batch
                            again.extend(in_flight.values())
                            in_flight.clear()
                        for b, t in again:
                            in_flight[executor.submit(task, b)] = (b, t)
                        continue
                    if failed is None:
                        raise outcome
                    text = f"{type(outcome).__name__}: {outcome}".strip()
                    deliver(failed(batch, f"worker lost: {text}"))
                    continue
                results, seconds = outcome
                timing[0] += seconds
                timing[1] += len(results)
                deliver(results)
            fill()
    except BaseException:
        executor.close(kill=True)
        raise
