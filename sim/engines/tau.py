"""The fast engine (`--engine tau`): the same model advanced in fixed small steps on cell counts.

Each step draws the firms that decide from binomials, in two half steps around the step's
completions (Strang splitting, so firms finishing mid-step and the peer term are treated
symmetrically); starts projects while resources last (FIFO across steps, no overtaking on a
lacking resource, as in the exact engine); and files every started project under the step
in which it will complete, from its own lognormal duration and a start time spread over the
step. Completions succeed by binomial draws and failures return after the retry wait. Steps
fit inside months, so month ends, the deadline and policy and shock dates fall on step edges.
docs/model.md lists the rules; docs/performance.md measures the bias against the exact engine.
"""

from __future__ import annotations

import math
from collections import deque
from typing import cast

import numpy as np
from scipy.special import ndtr

from sim.engines import rules
from sim.engines.population import N_LEVELS
from sim.engines.result import RunResult
from sim.engines.steps import SubSteps, step_edges
from sim.engines.tau_turnover import TauTurnover
from sim.scenario import DAYS_PER_YEAR, Scenario

_CROWD = 50_000  # projects of one cell in one step above which they are filed in bulk


def _binomial(rng: np.random.Generator, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """rng.binomial(n, p) drawn for the cells that hold firms only: the same draws (a cell
    with n = 0 takes no random number), without the cost of the many empty cells."""
    flat = n.reshape(-1)
    nz = np.flatnonzero(flat)
    out = np.zeros_like(flat)
    out[nz] = rng.binomial(flat[nz], np.broadcast_to(p, n.shape).reshape(-1)[nz])
    return out.reshape(n.shape)


def simulate_tau(scenario: Scenario, rng: np.random.Generator) -> RunResult:
    """Run one replication of `scenario` with fixed steps of about `scenario.tau_step`."""
    return _Tau(scenario, rng).run()


class _Tau(TauTurnover, SubSteps):
    """One replication's state as arrays: cells [segment, level being decided, ceiling code].

    A ceiling code is the ceiling c (0..4) for a firm that has completed a project since the
    start, and W + c for one that has completed none ("unmoved"), so that the `upgraded`
    reading can be counted: a success moves a firm to the next level's plain codes."""

    def __init__(self, sc: Scenario, rng: np.random.Generator):
        self.sc, self.rng = sc, rng
        L = N_LEVELS
        self.params = par = rules.Parameters(sc)
        lay = par.layout
        S = self.S = par.n_segments
        cells = np.array(lay.cells, dtype=np.int64)  # [s, j, c]
        self.exact = cells.sum(axis=2)  # [s, j] firms at exactly level j
        self.unmoved = self.exact.sum(axis=0)  # [j] firms at j that have completed no project
        self.unmoved_r = par.by_region(self.exact)  # [region, j] the same per region
        W = self.W = L + 1
        # Code families (tau_turnover): moved, unmoved; with entry and exit also unmoved
        # entrants and moved firms by the level they started at.
        self.rule = rules.Turnover(sc, par)
        self.F = 6 if self.rule.active else 2
        self.idle = np.zeros((S, L, self.F * W), dtype=np.int64)  # deciding on level i+1
        climbs = rules.may_climb(np.arange(L)[:, None], np.arange(L + 1)[None, :])  # [i, c]
        self.idle[:, :, W:2 * W] = cells[:, :L, :] * climbs
        self.flight = np.zeros_like(self.idle)  # projects under way at the start
        if lay.flight:
            self.flight[:, :, W:2 * W] = np.array(lay.flight, dtype=np.int64)[:, 1:, :]
            self.idle -= self.flight
        self._turnover_init(cells)
        self.As = np.zeros((S, L + 1), dtype=np.int64)
        for k in range(1, L + 1):
            self.As[:, k] = self.exact[:, k:].sum(axis=1)
        self.initial = self.As[:, 1:].sum(axis=0)
        # Arrays below are indexed by the level being decided, i = k - 1 (columns 1..4 of the
        # rules' arrays).
        self.inv_E = par.inv_eligible[1:]
        self.inv_Es = par.inv_eligible_own[:, 1:]  # of each cell's peer group
        self._levels()
        self.retry = par.retry_years[1:]
        self.sigma = par.sigma[1:]
        self.w = sc.peer_weight

        R = len(sc.resources)
        self.units = par.units[1:]
        self.needs = par.needs[1:]
        self.queued_levels = [i for i in range(L) if self.needs[i]]
        self.free_levels = [i for i in range(L) if not self.needs[i]]
        self.in_use = np.zeros(R, dtype=np.int64)
        self.queue: deque[list] = deque()  # per step of decision: [counts [s, i, c], total]

        self.active = np.zeros(len(sc.policies), dtype=bool)
        self.budgets = rules.Budgets(par)
        self.quotas = rules.Quotas(sc, lay.region_at_or_above())
        self.push = np.ones(par.n_regions)  # quota push per region, set at reviews
        self.gain = par.gain(self.active)[:, 1:]  # a(s, k) * M(s, k)

        days, self.month_at = step_edges(sc)
        self.edge_of_day = {int(d): i for i, d in enumerate(days)}
        self.days = days
        self.edges = days / DAYS_PER_YEAR  # model years
        self.cap_steps = self._capacities()
        # Per cell [s, i, c]: log median implementation time in days (-inf: instant), sigma.
        shape = (S, L, self.F * W)
        med_days = par.median_years[1:] * DAYS_PER_YEAR
        with np.errstate(divide="ignore"):
            self.log_median_days = np.broadcast_to(np.log(med_days)[None, :, None], shape
                                                   ).ravel().copy()
        self.sigma_cell = np.broadcast_to(self.sigma[None, :, None], shape).ravel().copy()
        n_steps = len(days) - 1
        # Step of each day (one past the end: beyond the horizon), to file completions.
        self.step_of_day = np.append(np.repeat(np.arange(n_steps), np.diff(days)), n_steps)
        self.n_days = int(days[-1])
        self.pipe = np.zeros((n_steps + 1, *shape), dtype=np.int64)  # completions by step
        self.ret = np.zeros((n_steps + 1, *shape), dtype=np.int64)  # returns by step
        self.target = rules.TargetCount.of(sc, [int(x) for x in self.initial])
        self.t_level = self.target.level
        self.n_decisions = self.n_completions = self.n_failures = self.max_waiting = 0


    def _calendar(self) -> dict[int, list[rules.Change]]:
        """The rules' dated changes keyed by the index of the edge at which they happen."""
        cal: dict[int, list[rules.Change]] = {}
        for change in rules.changes(self.sc):
            cal.setdefault(self.edge_of_day[change.day], []).append(change)
        return cal

    def _levels(self) -> None:
        """Take the level parameters in force (after shocks) from the rules."""
        par = self.params
        self.p, self.q, self.success = par.innovation[1:], par.imitation[1:], par.success[1:]

    def _apply(self, change: rules.Change) -> None:
        if change.kind == "policy":
            self.active[change.index] = change.on and self.budgets.has_money(change.index)
            return
        self.params.set_shock(change.index, change.on)
        r, k = self.params.shock_targets(change.index)
        if r is not None:
            self.cap_steps = self._capacities()
        if k is not None:
            self._levels()

    # -- projects ----------------------------------------------------------------------------------

    def _capacities(self) -> np.ndarray:
        """Capacity of every resource at the start of every step (rows), for the present
        shock factors; recomputed when a shock changes them."""
        par = self.params
        return rules.capacity_units(par.capacity_base, par.capacity_factor, par.log_growth,
                                    self.edges[:, None])

    def _start(self, X: np.ndarray, m: int, span: tuple[float, float], *,
               residual: bool = False) -> None:
        """File the projects X [s, i, c] started in step m during `span` (days) under their
        completion steps; `residual`: projects under way at the start, with the time they
        have left (the rules' law, `rules.residual_years`)."""
        # Dated uniformly within the (sub-)step: new decisions happen during it, and the units
        # that waiting projects take were freed by completions during it.
        d0, d1 = span
        flat = np.flatnonzero(X)
        if flat.size == 0:
            return
        counts = X.ravel()[flat]
        if counts.max() > _CROWD:  # memory stays bounded however large the population
            for cell in flat[counts > _CROWD]:
                self._file_crowd(int(cell), int(X.ravel()[cell]), d0, d1, m, residual)
            flat, counts = flat[counts <= _CROWD], counts[counts <= _CROWD]
        cell = np.repeat(flat, counts)
        n = cell.size
        end = self.rng.uniform(d0, d1, n)
        sigma = self.sigma_cell[cell]
        if residual:  # a uniform part of a length-biased duration is left
            end *= np.exp(self.log_median_days[cell] + sigma * sigma
                          + sigma * self.rng.standard_normal(n))
        else:
            end += np.exp(self.log_median_days[cell] + sigma * self.rng.standard_normal(n))
        day = np.minimum(end, self.n_days).astype(np.int64)
        step = np.maximum(self.step_of_day[day], m)  # the last row collects the overflow
        np.add.at(self.pipe.reshape(-1), step * X.size + cell, 1)
        if self.units.size:
            self.in_use += X.sum(axis=(0, 2)) @ self.units

    def _file_crowd(self, cell: int, n: int, d0: float, d1: float, m: int,
                    residual: bool = False) -> None:
        """File n projects of one cell by a multinomial draw over completion steps, with the
        probabilities of a start uniform in [d0, d1) plus a lognormal duration (midpoint
        rule over the start, 16 points): the same law as one draw per project, in O(steps)."""
        edges = self.days[m + 1:].astype(float)  # upper edges of steps m, m+1, ...
        u = d0 + (d1 - d0) * (np.arange(16) + 0.5) / 16
        x = edges[:, None] - u[None, :]
        mu, sigma = self.log_median_days[cell], self.sigma_cell[cell]
        with np.errstate(divide="ignore", invalid="ignore"):
            if residual:
                cdf = rules.residual_cdf(edges[:, None] - d0, math.exp(mu), sigma)
                cdf = np.broadcast_to(cdf, x.shape)
            elif np.isinf(mu):  # instant projects
                cdf = (x >= 0).astype(float)
            elif sigma == 0:
                cdf = (x >= math.exp(mu)).astype(float)
            else:
                cdf = np.where(x > 0, ndtr((np.log(np.maximum(x, 1e-300)) - mu) / sigma), 0.0)
        cdf = cdf.mean(axis=1)
        probs = np.diff(cdf, prepend=0.0)
        probs = np.append(np.clip(probs, 0.0, None), max(0.0, 1.0 - cdf[-1]))
        drawn = self.rng.multinomial(n, probs / probs.sum())
        self.pipe.reshape(len(self.pipe), -1)[m:, cell] += drawn

    def _serve(self, m: int, new: np.ndarray, span: tuple[float, float]) -> None:
        """Start waiting projects, oldest step first, then this step's new ones `new`
        [s, i, c], while units last. Within one step the order of decisions is unknown, so
        a step that can be served only in part starts a uniformly drawn subset of its
        projects, whatever their level: the levels interleave as their decisions did."""
        total = int(new.sum())
        if total:
            self.queue.append([new, total])
        if not self.queue:
            return
        free = self.cap_steps[m] - self.in_use
        blocked = np.zeros(len(free), dtype=bool)
        # levels needing no blocked resource
        allowed: np.ndarray = np.ones(len(self.units), dtype=bool)
        started = np.zeros_like(new)
        done = []
        for entry in self.queue:
            if not allowed[self.queued_levels].any():
                break  # every waiting project lacks a resource an earlier one lacks
            counts, total = entry
            if not allowed.all():
                counts = counts * allowed[None, :, None]
            per_level = counts.sum(axis=(0, 2))
            demand = per_level @ self.units
            uses = demand > 0
            if not uses.any():
                continue
            n = int(counts.sum())
            if np.all(demand <= free):
                take = counts
            else:
                share = np.min(np.where(uses, np.maximum(free, 0) / np.maximum(demand, 1), 1.0))
                k = int(share * n)
                take = np.zeros_like(counts)
                while k > 0:
                    take = self.rng.multivariate_hypergeometric(counts.ravel(), k
                                                                ).reshape(counts.shape)
                    over = take.sum(axis=(0, 2)) @ self.units - free
                    if np.all(over <= 0):
                        break
                    k -= int(over.max())
                    take = np.zeros_like(counts)
                blocked |= uses & (demand - take.sum(axis=(0, 2)) @ self.units > 0)
                allowed = cast(np.ndarray, ~((self.units > 0) & blocked[None, :]).any(axis=1))
            free -= take.sum(axis=(0, 2)) @ self.units
            started += take
            entry[0] = entry[0] - take
            entry[1] = int(entry[0].sum())
            if entry[1] == 0:
                done.append(entry)
        for entry in done:
            self.queue.remove(entry)
        self._start(started, m, span)

    def _count(self) -> float:
        k = self.t_level
        return self.target.count(int(self.As[:, k].sum()), int(self.unmoved[k:].sum()),
                                 self.surv_now)

    def _region_counts(self) -> np.ndarray:
        k = self.t_level
        return self.quotas.region_counts(self.params.by_region(self.As[:, k]),
                                         self.unmoved_r[:, k:].sum(axis=1),
                                         self.region_surv_now())

    def _in_flight(self) -> None:
        """Start the projects under way at the start with the time they have left; those the
        resources cannot hold wait first in line, level by level (as in the exact engine)."""
        X = self.flight
        if not X.any():
            return
        free = self.cap_steps[0] - self.in_use
        run, waiting = np.zeros_like(X), np.zeros_like(X)
        for i in range(N_LEVELS):
            n = int(X[:, i].sum())
            units = self.units[i]
            fit = n if not units.any() else int(min(free[r] // units[r]
                                                   for r in np.flatnonzero(units)))
            take = X[:, i] if fit >= n else self.rng.multivariate_hypergeometric(
                X[:, i].ravel(), max(fit, 0)).reshape(X[:, i].shape)
            run[:, i] = take
            waiting[:, i] = X[:, i] - take
            free -= int(take.sum()) * units
        self._start(run, 0, (0.0, 1.0), residual=True)
        if waiting.any():
            self.queue.append([waiting, int(waiting.sum())])
            self.max_waiting = int(waiting.sum())

    def _decide(self, stretch: float) -> np.ndarray:
        """Draw the firms of every idle cell that decide within `stretch` years, from the
        rules' hazard at its start."""
        As = self.As[:, 1:]
        h = rules.hazard(self.gain, self.p, self.q, self.w, As.sum(axis=0) * self.inv_E,
                         self.params.own_adopters(As) * self.inv_Es)
        prob = -np.expm1(-stretch * h)
        D = _binomial(self.rng, self.idle, prob[:, :, None])
        self.idle -= D
        self.n_decisions += int(D.sum())
        return D

    def _complete(self, C: np.ndarray, back: np.ndarray) -> None:
        """Finish the projects C [s, i, c] (emptied in place): release units, climb on
        success, go back to idle now or after the retry wait on failure (`back`: where in
        the flattened returns table each cell's failures go)."""
        n_done = int(C.sum())
        if not n_done:
            return
        self.n_completions += n_done
        if self.units.size:
            self.in_use -= C.sum(axis=(0, 2)) @ self.units
        G = _binomial(self.rng, C, self.success[None, :, None])
        F = C - G
        C[...] = 0
        up = G.sum(axis=2)  # [s, i] firms reaching level i+1
        self.exact[:, :-1] -= up
        self.exact[:, 1:] += up
        self.As[:, 1:] += up
        W = self.W
        first = G[:, :, W:3 * W].sum(axis=2)  # [s, i] their first project done (unmoved)
        self.unmoved[:-1] -= first.sum(axis=0)
        self.unmoved_r[:, :-1] -= self.params.by_region(first)
        # Those eligible for the next level go on, now with plain (moved) ceiling codes.
        if self.F == 2:
            self.idle[:, 1:, :W] += (G[:, :-1, :W] + G[:, :-1, W:]) * self.goes_on
        else:
            self._climb(G)
        n_fail = int(F.sum())
        if n_fail:
            self.n_failures += n_fail
            later = F if self.retry_now is None else F * (1 - self.retry_now)  # (not those
            self.ret.reshape(-1)[back] += later.ravel()  # back at once) cells distinct: exact
            if self.retry_now is not None:
                self.idle += F * self.retry_now

    def _start_decided(self, D: np.ndarray, m: int, span: tuple[float, float]) -> None:
        """Start the projects decided in `span`: levels without needs at once, the others
        through the queue."""
        if self.queued_levels and not self.queue and (
                D.sum(axis=(0, 2)) @ self.units <= self.cap_steps[m] - self.in_use).all():
            self._start(D, m, span)  # nothing waits and every project fits
        elif self.queued_levels:
            free_now = D.copy()
            free_now[:, self.queued_levels, :] = 0
            self._start(free_now, m, span)
            queued = D.copy()
            queued[:, self.free_levels, :] = 0
            self._serve(m, queued, span)
            waiting = sum(e[1] for e in self.queue)
            self.max_waiting = max(self.max_waiting, waiting)
        else:
            self._start(D, m, span)

    # -- main loop -------------------------------------------------------------------------------

    def run(self) -> RunResult:
        sc, edges = self.sc, self.edges
        L, S = N_LEVELS, self.S
        n_steps = len(edges) - 1
        cal = self._calendar()
        months = len(self.month_at)
        curve = np.zeros((months, L), dtype=np.int64)
        upgraded = np.zeros((months, L), dtype=np.int64)
        by_segment = np.zeros((months, S, L + 1), dtype=np.int64)
        unmoved_month = np.zeros((months, self.params.n_regions, L + 1), dtype=np.int64)
        region_at_deadline = self._region_counts()
        reviews = {self.edge_of_day[d] for d in self.quotas.days}
        deadline_edge = self.edge_of_day[(sc.target.deadline - sc.start).days + 1]
        mid_days = (0.5 * (edges[:-1] + edges[1:])) * DAYS_PER_YEAR
        # Failures return after the retry wait counted from mid-step, at the earliest in the
        # next step (this step's returns have been taken by then); with no wait, at once
        # (their row is then the unread last one).
        size = S * L * self.F * self.W
        level = (np.arange(size) // (self.F * self.W)) % L
        back = np.empty((n_steps, size), dtype=np.int64)
        for i, r in enumerate(self.retry):
            row = np.maximum(self.step_of_day[np.minimum(mid_days + r * DAYS_PER_YEAR,
                                                         self.n_days).astype(np.int64)],
                             np.arange(n_steps) + 1) if r > 0 else np.full(n_steps, n_steps)
            back[:, level == i] = row[:, None] * size + np.flatnonzero(level == i)[None, :]
        now = (self.retry <= 0)[None, :, None]
        self.retry_now = now.astype(np.int64) if now.any() else None
        self.goes_on = rules.may_climb(np.arange(1, L)[:, None],
                                       np.arange(L + 1)[None, :]).astype(np.int64)
        paying = [(j, self.params.subsidy(j)[:, 1:])
                  for j in self.params.paying()]
        count = self._count()
        crossing = 0.0 if count >= sc.target.firms else None
        count_at_deadline = count if deadline_edge == 0 else -1
        policy_changed = False
        # Levels whose projects can start and finish inside one step (sub-stepped when fast).
        fast = self._within(float(np.diff(edges).max())) > 1e-9
        within: dict[float, np.ndarray] = {}
        self._in_flight()

        for m in range(n_steps):
            for change in cal.get(m, ()):
                self._apply(change)
                policy_changed = True
            if policy_changed:
                self.gain = self.params.gain(self.active, self.push)[:, 1:]
                policy_changed = False
            t0, dt = edges[m], edges[m + 1] - edges[m]
            if fast.any():
                if dt not in within:
                    within[dt] = self._within(dt)
                n_sub = self._substeps(dt, within[dt])
            else:
                n_sub = 1
            # Projects due in this step from earlier ones, completed at its middle.
            due = self.pipe[m].copy()
            self.pipe[m] = 0
            d0, d1 = float(self.days[m]), float(self.days[m + 1])
            sub = dt / n_sub
            for j in range(n_sub):
                # Decisions over the first half of the (sub-)step, the step's due completions
                # and returns in its middle, decisions over the second half with the updated
                # peer shares: firms that complete or return during the step are exposed for
                # half of it, as on average they are (Strang splitting). Projects that start
                # and finish within the step count at the end of their sub-step.
                D = self._decide(0.5 * sub)
                if j == n_sub // 2:
                    self._complete(due, back[m])
                    self.idle += self.ret[m]
                D += self._decide(0.5 * sub)
                if paying:
                    per = D.sum(axis=2)
                    for k, cost in paying:
                        if self.active[k] and self.budgets.pay(k, float((per * cost).sum())):
                            self.active[k] = False
                            self.gain = self.params.gain(self.active, self.push)[:, 1:]
                span = (d0 + (d1 - d0) * j / n_sub, d0 + (d1 - d0) * (j + 1) / n_sub)
                self._start_decided(D, m, span)
                if self.pipe[m].any():  # projects short enough to finish where they start
                    self._complete(self.pipe[m], back[m])

            # The state at the end of the step.
            before = count
            count = self._count()
            if crossing is None and count >= sc.target.firms:
                crossing = t0 + dt * (sc.target.firms - before) / max(count - before, 1)
            if m + 1 == deadline_edge:
                count_at_deadline = count
                region_at_deadline = self._region_counts()
            if m + 1 in reviews:  # a quota review at the step's end (before firms come and go)
                push = self.quotas.push(float(edges[m + 1]), self._region_counts())
                policy_changed |= not np.array_equal(push, self.push)
                self.push = push
            mi = self.month_at.get(m + 1)
            if mi is not None:
                curve[mi] = self.As[:, 1:].sum(axis=0)
                upgraded[mi] = curve[mi] - rules.unmoved_at_or_above(self.unmoved)
                by_segment[mi] = self.exact
                unmoved_month[mi] = self.unmoved_r
                if self.F > 2:
                    self._month_end(mi, m + 1)
                    count = self._count()

        events = {"decisions": self.n_decisions, "completions": self.n_completions,
                  "failures": self.n_failures, "max_waiting": self.max_waiting, "steps": n_steps,
                  "events": self.n_decisions + self.n_completions}
        return rules.with_regions(RunResult(
            at_or_above=curve, upgraded=upgraded, by_segment=by_segment, initial=self.initial,
            count_at_deadline=count_at_deadline, crossing_time=crossing,
            met=self.target.met(count_at_deadline), events=events,
            spent=tuple(float(x) for x in self.budgets.spent), **self._turnover_fields()),
            self.params, by_segment, unmoved_month, region_at_deadline)
