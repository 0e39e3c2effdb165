"""The fast engine's entry and exit (rules.Turnover), on its arrays of cell counts.

Ceiling codes and their families are described in `tau_cells`. Firms at their ceiling
(`settled`, [b, s, level 0..4, code]) are kept only with turnover, since only then can they
leave. Every array has the batch of replications as its first axis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sim.engines import rules
from sim.engines.population import N_LEVELS
from sim.engines.tau_cells import ORIGIN, Cells

_FEW = 16  # leavers of one cell above which their rows are drawn in one call


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


def _withdraw(rng: np.random.Generator, table: np.ndarray, total: np.ndarray, start: int,
              p: float) -> np.ndarray:
    """Each firm filed in `table` [step, *cells] from row `start` on leaves with probability
    p; `total` holds those rows' sum per cell and is kept so (in place). Returns who left,
    per cell. Drawn as how many leave per cell (binomial), then which of the cell's firms
    (distinct ranks, uniform: a multivariate hypergeometric over its rows) -- the law of
    thinning every row, without scanning a table that is mostly empty."""
    flat = total.reshape(-1)
    nz = np.flatnonzero(flat)
    g = rng.binomial(flat[nz], p)
    cells, g = nz[g > 0], g[g > 0]
    gone = np.zeros_like(flat)
    if cells.size:
        rows = table.reshape(len(table), -1)[start:]  # a view
        cols = rows[:, cells].T.copy()  # [cell, row]
        many = np.flatnonzero(g > _FEW)
        for i in many:
            rows[:, cells[i]] -= rng.multivariate_hypergeometric(cols[i], int(g[i])).astype(
                table.dtype)
        few = np.flatnonzero(g <= _FEW)
        if few.size:  # firms drawn by rank within their cell, distinct, then found by rank
            owner = np.repeat(few, g[few])
            size = flat[cells][owner]
            rank = np.floor(rng.random(owner.size) * size).astype(np.int64)
            while True:
                order = np.lexsort((rank, owner))
                twin = np.flatnonzero((np.diff(owner[order]) == 0)
                                      & (np.diff(rank[order]) == 0)) + 1
                if not twin.size:
                    break
                again = order[twin]
                rank[again] = np.floor(rng.random(again.size) * size[again]).astype(np.int64)
            n_rows = cols.shape[1]
            cum = cols.reshape(-1).cumsum()
            base = np.concatenate(([0], cum[n_rows - 1::n_rows][:-1]))
            at = np.searchsorted(cum, base[owner] + rank, side="right")  # cell * n_rows + row
            where = (start + at % n_rows) * rows.shape[1] + cells[at // n_rows]
            np.subtract.at(table.reshape(-1), where, np.ones(at.size, dtype=table.dtype))
        gone[cells] = g
        flat[cells] -= g
    return gone.reshape(total.shape)


def _onehot(index: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((len(index), size), dtype=np.int64)
    out[np.arange(len(index)), index] = 1
    return out


class TauTurnover:
    """Mixed into the fast engine, whose arrays these read and change."""

    rule: rules.Turnover
    params: rules.Parameters
    rng: np.random.Generator
    sc: Any
    B: int
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
    filed: np.ndarray
    returning: np.ndarray
    queue: Any
    in_use: np.ndarray
    units: np.ndarray
    units_k: np.ndarray
    cells: Cells
    inv_E: np.ndarray
    inv_Es: np.ndarray
    t_level: int

    by_region: Callable[[np.ndarray], np.ndarray]

    def _turnover_init(self, cells: np.ndarray) -> None:
        par, L, W, B = self.params, N_LEVELS, self.W, self.B
        self.surv_now: np.ndarray | None = None
        self.entered, self.exited, self.exited_upgraded = (np.zeros(B, dtype=np.int64)
                                                           for _ in range(3))
        months = len(self.sc.month_ends())
        self.survivors = np.zeros((B, months, L), dtype=np.int64)
        self.region_survivors = np.zeros((B, months, par.n_regions, L), dtype=np.int64)
        if self.F == 2:
            return
        self.settled = np.zeros((B, self.S, L + 1, self.F * W), dtype=np.int64)
        for j in range(L + 1):
            self.settled[:, :, j, W + j] = cells[:, j, j]  # at their ceiling from the start
        self.alive_origin = self.by_region(np.repeat(cells.sum(axis=2)[None], B, axis=0))
        elig = cells.sum(axis=1).reshape(par.n_regions, par.n_groups, L + 1).sum(axis=0)
        self.elig = np.repeat(elig[None], B, axis=0)  # [b, peer group, ceiling]
        self.surv_now = self.alive_origin[:, :, self.sc.target.level_index:].sum(axis=(1, 2))
        # [level, code, origin]: 1 where a firm at `level` with `code` started at `origin`
        origin = np.array([np.repeat([j if o < 0 else o for o in ORIGIN[:self.F]], W)
                           for j in range(L + 1)])
        self.origin_of = (origin[:, :, None] == np.arange(L + 1)).astype(np.int64)
        # Entrant cells (cell segment, level 0 or 1, ceiling) and where their counts go.
        cs, lv, ce = (np.array(x, dtype=np.int64).reshape(-1)
                      for x in zip(*self.rule.cells, strict=True)) if self.rule.cells else (
            np.zeros(0, dtype=np.int64),) * 3
        code = np.where(lv == 0, W, 2 * W) + ce
        self.e_idle, self.e_code, self.e_seg, self.e_lvl = ce > lv, code, cs, lv
        self.e_k = self.cells.k_of[np.minimum(lv, L - 1), code]  # (idle entrants only)
        R, G, S = par.n_regions, par.n_groups, self.S
        self.e_to = {  # entrant cell -> [b, ...] arrays, as matrices
            "exact": _onehot(cs * (L + 1) + lv, S * (L + 1)),
            "As": _onehot(cs, S) * (lv >= 1)[:, None],  # entrants are at level <= 1
            "unmoved": _onehot(lv, L + 1),
            "unmoved_r": _onehot(par.region[cs] * (L + 1) + lv, R * (L + 1)),
            "alive": _onehot(par.region[cs], R),
            "elig": _onehot(par.group[cs] * W + ce, G * W)}

    def region_surv_now(self) -> np.ndarray | None:
        """Per replication and region, firms existing now that were at or above the target
        level at the start (None without turnover)."""
        if self.F == 2:
            return None
        return self.alive_origin[:, :, self.t_level:].sum(axis=2)

    def _leave(self, X: np.ndarray) -> None:
        """Firms X [b, s, level 0..4, code] leave."""
        par, W, B = self.params, self.W, self.B
        per_seg = X.sum(axis=3)  # [b, s, j]
        self.exact -= per_seg
        self.As -= rules.at_or_above(per_seg)
        fresh = X[..., W:3 * W].sum(axis=3)
        self.unmoved -= fresh.sum(axis=1)
        self.unmoved_r -= self.by_region(fresh)
        self.alive_origin -= self.by_region(np.einsum("bsjc,jco->bso", X, self.origin_of))
        ceil = X.reshape(B, self.S, -1, self.F, W).sum(axis=(2, 3))  # [b, s, ceiling]
        self.elig -= ceil.reshape(B, par.n_regions, par.n_groups, W).sum(axis=1)
        self.exited += per_seg.sum(axis=(1, 2))
        k = self.t_level
        self.exited_upgraded += per_seg[:, :, k:].sum(axis=(1, 2)) - fresh[:, :, k:].sum(
            axis=(1, 2))

    def _month_end(self, m: int, edge: int) -> None:
        """Record the survivors at month end m, then exits and entrants at its boundary
        (the fast engine's step edge `edge`)."""
        self.region_survivors[:, m] = rules.at_or_above(self.alive_origin)
        self.survivors[:, m] = self.region_survivors[:, m].sum(axis=1)
        if m >= len(self.rule.days):
            return
        L, rng, p = N_LEVELS, self.rng, self.rule.exit_probability(m)
        if p > 0:
            keep = 1.0 - p
            gone = _thin(rng, self.settled, keep)  # [b, s, level 0..4, code]
            cm = self.cells
            cm.unpack_into(gone, _thin(rng, self.idle, keep))
            for entry in self.queue:  # waiting projects
                cm.unpack_into(gone, _thin(rng, entry[0], keep))
                entry[1] = entry[0].sum(axis=(1, 2))
            for e in [e for e in self.queue if not e[1].any()]:  # (by identity: arrays)
                del self.queue[next(i for i, x in enumerate(self.queue) if x is e)]
            # Projects under way and retry waits filed for later steps.
            running = _withdraw(rng, self.pipe, self.filed, edge, p)
            if self.units.size:  # abandoned projects free their units
                self.in_use -= running.sum(axis=1) @ self.units_k
            cm.unpack_into(gone, running + _withdraw(rng, self.ret, self.returning, edge, p))
            self._leave(gone)
        n = self.rule.entrants(rng, m, self.B)  # [b, entrant cell]
        if n.any():
            B, S, W, par = self.B, self.S, self.W, self.params
            on = self.e_idle
            self.idle[:, self.e_seg[on], self.e_k[on]] += n[:, on]
            self.settled[:, self.e_seg[~on], self.e_lvl[~on], self.e_code[~on]] += n[:, ~on]
            to = self.e_to
            self.exact += (n @ to["exact"]).reshape(B, S, L + 1)
            self.As[:, :, 0] += n @ to["As"]
            self.unmoved += n @ to["unmoved"]
            self.unmoved_r += (n @ to["unmoved_r"]).reshape(B, par.n_regions, L + 1)
            self.alive_origin[:, :, 0] += n @ to["alive"]
            self.elig += (n @ to["elig"]).reshape(B, par.n_groups, W)
            self.entered += n.sum(axis=1)
        # Eligible firms follow the firms that exist (columns 1..4: the level decided).
        inv_E, inv_Es = rules.eligible_inverses(self.elig, self.params.group)
        self.inv_E, self.inv_Es = inv_E[:, 1:], inv_Es[:, :, 1:]
        self.surv_now = self.region_surv_now().sum(axis=1)  # type: ignore[union-attr]

    def _turnover_fields(self, b: int) -> dict[str, Any]:
        """Replication b's turnover fields of RunResult."""
        on = self.F > 2
        return {"entered": int(self.entered[b]), "exited": int(self.exited[b]),
                "exited_upgraded": int(self.exited_upgraded[b]),
                "survivors": self.survivors[b] if on else None,
                "region_survivors": self.region_survivors[b] if on else None}
