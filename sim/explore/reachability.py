"""The reachability map of a sweep: which two varied parameters it is drawn over (asked
with --axes, else those that matter most by the sensitivity indices) and what its colour
shows (P(met), or the mean count at the deadline when P(met) reaches no contour); and a
finished sweep folder's figures, redrawn from its tables."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.explore.design import check_axes
from sim.explore.sensitivity import RANKED_BY, ranking
from sim.plots.sweep import MapData, sweep_figures, sweep_map
from sim.readout.indices import SHARES, shown
from sim.store.sweep_tables import read_point_medians, read_points, read_sensitivity

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OUTPUTS = {"P(met)": "P(met)", "count_at_deadline": "the count"}
"""The outputs of sensitivity.csv an axis choice can rank by, and how a note names them."""


def choose_axes(keys: Sequence[str], sensitivity: Sequence[Mapping[str, Any]], output: str,
                asked: Sequence[str] | None = None) -> tuple[tuple[int, int], str]:
    """The map's two axes (columns of the varied keys) and a note saying why: as asked;
    the only two; the two with the largest index of `output` (else of the other output);
    else the first two varied."""
    if asked:
        return check_axes(keys, asked), "axes: as asked (--axes)"
    if len(keys) <= 2:
        return (0, 1), ""
    for name in (output, *(o for o in OUTPUTS if o != output)):
        ranked = ranking(sensitivity, name)
        if ranked is None:
            continue
        known = [(k, e) for k, e in ranked[0] if k in keys]
        if len(known) >= 2:
            (x, ex), (y, ey) = known[:2]
            # (a Sobol index past [0, 1], which a share cannot be, shows at the bound)
            ex_, ey_ = (f"{e:.2g}" if ranked[1] not in SHARES or 0 <= e <= 1
                        else shown(e, ranked[1]) for e in (ex, ey))
            return ((keys.index(x), keys.index(y)), f"axes: the two parameters with the "
                    f"{RANKED_BY[ranked[1]]} {OUTPUTS[name]} ({ex_}, {ey_})")
    return (0, 1), "axes: the first two varied parameters (no sensitivity index to rank by)"


def reachability_map(manifest: Mapping[str, Any], points: Sequence[Mapping[str, float]],
                     sensitivity: Sequence[Mapping[str, Any]],
                     axes: Sequence[str] | None = None) -> MapData:
    """The map of a sweep folder (manifest, points.csv, sensitivity.csv rows). Axes are
    ranked by P(met)'s indices; if P(met) then reaches no contour, the colour is the mean
    count and the axes are ranked by the count's indices instead, so the axes shown are
    those that move what the colour shows."""
    keys = [r["key"] for r in manifest["ranges"]]
    if len(keys) == 1:
        if axes:
            check_axes(keys, axes)
        return sweep_map(manifest, points)
    cols, note = choose_axes(keys, sensitivity, "P(met)", axes)
    reach = sweep_map(manifest, points, axes=cols, axes_note=note)
    if reach.colour == "count" and not axes:
        by_count = choose_axes(keys, sensitivity, "count_at_deadline")
        if by_count != (cols, note):
            reach = sweep_map(manifest, points, axes=by_count[0], colour="count",
                              axes_note=by_count[1])
    return reach


def folder_figures(folder: Path, axes: Sequence[str] | None = None) -> list[tuple[str, Figure]]:
    """A finished sweep folder's figures from its manifest and tables, the map over `axes`
    (default: those the sweep was asked for, kept in the manifest, else by sensitivity);
    SweepError when `axes` are not two varied keys."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    dates, medians = read_point_medians(folder)
    points, sensitivity = read_points(folder), read_sensitivity(folder)
    reach = reachability_map(manifest, points, sensitivity, axes or manifest.get("axes"))
    return sweep_figures(manifest, points, dates, medians, sensitivity, reach)
