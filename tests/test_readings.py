"""Every reading of the target (stock, new, upgraded) and the projects under way at the start,
in every engine, against cases whose answer is known in closed form.

Tolerances: a stochastic engine's mean over R replications of a sum of independent
Bernoulli firms is within Z standard errors of the expectation, SE = sqrt(var / R) with the
binomial variance of those firms; the mean field equals the expectation within its ODE
tolerance (absolute 1e-3 firms, relative 1e-6, accumulated: 0.5 firms allowed).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from conftest import make
from scipy.stats import gamma

from sim.analysis.verdict import reading_counts
from sim.engines import engines, rules
from sim.engines.meanfield import erlang_stages
from sim.execution.runner import replication_rng

Z = 4.0  # standard errors: a false alarm about once in 16,000 checks
STOCHASTIC = ("des", "tau")
MF_TOL = 0.5  # firms


def _two_step_raw(reading: str = "upgraded") -> dict:
    """Two levels, no peer effect, instant projects that always succeed, no resources: a firm
    at none climbs to device at rate P1, a device firm to line at rate P2, independently."""
    return {
        "name": "steps", "start": dt.date(2026, 1, 1), "end": dt.date(2027, 12, 31),
        "replications": 1, "seed": 1,
        "target": {"firms": 5_000, "level": "device", "deadline": dt.date(2026, 12, 31),
                   "count": reading},
        "population": {"firms": 20_000, "peer_weight": 0.0,
                       "segment": [{"name": "all", "share": 1.0,
                                    "initial": {"device": 0.25}}]},
        "levels": {"device": {"innovation": P1, "imitation": 0.0},
                   "line": {"innovation": P2, "imitation": 0.0}},
        # A firm that climbs twice within one fast-engine step loses part of a step's
        # exposure (0.9% at 10 days, measured); at 1 day that bias is well below one SE.
        "engine": {"tau_step": 1},
    }


P1, P2 = 0.3, 0.5
N0, N1 = 15_000, 5_000


def _runs(engine: str, raw: dict, reps: int):
    sc = make(raw=raw)
    n = 1 if engine == "meanfield" else reps
    return sc, [engines()[engine](sc, replication_rng(5, r)) for r in range(n)]


def _check(engine: str, observed: np.ndarray, mean: float, var: float) -> None:
    if engine == "meanfield":
        assert observed[0] == pytest.approx(mean, abs=MF_TOL)
        return
    se = math.sqrt(var / len(observed))
    assert abs(observed.mean() - mean) <= Z * se, (observed.mean(), mean, se)


@pytest.mark.parametrize("engine", ("des", "tau", "meanfield"))
def test_every_reading_against_the_closed_form(engine):
    """At each year end: stock, new and upgraded at device and line. `upgraded` at device
    counts the device firms that climbed to line, which `new` misses."""
    sc, res = _runs(engine, _two_step_raw(), 60)
    months = sc.month_ends()
    for year_end in (dt.date(2026, 12, 31), dt.date(2027, 12, 31)):
        m = months.index(year_end)
        t = sc.years(year_end, end_of_day=True)
        a1, a2 = 1 - math.exp(-P1 * t), 1 - math.exp(-P2 * t)
        both = 1 - (P2 * math.exp(-P1 * t) - P1 * math.exp(-P2 * t)) / (P2 - P1)
        at = np.array([r.at_or_above[m] for r in res], dtype=float)
        up = np.array([r.upgraded[m] for r in res], dtype=float)
        # device, new: none -> device firms; upgraded: they plus device firms that climbed.
        _check(engine, at[:, 0] - N1, N0 * a1, N0 * a1 * (1 - a1))
        _check(engine, up[:, 0], N0 * a1 + N1 * a2, N0 * a1 * (1 - a1) + N1 * a2 * (1 - a2))
        # line: every firm at line got there during the run, so upgraded = new = stock.
        mean2 = N0 * both + N1 * a2
        var2 = N0 * both * (1 - both) + N1 * a2 * (1 - a2)
        _check(engine, up[:, 1], mean2, var2)
        _check(engine, at[:, 1], mean2, var2)


@pytest.mark.parametrize("engine", ("des", "tau", "meanfield"))
@pytest.mark.parametrize("reading", ("new", "stock", "upgraded"))
def test_the_target_counts_its_reading(engine, reading):
    """count_at_deadline is the curve of the scenario's reading at the deadline."""
    sc, res = _runs(engine, _two_step_raw(reading), 3)
    m = sc.month_ends().index(sc.target.deadline)
    for r in res:
        curve = {"stock": r.at_or_above[m, 0], "new": r.at_or_above[m, 0] - r.initial[0],
                 "upgraded": r.upgraded[m, 0]}[reading]
        assert r.count_at_deadline == pytest.approx(curve, abs=1e-6)
        assert r.met == (r.count_at_deadline >= sc.target.firms)


