"""The mean field's entry and exit (rules.Turnover at the same rates, run continuously):
every firm state decays at the exit rate, entrants flow in at a constant rate, and what the
counts need in closed form (eligible firms, survivors of the starting stock, firms alive)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import sparse

from sim.engines import rules
from sim.engines.meanfield_parts import Triplets
from sim.engines.population import N_LEVELS


class MeanFieldTurnover:
    """Mixed into the mean field, whose state layout these extend."""

    params: rules.Parameters
    sc: Any
    lanes: Any
    n_seg: int
    size: int
    o_idle: int
    o_y: int
    o_z: int
    o_x: int
    o_u: int
    As0: np.ndarray
    inv_E: np.ndarray
    inv_Es: np.ndarray

    def _turnover_init(self, exact: np.ndarray) -> None:
        par, L, S = self.params, N_LEVELS, self.n_seg
        self.rule = rules.Turnover(self.sc, par)
        self.turnover = self.rule.active
        self.delta = self.sc.exit
        self.lam = self.rule.entry_rate  # entrants per year
        self.exact0 = exact
        self.N0 = float(exact.sum())
        region_at = par.layout.region_at_or_above().astype(float)  # (R, 4)
        self.surv0 = region_at
        # Entrants per year per cell segment and level (all unmoved), and per peer group by
        # ceiling (eligibility).
        self.in_exact = np.zeros((S, L + 1))
        self.in_ceil = np.zeros((par.n_groups, L + 1))
        lanes = {(int(s), int(k), int(c), int(f)): i for i, (s, k, c, f) in
                 enumerate(zip(self.lanes.seg, self.lanes.lvl, self.lanes.ceil,
                               self.lanes.fresh, strict=True))}
        self.src = np.zeros(self.size)
        for (cs, lv, c), p in zip(self.rule.cells, self.rule.probs.tolist(), strict=True):
            rate = self.lam * p
            self.in_exact[cs, lv] += rate
            self.in_ceil[par.group[cs], c] += rate
            if c > lv:  # idle: the lane deciding on lv + 1 (unmoved lanes exist above level 0)
                self.src[self.o_idle + lanes[(cs, lv + 1, c, int(lv >= 1))]] += rate
        # Firms at the start per peer group and eligibility ceiling.
        cells = np.array(par.layout.cells, dtype=float).sum(axis=1)  # (segments, ceiling)
        self.ceil0 = cells.reshape(par.n_regions, par.n_groups, L + 1).sum(axis=0)

    def _turnover_linear(self, B: Triplets) -> None:
        """Exits and entrants in the linear part and the constant source, all but the decay
        of each state itself (`_exit_decay`): X (firms that left having completed a project at
        or above the target level) and the sources of Y (change in firms at or above each
        level) and U (unmoved firms at exactly each level)."""
        if not self.turnover:
            return
        d, L, S = self.delta, N_LEVELS, self.n_seg
        ys = self.o_y + np.arange(S * L)
        us = self.o_z + np.arange(S * (L + 1))
        at_in = rules.at_or_above(self.in_exact)
        self.src[ys] = -d * self.As0[:, 1:].ravel() + at_in.ravel()
        self.src[us] = self.in_exact.ravel()
        k = self.sc.target.level_index
        B.add(self.o_x, self.o_y + np.arange(S) * L + k - 1, d)
        cols = (self.o_z + np.arange(S)[:, None] * (L + 1) + np.arange(k, L + 1)[None, :])
        B.add(self.o_x, cols.ravel(), -d)
        self.src[self.o_x] = d * self.As0[:, k].sum()

    def _exit_decay(self) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """(size x size) diagonals: every lane state, Y and U decay at the exit rate (the
        vector field's part), and the same with the sum states decaying too (the Jacobian's).

        A sum state's derivative is the sum of its terms' derivatives, so exits add -d times
        each term to its row: a dense row (every running stage of every lane), which made
        SuperLU's column ordering fill the LU factors in (20 ms a factorization instead of
        4). The Jacobian says -d u instead (the same wherever the sums agree with their terms,
        as they do along the solution and in every Newton step: see `jac`)."""
        n = self.size
        if not self.turnover:
            empty = sparse.csr_matrix((n, n))
            return empty, empty
        L, S = N_LEVELS, self.n_seg
        states = np.concatenate([np.arange(self.o_idle, self.o_y),  # lane states
                                 self.o_y + np.arange(S * L), self.o_z + np.arange(S * (L + 1))])
        sums = np.arange(self.o_u, n)
        both = np.concatenate([states, sums])
        return (sparse.csr_matrix((np.full(len(states), -self.delta), (states, states)),
                                  shape=(n, n)),
                sparse.csr_matrix((np.full(len(both), -self.delta), (both, both)), shape=(n, n)))

    def _at(self, t: float) -> None:
        """Eligible firms at time t: those at the start decay, entrants add their own."""
        if not self.turnover:
            return
        present = self.ceil0 * self._keep(t) + self.in_ceil * self._gained(t)
        self.inv_E, self.inv_Es = rules.eligible_inverses(present, self.params.group)

    def _keep(self, t: float) -> float:
        return math.exp(-self.delta * t)

    def _gained(self, t: float) -> float:
        """Entrants per unit entry rate still present at t: (1 - e^(-d t)) / d."""
        return -math.expm1(-self.delta * t) / self.delta if self.delta > 0 else t

    def alive_at(self, t: float) -> np.ndarray:
        """Firms of each cell segment present at t."""
        return self.exact0.sum(axis=1) * self._keep(t) + self.in_exact.sum(axis=1) * self._gained(t)

    def region_survivors_at(self, t: float) -> np.ndarray:
        """(regions, 4): firms present at t that were at or above each level at the start."""
        return self.surv0 * self._keep(t)

    def turnover_fields(self, y_end: np.ndarray, months: np.ndarray) -> dict[str, Any]:
        """RunResult's turnover fields (expected values)."""
        if not self.turnover:
            return {}
        T = self.sc.horizon
        alive = self.N0 * self._keep(T) + self.lam * self._gained(T)
        region = np.stack([self.region_survivors_at(float(t)) for t in months])
        return {"entered": self.lam * T, "exited": self.N0 + self.lam * T - alive,
                "exited_upgraded": float(y_end[self.o_x]),
                "survivors": region.sum(axis=1), "region_survivors": region}
