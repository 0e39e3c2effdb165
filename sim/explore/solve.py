"""`sim solve`: the smallest (or largest) value of one parameter at which P(target met) >= P.

A noise-aware bisection. Each evaluated value gets replications until its Wilson 95%
interval lies wholly above or below P (doubling up to a cap); only decided values move the
bracket, so the bracket [below, above] holds the threshold unless one of the decisions is
wrong. Replication r uses the same random stream at every value (common random numbers),
which makes differences between values far less noisy than independent streams would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.analysis.verdict import wilson
from sim.engines import DETERMINISTIC
from sim.execution.executor import Executor
from sim.explore.design import Range, SweepError
from sim.explore.runs import RunSpec, run_points
from sim.readout.shares import share_decimal
from sim.scenario import Scenario

ABOVE, BELOW, UNDECIDED = "above", "below", "undecided"


@dataclass
class Evaluation:
    """The runs at one value of the parameter."""

    value: float | int
    u: float  # position in the search direction: 0 = start of the range, 1 = its end
    replications: int = 0
    met: int = 0
    failed: int = 0
    decision: str = UNDECIDED
    count_total: float = 0.0  # sum of the counted firms at the deadline over the runs

    @property
    def count_mean(self) -> float:
        return self.count_total / self.replications if self.replications else math.nan

    @property
    def p_met(self) -> float:
        return self.met / self.replications if self.replications else math.nan

    def interval(self, deterministic: bool) -> tuple[float, float]:
        """P(met)'s 95% interval: Wilson, or the point itself for a deterministic engine."""
        if deterministic and self.replications:
            return (self.p_met, self.p_met)
        return wilson(self.met, self.replications)

    def as_dict(self, deterministic: bool) -> dict[str, Any]:
        lo, hi = self.interval(deterministic)
        return {"value": self.value, "replications": self.replications, "met": self.met,
                "failed": self.failed, "p_met": self.p_met, "p_met_lo": lo, "p_met_hi": hi,
                "count_mean": self.count_mean, "decision": self.decision}


@dataclass
class SolveResult:
    """What `solve` found; `value` is None when P is not reached within the range."""

    parameter: str
    probability: float
    value: float | int | None
    ci95: tuple[float, float] | None
    reached: bool
    monotone: bool
    message: str
    evaluations: list[Evaluation] = field(default_factory=list)
    fitted_u: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fitted_p: np.ndarray = field(default_factory=lambda: np.zeros(0))


