"""The runs of a sweep or a solve: plain data in, plain rows out, the same on this process,
a local worker or a Dask worker. A run's stream depends only on the seed and its key:
`(point, replication)`, or `(replication,)` with common random numbers (solve). An engine
that runs replications together (tau) runs whole blocks of `batch_size` replications of a
point, drawn from `(point, BLOCK, block)` (or `(BLOCK, block)`), whichever of them are
asked for: a replication's result never depends on the others asked for with it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from sim.engines import RunResult, batched, engines, rules
from sim.execution.batches import execute
from sim.execution.executor import Executor
from sim.execution.pool import settle
from sim.execution.seeds import BLOCK, block_of, replication_rng
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
    together = batched(spec.engine)
    scenarios: dict[int, Scenario | Exception] = {}
    blocks: dict[tuple[int, int], dict[int, RunResult]] = {}
    size: dict[int, int] = {}  # replications per block, per point
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
            if together is None:
                result = engine(sc, replication_rng(spec.seed, *key))
            else:
                if point not in size:
                    size[point] = together[1](sc)
                b, members = block_of(rep, size[point])
                if (point, b) not in blocks:
                    where = (BLOCK, b) if spec.common_random_numbers else (point, BLOCK, b)
                    blocks[point, b] = dict(zip(members, together[0](
                        sc, replication_rng(spec.seed, *where), len(members)), strict=True))
                result = blocks[point, b][rep]
            rows.append(_row(sc, point, rep, result, keep_curve=rep < spec.curve_reps))
        except Exception as exc:  # noqa: BLE001 - a failed run is kept with its error
            rows.append(failed_row(point, rep, f"{type(exc).__name__}: {exc}"))
    elapsed = time.perf_counter() - started
    settle()
    return rows, elapsed


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
    batch whose worker was lost too often comes back as failed rows. With an engine that
    runs replications together, the runs of one block go to one worker together."""
    if batched(spec.engine) is None:
        execute(executor, runs, partial(run_batch, spec), on_results=on_rows,
                key=lambda row: (row["point"], row["replication"]), failed=_failed_batch)
        return
    size: dict[int, int] = {}
    grouped: dict[tuple[int, int], list[Run]] = {}
    for run in runs:
        point = run[0]
        if point not in size:
            size[point] = _block_size(spec, run[1])
        grouped.setdefault((point, run[2] // size[point]), []).append(run)
    execute(executor, list(grouped.values()), partial(_run_groups, spec), on_results=on_rows,
            key=lambda row: (row["point"], row["replication"]), failed=_failed_groups)


def _block_size(spec: RunSpec, values: tuple[Any, ...]) -> int:
    """Replications the batched engine runs together at a point (1 if it cannot say)."""
    found = batched(spec.engine)
    try:
        return found[1](point_scenario(spec.raw, spec.keys, values, spec.source)) if found else 1
    except Exception:  # noqa: BLE001 - the point's runs will record the error
        return 1


def _run_groups(spec: RunSpec, groups: Sequence[Sequence[Run]]) -> tuple[list[Row], float]:
    return run_batch(spec, [r for g in groups for r in g])


def _failed_groups(groups: Sequence[Sequence[Run]], reason: str) -> list[Row]:
    return _failed_batch([r for g in groups for r in g], reason)
