"""What a run reports by region and on entry and exit: summary.json's `by_region` (adding up
to the national count) and `population`, regions.csv (read by pandas as it is, equal to
`RunOutcome.regions`), regions.png and the report's "By region" section. Built on synthetic
replications, so no engine has to fill the regional arrays yet."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make

import sim
import sim.scenario
from sim.api.run import REGIONS_PNG, outcome_of, redraw_run
from sim.engines import RunResult
from sim.scenario import Region, Scenario
from sim.store import files

REGIONS = (Region("east", 0.5, quota=0.5), Region("centre", 0.3, quota=0.3),
           Region("west & <north>", 0.2))
SHARES = np.array([r.share for r in REGIONS])
PROFILE = np.array([1.0, 0.4, 0.1, 0.02])  # how many firms of a region are at each level
REPS = 4


def scenario(count: str = "new", regions: tuple[Region, ...] = REGIONS) -> Scenario:
    """The test scenario (20,000 firms, target 2,000 at line by 2027-12-31), one year shorter
    (24 month ends), with `regions` set."""
    sc = make({"target.count": count, "end": dt.date(2027, 12, 31)})
    return dataclasses.replace(sc, regions=regions)


def replication(sc: Scenario, rep: int, *, regional: bool = True, whole: bool = True
                ) -> RunResult:
    """A made-up replication whose regions add up to the national arrays: region j's
    stock grows linearly at a pace that depends on the replication."""
    months = len(sc.month_ends())
    k = sc.target.level_index - 1
    initial = np.outer(SHARES * 2_000, PROFILE)
    pace = np.array([120.0, 40.0, 20.0]) * (0.5 + 0.25 * rep)  # east fast, others slower
    t = np.arange(1, months + 1, dtype=float)[:, None, None]
    grown = t * pace[None, :, None] * PROFILE[None, None, :]
    at, up = initial[None] + grown, grown * 1.1
    if whole:
        initial, at, up = (np.round(a).astype(np.int64) for a in (initial, at, up))
    m = max(i for i, d in enumerate(sc.month_ends()) if d <= sc.target.deadline)
    count = {"new": at[m, :, k] - initial[:, k], "stock": at[m, :, k],
             "upgraded": up[m, :, k]}[sc.target.count].astype(float)
    extra = dict(region_at_or_above=at, region_upgraded=up, region_initial=initial,
                 region_count_at_deadline=count) if regional else {}
    return RunResult(at_or_above=at.sum(axis=1), by_segment=np.zeros((months, 2, 5)),
                     initial=initial.sum(axis=0), count_at_deadline=float(count.sum()),
                     crossing_time=None, met=bool(count.sum() >= sc.target.firms),
                     upgraded=up.sum(axis=1), spent=(0.0,), entered=100.0 + 10 * rep,
                     exited=50.0 + rep, exited_upgraded=float(rep), **extra)


def outcome(sc: Scenario | None = None, **kw) -> sim.RunOutcome:
    sc = sc or scenario()
    return outcome_of(sc, "des", {i: replication(sc, i, **kw) for i in range(REPS)})


# ---------------------------------------------------------------------------------------------
# summary.json


@pytest.mark.parametrize("count", ["new", "stock", "upgraded"])
def test_by_region_adds_up_to_the_national_count(count):
    out = outcome(scenario(count))
    by_region = out.summary["by_region"]
    assert [e["region"] for e in by_region] == ["east", "centre", "west & <north>"]
    assert [e["share"] for e in by_region] == [0.5, 0.3, 0.2]
    national = out.summary["count_at_deadline"]
    for e in by_region:
        assert set(e) == {"region", "share", "quota", "count_at_deadline", "quota_firms",
                          "quota_met"}
        assert set(e["count_at_deadline"]) == set(national) == {"mean", "p05", "p50", "p95"}
        c = e["count_at_deadline"]
        assert c["p05"] <= c["p50"] <= c["p95"]
    assert sum(e["count_at_deadline"]["mean"] for e in by_region) == pytest.approx(
        national["mean"], rel=1e-12)
    json.dumps(out.summary, allow_nan=False)  # what summary.json will hold


def test_quota_met_is_the_share_of_runs_reaching_the_quota():
    out = outcome()
    east, centre, west = out.summary["by_region"]
    # east (quota 1,000 firms) adds 0.4 x 120 x (0.5 + 0.25 rep) a month for 24 months:
    # 576, 864, 1,152, 1,440: met in the last two runs of four.
    assert east["quota"] == 0.5 and east["quota_firms"] == pytest.approx(1_000)
    counts = [r.region_count_at_deadline[0] for r in out.results.values()]
    assert sorted(counts) == pytest.approx([576, 864, 1152, 1440], abs=1)
    assert east["quota_met"] == 0.5
    assert centre["quota_firms"] == pytest.approx(600) and centre["quota_met"] == 0.0
    assert west["quota"] is None and west["quota_firms"] is None and west["quota_met"] is None


def test_population_totals_are_means_over_runs():
    pop = outcome().summary["population"]
    assert pop == {"firms_at_start": 20_000, "entered": 115.0, "exited": 51.5,
                   "exited_upgraded": 1.5, "firms_at_end": 20_000 + 115.0 - 51.5}


def test_without_regions_one_national_region_stands_for_the_whole():
    sc = scenario(regions=())
    out = outcome(sc, regional=False)
    (national,) = out.summary["by_region"]
    assert national == {"region": "national", "share": 1.0, "quota": None,
                        "count_at_deadline": out.summary["count_at_deadline"],
                        "quota_firms": None, "quota_met": None}
    pd.testing.assert_frame_equal(out.regions.drop(columns="region"), out.curves)
    assert set(out.regions.region) == {"national"}


# ---------------------------------------------------------------------------------------------
# regions.csv, regions.png, report.html


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[sim.RunOutcome, Path]:
    out = outcome()
    folder = tmp_path_factory.mktemp("regions") / "run"
    assert sim.write(out, folder) == folder
    return out, folder


def test_a_run_with_regions_writes_regions_csv_and_png(written):
    _out, folder = written
    assert sorted(p.name for p in folder.iterdir()) == [
        "adoption.png", "curves.csv", "regions.csv", "regions.png", "report.html",
        "scenario.toml", "summary.json"]


def test_regions_csv_reads_as_it_is_and_adds_up_to_curves(written):
    out, folder = written
    regions = pd.read_csv(folder / "regions.csv", parse_dates=["date"])
    assert list(regions.columns) == ["replication", "date", "region", "level", "at_or_above",
                                     "new_since_start", "upgraded"]
    assert len(regions) == REPS * 24 * len(REGIONS) * 4
    assert list(regions.region.unique()) == ["east", "centre", "west & <north>"]
    pd.testing.assert_frame_equal(regions, out.regions)
    keys = ["replication", "date", "level"]
    summed = regions.groupby(keys, sort=False)[["at_or_above", "new_since_start", "upgraded"]
                                               ].sum().reset_index()
    pd.testing.assert_frame_equal(summed, pd.read_csv(folder / "curves.csv",
                                                      parse_dates=["date"]))
    first = regions[regions.date == regions.date.min()]
    assert (first.new_since_start >= 0).all()
    # The regions' counts at the deadline are the summary's.
    line = regions[(regions.date == "2027-12-31") & (regions.level == "line")]
    means = line.groupby("region", sort=False).new_since_start.mean()
    summary = json.loads((folder / "summary.json").read_text())
    assert list(means) == pytest.approx([e["count_at_deadline"]["mean"]
                                         for e in summary["by_region"]])


def test_expected_counts_are_written_and_read_alike(tmp_path):
    """A mean-field run's counts are floats, written with three decimals; the frame has the
    file's values."""
    out = outcome(whole=False)
    folder = sim.write(out, tmp_path / "mf")
    pd.testing.assert_frame_equal(pd.read_csv(folder / "regions.csv", parse_dates=["date"]),
                                  out.regions)


