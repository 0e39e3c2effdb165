"""Compiled kernels of the fast engine: the loops over projects and cells that numpy would
run as many passes over large temporary arrays.

The kernels draw from the engine's numpy Generator itself (numba's Generator methods are
numpy's algorithms on the same bit generator, and they advance the same stream). Binomials
are drawn by numpy's inversion where the mean is below 10 and by Hormann's BTRS above: the
same law as numpy's draws, not the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# log k! less its Stirling form (k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2, k = 0..9
_TAIL = np.array([0.0810614667953272, 0.0413406959554092, 0.0276779256849983,
                  0.02079067210376509, 0.0166446911898211, 0.0138761288230707,
                  0.0118967099458917, 0.0104112652619720, 0.00925546218271273,
                  0.00833056343336287])


@njit(cache=True)
def _tail(k: float) -> float:
    """log k! less its Stirling form: the table up to 9, then its series (error < 1e-10)."""
    if k <= 9:
        return _TAIL[int(k)]
    k1 = k + 1.0
    sq = k1 * k1
    return (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / sq) / sq) / k1


@njit(cache=True)
def _btrs(rng: np.random.Generator, n: int, p: float) -> int:
    """Binomial(n, p) for n p >= 10, p <= 1/2: Hormann's transformed rejection with squeeze
    (BTRS; W. Hormann, J. Statist. Comput. Simul. 46, 1993), as TensorFlow and JAX draw it:
    two uniforms and, outside the squeeze, the log ratio of the pmf to its mode's."""
    spq = math.sqrt(n * p * (1.0 - p))
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    v_r = 0.92 - 4.2 / b
    r = p / (1.0 - p)
    alpha = (2.83 + 5.1 / b) * spq
    m = math.floor((n + 1) * p)
    at_mode = (m + 0.5) * math.log((m + 1) / (r * (n - m + 1))) + _tail(m) + _tail(n - m)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + c)
        if k < 0 or k > n:
            continue
        if us >= 0.07 and v <= v_r:  # the squeeze: accepted without the pmf
            return int(k)
        v = math.log(v * alpha / (a / (us * us) + b))
        if v <= (at_mode + (n + 1) * math.log((n - m + 1) / (n - k + 1))
                 + (k + 0.5) * math.log(r * (n - k + 1) / (k + 1)) - _tail(k) - _tail(n - k)):
            return int(k)


@njit(cache=True)
def invert(rng: np.random.Generator, n: int, p: float, log_q: float) -> int:
    """Binomial(n, p) for n p < 10, p <= 1/2, log_q = log(1 - p): numpy's inversion
    algorithm (walking the pmf up from 0, restarting past 10 standard deviations), the log
    shared by cells of one probability and the most common outcome, 0, tested first."""
    qn = math.exp(n * log_q)
    u = rng.random()
    if u <= qn:
        return 0
    q = 1.0 - p
    r = p / q
    np_ = n * p
    bound = min(n, np_ + 10.0 * math.sqrt(np_ * q + 1.0))
    x, px = 0, qn
    while u > px:
        x += 1
        if x > bound:
            x, px, u = 0, qn, rng.random()
        else:
            u -= px
            px = px * r * (n - x + 1) / x  # P(x) from P(x - 1)
    return x


@njit(cache=True)
def log_q(p: float) -> float:
    """What `draw` and `invert` need of p: log(1 - min(p, 1 - p))."""
    return math.log1p(-min(p, 1.0 - p))


@njit(cache=True)
def draw(rng: np.random.Generator, n: int, p: float, lq: float) -> int:
    """Binomial(n, p), lq = log_q(p): inversion where n min(p, 1 - p) < 10, else BTRS,
    which there takes a half to a third of the time of inversion (below 30) and BTPE.
    (Kernels call `invert` directly for p <= 1/2 and n p < 10, the common case: a call
    through here costs a third more there.)"""
    q = min(p, 1.0 - p)
    k = invert(rng, n, q, lq) if n * q < 10.0 else _btrs(rng, n, q)
    return k if p <= 0.5 else n - k


@njit(cache=True)
def binomial(rng: np.random.Generator, n: int, p: float) -> int:
    """Binomial(n, p) (`draw`)."""
    return draw(rng, n, p, log_q(p))


