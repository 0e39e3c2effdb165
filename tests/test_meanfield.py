"""The mean-field engine against independent mathematics and against the exact engine.

Theory: as the population N grows, the share of firms in each cell of the stochastic model
converges to the solution of the mean-field ODE, with fluctuations of order 1/sqrt(N)
(Kurtz 1970). So (1) with exact ingredients the DES mean equals the mean field within its
standard error, (2) the typical gap falls like N^-1/2, and (3) both reproduce the Bass curve.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from cases import bass_raw, bass_share, binding_raw, four_level_raw
from conftest import base_raw
from scipy import stats

from sim.engines import des_jit
from sim.engines.des import simulate
from sim.engines.meanfield import _MeanField, erlang_stages, solve
from sim.execution.runner import replication_rng
from sim.scenario import validate


def _year_ends(sc) -> np.ndarray:
    return np.arange(11, len(sc.month_ends()), 12)


def test_bass_closed_form_mean_field():
    """One level, instant projects, w = 0: the mean field is the Bass curve (to ODE tolerance,
    rtol 1e-6, so 1e-4 relative is a loose bound on numerical error only)."""
    firms = 100_000
    sc = validate(bass_raw(firms, years=5))
    months = np.array([sc.years(d, end_of_day=True) for d in sc.month_ends()])
    mf = solve(sc).at_or_above[:, 0]
    expected = firms * bass_share(months, 0.03, 0.38)
    assert np.max(np.abs(mf - expected) / expected) < 1e-4


def test_the_solver_reads_no_memory_it_did_not_write(monkeypatch):
    """scipy's BDF allocates its differences with np.empty and subtracts an unwritten row on
    its first step: a NaN left in that memory gave 'invalid value encountered in subtract'
    now and then (once in five CI runs of this suite). With np.empty made to hand out
    signalling NaNs, the solve must raise no RuntimeWarning and give the same curves."""
    import warnings

    import scipy.integrate._ivp.bdf as bdf

    sc = validate(base_raw())
    plain = solve(sc).at_or_above

    class Poisoned:  # numpy as bdf.py sees it, but for np.empty
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def empty(shape, dtype=float, **kwargs):  # a signalling NaN, as stale memory may be
            return np.full(shape, 0x7FF0000000000001, dtype=np.uint64).view(np.float64)

    monkeypatch.setattr(bdf, "np", Poisoned())
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        again = solve(sc).at_or_above
    assert np.array_equal(again, plain)


@pytest.mark.slow
def test_des_mean_matches_mean_field_four_levels():
    """200,000 firms, 16 replications: the DES mean is within 4 standard errors of the mean
    field at every year end and level (O(1) finite-N terms are far below the SE)."""
    firms, reps = 200_000, 16
    sc = validate(four_level_raw(firms))
    mf = solve(sc).at_or_above
    runs = np.array([simulate(sc, replication_rng(21, i)).at_or_above for i in range(reps)],
                    dtype=float)
    ye = _year_ends(sc)
    mean, se = runs[:, ye].mean(axis=0), runs[:, ye].std(axis=0, ddof=1) / math.sqrt(reps)
    new = mf[ye] - mf[0]
    assert np.all(new[-1] > 1000), "every level must move, or the comparison is vacuous"
    z = (mean - mf[ye]) / se
    assert np.all(np.abs(z) < 4), f"z-scores per year end x level:\n{np.round(z, 2)}"


@pytest.mark.slow
def test_gap_shrinks_like_one_over_root_n():
    """RMS gap between a DES run's shares and the mean-field shares at 10^4, 10^5, 10^6
    firms: log-log slope -1/2 within 4 of its standard errors (delta method on the mean
    squared gap per population, propagated through the least-squares slope). The compiled
    exact engine (the same law as the simpy one) affords 24 runs at 10^6 firms, so each
    population's mean has 23 degrees of freedom or more and 4 SE is a true 4-sigma bound
    (with 4 runs, 3 degrees of freedom made it a 3% one)."""
    sizes = [10_000, 100_000, 1_000_000]
    reps = {10_000: 40, 100_000: 24, 1_000_000: 24}
    log_n, log_rms, var_log_rms = [], [], []
    for n in sizes:
        sc = validate(four_level_raw(n, years=3))
        ye = _year_ends(sc)
        mf = solve(sc).at_or_above[ye] / n
        ms = np.array([np.mean((des_jit.simulate(sc, replication_rng(5, i)).at_or_above[ye] / n
                                - mf) ** 2) for i in range(reps[n])])
        mean_ms = ms.mean()
        se_ms = ms.std(ddof=1) / math.sqrt(len(ms))
        log_n.append(math.log(n))
        log_rms.append(0.5 * math.log(mean_ms))
        var_log_rms.append((0.5 * se_ms / mean_ms) ** 2)
    x = np.array(log_n) - np.mean(log_n)
    slope = float(np.sum(x * np.array(log_rms)) / np.sum(x * x))
    se_slope = math.sqrt(float(np.sum(x * x * np.array(var_log_rms))) / float(np.sum(x * x)) ** 2)
    assert se_slope < 0.05, f"slope SE {se_slope:.3f}: too few replications to tell"
    assert abs(slope + 0.5) < 4 * se_slope, f"slope {slope:.3f} +- {se_slope:.3f}"


def test_phase_type_fit_matches_lognormal_moments():
    """The stage fit keeps mean and variance of the lognormal (checked against scipy.stats)."""
    for median, sigma in [(6, 0.5), (24, 0.6), (9, 0.3)]:
        n, rate, skip = erlang_stages(median, sigma)
        mean = ((1 - skip) * n + skip * (n - 1)) / rate
        second = ((1 - skip) * n * (n + 1) + skip * (n - 1) * n) / rate**2
        ln = stats.lognorm(s=sigma, scale=median / 12)
        assert mean == pytest.approx(ln.mean(), rel=1e-12)
        assert second - mean**2 == pytest.approx(ln.var(), rel=1e-9)


def _ks(median: float, sigma: float) -> float:
    """Largest gap between the lognormal CDF and its phase-type stand-in."""
    n, rate, skip = erlang_stages(median, sigma)
    t = np.linspace(0, 20 * median / 12, 20001)
    fitted = (1 - skip) * stats.gamma.cdf(t, a=n, scale=1 / rate)
    if n > 1:
        fitted += skip * stats.gamma.cdf(t, a=n - 1, scale=1 / rate)
    return float(np.max(np.abs(stats.lognorm.cdf(t, s=sigma, scale=median / 12) - fitted)))


class _Recorded(_MeanField):
    """The mean field, keeping the full ODE state at every month end it reports."""

    def run(self):
        self.states = []
        return super().run()

    def exact_by_segment(self, y, t=0.0):  # called once per month end, with its state
        self.states.append(y.copy())
        return super().exact_by_segment(y, t)

    def in_flight(self, months: np.ndarray) -> np.ndarray:
        """(months, 4) expected projects of each level running at each month end: the mass
        in that level's running stages (queued projects have not started)."""
        curves = np.array([self.at_or_above(y[:, None])[:, 0] for y in self.states])
        flight = np.array([[y[self.o_run[k]:self.o_run[k] + len(self.lanes.by_level[k])
                              * self.stages[k]].sum() for k in range(1, 5)]
                           for y in self.states])
        # A month end on a restart is reported twice (same state): keep one per month.
        rows = [int(np.argmin(np.abs(curves - m).sum(axis=1))) for m in months]
        assert np.allclose(curves[rows], months, rtol=1e-9, atol=1e-6)
        return flight[rows]


