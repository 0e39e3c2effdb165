"""The model's rules, written once for every engine: parameters, the decision hazard, policy
multipliers and budgets, shocks and their lifting, resource capacity (`capacity.py`) and the
law of implementation times (`durations.py`), both re-exported here, the dated calendar and
the target count.

An engine only says how time advances (exact events, fixed steps or ODEs); whatever it needs
to know about *what* happens it asks this module. Arrays are indexed by level 0..4 (0, `none`,
unused) so that level k is column k, as in MODEL.md. To add a level or a policy type, change
this module and the scenario schema.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.engines.capacity import (  # noqa: F401 - the capacity rules, re-exported
    CAPACITY_EPS,
    capacity_at,
    capacity_fluid,
    capacity_units,
    next_unit_change,
)
from sim.engines.dates import Change, changes, window  # noqa: F401 - the calendar, re-exported
from sim.engines.durations import (  # noqa: F401 - the law of durations, re-exported
    residual_cdf,
    residual_years,
    started_cdf,
)
from sim.engines.population import N_LEVELS, layout
from sim.engines.result import RunResult
from sim.scenario import DAYS_PER_YEAR, LEVELS, Scenario


def hazard(gain, innovation, imitation, w, population_share, own_share):
    """Per-firm decision hazard (per year), MODEL.md: a * M * (p + q * Phi), with Phi the
    adopter share the firm sees: (1 - w) of the whole population and w of its own segment.
    Works on floats (the exact engine, one cell at a time) and on arrays (the others)."""
    return gain * (innovation + imitation * ((1.0 - w) * population_share + w * own_share))


def hazard_peer_slope(gain, imitation, w):
    """d hazard / d Phi-parts: (slope per unit of population share, per unit of own share);
    the mean field's Jacobian needs it, and it must change whenever `hazard` does."""
    return gain * imitation * (1.0 - w), gain * imitation * w


def may_climb(level, ceiling):
    """Eligibility: a firm at `level` may decide on the level above iff its ceiling (the
    highest level it is eligible for) lies above it. Works on ints and arrays."""
    if isinstance(level, int) and isinstance(ceiling, int):
        return ceiling > level
    return np.greater(ceiling, level)


# -- parameters -------------------------------------------------------------------------------


