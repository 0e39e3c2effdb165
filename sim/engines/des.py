"""The exact discrete-event engine: firms as counts per cell, every event at its exact time.

Firms of one segment and level are exchangeable, so the state is a table of counts. Dated
processes (policies, shocks, capacity steps, month ends, the deadline) run on a simpy
`Environment`; project completions and retry returns sit in a calendar of day buckets beside
it (one tuple each, merged with simpy's calendar by time); decisions, whose rate only
changes when something happens, are drawn from the total hazard of all cells between
events (Gillespie's direct method, exact because the decision process is memoryless).
"""

from __future__ import annotations

import math
from collections import deque
from heapq import heappop

import numpy as np
import simpy

from sim.engines import rules
from sim.engines.calendar import Calendar, Stream
from sim.engines.des_dated import DatedProcesses
from sim.engines.des_resources import Resources
from sim.engines.des_turnover import Turnover
from sim.engines.population import N_LEVELS
from sim.engines.result import RunResult
from sim.scenario import Scenario

FRESH = 8
"""Bit of a ceiling code (ceilings are 0..4) marking a firm that has completed no project."""
ORIGIN = 4
"""With entry and exit, a code's bits from ORIGIN on hold the level the firm started at (0
for entrants), so the `new` reading can count the survivors of the starting stock."""


def simulate(scenario: Scenario, rng: np.random.Generator, *, trace: bool = False) -> RunResult:
    """Run one replication of `scenario` with the random stream `rng`."""
    return _Engine(scenario, rng, trace).run()


