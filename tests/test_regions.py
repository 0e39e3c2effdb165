"""Regions in the engines: a split with every multiplier 1 is the national model with labels
(mean field to solver precision, des and tau in distribution, the layout exactly), regions
add up to the national arrays, multipliers and regional policies act on their own region,
quota reviews push only lagging regions and only when push > 1, and a regional run is
reproducible for any number of workers.

Tolerances. Stochastic comparisons use fixed seeds and independent streams for the two arms
(`SeedSequence(seed, spawn_key=(arm, i))`), so the difference of two means has standard error
sqrt(s1^2 / n1 + s2^2 / n2) and is allowed Z = 4 of them (two-sided false-alarm rate
ALPHA = 6.3e-5); the variance ratio s1^2 / s2^2 of two normal samples is F(n1 - 1, n2 - 1)
distributed (a ratio of scaled chi-squares) and is allowed its central 1 - ALPHA interval.
The mean field is deterministic; see `test_meanfield_split_equals_national` for its bound.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pytest
from cases import assert_same_result
from conftest import ROOT, make
from scipy import stats

import sim.engines.meanfield as meanfield
from sim.cli.main import main
from sim.engines import engines, layout, rules
from sim.execution.seeds import replication_rng
from sim.scenario import COUNTS, LEVELS, Policy, Quotas, Region, Scenario, load

Z = 4.0
ALPHA = 2 * stats.norm.sf(Z)  # 6.3e-5: the same false-alarm rate for means and variances
FIRMS = 5_000
SEED = 20_260_107
SHARES = (0.4, 0.3, 0.2, 0.1)


def national(count: str = "new") -> Scenario:
    """tests/conftest.py's scenario at FIRMS firms (resources scaled so they still bind, a
    segment policy with a budget, a capacity shock) with projects under way at the start, to
    the deadline only (2026-2027, 24 month ends)."""
    return make({"population.firms": FIRMS, "target.firms": FIRMS // 10, "target.count": count,
                 "end": dt.date(2027, 12, 31),
                 "population.in_flight": {"device": 0.01, "line": 0.01},
                 "resources.integrators.capacity": 600 * FIRMS // 20_000,
                 "resources.compute.capacity": 60 * FIRMS // 20_000})


def split(sc: Scenario, shares=SHARES, **kw) -> Scenario:
    """`sc` split into regions r0, r1, ... with these shares (multipliers 1 unless given)."""
    regions = tuple(Region(f"r{i}", s) for i, s in enumerate(shares))
    return dataclasses.replace(sc, regions=regions, **kw)


def with_region(sc: Scenario, i: int, **changes) -> Scenario:
    regions = list(sc.regions)
    regions[i] = dataclasses.replace(regions[i], **changes)
    return dataclasses.replace(sc, regions=tuple(regions))


def run(engine: str, sc: Scenario, *key: int):
    return engines()[engine](sc, replication_rng(SEED, *key))


def month_index(sc: Scenario, day: dt.date) -> int:
    return sc.month_ends().index(day)


# ---------------------------------------------------------------------------------------------
# 1. A split with multipliers 1 is the national model


def test_layout_split_preserves_every_national_cell():
    """Baseline's eight regions (in_flight set) and an awkward small case: summed over the
    regions every cell, and every in-flight cell, is the national one exactly; a region's
    size differs from share x firms by less than the number of non-empty national cells
    (each cell's split is off by less than one firm per region)."""
    base = load(ROOT / "scenarios" / "baseline.toml")
    nat_base = dataclasses.replace(base, regions=(), policies=tuple(
        p for p in base.policies if p.regions is None))
    small = make({"population.firms": 37, "target.firms": 3,
                  "population.in_flight": {"device": 0.1}})
    cases = [(nat_base, base.regions),
             (small, tuple(Region(f"r{i}", s) for i, s in enumerate((0.5, 0.25, 0.15, 0.1)))),
             (small, (Region("a", 1 / 3, (2.0, 1.0, 1.0, 1.0)), Region("b", 1 / 3),
                      Region("c", 1 / 3, (0.5, 1.0, 1.0, 1.0))))]
    for nat_sc, regions in cases:
        nat = layout(nat_sc)
        reg = layout(dataclasses.replace(nat_sc, regions=regions))
        R, G = len(regions), len(nat.cells)
        assert reg.n_regions == R and reg.n_groups == G and len(reg.cells) == R * G
        cells = np.array(reg.cells).reshape(R, G, 5, 5)
        assert (cells >= 0).all()
        np.testing.assert_array_equal(cells.sum(axis=0), np.array(nat.cells))
        assert reg.eligible == nat.eligible
        assert reg.eligible_by_segment == nat.eligible_by_segment
        if any(nat_sc.in_flight):
            flight = np.array(reg.flight).reshape(R, G, 5, 5)
            np.testing.assert_array_equal(flight.sum(axis=0), np.array(nat.flight))
            # Firms mid-project to k are firms at k - 1: no region holds more than it has.
            assert (flight[:, :, 1:, :] <= cells[:, :, :-1, :]).all()
        else:
            assert reg.flight == ()
        np.testing.assert_array_equal(reg.at_or_above(), nat.at_or_above())
        nonempty = int((np.array(nat.cells) > 0).sum())
        sizes = cells.sum(axis=(1, 2, 3))
        assert sizes.sum() == nat_sc.firms
        for r, region in enumerate(regions):
            assert abs(sizes[r] - region.share * nat_sc.firms) < nonempty, (r, sizes)


@pytest.mark.parametrize("count", COUNTS)
def test_meanfield_split_equals_national(count, monkeypatch):
    """The split's ODEs are the national ones cell by cell (the peer signal, resources and
    budgets stay national), so the two solutions differ by solver error alone. At the
    engine's own tolerance (rtol 1e-6, atol 1e-3 firms per state, curves read from the dense
    output) that error was measured at 0.13 firm on a curve and 9e-5 relative on this small
    count (73 firms): atol, not rtol, dominates, so 1e-6 relative cannot be asked there. The
    solver is tightened to rtol 1e-10, atol 1e-7 firms (measured error then 4e-6 firm on a
    curve, 1.4e-8 relative on the count), and the count at the deadline and every curve must
    agree to 1e-6 relative (1e-6 firm absolute where a curve is near 0): a margin of ~100
    over solver error, while any real difference between the models (a misplaced firm, a
    rate off by a share) would be orders of magnitude larger."""
    monkeypatch.setattr(meanfield, "RTOL", 1e-10)
    monkeypatch.setattr(meanfield, "ATOL", 1e-7)
    sc = national(count)
    a = engines()["meanfield"](sc, None)
    b = engines()["meanfield"](split(sc), None)
    assert a.count_at_deadline > 50
    assert b.count_at_deadline == pytest.approx(a.count_at_deadline, rel=1e-6)
    for name in ("at_or_above", "upgraded"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-6, atol=1e-6,
                                   err_msg=name)
    np.testing.assert_array_equal(b.initial, a.initial)
    assert b.met == a.met
    assert (a.crossing_time is None) == (b.crossing_time is None)
    np.testing.assert_allclose(b.spent, a.spent, rtol=1e-6)


@pytest.mark.parametrize("engine", ["des", "tau"])
def test_stochastic_split_equals_national_in_distribution(engine):
    """N replications each of the national scenario and its split (independent streams):
    equal means of the count at the deadline within Z SE of the difference, and a variance
    ratio inside the central 1 - ALPHA interval of F(N - 1, N - 1)."""
    n = 60
    sc = national()
    reg = split(sc)
    a = np.array([run(engine, sc, 0, i).count_at_deadline for i in range(n)], dtype=float)
    b = np.array([run(engine, reg, 1, i).count_at_deadline for i in range(n)], dtype=float)
    va, vb = a.var(ddof=1), b.var(ddof=1)
    assert va > 0 and vb > 0
    se = math.sqrt(va / n + vb / n)
    assert abs(a.mean() - b.mean()) <= Z * se, (a.mean(), b.mean(), se)
    lo, hi = stats.f.ppf([ALPHA / 2, 1 - ALPHA / 2], n - 1, n - 1)
    assert lo <= va / vb <= hi, (va, vb, lo, hi)


# ---------------------------------------------------------------------------------------------
# 2. Regions add up


def regional(count: str = "new", push: float = 1.5) -> Scenario:
    """Three unequal regions with their own multipliers, quotas that push, a regional policy
    next to the national one, projects under way at the start."""
    sc = national(count)
    regions = (Region("east", 0.5, (1.3, 1.6, 1.2, 1.0), quota=0.6),
               Region("centre", 0.3, quota=0.3),
               Region("west", 0.2, (0.7, 0.5, 1.0, 2.0), quota=0.1))
    fund = Policy("east fund", dt.date(2026, 4, 1), dt.date(2027, 6, 30), (1.2, 1.4, 1.0, 1.0),
                  regions=("east",))
    return dataclasses.replace(sc, regions=regions, policies=(*sc.policies, fund),
                               quotas=Quotas(push=push, every=3))


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize("engine", ["des", "tau", "meanfield"])
def test_regions_add_up_to_the_national_arrays(engine, count):
    """Exactly in the stochastic engines (whole firms); in the mean field, where both sides
    are sums of the same state vector in a different order, to 1e-9 relative."""
    sc = regional(count)
    res = run(engine, sc, 0)
    months, R = len(sc.month_ends()), len(sc.regions)
    at, up, init, dead = res.regional()
    assert res.region_at_or_above is not None
    assert at.shape == up.shape == (months, R, 4) and init.shape == (R, 4)
    assert dead.shape == (R,)
    if engine == "meanfield":
        def same(x, y):
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9)
    else:
        def same(x, y):
            np.testing.assert_array_equal(x, y)
    same(at.sum(axis=1), res.at_or_above)
    same(up.sum(axis=1), res.upgraded)
    np.testing.assert_array_equal(init.sum(axis=0), res.initial)  # whole firms in every engine
    same(dead.sum(), res.count_at_deadline)
    # The regions' count at the deadline is their curve read as the target reads it.
    k = sc.target.level_index - 1
    m = month_index(sc, sc.target.deadline)
    curve = {"new": at[m, :, k] - init[:, k], "stock": at[m, :, k], "upgraded": up[m, :, k]}
    same(dead, curve[count])
    assert (dead > 0).all()