@pytest.mark.slow
def test_des_and_mean_field_agree_with_binding_resources_and_lognormal_times():
    """Binding integrators and compute, lognormal times, retries, a budgeted policy and a
    compute shock. Tolerance per level k and year end t: 4 SE of the DES mean plus the
    phase-type approximation's bound.

    Bound: completions by t are C(t) = int S(u) F(t-u) du (S the start rate, F the duration
    CDF), so replacing F by a CDF within KS of it moves C(t) by at most KS x (projects started
    by t) = KS x (C(t) + in flight at t). Adopters gained are successes, s C(t), so they move
    by at most KS x (new adopters + s x in flight), each term the level's own: new adopters
    and in-flight projects from the mean-field state. (The former allowance used 10% of the
    integrator capacity as every level's in-flight count, 60 projects: more than the factory
    and ecosystem levels ever gain.) The fluid queue's O(1/kappa) lag (hours) is negligible.

    SE: from the replications, floored at the Poisson value sqrt(new / R). A rare level's
    gain is a count of rare, nearly independent successes, variance ~ its mean; with 0.2
    expected ecosystem adopters all 12 runs often show 0 and the sample SE is 0."""
    sc = validate(binding_raw())
    reps = 12
    mfe = _Recorded(sc)
    mf = mfe.run().at_or_above
    runs = np.array([simulate(sc, replication_rng(13, i)).at_or_above for i in range(reps)],
                    dtype=float)
    ye = _year_ends(sc)
    new = mf[ye] - mf[0]
    flight = mfe.in_flight(mf)[ye]
    mean = runs[:, ye].mean(axis=0)
    se = np.sqrt(np.maximum(runs[:, ye].var(axis=0, ddof=1), new) / reps)
    ks = np.array([_ks(lv.implementation_median, lv.implementation_sigma) for lv in sc.levels])
    success = np.array([lv.success for lv in sc.levels])
    allowance = ks * (new + success * flight)
    # Each level's in-flight allowance is narrower than the gain it checks.
    assert np.all(ks * success * flight < new[-1]), (ks * success * flight, new[-1])
    gap = np.abs(mean - mf[ye])
    assert np.all(gap <= 4 * se + allowance), (
        f"gap\n{gap.round(1)}\n4 SE\n{(4 * se).round(1)}\nallowance\n{allowance.round(1)}")
    # The resources did bind in the DES, so the fluid queue was exercised.
    assert simulate(sc, replication_rng(13, 0)).events["max_waiting"] > 100


def test_mean_field_run_writes_the_same_files(tmp_path, write_scenario, capsys):
    from sim.cli.main import main

    path = write_scenario(base_raw())
    out = tmp_path / "mf"
    assert main(["run", str(path), "--engine", "meanfield", "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert "in the mean field" in line
    import json

    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "meanfield" and summary["replications"] == 1
    assert summary["p_met"] in (0.0, 1.0)
    assert sorted(p.name for p in out.iterdir()) == ["adoption.png", "curves.csv", "report.html",
                                                     "scenario.toml", "summary.json"]