class Solver:
    """State of one search: evaluations by position, and the executor that runs them."""

    def __init__(self, scenario: Scenario, rng: Range, probability: float, *, engine: str,
                 replications: int, max_replications: int, decreasing: bool,
                 executor: Executor,
                 on_runs: Callable[[int], None] = lambda n: None):
        self.sc = scenario
        self.rng = rng
        self.probability = probability
        self.engine = engine
        self.deterministic = engine in DETERMINISTIC
        self.replications = 1 if self.deterministic else replications
        self.cap = 1 if self.deterministic else max(replications, max_replications)
        self.decreasing = decreasing
        self.executor = executor
        self.on_runs = on_runs
        self.evals: dict[float | int, Evaluation] = {}

    def value_at(self, u: float) -> float | int:
        """The parameter's value at position `u` along the search direction."""
        return self.rng.value(1.0 - u if self.decreasing else u)

    def evaluate(self, u: float, n: int) -> Evaluation:
        """Bring the value at `u` to `n` replications (runs already done are kept)."""
        value = self.value_at(u)
        ev = self.evals.get(value)
        if ev is None:
            ev = self.evals[value] = Evaluation(value, u)
        if ev.replications >= n:
            return ev
        point = list(self.evals).index(value)
        runs = [(point, (value,), r) for r in range(ev.replications + ev.failed, n + ev.failed)]

        errors: list[str] = []

        def take(rows: list[dict[str, Any]]) -> None:
            for row in rows:
                if row["error"] is not None:
                    ev.failed += 1
                    errors.append(str(row["error"]))
                else:
                    ev.replications += 1
                    ev.met += bool(row["met"])
                    ev.count_total += float(row["count_at_deadline"])
            self.on_runs(len(rows))

        spec = RunSpec(self.sc.raw, self.sc.source, self.engine, self.sc.seed, (self.rng.key,),
                       common_random_numbers=True)
        run_points(self.executor, runs, spec, take)
        if ev.replications == 0:  # (a value the scenario cannot take: bad input)
            raise SweepError(f"--vary {self.rng.key}: every run at {value} failed"
                             + (f": {errors[0]}" if errors else ""))
        self.classify(ev)
        return ev

    def classify(self, ev: Evaluation) -> None:
        """Above or below P when the Wilson 95% interval excludes P, else undecided."""
        lo, hi = ev.interval(self.deterministic)
        if self.deterministic:
            ev.decision = ABOVE if ev.p_met >= self.probability else BELOW
        elif lo >= self.probability:
            ev.decision = ABOVE
        elif hi < self.probability:
            ev.decision = BELOW
        else:
            ev.decision = UNDECIDED

    def decide(self, u: float) -> Evaluation:
        """Add replications (doubling) until P(met) is confidently above or below P."""
        n = self.replications
        while True:
            ev = self.evaluate(u, n)
            if ev.decision != UNDECIDED or ev.replications >= self.cap:
                return ev
            n = min(self.cap, 2 * ev.replications)

    def tolerance_u(self, tolerance: float | None) -> float:
        """The bracket width (in positions) at which the bisection stops."""
        width = self.rng.hi - self.rng.lo
        if self.rng.integer:
            return 1.0 / max(width, 1.0)
        if tolerance is None:
            return 1.0 / 128
        if self.rng.log:
            return tolerance / width  # a fair rule of thumb on a log axis
        return tolerance / width if width > 0 else 1.0


def solve(scenario: Scenario, rng: Range, probability: float, *, engine: str = "des",
          replications: int = 50, max_replications: int = 800, decreasing: bool = False,
          tolerance: float | None = None, scan: int = 5, executor: Executor,
          on_runs: Callable[[int], None] = lambda n: None) -> SolveResult:
    """Find the smallest (largest, if `decreasing`) value in the range at which P(met) >= P."""
    s = Solver(scenario, rng, probability, engine=engine, replications=replications,
               max_replications=max_replications, decreasing=decreasing, executor=executor,
               on_runs=on_runs)
    # A coarse scan with the initial replications: a bracket and the monotonicity check.
    grid = [i / (scan - 1) for i in range(scan)] if scan >= 2 else [0.0, 1.0]
    for u in grid:
        s.evaluate(u, s.replications)
    end, start = s.decide(1.0), s.decide(0.0)
    word = "smallest" if not decreasing else "largest"
    key = rng.key
    if start.decision == ABOVE:
        return _finish(s, start.value, (start.value, start.value), True,
                       f"{key}: P(met) >= {probability:g} already at the "
                       f"{'low' if not decreasing else 'high'} end of the range ({start.value:g})")
    # Bracket: the first scanned value above P, and the last one below P before it.
    above = [u for u in grid if s.evals[s.value_at(u)].decision == ABOVE]
    if not above:
        told = ("is not reached" if end.decision == BELOW else
                "is not shown to be reached (the high end cannot be told from it)")
        return _finish(s, None, None, False,
                       f"{key}: P(met) >= {probability:g} {told} within "
                       f"[{rng.lo:g}, {rng.hi:g}]: at {end.value:g} P(met) = "
                       f"{share_decimal(end.p_met)} {_ci(end, s)}, mean count at the deadline "
                       f"{end.count_mean:,.0f} of {scenario.target.firms:,}")
    b = above[0]
    a = max((u for u in grid if u < b and s.evals[s.value_at(u)].decision == BELOW), default=0.0)
    tol = s.tolerance_u(tolerance)
    undecided: Evaluation | None = None
    while b - a > tol:
        m = _midpoint(a, b, s)
        if m is None:
            break
        ev = s.decide(m)
        if ev.decision == ABOVE:
            b = m
        elif ev.decision == BELOW:
            a = m
        else:
            undecided = ev
            break
    va, vb = s.value_at(a), s.value_at(b)
    ci = (min(va, vb), max(va, vb))
    value = undecided.value if undecided is not None else _crossing(s, a, b)
    note = ("" if undecided is None else f"; at {undecided.value:g} P(met) = "
            f"{share_decimal(undecided.p_met)} could not be told from {probability:g} with "
            f"{undecided.replications} runs")
    return _finish(s, value, ci, True,
                   f"{word} {key} with P(met) >= {probability:g}: {value:g} "
                   f"(95% interval {ci[0]:g} to {ci[1]:g}){note}")