def test_regions_png_is_drawn_and_not_blank(written):
    import matplotlib.image as mpimg

    _out, folder = written
    data = (folder / REGIONS_PNG).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(io.BytesIO(data), format="png")
    assert pixels.shape[0] > 500 and pixels.shape[1] > 800
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50, "a figure with lines, bands and bars, not a blank canvas"


def test_report_has_the_by_region_section_and_population(written):
    _out, folder = written
    text = (folder / "report.html").read_text(encoding="utf-8")
    assert "<h2>By region</h2>" in text and "<h2>Population</h2>" in text
    assert "west &amp; &lt;north&gt;" in text and "<north>" not in text
    assert "50% = 1,000 firms" in text  # east's quota
    assert "115 entered and 52 left" in text
    assert "regions.csv" in text.split("<footer>")[1]
    embedded = (folder / REGIONS_PNG).read_bytes()
    import base64

    assert base64.b64encode(embedded).decode("ascii") in text


@pytest.mark.slow
def test_chromium_renders_both_figures(written, tmp_path):
    from test_report import browse

    _out, folder = written
    dom = browse(folder / "report.html", tmp_path / "profile", "--dump-dom")
    assert 'data-images-loaded="2"' in dom and "<h2>By region</h2>" in dom


def test_a_run_with_regions_keeps_a_users_regions_files(tmp_path):
    """A folder holding the user's own regions.csv and regions.png (and no run) is refused
    to a run with regions, which would replace them (a second read found it did); a run
    without regions leaves them be (test_api)."""
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("regions.csv", "regions.png"):
        (folder / name).write_text("my own data", encoding="utf-8")
    with pytest.raises(sim.InputError, match="holds regions.csv, regions.png, not a run's"):
        sim.write(outcome(), folder)
    assert all((folder / n).read_text(encoding="utf-8") == "my own data"
               for n in ("regions.csv", "regions.png"))
    assert sorted(p.name for p in folder.iterdir()) == ["regions.csv", "regions.png"]


