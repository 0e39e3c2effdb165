"""The fast engine's projects: the tables of completions by step, filing started projects
under the step they will finish in, and the FIFO queue for resources (served per
replication only where capacity binds)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from sim.engines import rules
from sim.engines.population import N_LEVELS
from sim.scenario import DAYS_PER_YEAR

_CROWD = 50_000  # projects of one cell in one step above which they are filed in bulk


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
        # Per level decided: log median implementation time in days (-inf: instant), sigma.
        with np.errstate(divide="ignore"):
            self.log_median_days = np.log(self.params.median_years[1:] * DAYS_PER_YEAR)
        self.sigma_days = self.params.sigma[1:].astype(float)
        # Step of each day (one past the end: beyond the horizon), to file completions.
        self.step_of_day = np.append(np.repeat(np.arange(n_steps), np.diff(days)), n_steps)
        self.n_days = int(days[-1])
        full = (n_steps + 1, self.B, *shape)
        # (int32: half the memory of tables that are mostly empty; no cell of one step
        # comes near 2**31 projects)
        self.pipe = np.zeros(full, dtype=np.int32)  # completions by step
        self.ret = np.zeros(full, dtype=np.int32)  # returns by step
        # What the two tables hold in the rows still to come, per cell (firms that leave are
        # drawn from these, not from the mostly empty tables).
        self.filed = np.zeros((self.B, *shape), dtype=np.int64)
        self.returning = np.zeros((self.B, *shape), dtype=np.int64)

    def _start(self, X: np.ndarray, m: int, span: tuple[float, float], *,
               residual: bool = False) -> None:
        """File the projects X [b, s, k] started in step m during `span` (days) under
        their completion steps; `residual`: projects under way at the start, with the time
        they have left (the rules' law, `rules.residual_years`)."""
        # Dated uniformly within the (sub-)step: new decisions happen during it, and the units
        # that waiting projects take were freed by completions during it.
        flat = np.flatnonzero(X)
        if flat.size == 0:
            return
        self.filed += X
        counts = X.ravel()[flat]
        if counts.max() > _CROWD:  # memory stays bounded however large the population
            cdf, K = self._completion_cdf(m, span, residual), self.level_k.size
            for cell in flat[counts > _CROWD]:
                probs = np.diff(cdf[self.level_k[cell % K]], prepend=0.0)
                drawn = self.rng.multinomial(int(X.ravel()[cell]), probs / probs.sum())
                self.pipe.reshape(len(self.pipe), -1)[m:, cell] += drawn.astype(np.int32)
            flat, counts = flat[counts <= _CROWD], counts[counts <= _CROWD]
        # One start (uniform in the span) and one duration per project.
        cell = np.repeat(flat, counts)
        lvl = np.repeat(self.level_k[flat % self.level_k.size], counts)
        n = cell.size
        sigma = self.sigma_days[lvl]
        if residual:  # a uniform part of a length-biased duration is left
            end = self.rng.random(n) * np.exp(self.log_median_days[lvl] + sigma * sigma
                                              + sigma * self.rng.standard_normal(n))
        else:
            end = self.rng.uniform(span[0], span[1], n)
            end += np.exp(self.log_median_days[lvl] + sigma * self.rng.standard_normal(n))
        # (no earlier than step m: the start lies in it; the last row collects the overflow)
        step = self.step_of_day[np.minimum(end, self.n_days).astype(np.int64)]
        np.add.at(self.pipe.reshape(-1), step * X.size + cell, np.ones(n, dtype=np.int32))
        if self.units.size:
            self.in_use += X.sum(axis=1) @ self.units_k

    def _completion_cdf(self, m: int, span: tuple[float, float], residual: bool
                        ) -> np.ndarray:
        """[level decided, j]: P(a project of the level started in step m during `span`
        completes by the end of step m + j); the last column, the row beyond the horizon,
        is 1. Residual: a project under way at the start (`rules.residual_cdf`). Crowded
        cells are filed by it in one multinomial draw: the law of one draw per project."""
        d0, d1 = span
        ends = self.days[m + 1:].astype(float)  # upper edges of steps m, m+1, ...
        par = self.params
        out = np.ones((N_LEVELS, len(ends) + 1))
        for i in range(N_LEVELS):
            med, sigma = par.median_years[i + 1] * DAYS_PER_YEAR, float(par.sigma[i + 1])
            if residual:
                c = rules.residual_cdf(ends - d0, med, sigma)
            else:
                c = rules.started_cdf(ends, d0, d1, med, sigma)
            out[i, :-1] = np.maximum.accumulate(np.minimum(c, 1.0))
        return out

    def _serve(self, m: int, new: np.ndarray, span: tuple[float, float]) -> None:
        """Start waiting projects, oldest step first, then this step's new ones `new`
        [b, s, k], while units last. A replication whose waiting projects all fit starts
        them all; the others are served one by one (`_serve_one`)."""
        totals = new.sum(axis=(1, 2))
        if totals.any():
            self.queue.append([new, totals])
        if not self.queue:
            return
        free = self.cap_steps[m] - self.in_use  # [b, resource]
        demand = sum(e[0].sum(axis=1) for e in self.queue) @ self.units_k
        fits = np.all(demand <= free, axis=1)
        started = np.zeros_like(self.queue[0][0])
        for entry in self.queue:
            started[fits] += entry[0][fits]
            entry[0][fits] = 0
        for b in np.flatnonzero(~fits & (sum(e[1] for e in self.queue) > 0)):
            started[b] = self._serve_one(int(b), free[b].copy())
        for entry in list(self.queue):
            entry[1] = entry[0].sum(axis=(1, 2))
            if not entry[1].any():
                self.queue.remove(entry)
        self._start(started, m, span)
        self.max_waiting = np.maximum(self.max_waiting, sum((e[1] for e in self.queue),
                                                            np.zeros(self.B, dtype=np.int64)))

    def _serve_one(self, b: int, free: np.ndarray) -> np.ndarray:
        """Replication b's start from its queue, oldest step first, within `free` units.
        Within one step the order of decisions is unknown, so a step that can be served
        only in part starts a uniformly drawn subset of its projects, whatever their level:
        the levels interleave as their decisions did."""
        blocked = np.zeros(len(free), dtype=bool)
        # levels needing no blocked resource
        allowed: np.ndarray = np.ones(len(self.units), dtype=bool)
        started = np.zeros_like(self.queue[0][0][b])
        for entry in self.queue:
            if not allowed[self.queued_levels].any():
                break  # every waiting project lacks a resource an earlier one lacks
            counts = entry[0][b]
            if not allowed.all():
                counts = counts * allowed[self.level_k][None, :]
            demand = counts.sum(axis=0) @ self.units_k
            uses = demand > 0
            if not uses.any():
                continue
            if np.all(demand <= free):
                take = counts
            else:
                share = np.min(np.where(uses, np.maximum(free, 0) / np.maximum(demand, 1), 1.0))
                k = int(share * int(counts.sum()))
                take = np.zeros_like(counts)
                while k > 0:
                    take = self.rng.multivariate_hypergeometric(counts.ravel(), k
                                                                ).reshape(counts.shape)
                    over = take.sum(axis=0) @ self.units_k - free
                    if np.all(over <= 0):
                        break
                    k -= int(over.max())
                    take = np.zeros_like(counts)
                blocked |= uses & (demand - take.sum(axis=0) @ self.units_k > 0)
                allowed = cast(np.ndarray, ~((self.units > 0) & blocked[None, :]).any(axis=1))
            free -= take.sum(axis=0) @ self.units_k
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
        if waiting.any():
            self.queue.append([waiting, waiting.sum(axis=(1, 2))])
            self.max_waiting = waiting.sum(axis=(1, 2))

    def _start_decided(self, D: np.ndarray, m: int, span: tuple[float, float]) -> None:
        """Start the projects decided in `span`: levels without needs at once, the others
        through the queue."""
        if not self.queued_levels or not self.queue and np.all(
                D.sum(axis=1) @ self.units_k <= self.cap_steps[m] - self.in_use):
            self._start(D, m, span)  # nothing waits and every project fits
            return
        queued = D * self.queued_k
        self._start(D - queued, m, span)
        self._serve(m, queued, span)