class Parameters:
    """The scenario's numbers as the engines use them, per level 0..4 and per segment.

    The level parameters that shocks change (innovation, imitation, success) and the capacity
    factors are *effective* values: the base values times the factors of the shocks in force,
    recomputed from the base whenever a shock is applied or lifted, so lifting restores
    exactly what was there before (a factor 0 or a success capped at 1 included)."""

    def __init__(self, sc: Scenario):
        self.sc = sc
        lay = layout(sc)
        self.layout = lay
        L = N_LEVELS
        lv = sc.levels
        # Cell segments: (region, size segment) pairs, region-major (population.Layout).
        self.n_segments = len(lay.cells)
        self.n_regions = R = lay.n_regions
        self.n_groups = G = lay.n_groups
        self.group = np.tile(np.arange(G), R)  # cell segment -> peer group (size segment)
        self.region = np.repeat(np.arange(R), G)  # cell segment -> region
        self.peer_weight = sc.peer_weight
        self.base_innovation = np.array([0.0] + [x.innovation for x in lv])
        self.base_imitation = np.array([0.0] + [x.imitation for x in lv])
        self.base_success = np.array([1.0] + [x.success for x in lv])
        self.retry_years = np.array([0.0] + [x.retry / 12.0 for x in lv])
        self.median_years = np.array([0.0] + [x.implementation_median / 12.0 for x in lv])
        self.sigma = np.array([0.0] + [x.implementation_sigma for x in lv])
        # Propensity a(s, k) per cell segment and level: the size segment's propensity times
        # the region's multiplier.
        region_mult = np.array([[1.0, *r.multiplier] for r in sc.regions] or [[1.0] * (L + 1)])
        self.propensity = (np.array([[1.0, *seg.propensity] for seg in sc.segments])[self.group]
                           * region_mult[self.region])
        self.eligible = np.array(lay.eligible, dtype=float)  # E_k
        # E_{g,k} of each peer group, nationally: the own-segment part of the peer signal is
        # the size segment's adopter share across all regions (regions are not peer groups).
        self.eligible_by_segment = np.array(lay.eligible_by_segment, dtype=float)
        # 1 / E: an adopter share is count * inverse, 0 where nobody is eligible.
        self.inv_eligible = _inverse(self.eligible)
        self.inv_eligible_by_segment = _inverse(self.eligible_by_segment)
        self.inv_eligible_own = self.inv_eligible_by_segment[self.group]  # per cell segment

        # Resources: units[k, r] held by a running level-k project.
        self.resource_names = [r.name for r in sc.resources]
        rix = {n: r for r, n in enumerate(self.resource_names)}
        self.units = np.zeros((L + 1, len(sc.resources)), dtype=np.int64)
        for k, x in enumerate(lv, start=1):
            for n, u in x.needs:
                self.units[k, rix[n]] = u
        self.needs = [tuple((r, int(self.units[k, r])) for r in range(len(sc.resources))
                            if self.units[k, r]) for k in range(L + 1)]
        self.capacity_base = np.array([float(r.capacity) for r in sc.resources])
        self.log_growth = np.array([math.log1p(r.growth) for r in sc.resources])

        # Policies: which segments each covers, multipliers and cost per project per level.
        names = [sc.segments[g].name for g in self.group]
        regions = [sc.region_names[r] for r in self.region]
        P, S = len(sc.policies), self.n_segments
        self.policy_applies = np.array(
            [[(p.segments is None or n in p.segments) and (p.regions is None or r in p.regions)
              for n, r in zip(names, regions, strict=True)] for p in sc.policies],
            dtype=bool).reshape(P, S)
        self.policy_multiplier = np.array([[1.0, *p.multiplier] for p in sc.policies]
                                          ).reshape(P, L + 1)
        self.policy_cost = np.array([[0.0, *p.cost] for p in sc.policies]).reshape(P, L + 1)
        self.budget = np.array([p.budget if p.budget is not None else math.inf
                                for p in sc.policies])

        # Shocks in force from the start (their window begins on day 0) are on from the
        # outset, so that what an engine places at the start (projects under way) meets
        # what they leave (docs/model.md); the calendar's switch at time 0 changes nothing.
        at_start = {c.index for c in changes(sc) if c.kind == "shock" and c.on and c.day == 0}
        self.shocks_on = [i in at_start for i in range(len(sc.shocks))]
        self._effective()

    # shocks -----------------------------------------------------------------------------

    def set_shock(self, i: int, on: bool) -> None:
        """Apply (on) or lift (off) shock i and recompute the effective parameters."""
        self.shocks_on[i] = on
        self._effective()

    def _effective(self) -> None:
        inno, imit, succ = (self.base_innovation.copy(), self.base_imitation.copy(),
                            self.base_success.copy())
        factor = np.ones(len(self.resource_names))
        for sh, on in zip(self.sc.shocks, self.shocks_on, strict=True):
            if not on:
                continue
            if sh.resource is not None:
                factor[self.resource_names.index(sh.resource)] *= sh.capacity_factor
            if sh.level is not None:
                k = LEVELS.index(sh.level) + 1
                inno[k] *= sh.innovation_factor
                imit[k] *= sh.imitation_factor
                succ[k] *= sh.success_factor
        self.innovation, self.imitation = inno, imit
        self.success = np.minimum(succ, 1.0)
        self.capacity_factor = factor

    def shock_targets(self, i: int) -> tuple[int | None, int | None]:
        """(resource index, level) that shock i changes; None where it changes none."""
        sh = self.sc.shocks[i]
        r = None if sh.resource is None else self.resource_names.index(sh.resource)
        k = None if sh.level is None else LEVELS.index(sh.level) + 1
        return r, k

    # policies ---------------------------------------------------------------------------

    def multipliers(self, active: Sequence[bool] | np.ndarray) -> np.ndarray:
        """M(s, k): product of the multipliers of the active policies covering segment s."""
        M = np.ones((self.n_segments, N_LEVELS + 1))
        for j in np.flatnonzero(np.asarray(active, dtype=bool)):
            M[self.policy_applies[j]] *= self.policy_multiplier[j]
        return M

    def gain(self, active: Sequence[bool] | np.ndarray, push: np.ndarray | None = None
             ) -> np.ndarray:
        """a(s, k) * M(s, k), times the quota push of each lagging region (`push`, one factor
        per region, see `Quotas`): what multiplies p + q * Phi in the hazard."""
        g = self.propensity * self.multipliers(active)
        if push is not None:
            k = self.sc.target.level_index
            g[:, 1:k + 1] *= np.asarray(push)[self.region][:, None]
        return g

    def own_adopters(self, As: np.ndarray) -> np.ndarray:
        """Adopters of each cell segment's peer group, per cell segment: the sums over the
        regions of the same size segment (As: cell segments first)."""
        R, G = self.n_regions, self.n_groups
        if R == 1:
            return As
        grouped = As.reshape(R, G, *As.shape[1:]).sum(axis=0)
        return np.tile(grouped, (R,) + (1,) * (As.ndim - 1))

    def by_region(self, x: np.ndarray) -> np.ndarray:
        """Sum an array over cell segments (first axis) into regions."""
        return x.reshape(self.n_regions, self.n_groups, *x.shape[1:]).sum(axis=1)

    def paying(self) -> list[int]:
        """Policies that pay a subsidy for some project."""
        return [j for j in range(len(self.budget)) if self.policy_cost[j].any()]

    def subsidy(self, j: int) -> np.ndarray:
        """(segments, levels 0..4): what policy j pays per project decided in each cell (0
        outside its segments)."""
        return self.policy_applies[j][:, None] * self.policy_cost[j][None, :]


