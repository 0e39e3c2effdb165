"""Deterministic layout of the initial population: segment sizes, initial levels, eligibility.

Both engines start from the same integer cells, so the population structure is not a source
of noise between replications or between engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.scenario import LEVELS, Scenario

N_LEVELS = len(LEVELS)


def apportion(total: int, weights: Sequence[float], first: int = 0) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest-remainder method);
    equal remainders go first to index `first`, then onwards, wrapping round."""
    wsum = float(sum(weights))
    if total <= 0 or wsum <= 0:
        return [0] * len(weights)
    exact = [total * w / wsum for w in weights]
    base = [int(x) for x in exact]
    short = total - sum(base)
    n = len(weights)
    order = sorted(range(n), key=lambda i: (-(exact[i] - base[i]), (i - first) % n))
    for i in order[:short]:
        base[i] += 1
    return base


@dataclass(frozen=True)
class Layout:
    """Initial counts. `cells[s][j][c]`: firms of cell segment s at level j whose ceiling is c.

    A cell segment is a (region, size segment) pair, region-major: s = region * G + group,
    with G the scenario's size segments (the peer groups); without regions, the segments
    themselves. The ceiling is the highest level a firm is eligible for; eligibility is nested
    (a firm eligible for level k is eligible for every level below), which is how `eligible`
    shares that fall with the level are read.
    """

    segment_sizes: tuple[int, ...]
    cells: tuple[tuple[tuple[int, ...], ...], ...]  # [segment][level 0..4][ceiling 0..4]
    eligible: tuple[int, ...]  # E_k for k = 1..4 (index 0 unused, = firms)
    eligible_by_segment: tuple[tuple[int, ...], ...]  # [peer group][k], national
    flight: tuple[tuple[tuple[int, ...], ...], ...] = ()
    """`flight[s][k][c]`: of the firms in `cells[s][k-1][c]`, those with a level-k project
    under way at the start (k = 1..4; index 0 unused). Empty: none."""
    n_regions: int = 1

    @property
    def n_groups(self) -> int:
        return len(self.cells) // self.n_regions

    def group(self, s: int) -> int:
        """Peer group (size segment) of cell segment s."""
        return s % self.n_groups

    def region(self, s: int) -> int:
        return s // self.n_groups

    def at_or_above(self) -> np.ndarray:
        """Initial firms at or above each level 1..4 (shape 4)."""
        return self.region_at_or_above().sum(axis=0)

    def region_at_or_above(self) -> np.ndarray:
        """Initial firms at or above each level 1..4 per region (regions, 4)."""
        exact = np.array([[sum(cs) for cs in seg] for seg in self.cells])
        exact = exact.reshape(self.n_regions, self.n_groups, N_LEVELS + 1).sum(axis=1)
        return np.flip(np.cumsum(np.flip(exact, axis=1), axis=1), axis=1)[:, 1:]


def layout(scenario: Scenario) -> Layout:
    """Apportion the population into segments, initial levels and eligibility ceilings,
    nationally, then split every cell over the regions by their shares."""
    nat = _national(scenario)
    if not scenario.regions:
        return nat
    shares = [r.share for r in scenario.regions]
    R, G = len(shares), len(nat.cells)
    cells = [[[0] * (N_LEVELS + 1) for _ in range(N_LEVELS + 1)] for _ in range(R * G)]
    turn = 0  # ties go round the regions from cell to cell, so none is favoured throughout
    for g in range(G):
        for j in range(N_LEVELS + 1):
            for c in range(N_LEVELS + 1):
                for r, n in enumerate(apportion(nat.cells[g][j][c], shares, turn % R)):
                    cells[r * G + g][j][c] = n
                turn += 1
    flight: list = []
    if nat.flight:
        flight = [[[0] * (N_LEVELS + 1) for _ in range(N_LEVELS + 1)] for _ in range(R * G)]
        for g in range(G):
            for k in range(1, N_LEVELS + 1):
                for c in range(N_LEVELS + 1):
                    caps = [cells[r * G + g][k - 1][c] for r in range(R)]
                    weights = [caps[r] * scenario.regions[r].multiplier[k - 1] for r in range(R)]
                    split = apportion_capped(nat.flight[g][k][c], weights, caps)
                    for r, n in enumerate(split):
                        flight[r * G + g][k][c] = n
    sizes = tuple(sum(sum(row) for row in seg) for seg in cells)
    return Layout(sizes, _freeze(cells), nat.eligible, nat.eligible_by_segment, _freeze(flight),
                  n_regions=R)


