"""The compiled exact engine's event loop: decisions drawn from the total hazard of all cells
(Gillespie's direct method), completions and retry returns from the calendar heap, the FIFO
resource queues and the ticks of growing capacity, up to the next dated event.

The same events as the simpy engine (`des.py`), one at a time at their exact times, on the
arrays of `des_state.State`; the rules it needs (the hazard here, capacity and its next
whole-unit change in `des_kernel_resources`) are the rules module's own functions, compiled.
"""

from __future__ import annotations

import math

from sim.engines import des_heap as heap
from sim.engines import rules
from sim.engines.des_kernel_resources import (
    capacity,
    enqueue,
    schedule_tick,
    serve,
    start,
    trace_row,
)
from sim.engines.des_state import (
    DONE,
    F_CROSS,
    F_FIRMS,
    F_NOW,
    F_OFFSET,
    F_R,
    F_SURV,
    F_W,
    FRESH,
    I_COMP,
    I_DEC,
    I_FAIL,
    I_HN,
    I_HSEQ,
    I_LIVE,
    I_READING,
    I_REGAIN,
    I_RETRY,
    I_SINGLE,
    I_STALE,
    I_TLEVEL,
    I_TN,
    I_TRACE,
    I_WAIT,
    NEED_GAIN,
    NEED_HEAP,
    NEED_QUEUE,
    NEED_TRACE,
    SUBS,
    code_of,
    sub,
)
from sim.engines.jit import inline, kernel
from sim.engines.population import N_LEVELS

L = N_LEVELS
_hazard = inline(rules.hazard)
_counted = inline(rules.counted)
_pay_from = inline(rules.pay_from)


# -- rates ------------------------------------------------------------------------------------


@inline
def hazards(st, k: int) -> None:
    """Hazard / gain of level k in every peer group, and the groups' rates."""
    pop = st.A[k] * st.inv_E[k]
    for g in range(st.Ag.shape[0]):
        gi = g * L + k - 1
        xg = _hazard(1.0, st.p[k], st.q[k], st.f[F_W], pop, st.Ag[g, k] * st.inv_Es[g, k])
        st.x[gi] = xg
        st.rate[gi] = xg * st.W[gi]


@kernel
def rates(st) -> None:
    """Every rate from the cells' gains (`gflat`, which the driver takes from the rules'
    `Parameters.gain` whenever policies or quota pushes change) and the idle firms."""
    st.W[:] = 0.0
    for i in range(st.gflat.shape[0]):
        st.W[st.gcell[i]] += st.gflat[i] * st.idle_total[i]
    for k in range(1, L + 1):
        hazards(st, k)


@inline
def total(st) -> float:
    r = 0.0
    for gi in range(st.rate.shape[0]):
        r += st.rate[gi]
    st.f[F_R] = r
    return r


@inline
def count(st) -> float:
    """The target's count now (rules.counted, formed as rules.TargetCount.how says)."""
    k = st.i[I_TLEVEL]
    u = 0
    for j in range(k, L + 1):
        u += st.unmoved[j]
    return _counted(st.i[I_READING], float(st.A[k]), float(u), st.f[F_SURV], st.f[F_OFFSET])


# -- events -----------------------------------------------------------------------------------


@inline
def pay_subsidies(st, s: int, k: int) -> None:
    """Policies in force pay for a decision of segment s on level k (rules.pay_from); one
    that runs out of money stops, and the loop returns for the gains to be taken anew."""
    for j in range(st.active.shape[0]):
        amount = st.cost[j, k]
        if (st.active[j] and st.applies[j, s] and amount > 0
                and _pay_from(st.left, st.spent, j, amount)):
            st.active[j] = False
            st.i[I_REGAIN] = 1