def _inverse(x: np.ndarray) -> np.ndarray:
    return np.divide(1.0, x, out=np.zeros_like(x), where=x > 0)


def pay_from(left, paid, j: int, amount: float) -> bool:
    """Pay `amount` from budget j, capped at what is left (`left`, and `paid` the payments'
    sum: one entry per policy, lists or arrays); True if that empties it. Compiled by the
    exact engine."""
    amount = min(amount, left[j])
    left[j] -= amount
    paid[j] += amount
    return left[j] <= 0


def spent_of(budget, left, paid) -> np.ndarray:
    """What each policy has spent (arrays over policies, or [replication, policy]): exactly
    its budget once that is spent, else the sum of its payments `paid`, never above the
    budget. (The payments' sum can pass a spent budget by rounding; the budget less what is
    left would round at the budget's scale, 1e9 less 1e9 - 1407.4 being 1407.39979.)"""
    budget, paid = np.asarray(budget, dtype=float), np.asarray(paid, dtype=float)
    return np.where(np.asarray(left) <= 0, budget, np.minimum(paid, budget))


class Budgets:
    """Subsidy drawn down per project decided; a policy whose budget is spent stops. With
    `batch`, one budget per policy for each of `batch` replications (rows)."""

    def __init__(self, params: Parameters, batch: int | None = None):
        self.left: Any
        self.paid: Any  # the payments' sum, for `spent`
        self.budget = params.budget.astype(float)
        if batch is None:  # plain lists: the exact engine pays per decision, in pure Python
            self.left = [float(x) for x in self.budget]
            self.paid = [0.0] * len(self.left)
        else:
            self.left = np.tile(self.budget, (batch, 1))
            self.paid = np.zeros((batch, len(self.budget)))

    @property
    def spent(self) -> np.ndarray:
        """Subsidy spent per policy ([replication, policy] with a batch; `spent_of`)."""
        return spent_of(self.budget, self.left, self.paid)

    def pay(self, j: int, amount: float) -> bool:
        """Pay `amount` (capped at what is left) from policy j; True if that empties it."""
        return pay_from(self.left, self.paid, j, amount)

    def pay_many(self, j: int, amount: np.ndarray, paying: np.ndarray) -> np.ndarray:
        """Batch: replication b pays amount[b] (capped) from policy j where `paying`; True
        where that empties its budget."""
        paid = np.where(paying, np.minimum(amount, self.left[:, j]), 0.0)
        self.left[:, j] -= paid
        self.paid[:, j] += paid
        return paying & (self.left[:, j] <= 0)

    def pay_one(self, j: int, b: int, amount: float) -> bool:
        """Batch: replication b pays `amount` (capped) from policy j; True if that empties
        it."""
        return pay_from(self.left[b], self.paid[b], j, amount)

    def has_money(self, j: int):
        """Money left in policy j's budget (per replication, with a batch)."""
        if isinstance(self.left, list):
            return self.left[j] > 0
        return self.left[:, j] > 0