# ---------------------------------------------------------------------------------------------
# 3. Multipliers and regional policies act on their own region (mean field)


def three(sc: Scenario | None = None) -> Scenario:
    return split(sc or national(), (0.5, 0.3, 0.2))


def mf(sc: Scenario) -> np.ndarray:
    return engines()["meanfield"](sc, None).region_count_at_deadline


def test_a_regions_multiplier_at_the_target_level_raises_its_count():
    sc = three()
    k = sc.target.level_index - 1
    before = mf(sc)
    for r in range(3):
        mult = [1.0] * 4
        mult[k] = 1.5
        after = mf(with_region(sc, r, multiplier=tuple(mult)))
        # Far beyond solver error (~1e-3 firm): a 1.5x hazard on a count of hundreds.
        assert after[r] > before[r] * 1.05, (r, before, after)


def test_a_regional_policy_raises_its_region_most():
    sc = three()
    before = mf(sc)
    for r, name in enumerate(sc.region_names):
        fund = Policy("fund", sc.start, sc.target.deadline, (1.5, 1.5, 1.0, 1.0), regions=(name,))
        after = mf(dataclasses.replace(sc, policies=(*sc.policies, fund)))
        gain = after / before
        others = np.delete(gain, r)
        assert gain[r] > 1.05 and (gain[r] > others).all(), (name, gain)


