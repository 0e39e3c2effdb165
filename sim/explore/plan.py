"""A sweep's plan and its execution: which runs each point needs (fixed, or more until a
precision is reached), done round by round on an executor and journalled as they return,
so an interrupted sweep resumes exactly where it stopped."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.analysis.verdict import wilson
from sim.engines import DETERMINISTIC
from sim.execution.executor import Executor
from sim.explore.design import Design, check_axes
from sim.explore.runs import RunSpec, run_points
from sim.scenario import Scenario
from sim.store.journal import Journal


def needed_replications(met: int, n: int, half_width: float, cap: int) -> int:
    """Smallest replication count (>= n, <= cap) at which the Wilson half-width at the
    current share met/n would be at most `half_width`; grows by at least a quarter."""
    if n and _half(met / n, n) <= half_width:
        return n
    p = met / n if n else 0.5
    target = max(n + 1, math.ceil(n * 1.25))
    while target < cap and _half(p, target) > half_width:
        target = math.ceil(target * 1.25)
    return min(target, cap)


def _half(p: float, n: int) -> float:
    lo, hi = wilson(round(p * n), n)
    return (hi - lo) / 2


def replication_plan(rows: Mapping[tuple[int, int], Mapping[str, Any]], n_points: int,
                     replications: int, precision: float | None, cap: int,
                     deterministic: bool) -> Iterable[list[int]]:
    """Yield, round by round, the replication count wanted per point. Round k's counts
    depend only on the runs of round k-1 (not on any others already in the journal), so a
    resumed sweep asks for exactly what an uninterrupted one would."""
    wanted = [1 if deterministic else replications] * n_points
    yield wanted
    if precision is None or deterministic:
        return
    while True:
        nxt = []
        for j, n in enumerate(wanted):
            ok = [rows[(j, r)] for r in range(n) if rows[(j, r)].get("error") is None]
            met = sum(bool(r["met"]) for r in ok)
            more = needed_replications(met, len(ok), precision, cap)
            nxt.append(n + max(0, more - len(ok)) if len(ok) < cap else n)
        if nxt == wanted:
            return
        wanted = [min(x, cap) for x in nxt]
        yield wanted


@dataclass
class SweepState:
    """What has been done so far: rows by (point, replication), and how they are saved."""

    journal: Journal
    rows: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)

    def add(self, new_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Journal and keep the rows not seen before; return them."""
        fresh = [r for r in new_rows if (r["point"], r["replication"]) not in self.rows]
        if fresh:
            self.journal.append(fresh)
            for r in fresh:
                self.rows[(r["point"], r["replication"])] = r
        return fresh


@dataclass(frozen=True)
class SweepPlan:
    """Everything that defines a sweep's results; its `identity` goes in the manifest."""

    scenario: Scenario
    design: Design
    engine: str
    replications: int
    samples: int
    precision: float | None = None
    max_replications: int = 1000
    axes: tuple[str, str] | None = None
    """The reachability map's axes when asked (--axes); not part of the identity: a sweep
    resumed with other axes is the same sweep, drawn differently."""

    def __post_init__(self) -> None:
        if self.axes:  # refused before anything runs: SweepError, one line
            check_axes(self.design.keys, self.axes)

    @property
    def deterministic(self) -> bool:
        return self.engine in DETERMINISTIC

    def identity(self, version: str, scenario_sha256: str) -> dict[str, Any]:
        """What must match for a folder's runs to be resumed: the manifest's keys."""
        t = self.scenario.target
        return {
            "kind": "sweep", "scenario": self.scenario.name,
            "scenario_sha256": scenario_sha256, "version": version, "engine": self.engine,
            "seed": self.scenario.seed, "design": self.design.name, "samples": self.samples,
            "base_samples": self.design.base,
            "replications": 1 if self.deterministic else self.replications,
            "precision": self.precision,
            "max_replications": self.max_replications if self.precision else None,
            "ranges": [r.as_dict() for r in self.design.ranges],
            "points": [list(p) for p in self.design.points],
            "target": {"firms": t.firms, "level": t.level, "deadline": t.deadline.isoformat(),
                       "count": t.count},
        }

    def runs_upper_bound(self) -> int:
        """Most runs the sweep can take (with a precision: every point at its cap)."""
        per_point = self.max_replications if self.precision else self.replications
        return len(self.design.points) * (1 if self.deterministic else per_point)


def run_sweep(plan: SweepPlan, out: Path, executor: Executor, *,
              on_progress: Callable[[int, int], None] = lambda done, total: None
              ) -> dict[tuple[int, int], dict[str, Any]]:
    """Do every run of `plan` not yet in `out`'s journal (all of them for a new folder),
    round by round when a precision is asked; return all rows by (point, replication)."""
    n_points = len(plan.design.points)
    state = SweepState(Journal(out / "runs.jsonl"))
    state.rows = {k: v for k, v in state.journal.read().items() if 0 <= k[0] < n_points}
    sc = plan.scenario
    spec = RunSpec(sc.raw, sc.source, plan.engine, sc.seed, plan.design.keys)
    for wanted in replication_plan(state.rows, n_points, plan.replications, plan.precision,
                                   plan.max_replications, plan.deterministic):
        missing = [(j, plan.design.points[j], r) for j in range(n_points)
                   for r in range(wanted[j]) if (j, r) not in state.rows]
        total = sum(wanted)
        done = [total - len(missing)]
        on_progress(done[0], total)

        def take(rows: list[dict[str, Any]], done=done, total=total) -> None:
            done[0] += len(state.add(rows))
            on_progress(done[0], total)

        if missing:
            run_points(executor, missing, spec, take)
    return state.rows