class _Engine(DatedProcesses, Resources, Turnover):
    """One replication's state. All of it lives here; nothing at module level."""

    def __init__(self, sc: Scenario, rng: np.random.Generator, trace: bool):
        self.sc = sc
        self.draw = Stream(rng)
        # A second stream for what the first never drew before: which firm of a cell is one
        # that has completed no project yet, and the time left on projects under way at the
        # start; so tracking the `upgraded` reading leaves the main stream's draws as they were.
        self.side = Stream(rng.spawn(1)[0])
        # The streams' buffers, which the hot paths pop themselves (Stream).
        self.uni, self.norm, self.side_uni = self.draw.uni, self.draw.norm, self.side.uni
        self.env = simpy.Environment()
        self.trace: list[tuple] | None = [] if trace else None
        self.params = par = rules.Parameters(sc)
        lay = par.layout
        self.n_seg = n_seg = par.n_segments
        self.grp, self.reg = par.group.tolist(), par.region.tolist()
        L = N_LEVELS

        # Cells. Index i = s * L + (k - 1) names "segment s deciding on level k".
        # idle[i][c]: idle firms at level k-1 with ceiling c (> k-1), which may decide.
        self.idle = [[0] * (L + 1) for _ in range(n_seg * L)]
        self.idle_total = [0] * (n_seg * L)
        self.exact = [[0] * (L + 1) for _ in range(n_seg)]  # firms at exactly level j
        for s in range(n_seg):
            for j in range(L + 1):
                for c in range(L + 1):
                    cnt = lay.cells[s][j][c]
                    self.exact[s][j] += cnt
                    if rules.may_climb(j, c):
                        self.idle[s * L + j][c] += cnt
                        self.idle_total[s * L + j] += cnt
        # Firms that have completed no project since the start ("unmoved"): at exactly level j,
        # and idle ones per cell and ceiling. A firm's project carries this flag as bit 8 of
        # its ceiling code (FRESH), so failures return it and successes clear it.
        # The rules' eligibility as a table for the hot loop: climbs[level][ceiling].
        self.climbs = [[bool(rules.may_climb(j, c)) for c in range(L + 1)] for j in range(L + 1)]
        self.unmoved = [sum(self.exact[s][j] for s in range(n_seg)) for j in range(L + 1)]
        self.unmoved_r = [[0] * (L + 1) for _ in range(par.n_regions)]  # the same per region
        for s in range(n_seg):
            for j in range(L + 1):
                self.unmoved_r[self.reg[s]][j] += self.exact[s][j]
        self.fresh_idle = [row[:] for row in self.idle]
        # Projects under way at the start leave the idle pool now and start below.
        flight = [(s, k, c, n) for s, seg in enumerate(lay.flight) for k in range(1, L + 1)
                  for c, n in enumerate(seg[k]) if n]
        for s, k, c, n in flight:
            for row in (self.idle[s * L + k - 1], self.fresh_idle[s * L + k - 1]):
                row[c] -= n
            self.idle_total[s * L + k - 1] -= n
        self._turnover_init(rng, flight)
        self.A = [0] * (L + 1)  # firms at or above k (index 1..4)
        self.As = [[0] * (L + 1) for _ in range(n_seg)]
        for s in range(n_seg):
            for k in range(1, L + 1):
                self.As[s][k] = sum(self.exact[s][k:])
                self.A[k] += self.As[s][k]
        # Adopters of each peer group (size segment across the regions).
        self.Ag = (np.array(self.As).reshape(par.n_regions, par.n_groups, L + 1).sum(axis=0)
                   .tolist())
        self.initial = np.array(self.A[1:])
        self.inv_E = par.inv_eligible.tolist()
        self.inv_Es = par.inv_eligible_by_segment.tolist()  # per peer group

        # Level parameters as plain lists (the hot loop indexes them); shocks refresh them.
        self._levels()
        self.retry = par.retry_years.tolist()
        self.mu = [math.log(m) if m > 0 else -math.inf for m in par.median_years.tolist()]
        self.sigma = par.sigma.tolist()
        self.w = sc.peer_weight

        # Resources.
        self.cap_base = par.capacity_base.tolist()
        self.log_growth = par.log_growth.tolist()
        self.in_use = [0] * len(sc.resources)
        self.needs = par.needs
        self.levels_with_needs = [k for k in range(1, L + 1) if self.needs[k]]
        self.queues: list[deque] = [deque() for _ in range(L + 1)]  # waiting projects per level
        self.blocked: set[int] = set()  # resources an earlier waiting project lacks
        self.tick_pending = [False] * len(sc.resources)
        self.cap_now = [0] * len(sc.resources)
        self.cap_from = [math.inf] * len(sc.resources)  # cache empty: recompute on first use
        self.cap_until = [-math.inf] * len(sc.resources)
        self.seq = self.n_waiting = 0
        # Project completions and retry returns: (time, seq, s, +k or -k, c), beside simpy's
        # calendar, because a simpy Event per project costs ~4 us of creation and dispatch.
        self.calendar = Calendar(sc.horizon)
        self.ticked = False  # a capacity tick joined simpy's calendar since the last look
        self.hseq = 0

        # Policies.
        self.policy_active = [False] * len(sc.policies)
        self.budgets = rules.Budgets(par)
        self.cost = par.policy_cost.tolist()
        self.quotas = rules.Quotas(sc, lay.region_at_or_above())
        self.push = np.ones(par.n_regions)  # quota push per region, set at reviews
        self.gain: list[list[float]] = []  # a(s, k) * M(s, k) * push, set by _regain
        # Policies that pay for a decision in cell i (segment in scope, a cost for the level).
        self.paying = [[j for j in par.paying() if par.subsidy(j)[i // L, i % L + 1] > 0]
                       for i in range(n_seg * L)]

        # Rates per peer-group cell gi = g * L + (k - 1), summed over the regions, so that a
        # draw scans the groups' cells and then the regions within the one it hits. The
        # hazard of an idle firm in cell i is gain[i] * x[gi]: x, the part the peer signal
        # sets, is shared by the group's cells; W[gi] = sum of gain * idle over them, so
        # rate[gi] = x[gi] * W[gi] and a change of the peer signal costs one product.
        self.R = 0.0
        self.rate = [0.0] * (par.n_groups * L)
        self.x = [0.0] * (par.n_groups * L)
        self.W = [0.0] * (par.n_groups * L)
        self.gcell = [(s % par.n_groups) * L + k for s in range(n_seg) for k in range(L)]
        # The cells of each peer-group cell, in order of region (what a draw scans).
        self.members = [[s * L + gi % L for s in range(gi // L, n_seg, par.n_groups)]
                        for gi in range(par.n_groups * L)]
        self.gcells = [[g * L + k - 1 for g in range(par.n_groups)]  # of level k, per group
                       for k in range(L + 1)]
        self.single = par.n_regions == 1
        # What a decision in cell i reads: (s, k, idle[i], fresh_idle[i], gcell[i], paying[i],
        # needs[k]).
        self.cell = [(i // L, i % L + 1, self.idle[i], self.fresh_idle[i], self.gcell[i],
                      self.paying[i], self.needs[i % L + 1]) for i in range(n_seg * L)]
        self.gflat: list[float] = []  # gain per cell, updated in place by _regain
        self._regain()

        # Target.
        self.target = rules.TargetCount.of(sc, self.A[1:])
        self.t_level, self.t_firms = self.target.level, sc.target.firms
        self.crossing: float | None = None
        self.unchecked = 0
        self._check_target(0.0)
        self.count_at_deadline = -1
        self.deadline_readings = None

        self.months = [sc.years(d, end_of_day=True) for d in sc.month_ends()]
        self.horizon_days = (sc.end - sc.start).days + 1
        self.curve, self.upgraded = (np.zeros((len(self.months), L), dtype=np.int64)
                                     for _ in range(2))
        self.by_segment = np.zeros((len(self.months), n_seg, L + 1), dtype=np.int64)
        self.unmoved_month = np.zeros((len(self.months), par.n_regions, L + 1), dtype=np.int64)
        self.region_at_deadline = np.zeros(par.n_regions)
        self.n_decisions = self.n_starts = self.n_completions = 0
        self.n_failures = self.n_retries = self.max_waiting = 0
        self._in_flight([(s, k, c | FRESH | self.born[k - 1], n) for s, k, c, n in flight])

    # -- rates ---------------------------------------------------------------------------------

    def _levels(self) -> None:
        """Take the level parameters in force (after shocks) from the rules."""
        par = self.params
        self.p, self.q, self.success = (x.tolist() for x in (par.innovation, par.imitation,
                                                               par.success))

    def _hazards(self, k: int) -> None:
        """Recompute the per-firm decision hazard of level k in every segment."""
        p, q, w = self.p[k], self.q[k], self.w
        pop = self.A[k] * self.inv_E[k]
        hazard, Ag, inv_Es, x, W, rate = (rules.hazard, self.Ag, self.inv_Es, self.x, self.W,
                                          self.rate)
        for g, gi in enumerate(self.gcells[k]):
            x[gi] = xg = hazard(1.0, p, q, w, pop, Ag[g][k] * inv_Es[g][k])  # h / gain
            rate[gi] = xg * W[gi]

    def _total(self) -> None:
        self.R = math.fsum(self.rate)

    # -- events --------------------------------------------------------------------------------

    def _decide(self, i: int, t: float) -> None:
        """An idle firm in cell i decides to start its next project at time t."""
        L = N_LEVELS
        s, k, idle, fresh, gi, paying, needs = self.cell[i]
        n = self.idle_total[i]
        # The deciding firm's (hidden) ceiling, drawn from the idle pool's composition.
        c = L
        if idle[L] != n:
            uni = self.uni
            u = (uni.pop() if uni else self.draw.uniform()) * n
            for c in range(k, L + 1):
                u -= idle[c]
                if u < 0:
                    break
            while idle[c] == 0:  # rounding carried u past the last non-empty ceiling
                c -= 1
        # Whether it has completed no project yet: drawn (side stream) if idle firms of its
        # ceiling are of both kinds.
        f = fresh[c]
        if f and f != idle[c]:
            side = self.side_uni
            is_fresh = (side.pop() if side else self.side.uniform()) * idle[c] < f
        else:
            is_fresh = f > 0
        if is_fresh:
            code = c | FRESH
            if self.turnover:  # the origin: the one implied unless others are idle here
                code = (self._take_origin(i, code, f) if self.extra[i][code]
                        else code | self.born[k - 1])
            fresh[c] = f - 1
        else:
            code = c
            if self.turnover and self.extra[i][code]:
                code = self._take_origin(i, code, idle[c] - f)
        idle[c] -= 1
        self.idle_total[i] = n - 1
        gk = self.gflat[i]
        self.W[gi] -= gk
        h = gk * self.x[gi]
        self.rate[gi] -= h
        self.R -= h
        self.n_decisions += 1

        for j in paying:
            if self.policy_active[j] and self.budgets.pay(j, self.cost[j][k]):
                self._set_policy(j, False)

        if needs:
            queue = self.queues[k]
            if not queue:  # an earlier project of this level would be waiting otherwise
                in_use, blocked = self.in_use, self.blocked
                cap_now, cap_from, cap_until = self.cap_now, self.cap_from, self.cap_until
                ok = True
                for r, units in needs:
                    cap = (cap_now[r] if cap_from[r] <= t < cap_until[r]
                           else self._capacity(r, t))
                    if in_use[r] + units > cap:
                        ok = False
                        blocked.add(r)
                        self._schedule_tick(r, t)
                    elif blocked and r in blocked:
                        ok = False
                if ok:
                    self._start(s, k, code, t)
                    return
            if self.trace is not None:  # waits: behind how many, and whether its units were free
                self.trace.append(("wait", t, k, len(queue), int(all(
                    self.in_use[r] + u <= self._capacity(r, t) for r, u in needs))))
            self.seq += 1
            queue.append((self.seq, s, code))
            self.n_waiting += 1
            if self.n_waiting > self.max_waiting:
                self.max_waiting = self.n_waiting
            return
        self._start(s, k, code, t)

    def _complete(self, t: float, s: int, k: int, c: int) -> None:
        """A project of segment s on level k (code c) completes at time t: a climb or a
        failure, which returns the firm to the idle pool now or after the retry wait."""
        needs = self.needs[k]
        in_use = self.in_use
        for r, units in needs:
            in_use[r] -= units
        self.n_completions += 1
        success = self.success[k]
        uni = self.uni
        if success >= 1.0 or (uni.pop() if uni else self.draw.uniform()) < success:
            if c & FRESH:
                self.unmoved[k - 1] -= 1
                self.unmoved_r[self.reg[s]][k - 1] -= 1
                c ^= FRESH
            ceil = c & 7
            exact = self.exact[s]
            exact[k - 1] -= 1
            exact[k] += 1
            self.A[k] += 1
            self.As[s][k] += 1
            self.Ag[self.grp[s]][k] += 1
            if self.trace is not None:
                self.trace.append(("climb", t, s, k - 1, k))
            if self.climbs[k][ceil]:
                i = s * N_LEVELS + k
                self.idle[i][ceil] += 1
                self.idle_total[i] += 1
                if c >> ORIGIN:  # not the origin implied for a moved firm, 0 (turnover only)
                    self._put_origin(i, c)
                gi, gk = self.gcell[i], self.gflat[i]
                self.W[gi] += gk
                self.rate[gi] += gk * self.x[gi]
            elif self.turnover:
                self._settle(s, k, c)
            self._hazards(k)
            if k >= self.t_level and self.crossing is None:
                if self.unchecked:
                    self.unchecked -= 1
                else:
                    self._check_target(t)
        else:
            self.n_failures += 1
            if self.retry[k] > 0:
                self.hseq = hseq = self.hseq + 1
                self.calendar.push((t + self.retry[k], hseq, s, -k, c))  # k < 0: a return
                if self.turnover:
                    self.live[hseq] = (s, -k, c)
            else:
                self._back_to_idle(s, k, c)
        if self.n_waiting and needs:
            self._serve_queues(t)
        self.R = math.fsum(self.rate)

    def _return(self, s: int, k: int, c: int) -> None:
        """A firm whose level-k project failed is back from its retry wait."""
        self.n_retries += 1
        self._back_to_idle(s, k, c)
        self.R = math.fsum(self.rate)

    def _back_to_idle(self, s: int, k: int, c: int) -> None:
        i = s * N_LEVELS + k - 1
        if self.turnover:
            self._put_origin(i, c)
        c &= FRESH | 7
        if c & FRESH:
            c ^= FRESH
            self.fresh_idle[i][c] += 1
        self.idle[i][c] += 1
        self.idle_total[i] += 1
        gi, gk = self.gcell[i], self.gflat[i]
        self.W[gi] += gk
        self.rate[gi] += gk * self.x[gi]

    def _count(self) -> float:
        k = self.t_level
        return self.target.count(self.A[k], sum(self.unmoved[k:]), self.surv_now)

    def _check_target(self, t: float) -> None:
        """Note the time t if the count has reached the target (called while crossing is None).
        A success at or above the target level adds at most one firm to the count (and nothing
        else changes it but entry and exit, which reset `unchecked`), so when the count is short
        by d firms the next ceil(d) - 1 such successes need no look."""
        count = self._count()
        if count >= self.t_firms:
            self.crossing = t
        else:
            self.unchecked = math.ceil(self.t_firms - count) - 1

    def _regain(self) -> None:
        """Take a(s, k) * M(s, k) * quota push from the rules after a policy or push change."""
        L = N_LEVELS
        self.gain = self.params.gain(self.policy_active, self.push).tolist()
        self.gflat[:] = [self.gain[s][k] for s in range(self.n_seg) for k in range(1, L + 1)]
        W = self.W
        for gi in range(len(W)):
            W[gi] = 0.0
        for i, n in enumerate(self.idle_total):
            W[self.gcell[i]] += self.gflat[i] * n
        for k in range(1, L + 1):
            self._hazards(k)
        self._total()

    # -- main loop -----------------------------------------------------------------------------

    def run(self) -> RunResult:
        env = self.env
        for j in range(len(self.sc.policies)):
            env.process(self._dated_process("policy", j))
        for i in range(len(self.sc.shocks)):
            env.process(self._dated_process("shock", i))
        # At a month end, the count at the deadline and a quota review read the month's
        # state before its exits and entrants: at equal times simpy runs events in the order
        # they were scheduled, so these processes start (and schedule) before the months'.
        env.process(self._deadline_process())
        if self.quotas.days:
            env.process(self._quota_process())
        env.process(self._month_process())
        horizon = self.sc.horizon + 1e-9
        draw, exps, unis = self.draw, self.draw.exp, self.draw.uni
        decide, complete, give_back = self._decide, self._complete, self._return
        rate, x, gflat, idle_total = self.rate, self.x, self.gflat, self.idle_total
        members, single = self.members, self.single
        live = self.live if self.turnover else None
        cells = range(len(rate))
        calendar, peek, inf = self.calendar, env.peek, math.inf
        now = 0.0
        ep = peek()  # simpy's next event: changes with a step or a capacity tick (`ticked`)
        while True:
            cur = calendar.cur
            if not cur:
                calendar.first()  # brings the next day's bucket forward
                cur = calendar.cur
            # Only `first` replaces `cur`; pushes go into it or later days, so from here until
            # the next pop `cur` is empty only while the calendar is.
            if self.ticked:
                self.ticked = False
                ep = peek()
            nxt = cur[0][0] if cur else inf
            if ep < nxt:
                nxt = ep
            if horizon < nxt:
                nxt = horizon
            t = now
            # Decisions until the next calendar event (memoryless: redraw after each event).
            R = self.R
            while R > 1e-300:
                t += (exps.pop() if exps else draw.exponential()) / R
                if t >= nxt:
                    break
                u = (unis.pop() if unis else draw.uniform()) * R
                i = 0
                for i in cells:  # noqa: B007 - i is used after the loop
                    u -= rate[i]
                    if u < 0:
                        break
                if not single:  # the region within the group's cell, by what u has left
                    u += rate[i]
                    xg = x[i]
                    for i in members[i]:  # noqa: B020 - the cell picked replaces its group
                        u -= gflat[i] * xg * idle_total[i]
                        if u < 0:
                            break
                if idle_total[i] == 0:  # rounding put u past the last non-empty cell
                    i = max(range(len(gflat)), key=lambda j: gflat[j] * idle_total[j])
                decide(i, t)
                if cur and cur[0][0] < nxt:
                    nxt = cur[0][0]  # a project just started completes first
                if self.ticked:
                    self.ticked = False
                    ep = peek()  # a capacity tick was scheduled
                    if ep < nxt:
                        nxt = ep
                R = self.R
            if nxt >= horizon:
                break
            if cur and cur[0][0] <= ep:
                now, hseq, s, k, c = heappop(cur)
                if live is not None and live.pop(hseq, None) is None:
                    continue  # its firm has left
                if k > 0:
                    complete(now, s, k, c)
                else:
                    give_back(s, -k, c)
            else:
                env.step()
                now, ep = env.now, peek()
        events = {"decisions": self.n_decisions, "starts": self.n_starts,
                  "completions": self.n_completions, "failures": self.n_failures,
                  "retries": self.n_retries, "max_waiting": self.max_waiting,
                  "events": self.n_decisions + self.n_completions}
        return rules.with_regions(RunResult(
            at_or_above=self.curve, upgraded=self.upgraded, by_segment=self.by_segment,
            initial=self.initial, count_at_deadline=self.count_at_deadline,
            crossing_time=self.crossing, met=self.target.met(self.count_at_deadline),
            events=events, spent=tuple(float(x) for x in self.budgets.spent), trace=self.trace,
            entered=self.entered, exited=self.exited, exited_upgraded=self.exited_upgraded,
            survivors=self.survivors if self.turnover else None,
            region_survivors=self.region_survivors if self.turnover else None,
            deadline_readings=self.deadline_readings),
            self.params, self.by_segment, self.unmoved_month, self.region_at_deadline)
