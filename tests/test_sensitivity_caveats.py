"""Sensitivity figures are shown within the range they can take, and an output whose indices
cannot be read is flagged in the report and the figure: a noise share reaching 100% (the
parameters' effect cannot be told from replication noise), and Sobol estimates that
contradict each other (too few base samples). sensitivity.csv keeps the raw estimates."""

from __future__ import annotations

import html as markup
import math

import numpy as np
import pytest
from test_sensitivity import PARAMS, ishigami_design

from sim.explore.design import Range, make_design
from sim.explore.sensitivity import analyse
from sim.plots.sweep import sensitivity_figure
from sim.store.report import sweep_report

CAPACITY, INNOVATION = "resources.integrators.capacity", "levels.line.innovation"


def row(output: str, parameter: str, index: str, estimate: float, lo: float, hi: float
        ) -> dict[str, str]:
    """A sensitivity.csv row as the report reads it (text)."""
    return {"output": output, "parameter": parameter, "index": index,
            "estimate": repr(estimate), "lo": repr(lo), "hi": repr(hi)}


# The audit's two sweeps (sensitivity.csv as written): a flat LHS sweep of 16 points x 10
# runs, and a Sobol sweep of 16 base rows x 10 runs.
FLAT = [row("count_at_deadline", CAPACITY, "spearman", 0.401766, -0.112412, 0.776769),
        row("count_at_deadline", "replication noise", "noise_share", 0.829253, 0.507139,
            2.100764),
        row("P(met)", CAPACITY, "spearman", 0.414042, -0.192333, 0.779543),
        row("P(met)", "replication noise", "noise_share", 1.957672, 1.198219, 4.863412)]
SOBOL = [row("count_at_deadline", INNOVATION, "first", 0.816206, 0.423137, 1.320381),
         row("count_at_deadline", INNOVATION, "total", 0.615211, 0.333133, 1.04134),
         row("count_at_deadline", CAPACITY, "first", 0.300531, -0.080643, 0.817526),
         row("count_at_deadline", CAPACITY, "total", 0.570903, 0.00896, 1.114885),
         row("count_at_deadline", "replication noise", "noise_share", 0.000884, 0.000631,
             0.001317),
         row("P(met)", INNOVATION, "first", 0.892502, 0.259242, 1.56044),
         row("P(met)", INNOVATION, "total", 0.872185, 0.369958, 1.402475),
         row("P(met)", CAPACITY, "first", -0.084861, -0.377522, 0.216826),
         row("P(met)", CAPACITY, "total", 0.377161, 0.007297, 0.979682),
         row("P(met)", "replication noise", "noise_share", 0.016917, 0.002994, 0.042788)]


def report(rows: list[dict[str, str]], keys: list[str], design: str) -> str:
    manifest = {"design": design, "samples": 16, "replications": 10, "engine": "tau",
                "scenario": "baseline", "base_samples": 16 if design == "sobol" else None,
                "target": {"firms": 18400, "level": "line", "count": "new",
                           "deadline": "2030-12-31"},
                "ranges": [{"key": k, "lo": 0.0, "hi": 1.0, "log": False} for k in keys]}
    points = [{**{k: "0.5" for k in keys}, "p_met": "0.3", "p_met_lo": "0.1",
               "p_met_hi": "0.6", "count_mean": "18000", "count_p05": "17000",
               "count_p95": "19000", "replications": "10", "failed": "0"}]
    html = sweep_report(manifest, points, rows, [], {})
    start = html.index("<h2>Sensitivity</h2>")
    return markup.unescape(html[start:html.index("</section>", start)])


def panel(rows: list[dict[str, str]], output: str, **kw):
    """The figure's panel of `output`, drawn from the rows as `read_sensitivity` gives them."""
    numbers = [{**r, **{c: float(r[c]) for c in ("estimate", "lo", "hi")}} for r in rows]
    fig = sensitivity_figure(numbers, title="t", **kw)
    return next(ax for ax in fig.axes if ax.get_title(loc="left").startswith(output))


