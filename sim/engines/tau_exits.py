"""Compiled kernels of the fast engine's month-end exits (`tau_turnover`): who leaves from
cell counts and from the tables of projects by step, and what their leaving changes.

Every firm leaves with the same probability p, independently. Cell counts draw that law
per cell (a binomial of the cell's firms). The tables of projects, where a month's leavers
are few, draw one binomial per cell segment, share it among the segment's cells by drawing
firms without replacement, and pick which of a cell's filed firms leave uniformly without
replacement by their rank, so a step's row is read only where someone leaves it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.engines.tau_kernels import draw, invert, log_q


@njit(cache=True)
def thin_out(rng: np.random.Generator, counts: np.ndarray, p: float) -> np.ndarray:
    """Each firm counted in `counts` (flat) leaves with probability p: returns who left,
    taken off `counts` in place. Cells without firms take no random number."""
    gone = np.zeros_like(counts)
    lq = log_q(p)
    for i in range(counts.size):
        n = counts[i]
        if n:
            g = invert(rng, n, p, lq) if p <= 0.5 and n * p < 10.0 else draw(rng, n, p, lq)
            gone[i] = g
            counts[i] = n - g
    return gone


@njit(cache=True)
def _distinct(rng: np.random.Generator, k: int, T: int) -> np.ndarray:
    """k distinct integers of 0..T-1 (2k <= T), uniformly, sorted: draws with duplicates
    redrawn (a rule blind to the values' labels, so every k-subset is as likely)."""
    out = np.empty(k, dtype=np.int64)
    for i in range(k):
        out[i] = min(int(rng.random() * T), T - 1)
    while True:
        out.sort()
        again = 0
        for i in range(1, k):
            if out[i] == out[i - 1]:
                out[i] = -1
                again += 1
        if again == 0:
            return out
        for i in range(k):
            if out[i] < 0:
                out[i] = min(int(rng.random() * T), T - 1)


@njit(cache=True)
def _remove(rng: np.random.Generator, table: np.ndarray, cell: int, start: int, g: int,
            T: int) -> None:
    """Take g of the T firms filed in row `cell` of `table` from step `start` on, uniformly
    without replacement by their rank in step order (or, when more leave than stay, keep
    T - g of them so)."""
    n_steps = table.shape[1]
    leavers = 2 * g <= T  # else draw the ones that stay
    ranks = _distinct(rng, g if leavers else T - g, T)
    below, i = 0, 0  # firms in earlier steps; ranks placed
    for step in range(start, n_steps):
        c = table[cell, step]
        if c == 0:
            continue
        hit = 0
        while i < ranks.size and ranks[i] < below + c:
            hit += 1
            i += 1
        table[cell, step] = c - hit if leavers else hit
        below += c
        if leavers and i == ranks.size:
            break


@njit(cache=True)
def withdraw(rng: np.random.Generator, table: np.ndarray, total: np.ndarray, start: int,
             p: float, group: int = 1) -> np.ndarray:
    """Each firm filed in `table` [cell, step] under step `start` or later leaves with
    probability p; `total` [cell] holds those steps' sum and is kept so (in place). Returns
    who left per cell. Cells come in groups of `group` consecutive rows (a cell segment's
    cells): a group's leavers are one binomial of its firms, shared among its cells by
    drawing firms without replacement (the multivariate hypergeometric law of independent
    leaving given the total; the stayers when more leave than stay), so a group costs one
    binomial and a draw per leaver however many cells it has; then each cell's leavers are
    taken from its steps (`_remove`)."""
    n_cells = table.shape[0]
    gone = np.zeros_like(total)
    lq = log_q(p)
    hits = np.zeros(group, dtype=np.int64)
    for g0 in range(0, n_cells, group):
        T = 0
        for c in range(group):
            T += total[g0 + c]
        if T == 0:
            continue
        x = invert(rng, T, p, lq) if p <= 0.5 and T * p < 10.0 else draw(rng, T, p, lq)
        if x == 0:
            continue
        leavers = 2 * x <= T
        left = T
        hits[:] = 0
        for _ in range(x if leavers else T - x):
            r = min(int(rng.random() * left), left - 1)
            c = 0
            while r >= total[g0 + c] - hits[c]:
                r -= total[g0 + c] - hits[c]
                c += 1
            hits[c] += 1
            left -= 1
        for c in range(group):
            cell = g0 + c
            n = total[cell]
            k = hits[c] if leavers else n - hits[c]
            if k == 0:
                continue
            gone[cell] = k
            total[cell] = n - k
            _remove(rng, table, cell, start, k, n)
    return gone


@njit(cache=True)
def leave(X: np.ndarray, region: np.ndarray, group: np.ndarray, origin: np.ndarray,
          fresh: np.ndarray, t_level: int, exact: np.ndarray, As: np.ndarray,
          unmoved: np.ndarray, unmoved_r: np.ndarray, alive_origin: np.ndarray,
          elig: np.ndarray, exited: np.ndarray, exited_upgraded: np.ndarray) -> None:
    """Firms X [b, s, level j, code c] leave: taken off the counts by level (exact, As),
    the unmoved ones (fresh[c]), by origin (origin[j, c], per region), the eligible firms
    by peer group and ceiling (c mod W, W = elig.shape[2]), and counted (exited; those at or
    above the target level that had completed a project there, exited_upgraded)."""
    B, S, L1, C = X.shape
    W = elig.shape[2]
    for b in range(B):
        for s in range(S):
            r, g = region[s], group[s]
            for j in range(L1):
                for c in range(C):
                    x = X[b, s, j, c]
                    if x == 0:
                        continue
                    exact[b, s, j] -= x
                    for i in range(j):
                        As[b, s, i] -= x
                    alive_origin[b, r, origin[j, c]] -= x
                    elig[b, g, c % W] -= x
                    exited[b] += x
                    if fresh[c]:
                        unmoved[b, j] -= x
                        unmoved_r[b, r, j] -= x
                    elif j >= t_level:
                        exited_upgraded[b] += x
