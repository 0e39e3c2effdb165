"""What one replication of any engine returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RunResult:
    """What one replication produced; arrays are indexed by month end, level 1..4."""

    at_or_above: np.ndarray  # (months, 4) firms at or above each level at each month end
    by_segment: np.ndarray  # (months, cells' segments, 5) firms at exactly each level 0..4
    initial: np.ndarray  # (4,) firms at or above each level at the start
    count_at_deadline: float  # whole firms in the stochastic engines, expected in the mean field
    crossing_time: float | None  # years from start; None if never within the horizon
    met: bool
    upgraded: np.ndarray  # (months, 4) distinct firms that completed at least one project at
    # or above each level since the start (the `upgraded` reading)
    events: dict[str, int] = field(default_factory=dict)
    spent: tuple[float, ...] = ()  # subsidy paid per policy, yuan
    # Exact engines with trace=True: ("climb", t, segment, from, to), ("use", t, resource,
    # units in use, capacity) at each start, ("wait", t, level, waiting ahead, units free).
    trace: list[tuple] | None = None
    # Per region (scenario.region_names order; one, `national`, when the scenario has none).
    # None: the national arrays stand for the one region.
    region_at_or_above: np.ndarray | None = None  # (months, regions, 4)
    region_upgraded: np.ndarray | None = None  # (months, regions, 4)
    region_initial: np.ndarray | None = None  # (regions, 4)
    region_count_at_deadline: np.ndarray | None = None  # (regions,), adds up to the national
    # With exits: firms existing at each month end that were at or above each level at the
    # start (the `new` reading subtracts these); None: all of them, i.e. `initial`.
    survivors: np.ndarray | None = None  # (months, 4)
    region_survivors: np.ndarray | None = None  # (months, regions, 4)
    # Population change over the run (entry and exit; all 0 when the scenario has none).
    entered: float = 0.0  # firms that entered after the start
    exited: float = 0.0  # firms that left, at any level
    exited_upgraded: float = 0.0  # of which had completed a project at or above the target
    # level since the start (they no longer count: counts are over firms that exist)
    # (3, 4): at the deadline itself, which need not be a month end, the stock at or above
    # each level, what the `new` reading subtracts (`base`) and the `upgraded` count
    # (`rules.readings_now`); None: read the deadline's month end (results made before).
    deadline_readings: np.ndarray | None = None

    def base(self) -> np.ndarray:
        """(months, 4): what the `new` reading subtracts from the stock at each month end."""
        if self.survivors is not None:
            return self.survivors
        return np.broadcast_to(np.asarray(self.initial)[None, :], self.at_or_above.shape)

    def region_base(self) -> np.ndarray:
        """(months, regions, 4): `base` per region."""
        if self.region_survivors is not None:
            return self.region_survivors
        _, _, initial, _ = self.regional()
        return np.broadcast_to(initial[None, :, :], (len(self.at_or_above), *initial.shape))

    def regional(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(at_or_above (months, R, 4), upgraded (months, R, 4), initial (R, 4), count at the
        deadline (R,)), the national arrays as one region when the engine gave none."""
        if self.region_at_or_above is None:
            return (self.at_or_above[:, None, :], self.upgraded[:, None, :],
                    np.asarray(self.initial)[None, :], np.array([self.count_at_deadline]))
        assert self.region_upgraded is not None and self.region_initial is not None
        assert self.region_count_at_deadline is not None
        return (self.region_at_or_above, self.region_upgraded, self.region_initial,
                self.region_count_at_deadline)
