"""Several finished runs side by side: each run's counted curve (the count its target reads, or
one reading imposed on every run so that they compare like for like) summarised over its
replications at each month end, and the table and one-line summaries of `sim compare`.

Reads only a run folder's `summary.json` and `curves.csv`, columns by name, so runs written
before a column was added still load when their reading does not need it. Every fault is one
line naming the folder or file (the scenario's one-line-per-fault contract, so the CLI reports
it alike, exit 2)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.scenario import COUNT_COLUMNS, LEVELS, ScenarioError

READINGS = tuple(COUNT_COLUMNS)
QUANTILES = (5, 50, 95)
TABLE_COLUMNS = ("run", "scenario", "engine", "reading", "date", "p05", "p50", "p95",
                 "target_firms", "deadline")


class CompareError(ScenarioError):
    """Run folders or options that cannot be compared; `problems` holds one line each."""


@dataclass(frozen=True)
class RunCurve:
    """One run's counted curve: 5/50/95% over replications at each month end, its target,
    and the mean count at the deadline with its 5-95% band, from summary.json's `readings`
    taken at the deadline itself (runs written before those were: the last month end on or
    before it, which `at_deadline_date` then says)."""

    name: str
    folder: Path
    scenario: str
    engine: str
    replications: int
    count: str
    level: str
    target_reading: str
    target_firms: int
    deadline: dt.date
    dates: tuple[dt.date, ...]
    p05: np.ndarray
    p50: np.ndarray
    p95: np.ndarray
    at_deadline: float
    at_deadline_date: dt.date
    at_deadline_band: tuple[float, float]

    @property
    def reading(self) -> str:
        """The reading as the table and summaries say it, e.g. `new >= line`."""
        return reading_text(self.count, self.level)

    @property
    def own_reading(self) -> bool:
        """True when the run is read as its target counts (no reading imposed)."""
        return self.reading == self.target_reading

    @property
    def deadline_band(self) -> tuple[float, float]:
        """5% and 95% of the replications' counts at `at_deadline_date`."""
        return self.at_deadline_band

    @property
    def margin(self) -> float:
        """Mean count at the deadline minus the target (negative: the shortfall)."""
        return self.at_deadline - self.target_firms


def reading_text(count: str, level: str) -> str:
    """`new >= line`: the count (new, stock, upgraded) at or above the level."""
    return f"{count} >= {level}"


def describe_reading(count: str, level: str) -> str:
    """The reading in words, for an axis label."""
    return {"new": f"firms newly at or above {level} since the start",
            "stock": f"firms at or above {level}",
            "upgraded": f"firms that completed a project at or above {level}"}[count]


def compare(folders: Sequence[str | Path], count: str | None = None,
            level: str | None = None) -> list[RunCurve]:
    """Read every run folder and summarise its counted curve; `count` and `level` (default:
    each run's own target reading) impose one reading on all. Raises CompareError listing
    every folder that cannot be read, one line each, before anything is computed from them."""
    problems = []
    if count is not None and count not in READINGS:
        problems.append(f"--count {count!r}: must be one of {', '.join(READINGS)}")
    if level is not None and level not in LEVELS:
        problems.append(f"--level {level!r}: must be one of {', '.join(LEVELS)}")
    if not folders:
        problems.append("no run folders given")
    if problems:
        raise CompareError(problems)
    paths = [Path(f) for f in folders]
    names = _names(paths)
    runs: list[RunCurve] = []
    for path, name in zip(paths, names, strict=True):
        try:
            runs.append(read_run(path, name, count=count, level=level))
        except CompareError as exc:
            problems.extend(exc.problems)
    if problems:
        raise CompareError(problems)
    return runs


def _names(paths: Sequence[Path]) -> list[str]:
    """Each run's name: its folder's name, or the path as given where two names would clash."""
    seen: dict[Path, Path] = {}
    for p in paths:
        key = Path(p.resolve() if p.exists() else p.absolute())
        if key in seen:
            raise CompareError([f"{p}: given twice (as {seen[key]} and {p})"])
        seen[key] = p
    bare = [p.name or str(p) for p in paths]
    return [b if bare.count(b) == 1 else str(p) for b, p in zip(bare, paths, strict=True)]


