"""The mean field's linear flows, built a level's lanes at a time with index arithmetic (a
loop over lanes with a dense route vector each took ~0.1 s, a sixth of a run)."""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.engines.meanfield_parts import RETRY_STAGES, Triplets
from sim.engines.population import N_LEVELS


def _nonzero(li: np.ndarray, rows: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, ...]:
    """The (lane position, row, value) triplets whose value is not 0."""
    keep = vals != 0
    return li[keep], rows[keep], vals[keep]


def _route(mf: Any, k: int, lanes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Where a completed project of each lane of level k goes, as (lane position, row,
    value): a success adds to Y and the next lane (and leaves the unmoved count, for fresh
    lanes); a failure cools down before retrying, or is idle again at once."""
    ln, L = mf.lanes, N_LEVELS
    succ = float(mf.params.success[k])
    pos = np.arange(len(lanes))
    seg, fresh, nxt = ln.seg[lanes], ln.fresh[lanes].astype(bool), ln.nxt[lanes]
    moves = nxt >= 0
    fail = (mf.o_cool[k] + pos * RETRY_STAGES if mf.retry_rate[k] > 0
            else mf.o_idle + lanes)
    li = np.concatenate([pos, pos[fresh], pos[moves], pos])
    rows = np.concatenate([mf.o_y + seg * L + k - 1,
                           mf.o_z + seg[fresh] * (L + 1) + k - 1,
                           mf.o_idle + nxt[moves], fail])
    vals = np.concatenate([np.full(len(pos), succ), np.full(int(fresh.sum()), -succ),
                           np.full(int(moves.sum()), succ), np.full(len(pos), 1 - succ)])
    return _nonzero(li, rows, vals)


def linear_flows(mf: Any) -> tuple[Triplets, Triplets, Triplets, Triplets]:
    """B (size x size), Rd and Rs (size x lanes) of dy = B y + Rd decide + Rs starts, and
    the entries (lanes x size): where a started project of each lane goes. B has the stage
    chains, the cool-downs and the completions, not the exits (`_turnover_linear` adds
    the rest)."""
    ln, size, n = mf.lanes, mf.size, len(mf.lanes.seg)
    B, Rd, Rs = Triplets(size, size), Triplets(size, n), Triplets(size, n)
    entries = Triplets(n, size)
    for k in range(1, N_LEVELS + 1):
        lanes = ln.by_level[k]
        if not len(lanes):
            continue
        pos = np.arange(len(lanes))
        li, rows, vals = _route(mf, k, lanes)
        rr = mf.retry_rate[k]
        if rr > 0:  # cool-down stages, then idle
            for m in range(RETRY_STAGES):
                i = mf.o_cool[k] + pos * RETRY_STAGES + m
                B.add(i, i, -rr)
                B.add(i + 1 if m + 1 < RETRY_STAGES else mf.o_idle + lanes, i, rr)
        n_st = mf.stages[k]
        if n_st:  # implementation stages; the last one completes
            rate, skip = mf.stage_rate[k], mf.stage_skip[k]
            first = mf.o_run[k] + pos * n_st
            for m in range(n_st):
                B.add(first + m, first + m, -rate)
                if m + 1 < n_st:
                    B.add(first + m + 1, first + m, rate)
            B.add(rows, first[li] + n_st - 1, rate * vals)
            e_li, e_rows, e_vals = _nonzero(
                np.concatenate([pos, pos]), np.concatenate([first, first + 1]),
                np.concatenate([np.full(len(pos), 1.0 - skip), np.full(len(pos), skip)]))
        else:  # instant: a start is a completion
            e_li, e_rows, e_vals = li, rows, vals
        entries.add(lanes[e_li], e_rows, e_vals)
        Rd.add(mf.o_idle + lanes, lanes, -1.0)
        if mf.needs[k]:  # decided projects wait for resources, then start
            Rd.add(mf.o_wait + lanes, lanes, 1.0)
            Rs.add(mf.o_wait + lanes, lanes, -1.0)
            Rs.add(e_rows, lanes[e_li], e_vals)
        else:
            Rd.add(e_rows, lanes[e_li], e_vals)
    mf._turnover_linear(B)
    return B, Rd, Rs, entries
