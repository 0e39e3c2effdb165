"""The fast engine's cells: which (level decided, ceiling code) pairs a firm can occupy.

A ceiling code is family * W + ceiling (W = 5 ceilings). Families: 0 moved (started at
level 0 or entered), 1 unmoved (started where it is), and with entry and exit 2 unmoved
entrants above level 0 and 3, 4, 5 moved firms that started at level 1, 2, 3 (the level a
firm started at is what the `new` reading needs once firms leave). A firm deciding on level
i + 1 has a ceiling above i, and only some families reach level i: of the L x F x W pairs
about one in five can hold firms, so the engine's arrays keep those only (axis `k`, ordered
by level), which makes every table and array operation about five times smaller.
"""

from __future__ import annotations

import numpy as np

from sim.engines import rules
from sim.engines.population import N_LEVELS
from sim.scenario import Scenario

# The level each family's firms started at (-1: where they are now, unmoved).
ORIGIN = (0, -1, 0, 1, 2, 3)


def families(sc: Scenario) -> int:
    """Code families the fast engine needs for `sc`: 6 with entry or exit, else 2."""
    return 6 if sc.exit > 0 or sc.entry > 0 else 2


def _reaches(F: int, family: int, level: int) -> bool:
    """Can a firm of `family` be at `level` with a decision ahead of it?"""
    if family == 1:
        return True  # unmoved: every starting level
    if family == 2:
        return level == 1  # entrants enter at level 0 (family 1) or 1
    origin = ORIGIN[family]
    return level > origin  # moved firms climbed above where they started


class Cells:
    """The cells [level decided i, code] that can hold firms, as one axis k."""

    def __init__(self, F: int):
        L, W = N_LEVELS, N_LEVELS + 1
        self.F, self.W, self.codes = F, W, F * W
        valid = np.zeros((L, F * W), dtype=bool)
        for i in range(L):
            for f in range(F):
                for c in range(W):
                    valid[i, f * W + c] = _reaches(F, f, i) and bool(rules.may_climb(i, c))
        self.level, self.code = (a.astype(np.int64) for a in np.nonzero(valid))
        self.K = len(self.level)
        self.k_of = np.full((L, F * W), -1, dtype=np.int64)
        self.k_of[self.level, self.code] = np.arange(self.K)
        self.starts = np.searchsorted(self.level, np.arange(L))  # first k of each level
        # A success at k: the code taken at level i + 1 (unmoved firms become moved ones
        # that started at i; entrants and level-0 starters join family 0), and the k there
        # if it decides again (-1: at its ceiling, settled).
        family = np.array([[0, 0 if i == 0 or F == 2 else 2 + i, 0, 3, 4, 5][:F]
                           for i in range(L)])
        new_code = (family[self.level, self.code // W] * W + self.code % W)
        self.climb_code = new_code
        up = np.minimum(self.level + 1, L - 1)
        goes = (self.level + 1 < L) & rules.may_climb(self.level + 1, self.code % W)
        self.climb_k = np.where(goes, self.k_of[up, new_code], -1)
        assert np.all(self.climb_k[goes] >= 0), "a climb leads to a cell that cannot hold firms"

    def pack(self, dense: np.ndarray) -> np.ndarray:
        """[..., level, code] to [..., k]; every firm must sit in a cell that can hold it."""
        out = dense[..., self.level, self.code]
        assert out.sum() == dense.sum(), "firms in a cell the fast engine does not keep"
        return np.ascontiguousarray(out)

    def unpack_into(self, dense: np.ndarray, x: np.ndarray) -> None:
        """Add x [..., k] into dense [..., level (0..4 or 0..3), code]."""
        dense[..., self.level, self.code] += x

    def per_level(self, x: np.ndarray) -> np.ndarray:
        """Sums over each level's cells: [..., k] to [..., level decided]."""
        return np.add.reduceat(x, self.starts, axis=-1)
