"""The reachability map (issue 12): what its colour shows when P(met) is flat, which two
axes it is drawn over (by sensitivity, or --axes), and the refusal of a key not varied."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_sweep import tiny_raw

from sim.cli.main import main
from sim.explore.design import Range, SweepError, check_axes, make_design
from sim.explore.reachability import choose_axes, reachability_map
from sim.explore.sensitivity import analyse, ranking
from sim.plots.adoption import png
from sim.plots.sweep import map_data, reachability_figure, smooth_points, sweep_figures
from sim.store.sweep_tables import read_points, read_sensitivity

KEYS = ("a", "b", "c", "d")
TARGET = 50_000


def manifest(keys=KEYS, design: str = "lhs") -> dict:
    """A sweep manifest as `sim sweep` writes it, over unit ranges."""
    return {"scenario": "synthetic", "design": design, "engine": "tau", "replications": 4,
            "precision": None, "ranges": [{"key": k, "lo": 0.0, "hi": 1.0, "log": False,
                                           "integer": False} for k in keys],
            "target": {"firms": TARGET, "level": "line", "deadline": "2028-12-31",
                       "count": "new"}}


def points_rows(x: np.ndarray, count: np.ndarray, p: np.ndarray, keys=KEYS) -> list[dict]:
    """points.csv rows as `read_points` returns them."""
    return [{**dict(zip(keys, row, strict=True)), "replications": 4.0, "p_met": pj,
             "p_met_lo": 0.0, "p_met_hi": 0.5, "count_mean": cj, "count_p05": 0.9 * cj,
             "count_p95": 1.1 * cj} for row, cj, pj in zip(x, count, p, strict=True)]


def sensitivity_rows(design: str, x: np.ndarray, count: np.ndarray, p: np.ndarray,
                     base: int = 0, keys=KEYS) -> list[dict]:
    """sensitivity.csv rows from the real estimators (no replication noise)."""
    outputs = {"count_at_deadline": (count, None), "P(met)": (p, None)}
    return [vars(ix) for ix in analyse(design, base, keys, x, outputs, resamples=50)]


def lhs(n: int = 60, seed: int = 3) -> np.ndarray:
    ranges = tuple(Range(k, 0.0, 1.0) for k in KEYS)
    return np.array(make_design("lhs", ranges, n, seed).points, dtype=float)


# ---------------------------------------------------------------------------------------------
# What the colour shows


def test_p_met_zero_everywhere_colours_the_mean_count():
    x = lhs()
    count = 10_000 + 30_000 * x[:, 2] + 15_000 * x[:, 0]  # c matters most, then a
    p = np.zeros(len(x))
    reach = reachability_map(manifest(), points_rows(x, count, p),
                             sensitivity_rows("lhs", x, count, p))
    assert reach.colour == "count"
    assert reach.state == "P(met) = 0 at every point"
    assert reach.keys == ("c", "a")
    # The colour data is the kernel-smoothed mean count over the chosen axes, not P(met).
    _, _, expect = smooth_points(x[:, 2], x[:, 0], count, np.full(len(x), 4.0))
    X, Y, z = reach.grid
    assert np.allclose(z, expect)
    assert count.min() <= z.min() < z.max() <= count.max()
    assert z.max() - z.min() > 20_000  # follows c and a across the map
    assert np.allclose(X[0], 0.0) and np.allclose(X[-1], 1.0)


def test_p_met_one_everywhere_and_p_below_every_contour_also_show_the_count():
    x = lhs()
    count = 60_000 + 20_000 * x[:, 1]
    ones = map_data(manifest()["ranges"], x, _columns(count, np.ones(len(x))), target=TARGET)
    assert ones.colour == "count" and ones.state == "P(met) = 1 at every point"
    low = 0.3 * x[:, 1]  # P(met) varies, but never reaches 0.5
    some = map_data(manifest()["ranges"], x, _columns(count, low), target=TARGET)
    assert some.colour == "count" and "no 0.5 or 0.9 contour" in some.state


def test_p_met_that_crosses_a_contour_is_what_the_colour_shows():
    x = lhs()
    p = np.clip(2 * x[:, 1] - 0.5, 0, 1)
    count = 40_000 + 20_000 * x[:, 1]
    reach = reachability_map(manifest(), points_rows(x, count, p),
                             sensitivity_rows("lhs", x, count, p))
    assert reach.colour == "p_met" and reach.state == ""
    assert reach.keys[0] == "b"
    y = x[:, KEYS.index(reach.keys[1])]
    assert np.allclose(reach.grid[2], smooth_points(x[:, 1], y, p, np.full(len(x), 4.0))[2])


def test_one_varied_parameter_plots_the_mean_count_and_its_band():
    x = np.linspace(0, 1, 7)[:, None]
    count = 10_000 + 20_000 * x[:, 0]
    reach = map_data(manifest(("a",))["ranges"], x, _columns(count, np.zeros(7)),
                     target=TARGET)
    assert reach.colour == "count" and reach.grid is None
    fig = reachability_figure(reach, title="t")
    (line,) = [ln for ln in fig.axes[0].lines if ln.get_label() == "mean count"]
    assert np.allclose(line.get_ydata(), count)
    assert png(fig)[:4] == b"\x89PNG"


def test_the_count_map_draws_with_the_target_contour_and_says_so(tmp_path):
    x = lhs()
    count = 30_000 + 40_000 * x[:, 0]  # crosses the target inside the map
    p = np.where(count > 69_000, 0.25, 0.0)  # a few points meet it now and then
    m = manifest()
    rows = points_rows(x, count, p)
    reach = reachability_map(m, rows, sensitivity_rows("lhs", x, count, p))
    assert reach.colour == "count" and reach.keys[0] == "a"
    (name, fig), *_ = sweep_figures(m, rows, [], {}, [], reach)
    subtitle = fig.axes[0].get_title()
    assert "colour shows the mean count at the deadline; target 50,000" in subtitle
    assert "axes: the two parameters with the strongest rank correlation with" in subtitle
    assert name == "reachability.png" and len(png(fig)) > 20_000


def _columns(count: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    return {"p_met": p, "p_met_lo": p, "p_met_hi": p, "replications": np.full(len(p), 4.0),
            "count_mean": count, "count_p05": 0.9 * count, "count_p95": 1.1 * count}


# ---------------------------------------------------------------------------------------------
# Which axes


def test_sobol_total_index_picks_the_parameters_that_matter():
    ranges = tuple(Range(k, 0.0, 1.0) for k in KEYS)
    design = make_design("sobol", ranges, 64, seed=11)
    x = np.array(design.points, dtype=float)
    count = 20_000 * x[:, 3] ** 2 + 5_000 * x[:, 1] + 100 * x[:, 0]  # d, then b; c inert
    p = np.zeros(len(x))
    sens = sensitivity_rows("sobol", x, count, p, base=design.base)
    assert ranking(sens, "P(met)") is None  # flat: nothing to rank by
    ranked, kind = ranking(sens, "count_at_deadline")
    order = [k for k, _ in ranked]
    assert kind == "total" and order[:2] == ["d", "b"] and order[-1] == "c"
    cols, note = choose_axes(KEYS, sens, "P(met)")
    assert cols == (3, 1)
    assert note.startswith("axes: the two parameters with the largest total Sobol index of "
                           f"the count ({ranked[0][1]:.2g}, {ranked[1][1]:.2g})")


def test_axes_fall_back_to_the_first_two_varied_and_obey_the_asked():
    x = lhs()
    count, p = 1_000 + 0 * x[:, 0], np.zeros(len(x))
    rows = points_rows(x, count, p)
    reach = reachability_map(manifest(), rows, [])
    assert reach.keys == ("a", "b") and "first two varied" in reach.axes_note
    reach = reachability_map(manifest(), rows, [], axes=("d", "a"))
    assert reach.keys == ("d", "a") and reach.axes_note == "axes: as asked (--axes)"
    two = reachability_map(manifest(("a", "b")), points_rows(x[:, :2], count, p, ("a", "b")),
                           [])
    assert two.keys == ("a", "b") and two.axes_note == ""


def test_ranking_uses_the_size_of_a_rank_correlation():
    rows = [{"output": "count_at_deadline", "parameter": k, "index": "spearman",
             "estimate": e} for k, e in (("a", 0.1), ("b", -0.9), ("c", float("nan")),
                                        ("d", 0.5))]
    ranked, kind = ranking(rows, "count_at_deadline")
    assert kind == "spearman" and [k for k, _ in ranked] == ["b", "d", "a", "c"]
    assert ranked[0] == ("b", -0.9)


@pytest.mark.parametrize("asked, words", [
    (("a", "zz"), "zz is not varied in this sweep (varied: a, b, c, d)"),
    (("x", "y"), "x, y are not varied"),
    (("a", "a"), "two different varied keys"),
])
def test_check_axes_refuses_in_one_line(asked, words):
    with pytest.raises(SweepError) as err:
        check_axes(KEYS, asked)
    assert len(err.value.lines) == 1 and words in err.value.lines[0]
    assert check_axes(KEYS, ("c", "a")) == (2, 0)
    with pytest.raises(SweepError, match="varies only a"):
        check_axes(("a",), ("a", "b"))


# ---------------------------------------------------------------------------------------------
# End to end: a sweep that never meets its target


AXES3 = ["--vary", "levels.line.imitation=0.2:1.5", "--vary",
         "resources.integrators.capacity=100:400", "--vary", "levels.line.innovation=0.01:0.2"]


@pytest.fixture
def unreachable(write_scenario):
    raw = tiny_raw()
    raw["target"]["firms"] = 3_000  # of 4,000 firms: never met by 2027
    return write_scenario(raw, "unreachable.toml")


def test_a_sweep_that_never_meets_its_target_maps_the_mean_count(unreachable, tmp_path,
                                                                 capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(unreachable), "--out", str(out), "--jobs", "1", "--samples", "8",
                 "--replications", "2", *AXES3]) == 0
    points = pd.read_csv(out / "points.csv")
    assert (points.p_met == 0).all() and points.count_mean.notna().all()
    manifest_ = json.loads((out / "manifest.json").read_text())
    assert "axes" not in manifest_
    reach = reachability_map(manifest_, read_points(out), read_sensitivity(out))
    assert reach.colour == "count"
    assert "rank correlation with the count" in reach.axes_note
    keys = list(manifest_["ranges"][i]["key"] for i in range(3))
    ux = points[reach.keys[0]].to_numpy(float)
    uy = points[reach.keys[1]].to_numpy(float)
    rx, ry = (manifest_["ranges"][keys.index(k)] for k in reach.keys)
    _, _, z = smooth_points((ux - rx["lo"]) / (rx["hi"] - rx["lo"]),
                            (uy - ry["lo"]) / (ry["hi"] - ry["lo"]),
                            points.count_mean.to_numpy(float), points.replications.to_numpy(float))
    assert np.allclose(reach.grid[2], z, rtol=1e-6)

    # --axes: a key that is not varied is refused in one line, exit 2, by plot and sweep.
    capsys.readouterr()
    assert main(["plot", str(out), "--axes", "levels.line.imitation,levels.line.success"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "levels.line.success is not varied" in err[0]
    fresh = tmp_path / "fresh"
    assert main(["sweep", str(unreachable), "--out", str(fresh), "--samples", "8",
                 "--axes", "levels.line.success,levels.line.imitation", *AXES3]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sim sweep: --axes") and not fresh.exists()
    assert main(["plot", str(out), "--axes", "levels.line.imitation"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1

    # Asked axes are drawn, kept in the manifest, and redrawn by `sim plot` without --axes.
    stamp = (out / "runs.jsonl").stat().st_mtime_ns
    asked = "levels.line.innovation,levels.line.imitation"
    assert main(["sweep", str(unreachable), "--out", str(out), "--jobs", "1", "--samples", "8",
                 "--replications", "2", "--axes", asked, *AXES3]) == 0
    assert (out / "runs.jsonl").stat().st_mtime_ns == stamp  # resumed: nothing ran again
    manifest_ = json.loads((out / "manifest.json").read_text())
    assert manifest_["axes"] == asked.split(",")
    assert main(["plot", str(out)]) == 0
