"""The mean field's building blocks: the phase-type fit of implementation times, the lanes
of its state vector, a sparse matrix built entry by entry, and the BDF solver it uses."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.integrate import BDF
from scipy.sparse.linalg import splu

from sim.engines import rules
from sim.engines.population import N_LEVELS

RETRY_STAGES = 8
MAX_STAGES = 24


def erlang_stages(median_months: float, sigma: float) -> tuple[int, float, float]:
    """Phase-type fit of a lognormal time: stages n, per-stage rate (per year), and the
    probability of skipping the first stage (an Erlang(n-1) instead of Erlang(n)), chosen so
    that mean and variance both match (Tijms 1994, section 5.7)."""
    mean = median_months / 12.0 * math.exp(sigma * sigma / 2.0)
    cv2 = math.expm1(sigma * sigma)
    if cv2 <= 1.0 / MAX_STAGES:
        return MAX_STAGES, MAX_STAGES / mean, 0.0
    if cv2 >= 1.0:
        return 1, 1.0 / mean, 0.0
    n = math.ceil(1.0 / cv2)
    skip = (n * cv2 - math.sqrt(n * (1 + cv2) - n * n * cv2)) / (1 + cv2)
    return n, (n - skip) / mean, skip


class Triplets:
    """A sparse matrix built entry by entry (repeated entries add up)."""

    def __init__(self, rows: int, cols: int):
        self.shape = (rows, cols)
        self.r: list = []  # ints (one entry) and arrays (many)
        self.c: list = []
        self.v: list = []

    def add(self, row, col, val) -> None:
        if np.ndim(row) or np.ndim(col) or np.ndim(val):
            row, col, val = np.broadcast_arrays(row, col, np.asarray(val, dtype=float))
        self.r.append(row)
        self.c.append(col)
        self.v.append(val)

    def add_col(self, col: int, values: np.ndarray) -> None:
        nz = np.flatnonzero(values)
        self.add(nz, col, values[nz])

    def add_row(self, row: int, values: np.ndarray) -> None:
        nz = np.flatnonzero(values)
        self.add(row, nz, values[nz])

    def csr(self) -> sparse.csr_matrix:
        if not self.r:
            return sparse.csr_matrix(self.shape)
        r, c, v = (np.concatenate([np.ravel(x) for x in xs]) for xs in (self.r, self.c, self.v))
        return sparse.coo_matrix((v.astype(float), (r, c)), shape=self.shape).tocsr()


@dataclass(frozen=True)
class Lanes:
    """Index arithmetic of the state vector."""

    seg: np.ndarray  # lane -> segment
    lvl: np.ndarray  # lane -> target level k (1..4)
    ceil: np.ndarray  # lane -> ceiling c (>= k)
    fresh: np.ndarray  # lane -> 1 if its firms have completed no project since the start
    nxt: np.ndarray  # lane -> lane (s, k+1, c, moved) a success feeds, or -1 if c == k
    by_level: tuple[np.ndarray, ...]  # lanes of level k at index k (index 0 empty)


def lanes_of(n_seg: int) -> Lanes:
    """Lanes (s, k, c, fresh). Firms at level >= 1 that have completed no project since the
    start have lanes of their own (fresh), for the `upgraded` reading; at level 0 it does
    not matter, so level-1 lanes are not split."""
    seg, lvl, ceil, fresh = [], [], [], []
    for s in range(n_seg):
        for k in range(1, N_LEVELS + 1):
            for c in range(N_LEVELS + 1):
                if not rules.may_climb(k - 1, c):
                    continue
                for f in (0, 1) if k > 1 else (0,):
                    seg.append(s)
                    lvl.append(k)
                    ceil.append(c)
                    fresh.append(f)
    lanes = list(zip(seg, lvl, ceil, fresh, strict=True))
    index = {lane: i for i, lane in enumerate(lanes)}
    nxt = [index.get((s, k + 1, c, 0), -1) if rules.may_climb(k, c) else -1
           for s, k, c, _ in lanes]
    arr = np.array
    by_level = tuple(arr([i for i, k in enumerate(lvl) if k == lv], dtype=int)
                     for lv in range(N_LEVELS + 1))
    return Lanes(arr(seg), arr(lvl), arr(ceil), arr(fresh), arr(nxt), by_level)


def place_flight(self: Any, y: np.ndarray, t: float) -> None:
    """Projects under way at the start: spread over their implementation stages as a
    steady stream of starts would leave them (each stage as full as the share of
    projects that pass through it), the resources permitting, level by level; the rest
    wait first in line. Instant projects finish at once."""
    ln = self.lanes
    free = self._capacity(t) - self.run_units @ y
    for k in range(1, N_LEVELS + 1):
        lanes = ln.by_level[k]
        mass = self.flight[lanes]
        total = float(mass.sum())
        if total <= 0:
            continue
        frac = 1.0
        for r, units in self.needs[k]:
            frac = min(frac, max(0.0, free[r]) / (units * total))
        for r, units in self.needs[k]:
            free[r] -= frac * units * total
        y[self.o_wait + lanes] += (1 - frac) * mass
        n_st = self.stages[k]
        if not n_st:
            y += self.entry[lanes].T @ (frac * mass)
            continue
        weight = np.ones(n_st)
        weight[0] -= self.stage_skip[k]
        weight /= weight.sum()
        for pos in range(len(lanes)):
            for m in range(n_st):
                y[self.o_run[k] + pos * n_st + m] += frac * mass[pos] * weight[m]


class SparseBDF(BDF):
    """scipy's BDF with the sparse LU of I - c J ordered by minimum degree on A + A^T.

    The default column ordering (COLAMD, for A^T A) filled the factors in about 2.4 times as
    much (75k nonzeros, 31k this way) on this nearly symmetric pattern: chains of stages with
    a strong diagonal and a few sum states that many rows and columns share."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # scipy allocates the table of differences with np.empty and, on the first step,
        # subtracts a row it has not written yet: whatever the memory held (a NaN now and
        # then) gave a RuntimeWarning at random, never a different result (that row is
        # rewritten before it is read). Zeros say nothing.
        self.D[2:] = 0.0
        if sparse.issparse(self.J):  # (a dense J keeps scipy's dense LU)

            def lu(A: sparse.csc_matrix) -> Any:
                self.nlu += 1
                return splu(A, permc_spec="MMD_AT_PLUS_A")

            self.lu = lu


__all__ = ["place_flight", "MAX_STAGES", "RETRY_STAGES", "SparseBDF", "Triplets", "lanes_of",
           "erlang_stages"]
