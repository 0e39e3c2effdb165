"""The exact engines against independent truth: the Bass closed form, conservation of firms,
resource capacity, policy direction and eligibility. Every test runs on both: the compiled
engine (`des`) and the simpy one (`des-simpy`), which draw differently but share the law."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math

import numpy as np
import pytest
from cases import bass_raw, bass_share
from conftest import make

from sim.engines import des, des_jit, rules
from sim.engines.meanfield import solve
from sim.engines.population import layout
from sim.engines.tau import simulate_tau
from sim.execution.runner import replication_rng, run_replications
from sim.scenario import Region, validate


@pytest.fixture(params=["des", "des-simpy"])
def simulate(request):
    """Each exact engine's `simulate`."""
    return des_jit.simulate if request.param == "des" else des.simulate


@pytest.mark.slow
def test_bass_reduction_matches_closed_form(simulate):
    """One level, instant projects, success 1, w = 0: E[A(t)] = N F(t) (up to an O(1) Jensen
    term, far below the standard error). Mean over R runs within 4 SE at each year end."""
    firms, reps = 100_000, 40
    sc = validate(bass_raw(firms, years=5))
    months = np.array([sc.years(d, end_of_day=True) for d in sc.month_ends()])
    runs = np.array([simulate(sc, replication_rng(11, i)).at_or_above[:, 0]
                     for i in range(reps)], dtype=float)
    year_ends = np.arange(11, len(months), 12)
    mean = runs[:, year_ends].mean(axis=0)
    se = runs[:, year_ends].std(axis=0, ddof=1) / math.sqrt(reps)
    expected = firms * bass_share(months[year_ends], 0.03, 0.38)
    z = (mean - expected) / se
    assert np.all(np.abs(z) < 4), f"z-scores {np.round(z, 2)}"
    assert expected[-1] > 0.3 * firms  # the curve has bent: the imitation term is exercised


def test_conservation_and_one_level_at_a_time(simulate):
    sc = make()
    res = simulate(sc, replication_rng(3, 0), trace=True)
    sizes = np.array(layout(sc).segment_sizes)
    # Firms per segment never change.
    assert np.all(res.by_segment.sum(axis=2) == sizes[None, :])
    # Every transition climbs exactly one rung, from a level that had firms.
    climbs = [e for e in res.trace if e[0] == "climb"]
    assert climbs, "no firm climbed: the test would be vacuous"
    assert all(to == frm + 1 for _, _, _, frm, to in climbs)
    # Counts at or above a level never fall, and the levels stay nested.
    assert np.all(np.diff(res.at_or_above, axis=0) >= 0)
    assert np.all(np.diff(res.at_or_above, axis=1) <= 0)
    # What the curves say equals what the exact-level table says.
    exact = res.by_segment.sum(axis=1)
    at_or_above = np.cumsum(exact[:, ::-1], axis=1)[:, ::-1][:, 1:]
    assert np.array_equal(at_or_above, res.at_or_above)


def test_capacity_never_exceeded_and_binds(simulate):
    sc = make({"resources.integrators.capacity": 150, "resources.integrators.growth": 0.3,
               "resources.compute.capacity": 20})
    res = simulate(sc, replication_rng(5, 0), trace=True)
    uses = [e for e in res.trace if e[0] == "use"]
    assert uses
    assert all(in_use <= cap for _, _, _, in_use, cap in uses)
    assert res.events["max_waiting"] > 0, "the queue never formed: capacity did not bind"
    # Capacity was actually reached, so the bound is tight rather than never approached.
    assert any(in_use == cap for _, _, _, in_use, cap in uses)


def test_capacity_without_growth_or_shock_holds_at_all_times(simulate):
    """With constant capacity, units in use (which change only at starts and completions)
    never exceed it: checked at every start, where use rises."""
    sc = make({"resources.integrators.capacity": 80, "resources.integrators.growth": 0.0,
               "shock": []})
    res = simulate(sc, replication_rng(6, 0), trace=True)
    uses = [e for e in res.trace if e[0] == "use" and e[2] == 0]
    assert max(in_use for *_, in_use, _cap in uses) == 80


