"""A sweep's tables, written from its rows and read back for figures: runs.csv (one row per
run), points.csv (one per point), curves.csv (quantiles of the counted firms per point and
month end) and sensitivity.csv. All load with `pandas.read_csv` as they are."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

Rows = Mapping[tuple[int, int], Mapping[str, Any]]
"""A sweep's runs by (point, replication)."""



class Points(Protocol):
    """What the tables need of a design: the varied keys and the points' values."""

    @property
    def keys(self) -> Sequence[str]: ...

    @property
    def points(self) -> Sequence[Sequence[Any]]: ...


POINT_COLUMNS = ("replications", "failed", "met", "p_met", "p_met_lo", "p_met_hi",
                 "count_mean", "count_p05", "count_p50", "count_p95")


def _cell(x: Any) -> Any:
    if x is None:
        return ""
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, float):
        return "" if math.isnan(x) else repr(round(x, 6))
    return x


def runs_csv(design: Points, rows: Rows) -> str:
    """One row per run, sorted by point and replication; `met` is 1/0, empty on error."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["point", "replication", *design.keys, "count_at_deadline", "met",
                     "crossing_date", "error"])
    for (point, rep) in sorted(rows):
        r = rows[(point, rep)]
        writer.writerow([point, rep, *design.points[point], _cell(r["count_at_deadline"]),
                         _cell(r["met"]), _cell(r["crossing_date"]), _cell(r["error"])])
    return buf.getvalue()


def points_csv(design: Points, stats: Sequence[Mapping[str, Any]]) -> str:
    """One row per point: its parameters, P(met) with the Wilson 95% interval, counts."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["point", *design.keys, *POINT_COLUMNS])
    for j, values in enumerate(design.points):
        writer.writerow([j, *values, *(_cell(stats[j][c]) for c in POINT_COLUMNS)])
    return buf.getvalue()


def point_curves(rows: Rows) -> dict[int, np.ndarray]:
    """Kept monthly curves stacked per point, (replications, months)."""
    by_point: dict[int, list[tuple[int, list]]] = {}
    for (point, rep), r in rows.items():
        if r.get("curve") is not None:
            by_point.setdefault(point, []).append((rep, r["curve"]))
    return {p: np.array([c for _, c in sorted(items)], dtype=float)
            for p, items in by_point.items()}


def sweep_curves_csv(dates: Sequence[str], curves: Mapping[int, np.ndarray]) -> str:
    """A sweep's curves.csv: counted firms per point and month end, 5%, 50% and 95% over the
    kept replications (a run's curves.csv is `files.run_curves_csv`)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["point", "date", "p05", "p50", "p95"])
    for point in sorted(curves):
        lo, med, hi = np.percentile(curves[point], [5, 50, 95], axis=0)
        for m, date in enumerate(dates):
            writer.writerow([point, date, _cell(float(lo[m])), _cell(float(med[m])),
                             _cell(float(hi[m]))])
    return buf.getvalue()


def _quote(text: str) -> str:
    return f'"{text}"' if "," in text else text


def _num(x: float) -> str:
    return "" if not math.isfinite(x) else repr(round(float(x), 6))


def sensitivity_csv(indices: Iterable[tuple[str, str, str, float, float, float]]) -> str:
    """sensitivity.csv: `output,parameter,index,estimate,lo,hi`, one row per index."""
    buf = ["output,parameter,index,estimate,lo,hi"]
    for output, parameter, index, *values in indices:
        buf.append(",".join([output, _quote(parameter), index, *(_num(x) for x in values)]))
    return "\n".join(buf) + "\n"


def read_points(folder: Path) -> list[dict[str, float]]:
    """points.csv back as numbers (NaN where empty)."""
    with open(folder / "points.csv", newline="", encoding="utf-8") as fh:
        return [{k: (float(v) if v != "" else math.nan) for k, v in row.items()}
                for row in csv.DictReader(fh)]


def read_point_medians(folder: Path) -> tuple[list[dt.date], dict[int, np.ndarray]]:
    """curves.csv back: its month ends and each point's median curve (none if absent)."""
    path = folder / "curves.csv"
    if not path.is_file():
        return [], {}
    dates: list[str] = []
    seen: set[str] = set()
    medians: dict[int, list[float]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["date"] not in seen:
                seen.add(row["date"])
                dates.append(row["date"])
            medians.setdefault(int(row["point"]), []).append(float(row["p50"]))
    return [dt.date.fromisoformat(d) for d in dates], {j: np.array(v) for j, v in
                                                        medians.items()}


def read_sensitivity(folder: Path) -> list[dict[str, Any]]:
    """sensitivity.csv back, estimates as numbers (none if absent)."""
    path = folder / "sensitivity.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return [{**r, **{c: float(r[c]) if r[c] else math.nan for c in ("estimate", "lo", "hi")}}
                for r in csv.DictReader(fh)]
