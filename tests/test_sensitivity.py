"""Sobol indices against the Ishigami function's closed form and scipy's estimators, the
replication-noise correction, rank correlations, and what a Sobol sweep writes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import sobol_indices as scipy_sobol
from test_sweep import tiny_raw

from sim.cli.main import main
from sim.explore.design import Range, make_design
from sim.explore.sensitivity import analyse, point_noise, rank_correlations, sobol_estimates

A, B = 7.0, 0.1
PI = math.pi
# Ishigami (1990): f = sin x1 + a sin^2 x2 + b x3^4 sin x1 on [-pi, pi]^3, known variances.
V1 = 0.5 * (1 + B * PI**4 / 5) ** 2
V2 = A**2 / 8
V13 = B**2 * PI**8 * (1 / 18 - 1 / 50)
VAR = A**2 / 8 + B * PI**4 / 5 + B**2 * PI**8 / 18 + 0.5
FIRST = [V1 / VAR, V2 / VAR, 0.0]
TOTAL = [(V1 + V13) / VAR, V2 / VAR, V13 / VAR]
PARAMS = ["x1", "x2", "x3"]


def ishigami(x: np.ndarray) -> np.ndarray:
    return np.sin(x[:, 0]) + A * np.sin(x[:, 1]) ** 2 + B * x[:, 2] ** 4 * np.sin(x[:, 0])


def ishigami_design(base: int = 4096):
    ranges = tuple(Range(k, -PI, PI) for k in PARAMS)
    design = make_design("sobol", ranges, base, seed=11)
    x = np.array(design.points)
    return design, x, ishigami(x)


def blocks(y: np.ndarray, base: int, d: int = 3):
    return y[:base], y[base:2 * base], y[2 * base:].reshape(d, base)


def by(rows, index):
    return {r.parameter: r for r in rows if r.index == index}


def se(row) -> float:
    """Standard error read back from a 95% percentile interval."""
    return (row.hi - row.lo) / (2 * 1.959964)


def test_plain_estimators_are_scipys():
    design, _x, y = ishigami_design(256)
    f_a, f_b, f_ab = blocks(y, design.base)
    first, total, share = sobol_estimates(f_a, f_b, f_ab)
    ref = scipy_sobol(func={"f_A": f_a[None], "f_B": f_b[None], "f_AB": f_ab[:, None]},
                      n=design.base)
    assert first == pytest.approx(np.ravel(ref.first_order), abs=1e-12)
    assert total == pytest.approx(np.ravel(ref.total_order), abs=1e-12)
    assert share == 0.0


def test_ishigami_indices_match_the_closed_form_within_their_standard_errors():
    design, x, y = ishigami_design()
    rows = analyse("sobol", design.base, PARAMS, x, {"y": (y, None)}, seed=3, resamples=300)
    for index, truth in (("first", FIRST), ("total", TOTAL)):
        got = by(rows, index)
        for name, t in zip(PARAMS, truth, strict=True):
            assert abs(got[name].estimate - t) <= 4 * se(got[name]), (index, name)
            assert got[name].lo <= got[name].estimate <= got[name].hi


def test_bootstrap_intervals_are_never_narrower_than_the_spread_over_designs():
    """The intervals are judged by themselves above; here against independent truth: the
    spread of each index over 30 independently scrambled Sobol designs. The bootstrap
    resamples the base rows as if they were independent draws, so for a Sobol design it
    can only be conservative (measured: 3-6x the spread on Ishigami at base 1,024); an
    interval narrower than the spread would claim precision the estimate lacks. Each
    bootstrap SE (mean over the designs) must reach the 99.9% lower confidence bound of the
    spread's standard deviation (chi-square, 29 degrees of freedom)."""
    from scipy.stats import chi2

    designs = 30
    est: dict[tuple[str, str], list[float]] = {}
    boot: dict[tuple[str, str], list[float]] = {}
    for seed in range(designs):
        design = make_design("sobol", tuple(Range(k, -PI, PI) for k in PARAMS), 1024,
                             seed=100 + seed)
        x = np.array(design.points)
        for row in analyse("sobol", design.base, PARAMS, x, {"y": (ishigami(x), None)},
                           seed=3, resamples=300):
            est.setdefault((row.index, row.parameter), []).append(row.estimate)
            boot.setdefault((row.index, row.parameter), []).append(se(row))
    lower = math.sqrt((designs - 1) / chi2.ppf(0.999, designs - 1))
    assert len(est) == 6  # first and total of three parameters
    for key, values in est.items():
        spread = float(np.std(values, ddof=1))
        assert np.mean(boot[key]) >= lower * spread, (key, np.mean(boot[key]), spread)


