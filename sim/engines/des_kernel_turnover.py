"""The compiled exact engine's month boundary (rules.Turnover): every firm leaves with the
rules' probability whatever it is doing, then the month's entrants arrive.

Idle firms and firms at their ceiling leave by one binomial per (cell, ceiling, sub index);
projects under way, retry waits and waiting projects by a binomial count of each, the
leavers chosen uniformly among them (the law of thinning each one), marked DEAD and skipped
when they fall due. Rates are recomputed by the next `advance`.
"""

from __future__ import annotations

from sim.engines import des_heap as heap
from sim.engines.des_state import (
    FRESH,
    I_ENTER,
    I_EXIT,
    I_EXITUP,
    I_HN,
    I_LIVE,
    I_TLEVEL,
    I_WAIT,
    ORIGIN,
    ORIGINS,
    SUBS,
    code_of,
)
from sim.engines.jit import inline, kernel
from sim.engines.population import N_LEVELS

L = N_LEVELS


@inline
def count_change(st, s: int, j: int, code: int, n: int) -> None:
    """n firms of cell segment s at level j with `code` arrive (n > 0) or leave (n < 0)."""
    st.exact[s, j] += n
    g, r = st.grp[s], st.reg[s]
    for k in range(1, j + 1):
        st.A[k] += n
        st.As[s, k] += n
        st.Ag[g, k] += n
    if code & FRESH:
        st.unmoved[j] += n
        st.unmoved_r[r, j] += n
    st.alive_origin[r, code >> ORIGIN] += n
    st.elig[g, code & 7] += n
    if n < 0:
        st.i[I_EXIT] -= n
        if not code & FRESH and j >= st.i[I_TLEVEL]:
            st.i[I_EXITUP] -= n
    else:
        st.i[I_ENTER] += n


@kernel
def exits(st, rng, p: float) -> None:
    """Every firm leaves with probability p: idle, settled, under way, waiting to retry or
    waiting for resources (a project under way frees its units)."""
    C = st.idle.shape[0]
    for i in range(C):
        s, j = i // L, i % L
        for c in range(j + 1, L + 1):
            for v in range(SUBS):
                n = st.idle_v[i, c, v]
                if n:
                    x = rng.binomial(n, p)
                    if x:
                        st.idle_v[i, c, v] -= x
                        st.idle[i, c] -= x
                        st.idle_total[i] -= x
                        count_change(st, s, j, code_of(c, v), -x)
    for s in range(st.settled.shape[0]):
        for j in range(L + 1):
            for v in range(SUBS):
                n = st.settled[s, j, v]
                if n:
                    x = rng.binomial(n, p)
                    if x:
                        st.settled[s, j, v] -= x
                        count_change(st, s, j, code_of(j, v), -x)
    # The calendar: projects under way and retry waits.
    x = rng.binomial(st.i[I_LIVE], p) if st.i[I_LIVE] else 0
    n = st.i[I_HN]
    while x:
        pos = int(rng.random() * n)
        pay = st.hpay[pos]
        if pay & heap.DEAD:
            continue
        st.hpay[pos] = pay | heap.DEAD
        st.i[I_LIVE] -= 1
        x -= 1
        s, k, code = heap.unpack(pay)
        if k > 0:
            for r in range(st.in_use.shape[0]):
                st.in_use[r] -= st.units[k, r]
        count_change(st, s, abs(k) - 1, code, -1)
    # Projects waiting for resources.
    qc = st.qseq.shape[1]
    for k in range(1, L + 1):
        x = rng.binomial(st.qlive[k], p) if st.qlive[k] else 0
        span = st.qtail[k] - st.qhead[k]
        while x:
            pos = (st.qhead[k] + int(rng.random() * span)) % qc
            pay = st.qpay[k, pos]
            if pay & heap.DEAD:
                continue
            st.qpay[k, pos] = pay | heap.DEAD
            st.qlive[k] -= 1
            st.i[I_WAIT] -= 1
            x -= 1
            count_change(st, pay >> 8, k - 1, pay & 127, -1)
    if st.i[I_WAIT] == 0:  # the queues are empty: nothing waits for what they lacked
        st.blocked[:] = False


@kernel
def enter(st, cell_s, cell_j, cell_c, counts) -> None:
    """counts[e] entrants in entrant cell e (segment, level, ceiling): fresh, origin 0."""
    for e in range(counts.shape[0]):
        n = counts[e]
        if not n:
            continue
        s, j, c = cell_s[e], cell_j[e], cell_c[e]
        if c > j:
            i = s * L + j
            st.idle[i, c] += n
            st.idle_v[i, c, ORIGINS] += n
            st.idle_total[i] += n
        else:
            st.settled[s, j, ORIGINS] += n
        count_change(st, s, j, c | FRESH, n)
