"""The fast engine's entry and exit (rules.Turnover), on its arrays of cell counts.

Ceiling codes and their families are described in `tau_cells`. Firms at their ceiling
(`settled`, [b, s, level 0..4, code]) are kept only with turnover, since only then can they
leave. Every array has the batch of replications as its first axis.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from sim.engines import rules
from sim.engines.population import N_LEVELS
from sim.engines.tau_cells import ORIGIN, Cells
from sim.engines.tau_exits import leave, thin_out, withdraw


def _thin(rng: np.random.Generator, arr: np.ndarray, p: float) -> np.ndarray:
    """Each firm counted in `arr` leaves with probability p (in place); those that leave,
    as an array of the same shape."""
    flat = np.ascontiguousarray(arr).reshape(-1)
    gone = thin_out(rng, flat, p)
    if not np.shares_memory(flat, arr):
        arr[...] = flat.reshape(arr.shape)
    return gone.reshape(arr.shape)


def _withdraw(rng: np.random.Generator, table: np.ndarray, total: np.ndarray, start: int,
              p: float) -> np.ndarray:
    """Each firm filed in `table` [*cells, step] from step `start` on leaves with
    probability p (`tau_exits.withdraw`, one binomial per cell segment: the last axis of
    `total`); `total` [*cells] is kept their sum."""
    flat = total.reshape(-1)
    rows = table.reshape(flat.size, -1)
    assert np.shares_memory(rows, table)  # (a view, whichever axis the table stores first)
    gone = withdraw(rng, rows, flat, start, p, total.shape[-1])
    return gone.reshape(total.shape)


class _Spread:
    """Adds counts per entrant cell [b, cell] into an array [b, size] at each cell's index
    (-1: nowhere), by sorted sums: a product with a one-hot matrix of integers would not
    run in BLAS, and one of floats starts BLAS's threads, which compete for the cores."""

    def __init__(self, index: np.ndarray, size: int):
        self.order = np.argsort(index, kind="stable")
        ix = index[self.order]
        self.order = self.order[ix >= 0]
        ix = ix[ix >= 0]
        self.starts = np.flatnonzero(np.r_[True, ix[1:] != ix[:-1]]) if ix.size else ix
        self.at, self.size = ix[self.starts], size

    def __call__(self, n: np.ndarray) -> np.ndarray:
        out = np.zeros((n.shape[0], self.size), dtype=np.int64)
        if self.at.size:
            out[:, self.at] = np.add.reduceat(n[:, self.order], self.starts, axis=1)
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
        # [level, code]: the level a firm at `level` with `code` started at; and the codes
        # of firms that have completed no project (unmoved families)
        self.origin_of = np.array([np.repeat([j if o < 0 else o for o in ORIGIN[:self.F]], W)
                                   for j in range(L + 1)])
        self.fresh_code = np.isin(np.arange(self.F * W) // W, (1, 2))
        # Entrant cells (cell segment, level 0 or 1, ceiling) and where their counts go.
        cs, lv, ce = (np.array(x, dtype=np.int64).reshape(-1)
                      for x in zip(*self.rule.cells, strict=True)) if self.rule.cells else (
            np.zeros(0, dtype=np.int64),) * 3
        code = np.where(lv == 0, W, 2 * W) + ce
        self.e_idle, self.e_code, self.e_seg, self.e_lvl = ce > lv, code, cs, lv
        self.e_k = self.cells.k_of[np.minimum(lv, L - 1), code]  # (idle entrants only)
        R, G, S = par.n_regions, par.n_groups, self.S
        self.e_to = {  # entrant cell -> [b, ...] arrays
            "exact": _Spread(cs * (L + 1) + lv, S * (L + 1)),
            "As": _Spread(np.where(lv >= 1, cs, -1), S),  # entrants are at level <= 1
            "unmoved": _Spread(lv, L + 1),
            "unmoved_r": _Spread(par.region[cs] * (L + 1) + lv, R * (L + 1)),
            "alive": _Spread(par.region[cs], R),
            "elig": _Spread(par.group[cs] * W + ce, G * W)}

    def region_surv_now(self) -> np.ndarray | None:
        """Per replication and region, firms existing now that were at or above the target
        level at the start (None without turnover)."""
        if self.F == 2:
            return None
        return self.alive_origin[:, :, self.t_level:].sum(axis=2)

    def _leave(self, X: np.ndarray) -> None:
        """Firms X [b, s, level 0..4, code] leave."""
        par = self.params
        leave(X, par.region, par.group, self.origin_of, self.fresh_code, self.t_level,
              self.exact, self.As, self.unmoved, self.unmoved_r, self.alive_origin, self.elig,
              self.exited, self.exited_upgraded)

    def _month_end(self, m: int, edge: int) -> None:
        """Record the survivors at month end m, then exits and entrants at its boundary
        (the fast engine's step edge `edge`)."""
        self.region_survivors[:, m] = rules.at_or_above(self.alive_origin)
        self.survivors[:, m] = self.region_survivors[:, m].sum(axis=1)
        if m >= len(self.rule.days):
            return
        L, rng, p = N_LEVELS, self.rng, self.rule.exit_probability(m)
        if p > 0:
            # [b, s, level 0..4, code]
            gone = thin_out(rng, self.settled.reshape(-1), p).reshape(self.settled.shape)
            cm = self.cells
            cm.unpack_into(gone, _thin(rng, self.idle, p))
            for entry in self.queue:  # waiting projects
                cm.unpack_into(gone, _thin(rng, entry[0], p))
                entry[1] = entry[0].sum(axis=(1, 2))
            self.queue = deque(e for e in self.queue if e[1].any())
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
            self.exact += to["exact"](n).reshape(B, S, L + 1)
            self.As[:, :, 0] += to["As"](n)
            self.unmoved += to["unmoved"](n)
            self.unmoved_r += to["unmoved_r"](n).reshape(B, par.n_regions, L + 1)
            self.alive_origin[:, :, 0] += to["alive"](n)
            self.elig += to["elig"](n).reshape(B, par.n_groups, W)
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