@njit(cache=True)
def file_projects(rng: np.random.Generator, pipe: np.ndarray, cells: np.ndarray,
                  counts: np.ndarray, level: np.ndarray, cdf: np.ndarray, first: int) -> int:
    """File counts[c] projects of cell cells[c] (a row of `pipe` [cell, step]) of level
    level[c] under their completion steps: pipe[cell, first + j] += 1, j drawn from
    cdf[level] (P(completing by column j), the last column 1) by inversion of one uniform
    per project, sped up by a guide table (Chen and Asau: where the search starts).
    Returns how many were filed under step `first` itself."""
    L, J = cdf.shape
    G = 16 * J  # guide cells per level: few straddle a column, so the search rarely moves
    guide = np.empty((L, G), dtype=np.int64)
    for i in range(L):
        j = 0
        for g in range(G):
            while cdf[i, j] * G < g:
                j += 1
            # The first column with cdf * G >= g: every column before it has cdf < u for
            # any u with u * G >= g (rounding is monotone), so the search misses none.
            guide[i, g] = j
    now = 0
    for c in range(cells.size):
        i = level[c]
        row = cells[c]
        for _ in range(counts[c]):
            u = rng.random()
            j = guide[i, min(int(u * G), G - 1)]
            while cdf[i, j] <= u:
                j += 1
            pipe[row, first + j] += 1
            if j == 0:
                now += 1
    return now


@njit(cache=True)
def take(table: np.ndarray, m: int, total: np.ndarray) -> np.ndarray:
    """Column m of table [b, s, k, step], emptied and taken off `total` [b, s, k] (what
    the table holds per cell: a cell with none is not read)."""
    B, S, K, _ = table.shape
    out = np.zeros((B, S, K), dtype=np.int64)
    for b in range(B):
        for s in range(S):
            for k in range(K):
                if total[b, s, k] == 0:
                    continue
                x = table[b, s, k, m]
                out[b, s, k] = x
                if x:
                    table[b, s, k, m] = 0
                    total[b, s, k] -= x
    return out


@njit(cache=True)
def decide(rng: np.random.Generator, idle: np.ndarray, prob: np.ndarray,
           level_k: np.ndarray, tally: np.ndarray) -> np.ndarray:
    """The firms of every idle cell [b, s, k] that decide, binomial with prob[b, s, level
    of k]; taken from `idle` in place and counted in tally[b]. Cells without firms take no
    random number."""
    B, S, K = idle.shape
    L = prob.shape[2]
    out = np.zeros_like(idle)
    lq = np.empty(L)
    for b in range(B):
        for s in range(S):
            for i in range(L):
                lq[i] = log_q(prob[b, s, i])
            for k in range(K):
                n = idle[b, s, k]
                if n:
                    i = level_k[k]
                    p = prob[b, s, i]
                    # (the common case, inversion, called directly: half again as fast)
                    d = (invert(rng, n, p, lq[i]) if p <= 0.5 and n * p < 10.0
                         else draw(rng, n, p, lq[i]))
                    out[b, s, k] = d
                    idle[b, s, k] = n - d
                    tally[b] += d
    return out


@njit(cache=True)
def decide_around(rng: np.random.Generator, idle: np.ndarray, before: np.ndarray,
                  both: np.ndarray, late: np.ndarray, level_k: np.ndarray,
                  tally: np.ndarray) -> np.ndarray:
    """The firms of every idle cell [b, s, k] that decide over a step split by completions:
    of the before[b, s, k] firms idle already, binomial with both[b, s, level of k]; of
    those added since (idle - before), with late[...]. Taken from `idle` in place and
    counted in tally[b]."""
    B, S, K = idle.shape
    L = both.shape[2]
    out = np.zeros_like(idle)
    lq = np.empty((2, L))
    for b in range(B):
        for s in range(S):
            for i in range(L):
                lq[0, i] = log_q(both[b, s, i])
                lq[1, i] = log_q(late[b, s, i])
            for k in range(K):
                n = before[b, s, k]
                a = idle[b, s, k] - n
                if n == 0 and a == 0:
                    continue
                i = level_k[k]
                d = 0
                if n:
                    p = both[b, s, i]
                    d = (invert(rng, n, p, lq[0, i]) if p <= 0.5 and n * p < 10.0
                         else draw(rng, n, p, lq[0, i]))
                if a:
                    p = late[b, s, i]
                    d += (invert(rng, a, p, lq[1, i]) if p <= 0.5 and a * p < 10.0
                          else draw(rng, a, p, lq[1, i]))
                out[b, s, k] = d
                idle[b, s, k] = n + a - d
                tally[b] += d
    return out