@pytest.mark.parametrize("engine", ("des", "des-simpy", "tau", "meanfield"))
@pytest.mark.parametrize("turnover", (False, True), ids=("fixed", "entry-exit"))
def test_every_reading_is_taken_at_a_deadline_between_month_ends(engine, turnover):
    """With the deadline on 15 December, every reading summary.json reports at the deadline
    is taken there, as the verdict's own count is: for each reading as the target's, its
    column equals count_at_deadline run by run. (They were read on 30 November and labelled
    with the deadline: the baseline's own reading gave 17,901 against the verdict's
    18,118.)"""
    for reading in ("new", "stock", "upgraded"):
        raw = _two_step_raw(reading)
        raw["target"]["deadline"] = dt.date(2026, 12, 15)
        if turnover:
            raw["population"].update({"entry": 0.3, "exit": 0.3})
        sc, res = _runs(engine, raw, 3)
        counts = reading_counts(sc, dict(enumerate(res)), sc.target.deadline)[reading][:, 0]
        assert counts == pytest.approx([r.count_at_deadline for r in res], abs=1e-6), reading


def _flight_raw(in_flight: float = 0.1, capacity: int | None = None) -> dict:
    """Every firm at device, no new decisions (p = q = 0): only the line projects under way
    at the start complete, with the time they have left, and succeed with probability 0.6."""
    raw = {
        "name": "flight", "start": dt.date(2026, 1, 1), "end": dt.date(2027, 12, 31),
        "replications": 1, "seed": 1,
        "target": {"firms": 1_000, "level": "line", "deadline": dt.date(2026, 12, 31),
                   "count": "upgraded"},
        "population": {"firms": 20_000, "peer_weight": 0.0, "in_flight": {"line": in_flight},
                       "segment": [{"name": "all", "share": 1.0,
                                    "initial": {"device": 1.0}}]},
        "levels": {"device": {"innovation": 0.0, "imitation": 0.0},
                   "line": {"innovation": 0.0, "imitation": 0.0, "success": 0.6,
                            "implementation": {"median": 9, "sigma": 0.5}}},
    }
    if capacity is not None:
        raw["levels"]["line"]["needs"] = {"integrators": 1}
        raw["resources"] = {"integrators": {"capacity": capacity}}
    return raw


@pytest.mark.parametrize("engine", STOCHASTIC)
def test_projects_under_way_finish_with_the_time_they_have_left(engine):
    """Completions of the 2,000 projects under way follow the residual-time law of a steady
    stream of starts, P(R <= t) = E[min(T, t)] / E[T] for the lognormal T."""
    sc, res = _runs(engine, _flight_raw(), 40)
    n = 2_000
    for m, end in enumerate(sc.month_ends()):
        t = sc.years(end, end_of_day=True)
        pi = 0.6 * float(rules.residual_cdf(t, 9 / 12, 0.5))
        got = np.array([r.upgraded[m, 1] for r in res], dtype=float)
        _check(engine, got, n * pi, n * pi * (1 - pi))
        # every reading agrees here: nobody was at line at the start
        assert all(r.upgraded[m, 1] == r.at_or_above[m, 1] for r in res)


def test_the_mean_field_places_projects_under_way_by_stage():
    """The mean field's implementation time is a phase-type fit (Erlang stages); a steady
    stream leaves a project equally likely in any stage it passes through, so its time left
    is a mixture of Erlang tails, which the ODE must reproduce."""
    sc, (res,) = _runs("meanfield", _flight_raw(), 1)
    n_st, rate, skip = erlang_stages(9, 0.5)
    weight = np.ones(n_st)
    weight[0] -= skip
    weight /= weight.sum()
    for m, end in enumerate(sc.month_ends()):
        t = sc.years(end, end_of_day=True)
        cdf = sum(w * gamma.cdf(t, n_st - j, scale=1 / rate) for j, w in enumerate(weight))
        assert res.upgraded[m, 1] == pytest.approx(2_000 * 0.6 * cdf, abs=MF_TOL)


