"""The exact engine's resources: capacity in whole units, FIFO queues that never let a
project overtake an earlier one on a resource it lacks, and the ticks that wake the queues
when growing capacity adds a unit."""

from __future__ import annotations

import math
from collections import deque
from typing import Any, cast

import simpy

from sim.engines import rules
from sim.engines.calendar import Calendar, Stream


class Resources:
    """Mixed into the exact engine, whose state these read and change."""

    params: rules.Parameters
    env: simpy.Environment
    draw: Stream
    side: Stream
    norm: list[float]
    calendar: Calendar
    trace: list[tuple] | None
    in_use: list[int]
    cap_base: list[float]
    cap_now: list[int]
    cap_from: list[float]
    cap_until: list[float]
    log_growth: list[float]
    tick_pending: list[bool]
    needs: list[Any]
    levels_with_needs: list[int]
    queues: list[deque]
    blocked: set[int]
    mu: list[float]
    sigma: list[float]
    hseq: int
    n_starts: int
    n_waiting: int
    max_waiting: int
    seq: int
    ticked: bool
    turnover: bool
    live: dict[int, tuple[int, int, int]]
    _total: Any

    def _in_flight(self, flight: list[tuple[int, int, int, int]]) -> None:
        """Start the projects under way at the start, (s, k, code, n), with the time they have
        left (the rules' law); those the resources cannot hold wait first in line, in order of
        level. Within a level nothing orders them: they are taken in a uniformly drawn order
        (so which run and which wait does not depend on how segments are numbered)."""
        rng = self.side.rng
        for k in sorted({f[1] for f in flight}):
            mine = [(s, c) for s, kk, c, n in flight if kk == k for _ in range(n)]
            order = rng.permutation(len(mine)).tolist()
            left = rules.residual_years(rng, float(self.params.median_years[k]),
                                        float(self.sigma[k]), len(mine)).tolist()
            for j, x in zip(order, left, strict=True):
                s, c = mine[j]
                if all(self.in_use[r] + units <= self._capacity(r, 0.0)
                       for r, units in self.needs[k]):
                    self._start(s, k, c, 0.0, x)
                else:
                    self.seq += 1
                    self.queues[k].append((self.seq, s, c))
                    self.n_waiting += 1
        self.max_waiting = self.n_waiting
        if self.n_waiting:  # they wait from now: mark what they lack, wake them on growth
            self._serve_queues(0.0)

    def _capacity(self, r: int, t: float) -> int:
        """Units of resource r at time t (the rules' capacity), cached until the next whole
        unit is gained or lost."""
        if self.cap_from[r] <= t < self.cap_until[r]:
            return self.cap_now[r]
        factor = float(self.params.capacity_factor[r])
        g = self.log_growth[r]
        cap = rules.capacity_units(self.cap_base[r], factor, g, t)
        self.cap_now[r] = cap
        self.cap_from[r] = t
        self.cap_until[r] = rules.next_unit_change(self.cap_base[r], factor, g, cap)
        return cap

    def _start(self, s: int, k: int, c: int, t: float, duration: float | None = None) -> None:
        """Start a project of segment s on level k (ceiling code c) at time t: take its units
        and put its completion in the calendar (after `duration`, or the rules' law)."""
        in_use, needs = self.in_use, self.needs[k]
        if self.trace is None:
            for r, units in needs:
                in_use[r] += units
        else:
            for r, units in needs:
                in_use[r] += units
                self.trace.append(("use", t, r, in_use[r], self._capacity(r, t)))
        if duration is None:
            mu = self.mu[k]
            if mu == -math.inf:
                duration = 0.0
            else:
                norm = self.norm
                duration = math.exp(mu + self.sigma[k] * (norm.pop() if norm
                                                          else self.draw.normal()))
        self.hseq = h = self.hseq + 1
        self.calendar.push((t + duration, h, s, k, c))
        if self.turnover:
            self.live[h] = (s, k, c)
        self.n_starts += 1

    def _serve_queues(self, t: float) -> None:
        """Start waiting projects in FIFO order; one never overtakes an earlier project on a
        resource that the earlier one lacks."""
        queues = self.queues
        blocked: set[int] = set()
        self.blocked = blocked
        free = [self._capacity(r, t) - self.in_use[r] for r in range(len(self.in_use))]
        heads = [k for k in self.levels_with_needs if queues[k]]
        while heads:
            k = heads[0]
            if len(heads) > 1:
                first = queues[k][0][0]
                for lv in heads:
                    if queues[lv][0][0] < first:
                        k, first = lv, queues[lv][0][0]
            ok = True
            for r, units in self.needs[k]:
                if free[r] < units:
                    ok = False
                    if r not in blocked:
                        blocked.add(r)
                        self._schedule_tick(r, t)
                elif r in blocked:
                    ok = False
            if not ok:
                heads.remove(k)
                continue
            _, s, c = queues[k].popleft()
            self.n_waiting -= 1
            for r, units in self.needs[k]:
                free[r] -= units
            self._start(s, k, c, t)
            if not queues[k]:
                heads.remove(k)

    def _schedule_tick(self, r: int, t: float) -> None:
        """Wake the queue when growing capacity next adds a unit of resource r."""
        if self.tick_pending[r] or self.log_growth[r] <= 0:
            return
        self._capacity(r, t)
        when = self.cap_until[r]
        if math.isinf(when):
            return
        self.tick_pending[r] = True
        self.ticked = True
        ev = self.env.timeout(max(when, t) - self.env.now, r)
        ev.callbacks.append(self._tick)

    def _tick(self, ev: simpy.Event) -> None:
        self.tick_pending[cast(int, ev.value)] = False  # the timeout carries its resource
        if self.n_waiting:
            self._serve_queues(self.env.now)
            self._total()
