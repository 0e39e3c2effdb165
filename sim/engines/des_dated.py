"""The exact engine's dated processes: plain simpy generators that switch policies and shocks,
record month ends, review regional quotas and take the count at the deadline."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from sim.engines import rules
from sim.scenario import DAYS_PER_YEAR, Scenario


class DatedProcesses:
    """Mixed into the exact engine, whose state these read and switch."""

    sc: Scenario
    env: simpy.Environment
    params: rules.Parameters
    budgets: rules.Budgets
    quotas: rules.Quotas
    horizon_days: int
    months: list[float]
    A: list[int]
    As: list[list[int]]
    exact: list[list[int]]
    unmoved: list[int]
    unmoved_r: list[list[int]]
    t_level: int
    push: np.ndarray
    curve: np.ndarray
    upgraded: np.ndarray
    by_segment: np.ndarray
    unmoved_month: np.ndarray
    count_at_deadline: float
    region_at_deadline: np.ndarray
    deadline_readings: np.ndarray | None
    initial: np.ndarray
    policy_active: list[bool]
    cap_until: list[float]
    n_waiting: int
    _levels: Callable[[], None]
    _hazards: Callable[[int], None]
    _serve_queues: Callable[[float], None]
    _total: Callable[[], None]
    _regain: Callable[[], None]
    _count: Callable[[], float]
    turnover: bool
    rule: rules.Turnover
    survivors: np.ndarray
    region_survivors: np.ndarray
    _survivors: Callable[[], np.ndarray]
    _demography: Callable[[int, float], None]

    def _dated_process(self, kind: str, j: int):
        """Switch policy or shock j on for the part of its window inside the run (the rules'
        `window`), then off; a policy whose budget is spent stays off."""
        item: Any = (self.sc.policies if kind == "policy" else self.sc.shocks)[j]  # by kind
        span = rules.window(self.sc, *((item.start, item.end) if kind == "policy"
                                       else (item.at, item.end)))
        if span is None:
            return
        begin, finish = (d / DAYS_PER_YEAR for d in span)
        if begin > self.env.now:
            yield self.env.timeout(begin - self.env.now)
        switch = self._set_policy if kind == "policy" else self._set_shock
        if kind == "shock" or self.budgets.has_money(j):
            switch(j, True)
            if item.end is not None and span[1] < self.horizon_days:  # as in rules.changes
                yield self.env.timeout(finish - self.env.now)
                switch(j, False)

    def _set_policy(self, j: int, active: bool) -> None:
        """Switch policy j on or off (by its dates, or off when its budget is spent)."""
        if self.policy_active[j] == active:
            return
        self.policy_active[j] = active
        self._regain()

    def _set_shock(self, i: int, on: bool) -> None:
        """Apply (on) or lift (off) shock i: the level parameters or capacity it changes."""
        self.params.set_shock(i, on)
        r, k = self.params.shock_targets(i)
        if r is not None:
            self.cap_until[r] = -math.inf  # recompute from the new factor
        if k is not None:
            self._levels()
            self._hazards(k)
        if self.n_waiting:
            self._serve_queues(self.env.now)
        self._total()

    def _month_process(self):
        for m, when in enumerate(self.months):
            yield self.env.timeout(when - self.env.now)
            self.curve[m] = self.A[1:]
            self.upgraded[m] = self.curve[m] - rules.unmoved_at_or_above(self.unmoved)
            self.by_segment[m] = self.exact
            self.unmoved_month[m] = self.unmoved_r
            if self.turnover:
                self.region_survivors[m] = self._survivors()
                self.survivors[m] = self.region_survivors[m].sum(axis=0)
                if m < len(self.rule.days):
                    self._demography(m, self.env.now)

    def _region_counts(self) -> np.ndarray:
        """Each region's target count now."""
        k, par = self.t_level, self.params
        at = par.by_region(np.array([a[k] for a in self.As]))
        unmoved = np.array([sum(u[k:]) for u in self.unmoved_r])
        survivors = self._survivors()[:, k - 1] if self.turnover else None
        return self.quotas.region_counts(at, unmoved, survivors)

    def _quota_process(self):
        """Review the regions against their quotas on the rules' review days."""
        for day in self.quotas.days:
            yield self.env.timeout(day / DAYS_PER_YEAR - self.env.now)
            push = self.quotas.push(self.env.now, self._region_counts())
            if not np.array_equal(push, self.push):
                self.push = push
                self._regain()

    def _deadline_process(self):
        yield self.env.timeout(self.sc.deadline)
        self.count_at_deadline = self._count()
        self.region_at_deadline = self._region_counts()
        base = self._survivors().sum(axis=0) if self.turnover else self.initial
        self.deadline_readings = rules.readings_now(self.A[1:], base, self.unmoved)
