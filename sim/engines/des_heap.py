"""The compiled exact engine's calendar: a binary heap of pending completions and retry
returns in three parallel arrays (time, sequence number, packed payload), ordered by time and
then by sequence, so equal times pop first-in first-out and every run is reproducible.

A payload packs the firm's cell segment, the project's level (negative: a retry wait) and its
code (ceiling | FRESH | origin << 4), with one bit that marks an item whose firm has left.
"""

from __future__ import annotations

from sim.engines.jit import inline

DEAD = 128
"""Payload (and queue entry) bit of an item whose firm has left: skipped when it falls due."""


@inline
def pack(s: int, k: int, code: int) -> int:
    """Payload of a calendar item: segment s, level k (< 0 for a retry wait), firm code."""
    return (s << 16) | ((k + 8) << 8) | code


@inline
def unpack(pay: int) -> tuple[int, int, int]:
    """(s, k, code) of a payload (the DEAD bit dropped)."""
    return pay >> 16, ((pay >> 8) & 255) - 8, pay & 127


@inline
def push(htime, hseq, hpay, n: int, t: float, seq: int, pay: int) -> int:
    """Put an item in the heap of n items (room checked by the caller); the new size."""
    j = n
    while j > 0:
        p = (j - 1) >> 1
        tp = htime[p]
        if tp < t or (tp == t and hseq[p] < seq):
            break
        htime[j] = tp
        hseq[j] = hseq[p]
        hpay[j] = hpay[p]
        j = p
    htime[j] = t
    hseq[j] = seq
    hpay[j] = pay
    return n + 1


@inline
def pop(htime, hseq, hpay, n: int) -> int:
    """Remove the first item (read it before) from a heap of n > 0 items; the new size."""
    n -= 1
    t, s, pay = htime[n], hseq[n], hpay[n]
    j = 0
    while True:
        c = 2 * j + 1
        if c >= n:
            break
        if c + 1 < n and (htime[c + 1] < htime[c]
                          or (htime[c + 1] == htime[c] and hseq[c + 1] < hseq[c])):
            c += 1
        if t < htime[c] or (t == htime[c] and s < hseq[c]):
            break
        htime[j] = htime[c]
        hseq[j] = hseq[c]
        hpay[j] = hpay[c]
        j = c
    if n > 0:
        htime[j] = t
        hseq[j] = s
        hpay[j] = pay
    return n
