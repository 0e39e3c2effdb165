"""The compiled exact engine's resources: capacity in whole units (the rules' own functions,
compiled), FIFO queues that never let a project overtake an earlier one on a resource it
lacks, the ticks that wake them when growing capacity adds a unit, and project starts."""

from __future__ import annotations

import math

from sim.engines import des_heap as heap
from sim.engines import rules
from sim.engines.des_state import (
    I_HN,
    I_HSEQ,
    I_LIVE,
    I_MAXW,
    I_QSEQ,
    I_START,
    I_TN,
    I_TRACE,
    I_WAIT,
)
from sim.engines.jit import inline, kernel
from sim.engines.population import N_LEVELS

L = N_LEVELS
_capacity_at = kernel(rules.capacity_at)
_next_unit_change = kernel(rules.next_unit_change)


@inline
def capacity(st, r: int, t: float) -> int:
    """Whole units of resource r at time t, cached until the next whole unit changes."""
    if st.cap_from[r] <= t < st.cap_until[r]:
        return st.cap_now[r]
    cap = _capacity_at(st.cap_base[r], st.cap_factor[r], st.log_growth[r], t)
    st.cap_now[r] = cap
    st.cap_from[r] = t
    st.cap_until[r] = _next_unit_change(st.cap_base[r], st.cap_factor[r], st.log_growth[r],
                                        cap)
    return cap


@kernel
def schedule_tick(st, r: int, t: float) -> None:
    """Wake the queues when growing capacity next adds a unit of resource r."""
    if st.tick_time[r] < math.inf or st.log_growth[r] <= 0:
        return
    capacity(st, r, t)
    when = st.cap_until[r]
    if when < math.inf:
        st.tick_time[r] = max(when, t)


@kernel
def trace_row(st, kind: int, t: float, a: float, b: float, c: float) -> None:
    n = st.i[I_TN]
    st.tbuf[n, 0] = kind
    st.tbuf[n, 1] = t
    st.tbuf[n, 2] = a
    st.tbuf[n, 3] = b
    st.tbuf[n, 4] = c
    st.i[I_TN] = n + 1


@inline
def start(st, rng, s: int, k: int, code: int, t: float, duration: float) -> None:
    """Start a project of segment s on level k at time t: take its units and put its
    completion in the calendar (after `duration`; < 0: drawn from the rules' lognormal)."""
    for r in range(st.in_use.shape[0]):
        u = st.units[k, r]
        if u:
            st.in_use[r] += u
            if st.i[I_TRACE]:
                trace_row(st, 1, t, r, st.in_use[r], capacity(st, r, t))
    if duration < 0:
        mu = st.mu[k]
        duration = 0.0 if mu == -math.inf else math.exp(mu + st.sigma[k]
                                                         * rng.standard_normal())
    h = st.i[I_HSEQ] + 1
    st.i[I_HSEQ] = h
    st.i[I_HN] = heap.push(st.htime, st.hseq, st.hpay, st.i[I_HN], t + duration, h,
                           heap.pack(s, k, code))
    st.i[I_LIVE] += 1
    st.i[I_START] += 1


@inline
def enqueue(st, k: int, s: int, code: int) -> None:
    qc = st.qseq.shape[1]
    pos = st.qtail[k] % qc
    st.i[I_QSEQ] += 1
    st.qseq[k, pos] = st.i[I_QSEQ]
    st.qpay[k, pos] = (s << 8) | code
    st.qtail[k] += 1
    st.qlive[k] += 1
    w = st.i[I_WAIT] + 1
    st.i[I_WAIT] = w
    if w > st.i[I_MAXW]:
        st.i[I_MAXW] = w


@kernel
def _live_head(st, k: int) -> int:
    """Position of level k's first live waiting entry (dead ones dropped); -1 if none."""
    qc = st.qseq.shape[1]
    while st.qhead[k] < st.qtail[k]:
        pos = st.qhead[k] % qc
        if not st.qpay[k, pos] & heap.DEAD:
            return pos
        st.qhead[k] += 1
    return -1


@kernel
def serve(st, rng, t: float) -> None:
    """Start waiting projects in FIFO order; one never overtakes an earlier project on a
    resource that the earlier one lacks."""
    Q = st.in_use.shape[0]
    for r in range(Q):
        st.blocked[r] = False
        st.free[r] = capacity(st, r, t) - st.in_use[r]
    open_ = 0  # bit k: level k's queue may still start a project
    for k in range(1, L + 1):
        if st.has_needs[k] and st.qlive[k] > 0:
            open_ |= 1 << k
    while True:
        best, first, pos = -1, 0, -1
        for k in range(1, L + 1):
            if open_ >> k & 1:
                p = _live_head(st, k)
                if p >= 0 and (best < 0 or st.qseq[k, p] < first):
                    best, first, pos = k, st.qseq[k, p], p
        if best < 0:
            return
        k = best
        ok = True
        for r in range(Q):
            u = st.units[k, r]
            if not u:
                continue
            if st.free[r] < u:
                ok = False
                if not st.blocked[r]:
                    st.blocked[r] = True
                    schedule_tick(st, r, t)
            elif st.blocked[r]:
                ok = False
        if not ok:
            open_ &= ~(1 << k)
            continue
        pay = st.qpay[k, pos]
        st.qhead[k] += 1
        st.qlive[k] -= 1
        st.i[I_WAIT] -= 1
        for r in range(Q):
            st.free[r] -= st.units[k, r]
        start(st, rng, pay >> 8, k, pay & 127, t, -1.0)
        if st.qlive[k] == 0:
            open_ &= ~(1 << k)