# ---------------------------------------------------------------------------------------------
# 4. Quotas


def lagging() -> Scenario:
    """Two halves: `ahead` (multiplier 1) with a tiny quota it always exceeds, `behind`
    (device and line hazards x0.3) with a quota of half the target, which it lags."""
    sc = national()
    return dataclasses.replace(sc, regions=(
        Region("ahead", 0.5, quota=0.001),
        Region("behind", 0.5, (0.3, 0.3, 1.0, 1.0), quota=0.5)), quotas=Quotas(1.0, 3))


@pytest.mark.parametrize("engine", ["des", "tau", "meanfield"])
def test_push_one_is_no_quotas_bit_for_bit(engine):
    sc = lagging()
    plain = dataclasses.replace(sc, regions=tuple(dataclasses.replace(r, quota=None)
                                                  for r in sc.regions), quotas=Quotas())
    assert rules.Quotas(sc, layout(sc).region_at_or_above()).days == []
    a, b = run(engine, sc, 3), run(engine, plain, 3)
    assert_same_result(a, b)


def test_meanfield_push_raises_the_lagging_region_and_spares_the_one_ahead():
    sc = lagging()
    k = sc.target.level_index - 1
    idle = engines()["meanfield"](sc, None)  # push 1: quotas only reported
    # Preconditions, at every review before the deadline: `behind` lags its quota, `ahead`
    # is past its own.
    reviews = [d for m, d in enumerate(sc.month_ends(), start=1)
               if m % 3 == 0 and d < sc.target.deadline]
    assert len(reviews) == 7
    for d in reviews:
        m = month_index(sc, d)
        t = sc.years(d, end_of_day=True)
        count = idle.region_at_or_above[m, :, k] - idle.region_initial[:, k]
        due = np.array([r.quota for r in sc.regions]) * sc.target.firms * t / sc.deadline
        assert count[0] > due[0] and count[1] < due[1], (d, count, due)
    pushed_sc = dataclasses.replace(sc, quotas=Quotas(1.5, 3))
    pushed = engines()["meanfield"](pushed_sc, None)
    assert pushed.region_count_at_deadline[1] > idle.region_count_at_deadline[1] * 1.05
    # `ahead` is never pushed: the run is the one where it has no quota at all (same
    # reviews, same pushes), bit for bit; what it gains comes from the national peer signal.
    no_quota = with_region(pushed_sc, 0, quota=None)
    same = engines()["meanfield"](no_quota, None)
    np.testing.assert_array_equal(pushed.region_at_or_above, same.region_at_or_above)
    np.testing.assert_array_equal(pushed.region_count_at_deadline,
                                  same.region_count_at_deadline)


