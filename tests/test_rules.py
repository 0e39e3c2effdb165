"""The model's rules (sim/engines/rules.py), and that every engine follows them: dates outside
the run, shocks that are lifted, the hazard. Each engine is checked against a twin scenario
whose answer is known to be the same under the rule, so the comparisons are exact."""

from __future__ import annotations

import copy
import datetime as dt
import math

import numpy as np
import pytest
from conftest import base_raw, make

from sim.engines import engines, rules
from sim.engines.des import _Engine
from sim.engines.meanfield import _MeanField
from sim.engines.tau import _Tau
from sim.execution.runner import replication_rng

ENGINES = ("des", "tau", "meanfield")


def _run(engine: str, raw: dict, rep: int = 0):
    return engines()[engine](make(raw=raw), replication_rng(11, rep))


def _same(a, b) -> None:
    assert np.array_equal(a.at_or_above, b.at_or_above)
    assert a.count_at_deadline == b.count_at_deadline
    assert a.spent == b.spent


def _policy(start: dt.date, end: dt.date, multiplier: float, name: str = "push") -> dict:
    return {"name": name, "start": start, "end": end, "multiplier": {"device": multiplier,
            "line": multiplier}}


def _raw_with_policy(policy: dict) -> dict:
    raw = base_raw()
    raw["policy"] = [policy]
    raw["shock"] = []
    return raw


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("start", "end"), [
    (dt.date(2024, 1, 1), dt.date(2025, 6, 30)),  # over a year before the run starts
    (dt.date(2024, 1, 1), dt.date(2025, 12, 31)),  # ends the day before the start
    (dt.date(2029, 1, 1), dt.date(2030, 12, 31)),  # begins after the run ends
])
def test_a_policy_outside_the_run_never_acts(engine, start, end):
    """Under the rule a policy wholly outside the window acts not at all: the run equals
    the same scenario with a neutral multiplier (same events, so the same draws)."""
    strong = _run(engine, _raw_with_policy(_policy(start, end, 5.0)))
    neutral = _run(engine, _raw_with_policy(_policy(start, end, 1.0)))
    _same(strong, neutral)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_policy_across_the_start_acts_from_the_start(engine):
    across = _run(engine, _raw_with_policy(_policy(dt.date(2025, 1, 1), dt.date(2026, 6, 30),
                                                   3.0)))
    from_start = _run(engine, _raw_with_policy(_policy(dt.date(2026, 1, 1),
                                                       dt.date(2026, 6, 30), 3.0)))
    _same(across, from_start)
    neutral = _run(engine, _raw_with_policy(_policy(dt.date(2026, 1, 1),
                                                    dt.date(2026, 6, 30), 1.0)))
    assert across.at_or_above[5, 0] > neutral.at_or_above[5, 0]  # it did act


def _raw_with_shock(**shock) -> dict:
    raw = base_raw()
    raw["shock"] = [{"name": "s", **shock}]
    return raw


@pytest.mark.parametrize("engine", ENGINES)
def test_a_shock_over_before_the_start_never_acts(engine):
    """It crashed the exact engine ('Negative delay') and was applied for the whole run by
    the others."""
    gone = dict(at=dt.date(2024, 1, 1), end=dt.date(2025, 3, 31), resource="compute")
    hit = _run(engine, _raw_with_shock(**gone, capacity_factor=0.0))
    neutral = _run(engine, _raw_with_shock(**gone, capacity_factor=1.0))
    _same(hit, neutral)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_shock_across_the_start_acts_from_the_start(engine):
    """A shock dated before the start and lifted inside the run is in force from the first
    day: the run equals the same shock dated at the start (same events, same draws)."""
    common = dict(end=dt.date(2026, 9, 30), resource="integrators", capacity_factor=0.3)
    across = _run(engine, _raw_with_shock(at=dt.date(2025, 6, 1), **common))
    from_start = _run(engine, _raw_with_shock(at=dt.date(2026, 1, 1), **common))
    _same(across, from_start)
    neutral = _run(engine, _raw_with_shock(at=dt.date(2026, 1, 1), end=dt.date(2026, 9, 30),
                                           resource="integrators", capacity_factor=1.0))
    assert across.at_or_above[5, 0] < neutral.at_or_above[5, 0]  # it did act


