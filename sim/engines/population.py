"""Deterministic layout of the initial population: segment sizes, initial levels, eligibility.

Both engines start from the same integer cells, so the population structure is not a source
of noise between replications or between engines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.scenario import LEVELS, Scenario

N_LEVELS = len(LEVELS)


def apportion(total: int, weights: list[float]) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest-remainder method)."""
    wsum = float(sum(weights))
    if total <= 0 or wsum <= 0:
        return [0] * len(weights)
    exact = [total * w / wsum for w in weights]
    base = [int(x) for x in exact]
    short = total - sum(base)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - base[i]), i))
    for i in order[:short]:
        base[i] += 1
    return base


@dataclass(frozen=True)
class Layout:
    """Initial counts. `cells[s][j][c]`: firms of segment s at level j whose ceiling is c.

    The ceiling is the highest level a firm is eligible for; eligibility is nested (a firm
    eligible for level k is eligible for every level below), which is how `eligible` shares
    that fall with the level are read.
    """

    segment_sizes: tuple[int, ...]
    cells: tuple[tuple[tuple[int, ...], ...], ...]  # [segment][level 0..4][ceiling 0..4]
    eligible: tuple[int, ...]  # E_k for k = 1..4 (index 0 unused, = firms)
    eligible_by_segment: tuple[tuple[int, ...], ...]  # [segment][k]

    def at_or_above(self) -> np.ndarray:
        """Initial firms at or above each level 1..4 (shape 4)."""
        exact = np.array([[sum(cs) for cs in seg] for seg in self.cells]).sum(axis=0)
        return np.array([exact[k:].sum() for k in range(1, N_LEVELS + 1)])


def layout(scenario: Scenario) -> Layout:
    """Apportion the population into segments, initial levels and eligibility ceilings."""
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
    return Layout(tuple(sizes), tuple(tuple(tuple(c) for c in seg) for seg in cells), eligible,
                  tuple(elig_seg))
