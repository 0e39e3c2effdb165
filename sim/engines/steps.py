"""The fast engine's grid of steps: whole-day steps inside months, with every dated change,
the deadline and the horizon on an edge; and how finely a step is cut where projects can
start and finish inside it."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import ndtr

from sim.engines import rules
from sim.engines.population import N_LEVELS
from sim.scenario import DAYS_PER_YEAR, Scenario

HAZARD_CHANGE = 0.002
"""Largest expected relative change of a decision hazard within one (sub-)step from
projects that start and finish inside it; a step where it would be larger is cut into equal
sub-steps (docs/performance.md measures the accuracy this buys)."""
MAX_SUBSTEPS = 64
SHORT = 0.5
"""Longest step as a share of the shortest tenth of the projects that hold resources: a
unit freed inside a step waits for the next one to be taken again, so where projects last
about a step a unit serves one a step (38% too few at 10-day steps and 6-day projects with
integrators scarce; 0.1% at 2 days, docs/performance.md)."""
_Z10 = 1.2815515655446004  # the standard normal's 90% quantile


def step_days(sc: Scenario) -> float:
    """The fast engine's step in days: `sc.tau_step`, cut to SHORT of the 10% quantile of
    the lognormal duration of every level whose projects hold resources, and to every retry
    wait that failures serve (a failure returns in the middle of the step that its wait,
    counted from the middle of its own, falls in, and in a later step than its own: with
    steps no longer than the wait, that is the wait); at least a day."""
    step = float(sc.tau_step)
    for level in sc.levels:
        if any(units > 0 for _, units in level.needs) and level.implementation_median > 0:
            tenth = (level.implementation_median * DAYS_PER_YEAR / 12
                     * math.exp(-_Z10 * level.implementation_sigma))
            step = min(step, max(1.0, SHORT * tenth))
        fails = level.success < 1 or any(s.level == level.name and s.success_factor < 1
                                         for s in sc.shocks)  # (a shock may make it fail)
        if fails and level.retry > 0:
            step = min(step, max(1.0, level.retry * DAYS_PER_YEAR / 12))
    return step


def step_edges(sc: Scenario) -> tuple[np.ndarray, dict[int, int]]:
    """Step edges in whole days from the start, and the month index of each month-end edge.

    Every month is cut into equal whole-day steps of about `step_days(sc)` days; policy and
    shock dates and the deadline are added as edges where they do not fall on one already.
    """
    ends = [(d - sc.start).days + 1 for d in sc.month_ends()]
    step = step_days(sc)
    days = {0}
    prev = 0
    for end in ends:
        n = max(1, round((end - prev) / step))
        days.update(prev + round((end - prev) * j / n) for j in range(1, n + 1))
        prev = end
    horizon = (sc.end - sc.start).days + 1
    days.add(horizon)
    deadline = (sc.target.deadline - sc.start).days + 1
    extra = [deadline, *(c.day for c in rules.changes(sc))]
    days.update(d for d in extra if 0 < d < horizon)
    edges = np.array(sorted(days), dtype=np.int64)
    index = {int(d): i for i, d in enumerate(edges)}
    return edges, {index[end]: m for m, end in enumerate(ends)}


class SubSteps:
    """Mixed into the fast engine: the share of projects that finish in the step they start
    in, and the sub-steps that keep the peer term from lagging behind them."""

    params: rules.Parameters
    sigma: np.ndarray
    As: np.ndarray
    inv_E: np.ndarray
    inv_Es: np.ndarray
    gain: np.ndarray
    p: np.ndarray
    q: np.ndarray
    w: float
    idle: np.ndarray
    success: np.ndarray

    own: Callable[[np.ndarray], np.ndarray]
    cells: Any

    def _within(self, step_years: float) -> np.ndarray:
        """Per level, the share of projects started in a step of this length that finish
        inside it (the start uniform in the step, the rules' lognormal duration)."""
        half = 0.5 * step_years
        out = np.zeros(N_LEVELS)
        for i in range(N_LEVELS):
            med, sigma = self.params.median_years[i + 1], self.sigma[i]
            if med <= 0 or med <= half and sigma == 0:
                out[i] = 1.0
            elif sigma > 0:
                out[i] = float(ndtr((math.log(half / med)) / sigma))
        return out

    def _substeps(self, step_years: float, within: np.ndarray) -> int:
        """Sub-steps needed so that projects starting and finishing within one change the
        hazards they feed by at most HAZARD_CHANGE (relative) each: such projects only
        count once their sub-step ends, and the peer term must not lag behind them (the
        most any replication of the batch needs)."""
        As = self.As  # [b, s, i]
        pop, own = (As.sum(axis=1) * self.inv_E)[:, None, :], self.own(As) * self.inv_Es
        h = rules.hazard(self.gain, self.p, self.q, self.w, pop, own)
        idle = self.cells.per_level(self.idle)
        new = idle * -np.expm1(-step_years * h) * (self.success * within)  # [b, s, i]
        # Firms reaching level i+1 raise the hazard of level i+1's deciders (cell i) by
        # what they add to its adopter shares.
        d_pop = (new.sum(axis=1) * self.inv_E)[:, None, :]
        d_own = self.own(new) * self.inv_Es
        dh = rules.hazard(self.gain, 0.0, self.q, self.w, d_pop, d_own)
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.where((idle > 0) & (dh > 0), dh / h, 0.0)
        worst = float(change.max()) if change.size else 0.0
        if not math.isfinite(worst):
            return MAX_SUBSTEPS
        return int(min(MAX_SUBSTEPS, max(1, math.ceil(worst / HAZARD_CHANGE))))


__all__ = ["HAZARD_CHANGE", "MAX_SUBSTEPS", "SHORT", "SubSteps", "step_days", "step_edges"]