# -- the target ---------------------------------------------------------------------------


READ_OFFSET, READ_SURVIVORS, READ_UPGRADED = 0, 1, 2
"""How a count is formed (`TargetCount.how`): firms at or above the level less a fixed
offset (`stock`; `new` without exits), less the survivors of the starting stock (`new` with
exits), or less the unmoved ones (`upgraded`)."""


def counted(how: int, at_or_above_level, unmoved, survivors, offset):
    """The target's count from its parts, formed as `how` says; on floats or arrays (a
    batch), and compiled by the exact engine, so the rule is written once."""
    if how == READ_UPGRADED:
        return at_or_above_level - unmoved
    if how == READ_SURVIVORS:
        return at_or_above_level - survivors
    return at_or_above_level - offset


@dataclass(frozen=True)
class TargetCount:
    """How the target counts firms at or above `level` (MODEL.md, docs/model.md):
    `stock` all of them; `new` less the ones there at the start (with entry and exit: less
    those of them that still exist, `survivors`); `upgraded` the distinct firms that
    completed at least one project at or above `level` since the start, i.e. all of them
    less those that have completed none (`unmoved`: still at the level they started or
    entered at). Counts are over firms that exist: a firm that has left counts in none."""

    level: int  # 1..4
    offset: float
    firms: int
    reading: str = "new"

    @classmethod
    def of(cls, sc: Scenario, initial_at_or_above: Sequence[float] | np.ndarray) -> TargetCount:
        k = sc.target.level_index
        offset = initial_at_or_above[k - 1] if sc.target.count == "new" else 0
        return cls(k, offset, sc.target.firms, sc.target.count)

    def how(self, exits: bool) -> int:
        """How this reading forms its count (READ_*), with or without firms leaving."""
        if self.reading == "upgraded":
            return READ_UPGRADED
        return READ_SURVIVORS if self.reading == "new" and exits else READ_OFFSET

    def count(self, at_or_above_level: Any, unmoved: Any = 0.0, survivors: Any = None) -> Any:
        """The counted firms, given the firms at or above the level, the unmoved ones among
        them and (with exits) the survivors of those at or above it at the start (floats,
        or arrays over a batch of replications)."""
        return counted(self.how(survivors is not None), at_or_above_level, unmoved,
                       0.0 if survivors is None else survivors, self.offset)

    def met(self, count: float) -> bool:
        return count >= self.firms

    def curve(self, at_or_above_level: np.ndarray, upgraded_level: np.ndarray,
              survivors: np.ndarray | None = None) -> np.ndarray:
        """The counted curve over time, from the level's stock and upgraded curves (and the
        survivors of the starting stock, with exits)."""
        if self.reading == "upgraded":
            return upgraded_level
        if self.reading == "new" and survivors is not None:
            return at_or_above_level - survivors
        return at_or_above_level - self.offset


