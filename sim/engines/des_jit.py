"""The exact engine, compiled: the event loop of `des.py` in numba, dated events in Python.

The model and its events are those of the simpy engine (`des.py`, kept as the independent
reference `des-simpy`): firms as counts per cell, decisions drawn from the total hazard of all
cells between events (Gillespie's direct method), completions and retry returns at their exact
times from a calendar heap, FIFO resource queues woken by completions and by growing capacity.
The compiled loop (`des_kernel.advance`) runs every event up to the next dated one; this
module sets the state the rules decide between them: policies switched by their dates,
shocks, month ends (counts, entry and exit), quota reviews and the deadline.

Streams: everything is drawn from the replication's Generator itself, in the loop's order
(the residual times of projects under way at the start first). The law is the simpy engine's;
the draws, and so each replication's numbers, are not (tests compare the two statistically).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.engines import rules
from sim.engines.des_heap import pack
from sim.engines.des_kernel import advance, count
from sim.engines.des_kernel_turnover import enter, exits
from sim.engines.des_state import (
    DONE,
    F_CROSS,
    F_FIRMS,
    F_NOW,
    F_OFFSET,
    F_SURV,
    F_W,
    FRESH,
    I_COMP,
    I_DEC,
    I_ENTER,
    I_EXIT,
    I_EXITUP,
    I_FAIL,
    I_HN,
    I_HSEQ,
    I_LIVE,
    I_MAXW,
    I_QSEQ,
    I_READING,
    I_REGAIN,
    I_RETRY,
    I_SINGLE,
    I_STALE,
    I_START,
    I_TLEVEL,
    I_TN,
    I_TRACE,
    I_WAIT,
    N_FLOATS,
    N_INTS,
    NEED_GAIN,
    NEED_HEAP,
    NEED_QUEUE,
    ORIGIN,
    ORIGINS,
    SUBS,
    State,
    grow_heap,
    grow_queues,
    grow_trace,
)
from sim.engines.population import N_LEVELS
from sim.engines.result import RunResult
from sim.scenario import DAYS_PER_YEAR, Scenario

L = N_LEVELS
HEAP0, QUEUE0, TRACE0 = 1 << 14, 1 << 10, 1 << 14
"""Starting room of the calendar, of each level's queue and of the trace; each doubles when
full (the compiled loop stops, the driver grows it, the loop resumes where it stopped)."""
_ORDER = {"policy": 0, "shock": 1, "deadline": 2, "quota": 3, "month": 4}
"""Dated events at one time run in the order simpy gives them in `des.py`: the one scheduled
earlier first, then by the order its process was started in (months last, so that the count
at the deadline and a quota review read a month end before its exits and entrants)."""


def simulate(scenario: Scenario, rng: np.random.Generator, *, trace: bool = False) -> RunResult:
    """Run one replication of `scenario` with the random stream `rng`."""
    return _Run(scenario, rng, trace).run()


class _Run:
    """One replication: the state's arrays, the dated events, and what is recorded."""

    def __init__(self, sc: Scenario, rng: np.random.Generator, trace: bool):
        self.sc, self.rng = sc, rng
        self.par = par = rules.Parameters(sc)
        self.rule = rules.Turnover(sc, par)
        self.turnover = self.rule.active
        self.quotas = rules.Quotas(sc, par.layout.region_at_or_above())
        self.push = np.ones(par.n_regions)  # quota push per region, set at reviews
        self.st = self._state(trace)
        self.st = self._in_flight(self.st)
        self._regain()
        n_months = len(sc.month_ends())
        self.curve, self.upgraded = (np.zeros((n_months, L), dtype=np.int64) for _ in range(2))
        self.by_segment = np.zeros((n_months, par.n_segments, L + 1), dtype=np.int64)
        self.unmoved_month = np.zeros((n_months, par.n_regions, L + 1), dtype=np.int64)
        self.survivors = np.zeros((n_months, L), dtype=np.int64)
        self.region_survivors = np.zeros((n_months, par.n_regions, L), dtype=np.int64)
        self.region_at_deadline = np.zeros(par.n_regions)
        self.count_at_deadline = -1.0
        self.deadline_readings: np.ndarray | None = None
        # Firms at or above each level at the start (what `new` subtracts without exits)
        self.initial = rules.at_or_above(np.array(par.layout.cells).sum(axis=2)).sum(axis=0)
        self.entrant_cells = tuple(np.array([c[x] for c in self.rule.cells], dtype=np.int64)
                                   for x in range(3))

    # -- the state at the start ---------------------------------------------------------------

    def _state(self, trace: bool) -> State:
        """The arrays at the start: the layout's firms (projects under way taken out of the
        idle pool; `_in_flight` starts them), the level and policy parameters, empty queues
        and calendar."""
        sc, par = self.sc, self.par
        lay = par.layout
        S, G, R = par.n_segments, par.n_groups, par.n_regions
        C, Q, P = S * L, len(sc.resources), len(sc.policies)
        grp, reg = par.group.astype(np.int64), par.region.astype(np.int64)
        cells = np.array(lay.cells, dtype=np.int64)  # (S, 5 levels, 5 ceilings)
        exact = cells.sum(axis=2)
        idle = np.zeros((C, L + 1), dtype=np.int64)
        idle_v = np.zeros((C, L + 1, SUBS), dtype=np.int64)
        settled = np.zeros((S, L + 1, SUBS), dtype=np.int64)
        elig = np.zeros((G, L + 1), dtype=np.int64)
        alive = np.zeros((R, L + 1), dtype=np.int64)
        for s in range(S):
            for j in range(L + 1):
                alive[reg[s], j] += exact[s, j]
                for c in range(L + 1):
                    n = cells[s, j, c]
                    elig[grp[s], c] += n
                    if c > j:  # may climb: idle, fresh, started at j
                        idle[s * L + j, c] += n
                        idle_v[s * L + j, c, ORIGINS + j] += n
                    else:
                        settled[s, j, ORIGINS + j] += n
        for s, seg in enumerate(lay.flight):  # projects under way leave the idle pool
            for k in range(1, L + 1):
                for c, n in enumerate(seg[k]):
                    idle[s * L + k - 1, c] -= n
                    idle_v[s * L + k - 1, c, ORIGINS + k - 1] -= n
        As = np.zeros((S, L + 1), dtype=np.int64)
        As[:, 1:] = rules.at_or_above(exact)
        unmoved_r = par.by_region(exact)
        target = rules.TargetCount.of(sc, As.sum(axis=0)[1:])
        ints = np.zeros(N_INTS, dtype=np.int64)
        ints[I_TRACE] = trace
        ints[I_TLEVEL] = target.level
        ints[I_SINGLE] = R == 1
        ints[I_READING] = target.how(self.turnover)
        floats = np.zeros(N_FLOATS)
        floats[F_CROSS] = -1.0
        floats[F_W] = sc.peer_weight
        floats[F_FIRMS] = sc.target.firms
        floats[F_OFFSET] = target.offset
        gcell = np.array([(s % G) * L + k for s in range(S) for k in range(L)], dtype=np.int64)
        members = np.array([[(r * G + gi // L) * L + gi % L for r in range(R)]
                            for gi in range(G * L)], dtype=np.int64)
        mu = np.array([math.log(m) if m > 0 else -math.inf for m in par.median_years])
        units = par.units.astype(np.int64)
        st = State(
            i=ints, f=floats, idle=idle, idle_v=idle_v, idle_total=idle.sum(axis=1),
            settled=settled, exact=exact, A=As.sum(axis=0), As=As,
            Ag=As.reshape(R, G, L + 1).sum(axis=0),
            unmoved=exact.sum(axis=0), unmoved_r=unmoved_r, alive_origin=alive, elig=elig,
            grp=grp, reg=reg, gcell=gcell, members=members,
            p=par.innovation.copy(), q=par.imitation.copy(), success=par.success.copy(),
            retry=par.retry_years.astype(float), mu=mu, sigma=par.sigma.astype(float),
            inv_E=par.inv_eligible.astype(float).copy(),
            inv_Es=par.inv_eligible_by_segment.astype(float).copy(),
            applies=par.policy_applies.copy(), cost=par.policy_cost.astype(float),
            left=par.budget.astype(float).copy(), spent=np.zeros(P),
            active=np.zeros(P, dtype=np.bool_), gflat=np.zeros(C),
            x=np.zeros(G * L), W=np.zeros(G * L), rate=np.zeros(G * L), units=units,
            has_needs=np.asarray(units.any(axis=1)), in_use=np.zeros(Q, dtype=np.int64),
            cap_base=par.capacity_base.astype(float), cap_factor=par.capacity_factor.copy(),
            log_growth=par.log_growth.astype(float), cap_now=np.zeros(Q, dtype=np.int64),
            cap_from=np.full(Q, math.inf), cap_until=np.full(Q, -math.inf),
            tick_time=np.full(Q, math.inf), blocked=np.zeros(Q, dtype=np.bool_),
            free=np.zeros(Q, dtype=np.int64),
            htime=np.zeros(HEAP0), hseq=np.zeros(HEAP0, dtype=np.int64),
            hpay=np.zeros(HEAP0, dtype=np.int64),
            qseq=np.zeros((L + 1, QUEUE0), dtype=np.int64),
            qpay=np.zeros((L + 1, QUEUE0), dtype=np.int64),
            qhead=np.zeros(L + 1, dtype=np.int64), qtail=np.zeros(L + 1, dtype=np.int64),
            qlive=np.zeros(L + 1, dtype=np.int64),
            tbuf=np.zeros((TRACE0 if trace else 1, 5)))
        if self.turnover:
            st.f[F_SURV] = self._survivors(st)[:, target.level - 1].sum()
        if count(st) >= st.f[F_FIRMS]:
            st.f[F_CROSS] = 0.0
        return st

    def _in_flight(self, st: State) -> State:
        """Start the projects under way at the start with the time they have left (the rules'
        law); those the resources cannot hold wait first in line, in order of level. Within a
        level nothing orders them: they are taken in a uniformly drawn order (so which run
        and which wait does not depend on how segments are numbered)."""
        par = self.par
        flight = [(k, s, c, n) for s, seg in enumerate(par.layout.flight)
                  for k in range(1, L + 1) for c, n in enumerate(seg[k]) if n]
        times, pays, use_rows = [], [], []
        cap = np.array([rules.capacity_at(float(b), float(f), float(g), 0.0) for b, f, g
                        in zip(st.cap_base, st.cap_factor, st.log_growth, strict=True)],
                       dtype=np.int64)
        needed = [np.flatnonzero(st.units[k]) for k in range(L + 1)]
        for k in sorted({f[0] for f in flight}):
            mine = [(s, c | FRESH | ((k - 1) << ORIGIN), n) for kk, s, c, n in flight
                    if kk == k]
            run_pay = np.array([pack(s, k, code) for s, code, _ in mine], dtype=np.int64)
            wait_pay = np.array([(s << 8) | code for s, code, _ in mine], dtype=np.int64)
            group = np.repeat(np.arange(len(mine)), [n for _, _, n in mine])
            group = group[self.rng.permutation(group.size)]  # a project's (s, code)
            n = group.size
            x = rules.residual_years(self.rng, float(par.median_years[k]), float(par.sigma[k]),
                                     n)
            units, need = st.units[k], needed[k]
            fit = n if not need.size else int(max(0, min(
                n, ((cap[need] - st.in_use[need]) // units[need]).min())))
            if st.i[I_TRACE]:
                use_rows += [(1, 0.0, r, st.in_use[r] + m * units[r], cap[r])
                             for m in range(1, fit + 1) for r in need]
            st.in_use[:] += units * fit
            times.append(x[:fit])
            pays.append(run_pay[group[:fit]])
            if n > fit:  # the rest wait, first in line
                while st.qtail[k] + n - fit > st.qseq.shape[1]:
                    st = grow_queues(st)
                at = slice(st.qtail[k], st.qtail[k] + n - fit)
                st.qseq[k, at] = st.i[I_QSEQ] + np.arange(1, n - fit + 1)
                st.qpay[k, at] = wait_pay[group[fit:]]
                st.i[I_QSEQ] += n - fit
                st.qtail[k] += n - fit
                st.qlive[k] += n - fit
                st.i[I_WAIT] += n - fit
        t = np.concatenate(times) if times else np.zeros(0)
        n = len(t)
        while len(st.htime) < n + 2:
            st = grow_heap(st)
        order = np.argsort(t, kind="stable")  # a sorted array is a heap; ties by sequence
        st.htime[:n] = t[order]
        st.hseq[:n] = order + 1
        st.hpay[:n] = np.concatenate(pays)[order] if pays else 0
        st.i[I_HN] = st.i[I_HSEQ] = st.i[I_LIVE] = st.i[I_START] = n
        st.i[I_MAXW] = st.i[I_WAIT]
        while len(use_rows) > len(st.tbuf) and st.i[I_TRACE]:
            st = grow_trace(st)
        for row, values in enumerate(use_rows):
            st.tbuf[row] = values
        st.i[I_TN] = len(use_rows)
        return st

    # -- dated events ---------------------------------------------------------------------------

    def _dated(self) -> list[tuple[float, str, int, bool]]:
        """(time, kind, index, on) of every dated event, in the order they run."""
        sc = self.sc
        horizon_days = (sc.end - sc.start).days + 1
        out = []  # (time, scheduled at, order, index, kind, on)
        dated: tuple[tuple[str, Any], ...] = (("policy", sc.policies), ("shock", sc.shocks))
        for kind, items in dated:
            for j, item in enumerate(items):
                first = item.start if kind == "policy" else item.at
                span = rules.window(sc, first, item.end)
                if span is None:
                    continue
                begin, finish = (d / DAYS_PER_YEAR for d in span)
                out.append((begin, 0.0, _ORDER[kind], j, kind, True))
                if item.end is not None and span[1] < horizon_days:
                    out.append((finish, begin, _ORDER[kind], j, kind, False))
        months = [sc.years(d, end_of_day=True) for d in sc.month_ends()]
        out += [(when, months[m - 1] if m else 0.0, _ORDER["month"], m, "month", True)
                for m, when in enumerate(months)]
        out.append((sc.deadline, 0.0, _ORDER["deadline"], 0, "deadline", True))
        reviews = [d / DAYS_PER_YEAR for d in self.quotas.days]
        out += [(when, reviews[r - 1] if r else 0.0, _ORDER["quota"], r, "quota", True)
                for r, when in enumerate(reviews)]
        out.sort()
        return [(t, kind, j, on) for t, _, _, j, kind, on in out]

    def _advance(self, until: float) -> None:
        self.st.i[I_STALE] = 1  # a dated event (or the start) changed the rates' inputs
        while (status := advance(self.st, self.rng, until)) != DONE:
            if status == NEED_GAIN:  # a budget ran out in the loop
                self.st.i[I_REGAIN] = 0
                self._regain()
                self.st.i[I_STALE] = 1
            else:  # grown arrays change nothing: the loop resumes where it stopped
                self.st = (grow_heap(self.st) if status == NEED_HEAP else grow_queues(self.st)
                           if status == NEED_QUEUE else grow_trace(self.st))

    def _regain(self) -> None:
        """Each cell's gain a(s, k) * M(s, k) * quota push, from the rules, for the policies
        in force and the pushes now (the loop recomputes the rates from them)."""
        self.st.gflat[:] = self.par.gain(self.st.active, self.push)[:, 1:].ravel()

    def _event(self, kind: str, j: int, on: bool) -> None:
        st, par = self.st, self.par
        if kind == "policy":
            st.active[j] = on and st.left[j] > 0
            self._regain()
        elif kind == "shock":
            par.set_shock(j, on)
            st.p[:], st.q[:], st.success[:] = par.innovation, par.imitation, par.success
            st.cap_factor[:] = par.capacity_factor
        elif kind == "month":
            self._month(j)
        elif kind == "quota":
            self.push = self.quotas.push(st.f[F_NOW], self._region_counts())
            self._regain()
        else:
            self.count_at_deadline = count(st)
            self.region_at_deadline = self._region_counts()
            base = self._survivors(st).sum(axis=0) if self.turnover else self.initial
            self.deadline_readings = rules.readings_now(st.A[1:], base, st.unmoved)

    def _month(self, m: int) -> None:
        st = self.st
        self.curve[m] = st.A[1:]
        self.upgraded[m] = self.curve[m] - rules.unmoved_at_or_above(st.unmoved)
        self.by_segment[m] = st.exact
        self.unmoved_month[m] = st.unmoved_r
        if not self.turnover:
            return
        self.region_survivors[m] = self._survivors(st)
        self.survivors[m] = self.region_survivors[m].sum(axis=0)
        if m >= len(self.rule.days):
            return
        p = self.rule.exit_probability(m)
        if p > 0:
            exits(st, self.rng, p)
        counts = self.rule.entrants(self.rng, m).astype(np.int64)
        enter(st, *self.entrant_cells, counts)
        st.f[F_SURV] = self._survivors(st)[:, st.i[I_TLEVEL] - 1].sum()
        if st.f[F_CROSS] < 0 and count(st) >= st.f[F_FIRMS]:  # entrants alone may carry it
            st.f[F_CROSS] = st.f[F_NOW]
        inv_E, inv_Eg = rules.eligible_inverses(st.elig, np.arange(self.par.n_groups))
        st.inv_E[:], st.inv_Es[:] = inv_E, inv_Eg

    @staticmethod
    def _survivors(st: State) -> np.ndarray:
        """(regions, 4): firms existing now that were at or above each level at the start."""
        return rules.at_or_above(st.alive_origin)

    def _region_counts(self) -> np.ndarray:
        st, k = self.st, self.st.i[I_TLEVEL]
        at = self.par.by_region(st.As[:, k].copy())
        unmoved = st.unmoved_r[:, k:].sum(axis=1)
        survivors = self._survivors(st)[:, k - 1] if self.turnover else None
        return self.quotas.region_counts(at, unmoved, survivors)

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> RunResult:
        for when, kind, j, on in self._dated():
            self._advance(when)
            self._event(kind, j, on)
        self._advance(self.sc.horizon + 1e-9)
        st = self.st
        ints = st.i
        events = {"decisions": int(ints[I_DEC]), "starts": int(ints[I_START]),
                  "completions": int(ints[I_COMP]), "failures": int(ints[I_FAIL]),
                  "retries": int(ints[I_RETRY]), "max_waiting": int(ints[I_MAXW]),
                  "events": int(ints[I_DEC] + ints[I_COMP])}
        trace = None
        if ints[I_TRACE]:
            trace = [(("climb", "use", "wait")[int(row[0])], float(row[1]), int(row[2]),
                      int(row[3]), int(row[4])) for row in st.tbuf[:ints[I_TN]]]
        cross = float(st.f[F_CROSS])
        return rules.with_regions(RunResult(
            at_or_above=self.curve, upgraded=self.upgraded, by_segment=self.by_segment,
            initial=self.initial,
            count_at_deadline=float(self.count_at_deadline),
            crossing_time=cross if cross >= 0 else None,
            met=bool(self.count_at_deadline >= self.sc.target.firms),
            events=events, trace=trace,
            spent=tuple(float(x) for x in rules.spent_of(self.par.budget, st.left, st.spent)),
            entered=int(ints[I_ENTER]), exited=int(ints[I_EXIT]),
            exited_upgraded=int(ints[I_EXITUP]),
            survivors=self.survivors if self.turnover else None,
            region_survivors=self.region_survivors if self.turnover else None,
            deadline_readings=self.deadline_readings),
            self.par, self.by_segment, self.unmoved_month, self.region_at_deadline)