def test_no_project_waits_with_its_units_free_and_nobody_ahead(simulate):
    """A decided project waits only behind another of its level or for units that are not
    free: so says every "wait" row of the trace. Exits at month ends may empty a queue that
    lacked units while freeing them (the firm of a running project leaves); before, the
    resources that queue lacked stayed marked as lacking until the next service, so a project
    decided later in the month waited with every unit free. One integrator, projects of a
    month, about as many decisions and every firm leaving at a rate of 1 a year (the most a
    scenario allows) make that happen a few dozen times in 100 runs."""
    sc = make({"levels.device.needs": {"integrators": 1}, "levels.device.innovation": 0.05,
               "levels.device.implementation": {"median": 1, "sigma": 0.3},
               "levels.device.success": 1.0, "levels.line.innovation": 0.0,
               "levels.line.imitation": 0.0, "levels.factory.innovation": 0.0,
               "levels.factory.imitation": 0.0, "levels.ecosystem.innovation": 0.0,
               "levels.ecosystem.imitation": 0.0, "population.firms": 100,
               "population.peer_weight": 0.0, "population.exit": 1.0,
               "population.entry": 1.0, "target.firms": 50,
               "resources.integrators.capacity": 1,
               "resources.integrators.growth": 0.0, "policy": [], "shock": []})
    waits = []
    for i in range(100):
        res = simulate(sc, replication_rng(8, i), trace=True)
        waits += [e for e in res.trace if e[0] == "wait"]
    first = [e for e in waits if e[3] == 0]  # nobody of its level ahead
    assert len(first) > 100, "the queue rarely formed: the test would be vacuous"
    free = [e for e in first if e[4]]
    assert not free, f"{len(free)} of {len(first)} waited with their units free: {free[:3]}"


def test_policy_multiplier_raises_adoption(simulate):
    """A multiplier > 1 on line raises mean line adoption, on the full model (its size
    against the closed form: test_closed_forms.py). Common random numbers: the same
    replication seeds with and without the policy; paired differences over 20 runs."""
    reps = 20
    plain = make({"policy": []})
    pushed = make({"policy": [{"name": "push", "start": plain.start, "end": plain.end,
                               "multiplier": {"line": 2.0}}]})
    diffs = []
    for i in range(reps):
        a = simulate(plain, replication_rng(9, i)).at_or_above[-1, 1]
        b = simulate(pushed, replication_rng(9, i)).at_or_above[-1, 1]
        diffs.append(b - a)
    diffs = np.array(diffs, dtype=float)
    se = diffs.std(ddof=1) / math.sqrt(reps)
    assert diffs.mean() > 4 * se, f"mean gain {diffs.mean():.1f}, SE {se:.1f}"


def test_non_eligible_firms_never_start(simulate):
    sc = make({"levels.line.eligible": 0.15, "levels.line.innovation": 2.0,
               "levels.device.innovation": 2.0, "levels.device.success": 1.0,
               "levels.line.success": 1.0, "levels.line.implementation.median": 1,
               "levels.device.implementation.median": 1,
               "levels.factory.eligible": 0.02, "levels.ecosystem.eligible": 0.01,
               "resources.integrators.capacity": 5000})
    lay = layout(sc)
    assert lay.eligible[2] == round(0.15 * sc.firms)
    res = simulate(sc, replication_rng(1, 0))
    assert res.at_or_above[:, 1].max() <= lay.eligible[2]
    assert res.at_or_above[-1, 1] > 0.9 * lay.eligible[2]  # and the cap is approached
    assert res.at_or_above[:, 2].max() <= lay.eligible[3]