def _midpoint(a: float, b: float, s: Solver) -> float | None:
    m = (a + b) / 2
    if s.rng.integer:
        va, vb, vm = s.value_at(a), s.value_at(b), s.value_at(m)
        if vm in (va, vb):
            return None
    return m


def _ci(ev: Evaluation, s: Solver) -> str:
    lo, hi = ev.interval(s.deterministic)
    return f"[{share_decimal(lo)}, {share_decimal(hi)}] over {ev.replications} runs"


def isotonic(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[Any]] = []  # [mean, weight, count]: floats and an int
    for yi, wi in zip(y, w, strict=True):
        blocks.append([float(yi), float(wi), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([[m] * c for m, _, c in blocks])


def _fit(s: Solver) -> tuple[np.ndarray, np.ndarray]:
    evs = sorted(s.evals.values(), key=lambda e: e.u)
    u = np.array([e.u for e in evs])
    p = np.array([e.p_met for e in evs])
    w = np.array([e.replications for e in evs], dtype=float)
    return u, isotonic(p, w)


def _crossing(s: Solver, a: float, b: float) -> float | int:
    """Where the monotone fit reaches P, interpolated linearly, kept inside [a, b]."""
    u, fit = _fit(s)
    cross = b
    for i in range(1, len(u)):
        if fit[i] >= s.probability > fit[i - 1]:
            t = (s.probability - fit[i - 1]) / (fit[i] - fit[i - 1])
            cross = u[i - 1] + t * (u[i] - u[i - 1])
            break
    return s.value_at(min(max(cross, a), b))


def _monotone(s: Solver) -> bool:
    """No value whose P(met) is confidently higher than that of a value further along."""
    evs = sorted(s.evals.values(), key=lambda e: e.u)
    for i, ei in enumerate(evs):
        lo_i = ei.interval(s.deterministic)[0]
        for ej in evs[i + 1:]:
            if lo_i > ej.interval(s.deterministic)[1]:
                return False
    return True


def _finish(s: Solver, value: float | int | None, ci: tuple[float, float] | None,
            reached: bool, message: str) -> SolveResult:
    monotone = _monotone(s)
    if not monotone:
        direction = "decreasing" if s.decreasing else "increasing"
        message += (f"; warning: P(met) is not monotone ({direction}) in {s.rng.key} over the "
                    "range, so other values may also qualify (see the evaluations)")
    u, fit = _fit(s)
    evs = sorted(s.evals.values(), key=lambda e: e.u)
    return SolveResult(s.rng.key, s.probability, value, ci, reached, monotone, message, evs, u,
                       fit)


def result_json(res: SolveResult, *, deterministic: bool, extra: dict[str, Any]) -> dict:
    """solve.json: `parameter`, `value`, `ci95`, `probability`, `evaluations` and context."""
    evs = sorted(res.evaluations, key=lambda e: e.value)
    return {
        "parameter": res.parameter,
        "value": res.value,
        "ci95": None if res.ci95 is None else list(res.ci95),
        "probability": res.probability,
        "evaluations": [e.as_dict(deterministic) for e in evs],
        "reached": res.reached,
        "monotone": res.monotone,
        "message": res.message,
        "runs": sum(e.replications + e.failed for e in evs),
        **extra,
    }


def fitted_curve(res: SolveResult, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The monotone fit against parameter values, sorted by value (for the figure)."""
    order = np.argsort(values)
    return np.asarray(values, dtype=float)[order], res.fitted_p[order]
