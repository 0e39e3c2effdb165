"""The exact engine's entry and exit (rules.Turnover): at each month boundary every firm leaves
with the rules' probability whatever it is doing, then the month's entrants arrive.

With turnover a firm's code also carries the level it started at (bits from ORIGIN on; 0 for
entrants), so that the `new` reading can subtract the survivors of the starting stock. Most
idle firms have the origin their flag implies (a fresh firm started where it is, a moved one
at level 0); per cell and code without origin, idle firms keep a count of the others only
(fresh entrants above level 0, moved firms that started above it). Firms at their ceiling
("settled") are kept per cell segment, level and code; running projects and retry waits are
kept by calendar sequence number, and one whose firm leaves is skipped when it falls due.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from sim.engines import rules
from sim.engines.population import N_LEVELS

FRESH, ORIGIN = 8, 4


class Turnover:
    """Mixed into the exact engine, whose state these read and change."""

    params: rules.Parameters
    sc: Any
    idle: list[list[int]]
    idle_total: list[int]
    fresh_idle: list[list[int]]
    exact: list[list[int]]
    A: list[int]
    As: list[list[int]]
    Ag: list[list[int]]
    unmoved: list[int]
    unmoved_r: list[list[int]]
    grp: list[int]
    reg: list[int]
    n_seg: int
    W: list[float]
    gcell: list[int]
    gflat: list[float]
    in_use: list[int]
    needs: list[Any]
    queues: list[deque]
    blocked: set[int]
    n_waiting: int
    inv_E: list[float]
    inv_Es: list[list[float]]
    t_level: int
    unchecked: int
    crossing: float | None
    _check_target: Any
    _hazards: Any
    _serve_queues: Any
    _total: Any

    def _turnover_init(self, rng: np.random.Generator, flight: list) -> None:
        par, L = self.params, N_LEVELS
        self.rule = rules.Turnover(self.sc, par)
        self.turnover = on = self.rule.active
        self.born = [(j << ORIGIN) if on else 0 for j in range(L + 1)]
        self.live: dict[int, tuple[int, int, int]] = {}  # calendar seq -> (s, +-k, code)
        self.entered = self.exited = self.exited_upgraded = 0
        self.survivors = np.zeros((len(self.sc.month_ends()), L), dtype=np.int64)
        self.region_survivors = np.zeros((len(self.survivors), par.n_regions, L),
                                         dtype=np.int64)
        self.surv_now: float | None = None  # survivors at the target level (with turnover)
        if not on:
            return
        # A third stream, spawned after the side stream, so turnover leaves both as they were.
        self.demog = rng.spawn(1)[0]
        lay = par.layout
        # extra[i][c | fresh] : {origin: idle firms} for origins other than the implied one;
        # settled[s][j]: {code: firms}.
        self.extra: list[list[dict[int, int]]] = [[{} for _ in range(FRESH + L + 1)]
                                                 for _ in range(self.n_seg * L)]
        self.settled: list[list[dict[int, int]]] = [[{} for _ in range(L + 1)]
                                                    for _ in range(self.n_seg)]
        self.alive_origin = [[0] * (L + 1) for _ in range(par.n_regions)]
        self.elig = [[0] * (L + 1) for _ in range(par.n_groups)]  # by ceiling
        for s in range(self.n_seg):
            for j in range(L + 1):
                self.alive_origin[self.reg[s]][j] += self.exact[s][j]
                for c in range(L + 1):
                    n = lay.cells[s][j][c]
                    self.elig[self.grp[s]][c] += n
                    if not n:
                        continue
                    if c == j:
                        self.settled[s][j][c | FRESH | (j << ORIGIN)] = n
        del flight  # projects under way carry their origin in their code (born)
        self.surv_now = float(self._survivors()[:, self.sc.target.level_index - 1].sum())

    # -- origin bookkeeping in the hot paths ----------------------------------------------------

    def _take_origin(self, i: int, code: int, n: int) -> int:
        """The origin of the idle firm of cell i that decides with `code` (ceiling | fresh),
        one of n such firms."""
        implied = i % N_LEVELS if code & FRESH else 0
        d = self.extra[i][code]
        if not d:
            return code | (implied << ORIGIN)
        u = self.demog.random() * n
        for o in sorted(d):
            u -= d[o]
            if u < 0:
                d[o] -= 1
                if not d[o]:
                    del d[o]
                return code | (o << ORIGIN)
        return code | (implied << ORIGIN)

    def _put_origin(self, i: int, code: int) -> None:
        """An idle firm with `code` joins cell i."""
        o = code >> ORIGIN
        if o != (i % N_LEVELS if code & FRESH else 0):
            d = self.extra[i][code & (FRESH | 7)]
            d[o] = d.get(o, 0) + 1

    def _settle(self, s: int, k: int, code: int) -> None:
        """A firm reaches its ceiling k."""
        d = self.settled[s][k]
        d[code] = d.get(code, 0) + 1

    def _survivors(self) -> np.ndarray:
        """(regions, 4): firms existing now that were at or above each level at the start."""
        return rules.at_or_above(np.array(self.alive_origin))

    # -- the month boundary -------------------------------------------------------------------

    def _count_change(self, s: int, j: int, code: int, n: int) -> None:
        """n firms of cell segment s at level j with `code` arrive (n > 0) or leave (n < 0)."""
        self.exact[s][j] += n
        A, As, Ag = self.A, self.As[s], self.Ag[self.grp[s]]
        for k in range(1, j + 1):
            A[k] += n
            As[k] += n
            Ag[k] += n
        if code & FRESH:
            self.unmoved[j] += n
            self.unmoved_r[self.reg[s]][j] += n
        self.alive_origin[self.reg[s]][code >> ORIGIN] += n
        self.elig[self.grp[s]][code & 7] += n
        if n < 0:
            self.exited -= n
            if not code & FRESH and j >= self.t_level:
                self.exited_upgraded -= n
        else:
            self.entered += n

    def _idle_change(self, i: int, code: int, n: int) -> None:
        c = code & 7
        self.idle[i][c] += n
        self.idle_total[i] += n
        if code & FRESH:
            self.fresh_idle[i][c] += n
        o = code >> ORIGIN
        if o != (i % N_LEVELS if code & FRESH else 0):
            d = self.extra[i][code & (FRESH | 7)]
            d[o] = d.get(o, 0) + n
            if not d[o]:
                del d[o]
        self.W[self.gcell[i]] += self.gflat[i] * n

    def _demography(self, m: int, t: float) -> None:
        """Exits, then entrants, at the end of month m (the rules' Turnover)."""
        L, rng = N_LEVELS, self.demog
        p = self.rule.exit_probability(m)
        if p > 0:
            # Idle firms per cell, ceiling, flag and origin, then firms at their ceiling per
            # segment, level and code: one binomial each, drawn in one call (numpy draws an
            # array's elements one after another, as it does one by one), then applied in order.
            groups: list[tuple[int, int, int, int]] = []  # (idle cell i or -1, s, j, code)
            sizes: list[int] = []  # firms in each group
            for i in range(self.n_seg * L):
                s, j = divmod(i, L)
                idle, fresh_idle, extra = self.idle[i], self.fresh_idle[i], self.extra[i]
                for c in range(j + 1, L + 1):
                    fresh = fresh_idle[c]
                    for key, n in ((c | FRESH, fresh), (c, idle[c] - fresh)):
                        if not n:
                            continue
                        d = extra[key]
                        for o, m_ in d.items():
                            if m_:
                                groups.append((i, s, j, key | (o << ORIGIN)))
                                sizes.append(m_)
                        rest = n - sum(d.values())  # those with the implied origin
                        if rest:
                            implied = j if key & FRESH else 0
                            groups.append((i, s, j, key | (implied << ORIGIN)))
                            sizes.append(rest)
            for s in range(self.n_seg):
                for j in range(L + 1):
                    for code, n in self.settled[s][j].items():
                        groups.append((-1, s, j, code))
                        sizes.append(n)
            for (i, s, j, code), x in zip(groups, rng.binomial(sizes, p).tolist(), strict=True):
                if not x:
                    continue
                if i < 0:
                    d = self.settled[s][j]
                    d[code] -= x
                else:
                    self._idle_change(i, code, -x)
                self._count_change(s, j, code, -x)
            # Projects under way and retry waits (the calendar), in order of sequence number.
            keys = list(self.live)  # (in order)
            for h in np.flatnonzero(rng.random(len(keys)) < p).tolist():
                s, k, code = self.live.pop(keys[h])
                if k > 0:  # a running project: its units are freed
                    for r, units in self.needs[k]:
                        self.in_use[r] -= units
                self._count_change(s, abs(k) - 1, code, -1)
            for k in range(1, L + 1):  # waiting projects
                q = self.queues[k]
                if not q:
                    continue
                stay = rng.random(len(q)) >= p
                kept = deque(e for e, ok in zip(q, stay.tolist(), strict=True) if ok)
                for (_, s, code), ok in zip(q, stay.tolist(), strict=True):
                    if not ok:
                        self._count_change(s, k - 1, code, -1)
                self.n_waiting -= len(q) - len(kept)
                self.queues[k] = kept
        for (s, j, c), n in zip(self.rule.cells, self.rule.entrants(rng, m).tolist(),
                                strict=True):
            if not n:
                continue
            code = c | FRESH  # origin 0: not there at the start
            if c > j:
                self._idle_change(s * L + j, code, n)
            else:
                d = self.settled[s][j]
                d[code] = d.get(code, 0) + n
            self._count_change(s, j, code, n)
        self.surv_now = float(self._survivors()[:, self.sc.target.level_index - 1].sum())
        self.unchecked = 0  # entry and exit change the target count (see _check_target)
        if self.crossing is None:  # and entrants alone may carry it over the target
            self._check_target(t)
        # Eligible firms per level (all and per peer group) follow the firms that exist.
        inv_E, inv_Eg = rules.eligible_inverses(np.array(self.elig),
                                                np.arange(self.params.n_groups))
        self.inv_E, self.inv_Es = inv_E.tolist(), inv_Eg.tolist()
        for k in range(1, L + 1):
            self._hazards(k)
        if self.n_waiting:
            self._serve_queues(t)
        else:  # exits emptied the queues: nothing waits for what they lacked
            self.blocked.clear()
        self._total()
