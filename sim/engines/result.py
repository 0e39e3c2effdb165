"""What one replication of any engine returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RunResult:
    """What one replication produced; arrays are indexed by month end, level 1..4."""

    at_or_above: np.ndarray  # (months, 4) firms at or above each level at each month end
    by_segment: np.ndarray  # (months, segments, 5) firms at exactly each level 0..4
    initial: np.ndarray  # (4,) firms at or above each level at the start
    count_at_deadline: float  # whole firms in the stochastic engines, expected in the mean field
    crossing_time: float | None  # years from start; None if never within the horizon
    met: bool
    upgraded: np.ndarray  # (months, 4) distinct firms that completed at least one project at
    # or above each level since the start (the `upgraded` reading)
    events: dict[str, int] = field(default_factory=dict)
    spent: tuple[float, ...] = ()  # subsidy paid per policy, yuan
    trace: list[tuple] | None = None