def test_a_run_without_regions_writes_neither(tmp_path):
    sc = scenario(regions=())
    out = outcome(sc, regional=False)
    folder = sim.write(out, tmp_path / "national")
    names = {p.name for p in folder.iterdir()}
    assert "regions.csv" not in names and "regions.png" not in names
    text = (folder / "report.html").read_text(encoding="utf-8")
    assert "By region" not in text and "<h2>Population</h2>" in text  # entry/exit made up
    out = outcome_of(sc, "des", {i: dataclasses.replace(r, entered=0.0, exited=0.0)
                                 for i, r in out.results.items()})
    text = (sim.write(out, tmp_path / "still") / "report.html").read_text(encoding="utf-8")
    assert "<h2>Population</h2>" not in text


def test_plot_redraws_regions_png(written, tmp_path, monkeypatch):
    out, folder = written
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in folder.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    (copy / REGIONS_PNG).unlink()
    # scenario.toml holds the test's Scenario without its regions (built in Python, not read
    # from a file): give redraw the Scenario itself.
    monkeypatch.setattr(sim.scenario, "validate", lambda raw, source="": out.scenario)
    drawn = redraw_run(copy)
    assert copy / REGIONS_PNG in drawn and (copy / REGIONS_PNG).stat().st_size > 10_000
    assert "<h2>By region</h2>" in (copy / "report.html").read_text(encoding="utf-8")


def test_read_run_regions_gives_the_arrays_back(written):
    out, folder = written
    dates, names, arrays = files.read_run_regions(folder / "regions.csv")
    assert names == ["east", "centre", "west & <north>"] and len(dates) == 24
    for i, res in out.results.items():
        np.testing.assert_array_equal(arrays[i], res.regional()[0])


# ---------------------------------------------------------------------------------------------
# End to end, one small run


def test_a_real_run_reports_one_national_region_and_no_population_change():
    out = sim.run(make({"end": dt.date(2027, 12, 31)}), engine="tau", replications=2, jobs=1)
    (national,) = out.summary["by_region"]
    assert national["region"] == "national"
    assert national["count_at_deadline"] == out.summary["count_at_deadline"]
    pop = out.summary["population"]
    assert pop["firms_at_start"] == 20_000
    assert pop["firms_at_end"] == pytest.approx(20_000 + pop["entered"] - pop["exited"])
    assert not math.isnan(pop["entered"])