@pytest.mark.parametrize("engine", ENGINES)
def test_a_shock_after_the_end_never_acts(engine):
    late = dict(at=dt.date(2029, 6, 1), resource="compute")
    _same(_run(engine, _raw_with_shock(**late, capacity_factor=0.0)),
          _run(engine, _raw_with_shock(**late, capacity_factor=1.0)))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_policy_and_a_shock_across_the_end_act_until_the_end(engine):
    """Ending after the horizon is the same as never ending within it."""
    raw_a = _raw_with_policy(_policy(dt.date(2027, 1, 1), dt.date(2031, 6, 30), 2.0))
    raw_a["shock"] = [{"name": "s", "at": dt.date(2028, 1, 1), "end": dt.date(2032, 1, 1),
                       "resource": "compute", "capacity_factor": 0.5}]
    raw_b = _raw_with_policy(_policy(dt.date(2027, 1, 1), dt.date(2028, 12, 31), 2.0))
    raw_b["shock"] = [{"name": "s", "at": dt.date(2028, 1, 1), "resource": "compute",
                       "capacity_factor": 0.5}]
    _same(_run(engine, raw_a), _run(engine, raw_b))


def test_lifting_restores_the_value_before_the_shock():
    """Keep the pre-shock value rather than divide by the factor: a factor 0 comes back, and
    a success capped at 1 returns to what it was, not to 1 / factor."""
    raw = base_raw()
    raw["shock"] = [
        {"name": "stop", "at": dt.date(2026, 6, 1), "end": dt.date(2026, 12, 31),
         "resource": "compute", "capacity_factor": 0.0},
        {"name": "boost", "at": dt.date(2026, 6, 1), "end": dt.date(2026, 12, 31),
         "level": "line", "success_factor": 2.0},
    ]
    par = rules.Parameters(make(raw=raw))
    before = (par.capacity_factor.copy(), par.success.copy())
    par.set_shock(0, True)
    par.set_shock(1, True)
    assert par.capacity_factor[par.resource_names.index("compute")] == 0.0
    assert par.success[2] == 1.0  # 0.8 x 2, capped
    par.set_shock(1, False)
    par.set_shock(0, False)
    assert np.array_equal(par.capacity_factor, before[0])
    assert np.array_equal(par.success, before[1])
    assert par.success[2] == 0.8


def _lifted_raw() -> dict:
    raw = base_raw()
    raw["policy"] = []
    raw["shock"] = [
        {"name": "stop", "at": dt.date(2026, 3, 1), "end": dt.date(2026, 8, 31),
         "resource": "integrators", "capacity_factor": 0.0},
        {"name": "boost", "at": dt.date(2026, 3, 1), "end": dt.date(2026, 8, 31),
         "level": "line", "success_factor": 2.0},
    ]
    return raw


@pytest.mark.parametrize("engine", ["des", "tau"])
def test_engines_lift_shocks_to_the_pre_shock_values(engine):
    """After both shocks are lifted, each engine's own copies hold the pre-shock success and
    capacity, and projects start again (capacity 0 was left at 0 for ever before)."""
    sc = make(raw=_lifted_raw())
    cls = {"des": lambda: _Engine(sc, replication_rng(3, 0), False),
           "tau": lambda: _Tau(sc, replication_rng(3, 0))}[engine]
    eng = cls()
    res = eng.run()
    res = res[0] if isinstance(res, list) else res
    success = eng.success if engine == "des" else [1.0, *eng.success]
    assert success[2] == pytest.approx(0.8)
    months = sc.month_ends()
    lifted = months.index(dt.date(2026, 8, 31))
    # Six months on, the projects begun before the stop are done: firms still reaching the
    # device level then started after the lift (a handful at most if capacity stayed 0).
    assert res.at_or_above[lifted + 12, 0] - res.at_or_above[lifted + 6, 0] > 100


def test_meanfield_lifts_shocks_to_the_pre_shock_values():
    sc = make(raw=_lifted_raw())
    mf = _MeanField(sc)
    res = mf.run()
    assert mf.params.success[2] == pytest.approx(0.8)
    assert np.all(mf.params.capacity_factor == 1.0)
    months = sc.month_ends()
    lifted = months.index(dt.date(2026, 8, 31))
    assert res.at_or_above[lifted + 12, 0] - res.at_or_above[lifted + 6, 0] > 100