def test_a_noise_share_past_100_percent_is_capped_and_its_output_flagged_in_the_report():
    html = report(FLAT, [CAPACITY], "lhs")
    assert "196%" not in html and "1.96" not in html and "486" not in html
    assert "≥ 100%" in html
    assert ("P(met): replication noise is ≥ 100% of the variance across points (so is its 95% "
            "interval): the swept parameters' effect cannot be told from noise, and the rank "
            "correlations are unreliable; more replications per point are needed "
            "(--replications, now 10, or --precision).") in html
    # The count's share, 83% [51%, 210%], has an interval reaching 100%: flagged too, capped.
    assert "83% of the variance across points [51%, 100%]" in html and "210%" not in html
    # Each correlation row is marked, not presented as a normal finding.
    spearman = [tr for tr in html.split("<tr>") if "spearman" in tr]
    assert len(spearman) == 2 and all("unreliable" in tr for tr in spearman)


def test_a_noise_share_past_100_percent_is_capped_and_its_output_flagged_in_the_figure():
    ax = panel(FLAT, "P(met)")
    assert "≥ 100%" in ax.get_xlabel() and "196%" not in ax.get_xlabel()
    assert "UNRELIABLE" in ax.get_title(loc="left")
    assert "cannot be told from replication noise" in ax.get_title(loc="left")
    assert all(bar.get_alpha() < 1 for bar in ax.patches)  # faded


def test_inconsistent_sobol_estimates_are_clipped_and_flagged_in_the_report():
    html = report(SOBOL, [INNOVATION, CAPACITY], "sobol")
    for raw in ("1.32", "1.56", "1.04", "1.11", "1.4", "-0.0806", "-0.378", "-0.0849</td>"):
        assert raw not in html, raw
    assert "[0.423, 1]" in html and "≤ 0" in html
    assert ("count_at_deadline: the Sobol indices are inconsistent, by more than 0.05 "
            "(levels.line.innovation: first-order 0.816 > total 0.615; the first-order "
            "indices sum to 1.12 > 1): too few base samples (16) for their precision; try "
            "--samples 512 or more") in html
    assert "P(met): the Sobol indices are inconsistent" in html
    firsts = [tr for tr in html.split("<tr>") if "<td>first</td>" in tr]
    assert len(firsts) == 4 and all("unreliable: inconsistent indices" in tr for tr in firsts)
    noise = [tr for tr in html.split("<tr>") if "noise_share" in tr]
    assert not any("unreliable" in tr for tr in noise)  # the noise share itself is sound


def test_inconsistent_sobol_estimates_are_clipped_and_flagged_in_the_figure():
    ax = panel(SOBOL, "count_at_deadline")
    right = max(b.get_x() + b.get_width() for b in ax.patches)
    assert right <= 1.0
    ends = [seg[:, 0] for coll in ax.collections for seg in coll.get_segments()]
    assert ends and max(float(np.max(e)) for e in ends) <= 1.0  # error bars too
    assert min(float(np.min(e)) for e in ends) >= 0.0
    assert "UNRELIABLE: inconsistent indices" in ax.get_title(loc="left")
    assert "--samples 512" in panel(SOBOL, "count_at_deadline", base=16).get_title(loc="left")


def test_displayed_values_stay_within_what_each_index_can_take():
    from sim.readout.indices import interval_shown, shown

    assert shown(1.957672, "noise_share") == "≥ 100%"
    assert shown(0.829253, "noise_share") == "83%"
    assert shown(1.0, "noise_share") == "≥ 100%"  # where the Sobol estimator stops
    assert shown(0.000884, "noise_share") == "<1%"  # (share_text: one form everywhere)
    assert shown(-0.084861, "first") == "≤ 0"
    assert shown(1.2, "total") == "≥ 1"
    assert shown(1.320381, "first", end=True) == "1"
    assert shown(-0.192333, "spearman") == "-0.192"  # a correlation may be negative
    assert interval_shown(SOBOL[0]) == "[0.423, 1]"
    assert interval_shown(FLAT[3]) == "≥ 100%"  # the whole interval past 100%
    assert shown(math.nan, "first") == "n/a"