class Quotas:
    """Regional quotas (`population.region[].quota`, `population.quotas`): at each review, the
    end of every `every`-th month before the deadline, a region whose count (the target's
    reading at its level, over the region's firms) lags `quota x firms x t / deadline` has
    the hazards of the levels up to the target's multiplied by `push` until the next review;
    from the deadline on no region is pushed. A top-down push that the hazards lack."""

    def __init__(self, sc: Scenario, region_initial: np.ndarray):
        self.push_factor = sc.quotas.push
        self.quota = np.array([r.quota or 0.0 for r in sc.regions] or [0.0])
        self.firms = sc.target.firms
        self.deadline = sc.deadline
        self.counts = [TargetCount.of(sc, row) for row in region_initial]
        deadline_day = (sc.target.deadline - sc.start).days + 1
        ends = [(d - sc.start).days + 1 for d in sc.month_ends()]
        every = sc.quotas.every
        self.days = [d for m, d in enumerate(ends) if (m + 1) % every == 0 and d < deadline_day]
        if self.days:
            self.days.append(deadline_day)  # the push ends with the plan period
        if not (self.quota > 0).any() or self.push_factor == 1.0:
            self.days = []  # nothing to push: no review changes anything

    def region_counts(self, at_or_above_level: np.ndarray, unmoved: np.ndarray,
                      survivors: np.ndarray | None = None) -> np.ndarray:
        """Each region's count, from its firms at or above the target level, the unmoved
        ones among them and, with exits, the survivors of its starting stock."""
        surv = [None] * len(self.counts) if survivors is None else [float(x) for x in survivors]
        return np.array([tc.count(float(a), float(u), v) for tc, a, u, v
                         in zip(self.counts, at_or_above_level, unmoved, surv, strict=True)])

    def push(self, t: float, counts: np.ndarray) -> np.ndarray:
        """Factor per region until the next review, given the regions' counts at time t."""
        if t >= self.deadline - 1e-9:
            return np.ones(len(self.quota))
        due = self.quota * self.firms * t / self.deadline
        return np.where((self.quota > 0) & (counts < due), self.push_factor, 1.0)


class Turnover:
    """Firm entry and exit (`population.entry`, `exit`, `entry_device`), the same in every
    engine: at each month boundary (the end of every month but the last), after the month's
    count, every firm leaves with probability 1 - exp(-exit x month length), whatever it is
    doing (a project under way is abandoned and its resources freed); then a Poisson number
    of firms, mean entry x firms at the start x month length, enters: each in a cell segment
    with probability region share x size-segment share, at device with probability
    `entry_device` (else none), with a ceiling drawn from the eligible shares as the firms
    at the start were (P(ceiling >= k) = eligible_k, given ceiling >= own level); entrants
    have completed no project and were not there at the start. The mean field runs the same
    rates continuously (docs/model.md)."""

    def __init__(self, sc: Scenario, par: Parameters):
        self.exit, self.entry_rate = sc.exit, sc.entry * sc.firms  # per year
        self.active = sc.exit > 0 or sc.entry > 0
        ends = [(d - sc.start).days + 1 for d in sc.month_ends()]
        self.days = ends[:-1] if self.active else []
        starts = [0, *ends]
        self.lengths = [(b - a) / DAYS_PER_YEAR for a, b in zip(starts, ends[:-1], strict=False)]
        # Entrant cells: (cell segment, level 0 or 1, ceiling), with probabilities.
        shares = [r.share for r in sc.regions] or [1.0]
        e = [1.0, *(lv.eligible for lv in sc.levels), 0.0]
        cells, probs = [], []
        for cs in range(par.n_segments):
            w_seg = shares[int(par.region[cs])] * sc.segments[int(par.group[cs])].share
            for lv, w_lv in ((0, 1.0 - sc.entry_device), (1, sc.entry_device)):
                if w_lv <= 0 or e[lv] <= 0:
                    continue
                for c in range(lv, N_LEVELS + 1):
                    p_c = (e[c] - e[c + 1]) / e[lv]
                    if p_c > 0:
                        cells.append((cs, lv, c))
                        probs.append(w_seg * w_lv * p_c)
        self.cells = cells
        self.probs = np.array(probs) / sum(probs) if probs else np.zeros(0)

    def exit_probability(self, m: int) -> float:
        """Probability that a firm leaves at the end of month m."""
        return -math.expm1(-self.exit * self.lengths[m])

    def entrants(self, rng: np.random.Generator, m: int, batch: int | None = None
                 ) -> np.ndarray:
        """Entrants at the end of month m, per entrant cell (`cells`); with `batch`, for
        each of `batch` replications (rows)."""
        if batch is not None:
            if self.entry_rate <= 0:
                return np.zeros((batch, len(self.cells)), dtype=np.int64)
            each = rng.poisson(self.entry_rate * self.lengths[m], size=batch)
            return rng.multinomial(each, self.probs)
        n = int(rng.poisson(self.entry_rate * self.lengths[m])) if self.entry_rate > 0 else 0
        return rng.multinomial(n, self.probs) if n else np.zeros(len(self.cells), dtype=int)


