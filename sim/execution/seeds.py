"""Random streams: every replication draws from its own `SeedSequence` child, so results
do not depend on which worker runs it, or when."""

from __future__ import annotations

import numpy as np


def replication_rng(seed: int, *key: int) -> np.random.Generator:
    """The stream of one replication: `SeedSequence(seed, spawn_key=key)`; a run uses
    `(i,)`, a sweep point p's replication r `(p, r)`, a solve's replication r `(r,)`."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(key)))