def test_small_breaks_of_the_bounds_are_not_flagged():
    """A parameter without interactions has first = total; estimates fall either side."""
    from sim.readout.indices import caveats

    rows = [row("y", "a", "first", 0.46, 0.40, 0.52), row("y", "a", "total", 0.44, 0.38, 0.5),
            row("y", "b", "first", 0.56, 0.5, 0.62), row("y", "b", "total", 0.57, 0.5, 0.64),
            row("y", "b", "noise_share", 0.3, 0.2, 0.6)]
    assert caveats(rows, base=1024) == []
    broken = caveats([*rows[:3], row("y", "b", "total", 0.49, 0.4, 0.6)], base=64)
    assert [c.tag for c in broken] == ["inconsistent indices"]
    assert "a: first-order 0.46 > total 0.44" not in broken[0].text  # within the tolerance
    assert "b: first-order 0.56 > total 0.49" in broken[0].text
    assert "--samples 256" in broken[0].text  # at least 4x the base rows


def test_estimators_on_a_well_sampled_design_raise_no_caveat():
    from sim.readout.indices import caveats

    design, x, y = ishigami_design(1024)
    noisy = y + np.random.default_rng(5).normal(0.0, 2.0, len(y))
    rows = analyse("sobol", design.base, PARAMS, x, {"y": (y, None),
                                                      "noisy": (noisy, np.full(len(y), 4.0))},
                   seed=3, resamples=200)
    assert caveats([r.__dict__ for r in rows], base=design.base) == []


def test_estimators_flag_too_few_base_rows_and_a_spread_that_is_all_noise():
    from sim.readout.indices import caveats

    design, x, y = ishigami_design(16)
    rows = [r.__dict__ for r in analyse("sobol", design.base, PARAMS, x, {"y": (y, None)},
                                        seed=3, resamples=200)]
    assert [c.tag for c in caveats(rows, base=design.base)] == ["inconsistent indices"]
    # LHS points whose means differ only by replication noise of known variance.
    lhs = make_design("lhs", (Range("k", 0.0, 1.0),), 16, seed=4)
    u = np.array(lhs.points)
    means = 0.01 * u[:, 0] + np.random.default_rng(6).normal(0.0, 1.0, 16)
    rows = [r.__dict__ for r in analyse("lhs", 0, ["k"], u, {"y": (means, np.ones(16))},
                                        seed=3, resamples=200)]
    (caveat,) = caveats(rows, replications=10)
    assert caveat.tag == "the parameters' effect cannot be told from replication noise"
    assert "rank correlations are unreliable" in caveat.text


@pytest.mark.parametrize("rows", [FLAT, SOBOL])
def test_the_raw_rows_are_untouched(rows):
    """Display only: what sensitivity.csv holds is not rewritten."""
    from sim.readout.indices import caveats

    before = [dict(r) for r in rows]
    report(rows, [INNOVATION, CAPACITY], "sobol" if rows is SOBOL else "lhs")
    caveats(rows)
    assert rows == before


def test_the_maps_subtitle_shows_an_index_past_one_at_the_bound():
    """The reachability map's subtitle names the two indices that chose its axes: a total
    index estimated at 1.32 reads "≥ 1" there too, not a share above one."""
    from sim.explore.reachability import choose_axes

    rows = [{"output": "P(met)", "parameter": k, "index": "total", "estimate": e, "lo": 0.0,
             "hi": 1.0} for k, e in (("a", 1.32), ("b", 0.4), ("c", 0.1))]
    _, note = choose_axes(["a", "b", "c"], rows, "P(met)")
    assert note.endswith("(≥ 1, 0.4)"), note