def with_regions(result: RunResult, par: Parameters, by_segment: np.ndarray,
                 unmoved_region: np.ndarray, at_deadline: np.ndarray) -> RunResult:
    """`result` with its per-region fields, from the month-end counts per cell segment
    (months, segments, 0..4) and unmoved firms per region (months, regions, 0..4)."""
    exact = np.moveaxis(par.by_region(np.moveaxis(by_segment, 1, 0)), 0, 1)  # (m, R, 5)
    at = at_or_above(exact)
    result.region_at_or_above = at
    result.region_upgraded = at - unmoved_at_or_above(unmoved_region)
    result.region_initial = par.layout.region_at_or_above()
    result.region_count_at_deadline = np.asarray(at_deadline, dtype=float)
    return result


def at_or_above(exact) -> np.ndarray:
    """Counts at or above each level 1..4 from counts at exactly each level 0..4 (last
    axis); any leading axes are kept."""
    u = np.asarray(exact)
    return np.flip(np.cumsum(np.flip(u, axis=-1), axis=-1), axis=-1)[..., 1:]


def readings_now(stock, base, unmoved_exact) -> np.ndarray:
    """[..., 3, 4]: every reading's parts now at levels 1..4 (RunResult.deadline_readings):
    the stock at or above each level, what the `new` reading subtracts (the starting stock,
    or its survivors) and the `upgraded` count, from firms at or above each level, `base`
    and the unmoved firms at exactly each level 0..4. Leading axes (a batch) are kept."""
    stock = np.asarray(stock, dtype=float)
    return np.stack([stock, np.broadcast_to(np.asarray(base, dtype=float), stock.shape),
                     stock - unmoved_at_or_above(unmoved_exact)], axis=-2)


def unmoved_at_or_above(unmoved_exact) -> np.ndarray:
    """Firms at or above each level 1..4 that have completed no project since the start,
    from those at exactly each level 0..4 (last axis)."""
    return at_or_above(unmoved_exact)


def eligible_inverses(by_ceiling: np.ndarray, group: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """1 / E_k (levels 0..4; index 0 unused) and 1 / E_{g,k} per cell segment, from the
    firms that exist per peer group and eligibility ceiling (groups, 5): eligible firms
    follow entry and exit. 0 where nobody is eligible. Leading axes (a batch) are kept."""
    E = np.concatenate([by_ceiling.sum(axis=-1, keepdims=True), at_or_above(by_ceiling)],
                       axis=-1).astype(float)  # (..., G, 5): all firms, then ceiling >= k
    return _inverse(E.sum(axis=-2)), _inverse(E)[..., group, :]
