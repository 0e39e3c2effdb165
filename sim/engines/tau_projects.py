"""The fast engine's projects: the tables of completions by step, filing started projects
under the step they will finish in, and the FIFO queue for resources (served per
replication only where capacity binds)."""

from __future__ import annotations

import functools
from collections import deque
from typing import Any

import numpy as np

from sim.engines import rules
from sim.engines.population import N_LEVELS
from sim.engines.tau_kernels import file_projects, serve_in_order
from sim.scenario import DAYS_PER_YEAR

_CROWD = 50_000  # projects of one cell in one step above which one multinomial files them


@functools.lru_cache(maxsize=256)
def _by_offset(median: float, sigma: float, width: int, n_days: int) -> np.ndarray:
    """P(a project started uniformly in [0, width) days, of lognormal duration (median in
    days, sigma), has completed by day x), x = 0..n_days: the law every whole-day step
    files by (a process computes it once per step length)."""
    x = np.arange(n_days + 1, dtype=float)
    out = np.maximum.accumulate(np.minimum(rules.started_cdf(x, 0.0, width, median, sigma),
                                           1.0))
    out.flags.writeable = False
    return out


class TauProjects:
    """Mixed into the fast engine, whose arrays these read and change."""

    rng: np.random.Generator
    params: rules.Parameters
    B: int
    days: np.ndarray
    edges: np.ndarray
    units: np.ndarray
    level_k: np.ndarray
    queued_levels: list[int]
    in_use: np.ndarray
    queue: Any
    flight: np.ndarray
    max_waiting: np.ndarray
    cap_steps: np.ndarray
    in_use_start: np.ndarray

    def _capacities(self) -> np.ndarray:
        """Capacity of every resource at the start of every step (rows), for the present
        shock factors; recomputed when a shock changes them."""
        par = self.params
        return rules.capacity_units(par.capacity_base, par.capacity_factor, par.log_growth,
                                    self.edges[:, None])

    def _tables(self, shape: tuple[int, ...]) -> None:
        """Completions and returns by step, and what they hold in the rows to come."""
        days = self.days
        n_steps = len(days) - 1
        level = self.level_k
        self.units_k = self.units[level]  # [k, resource]: units a project of cell k holds
        self.queued_k = np.isin(level, self.queued_levels)  # cells whose projects may wait
        # Step of each day (one past the end: beyond the horizon).
        self.step_of_day = np.append(np.repeat(np.arange(n_steps), np.diff(days)), n_steps)
        self.n_days = int(days[-1])
        # Both indexed [b, s, k, step]. Completions are stored cell-major, the step last: a
        # cell's projects are filed, and firms leaving found, within a few cache lines.
        # Returns are stored step-major (a view): a step's failures of one level all return
        # in one later step, and a step's returns are read together.
        # (int32: half the memory of tables that are mostly empty; no cell of one step
        # comes near 2**31 projects)
        self.pipe = np.zeros((self.B, *shape, n_steps + 1), dtype=np.int32)
        self.ret = np.moveaxis(np.zeros((n_steps + 1, self.B, *shape), dtype=np.int32), 0, -1)
        # What the two tables hold in the rows still to come, per cell (firms that leave are
        # drawn from these, not from the mostly empty tables).
        self.filed = np.zeros((self.B, *shape), dtype=np.int64)
        self.returning = np.zeros((self.B, *shape), dtype=np.int64)
        self.quick = False  # projects filed under the step they started in (to finish now)

    def _start(self, X: np.ndarray, m: int, span: tuple[float, float], *,
               residual: bool = False) -> None:
        """File the projects X [b, s, k] started in step m during `span` (days) under
        their completion steps; `residual`: projects under way at the start, with the time
        they have left (the rules' law, `rules.residual_years`)."""
        # Dated uniformly within the (sub-)step: new decisions happen during it, and the units
        # that waiting projects take were freed by completions during it. Each project's
        # completion step is drawn from the law of that start plus its lognormal duration
        # (`_completion_cdf`), in one compiled pass (`tau_kernels.file_projects`).
        flat = np.flatnonzero(X)
        if flat.size == 0:
            return
        self.filed += X
        counts = X.ravel()[flat]
        cdf, K = self._completion_cdf(m, span, residual), self.level_k.size
        if counts.max() > _CROWD:  # one multinomial draw for the cell: the same law
            for cell in flat[counts > _CROWD]:
                probs = np.diff(cdf[self.level_k[cell % K]], prepend=0.0)
                drawn = self.rng.multinomial(int(X.ravel()[cell]), probs / probs.sum())
                self.pipe.reshape(X.size, -1)[cell, m:] += drawn.astype(np.int32)
                self.quick |= drawn[0] > 0
            flat, counts = flat[counts <= _CROWD], counts[counts <= _CROWD]
        self.quick |= file_projects(self.rng, self.pipe.reshape(X.size, -1), flat, counts,
                                    self.level_k[flat % K], cdf, m) > 0
        if self.units.size:
            self.in_use += X.sum(axis=1) @ self.units_k

    def _completion_cdf(self, m: int, span: tuple[float, float], residual: bool
                        ) -> np.ndarray:
        """[level decided, j]: P(a project of the level started in step m during `span`
        completes by the end of step m + j); the last column, the row beyond the horizon,
        is 1. Residual: a project under way at the start (`rules.residual_cdf`). Projects
        are filed by it: the law of a uniform start and a lognormal duration per project."""
        d0, d1 = span
        ends = self.days[m + 1:]  # upper edges of steps m, m+1, ...
        par = self.params
        out = np.ones((N_LEVELS, len(ends) + 1))
        whole = not residual and d0 == int(d0) and d1 == int(d1)
        for i in range(N_LEVELS):
            med, sigma = par.median_years[i + 1] * DAYS_PER_YEAR, float(par.sigma[i + 1])
            if whole:  # whole-day spans: from the law by day offset, computed once
                out[i, :-1] = _by_offset(med, sigma, int(d1 - d0), self.n_days)[ends - int(d0)]
                continue
            if residual:
                c = rules.residual_cdf(ends - d0, med, sigma)
            else:
                c = rules.started_cdf(ends.astype(float), d0, d1, med, sigma)
            out[i, :-1] = np.maximum.accumulate(np.minimum(c, 1.0))
        return out

    def _room(self, m: int, span: tuple[float, float], start: bool = False) -> np.ndarray:
        """Units of each resource that projects starting in step m during `span` (days) may
        hold: the capacity at the span's end (with `start`, at its start). Starts are dated
        across the span, as the units they take were freed or added across it. Where
        capacity grows, the exact engine starts a waiting project at the tick that adds its
        unit: with the capacity at the span's start those units would wait a span. Where it
        shrinks, a unit freed is retired while more are held than the capacity allows, so
        what is held follows the capacity down: with the capacity at the start, what the
        fast engine held lagged it by a span."""
        if start:
            day, row = span[0], m
        else:
            day, row = span[1], m + 1
        if day == self.days[row]:
            return self.cap_steps[row]
        par = self.params
        return rules.capacity_units(par.capacity_base, par.capacity_factor, par.log_growth,
                                    day / DAYS_PER_YEAR)

    def _serve(self, m: int, new: np.ndarray, span: tuple[float, float]) -> None:
        """Start waiting projects, oldest step first, then this step's new ones `new`
        [b, s, k], while units last. A replication whose waiting projects all fit starts
        them all; the others are served one by one (`_serve_one`)."""
        totals = new.sum(axis=(1, 2))
        if totals.any():
            self.queue.append([new, totals])
        if not self.queue:
            return
        new_before = new.copy()  # (the queue's entry for it is emptied as it is served)
        free = self._room(m, span) - self.in_use  # [b, resource]
        demand = sum(e[0].sum(axis=1) for e in self.queue) @ self.units_k
        fits = np.all((demand <= free) | (demand == 0), axis=1)
        started = np.zeros_like(self.queue[0][0])
        for entry in self.queue:
            started[fits] += entry[0][fits]
            entry[0][fits] = 0
        for b in np.flatnonzero(~fits & (sum(e[1] for e in self.queue) > 0)):
            started[b] = self._serve_one(int(b), free[b].copy())
        for entry in self.queue:
            entry[1] = entry[0].sum(axis=(1, 2))
        waits = sum(e[1] for e in self.queue) > 0  # [b]: demand left over
        # (emptied entries by identity: a later one empties while an earlier one waits)
        self.queue = deque(e for e in self.queue if e[1].any())
        # Started from projects that waited already: all but those of the new entry (which,
        # when nothing new was decided, was not queued and is unchanged).
        old = started - (new_before - new)
        self._start_served(started, old, totals, waits, m, span)
        self.max_waiting = np.maximum(self.max_waiting, sum((e[1] for e in self.queue),
                                                            np.zeros(self.B, dtype=np.int64)))

    def _start_served(self, started: np.ndarray, old: np.ndarray, n_new: np.ndarray,
                      waits: np.ndarray, m: int, span: tuple[float, float]) -> None:
        """File the projects `started` [b, s, k] from the queue in `span`, dated by when
        their unit and their decision were both there. Those that waited already (`old`)
        and that the units free at the span's start (before its completions) can hold start
        at its start, the instant the exact engines take units freed or added at an edge;
        where projects still wait (`waits` [b]), new ones take the rest of those units in
        the order they were decided, k of the span's `n_new` [b] decisions within the first
        k / n_new of it. Which projects those units hold is
        drawn as serving draws (`serve_in_order`: a uniform order, each taking the units it
        needs). The others start across the span, with the units freed and the decisions
        made across it. (Dated across the span, a unit free from its start stood idle for
        half a span on average.)"""
        d0, d1 = span
        at_start, soon = np.zeros_like(started), np.zeros_like(started)
        if self.units.size:
            free0 = np.maximum(self._room(m, span, start=True) - self.in_use_start, 0)
            for b in np.flatnonzero(started.sum(axis=(1, 2)) * free0.any(axis=1)):
                free = free0[b].astype(float)
                blocked = np.zeros(free.size, dtype=bool)
                stopped = np.zeros(len(self.units), dtype=bool)
                at_start[b] = serve_in_order(self.rng, old[b], self.level_k, self.units_k,
                                             free, blocked, stopped)
                if waits[b]:
                    soon[b] = serve_in_order(self.rng, started[b] - old[b], self.level_k,
                                             self.units_k, free, blocked, stopped)
        self._start(at_start, m, (d0, d0))  # at the edge, as the exact engines start them
        for b in np.flatnonzero(soon.sum(axis=(1, 2))):
            X = np.zeros_like(soon)
            X[b] = soon[b]
            self._start(X, m, (d0, d0 + (d1 - d0) * min(1.0, X.sum() / n_new[b])))
        self._start(started - at_start - soon, m, span)

    def _serve_one(self, b: int, free: np.ndarray) -> np.ndarray:
        """Replication b's start from its queue, oldest step first, within `free` units, by
        the exact engine's rule (`tau_kernels.serve_in_order`): no project overtakes an
        earlier one on a resource that one lacks, and a level waits behind its first
        project that cannot start. Within one step the order of decisions is unknown, so a
        step's projects are taken in a uniformly drawn order: the levels interleave as
        their decisions did."""
        blocked = np.zeros(len(free), dtype=bool)
        stopped = np.zeros(len(self.units), dtype=bool)  # levels that wait behind a project
        free = free.astype(float)
        started = np.zeros_like(self.queue[0][0][b])
        for entry in self.queue:
            if stopped[self.queued_levels].all():
                break  # every level waits behind a project that cannot start
            take = serve_in_order(self.rng, entry[0][b], self.level_k, self.units_k, free,
                                  blocked, stopped)
            started += take
            entry[0][b] -= take
        return started

    def _in_flight(self) -> None:
        """Start the projects under way at the start with the time they have left; those the
        resources cannot hold wait first in line, level by level (as in the exact engine)."""
        X = self.flight
        if not X.any():
            return
        free = self.cap_steps[0] - self.in_use[0]  # the same in every replication
        run = np.zeros((self.B, *X.shape), dtype=np.int64)
        for i in range(N_LEVELS):
            cols = self.level_k == i
            Xi = X[:, cols]
            n = int(Xi.sum())
            units = self.units[i]
            fit = n if not units.any() else int(min(free[r] // units[r]
                                                   for r in np.flatnonzero(units)))
            for b in range(self.B):
                run[b][:, cols] = Xi if fit >= n else self.rng.multivariate_hypergeometric(
                    Xi.ravel(), max(fit, 0)).reshape(Xi.shape)
            free -= max(0, min(fit, n)) * units
        waiting = X[None] - run
        self._start(run, 0, (0.0, 1.0), residual=True)
        if waiting.any():  # first in line, a level at a time (each level's own entry)
            for i in range(N_LEVELS):
                part = waiting * (self.level_k == i)
                if part.any():
                    self.queue.append([part, part.sum(axis=(1, 2))])
            self.max_waiting = waiting.sum(axis=(1, 2))

    def _start_decided(self, D: np.ndarray, m: int, span: tuple[float, float]) -> None:
        """Start the projects decided in `span`: levels without needs at once, the others
        through the queue."""
        if not self.queued_levels or not self.queue and np.all(
                (D.sum(axis=1) @ self.units_k <= self._room(m, span) - self.in_use)
                | (D.sum(axis=1) @ self.units_k == 0)):
            self._start(D, m, span)  # nothing waits and every project fits
            return
        queued = D * self.queued_k
        self._start(D - queued, m, span)
        self._serve(m, queued, span)