def test_replication_noise_is_separated_from_parameter_variance():
    # Each point's mean carries noise of known variance 4 (as from finite replications).
    design, x, y = ishigami_design()
    noise_var = 4.0
    noisy = y + np.random.default_rng(5).normal(0.0, math.sqrt(noise_var), len(y))
    known = np.full(len(y), noise_var)
    rows = analyse("sobol", design.base, PARAMS, x, {"y": (noisy, known)}, seed=3,
                   resamples=300)
    share = by(rows, "noise_share")["replication noise"]
    expect = noise_var / (VAR + noise_var)
    assert abs(share.estimate - expect) <= 4 * se(share)
    total = by(rows, "total")
    for name, t in zip(PARAMS, TOTAL, strict=True):
        assert abs(total[name].estimate - t) <= 4 * se(total[name]), name
    # Without the correction the noise would pass for an effect of every parameter.
    raw = by(analyse("sobol", design.base, PARAMS, x, {"y": (noisy, None)}, seed=3,
                     resamples=300), "total")
    assert raw["x3"].estimate > TOTAL[2] + 4 * se(raw["x3"])


def test_rank_correlations_find_the_monotone_driver():
    rng = np.random.default_rng(2)
    x = rng.random((200, 2))
    y = np.exp(3 * x[:, 0]) + rng.normal(0, 0.1, 200)
    rows = {r.parameter: r for r in rank_correlations(x, y, ["driver", "idle"], "y",
                                                      resamples=300)}
    assert rows["driver"].estimate > 0.95
    # An unrelated parameter: |rho| within 4 standard errors (1/sqrt(n-1)) of zero.
    assert abs(rows["idle"].estimate) < 4 / math.sqrt(199)


def test_point_noise_formulas():
    n = np.array([10.0, 1.0])
    var = np.array([4.0, 4.0])
    p = np.array([0.3, 0.3])
    assert point_noise("count", n, var, p)[0] == pytest.approx(0.4)
    assert point_noise("p", n, var, p)[0] == pytest.approx(0.3 * 0.7 / 9)
    assert np.isnan(point_noise("p", n, var, p)[1])


def test_sobol_sweep_writes_indices_and_the_chart(write_scenario, tmp_path):
    raw = tiny_raw()
    raw["target"]["firms"] = 25
    path = write_scenario(raw, "tiny.toml")
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--design", "sobol", "--samples", "4", "--replications",
                 "3", "--jobs", "1", "--out", str(out)]) == 0
    sens = pd.read_csv(out / "sensitivity.csv")
    assert list(sens.columns) == ["output", "parameter", "index", "estimate", "lo", "hi"]
    assert set(sens.output) == {"count_at_deadline", "P(met)"}
    assert set(sens["index"]) == {"first", "total", "noise_share"}
    counted = sens[(sens.output == "count_at_deadline") & (sens["index"] != "noise_share")]
    assert len(counted) == 4 and counted.estimate.notna().all()
    assert len(pd.read_csv(out / "points.csv")) == 4 * (2 + 2)
    assert (out / "sensitivity.png").stat().st_size > 20_000