def test_quotas_push_known_answers():
    """Target 1,000 firms; quotas 0.5, 0.3, none: at half the plan period 250 and 150 firms
    are due; a region below its due count is pushed, one at it or above is not, one without a
    quota never is; at t = 0 nothing is due; from the deadline on nobody is pushed."""
    sc = dataclasses.replace(make({"target.firms": 1_000}), regions=(
        Region("a", 0.5, quota=0.5), Region("b", 0.3, quota=0.3), Region("c", 0.2)),
        quotas=Quotas(push=1.5, every=3))
    q = rules.Quotas(sc, layout(sc).region_at_or_above())
    half = sc.deadline / 2
    np.testing.assert_array_equal(q.push(half, np.array([249.0, 150.0, 0.0])), [1.5, 1.0, 1.0])
    np.testing.assert_array_equal(q.push(half, np.array([250.0, 149.5, 0.0])), [1.0, 1.5, 1.0])
    np.testing.assert_array_equal(q.push(half, np.array([-3.0, -3.0, -3.0])), [1.5, 1.5, 1.0])
    np.testing.assert_array_equal(q.push(sc.deadline / 4, np.array([124.0, 75.0, 0.0])),
                                  [1.5, 1.0, 1.0])
    np.testing.assert_array_equal(q.push(0.0, np.zeros(3)), [1.0, 1.0, 1.0])
    for t in (sc.deadline, sc.deadline + 0.5):
        np.testing.assert_array_equal(q.push(t, np.zeros(3)), [1.0, 1.0, 1.0])


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["des", "des-simpy"])
def test_a_monthly_review_sees_the_month_end_before_firms_come_and_go(engine):
    """A review at a month end reads the counts of that month end, before its exits and
    entrants (docs/model.md), as the fast engine does explicitly, however often reviews
    come. The exact engines ordered same-time events by when they were scheduled: a
    review every month ran after the month's turnover, a review every other month before.
    Here the entrants (all at device, the counted level) lift the count at each review, so
    reviewing after them pushes less: 124 firms fewer (z = -24 at 300 runs). Means of the
    count at the deadline within Z standard errors of the difference, the fast engine at
    a 10-day step, whose own bias here is below one standard error (helper's measurement:
    every = 2, 6,333 against 6,335 and 6,331 at 10 and 5 days)."""
    from sim.execution.runner import run_replications
    from sim.scenario import validate

    sc = validate({
        "name": "q", "start": dt.date(2026, 1, 1), "end": dt.date(2027, 12, 31),
        "replications": 1, "seed": 1,
        "target": {"firms": 6000, "level": "device", "deadline": dt.date(2027, 12, 31)},
        "population": {"firms": 20_000, "peer_weight": 0.0, "entry": 0.12, "exit": 0.2,
                       "entry_device": 1.0,
                       "region": [{"name": "a", "share": 0.5, "quota": 0.5},
                                  {"name": "b", "share": 0.5, "multiplier": 0.5,
                                   "quota": 0.5}],
                       "quotas": {"push": 3.0, "every": 1}},
        "levels": {"device": {"innovation": 0.05, "imitation": 0.3}}})
    reps = 100
    got = {e: np.array([r.count_at_deadline for r in run_replications(
        sc, range(reps), seed=seed, engine=e).values()]) for e, seed in ((engine, 5), ("tau", 6))}
    se = math.sqrt(sum(x.var(ddof=1) / reps for x in got.values()))
    assert abs(got[engine].mean() - got["tau"].mean()) < Z * se, (
        {e: round(x.mean(), 1) for e, x in got.items()}, round(se, 1))


