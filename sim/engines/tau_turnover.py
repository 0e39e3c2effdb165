"""The fast engine's entry and exit (rules.Turnover), on its arrays of cell counts.

Ceiling codes come in families of W = 5 (one per ceiling): 0 moved (started at level 0 or
entered), 1 unmoved (started where it is), and with turnover 2 unmoved entrants above level
0, and 3, 4, 5 moved firms that started at level 1, 2, 3: the level a firm started at is what
the `new` reading needs once firms leave. Firms at their ceiling (`settled`) are kept only
with turnover, since only then can they leave.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.engines import rules
from sim.engines.population import N_LEVELS

# Origin (level started at) of each family, and of unmoved firms: their own level (-1 here).
_ORIGIN = (0, -1, 0, 1, 2, 3)


def _thin(rng: np.random.Generator, arr: np.ndarray, keep: float) -> np.ndarray:
    """Keep each firm counted in `arr` with probability `keep` (in place); those that leave,
    as an array of the same shape. Only the cells that hold firms are drawn."""
    flat = arr.reshape(-1)
    nz = np.flatnonzero(flat)
    stay = rng.binomial(flat[nz], keep)
    gone = np.zeros_like(flat)
    gone[nz] = flat[nz] - stay
    flat[nz] = stay
    return gone.reshape(arr.shape)


class TauTurnover:
    """Mixed into the fast engine, whose arrays these read and change."""

    rule: rules.Turnover
    params: rules.Parameters
    rng: np.random.Generator
    sc: Any
    W: int
    F: int
    S: int
    idle: np.ndarray
    exact: np.ndarray
    As: np.ndarray
    unmoved: np.ndarray
    unmoved_r: np.ndarray
    pipe: np.ndarray
    ret: np.ndarray
    queue: Any
    in_use: np.ndarray
    units: np.ndarray
    goes_on: np.ndarray
    inv_E: np.ndarray
    inv_Es: np.ndarray
    t_level: int

    def _turnover_init(self, cells: np.ndarray) -> None:
        par, L, W = self.params, N_LEVELS, self.W
        self.surv_now: float | None = None
        self.entered = self.exited = self.exited_upgraded = 0
        months = len(self.sc.month_ends())
        self.survivors = np.zeros((months, L), dtype=np.int64)
        self.region_survivors = np.zeros((months, par.n_regions, L), dtype=np.int64)
        if self.F == 2:
            return
        self.settled = np.zeros((self.S, L + 1, self.F * W), dtype=np.int64)
        for j in range(L + 1):
            self.settled[:, j, W + j] = cells[:, j, j]  # at their ceiling from the start
        self.alive_origin = par.by_region(cells.sum(axis=2))  # [region, origin]
        self.elig = cells.sum(axis=1).reshape(par.n_regions, par.n_groups, L + 1).sum(axis=0)
        self.surv_now = float(self.alive_origin[:, self.sc.target.level_index:].sum())
        self.origin_of = [self._origin_of(j) for j in range(L + 1)]
        # Entrant cells as index arrays: cell segment, level, code (unmoved, origin 0), ceiling.
        cs, lv, ce = (np.array(x, dtype=np.int64).reshape(-1)
                      for x in zip(*self.rule.cells, strict=True)) if self.rule.cells else (
            np.zeros(0, dtype=np.int64),) * 3
        self.e_seg, self.e_lvl, self.e_ceil = cs, lv, ce
        self.e_code = np.where(lv == 0, W, 2 * W) + ce
        self.e_idle = ce > lv

    def region_surv_now(self) -> np.ndarray | None:
        """Per region, firms existing now that were at or above the target level at the
        start (None without turnover)."""
        if self.F == 2:
            return None
        return self.alive_origin[:, self.t_level:].sum(axis=1)

    def _climb(self, G: np.ndarray) -> None:
        """Successes G [s, i, code] climb to level i + 1 with their family's new code: idle if
        eligible higher, else settled; unmoved firms become moved ones that started at i."""
        W, F, L = self.W, self.F, N_LEVELS
        g = G.reshape(self.S, L, F, W)
        out = np.zeros_like(g)
        out[:, :, 0] = g[:, :, 0] + g[:, :, 2]
        out[:, :, 3:] = g[:, :, 3:]
        out[:, 0, 0] += g[:, 0, 1]
        for i in range(1, L):
            out[:, i, 2 + i] += g[:, i, 1]
        go = np.zeros((L, W), dtype=np.int64)
        go[:L - 1] = self.goes_on
        on = out * go[None, :, None, :]
        self.idle[:, 1:] += on[:, :-1].reshape(self.S, L - 1, F * W)
        self.settled[:, 1:] += (out - on).reshape(self.S, L, F * W)

    def _origin_of(self, level: int) -> np.ndarray:
        """(codes, origins) 0/1: the origin of each code of a firm at `level`."""
        origin = np.repeat([level if o < 0 else o for o in _ORIGIN], self.W)
        return (origin[:, None] == np.arange(N_LEVELS + 1)[None, :]).astype(np.int64)

    def _leave(self, X: np.ndarray, levels: np.ndarray) -> None:
        """Firms X [s, level row, code] leave; `levels` gives each row's level."""
        par, W = self.params, self.W
        for row, j in enumerate(levels.tolist()):
            x = X[:, row]
            if not x.any():
                continue
            per_seg = x.sum(axis=1)
            self.exact[:, j] -= per_seg
            self.As[:, 1:j + 1] -= per_seg[:, None]
            fresh = x[:, W:3 * W].sum(axis=1)
            self.unmoved[j] -= int(fresh.sum())
            self.unmoved_r[:, j] -= par.by_region(fresh)
            self.alive_origin -= par.by_region(x @ self.origin_of[j])
            ceil = x.reshape(self.S, self.F, W).sum(axis=1)  # [s, ceiling]
            self.elig -= ceil.reshape(par.n_regions, par.n_groups, W).sum(axis=0)
            self.exited += int(per_seg.sum())
            if j >= self.t_level:
                self.exited_upgraded += int(x.sum() - fresh.sum())

    def _month_end(self, m: int, edge: int) -> None:
        """Record the survivors at month end m, then exits and entrants at its boundary
        (the fast engine's step edge `edge`)."""
        self.region_survivors[m] = rules.at_or_above(self.alive_origin)
        self.survivors[m] = self.region_survivors[m].sum(axis=0)
        if m >= len(self.rule.days):
            return
        L, rng, p = N_LEVELS, self.rng, self.rule.exit_probability(m)
        if p > 0:
            keep = 1.0 - p
            rows = np.arange(L)
            for arr in (self.idle, self.settled):
                self._leave(_thin(rng, arr, keep), rows if arr is self.idle else np.arange(L + 1))
            for entry in self.queue:  # waiting projects
                self._leave(_thin(rng, entry[0], keep), rows)
                entry[1] = int(entry[0].sum())
            emptied = [e for e in self.queue if not e[1]]
            for e in emptied:  # (by identity: entries hold arrays)
                del self.queue[next(i for i, x in enumerate(self.queue) if x is e)]
            for table, running in ((self.pipe, True), (self.ret, False)):
                later = table[edge:]  # a view: projects and retry waits filed for later steps
                flat = later.reshape(-1)
                nz = np.flatnonzero(flat)  # (mostly zeros: thin only what is there)
                new = rng.binomial(flat[nz], keep)
                gone = np.zeros(later.shape[1:], dtype=np.int64)
                np.add.at(gone.reshape(-1), nz % gone.size, flat[nz] - new)
                flat[nz] = new
                if running and self.units.size:  # abandoned projects free their units
                    self.in_use -= gone.sum(axis=(0, 2)) @ self.units
                self._leave(gone, rows)
        n = self.rule.entrants(rng, m)
        if n.any():
            par, sg, lv, ce = self.params, self.e_seg, self.e_lvl, self.e_ceil
            idle = self.e_idle
            np.add.at(self.idle, (sg[idle], lv[idle], self.e_code[idle]), n[idle])
            np.add.at(self.settled, (sg[~idle], lv[~idle], self.e_code[~idle]), n[~idle])
            np.add.at(self.exact, (sg, lv), n)
            np.add.at(self.As, (sg, np.ones_like(lv)), n * (lv >= 1))  # entrants are at <= 1
            np.add.at(self.unmoved, lv, n)
            np.add.at(self.unmoved_r, (par.region[sg], lv), n)
            np.add.at(self.alive_origin, (par.region[sg], np.zeros_like(lv)), n)
            np.add.at(self.elig, (par.group[sg], ce), n)
            self.entered += int(n.sum())
        # Eligible firms follow the firms that exist (columns 1..4: the level decided).
        inv_E, inv_Es = rules.eligible_inverses(self.elig, self.params.group)
        self.inv_E, self.inv_Es = inv_E[1:], inv_Es[:, 1:]
        self.surv_now = float(self.region_surv_now().sum())  # type: ignore[union-attr]

    def _turnover_fields(self) -> dict[str, Any]:
        """RunResult's turnover fields."""
        on = self.F > 2
        return {"entered": self.entered, "exited": self.exited,
                "exited_upgraded": self.exited_upgraded,
                "survivors": self.survivors if on else None,
                "region_survivors": self.region_survivors if on else None}
