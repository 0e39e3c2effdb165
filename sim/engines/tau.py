"""The fast engine (`--engine tau`): the same model advanced in fixed small steps on cell counts.

Each step draws the firms that decide from binomials, over two half steps around the step's
completions (Strang splitting, so firms finishing mid-step and the peer term are treated
symmetrically; both halves in one draw per cell, `_decide_around`); starts projects while
resources last (FIFO across steps, no overtaking on a lacking resource, as in the exact
engine); and files every started project under the step
in which it will complete, drawn from the law of a start time spread over the step plus its
own lognormal duration. Completions succeed by binomial draws and failures return after the
retry wait. Steps fit inside months, so month ends, the deadline and policy and shock dates
fall on step edges. docs/model.md lists the rules; docs/performance.md measures the bias
against the exact engine. The loops over cells and projects are compiled (`tau_kernels`,
`tau_exits`).

Replications run in batches: every array of the state carries the batch as its first axis,
so a step's Python work is paid once for the whole batch (a batch of one is one
replication). A batch draws from one stream, so each replication's draws depend on the
batch it ran in; `sim.execution.runner` forms batches from the replication indices alone,
so results do not depend on the number of workers.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from sim.engines import rules
from sim.engines.population import N_LEVELS
from sim.engines.result import RunResult
from sim.engines.steps import SubSteps, step_edges
from sim.engines.tau_cells import Cells, families
from sim.engines.tau_kernels import complete, decide, decide_around, take
from sim.engines.tau_projects import TauProjects
from sim.engines.tau_turnover import TauTurnover
from sim.scenario import DAYS_PER_YEAR, Scenario

BATCH = 64
"""Replications advanced together at most (fewer when the completion tables would pass
TABLE_BYTES)."""
TABLE_BYTES = 48 * 2**20


def simulate_tau(scenario: Scenario, rng: np.random.Generator) -> RunResult:
    """Run one replication of `scenario` with fixed steps of about `scenario.tau_step`."""
    return _Tau(scenario, rng).run()[0]


def simulate_tau_batch(scenario: Scenario, rng: np.random.Generator, n: int
                       ) -> list[RunResult]:
    """Run n replications of `scenario` together, drawing from one stream."""
    return _Tau(scenario, rng, n).run()


def batch_size(scenario: Scenario) -> int:
    """Replications per batch for `scenario`: BATCH, or fewer so that the tables of
    completions and returns by step stay within TABLE_BYTES each."""
    days, _ = step_edges(scenario)
    cells = rules.Parameters(scenario).n_segments * Cells(families(scenario)).K
    return int(max(1, min(BATCH, TABLE_BYTES // (4 * len(days) * cells))))


class _Tau(TauTurnover, TauProjects, SubSteps):
    """A batch of replications' state as arrays: [replication, segment, k], k a (level being
    decided, ceiling code) cell that can hold firms (`tau_cells`).

    A ceiling code is the ceiling c (0..4) for a firm that has completed a project since the
    start, and W + c for one that has completed none ("unmoved"), so that the `upgraded`
    reading can be counted: a success moves a firm to the next level's plain codes."""

    def __init__(self, sc: Scenario, rng: np.random.Generator, batch: int = 1):
        self.sc, self.rng, B = sc, rng, batch
        self.B = B
        L = N_LEVELS
        self.params = par = rules.Parameters(sc)
        lay = par.layout
        S = self.S = par.n_segments
        cells = np.array(lay.cells, dtype=np.int64)  # [s, j, c]
        exact = cells.sum(axis=2)
        self.exact = np.repeat(exact[None], B, axis=0)  # [b, s, j] firms at exactly level j
        # [b, j] firms at j that have completed no project; [b, region, j] the same by region
        self.unmoved = np.repeat(exact.sum(axis=0)[None], B, axis=0)
        self.unmoved_r = self.by_region(self.exact)
        W = self.W = L + 1
        # Code families (tau_cells): moved, unmoved; with entry and exit also unmoved
        # entrants and moved firms by the level they started at.
        self.rule = rules.Turnover(sc, par)
        self.F = families(sc)
        self.cells = cm = Cells(self.F)
        idle = np.zeros((S, L, self.F * W), dtype=np.int64)  # deciding on level i+1
        climbs = rules.may_climb(np.arange(L)[:, None], np.arange(L + 1)[None, :])  # [i, c]
        idle[..., W:2 * W] = cells[:, :L, :] * climbs
        flight = np.zeros_like(idle)  # projects under way at the start
        if lay.flight:
            flight[:, :, W:2 * W] = np.array(lay.flight, dtype=np.int64)[:, 1:, :]
        self.flight = cm.pack(flight)
        self.idle = np.repeat(cm.pack(idle - flight)[None], B, axis=0)  # [b, s, k]
        self.level_k = cm.level
        self._turnover_init(cells)
        self.As = rules.at_or_above(self.exact)  # [b, s, k - 1]: at or above k = 1..4
        self.initial = self.As[0].sum(axis=0)
        # Arrays below are indexed by the level being decided, i = k - 1 (columns 1..4 of the
        # rules' arrays).
        self.inv_E = par.inv_eligible[1:]
        self.inv_Es = par.inv_eligible_own[:, 1:]  # of each cell's peer group
        self._levels()
        self.retry = par.retry_years[1:]
        self.sigma = par.sigma[1:]
        self.w = sc.peer_weight

        self.units = par.units[1:]
        self.needs = par.needs[1:]
        self.queued_levels = [i for i in range(L) if self.needs[i]]
        self.in_use = np.zeros((B, len(sc.resources)), dtype=np.int64)
        self.queue: deque[list] = deque()  # per step of decision: [counts [b, s, k], totals]

        self.active = np.zeros((B, len(sc.policies)), dtype=bool)
        self.budgets = rules.Budgets(par, B)
        self.quotas = rules.Quotas(sc, lay.region_at_or_above())
        self.push = np.ones((B, par.n_regions))  # quota push per region, set at reviews
        self._gains: dict[bytes, np.ndarray] = {}
        self.gain = self._gain()  # [b, s, i]: a(s, k) * M(s, k) * push

        days, self.month_at = step_edges(sc)
        self.edge_of_day = {int(d): i for i, d in enumerate(days)}
        self.days = days
        self.edges = days / DAYS_PER_YEAR  # model years
        self.cap_steps = self._capacities()
        self._tables((S, cm.K))
        self.target = rules.TargetCount.of(sc, [int(x) for x in self.initial])
        self.t_level = self.target.level
        self.n_decisions, self.max_waiting = (np.zeros(B, dtype=np.int64) for _ in range(2))
        self.tally = np.zeros((B, 2), dtype=np.int64)  # completions, failures
        # Cells of firms that have completed no project yet (unmoved families); rows for
        # `settled` where the engine keeps none (without entry and exit).
        self.fresh_k = (cm.code >= W) & (cm.code < 3 * W)
        self.no_settled = np.zeros((0, 0, 0, 0), dtype=np.int64)

    # -- shapes -----------------------------------------------------------------------------

    def by_region(self, x: np.ndarray) -> np.ndarray:
        """Sum [b, cell segment, ...] into [b, region, ...]."""
        par = self.params
        return x.reshape(x.shape[0], par.n_regions, par.n_groups, *x.shape[2:]).sum(axis=2)

    def own(self, x: np.ndarray) -> np.ndarray:
        """[b, cell segment, ...]: each cell segment's peer-group sum (`own_adopters`)."""
        R, G = self.params.n_regions, self.params.n_groups
        if R == 1:
            return x
        grouped = x.reshape(x.shape[0], R, G, *x.shape[2:]).sum(axis=1)
        return np.tile(grouped, (1, R) + (1,) * (x.ndim - 2))

    # -- rules in force ----------------------------------------------------------------------

    def _gain(self) -> np.ndarray:
        """a * M * push per replication, from the policies active and the quota pushes."""
        out = np.empty((self.B, self.S, N_LEVELS))
        for b in range(self.B):
            key = self.active[b].tobytes() + self.push[b].tobytes()
            if key not in self._gains:
                self._gains[key] = self.params.gain(self.active[b], self.push[b])[:, 1:]
            out[b] = self._gains[key]
        return out

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
            self.active[:, change.index] = change.on & self.budgets.has_money(change.index)
            self._gains.clear()
            return
        self.params.set_shock(change.index, change.on)
        r, k = self.params.shock_targets(change.index)
        if r is not None:
            self.cap_steps = self._capacities()
        if k is not None:
            self._levels()

    def _readings_now(self) -> np.ndarray:
        """[b, 3, 4]: every reading's parts now (`rules.readings_now`)."""
        base = (rules.at_or_above(self.alive_origin).sum(axis=1) if self.F > 2
                else self.initial)
        return rules.readings_now(self.As.sum(axis=1), base, self.unmoved)

    def _count(self) -> np.ndarray:
        k = self.t_level
        return self.target.count(self.As[:, :, k - 1].sum(axis=1),
                                 self.unmoved[:, k:].sum(axis=1), self.surv_now)

    def _region_counts(self) -> np.ndarray:
        k = self.t_level
        at = self.by_region(self.As[:, :, k - 1])
        unmoved = self.unmoved_r[:, :, k:].sum(axis=2)
        surv = self.region_surv_now()
        return np.stack([self.quotas.region_counts(at[b], unmoved[b],
                                                   None if surv is None else surv[b])
                         for b in range(self.B)])

    # -- decisions and completions --------------------------------------------------------------

    def _hazard(self) -> np.ndarray:
        """The rules' decision hazard of every peer-group cell and level, [b, s, i], now."""
        As = self.As
        return rules.hazard(self.gain, self.p, self.q, self.w,
                            (As.sum(axis=1) * self.inv_E)[:, None, :],
                            self.own(As) * self.inv_Es)

    def _decide(self, stretch: float) -> np.ndarray:
        """Draw the firms of every idle cell that decide within `stretch` years, from the
        rules' hazard at its start."""
        prob = -np.expm1(-stretch * self._hazard())  # [b, s, i]
        return decide(self.rng, self.idle, prob, self.level_k, self.n_decisions)

    def _decide_around(self, half: float, before: np.ndarray, h0: np.ndarray) -> np.ndarray:
        """Draw the firms that decide within two halves of `half` years around the
        completions just made: the firms idle before them (`before`) at hazard h0 in the
        first half and at the hazard now in the second; those they made idle, in the second
        only. One binomial per cell and exposure: the law of drawing the halves in turn, as
        each firm decides independently (1 - (1 - p0)(1 - p1) = 1 - exp(-half (h0 + h1)))."""
        h1 = self._hazard()
        both, late = -np.expm1(-half * (h0 + h1)), -np.expm1(-half * h1)
        return decide_around(self.rng, self.idle, before, both, late, self.level_k,
                             self.n_decisions)

    def _pay(self, D: np.ndarray, paying: list[tuple[int, np.ndarray]], span: float) -> None:
        """Pay each budgeted policy for the decisions D [b, s, k] just drawn over `span`
        years (what it pays per project decided, [s, i]). A replication where some budget
        runs out among them goes through them in order (`_run_out`); the others pay the
        whole amount."""
        per = self.cells.per_level(D)
        amount = [(per * cost).sum(axis=(1, 2)) for _, cost in paying]
        short = np.zeros(self.B, dtype=bool)
        for (k, _), a in zip(paying, amount, strict=True):
            short |= self.active[:, k] & (a >= self.budgets.left[:, k])
        for (k, _), a in zip(paying, amount, strict=True):
            self.budgets.pay_many(k, a, self.active[:, k] & ~short)
        if short.any():
            for b in np.flatnonzero(short):
                self._run_out(int(b), D, paying, span)
            self.gain = self._gain()

    def _run_out(self, b: int, D: np.ndarray, paying: list[tuple[int, np.ndarray]],
                 span: float) -> None:
        """Replication b's decisions D[b], drawn over `span` years at the gains in force,
        among which a budget runs out: as in the exact engine, each policy stops at the
        decision that empties its budget. The decisions are put in a uniform order in time;
        each is kept with the ratio of the gain in force at its turn to the gain it was
        drawn at (thinning: the law of deciding at the lower hazard from then on, to first
        order in the hazard times the step), and the policies in force pay for the kept
        ones. The others go back to idle, undecided. An ending that raises a gain (a policy
        that lowered it, < 1) cannot be thinned: from there the rest of the step is drawn
        anew (`_decide_rest`)."""
        Db = D[b]
        cell, seg, lvl = self._in_order(Db)
        u = self.rng.random(cell.size)
        drawn_at = self._gain_of(b)  # [s, i]
        g_on = drawn_at[seg, lvl]
        keep = np.zeros(cell.size, dtype=bool)
        pos, lifted = 0, False
        while pos < cell.size and not lifted:
            g = self._gain_of(b)[seg[pos:], lvl[pos:]]
            with np.errstate(divide="ignore", invalid="ignore"):
                kept = u[pos:] < np.where(g_on[pos:] > 0, g / g_on[pos:], 1.0)
            paid = [np.cumsum(np.where(kept, cost[seg[pos:], lvl[pos:]], 0.0))
                    if self.active[b, k] else None for k, cost in paying]
            stop, ended = self._pay_in_order(b, paying, paid, cell.size - pos)  # (stretch's last)
            keep[pos:pos + stop + 1] = kept[:stop + 1]
            lifted = ended and bool((self._gain_of(b) > drawn_at).any())
            pos += stop + 1
        back = np.bincount(cell[~keep], minlength=Db.size).reshape(Db.shape)
        D[b] -= back  # (after a lift: every decision past it too, drawn anew below)
        self.idle[b] += back
        self.n_decisions[b] -= int(back.sum())
        if lifted:  # the pos-th of n uniform times is Beta(pos, n + 1 - pos): drawn, so the
            # ending varies from run to run as it does (its mean alone narrowed the spread)
            self._decide_rest(b, D, float(self.rng.beta(pos, cell.size + 1 - pos)), paying,
                              span)

    def _in_order(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One replication's decisions counts [s, k] in a uniform order in time: each one's
        flat cell, segment and level."""
        flat = np.flatnonzero(counts)
        cell = np.repeat(flat, counts.ravel()[flat])[self.rng.permutation(int(counts.sum()))]
        return cell, cell // counts.shape[1], self.level_k[cell % counts.shape[1]]

    def _pay_in_order(self, b: int, paying: list[tuple[int, np.ndarray]],
                      paid: list[np.ndarray | None], n: int) -> tuple[int, bool]:
        """Replication b's policies in force pay for n decisions in order (`paid`: each
        one's running cost, None where the policy is not in force) up to the decision that
        empties the first budget, or the last: (its index, whether a budget emptied). A
        policy whose budget empties stops from the next decision on."""
        stop = min([int(np.searchsorted(c, self.budgets.left[b, k]))
                    for (k, _), c in zip(paying, paid, strict=True) if c is not None]
                   + [n - 1])
        ended = False
        for (k, _), c in zip(paying, paid, strict=True):
            if c is not None and self.budgets.pay_one(k, b, float(c[stop])):
                self.active[b, k] = False
                ended = True
        return stop, ended

    def _gain_of(self, b: int) -> np.ndarray:
        """Replication b's gains in force now, [s, i]."""
        return self.params.gain(self.active[b], self.push[b])[:, 1:]

    def _decide_rest(self, b: int, D: np.ndarray, t0: float,
                     paying: list[tuple[int, np.ndarray]], span: float) -> None:
        """Replication b's idle firms that decide over the rest of the step from `t0` (a
        share of its `span` years), added to D[b]: drawn at the gains in force, put in a
        uniform order over the rest, and paid for by the policies in force; where one of
        them runs out, its later decisions go back to idle and the rest from its time (the
        order statistic of uniform times, drawn) is drawn again at the new gains. Given
        the times, exact in law for a hazard constant over the step but for the gains;
        taking the times as uniform is first order in the hazard times the step."""
        As = self.As  # (the eligible inverses are per replication with entry and exit)
        base = rules.hazard(1.0, self.p, self.q, self.w,
                            (As.sum(axis=1) * self.inv_E)[:, None, :],
                            self.own(As) * self.inv_Es)[b]  # [s, i]: at gain 1
        while t0 < 1.0:
            prob = -np.expm1(-(1.0 - t0) * span * self._gain_of(b) * base)[:, self.level_k]
            more = self.rng.binomial(self.idle[b], prob)  # [s, k]
            if not more.any():
                return
            cell, seg, lvl = self._in_order(more)
            paid = [np.cumsum(cost[seg, lvl]) if self.active[b, k] else None
                    for k, cost in paying]
            stop, ended = self._pay_in_order(b, paying, paid, cell.size)  # the last one kept
            taken = np.bincount(cell[:stop + 1], minlength=more.size).reshape(more.shape)
            D[b] += taken
            self.idle[b] -= taken
            self.n_decisions[b] += int(taken.sum())
            if not ended:
                return
            t0 += (1.0 - t0) * float(self.rng.beta(stop + 1, cell.size - stop))

    def _complete(self, C: np.ndarray, back: np.ndarray) -> None:
        """Finish the projects C [b, s, k] (emptied in place): release units, climb on
        success, go back to idle now or after the retry wait on failure (`back`: the row of
        the returns table each level's failures go to). Works on the cells that hold
        projects only."""
        cm = self.cells
        complete(self.rng, C, self.success, cm.level, self.fresh_k, cm.climb_k, cm.climb_code,
                 self.units_k, self.retry <= 0, back, self.params.region, self.idle,
                 self.exact, self.As, self.unmoved, self.unmoved_r,
                 self.settled if self.F > 2 else self.no_settled, self.ret, self.returning,
                 self.in_use, self.tally)

    # -- main loop -------------------------------------------------------------------------------

    def run(self) -> list[RunResult]:
        """Advance the batch to the horizon; one result per replication."""
        sc, edges, B = self.sc, self.edges, self.B
        L, S = N_LEVELS, self.S
        n_steps = len(edges) - 1
        cal = self._calendar()
        months = len(self.month_at)
        curve = np.zeros((B, months, L), dtype=np.int64)
        upgraded = np.zeros((B, months, L), dtype=np.int64)
        by_segment = np.zeros((B, months, S, L + 1), dtype=np.int64)
        unmoved_month = np.zeros((B, months, self.params.n_regions, L + 1), dtype=np.int64)
        region_at_deadline = self._region_counts()
        reviews = {self.edge_of_day[d] for d in self.quotas.days}
        deadline_edge = self.edge_of_day[(sc.target.deadline - sc.start).days + 1]
        mid_days = (0.5 * (edges[:-1] + edges[1:])) * DAYS_PER_YEAR
        # Failures return after the retry wait counted from mid-step, at the earliest in the
        # next step (this step's returns have been taken by then); with no wait, at once
        # (their row is then the unread last one).
        back = np.full((n_steps, L), n_steps, dtype=np.int64)
        for i, r in enumerate(self.retry):
            if r > 0:
                day = np.minimum(mid_days + r * DAYS_PER_YEAR, self.n_days).astype(np.int64)
                back[:, i] = np.maximum(self.step_of_day[day], np.arange(n_steps) + 1)
        paying = [(j, self.params.subsidy(j)[:, 1:]) for j in self.params.paying()]
        count = self._count()
        crossing = np.where(count >= sc.target.firms, 0.0, np.nan)
        count_at_deadline = count.copy() if deadline_edge == 0 else np.full(B, -1.0)
        readings = self._readings_now()  # at the deadline (RunResult.deadline_readings)
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
                self.gain = self._gain()
                policy_changed = False
            t0, dt = edges[m], edges[m + 1] - edges[m]
            if fast.any():
                if dt not in within:
                    within[dt] = self._within(dt)
                n_sub = self._substeps(dt, within[dt])
            else:
                n_sub = 1
            # Projects due in this step from earlier ones, completed at its middle.
            due = take(self.pipe, m, self.filed)
            d0, d1 = float(self.days[m]), float(self.days[m + 1])
            sub = dt / n_sub
            for j in range(n_sub):
                self.in_use_start = self.in_use.copy()  # units held as the sub-step starts
                # Decisions over the first half of the (sub-)step, the step's due completions
                # and returns in its middle, decisions over the second half with the updated
                # peer shares: firms that complete or return during the step are exposed for
                # half of it, as on average they are (Strang splitting). Projects that start
                # and finish within the step count at the end of their sub-step.
                if j == n_sub // 2:
                    h0, before = self._hazard(), self.idle.copy()
                    self._complete(due, back[m])
                    self.idle += take(self.ret, m, self.returning)
                    D = self._decide_around(0.5 * sub, before, h0)
                else:  # nothing changes between the halves: one draw over both
                    D = self._decide(sub)
                if paying:
                    self._pay(D, paying, sub)
                span = (d0 + (d1 - d0) * j / n_sub, d0 + (d1 - d0) * (j + 1) / n_sub)
                self.quick = False
                self._start_decided(D, m, span)
                if self.quick:  # projects short enough to finish where they start
                    self._complete(take(self.pipe, m, self.filed), back[m])

            # The state at the end of the step.
            before = count
            count = self._count()
            first = np.isnan(crossing) & (count >= sc.target.firms)
            if first.any():  # where the step's j-th of n steps up falls on average, j/(n+1):
                # inside the step, so dated by the day the step-end count that met it reads
                crossing[first] = (t0 + dt * (sc.target.firms - before[first])
                                   / (np.maximum(count[first] - before[first], 1) + 1))
            if m + 1 == deadline_edge:
                count_at_deadline = count.copy()
                region_at_deadline = self._region_counts()
                readings = self._readings_now()
            if m + 1 in reviews:  # a quota review at the step's end (before firms come and go)
                push = np.stack([self.quotas.push(float(edges[m + 1]), c)
                                 for c in self._region_counts()])
                policy_changed |= not np.array_equal(push, self.push)
                self.push = push
            mi = self.month_at.get(m + 1)
            if mi is not None:
                curve[:, mi] = self.As.sum(axis=1)
                upgraded[:, mi] = curve[:, mi] - rules.unmoved_at_or_above(self.unmoved)
                by_segment[:, mi] = self.exact
                unmoved_month[:, mi] = self.unmoved_r
                if self.F > 2:
                    self._month_end(mi, m + 1)
                    count = self._count()
                    # Entrants alone may carry the count over the target: it crossed now.
                    first = np.isnan(crossing) & (count >= sc.target.firms)
                    crossing[first] = float(edges[m + 1])

        out = []
        for b in range(B):
            events = {"decisions": int(self.n_decisions[b]),
                      "completions": int(self.tally[b, 0]),
                      "failures": int(self.tally[b, 1]),
                      "max_waiting": int(self.max_waiting[b]), "steps": n_steps,
                      "events": int(self.n_decisions[b] + self.tally[b, 0])}
            cross = None if np.isnan(crossing[b]) else float(crossing[b])
            out.append(rules.with_regions(RunResult(
                at_or_above=curve[b], upgraded=upgraded[b], by_segment=by_segment[b],
                initial=self.initial, count_at_deadline=float(count_at_deadline[b]),
                crossing_time=cross, met=bool(self.target.met(count_at_deadline[b])),
                events=events, spent=tuple(float(x) for x in self.budgets.spent[b]),
                deadline_readings=readings[b], **self._turnover_fields(b)),
                self.params, by_segment[b], unmoved_month[b], region_at_deadline[b]))
        return out