def _days(*dates: dt.date, start: dt.date = dt.date(2026, 1, 1)) -> list[int]:
    """Days since the start of `start` to the end of each date."""
    return [(d - start).days + 1 for d in dates]


def test_quota_review_days():
    sc = lagging()  # start 2026-01-01, deadline 2027-12-31, end 2027-12-31
    initial = layout(sc).region_at_or_above()

    def days(quotas: Quotas, scenario: Scenario = sc) -> list[int]:
        return rules.Quotas(dataclasses.replace(scenario, quotas=quotas), initial).days

    D = dt.date
    # Quarterly: the quarter ends strictly before the deadline, then the deadline.
    assert days(Quotas(2.0, 3)) == _days(D(2026, 3, 31), D(2026, 6, 30), D(2026, 9, 30),
                                         D(2026, 12, 31), D(2027, 3, 31), D(2027, 6, 30),
                                         D(2027, 9, 30), D(2027, 12, 31))
    assert days(Quotas(2.0, 7)) == _days(D(2026, 7, 31), D(2027, 2, 28), D(2027, 9, 30),
                                         D(2027, 12, 31))
    assert days(Quotas(1.1, 1)) == _days(*sc.month_ends())  # the last month end is the deadline
    # A deadline inside a month: that month's end is after it, so not a review.
    mid = dataclasses.replace(sc, target=dataclasses.replace(sc.target,
                                                             deadline=D(2026, 12, 15)))
    assert days(Quotas(2.0, 4), mid) == _days(D(2026, 4, 30), D(2026, 8, 31), D(2026, 12, 15))
    assert days(Quotas(2.0, 12), mid) == []  # no review before the deadline
    # Nothing to push: push 1, no quota, no regions.
    assert days(Quotas(1.0, 3)) == []
    no_quota = dataclasses.replace(sc, regions=tuple(dataclasses.replace(r, quota=None)
                                                     for r in sc.regions))
    assert days(Quotas(2.0, 3), no_quota) == []
    nat = dataclasses.replace(sc, regions=())
    assert rules.Quotas(dataclasses.replace(nat, quotas=Quotas(2.0, 3)),
                        layout(nat).region_at_or_above()).days == []


