"""Random streams: every replication draws from its own `SeedSequence` child, so results
do not depend on which worker runs it, or when. An engine that runs replications together
(tau) draws each block of them from one child (`block_of`)."""

from __future__ import annotations

import numpy as np


def replication_rng(seed: int, *key: int) -> np.random.Generator:
    """The stream of one replication: `SeedSequence(seed, spawn_key=key)`; a run uses
    `(i,)`, a sweep point p's replication r `(p, r)`, a solve's replication r `(r,)`."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(key)))


BLOCK = 2**31 - 1
"""Key part that marks a block of replications run together (apart from any replication)."""


def block_of(index: int, size: int, total: int | None = None) -> tuple[int, range]:
    """The block of replication `index` with blocks of `size`: its number and the
    replications it runs, [b * size, (b + 1) * size) cut at `total` (None: not cut). A
    function of these alone, so a replication's result is the same whichever worker runs
    its block and whatever else is asked for."""
    b = index // size
    end = (b + 1) * size if total is None else min((b + 1) * size, total)
    return b, range(b * size, end)