def _freeze(cells: list) -> tuple:
    return tuple(tuple(tuple(c) for c in seg) for seg in cells)


def _national(scenario: Scenario) -> Layout:
    """The layout over the size segments alone (no regions)."""
    n = scenario.firms
    sizes = apportion(n, [s.share for s in scenario.segments])
    by_level = []
    for seg, size in zip(scenario.segments, sizes, strict=True):
        shares = [max(0.0, 1.0 - sum(seg.initial)), *seg.initial]
        by_level.append(apportion(size, shares))

    # Eligibility: E_k = eligible_k * N firms may reach k. Firms already at >= k are eligible.
    # The remaining E_k - I_k eligible places go to firms below k that are eligible for k-1,
    # spread in proportion over segments and levels.
    eligible_share = [1.0, *(lv.eligible for lv in scenario.levels)]
    # ceiling_count[s][j][c]
    cells = [[[0] * (N_LEVELS + 1) for _ in range(N_LEVELS + 1)] for _ in sizes]
    for s, counts in enumerate(by_level):
        for j, cnt in enumerate(counts):
            cells[s][j][j] = cnt  # provisional: ceiling = own level, raised below
    for k in range(1, N_LEVELS + 1):
        target = round(eligible_share[k] * n)
        already = sum(cells[s][j][c] for s in range(len(sizes)) for j in range(k, N_LEVELS + 1)
                      for c in range(N_LEVELS + 1))
        # Pool below k still eligible for k-1: firms at j < k whose ceiling is exactly k-1.
        pool = [(s, j) for s in range(len(sizes)) for j in range(k)]
        weights = [cells[s][j][k - 1] for s, j in pool]
        need = min(max(0, target - already), sum(weights))
        raised = apportion(need, weights)
        for (s, j), r in zip(pool, raised, strict=True):
            cells[s][j][k - 1] -= r
            cells[s][j][k] += r
    # Firms already at level j carry ceiling >= j; those set provisionally to j and raised
    # above have been handled. Eligible counts:
    elig_seg = []
    for s in range(len(sizes)):
        row = [sizes[s]]
        for k in range(1, N_LEVELS + 1):
            row.append(sum(cells[s][j][c] for j in range(N_LEVELS + 1)
                           for c in range(k, N_LEVELS + 1)))
        elig_seg.append(tuple(row))
    eligible = tuple(sum(row[k] for row in elig_seg) for k in range(N_LEVELS + 1))
    return Layout(tuple(sizes), _freeze(cells), eligible, tuple(elig_seg),
                  _flight(scenario, cells))


def apportion_capped(total: int, weights: list[float], caps: list[int]) -> list[int]:
    """`apportion`, with no part above its cap: what a capped part cannot take goes to the
    others in proportion to their weights."""
    out = [0] * len(weights)
    left, open_ = min(total, sum(caps)), [i for i in range(len(weights)) if caps[i] > 0]
    while left > 0 and open_:
        share = apportion(left, [weights[i] for i in open_])
        if sum(share) == 0:  # every open weight is zero: fill in order of room
            share = apportion(left, [caps[i] - out[i] for i in open_])
        for i, x in zip(open_, share, strict=True):
            take = min(x, caps[i] - out[i])
            out[i] += take
            left -= take
        open_ = [i for i in open_ if out[i] < caps[i]]
    return out


def _flight(scenario: Scenario, cells: list) -> tuple:
    """Projects under way at the start: `in_flight[k] * firms` level-k projects, held by firms
    at level k-1 that are eligible for k, spread over segments and ceilings in proportion to
    count times propensity (firms more prone to adopt are more often mid-project)."""
    if not any(scenario.in_flight):
        return ()
    S = len(cells)
    flight = [[[0] * (N_LEVELS + 1) for _ in range(N_LEVELS + 1)] for _ in range(S)]
    for k in range(1, N_LEVELS + 1):
        need = round(scenario.in_flight[k - 1] * scenario.firms)
        slots = [(s, c) for s in range(S) for c in range(k, N_LEVELS + 1)]
        caps = [cells[s][k - 1][c] for s, c in slots]
        weights = [cells[s][k - 1][c] * scenario.segments[s].propensity[k - 1]
                   for s, c in slots]
        for (s, c), n in zip(slots, apportion_capped(need, weights, caps), strict=True):
            flight[s][k][c] = n
    return tuple(tuple(tuple(x) for x in seg) for seg in flight)
