"""How the rules read a scenario's policy multipliers, segment propensities and retry waits,
against closed forms. Every engine takes these from `sim.engines.rules`, so comparing engines
with each other cannot catch a misreading there (a retry in days, a squared multiplier, a
propensity ignored): each test checks the exact engine, and the mean field where its law is
exact, against the formula.

The exact engine's means are held within 4 standard errors of the formula at each year end
(the O(1) finite-population terms are far below the SE); the mean field, an ODE solved to
rtol 1e-6, within 1e-4 of the count."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cases import bass_raw, bass_share
from scipy.special import gammainc

from sim.engines import des_jit
from sim.engines.meanfield import solve
from sim.execution.runner import replication_rng
from sim.scenario import validate

FIRMS, REPS, P, Q = 100_000, 16, 0.03, 0.38  # bass_raw's population and Bass terms


def _year_ends(sc) -> tuple[np.ndarray, np.ndarray]:
    """The month indices of the year ends and their times in years."""
    ends = np.arange(11, len(sc.month_ends()), 12)
    return ends, np.array([sc.years(sc.month_ends()[i], end_of_day=True) for i in ends])


def _exact_runs(sc, seed: int, read) -> np.ndarray:
    """`read(result)` of REPS exact-engine runs, stacked as floats."""
    return np.array([read(des_jit.simulate(sc, replication_rng(seed, i))) for i in range(REPS)],
                    dtype=float)


def _within_4_se(runs: np.ndarray, expected: np.ndarray) -> None:
    mean, se = runs.mean(axis=0), runs.std(axis=0, ddof=1) / math.sqrt(len(runs))
    z = (mean - expected) / se
    assert np.all(np.abs(z) < 4), f"z {np.round(z, 2)}"


@pytest.mark.parametrize("engine", ["des", "meanfield"])
def test_a_policy_multiplier_scales_both_bass_terms(engine):
    """A policy in force all along multiplies the hazard: p + q F becomes M (p + q F), so
    the count is N F(t; M p, M q), M = 2.5."""
    raw = bass_raw(FIRMS, years=5)
    raw["policy"] = [{"name": "boost", "start": raw["start"], "end": raw["end"],
                      "multiplier": {"device": 2.5}}]
    sc = validate(raw)
    ends, t = _year_ends(sc)
    expected = FIRMS * bass_share(t, 2.5 * P, 2.5 * Q)
    if engine == "meanfield":
        got = solve(sc).at_or_above[ends, 0]
        assert np.max(np.abs(got - expected) / expected) < 1e-4
    else:
        _within_4_se(_exact_runs(sc, 31, lambda r: r.at_or_above[ends, 0]), expected)
    plain = FIRMS * bass_share(t, P, Q)
    assert np.all(expected[:2] > 1.5 * plain[:2])  # the multiplier makes a visible difference


@pytest.mark.parametrize("engine", ["des", "meanfield"])
def test_each_segment_diffuses_with_its_propensity_among_its_own_peers(engine):
    """Peer weight 1: a firm looks only at its own segment, and its propensity a multiplies
    both terms, so segment s is a Bass curve of its own, share_s N F(t; a_s p, a_s q).
    Propensities 2.0 and 0.5 on shares 0.3 and 0.7."""
    raw = bass_raw(FIRMS, years=5)
    raw["population"] = {"firms": FIRMS, "peer_weight": 1.0, "segment": [
        {"name": "keen", "share": 0.3, "propensity": 2.0},
        {"name": "slow", "share": 0.7, "propensity": 0.5}]}
    sc = validate(raw)
    ends, t = _year_ends(sc)
    expected = np.stack([share * FIRMS * bass_share(t, a * P, a * Q)
                         for share, a in ((0.3, 2.0), (0.7, 0.5))], axis=1)  # [year, segment]
    if engine == "meanfield":
        got = solve(sc).by_segment[ends, :, 1]
        assert np.max(np.abs(got - expected) / expected) < 1e-4
    else:
        _within_4_se(_exact_runs(sc, 32, lambda r: r.by_segment[ends, :, 1]), expected)
    assert expected[2, 0] / 0.3 > 2 * expected[2, 1] / 0.7  # the propensities tell apart


def test_a_failed_firm_waits_its_retry_months():
    """No peer term (q = 0), instant projects that succeed with probability s, a failure
    waiting `retry` months (r years) before the firm may decide again at hazard p: a firm
    adopts at its n-th try with probability s (1 - s)^(n - 1), after n exponential waits and
    n - 1 retry waits, so P(adopted by t) = sum_n s (1 - s)^(n-1) P(Gamma(n, p) <= t - (n-1) r).
    p = 0.8 a year, s = 0.4, 9 months: a retry counted in days instead of months, or not
    at all, is hundreds of standard errors away."""
    p, s, months = 0.8, 0.4, 9
    raw = bass_raw(FIRMS, years=5)
    raw["levels"]["device"].update(innovation=p, imitation=0.0, success=s, retry=months)
    sc = validate(raw)
    ends, t = _year_ends(sc)
    r = months / 12
    n = np.arange(1, 60)[:, None]
    left = np.maximum(t[None, :] - (n - 1) * r, 0.0)
    expected = FIRMS * (s * (1 - s) ** (n - 1) * gammainc(n, p * left)).sum(axis=0)
    runs = _exact_runs(sc, 33, lambda res: res.at_or_above[ends, 0])
    _within_4_se(runs, expected)
    no_wait = FIRMS * (1 - np.exp(-s * p * t))  # retrying at once: thinned Poisson, rate s p
    assert np.all(no_wait[:3] - expected[:3] > 2_000)  # the wait is what is being measured