def read_run(folder: Path, name: str | None = None, *, count: str | None = None,
             level: str | None = None) -> RunCurve:
    """One run folder's counted curve; CompareError (one line) when it cannot be read."""
    if not folder.exists():
        raise CompareError([f"{folder}: no such folder"])
    if not folder.is_dir():
        raise CompareError([f"{folder}: not a folder"])
    missing = [f for f in ("summary.json", "curves.csv") if not (folder / f).is_file()]
    if (folder / "compare.csv").is_file() and missing:
        raise CompareError([f"{folder}: the output of `sim compare`, not a run folder"])
    if missing:
        raise CompareError([f"{folder}: not a finished run folder (no {' or '.join(missing)}; "
                            "`sim run` writes one)"])
    summary = _summary(folder / "summary.json")
    target = summary["target"]
    count = count or target["count"]
    level = level or target["level"]
    dates, values = read_counted(folder / "curves.csv", COUNT_COLUMNS[count], level,
                                 reading_text(count, level))
    deadline = target["deadline"]
    _whole(folder / "curves.csv", summary, values.shape[0], dates, deadline)
    p05, p50, p95 = np.percentile(values, QUANTILES, axis=0)
    upto = [m for m, d in enumerate(dates) if d <= deadline]
    m = upto[-1] if upto else 0  # a deadline inside the first month: its month end
    at, date, band = float(values[:, m].mean()), dates[m], (float(p05[m]), float(p95[m]))
    taken = _taken_at_deadline(folder / "summary.json", summary, count, level)
    if taken is not None:
        at, date, band = taken[0], deadline, (taken[1], taken[2])
    return RunCurve(
        name=name or folder.name, folder=folder, scenario=str(summary["scenario"]),
        engine=str(summary["engine"]), replications=values.shape[0], count=count, level=level,
        target_reading=reading_text(target["count"], target["level"]),
        target_firms=target["firms"], deadline=deadline, dates=tuple(dates), p05=p05, p50=p50,
        p95=p95, at_deadline=at, at_deadline_date=date, at_deadline_band=band)


def _whole(path: Path, summary: Mapping[str, Any], replications: int, dates: Sequence[dt.date],
           deadline: dt.date) -> None:
    """Refuse curves cut short (a copy or write that stopped part way): fewer replications
    than summary.json counts, or month ends stopping before the deadline's."""
    said = summary.get("replications")
    if isinstance(said, int) and not isinstance(said, bool) and replications != said:
        raise CompareError([f"{path}: {replications} replication(s), where summary.json "
                            f"counts {said}: the file is incomplete or not this run's"])
    due = (deadline if (deadline + dt.timedelta(days=1)).day == 1  # the last month end by it
           else deadline.replace(day=1) - dt.timedelta(days=1))
    if dates[-1] < due:
        raise CompareError([f"{path}: ends at {dates[-1]}, before the month end {due} that "
                            f"the deadline {deadline} reads: the file is incomplete"])


def _taken_at_deadline(path: Path, summary: dict[str, Any], count: str, level: str
                       ) -> tuple[float, float, float] | None:
    """The reading's mean, 5% and 95% at the deadline itself from summary.json's `readings`
    (None where they are not dated at the deadline: runs written before they were)."""
    if summary.get("readings_date") != summary["target"]["deadline"].isoformat():
        return None
    try:
        taken = summary["readings"][count][level]
        out = tuple(float(taken[k]) for k in ("mean", "p05", "p95"))
    except (KeyError, TypeError, ValueError):
        raise CompareError([f"{path}: readings.{count}.{level} is not a mean with its 5% and "
                            "95% (the file is damaged; run the scenario again)"]) from None
    if not all(math.isfinite(x) for x in out):
        raise CompareError([f"{path}: readings.{count}.{level} is not finite"])
    return out[0], out[1], out[2]


