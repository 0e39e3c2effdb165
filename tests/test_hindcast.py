"""The hindcast: it starts from the earliest observed tier stocks, shares the baseline's level
parameters, and is compared with the later observed tier counts themselves
(series/smart-factories-by-tier.csv), not with docs/calibration.md, which the same code writes."""

from __future__ import annotations

import csv
import datetime as dt
import os

import numpy as np
import pytest
from conftest import ROOT

from sim.engines.population import layout
from sim.execution.runner import run_replications
from sim.scenario import LEVELS, load, validate

SERIES = ROOT / "data" / "series" / "smart-factories-by-tier.csv"  # copy of ../shared's
SHARED = ROOT.parent / "shared" / "data" / "series"
TIERS = {"basic": "device", "advanced": "line", "excellence": "factory", "leading": "ecosystem"}


@pytest.mark.skipif(not SHARED.is_dir() and not os.environ.get("CI"),
                    reason="../shared/data is not beside the checkout")
def test_the_copied_series_equal_the_shared_ones():
    """data/series/ is a copy of ../shared/data/series/ (so a clone alone can run the
    hindcast); CI has ../shared beside the checkout, where a drift or a missing copy fails."""
    shared = sorted(path.name for path in SHARED.glob("*.csv"))
    copies = sorted(path.name for path in SERIES.parent.glob("*.csv"))
    assert shared, f"{SHARED} holds no series"
    assert copies == shared, "data/series/ and ../shared's series differ in their files"
    for name in copies:
        assert (SERIES.parent / name).read_bytes() == (SHARED / name).read_bytes(), name


def observed() -> dict[dt.date, np.ndarray]:
    """Firms at or above each level at each tier date (tiers read as exclusive levels)."""
    exact: dict[dt.date, dict[str, float]] = {}
    with open(SERIES, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            exact.setdefault(dt.date.fromisoformat(row["date"]), {})[TIERS[row["tier"]]] = \
                float(row["cumulative"])
    return {d: np.cumsum([v.get(lv, 0.0) for lv in LEVELS][::-1])[::-1]
            for d, v in exact.items()}


def test_hindcast_shares_the_baseline_level_parameters():
    hind, base = load(ROOT / "scenarios" / "hindcast.toml"), load(ROOT / "scenarios" /
                                                                  "baseline.toml")
    assert hind.levels == base.levels
    assert [(s.name, s.share, s.propensity) for s in hind.segments] == \
        [(s.name, s.share, s.propensity) for s in base.segments]


def test_hindcast_starts_from_the_earliest_observed_stocks_and_ends_at_the_latest():
    sc = load(ROOT / "scenarios" / "hindcast.toml")
    obs = observed()
    first, last = min(obs), max(obs)
    assert sc.start == first and sc.end >= last and sc.end.month == last.month
    start_stock = layout(sc).at_or_above()
    assert np.array_equal(start_stock, obs[first]), (start_stock, obs[first])


def _runs_and_band(sc):
    runs = run_replications(sc, range(sc.replications), seed=sc.seed, jobs=1)
    return runs, np.stack([runs[i].at_or_above for i in sorted(runs)]).astype(float)


def _on(sc, curves: np.ndarray, date: dt.date) -> np.ndarray:
    """Each run's counts on `date`, interpolated linearly between the month ends around it."""
    ends = sc.month_ends()
    m = next(i for i, d in enumerate(ends) if d >= date)
    assert m >= 1, "a date in the first month has no month end before it"
    w = (date - ends[m - 1]).days / (ends[m] - ends[m - 1]).days
    return (1 - w) * curves[:, m - 1] + w * curves[:, m]


@pytest.mark.slow
def test_hindcast_ends_inside_the_observed_band_except_the_annual_factory_list():
    """Run the hindcast's 200 replications, with the projects under way at its start
    (`population.in_flight`, derived by Little's law). (1) The runs conserve firms and never
    lose an adopter. (2) At the last observation (2026-01-21) the model's 5-95% band meets the
    observed band at device, line and ecosystem level: the range of the two latest published
    counts (2025-11-28 and 2026-01-21), which differ by reporting lags and rounding. (3) The
    factory level still falls short, every run below the observed count: the excellence tier
    is an annual national list (274 certified in one 2025 batch), not a steady flow; a miss
    of that direction that stops holding must be re-read in docs/calibration.md.

    Tolerance for (3), distribution-free: the observation must exceed the largest of the R
    runs; were the band's top at or above it, all R runs would fall below it with probability
    at most 0.95^R = 3.5e-5 for R = 200."""
    sc = load(ROOT / "scenarios" / "hindcast.toml")
    assert sum(sc.in_flight) > 0
    runs, curves = _runs_and_band(sc)
    assert len(runs) == 200 and 0.95 ** len(runs) < 1e-4
    sizes = np.array(layout(sc).segment_sizes)
    for r in runs.values():
        assert np.all(r.by_segment.sum(axis=2) == sizes[None, :])
        assert np.all(np.diff(r.at_or_above, axis=0) >= 0)
    obs = observed()
    late = sorted(d for d in obs if d > sc.start)[-2:]
    lo = np.minimum(obs[late[0]], obs[late[1]])
    hi = np.maximum(obs[late[0]], obs[late[1]])
    model = _on(sc, curves, late[1])
    m05, m95 = np.quantile(model, 0.05, axis=0), np.quantile(model, 0.95, axis=0)
    for k, level in enumerate(LEVELS):
        if level == "factory":
            assert obs[late[1]][k] > model[:, k].max(), (level, model[:, k].max())
        else:
            assert m95[k] >= lo[k] and m05[k] <= hi[k], (
                f"{level}: model 5-95% [{m05[k]:,.0f}, {m95[k]:,.0f}] outside the observed "
                f"band [{lo[k]:,.0f}, {hi[k]:,.0f}]")


@pytest.mark.slow
def test_without_projects_under_way_the_hindcast_falls_short_everywhere():
    """The same hindcast with no projects under way at the start (the model before
    `in_flight`): every observed count of the last date lies above every run, which is why
    the pipeline is needed (same distribution-free bound as above, 40 runs: 0.95^40 = 0.13
    per level would be weak, so the margin is checked instead: the observed rise is more
    than twice the largest modelled rise at line level)."""
    raw = dict(load(ROOT / "scenarios" / "hindcast.toml").raw)
    raw["population"] = {**raw["population"], "in_flight": {}}
    raw["replications"] = 40
    sc = validate(raw, source="hindcast without in_flight")
    _runs, curves = _runs_and_band(sc)
    obs = observed()
    last = max(obs)
    model = _on(sc, curves, last)
    start = obs[sc.start]
    assert np.all(obs[last] > model.max(axis=0))
    assert obs[last][1] - start[1] > 2 * (model[:, 1].max() - start[1])
