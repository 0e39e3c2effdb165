"""The hindcast: it starts from the earliest observed tier stocks, shares the baseline's level
parameters, and is compared with the later observed tier counts themselves
(series/smart-factories-by-tier.csv), not with docs/calibration.md, which the same code writes."""

from __future__ import annotations

import csv
import datetime as dt

import numpy as np
import pytest
from conftest import ROOT

from sim.engines.population import layout
from sim.execution.runner import run_replications
from sim.scenario import LEVELS, load

SERIES = ROOT.parent / "shared" / "data" / "series" / "smart-factories-by-tier.csv"
TIERS = {"basic": "device", "advanced": "line", "excellence": "factory", "leading": "ecosystem"}
needs_data = pytest.mark.skipif(not SERIES.is_file(), reason="../shared/data is not beside the "
                                "checkout")


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


@needs_data
def test_hindcast_starts_from_the_earliest_observed_stocks_and_ends_at_the_latest():
    sc = load(ROOT / "scenarios" / "hindcast.toml")
    obs = observed()
    first, last = min(obs), max(obs)
    assert sc.start == first and sc.end >= last and sc.end.month == last.month
    start_stock = layout(sc).at_or_above()
    assert np.array_equal(start_stock, obs[first]), (start_stock, obs[first])


@needs_data
@pytest.mark.slow
def test_hindcast_falls_short_of_every_observed_rise():
    """Run the hindcast's 200 replications and compare each later observation with the
    model's counts. What can honestly be asserted: (1) the runs conserve firms and never lose
    an adopter; (2) the model does move (it is not the start stock carried forward); (3) the
    direction of the miss, from the data: every observed count lies above the model's band.
    docs/calibration.md reads the hindcast this way ("the model falls short of every observed
    rise": no pipeline at the start, certification backlogs); if this stops holding, that
    reading must be rewritten.

    Tolerance for (3), distribution-free: each observation must exceed the largest of the R
    runs' counts at the month end on or after its date (counts never fall, so this bounds
    the count on the date with no interpolation). If the band's top, the 95th percentile,
    were at or above the observation, all R runs would fall below it with probability at
    most 0.95^R = 3.5e-5 for R = 200 (about a 4-sigma event)."""
    sc = load(ROOT / "scenarios" / "hindcast.toml")
    runs = run_replications(sc, range(sc.replications), seed=sc.seed, jobs=1)
    assert len(runs) == 200 and 0.95 ** len(runs) < 1e-4
    curves = np.stack([runs[i].at_or_above for i in sorted(runs)]).astype(float)
    sizes = np.array(layout(sc).segment_sizes)
    for r in runs.values():
        assert np.all(r.by_segment.sum(axis=2) == sizes[None, :])
        assert np.all(np.diff(r.at_or_above, axis=0) >= 0)
    initial = runs[0].initial.astype(float)
    month_ends = sc.month_ends()
    compared = 0
    for date, counts in sorted(observed().items()):
        if date <= sc.start:
            continue
        m = next(i for i, d in enumerate(month_ends) if d >= date)
        top = curves[:, m].max(axis=0)
        assert np.all(curves[:, m, :2].min(axis=0) > initial[:2]), "the model must move"
        for k, level in enumerate(LEVELS):
            assert counts[k] > top[k], (
                f"{date} {level}: observed {counts[k]:,.0f} within the model's runs "
                f"(largest {top[k]:,.0f}): the hindcast no longer falls short there")
            compared += 1
    assert compared == 8