def _summary(path: Path) -> dict[str, Any]:
    """summary.json with the keys compare needs, checked; the deadline as a date."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CompareError([f"{path}: cannot read it as JSON ({exc})"]) from None
    target = doc.get("target") if isinstance(doc, dict) else None
    lacking = [k for k in ("scenario", "engine") if not isinstance(doc, dict) or k not in doc]
    if not isinstance(target, dict):
        lacking.append("target")
    else:
        lacking += [f"target.{k}" for k in ("firms", "level", "deadline", "count")
                    if k not in target]
    if lacking:
        raise CompareError([f"{path}: not a run summary (no {', '.join(lacking)})"])
    assert isinstance(target, dict)  # else "target" would be in `lacking`
    try:
        deadline = dt.date.fromisoformat(str(target["deadline"]))
    except ValueError:
        raise CompareError([f"{path}: target.deadline {target['deadline']!r} is not a date "
                            "(YYYY-MM-DD)"]) from None
    firms = target["firms"]
    if isinstance(firms, bool) or not isinstance(firms, int | float) or not math.isfinite(firms):
        raise CompareError([f"{path}: target.firms {firms!r} is not a number of firms"])
    if target["count"] not in READINGS:
        raise CompareError([f"{path}: target.count {target['count']!r} is not one of "
                            f"{', '.join(READINGS)}"])
    if target["level"] not in LEVELS:
        raise CompareError([f"{path}: target.level {target['level']!r} is not one of "
                            f"{', '.join(LEVELS)}"])
    return {**doc, "target": {**target, "deadline": deadline, "firms": int(firms)}}


def read_counted(path: Path, column: str, level: str, needed_for: str = ""
                 ) -> tuple[list[dt.date], np.ndarray]:
    """From a curves.csv, `column` at `level`: month-end dates and a (replications, months)
    array. Columns are found by name; a missing one is refused naming it (and `needed_for`,
    the reading that needs it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CompareError([f"{path}: cannot read it ({exc.strerror or exc})"]) from None
    except UnicodeDecodeError:
        raise CompareError([f"{path}: not UTF-8 text"]) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = reader.fieldnames or []
    lacking = [c for c in ("replication", "date", "level", column) if c not in fields]
    if lacking:
        what = "columns" if len(lacking) > 1 else "column"
        why = f", which the {needed_for} reading needs" if needed_for else ""
        raise CompareError([f"{path}: no {what} {', '.join(map(repr, lacking))}{why} "
                            f"(the file has: {', '.join(fields) or 'no header'})"])
    try:
        cells = _cells(path, reader, column, level)
    except csv.Error as exc:
        raise CompareError([f"{path}, line {reader.line_num}: not CSV ({exc})"]) from None
    return _grid(path, cells, level)


def _cells(path: Path, reader: csv.DictReader, column: str, level: str
           ) -> dict[tuple[str, str], float]:
    """`column` at `level` by (replication, date text); a value that is no number refused."""
    cells: dict[tuple[str, str], float] = {}
    for row in reader:
        if row["level"] != level:
            continue
        cell = row[column]
        try:
            value = float(cell)
        except (ValueError, TypeError):
            value = math.nan
        if not math.isfinite(value):
            raise CompareError([f"{path}, line {reader.line_num}: column {column!r}: "
                                f"{cell!r} is not a number"])
        cells[row["replication"], row["date"]] = value
    return cells


def _grid(path: Path, cells: dict[tuple[str, str], float], level: str
          ) -> tuple[list[dt.date], np.ndarray]:
    """The cells as a full (replications, months) array, months in date order."""
    if not cells:
        raise CompareError([f"{path}: no rows for level {level!r}"])
    reps = sorted({r for r, _ in cells})
    texts = sorted({d for _, d in cells})
    dates = []
    for text in texts:
        try:
            dates.append(dt.date.fromisoformat(text))
        except ValueError:
            raise CompareError([f"{path}: column 'date': {text!r} is not a date "
                                "(YYYY-MM-DD)"]) from None
    if len(cells) != len(reps) * len(texts):
        raise CompareError([f"{path}: {len(cells)} rows at level {level!r}, not one per "
                            f"replication and month ({len(reps)} x {len(texts)})"])
    values = np.array([[cells[r, d] for d in texts] for r in reps], dtype=float)
    return dates, values


def table_csv(runs: Sequence[RunCurve]) -> str:
    """compare.csv: one row per run and month end, the reading and target beside each."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    for run in runs:
        for m, date in enumerate(run.dates):
            writer.writerow([run.name, run.scenario, run.engine, run.reading, date.isoformat(),
                             _number(run.p05[m]), _number(run.p50[m]), _number(run.p95[m]),
                             run.target_firms, run.deadline.isoformat()])
    return buf.getvalue()


def _number(x: float) -> str:
    """A count as a whole number when it is one, else to three decimals."""
    return str(int(x)) if float(x).is_integer() else f"{x:.3f}"


def summary_lines(runs: Sequence[RunCurve]) -> list[str]:
    """One aligned line per run: name (engine), reading, mean count at the deadline, and the
    shortfall or margin against its target firms; where a reading other than the target's
    is imposed, the margin says the number is the one its target sets for another reading."""
    heads = [f"{r.name} ({r.engine})" for r in runs]
    width = max(len(h) for h in heads)
    rwidth = max(len(r.reading) for r in runs)
    nwidth = max(len(f"{r.at_deadline:,.0f}") for r in runs)
    lines = []
    for head, r in zip(heads, runs, strict=True):
        gap = round(r.margin)
        verdict = (f"{-gap:,} short of {r.target_firms:,}" if gap < 0
                   else f"{gap:,} above {r.target_firms:,}")
        if not r.own_reading:  # (the number is the target's, for the reading it counts)
            verdict += f" (the target's number for {r.target_reading})"
        lines.append(f"{head:<{width}}  {r.reading:<{rwidth}}  {r.at_deadline:>{nwidth},.0f} at "
                     f"{r.at_deadline_date.isoformat()}; {verdict}")
    return lines
