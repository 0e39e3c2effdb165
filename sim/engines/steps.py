"""The fast engine's grid of steps: whole-day steps inside months, with every dated change,
the deadline and the horizon on an edge."""

from __future__ import annotations

import numpy as np

from sim.engines import rules
from sim.scenario import Scenario


def step_edges(sc: Scenario) -> tuple[np.ndarray, dict[int, int]]:
    """Step edges in whole days from the start, and the month index of each month-end edge.

    Every month is cut into equal whole-day steps of about `sc.tau_step` days; policy and
    shock dates and the deadline are added as edges where they do not fall on one already.
    """
    ends = [(d - sc.start).days + 1 for d in sc.month_ends()]
    days = {0}
    prev = 0
    for end in ends:
        n = max(1, round((end - prev) / sc.tau_step))
        days.update(prev + round((end - prev) * j / n) for j in range(1, n + 1))
        prev = end
    horizon = (sc.end - sc.start).days + 1
    days.add(horizon)
    deadline = (sc.target.deadline - sc.start).days + 1
    extra = [deadline, *(c.day for c in rules.changes(sc))]
    days.update(d for d in extra if 0 < d < horizon)
    edges = np.array(sorted(days), dtype=np.int64)
    index = {int(d): i for i, d in enumerate(edges)}
    return edges, {index[end]: m for m, end in enumerate(ends)}


__all__ = ["step_edges"]
