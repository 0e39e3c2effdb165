"""The speed yardstick (one simpy process per firm, thinning) and the count-based exact
engines (compiled and on simpy) simulate the same stochastic model, so their means agree
within standard errors."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from conftest import ROOT

from sim.engines import des, des_jit
from sim.execution.runner import replication_rng
from sim.scenario import load

sys.path.insert(0, str(ROOT / "benchmarks"))
from reference import simulate_reference  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("simulate", [des_jit.simulate, des.simulate], ids=["des", "des-simpy"])
def test_reference_and_exact_engine_agree(simulate):
    """20,000 firms, 16 replications each: the difference of means at every year end and
    level is within 4 standard errors of a difference of two independent means."""
    sc = load(ROOT / "benchmarks" / "four-levels.toml", ["population.firms=20_000",
                                                         "target.firms=5_000"])
    reps = 16
    ye = np.arange(11, len(sc.month_ends()), 12)
    ref = np.array([simulate_reference(sc, replication_rng(31, i))[ye] for i in range(reps)],
                   dtype=float)
    des = np.array([simulate(sc, replication_rng(32, i)).at_or_above[ye] for i in range(reps)],
                   dtype=float)
    assert np.all(des[:, -1, :3].mean(axis=0) - des[:, 0, :3].mean(axis=0) > 20), "no motion"
    se = np.sqrt(ref.var(axis=0, ddof=1) / reps + des.var(axis=0, ddof=1) / reps)
    z = (des.mean(axis=0) - ref.mean(axis=0)) / np.where(se > 0, se, math.inf)
    assert np.all(np.abs(z) < 4), f"z per year end x level:\n{np.round(z, 2)}"
