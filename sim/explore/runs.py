"""The runs of a sweep or a solve: plain data in, plain rows out, the same on this process,
a local worker or a Dask worker. A run's stream depends only on the seed and its key:
`(point, replication)`, or `(replication,)` with common random numbers (solve)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from sim.engines import RunResult, engines, rules
from sim.execution.batches import execute
from sim.execution.executor import Executor
from sim.execution.seeds import replication_rng
from sim.explore.design import point_scenario
from sim.scenario import Scenario

CURVE_REPS = 50
"""Replications per point whose monthly curve is kept (for the fan of curves)."""

Run = tuple[int, tuple[Any, ...], int]
"""One run to do: (point, the varied keys' values there, replication)."""
Row = dict[str, Any]
"""One finished run: point, replication, count_at_deadline, met, crossing_date, error and,
for the first CURVE_REPS replications, the counted firms per month end (`curve`)."""


@dataclass(frozen=True)
class RunSpec:
    """What every run of a batch shares: the base scenario, engine, seed and varied keys."""

    raw: Mapping[str, Any]
    source: str
    engine: str
    seed: int
    keys: tuple[str, ...]
    common_random_numbers: bool = False  # solve: replication r uses the same stream at every x
    curve_reps: int = CURVE_REPS


def run_batch(spec: RunSpec, runs: Sequence[Run]) -> tuple[list[Row], float]:
    """Do the runs; a run that raises becomes a row with its error, not a failed batch.
    Returns the rows and the seconds spent."""
    started = time.perf_counter()
    engine = engines()[spec.engine]
    scenarios: dict[int, Scenario | Exception] = {}
    rows = []
    for point, values, rep in runs:
        if point not in scenarios:
            try:
                scenarios[point] = point_scenario(spec.raw, spec.keys, values, spec.source)
            except Exception as exc:  # noqa: BLE001 - recorded in the row
                scenarios[point] = exc
        sc = scenarios[point]
        key = (rep,) if spec.common_random_numbers else (point, rep)
        try:
            if isinstance(sc, Exception):
                raise sc
            result = engine(sc, replication_rng(spec.seed, *key))
            rows.append(_row(sc, point, rep, result, keep_curve=rep < spec.curve_reps))
        except Exception as exc:  # noqa: BLE001 - a failed run is kept with its error
            rows.append(failed_row(point, rep, f"{type(exc).__name__}: {exc}"))
    return rows, time.perf_counter() - started


def _number(x: Any) -> int | float:
    if isinstance(x, int | np.integer):
        return int(x)
    return round(float(x), 3)


def _row(sc: Scenario, point: int, rep: int, result: RunResult, *, keep_curve: bool) -> Row:
    crossing = None if result.crossing_time is None else sc.date_at(result.crossing_time)
    row: Row = {
        "point": point, "replication": rep,
        "count_at_deadline": _number(result.count_at_deadline),
        "met": bool(result.met),
        "crossing_date": None if crossing is None else crossing.isoformat(),
        "error": None,
    }
    if keep_curve:
        k = sc.target.level_index - 1
        counted = rules.TargetCount.of(sc, result.initial).curve(
            result.at_or_above[:, k], result.upgraded[:, k], result.base()[:, k])
        row["curve"] = [_number(x) for x in counted]
    return row


def failed_row(point: int, rep: int, error: str) -> Row:
    """The row of a run that did not finish, with why."""
    return {"point": point, "replication": rep, "count_at_deadline": None, "met": None,
            "crossing_date": None, "error": error}


def _failed_batch(runs: Sequence[Run], reason: str) -> list[Row]:
    return [failed_row(p, r, reason) for p, _, r in runs]


def run_points(executor: Executor, runs: Sequence[Run], spec: RunSpec,
               on_rows: Callable[[list[Row]], None]) -> None:
    """Do `runs` on `executor`, calling `on_rows` here as batches return, each run once; a
    batch whose worker was lost too often comes back as failed rows."""
    execute(executor, runs, partial(run_batch, spec), on_results=on_rows,
            key=lambda row: (row["point"], row["replication"]), failed=_failed_batch)