def test_changes_are_clipped_ordered_and_off_before_on():
    raw = base_raw()
    raw["policy"] = [_policy(dt.date(2025, 1, 1), dt.date(2026, 12, 31), 2.0, "a"),
                     _policy(dt.date(2027, 1, 1), dt.date(2031, 1, 1), 2.0, "b"),
                     _policy(dt.date(2020, 1, 1), dt.date(2021, 1, 1), 2.0, "c")]
    sc = make(raw=copy.deepcopy(raw))
    got = [(c.day, c.kind, c.index, c.on) for c in rules.changes(sc)]
    jan27 = (dt.date(2027, 1, 1) - sc.start).days
    assert sc.shocks[0].at == dt.date(2027, 1, 1)  # the same day: off first, then the ons
    assert got == [(0, "policy", 0, True), (jan27, "policy", 0, False),
                   (jan27, "policy", 1, True), (jan27, "shock", 0, True)]
    # The second policy runs past the end: its switch-off is beyond the horizon, not listed.
    assert all(c.day < (sc.end - sc.start).days + 1 for c in rules.changes(sc))


def test_hazard_is_the_model_formula():
    """MODEL.md: h = a * M * (p + q * ((1 - w) A/E + w A_s/E_s)), on floats and arrays."""
    assert rules.hazard(2.0, 0.1, 0.5, 0.25, 0.4, 0.8) == pytest.approx(
        2.0 * (0.1 + 0.5 * (0.75 * 0.4 + 0.25 * 0.8)))
    a = rules.hazard(np.array([1.0, 2.0]), 0.1, 0.5, 0.0, np.array([0.2, 0.2]), 0.0)
    assert np.allclose(a, [0.2, 0.4])


def test_meanfield_reports_segments_that_add_up():
    """Issue 13: the mean field returned zeros per segment. Its per-segment expected counts
    must conserve each segment's firms and add up to the national curve (identities, so
    the tolerance is rounding)."""
    sc = make()
    mf = engines()["meanfield"](sc, None)
    sizes = np.array(rules.Parameters(sc).layout.segment_sizes, dtype=float)
    assert np.allclose(mf.by_segment.sum(axis=2), sizes[None, :])
    above = mf.by_segment[:, :, 1:][:, :, ::-1].cumsum(axis=2)[:, :, ::-1].sum(axis=1)
    assert np.allclose(above, mf.at_or_above)
    assert mf.by_segment[-1, :, 1:].sum() > 0


@pytest.mark.parametrize(("median", "sigma"), [(120.0, 0.5), (40.0, 1.2), (90.0, 0.0), (0.0, 0.4)])
def test_started_cdf_is_the_law_of_a_uniform_start_plus_a_lognormal_duration(median, sigma):
    """rules.started_cdf (how the fast engine files crowded cells) against 200,000 draws of
    s ~ U(d0, d1) plus T ~ lognormal(median, sigma): the empirical CDF on a grid lies within
    the Dvoretzky-Kiefer-Wolfowitz band at 1e-3 (eps = sqrt(ln(2 / 1e-3) / 2n)); the instant
    and fixed-duration cases against their closed forms."""
    rng = np.random.default_rng(17)
    n, d0, d1 = 200_000, 30.0, 41.0
    draws = rng.uniform(d0, d1, n) + (median * np.exp(sigma * rng.standard_normal(n))
                                      if median > 0 else 0.0)
    grid = np.linspace(0.0, 600.0, 241)
    empirical = np.searchsorted(np.sort(draws), grid, side="right") / n
    eps = math.sqrt(math.log(2 / 1e-3) / (2 * n))
    model = rules.started_cdf(grid, d0, d1, median, sigma)
    assert np.max(np.abs(empirical - model)) <= eps
    if median == 0 or sigma == 0:  # a uniform start shifted by a fixed time
        exact = np.clip((grid - d0 - median) / (d1 - d0), 0.0, 1.0)
        np.testing.assert_allclose(model, exact, atol=1e-12)


@pytest.mark.parametrize("base", [25_000.0, 1e8, 3.7e8, 9.99e8])
@pytest.mark.parametrize("growth", [0.2, -0.1])
def test_the_next_unit_change_is_a_change(base, growth):
    """At the time `next_unit_change` gives, capacity has whole-unit changed: a tick there
    wakes the queue to a new unit. (At 1e8 units and more, rounding of the exact inverse
    used to give the time just before the change, where a tick rescheduled itself forever.)"""
    g = math.log1p(growth)
    for units in range(int(base * 1.3), int(base * 1.3) + 400):
        t = rules.next_unit_change(base, 1.0, g, units)
        after = rules.capacity_at(base, 1.0, g, t)
        assert (after > units) if growth > 0 else (after < units), (units, t, after)