# ---------------------------------------------------------------------------------------------
# 5. A regional run is the same for any number of workers


REGIONAL_TOML = """\
name = "regional-small"
description = "three regions, a regional fund, quotas that push"
start = 2026-01-01
end = 2027-12-31
replications = 4
seed = 11

[target]
firms = 300
level = "line"
deadline = 2027-06-30
count = "new"

[population]
firms = 4_000
peer_weight = 0.3
in_flight = { device = 0.01, line = 0.01 }

[[population.segment]]
name = "large"
share = 0.2
propensity = 2.0
initial = { device = 0.3, line = 0.1, factory = 0.01 }

[[population.segment]]
name = "sme"
share = 0.8
propensity = { device = 1.0, line = 0.7 }
initial = { device = 0.05 }

[[population.region]]
name = "east"
share = 0.5
multiplier = { device = 1.3, line = 1.5 }
quota = 0.6

[[population.region]]
name = "centre"
share = 0.3
quota = 0.3

[[population.region]]
name = "west"
share = 0.2
multiplier = 0.6
quota = 0.1

[population.quotas]
push = 1.5
every = 2

[levels.device]
innovation = 0.05
imitation = 0.4
success = 0.9
retry = 6
implementation = { median = 4, sigma = 0.5 }
needs = { integrators = 1 }

[levels.line]
innovation = 0.03
imitation = 0.5
eligible = 0.6
success = 0.8
implementation = { median = 6, sigma = 0.5 }
needs = { integrators = 1 }

[levels.factory]
innovation = 0.01
imitation = 0.3
eligible = 0.2

[levels.ecosystem]
innovation = 0.005
imitation = 0.2
eligible = 0.05

[resources.integrators]
capacity = 120
growth = 0.2

[[policy]]
name = "national plan"
start = 2026-03-01
end = 2027-12-31
multiplier = { line = 1.5 }
segments = ["sme"]

[[policy]]
name = "east fund"
start = 2026-01-01
end = 2026-12-31
multiplier = { device = 1.2, line = 1.2 }
regions = ["east"]
budget = 5.0e7
cost = { line = 1.0e6 }
"""


@pytest.mark.parametrize("engine", ["des", "tau"])
def test_sim_run_with_regions_is_identical_for_any_jobs(tmp_path, capsys, engine):
    path = tmp_path / "regional.toml"
    path.write_text(REGIONAL_TOML, encoding="utf-8")
    sc = load(path)
    assert sc.region_names == ("east", "centre", "west") and sc.quotas == Quotas(1.5, 2)
    assert sc.policies[1].regions == ("east",)
    outs = {}
    for jobs in ("1", "2"):
        outs[jobs] = tmp_path / f"j{jobs}"
        assert main(["run", str(path), "--out", str(outs[jobs]), "--jobs", jobs,
                     "--engine", engine]) == 0, capsys.readouterr().err
    for name in ("curves.csv", "regions.csv"):
        one = (outs["1"] / name).read_bytes()
        assert one == (outs["2"] / name).read_bytes(), name
    # 4 replications x 24 month ends x 3 regions x 4 levels, and the replications differ.
    lines = (outs["1"] / "regions.csv").read_text().splitlines()
    assert len(lines) == 1 + 4 * 24 * 3 * len(LEVELS)
    deadline = [ln for ln in lines if ",2027-06-30,east,line," in ln]
    assert len(deadline) == 4 and len(set(ln.split(",", 1)[1] for ln in deadline)) > 1