def test_budget_is_never_overspent_and_ends_the_policy(simulate):
    sc = make({"policy.0.budget": 5.0e7, "policy.0.cost": {"line": 1.0e6}})
    res = simulate(sc, replication_rng(2, 0))
    assert res.spent[0] == pytest.approx(5.0e7)
    unlimited = make({"policy.0.budget": 1.0e15})
    res2 = simulate(unlimited, replication_rng(2, 0))
    assert res2.spent[0] > 5.0e7  # the small budget really did run out


@pytest.mark.parametrize("budget", [30.0, 100.0])
def test_a_spent_budget_is_exactly_its_size(simulate, budget):
    """Costs that binary fractions cannot hold (0.1 and 0.7): a budget that runs out reports
    exactly its size as spent, never a rounding past it. (The payments' own running sum,
    reported before, missed it by up to 4e-13 either way, in every engine.)"""
    sc = make({"policy.0.budget": budget, "policy.0.cost": {"device": 0.1, "line": 0.7},
               "policy.0.multiplier": {"device": 1.2, "line": 1.5}})
    engines = {"this exact engine": simulate, "tau": simulate_tau, "meanfield": solve}
    for name, run in engines.items():
        reps = 1 if name == "meanfield" else 6
        spent = [run(sc, replication_rng(2, rep)).spent[0] for rep in range(reps)]
        assert spent == [budget] * reps, name


def test_a_budget_never_reached_reports_its_payments(simulate):
    """Two policies paying the same costs for the same decisions, one with a budget far
    above what is paid (1e9) and one without: both report the same sum of payments. (Read
    as the budget less what is left, the first rounded at the budget's scale: 1407.39979
    against 1407.4.)"""
    raw = copy.deepcopy(make({"policy.0.cost": {"device": 0.1, "line": 0.7}}).raw)
    del raw["policy"][0]["budget"]
    raw["policy"].append({**raw["policy"][0], "name": "twin", "budget": 1.0e9,
                          "multiplier": {"line": 1.0}})
    sc = make(raw=raw)
    for name, run in {"this exact engine": simulate, "tau": simulate_tau}.items():
        res = run(sc, replication_rng(2, 0))
        assert 0 < res.spent[0] == res.spent[1] < 1.0e9, (name, res.spent)


def test_failed_firms_come_back_to_retry(simulate):
    """Failures happen and failed firms try again (the wait's length against its closed
    form: test_closed_forms.py::test_a_failed_firm_waits_its_retry_months)."""
    sc = make({"levels.device.success": 0.5, "levels.device.retry": 3})
    res = simulate(sc, replication_rng(4, 0))
    ev = res.events
    assert ev["failures"] > 0 and ev["retries"] > 0
    assert ev["completions"] > ev["failures"]


SHARE_SUCCESS = 0.5  # every level, so that each completion is one Bernoulli(s) draw


def test_failure_share_is_binomial(simulate):
    """Each completion succeeds with probability s, drawn independently of everything before
    it, so with n completions the failures F satisfy E[F - (1 - s) n] = 0 and
    Var[F - (1 - s) n] = s (1 - s) E[n] (a martingale with Bernoulli increments; n may be
    random). So F / n lies within 4 binomial standard errors sqrt(s (1 - s) / n) of 1 - s.
    The same s at all four levels (the events pool them), with retries; 4 replications pooled
    give n ~ 22,000, so 4 SE ~ 0.013 and a success off by 0.02 would be seen."""
    s = SHARE_SUCCESS
    sc = make({f"levels.{lv}.success": s for lv in ("device", "line", "factory", "ecosystem")}
              | {"levels.device.retry": 3})
    assert all(lv.success == s for lv in sc.levels)
    failures = completions = 0
    for i in range(4):
        ev = simulate(sc, replication_rng(4, i)).events
        failures += ev["failures"]
        completions += ev["completions"]
    se = math.sqrt(s * (1 - s) / completions)
    assert 4 * se < 0.025, f"only {completions} completions: too few to tell"
    share = failures / completions
    assert abs(share - (1 - s)) < 4 * se, (
        f"failure share {share:.4f} over {completions} completions, expected {1 - s} "
        f"+- {4 * se:.4f}")


