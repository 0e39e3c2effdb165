"""The compiled exact engine's state: plain arrays in one named tuple, which the compiled
functions read and change in place and the Python driver sets between dated events.

Firms are counts. A firm's code is its ceiling (bits 0-2) | FRESH (no project completed since
the start or its entry) | the level it started at << ORIGIN (0 for entrants); within a cell
and ceiling its `sub` index is ORIGINS * fresh + origin (ORIGINS = 5).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.engines.jit import inline
from sim.engines.population import N_LEVELS

FRESH = 8
ORIGIN = 4
ORIGINS = N_LEVELS + 1
SUBS = 2 * ORIGINS  # sub index: ORIGINS * fresh + origin


@inline
def sub(code: int) -> int:
    """Sub index of a firm code: ORIGINS * fresh + origin."""
    return (ORIGINS if code & FRESH else 0) + (code >> ORIGIN)


@inline
def code_of(c: int, v: int) -> int:
    """Firm code from ceiling c and sub index v."""
    return c | (FRESH if v >= ORIGINS else 0) | ((v % ORIGINS) << ORIGIN)

# Scalars in `State.i` (int64) ...
(I_DEC, I_START, I_COMP, I_FAIL, I_RETRY, I_MAXW, I_WAIT, I_QSEQ, I_HSEQ, I_HN, I_LIVE,
 I_ENTER, I_EXIT, I_EXITUP, I_TN, I_TRACE, I_TLEVEL, I_READING, I_SINGLE, I_REGAIN,
 I_STALE) = range(21)
N_INTS = 21
# ... and in `State.f` (float64).
F_NOW, F_CROSS, F_R, F_W, F_FIRMS, F_OFFSET, F_SURV = range(7)
N_FLOATS = 7

# What `advance` returns: done, the room it lacks to go on (the driver grows it), or that
# a budget ran out (the driver takes the gains anew from the rules).
DONE, NEED_HEAP, NEED_QUEUE, NEED_TRACE, NEED_GAIN = 0, 1, 2, 3, 4


class State(NamedTuple):
    """One replication's arrays (C cells s * 4 + k - 1, S cell segments, G peer groups, R
    regions, P policies, Q resources; levels 0..4 as columns)."""

    i: np.ndarray  # int64 scalars, I_*
    f: np.ndarray  # float64 scalars, F_*
    idle: np.ndarray  # (C, 5) idle firms per cell and ceiling
    idle_v: np.ndarray  # (C, 5, SUBS) the same per sub index
    idle_total: np.ndarray  # (C,)
    settled: np.ndarray  # (S, 5, SUBS) firms at their ceiling, per level and sub index
    exact: np.ndarray  # (S, 5) firms at exactly each level
    A: np.ndarray  # (5,) firms at or above each level
    As: np.ndarray  # (S, 5)
    Ag: np.ndarray  # (G, 5) per peer group
    unmoved: np.ndarray  # (5,) firms at exactly each level that have completed no project
    unmoved_r: np.ndarray  # (R, 5)
    alive_origin: np.ndarray  # (R, 5) firms that exist, by the level they started at
    elig: np.ndarray  # (G, 5) firms that exist, by ceiling
    grp: np.ndarray  # (S,) peer group of each cell segment
    reg: np.ndarray  # (S,) region of each cell segment
    gcell: np.ndarray  # (C,) peer-group cell g * 4 + k - 1 of each cell
    members: np.ndarray  # (G * 4, R) the cells of each peer-group cell, by region
    p: np.ndarray  # (5,) innovation, imitation, success in force (shocks)
    q: np.ndarray
    success: np.ndarray
    retry: np.ndarray  # (5,) years
    mu: np.ndarray  # (5,) log median years (-inf: instant)
    sigma: np.ndarray
    inv_E: np.ndarray  # (5,)
    inv_Es: np.ndarray  # (G, 5)
    applies: np.ndarray  # (P, S) bool
    cost: np.ndarray  # (P, 5)
    left: np.ndarray  # (P,) budget left
    spent: np.ndarray  # (P,)
    active: np.ndarray  # (P,) bool
    gflat: np.ndarray  # (C,) gain a * M * push of each cell (rules.Parameters.gain)
    x: np.ndarray  # (G * 4,) hazard / gain of each peer-group cell
    W: np.ndarray  # (G * 4,) sum of gain * idle over its cells
    rate: np.ndarray  # (G * 4,) x * W
    units: np.ndarray  # (5, Q) units a running level-k project holds
    has_needs: np.ndarray  # (5,) bool
    in_use: np.ndarray  # (Q,)
    cap_base: np.ndarray  # (Q,)
    cap_factor: np.ndarray  # (Q,) shocks
    log_growth: np.ndarray  # (Q,)
    cap_now: np.ndarray  # (Q,) capacity cache: units, valid on [cap_from, cap_until)
    cap_from: np.ndarray
    cap_until: np.ndarray
    tick_time: np.ndarray  # (Q,) when growth next wakes the queues (inf: none pending)
    blocked: np.ndarray  # (Q,) bool: an earlier waiting project lacks this resource
    free: np.ndarray  # (Q,) scratch
    htime: np.ndarray  # (H,) calendar heap (des_heap)
    hseq: np.ndarray
    hpay: np.ndarray
    qseq: np.ndarray  # (5, QC) waiting projects per level, ring buffers of sequence numbers
    qpay: np.ndarray  # (5, QC) s << 8 | code (| DEAD)
    qhead: np.ndarray  # (5,) absolute positions: entries [qhead, qtail) mod QC
    qtail: np.ndarray
    qlive: np.ndarray  # (5,) live entries per level
    tbuf: np.ndarray  # (T, 5) trace rows: kind (0 climb, 1 use), t, a, b, c


def grow_heap(st: State) -> State:
    """The state with twice the calendar room (the heap's order kept)."""
    n = len(st.htime)
    return st._replace(**{name: np.concatenate([getattr(st, name),
                                                np.zeros(n, getattr(st, name).dtype)])
                          for name in ("htime", "hseq", "hpay")})


def grow_queues(st: State) -> State:
    """The state with twice the room in each level's queue (entries moved to the front)."""
    qc = st.qseq.shape[1]
    qseq = np.zeros((N_LEVELS + 1, 2 * qc), dtype=np.int64)
    qpay = np.zeros((N_LEVELS + 1, 2 * qc), dtype=np.int64)
    for k in range(N_LEVELS + 1):
        idx = np.arange(st.qhead[k], st.qtail[k]) % qc
        qseq[k, :len(idx)] = st.qseq[k, idx]
        qpay[k, :len(idx)] = st.qpay[k, idx]
        st.qtail[k] -= st.qhead[k]
        st.qhead[k] = 0
    return st._replace(qseq=qseq, qpay=qpay)


def grow_trace(st: State) -> State:
    return st._replace(tbuf=np.concatenate([st.tbuf, np.zeros_like(st.tbuf)]))