def test_the_residual_law_is_what_the_engines_draw():
    """rules.residual_years draws from rules.residual_cdf: Kolmogorov-Smirnov at 1%."""
    from scipy.stats import kstest

    x = rules.residual_years(np.random.default_rng(3), 0.75, 0.5, 20_000)
    assert kstest(x, lambda r: rules.residual_cdf(r, 0.75, 0.5)).pvalue > 0.01
    # mean residual of a steady stream: E[T^2] / (2 E[T]) = median e^{3 sigma^2 / 2} / 2
    assert x.mean() == pytest.approx(0.75 * math.exp(1.5 * 0.25) / 2, rel=4 * x.std() / x.mean()
                                     / math.sqrt(x.size))


@pytest.mark.parametrize("engine", ("des", "tau", "meanfield"))
def test_projects_under_way_wait_for_capacity(engine):
    """With 500 units for 2,000 projects under way, only 500 run at first and the rest queue:
    by mid-2026 fewer than half as many have completed as with no limit."""
    sc, res = _runs(engine, _flight_raw(capacity=500), 10)
    free = _runs(engine, _flight_raw(), 10)[1]
    early = sc.month_ends().index(dt.date(2026, 6, 30))
    slow = np.mean([r.upgraded[early, 1] for r in res])
    fast = np.mean([r.upgraded[early, 1] for r in free])
    assert 0 < slow < 0.5 * fast


@pytest.mark.parametrize("module", ["des_jit", "des"])
def test_projects_under_way_never_exceed_capacity(module):
    """The exact engines' trace of units in use stays within capacity from the first instant."""
    import importlib

    sc = make(raw=_flight_raw(capacity=500))
    simulate = importlib.import_module(f"sim.engines.{module}").simulate
    res = simulate(sc, replication_rng(5, 0), trace=True)
    uses = [(used, cap) for kind, _t, _r, used, cap in
            (e for e in res.trace if e[0] == "use")]
    assert len(uses) > 1_000 and all(used <= cap for used, cap in uses)


def test_in_flight_beyond_the_firms_below_is_refused():
    from sim.scenario import ScenarioError

    raw = _flight_raw()
    raw["population"]["in_flight"] = {"factory": 0.01}  # nobody is at line
    with pytest.raises(ScenarioError, match=r"population\.in_flight\.factory"):
        make(raw=raw)


def _waiting_from_the_start(**resource) -> dict:
    """base_raw with ecosystem projects under way that compute cannot hold at the start
    (each needs 2 units of 1), factory projects needing 1 unit, and no shock."""
    from conftest import base_raw

    raw = base_raw()
    del raw["shock"]
    for lv in ("device", "line"):
        raw["levels"][lv].pop("needs", None)
    raw["levels"]["factory"]["needs"] = {"compute": 1}
    raw["levels"]["ecosystem"]["needs"] = {"compute": 2}
    raw["resources"] = {"compute": {"capacity": 1, **resource}}
    raw["population"]["in_flight"] = {"ecosystem": 0.0005}
    raw["population"]["segment"][0]["initial"]["factory"] = 0.05
    return raw


@pytest.mark.parametrize("module", ["des_jit", "des"])
def test_projects_waiting_from_the_start_block_later_ones_and_wake_with_capacity(module):
    """Projects under way that cannot start wait first in line from the first instant: a
    later factory project must not take the compute unit they lack (no overtaking), and
    when capacity grows to 2 units they start. (The simpy engine used to leave its queue
    unserved until the first completion needing a resource: factories overtook, and
    growth never woke the queue.)"""
    import importlib

    simulate = importlib.import_module(f"sim.engines.{module}").simulate
    blocked = make(raw=_waiting_from_the_start())
    for seed in range(3):
        res = simulate(blocked, replication_rng(seed, 0))
        assert res.events["max_waiting"] > 0
        assert res.at_or_above[-1, 2] == res.initial[2], "a factory project overtook"
    growing = make(raw=_waiting_from_the_start(growth=1.0))  # 2 units after a year
    for seed in range(3):
        res = simulate(growing, replication_rng(seed, 0))
        assert res.at_or_above[-1, 3] > res.initial[3], "growth never woke the queue"