def test_same_seed_same_result_other_seed_differs(simulate):
    sc = make()
    a = simulate(sc, replication_rng(1, 0))
    b = simulate(sc, replication_rng(1, 0))
    c = simulate(sc, replication_rng(1, 1))
    assert np.array_equal(a.at_or_above, b.at_or_above)
    assert not np.array_equal(a.at_or_above, c.at_or_above)


def test_target_count_and_crossing_agree(simulate):
    sc = make({"target.firms": 100})
    res = simulate(sc, replication_rng(8, 0))
    k = sc.target.level_index - 1
    months = [sc.years(d, end_of_day=True) for d in sc.month_ends()]
    new = res.at_or_above[:, k] - res.initial[k]
    assert res.met == (res.count_at_deadline >= 100)
    assert res.crossing_time is not None
    # The crossing lies in the first month whose count reaches the target.
    first = int(np.argmax(new >= 100))
    assert res.crossing_time <= months[first]
    assert first == 0 or res.crossing_time > months[first - 1]


@pytest.mark.parametrize("engine", ["des", "des-simpy", "tau", "meanfield"])
def test_projects_under_way_meet_the_capacity_a_shock_leaves_from_the_start(engine):
    """A shock in force from the start acts from the start (docs/model.md), on the projects
    under way too: with the integrators cut to nothing until April, none of the 1,000 line
    projects under way can run, so no firm reaches line in January to March (the known
    answer: the line stock stays at its start, in every replication). The exact and fast
    engines placed them against the capacity before the shock: 500 ran, and most finished
    in January."""
    sc = make({"population.firms": 20_000, "population.in_flight": {"line": 0.05},
               "levels.line.implementation": {"median": 1, "sigma": 0.3},
               "resources.integrators.capacity": 500, "resources.integrators.growth": 0.0,
               "policy": [], "shock": [{"name": "cut", "at": dt.date(2026, 1, 1),
                                        "end": dt.date(2026, 3, 31), "resource": "integrators",
                                        "capacity_factor": 0.0}]})
    start = layout(sc).at_or_above()[1]
    runs = run_replications(sc, range(1 if engine == "meanfield" else 5), seed=4, engine=engine)
    for r in runs.values():
        np.testing.assert_allclose(r.at_or_above[:3, 1], start, atol=1e-6)
        assert r.at_or_above[-1, 1] > start + 500  # they run once the cut is lifted


@pytest.mark.parametrize("engine", ["des", "des-simpy", "tau"])
def test_which_projects_under_way_run_does_not_depend_on_segment_order(engine):
    """1,000 line projects under way at the start and 500 integrators: which 500 run is a
    uniform draw, so January's new line firms (the runners that finish; the rest wait, as
    do January's new decisions) fall on each region in proportion to its projects under way
    (mean of the replications' shares within 3.3 standard errors). Taking them in segment
    order gave them all to the first region."""
    sc = make({"population.firms": 20_000, "population.in_flight": {"line": 0.05},
               "levels.line.implementation": {"median": 1, "sigma": 0.3},
               "resources.integrators.capacity": 500, "resources.integrators.growth": 0.0,
               "policy": [], "shock": []})
    sc = dataclasses.replace(sc, regions=(Region("east", 0.6, (1.3, 1.5, 1.0, 1.0)),
                                          Region("west", 0.4)))
    par = rules.Parameters(sc)
    flight = np.array([sum(seg[2]) for seg in par.layout.flight], dtype=float)
    expected = flight[par.region == 0].sum() / flight.sum()
    reps = 20
    runs = run_replications(sc, range(reps), seed=4, engine=engine)
    new = np.array([r.region_at_or_above[0, :, 1] - r.region_initial[:, 1]
                    for r in runs.values()], dtype=float)
    assert new.sum(axis=1).min() > 100
    share = new[:, 0] / new.sum(axis=1)
    assert abs(share.mean() - expected) < 3.3 * share.std(ddof=1) / np.sqrt(reps)
