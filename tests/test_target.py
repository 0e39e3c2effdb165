"""Verdict statistics: the Wilson interval's coverage and the censored crossing quantiles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make

from sim.analysis.verdict import verdict, verdict_line, wilson


@pytest.mark.parametrize(("p", "n"), [(0.3, 50), (0.05, 200), (0.9, 30)])
def test_wilson_covers_95_percent(p, n):
    """Coverage over 20,000 binomial draws is 95% give or take the interval's known
    oscillation (Brown, Cai & DasGupta 2001 report 93-97% in this range) and 4 binomial SE."""
    rng = np.random.default_rng(0)
    trials = 20_000
    hits = 0
    for k in rng.binomial(n, p, size=trials):
        lo, hi = wilson(int(k), n)
        hits += lo <= p <= hi
    coverage = hits / trials
    se = math.sqrt(0.95 * 0.05 / trials)
    assert 0.93 - 4 * se <= coverage <= 0.97 + 4 * se


def test_wilson_edges():
    lo, hi = wilson(0, 20)
    assert lo == 0 and 0 < hi < 0.2
    lo, hi = wilson(20, 20)
    assert hi == 1 and 0.8 < lo < 1
    for n in (1, 7, 50, 100, 999):  # exactly 0 and 1, not rounding dust (50 gave 5.6e-17)
        assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0


def test_censored_crossings_and_line():
    sc = make()
    # 10 runs: 4 cross in year 1.5 and later, 6 never cross within the horizon.
    counts = [sc.target.firms + 1] * 3 + [0] * 7
    crossings = [0.5, 1.0, 1.5, 2.5] + [None] * 6
    v = verdict(sc, counts, crossings)
    assert v.p_met == 0.3 and v.met == 3
    assert v.never == 0.6
    assert v.crossing_p05 == sc.date_at(0.5)
    assert v.crossing_p50 is None  # the median run never crosses
    line = verdict_line(sc, v)
    assert line.startswith("target 2,000 firms at >= line (new) by 2027-12-31: met in 30% of "
                           "10 runs [")
    assert "60% never within horizon" in line