@inline
def decide(st, rng, i: int, t: float) -> None:
    """An idle firm of cell i, drawn uniformly (its ceiling, then its fresh flag and origin,
    from the pool's composition), decides to start its next project at time t."""
    s, k = i // L, i % L + 1
    u = rng.random() * st.idle_total[i]
    c = k
    for c in range(k, L + 1):  # noqa: B007 - c is used after the loop
        u -= st.idle[i, c]
        if u < 0:
            break
    while st.idle[i, c] == 0:  # rounding carried u past the last non-empty ceiling
        c -= 1
    u += st.idle[i, c]  # uniform on [0, idle[i, c]) given c: it picks the firm within
    v = 0
    for v in range(SUBS):  # noqa: B007
        u -= st.idle_v[i, c, v]
        if u < 0:
            break
    while st.idle_v[i, c, v] == 0:
        v -= 1
    st.idle[i, c] -= 1
    st.idle_v[i, c, v] -= 1
    st.idle_total[i] -= 1
    code = code_of(c, v)
    gi = st.gcell[i]
    st.W[gi] -= st.gflat[i]
    st.rate[gi] = st.x[gi] * st.W[gi]
    st.i[I_DEC] += 1
    if st.active.shape[0]:
        pay_subsidies(st, s, k)
    if st.has_needs[k]:
        if st.qlive[k] == 0:  # an earlier project of this level would be waiting otherwise
            ok = True
            for r in range(st.in_use.shape[0]):
                units = st.units[k, r]
                if not units:
                    continue
                if st.in_use[r] + units > capacity(st, r, t):
                    ok = False
                    st.blocked[r] = True
                    schedule_tick(st, r, t)
                elif st.blocked[r]:
                    ok = False
            if ok:
                start(st, rng, s, k, code, t, -1.0)
                return
        if st.i[I_TRACE]:  # waits: behind how many, and whether its units were free
            fits = 1
            for r in range(st.in_use.shape[0]):
                if st.units[k, r] and st.in_use[r] + st.units[k, r] > capacity(st, r, t):
                    fits = 0
            trace_row(st, 2, t, k, st.qlive[k], fits)
        enqueue(st, k, s, code)
        return
    start(st, rng, s, k, code, t, -1.0)


@inline
def join_idle(st, i: int, code: int) -> None:
    """A firm with `code` joins the idle pool of cell i (it may decide)."""
    c = code & 7
    st.idle[i, c] += 1
    st.idle_v[i, c, sub(code)] += 1
    st.idle_total[i] += 1
    gi = st.gcell[i]
    st.W[gi] += st.gflat[i]
    st.rate[gi] = st.x[gi] * st.W[gi]


@inline
def complete(st, rng, t: float, s: int, k: int, code: int) -> None:
    """A level-k project of segment s completes: a climb, or a failure that returns the firm
    to the idle pool now or after the retry wait."""
    for r in range(st.in_use.shape[0]):
        st.in_use[r] -= st.units[k, r]
    st.i[I_COMP] += 1
    succ = st.success[k]
    if succ >= 1.0 or rng.random() < succ:
        rg = st.reg[s]
        if code & FRESH:
            st.unmoved[k - 1] -= 1
            st.unmoved_r[rg, k - 1] -= 1
            code ^= FRESH
        ceil = code & 7
        st.exact[s, k - 1] -= 1
        st.exact[s, k] += 1
        st.A[k] += 1
        st.As[s, k] += 1
        st.Ag[st.grp[s], k] += 1
        if st.i[I_TRACE]:
            trace_row(st, 0, t, s, k - 1, k)
        if ceil > k:
            join_idle(st, s * L + k, code)
        else:
            st.settled[s, k, sub(code)] += 1
        hazards(st, k)
        if k >= st.i[I_TLEVEL] and st.f[F_CROSS] < 0 and count(st) >= st.f[F_FIRMS]:
            st.f[F_CROSS] = t
    else:
        st.i[I_FAIL] += 1
        if st.retry[k] > 0:
            h = st.i[I_HSEQ] + 1
            st.i[I_HSEQ] = h
            st.i[I_HN] = heap.push(st.htime, st.hseq, st.hpay, st.i[I_HN], t + st.retry[k],
                                   h, heap.pack(s, -k, code))
            st.i[I_LIVE] += 1
        else:
            join_idle(st, s * L + k - 1, code)  # back to idle at level k - 1
    if st.i[I_WAIT] and st.has_needs[k]:
        serve(st, rng, t)