@njit(cache=True)
def complete(rng: np.random.Generator, C: np.ndarray, success: np.ndarray,
             level_k: np.ndarray, fresh_k: np.ndarray, climb_k: np.ndarray,
             climb_code: np.ndarray, units_k: np.ndarray, retry_now: np.ndarray,
             back: np.ndarray, region: np.ndarray, idle: np.ndarray, exact: np.ndarray,
             As: np.ndarray, unmoved: np.ndarray, unmoved_r: np.ndarray, settled: np.ndarray,
             ret: np.ndarray, returning: np.ndarray, in_use: np.ndarray,
             tally: np.ndarray) -> None:
    """Finish the projects C [b, s, k] (emptied in place): each succeeds with its level's
    probability (one binomial per cell that holds projects). Units are released; a success
    climbs (exact, As, unmoved counts), to the cell climb_k (idle) or, at its ceiling, to
    `settled` (if it has rows); a failure returns to idle at once (retry_now) or after the
    wait, in the row back[level] of the returns table ret [b, s, k, step]. tally [b, 2]:
    completions and failures."""
    B, S, K = C.shape
    keep_settled = settled.shape[0] == B
    lq = np.array([log_q(x) for x in success])
    for b in range(B):
        for s in range(S):
            for k in range(K):
                n = C[b, s, k]
                if n == 0:
                    continue
                C[b, s, k] = 0
                i = level_k[k]
                tally[b, 0] += n
                for r in range(units_k.shape[1]):
                    in_use[b, r] -= n * units_k[k, r]
                x = success[i]
                g = (invert(rng, n, x, lq[i]) if x <= 0.5 and n * x < 10.0
                     else draw(rng, n, x, lq[i]))
                if g:
                    exact[b, s, i] -= g
                    exact[b, s, i + 1] += g
                    As[b, s, i] += g
                    if fresh_k[k]:  # their first project done
                        unmoved[b, i] -= g
                        unmoved_r[b, region[s], i] -= g
                    to = climb_k[k]
                    if to >= 0:
                        idle[b, s, to] += g
                    elif keep_settled:
                        settled[b, s, i + 1, climb_code[k]] += g
                fail = n - g
                if fail:
                    tally[b, 1] += fail
                    if retry_now[i]:
                        idle[b, s, k] += fail
                    else:
                        ret[b, s, k, back[i]] += fail
                        returning[b, s, k] += fail


@njit(cache=True)
def serve_in_order(rng: np.random.Generator, counts: np.ndarray, level_k: np.ndarray,
                   units_k: np.ndarray, free: np.ndarray, blocked: np.ndarray,
                   stopped: np.ndarray) -> np.ndarray:
    """Start what can start of one step's waiting projects counts [s, k], taken in a
    uniformly drawn order (the order of the step's decisions is unknown), by the exact
    engine's rule: a project starts if every unit it needs is free and none of its
    resources is `blocked`; otherwise the resources it lacks become blocked and its level
    `stopped` (its later projects wait behind it). `free` [resource], `blocked` and
    `stopped` [level] carry over to the next step's projects (changed in place). Returns
    the started projects [s, k]."""
    S, K = counts.shape
    R = free.size
    take = np.zeros_like(counts)
    n = 0
    for s in range(S):
        for k in range(K):
            n += counts[s, k]
    if n == 0:
        return take
    fits = True  # all of them, with nothing in the way: no order to draw
    for r in range(R):
        if blocked[r]:
            fits = False
        need = 0
        for s in range(S):
            for k in range(K):
                need += counts[s, k] * units_k[k, r]
        if need > 0 and need > free[r]:  # (a resource nobody here needs may be over-used)
            fits = False
    for k in range(K):
        if stopped[level_k[k]]:
            fits = False
    if fits:
        for r in range(R):
            for s in range(S):
                for k in range(K):
                    free[r] -= counts[s, k] * units_k[k, r]
        take[:, :] = counts
        return take
    order = np.empty(n, dtype=np.int64)  # one entry per project: s * K + k
    j = 0
    for s in range(S):
        for k in range(K):
            for _ in range(counts[s, k]):
                order[j] = s * K + k
                j += 1
    for i in range(n - 1, 0, -1):  # Fisher-Yates
        x = min(int(rng.random() * (i + 1)), i)
        order[i], order[x] = order[x], order[i]
    for j in range(n):
        s, k = order[j] // K, order[j] % K
        lv = level_k[k]
        if stopped[lv]:
            continue
        ok = True
        for r in range(R):
            u = units_k[k, r]
            if u == 0:
                continue
            if free[r] < u:
                ok = False
                blocked[r] = True
            elif blocked[r]:
                ok = False
        if not ok:
            stopped[lv] = True
            continue
        for r in range(R):
            free[r] -= units_k[k, r]
        take[s, k] += 1
    return take
