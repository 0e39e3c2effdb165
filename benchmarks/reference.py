"""The yardstick: the same model written the usual simpy way, one process per firm.

Each firm is a generator that waits exponential candidate times at the bound rate
`a M (p + q)` and accepts a candidate with probability h(t) / bound (thinning), then holds a
lognormal implementation time and succeeds or retries. It supports what the speed comparison
uses: segments with propensities and initial levels, eligibility, peer weight, success and
retry; no resources, policies or shocks. Written for clarity, as a modeller would, not tuned.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from sim.engines.population import N_LEVELS, layout
from sim.scenario import Scenario


def simulate_reference(sc: Scenario, rng: np.random.Generator) -> np.ndarray:
    """Firms at or above each level at each month end (months x 4), one process per firm."""
    if sc.resources or sc.policies or sc.shocks:
        raise ValueError("the reference model has no resources, policies or shocks")
    env = simpy.Environment()
    lay = layout(sc)
    n_seg = len(sc.segments)
    A = [0] * (N_LEVELS + 1)
    As = [[0] * (N_LEVELS + 1) for _ in range(n_seg)]
    w = sc.peer_weight
    levels = sc.levels

    def hazard(s: int, k: int) -> float:
        phi_pop = A[k] / lay.eligible[k] if lay.eligible[k] else 0.0
        esk = lay.eligible_by_segment[s][k]
        phi_own = As[s][k] / esk if esk else 0.0
        lv = levels[k - 1]
        return sc.segments[s].propensity[k - 1] * (
            lv.innovation + lv.imitation * ((1 - w) * phi_pop + w * phi_own))

    def firm(s: int, level: int, ceiling: int):
        while level < ceiling:
            k = level + 1
            lv = levels[k - 1]
            bound = sc.segments[s].propensity[k - 1] * (lv.innovation + lv.imitation)
            if bound <= 0:
                return
            while True:  # thinning: candidate times at the bound rate
                yield env.timeout(rng.exponential(1.0 / bound))
                if rng.random() * bound < hazard(s, k):
                    break
            if lv.implementation_median > 0:
                yield env.timeout(lv.implementation_median / 12.0
                                  * math.exp(lv.implementation_sigma * rng.standard_normal()))
            if rng.random() < lv.success:
                level = k
                A[k] += 1
                As[s][k] += 1
            elif lv.retry > 0:
                yield env.timeout(lv.retry / 12.0)

    for s in range(n_seg):
        for j in range(N_LEVELS + 1):
            for c in range(N_LEVELS + 1):
                for _ in range(lay.cells[s][j][c]):
                    for k in range(1, j + 1):
                        A[k] += 1
                        As[s][k] += 1
                    env.process(firm(s, j, c))

    months = [sc.years(d, end_of_day=True) for d in sc.month_ends()]
    curve = np.zeros((len(months), N_LEVELS), dtype=np.int64)
    for m, t in enumerate(months):
        env.run(until=t)
        curve[m] = A[1:]
    return curve