@inline
def _pick(st, rng, R: float) -> int:
    """The cell of the next decision: a peer-group cell by its rate, then the region."""
    u = rng.random() * R
    ng = st.rate.shape[0]
    gi = 0
    for gi in range(ng):  # noqa: B007
        u -= st.rate[gi]
        if u < 0:
            break
    if st.i[I_SINGLE]:
        i = st.members[gi, 0]
    else:
        u += st.rate[gi]
        xg = st.x[gi]
        i = st.members[gi, 0]
        for m in range(st.members.shape[1]):
            i = st.members[gi, m]
            u -= st.gflat[i] * xg * st.idle_total[i]
            if u < 0:
                break
    if st.idle_total[i] == 0:  # rounding put u past the last non-empty cell
        best = -1.0
        for j in range(st.gflat.shape[0]):
            h = st.gflat[j] * st.idle_total[j] * st.x[st.gcell[j]]
            if h > best:
                best, i = h, j
    return i


@inline
def _room(st) -> int:
    """DONE if one more event fits in the arrays, else what to grow."""
    if st.i[I_HN] + st.i[I_WAIT] + 2 > st.htime.shape[0]:
        return NEED_HEAP
    qc = st.qseq.shape[1]
    for k in range(L + 1):
        if st.qtail[k] - st.qhead[k] + 1 > qc:
            return NEED_QUEUE
    if st.i[I_TRACE] and (st.i[I_TN] + (st.i[I_WAIT] + 2) * (st.in_use.shape[0] + 1)
                          > st.tbuf.shape[0]):
        return NEED_TRACE
    return DONE


@kernel
def advance(st, rng, until: float) -> int:
    """Run every event before `until` (a dated event, or the horizon); DONE, or the room the
    arrays lack (the driver grows it and calls again: the run resumes where it stopped).
    Where the driver marked the state stale (a dated event, new gains), rebuild the rates and
    serve the queues first, once; not when resuming after growth, where rebuilding the
    rates' running sums would round them differently from the run that did not stop."""
    need = _room(st)  # (serving the queues below may start every waiting project)
    if need != DONE:
        return need
    st.cap_from[:] = math.inf  # shocks may have changed a capacity factor
    if st.i[I_STALE]:
        rates(st)
        if st.i[I_WAIT]:
            serve(st, rng, st.f[F_NOW])
        st.i[I_STALE] = 0
    R = total(st)
    now = st.f[F_NOW]
    Q = st.in_use.shape[0]
    while True:
        need = _room(st)
        if need != DONE:
            st.f[F_NOW] = now
            return need
        nxt = st.htime[0] if st.i[I_HN] else math.inf
        tick, rt = math.inf, -1
        for r in range(Q):
            if st.tick_time[r] < tick:
                tick, rt = st.tick_time[r], r
        if tick < nxt:
            nxt = tick
        if until < nxt:
            nxt = until
        # A decision before the next event? (Memoryless: redrawn after each event.)
        if R > 1e-300:
            t = now + rng.standard_exponential() / R
            if t < nxt:
                decide(st, rng, _pick(st, rng, R), t)
                R = total(st)
                now = t
                if st.i[I_REGAIN]:  # a budget ran out: the driver takes the gains anew
                    st.f[F_NOW] = now
                    return NEED_GAIN
                continue  # the decision may have changed what comes next: look again
        if st.i[I_HN] and st.htime[0] <= nxt and st.htime[0] <= until:
            now = st.htime[0]
            pay = st.hpay[0]
            st.i[I_HN] = heap.pop(st.htime, st.hseq, st.hpay, st.i[I_HN])
            if pay & heap.DEAD:
                continue  # its firm has left
            st.i[I_LIVE] -= 1
            s, k, code = heap.unpack(pay)
            if k > 0:
                complete(st, rng, now, s, k, code)
            else:
                st.i[I_RETRY] += 1
                join_idle(st, s * L - k - 1, code)  # back from the retry wait
            R = total(st)
        elif tick < until and tick <= nxt:
            now = tick
            st.tick_time[rt] = math.inf
            if st.i[I_WAIT]:
                serve(st, rng, now)
            R = total(st)
        else:
            st.f[F_NOW] = until
            return DONE
