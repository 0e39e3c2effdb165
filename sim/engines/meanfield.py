"""The mean-field engine: the deterministic large-population limit of the same scenario.

The state is the expected number of firms in each lane (segment s, target level k, hidden
eligibility ceiling c) that are idle, waiting for resources, in each implementation stage,
or waiting to retry. The ODEs are solved with `scipy.integrate.solve_ivp` (BDF with a sparse
Jacobian: sums that many rates depend on, such as units in use and adopters per level, are
carried as states of their own so that the Jacobian stays sparse; its LU is ordered by
minimum degree, `SparseBDF`), restarted at every policy, shock, budget and quota-review date
rather than smoothed across them.

Approximations (the exact engine has none of them; docs/validation.md measures them):
- a lognormal implementation time is replaced by the phase-type time with the same mean and
  variance (Tijms' mixture of Erlang(n-1) and Erlang(n), n = ceil(1 / CV^2),
  CV^2 = exp(sigma^2) - 1); above CV^2 = 1 an exponential (same mean only);
- a retry wait of fixed length is an Erlang time of RETRY_STAGES stages with that mean;
- resources are a fluid queue: waiting firms start at rate KAPPA per year, scaled down
  smoothly as free units run out, so units in use stay (to O(1/KAPPA)) within capacity;
  when a resource binds, the levels that need it share the freed units in proportion to
  their waiting mass rather than strictly first come, first served.

Where these are far from the exact engine (stress cases against `des` at 100,000-800,000
firms, 6 December 2026; shipped scenarios' counts within 0.4%):
- long queues that several levels share: with 9,000 projects under way at the start on
  1,500 integrators the count was 2,581 against the exact 1,073, as the projects that cannot
  be placed wait in the ordinary lanes and share freed units with new decisions instead of
  going first in line, level by level; the `upgraded` reading at a level whose projects under
  way wait is about 1.5% off even where the count agrees;
- quotas whose count sits at its due line at a review: the push is all or nothing, so the
  deterministic path takes one side while the exact engine's runs split: about 3% of the
  pushed levels' stock, not shrinking with the population;
- entry and exit run continuously here and at month ends in the other engines: the mean
  field leads them by up to a month of both (docs/model.md, Firms entering and leaving).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse
from scipy.integrate import solve_ivp

from sim.engines import rules
from sim.engines.meanfield_build import linear_flows
from sim.engines.meanfield_parts import (
    RETRY_STAGES,
    SparseBDF,
    Triplets,
    erlang_stages,
    lanes_of,
    place_flight,
)
from sim.engines.meanfield_turnover import MeanFieldTurnover
from sim.engines.population import N_LEVELS
from sim.engines.result import RunResult
from sim.scenario import DAYS_PER_YEAR, Scenario

KAPPA = 2000.0  # per year: a waiting firm starts within ~4 hours when units are free
RTOL, ATOL = 1e-6, 1e-3  # relative; absolute in firms


class _MeanField(MeanFieldTurnover):
    def __init__(self, sc: Scenario):
        self.sc = sc
        self.params = par = rules.Parameters(sc)
        lay = par.layout
        self.n_seg = S = par.n_segments
        self.lanes = ln = lanes_of(S)
        n_lanes = len(ln.seg)
        exact = np.array([[sum(cs) for cs in seg] for seg in lay.cells], dtype=float)  # (S, 5)
        self.As0 = np.array([[exact[s, k:].sum() for k in range(N_LEVELS + 1)]
                             for s in range(S)])  # (S, 5): at or above k
        self.initial = self.As0.sum(axis=0)[1:]
        self.Ag0 = self.As0.reshape(par.n_regions, par.n_groups, -1).sum(axis=0)  # peer groups

        fits = [erlang_stages(12 * med, sig) if med > 0 else (0, 0.0, 0.0)
                for med, sig in zip(par.median_years, par.sigma, strict=True)]
        fits[0] = (0, 0.0, 0.0)  # level 0 is never decided on
        self.stages = [f[0] for f in fits]
        self.stage_rate = [f[1] for f in fits]
        self.stage_skip = [f[2] for f in fits]
        self.retry_rate = [RETRY_STAGES / r if r > 0 else 0.0 for r in par.retry_years]
        self.res_names = par.resource_names
        self.needs = par.needs

        # State layout: idle | waiting | running stages per level | cooling stages | Y | spent
        off = 0
        self.o_idle = off
        off += n_lanes
        self.o_wait = off
        off += n_lanes
        self.o_run = [0] * (N_LEVELS + 1)
        for k in range(1, N_LEVELS + 1):
            self.o_run[k] = off
            off += len(ln.by_level[k]) * self.stages[k]
        self.o_cool = [0] * (N_LEVELS + 1)
        for k in range(1, N_LEVELS + 1):
            self.o_cool[k] = off
            off += len(ln.by_level[k]) * (RETRY_STAGES if self.retry_rate[k] > 0 else 0)
        self.o_y = off  # cumulative successes into level k per segment: (S, 4)
        off += S * N_LEVELS
        self.o_z = off  # unmoved firms (no project completed) at exactly each level: (S, 5)
        off += S * (N_LEVELS + 1)  # (at level 0 not kept up to date: no count needs it)
        self.o_x = off  # firms that left after a project at or above the target level
        off += 1
        self.o_spent = off
        off += len(sc.policies)
        # Sums carried as states of their own (kept equal to them: synced at each restart,
        # derivative = the sum of the derivatives), so that what depends on a sum has a
        # Jacobian column, not a dense block: units in use of each resource (u), successes
        # per level nationally (a) and per peer group and level (g).
        self.o_u = off
        off += len(par.resource_names)
        self.o_a = off
        off += N_LEVELS
        self.o_g = off
        off += par.n_groups * N_LEVELS
        self.size = off

        y0 = np.zeros(self.size)
        self.flight = np.zeros(n_lanes)  # projects under way at the start, per lane
        for i in range(n_lanes):
            s, k, c = int(ln.seg[i]), int(ln.lvl[i]), int(ln.ceil[i])
            if ln.fresh[i] == (k > 1):  # every firm starts unmoved
                y0[self.o_idle + i] = lay.cells[s][k - 1][c]
                if lay.flight:
                    self.flight[i] = lay.flight[s][k][c]
        y0[self.o_idle:self.o_idle + n_lanes] -= self.flight
        y0[self.o_z:self.o_z + S * (N_LEVELS + 1)] = exact.ravel()  # every firm unmoved
        self.y0 = y0
        self._turnover_init(exact)

        # Time-varying: policies switch at dated restarts, budgets run out at events.
        self.policy_on = np.zeros(len(sc.policies), dtype=bool)
        self.policy_spent_out = np.zeros(len(sc.policies), dtype=bool)
        self.budget = par.budget
        self.target = rules.TargetCount.of(sc, self.initial)
        self.inv_E = par.inv_eligible
        self.inv_Es = par.inv_eligible_own  # of each cell segment's peer group
        self.quotas = rules.Quotas(sc, lay.region_at_or_above())
        self.push = np.ones(par.n_regions)
        self._built: dict[tuple, tuple] = {}  # _build's matrices per success probabilities
        self._sum_matrices()
        self.decay, self.decay_jac = self._exit_decay()
        self._set_multipliers()

    def _sum_matrices(self) -> None:
        """`sums` (sum states x size): what each sum state adds up; `lift` (size x size) adds
        them to a vector's sum states. The units held by running states are fixed by the
        levels' needs."""
        par, ln, S, L = self.params, self.lanes, self.n_seg, N_LEVELS
        units = Triplets(len(par.resource_names), self.size)
        for k in range(1, L + 1):
            pos = np.arange(len(ln.by_level[k]) * self.stages[k])
            for r, n in self.needs[k]:
                units.add(r, self.o_run[k] + pos, float(n))
        self.run_units = units.csr().toarray()
        n_sum = self.size - self.o_u
        rows = Triplets(n_sum, self.size)
        for r in range(len(par.resource_names)):
            rows.add_row(r, self.run_units[r])
        cs, lv = np.divmod(np.arange(S * L), L)  # Y's cell segment and level - 1
        rows.add(self.o_a - self.o_u + lv, self.o_y + cs * L + lv, 1.0)
        rows.add(self.o_g - self.o_u + par.group[cs] * L + lv, self.o_y + cs * L + lv, 1.0)
        self.sums = rows.csr()
        sum_rows = sparse.csr_matrix((np.ones(n_sum), (self.o_u + np.arange(n_sum),
                                                        np.arange(n_sum))),
                                     shape=(self.size, n_sum))
        self.lift = (sparse.identity(self.size, format="csr") + sum_rows @ self.sums).tocsr()

    # -- parameters between breakpoints ------------------------------------------------------

    def _set_multipliers(self) -> None:
        self.gain = self.params.gain(self.policy_on & ~self.policy_spent_out,
                                     self.push)  # a * M * quota push, (S, 5)

    def _capacity(self, t: float) -> np.ndarray:
        par = self.params
        return rules.capacity_fluid(par.capacity_base, par.capacity_factor, par.log_growth, t)

    def _build(self) -> None:
        """The linear part B and the routing of decision and start flows, for the current
        success probabilities and policies: dy = B y + Rd decide(y) + Rs starts(y)."""
        ln, size, n = self.lanes, self.size, len(self.lanes.seg)
        spend = Triplets(size, n)
        for j in range(len(self.sc.policies)):
            if self.policy_on[j] and not self.policy_spent_out[j]:
                spend.add_row(self.o_spent + j, self.params.subsidy(j)[ln.seg, ln.lvl])
        key = tuple(self.params.success)  # what the flows depend on besides the subsidies
        if key not in self._built:
            B, Rd, Rs, entries = linear_flows(self)
            core = B.csr()  # without the exits
            self._built[key] = (core + self.decay, core, Rd.csr(), Rs.csr(), entries.csr())
        self.B, core, Rd, self.Rs, self.entry = self._built[key]
        self.Rd = Rd + spend.csr()
        # The Jacobian's constant part and routings, with the sum states' rows (`jac`).
        self.jac_B = self.lift @ core + self.decay_jac
        self.jac_Rd, self.jac_Rs = self.lift @ self.Rd, self.lift @ self.Rs

    # -- the vector field and its Jacobian -----------------------------------------------------

    def _hazard(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-lane decision hazard and the coefficient of each level's adopters in it."""
        ln, par = self.lanes, self.params
        A = self.As0.sum(axis=0)
        A[1:] += y[self.o_a:self.o_a + N_LEVELS]
        Ag = self.Ag0.copy()  # (G, 5)
        Ag[:, 1:] += y[self.o_g:self.o_g + par.n_groups * N_LEVELS].reshape(-1, N_LEVELS)
        h = rules.hazard(self.gain, par.innovation[None, :], par.imitation[None, :],
                         self.sc.peer_weight, A * self.inv_E[None, :],
                         Ag[par.group] * self.inv_Es)
        slope_pop, slope_own = rules.hazard_peer_slope(self.gain, par.imitation[None, :],
                                                       self.sc.peer_weight)
        return h[ln.seg, ln.lvl], slope_pop[ln.seg, ln.lvl], slope_own[ln.seg, ln.lvl]

    def _gates(self, t: float, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cap = self._capacity(t)
        free = cap - y[self.o_u:self.o_u + len(cap)]  # units in use, a state
        delta = np.maximum(0.5, 1e-3 * cap)
        pos = free > 0
        gate = np.where(pos, free / np.where(pos, free + delta, 1.0), 0.0)
        dgate = np.where(pos, delta / np.where(pos, free + delta, 1.0) ** 2, 0.0)
        return gate, dgate, free

    def _theta(self, gate: np.ndarray) -> np.ndarray:
        theta = np.zeros(N_LEVELS + 1)
        for k in range(1, N_LEVELS + 1):
            if self.needs[k]:
                theta[k] = KAPPA * float(np.prod([gate[r] for r, _ in self.needs[k]]))
        return theta

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        self._at(t)
        ln, n = self.lanes, len(self.lanes.seg)
        h, _, _ = self._hazard(y)
        decide = h * y[self.o_idle:self.o_idle + n]
        gate, _, _ = self._gates(t, y)
        starts = self._theta(gate)[ln.lvl] * y[self.o_wait:self.o_wait + n]
        dy = self.B @ y + self.Rd @ decide + self.Rs @ starts + self.src
        dy[self.o_u:] = self.sums @ dy
        return dy

    def _sync_sums(self, y: np.ndarray) -> None:
        """Set the sum states from what they sum (at every restart)."""
        y[self.o_u:] = 0.0
        y[self.o_u:] = self.sums @ y

    def jac(self, t: float, y: np.ndarray) -> np.ndarray:
        self._at(t)
        ln, n = self.lanes, len(self.lanes.seg)
        idle = y[self.o_idle:self.o_idle + n]
        wait = y[self.o_wait:self.o_wait + n]
        h, slope_pop, slope_own = self._hazard(y)
        # d decide / dy: h on the idle diagonal; adopters of the lane's level through Phi
        # (the whole population's, and the lane's peer group's).
        lanes = np.arange(n)
        Jd = Triplets(n, self.size)
        Jd.add(lanes, self.o_idle + lanes, h)
        group = self.params.group[ln.seg]
        Jd.add(lanes, self.o_a + ln.lvl - 1, idle * slope_pop * self.inv_E[ln.lvl])
        Jd.add(lanes, self.o_g + group * N_LEVELS + ln.lvl - 1,
               idle * slope_own * self.inv_Es[ln.seg, ln.lvl])
        # d starts / dy: theta on the waiting diagonal; running states through the gates.
        gate, dgate, _ = self._gates(t, y)
        theta = self._theta(gate)
        Js = Triplets(n, self.size)
        Js.add(lanes, self.o_wait + lanes, theta[ln.lvl])
        for k in range(1, N_LEVELS + 1):
            lanes_k = ln.by_level[k]
            for r, _ in self.needs[k]:  # through the units in use (free = capacity - u)
                others = np.prod([gate[r2] for r2, _ in self.needs[k] if r2 != r])
                Js.add(lanes_k, self.o_u + r, -KAPPA * others * dgate[r] * wait[lanes_k])
        # d sum / dt = the sum of the derivatives (`lift`); of the exits' part, -d sum (not
        # -d times each term: `_exit_decay`). Newton steps keep each sum equal to its terms
        # (the residuals do), and on such steps this Jacobian acts as the exact one does.
        return self.jac_B + self.jac_Rd @ Jd.csr() + self.jac_Rs @ Js.csr()

    def exact_by_segment(self, y: np.ndarray, t: float = 0.0) -> np.ndarray:
        """Expected firms of each segment at exactly each level 0..4 for one state y at t."""
        S = self.n_seg
        As = self.As0.copy()
        if self.turnover:
            As[:, 0] = self.alive_at(t)
        As[:, 1:] += y[self.o_y:self.o_y + S * N_LEVELS].reshape(S, N_LEVELS)
        return As - np.concatenate([As[:, 1:], np.zeros((S, 1))], axis=1)

    def at_or_above(self, y: np.ndarray) -> np.ndarray:
        """Firms at or above each level 1..4 for state vector(s) y (columns = times)."""
        S = self.n_seg
        Y = y[self.o_y:self.o_y + S * N_LEVELS].reshape(S, N_LEVELS, -1).sum(axis=0)
        return self.initial[:, None] + Y

    def unmoved(self, y: np.ndarray) -> np.ndarray:
        """Firms at or above each level 1..4 that have completed no project since the start,
        for state vector(s) y (columns = times)."""
        S = self.n_seg
        U = y[self.o_z:self.o_z + S * (N_LEVELS + 1)].reshape(S, N_LEVELS + 1, -1).sum(axis=0)
        return rules.unmoved_at_or_above(U.T).T

    def upgraded(self, y: np.ndarray) -> np.ndarray:
        """Firms at or above each level 1..4 that have completed a project since the start."""
        return self.at_or_above(y) - self.unmoved(y)

    def unmoved_regions(self, y: np.ndarray) -> np.ndarray:
        """Firms at exactly each level 0..4 per region that have completed no project."""
        S = self.n_seg
        return self.params.by_region(y[self.o_z:self.o_z + S * (N_LEVELS + 1)]
                                     .reshape(S, N_LEVELS + 1))

    def region_counts(self, y: np.ndarray, t: float) -> np.ndarray:
        """Each region's target count for one state y at time t."""
        k = self.target.level
        S = self.n_seg
        at_seg = self.As0[:, k] + y[self.o_y:self.o_y + S * N_LEVELS].reshape(S, N_LEVELS)[:, k - 1]
        at = self.params.by_region(at_seg)
        surv = self.region_survivors_at(t)[:, k - 1] if self.turnover else None
        return self.quotas.region_counts(at, self.unmoved_regions(y)[:, k:].sum(axis=1), surv)

    def count(self, y: np.ndarray, t: float) -> float:
        """The rules' target count for one state vector y at time t."""
        k = self.target.level - 1
        col = y.reshape(-1, 1)
        surv = float(self.region_survivors_at(t)[:, k].sum()) if self.turnover else None
        return float(self.target.count(self.at_or_above(col)[k, 0], self.unmoved(col)[k, 0],
                                       surv))

    def readings_now(self, y: np.ndarray, t: float) -> np.ndarray:
        """(3, 4): every reading's parts for one state y at time t (`rules.readings_now`)."""
        S = self.n_seg
        U = y[self.o_z:self.o_z + S * (N_LEVELS + 1)].reshape(S, N_LEVELS + 1).sum(axis=0)
        base = self.region_survivors_at(t).sum(axis=0) if self.turnover else self.initial
        return rules.readings_now(self.at_or_above(y.reshape(-1, 1))[:, 0], base, U)

    # -- integration with restarts ---------------------------------------------------------------

    def run(self) -> RunResult:
        sc = self.sc
        months = np.array([sc.years(d, end_of_day=True) for d in sc.month_ends()])
        horizon = sc.horizon
        # Dated breakpoints from the rules, applied in their order at equal times.
        # Quota reviews (None) come after the dated changes of the same time.
        actions: list[tuple[float, rules.Change | None]] = [(c.years, c)
                                                            for c in rules.changes(sc)]
        actions += [(d / DAYS_PER_YEAR, None) for d in self.quotas.days]
        actions.sort(key=lambda a: a[0])

        firms = sc.target.firms
        count = self.count

        crossing: float | None = 0.0 if count(self.y0, 0.0) >= firms else None

        curve = np.zeros((len(months), N_LEVELS))
        upgraded = np.zeros((len(months), N_LEVELS))
        by_segment = np.zeros((len(months), self.n_seg, N_LEVELS + 1))
        unmoved_month = np.zeros((len(months), self.params.n_regions, N_LEVELS + 1))
        region_at_deadline = np.zeros(self.params.n_regions)
        deadline = sc.deadline
        at_deadline = None
        t, y = 0.0, self.y0.copy()
        ai = 0
        self._set_multipliers()
        while ai < len(actions) and actions[ai][0] <= 1e-12:  # in force from the start
            self._apply(actions[ai][1], t, y)
            ai += 1
        self._build()
        place_flight(self, y, 0.0)
        while t < horizon:
            while ai < len(actions) and actions[ai][0] <= t + 1e-12:
                self._apply(actions[ai][1], t, y)
                ai += 1
            t_next = min(actions[ai][0] if ai < len(actions) else horizon, horizon)
            events: list = []  # event functions for solve_ivp
            budget_js = [j for j in range(len(sc.policies))
                         if self.policy_on[j] and not self.policy_spent_out[j]
                         and math.isfinite(self.budget[j])]
            for j in budget_js:
                def spent_out(_t, yy, j=j):
                    return yy[self.o_spent + j] - self.budget[j]
                spent_out.terminal = True  # type: ignore[attr-defined]  # solve_ivp's protocol
                spent_out.direction = 1  # type: ignore[attr-defined]
                events.append(spent_out)

            def crossed(_t, yy):
                return count(yy, _t) - firms
            crossed.terminal = False  # type: ignore[attr-defined]  # solve_ivp's protocol
            crossed.direction = 1  # type: ignore[attr-defined]
            events.append(crossed)

            self._build()
            self._sync_sums(y)
            sol = solve_ivp(self.rhs, (t, t_next), y, method=SparseBDF,
                            jac=self.jac, rtol=RTOL, atol=ATOL, dense_output=True,
                            events=events)
            if sol.status < 0:
                raise RuntimeError(f"mean-field integration failed at t={t:.4f}: {sol.message}")
            t_end = float(sol.t[-1])
            for m in np.nonzero((months > t - 1e-12) & (months <= t_end + 1e-12))[0]:
                state = sol.sol(months[m])
                curve[m] = self.at_or_above(state[:, None])[:, 0]
                upgraded[m] = self.upgraded(state[:, None])[:, 0]
                by_segment[m] = self.exact_by_segment(state, months[m])
                unmoved_month[m] = self.unmoved_regions(state)
            if at_deadline is None and t - 1e-12 <= deadline <= t_end + 1e-12:
                at_deadline = count(sol.sol(deadline), deadline)
                region_at_deadline = self.region_counts(sol.sol(deadline), deadline)
                readings = self.readings_now(sol.sol(deadline), deadline)
            if crossing is None and len(sol.t_events[-1]):
                crossing = float(sol.t_events[-1][0])
            y = sol.y[:, -1].copy()
            if sol.status == 1:  # a budget ran out: that policy stops here
                for idx, j in enumerate(budget_js):
                    if len(sol.t_events[idx]):
                        self.policy_spent_out[j] = True
                self._set_multipliers()
            t = t_end
        if at_deadline is None:
            at_deadline = count(y, t)
            region_at_deadline = self.region_counts(y, t)
            readings = self.readings_now(y, t)
        spent = tuple(float(self.budget[j] if self.policy_spent_out[j]  # (exactly: the
                            else min(y[self.o_spent + j], self.budget[j]))  # root lands below)
                      for j in range(len(sc.policies)))
        return rules.with_regions(RunResult(
            at_or_above=curve,
            upgraded=upgraded,
            by_segment=by_segment,
            initial=self.initial.astype(float),
            count_at_deadline=at_deadline,
            crossing_time=crossing,
            met=self.target.met(at_deadline + 1e-9),  # ODE rounding
            events={"events": 0},
            spent=spent, deadline_readings=readings, **self.turnover_fields(y, months)),
            self.params, by_segment, unmoved_month, region_at_deadline)

    def _apply(self, change: rules.Change | None, t: float, y: np.ndarray) -> None:
        if change is None:  # a quota review
            push = self.quotas.push(t, self.region_counts(y, t))
            if not np.array_equal(push, self.push):
                self.push = push
                self._set_multipliers()
        elif change.kind == "policy":
            self.policy_on[change.index] = change.on
            self._set_multipliers()
        else:
            self.params.set_shock(change.index, change.on)


def solve(scenario: Scenario, rng: np.random.Generator | None = None) -> RunResult:
    """The mean-field trajectory of `scenario` (deterministic: `rng` is ignored).

    BLAS runs on one thread here: the system is small, and multi-threaded BLAS made the
    dense solve of earlier versions about ten times slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _MeanField(scenario).run()
