"""Verdict statistics: the Wilson interval's coverage and the censored crossing quantiles."""

from __future__ import annotations

import math
import re

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


@pytest.mark.parametrize(("met", "share", "band"), [
    (0, "0%", "[0%, 2%]"), (1, "<1%", "[<1%, 3%]"), (199, ">99%", "[97%, >99%]"),
    (200, "100%", "[98%, 100%]")])
def test_a_share_reads_0_or_100_percent_only_when_exact(met, share, band):
    """1 of 200 runs is not "0%", nor 199 "100%": only none or all of them are."""
    sc = make()
    counts = [sc.target.firms] * met + [0] * (200 - met)
    v = verdict(sc, counts, [1.0] * met + [None] * (200 - met))
    line = verdict_line(sc, v)
    assert f": met in {share} of 200 runs {band}; " in line
    never = {0: "100%", 1: ">99%", 199: "<1%", 200: "0%"}[met]
    assert f"({never} never within horizon)" in line


def test_the_count_band_says_it_is_the_spread_of_runs():
    """The count's 5-95% band is the spread of single runs, not a confidence interval."""
    sc = make()
    v = verdict(sc, list(range(1000, 1100)), [None] * 100)
    line = verdict_line(sc, v)
    assert (f"; 1,050 new firms at >= line (5-95% of runs: {v.count_p05:,.0f}-"
            f"{v.count_p95:,.0f}) at 2027-12-31; 950 short; ") in line
    assert not re.search(r"line \[[\d,]+-[\d,]+\]", line)


def test_a_target_met_at_the_start_says_so_and_needs_no_pace():
    """A stock target that the firms at the start already meet: no crossing date, and no
    negative pace needed: holding the count, 0/yr (which a stock that falls with exits
    misses)."""
    sc = make({"target.count": "stock"})
    v = verdict(sc, [2_600.0] * 10, [0.0] * 10, start_count=2_100.0)
    line = verdict_line(sc, v)
    assert "met in 100% of 10 runs [72%, 100%]; met at the start (2,100 firms at >= line " \
           "on 2026-01-01); " in line
    assert "median crossing" not in line and "-" not in line.split("; ")[-1]
    assert line.endswith("; 600 above the target; 250/yr modelled vs 0/yr needed")


def test_the_readme_table_cell_reads_0_or_100_percent_only_when_exact():
    """docs/make_readings.py's README cells follow the same rule as the verdict line."""
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("make_readings",
                                                  ROOT / "docs" / "make_readings.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    firms = 100
    cells = [module.cell(np.array([firms] * met + [0] * (200 - met)), firms)
             for met in (0, 1, 199, 200)]
    assert [c.split(" · ")[1] for c in cells] == [
        "met 0% [0-2%]", "met <1% [<1%, 3%]", "met >99% [97%, >99%]", "met 100% [98-100%]"]


def test_a_solves_p_met_reads_0_or_1_only_when_exact():
    """A solve states P(met) to two decimals by the same rule: 1 run in 400 is not "0.00",
    nor 999 in 1,000 "1.00" (the solve's messages and the sweep map's subtitle)."""
    from sim.readout.shares import share_decimal

    assert [share_decimal(x) for x in (0.0, 1 / 400, 0.5, 0.999, 1.0)] == [
        "0.00", "<0.01", "0.50", ">0.99", "1.00"]
