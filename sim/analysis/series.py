"""Observed adoption series: reading and checking a CSV file of cumulative adopters at irregular
dates (`date,cumulative`) or adopters per period ending at each date (`date,new`). Every fault
is one line naming the file, line, column and value and what is allowed."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.scenario import FIRST_DATE, LAST_DATE, MAX_FIRMS, ScenarioError

KINDS = ("cumulative", "new")
MAX_COUNT = float(MAX_FIRMS)  # no series counts more firms than a scenario may hold


class SeriesError(ScenarioError):
    """A data file or fitting option that cannot be used; `problems` holds one line each
    (the same one-line-per-fault contract as a scenario's, so the CLI reports both alike)."""




@dataclass(frozen=True)
class Series:
    """An observed adoption series: strictly increasing dates and one count per date."""

    source: str
    kind: str  # "cumulative" | "new"
    dates: tuple[dt.date, ...]
    values: tuple[float, ...]

    def cumulative(self) -> np.ndarray:
        """Cumulative adopters at each date (for `new`: since the start of the first period)."""
        v = np.asarray(self.values, dtype=float)
        return v if self.kind == "cumulative" else np.cumsum(v)


def read_series(path: str | Path, where: Sequence[str] = ()) -> Series:
    """Read and check a CSV series; `where` keeps rows with COLUMN=VALUE (e.g. tier=advanced)."""
    path = Path(path)
    src = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SeriesError([f"{src}: cannot read the file ({exc.strerror or exc})"]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SeriesError([f"{src}: byte {exc.start} is not UTF-8: a series must be UTF-8 "
                           "CSV text"]) from None
    return parse_series(text, src, where)


def parse_series(text: str, source: str, where: Sequence[str] = ()) -> Series:
    """Check CSV text: a `date` column and exactly one of `cumulative` or `new`; every fault
    is one line naming the file, line, column and value and what is allowed."""
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:  # an over-long field, a stray carriage return inside a field
        raise SeriesError([f"{source}: not a readable CSV file ({exc}): expected a header "
                           "'date,cumulative' or 'date,new' and one row per date"]) from None
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    if not rows:
        raise SeriesError([f"{source}: the file is empty: expected a header 'date,cumulative' "
                           "or 'date,new' and at least three rows"])
    header = [h.strip() for h in rows[0]]
    problems = _header_problems(header, source)
    filters = _filters(where, header, source, problems)
    if problems:
        raise SeriesError(problems)
    kind = "cumulative" if "cumulative" in header else "new"
    i_date, i_value = header.index("date"), header.index(kind)
    dates: list[dt.date] = []
    values: list[float] = []
    lines: list[int] = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header):]):
            problems.append(f"{source}: line {n}: {len(row)} fields under a header of "
                            f"{len(header)} ({', '.join(header)}): which is which?")
            continue
        cells = row + [""] * (len(header) - len(row))
        if any(cells[i].strip() != want for i, want in filters):
            continue
        date = _date(cells[i_date].strip(), source, n, problems)
        value = _count(cells[i_value].strip(), kind, source, n, problems)
        if date is not None and value is not None:
            dates.append(date)
            values.append(value)
            lines.append(n)
    _order_problems(dates, values, lines, kind, source, problems)
    if not problems and dates and not any(values):
        problems.append(f"{source}: every count is 0: a Bass curve needs some adopters")
    if not problems and len(dates) < 3:
        chosen = f" matching {', '.join(where)}" if where else ""
        problems.append(f"{source}: {len(dates)} data row(s){chosen}: at least three are needed "
                        "to fit a Bass curve")
    if problems:
        raise SeriesError(problems)
    return Series(source, kind, tuple(dates), tuple(values))


def _columns(header: list[str]) -> str:
    """The header's cells for a one-line message (line breaks inside a cell escaped)."""
    return ", ".join(h.replace("\r", "\\r").replace("\n", "\\n") for h in header)


def _header_problems(header: list[str], source: str) -> list[str]:
    have = [k for k in KINDS if k in header]
    out = []
    if "date" not in header:
        out.append(f"{source}: line 1: no 'date' column (columns: {_columns(header)}); "
                   "expected 'date,cumulative' or 'date,new'")
    if not have:
        out.append(f"{source}: line 1: no 'cumulative' or 'new' column (columns: "
                   f"{_columns(header)}); expected 'date,cumulative' or 'date,new'")
    elif len(have) == 2:
        out.append(f"{source}: line 1: both 'cumulative' and 'new' columns: keep one, so it is "
                   "clear which the counts are")
    dupes = sorted({h for h in header if header.count(h) > 1 and h})
    if dupes:
        out.append(f"{source}: line 1: column(s) {', '.join(dupes)} appear more than once")
    return out


def _filters(where: Sequence[str], header: list[str], source: str, problems: list[str]
             ) -> list[tuple[int, str]]:
    out = []
    for item in where:
        column, sep, value = item.partition("=")
        if not sep or not column.strip():
            problems.append(f"{source}: --where {item!r}: expected COLUMN=VALUE, e.g. "
                            "tier=advanced")
        elif column.strip() not in header:
            problems.append(f"{source}: --where {item!r}: no column {column.strip()!r} "
                            f"(columns: {', '.join(header)})")
        else:
            out.append((header.index(column.strip()), value.strip()))
    return out


def _date(cell: str, source: str, line: int, problems: list[str]) -> dt.date | None:
    try:
        date = dt.date.fromisoformat(cell)
    except ValueError:
        problems.append(f"{source}: line {line}, column date: {cell!r} is not a date: use "
                        "YYYY-MM-DD, e.g. 2025-11-20")
        return None
    if not FIRST_DATE <= date <= LAST_DATE:
        problems.append(f"{source}: line {line}, column date: {cell!r}: must lie between "
                        f"{FIRST_DATE} and {LAST_DATE}")
        return None
    return date


def _count(cell: str, kind: str, source: str, line: int, problems: list[str]) -> float | None:
    allowed = ("a count greater than 0 (a cumulative series starts at its first adopters; "
               "use --start for when adoption began)" if kind == "cumulative"
               else "a count of 0 or more")
    try:
        value = float(cell)
    except ValueError:
        problems.append(f"{source}: line {line}, column {kind}: {cell!r} is not a number: "
                        f"must be {allowed}, digits only (no thousands separators)")
        return None
    if (not math.isfinite(value) or value < 0 or value > MAX_COUNT
            or (kind == "cumulative" and value == 0)):
        problems.append(f"{source}: line {line}, column {kind}: {cell!r}: must be {allowed}, "
                        f"at most {MAX_COUNT:.0e}")
        return None
    return value


def _order_problems(dates: list[dt.date], values: list[float], lines: list[int], kind: str,
                    source: str, problems: list[str]) -> None:
    for j in range(1, len(dates)):
        if dates[j] <= dates[j - 1]:
            problems.append(f"{source}: line {lines[j]}, column date: {dates[j]} is not after "
                            f"{dates[j - 1]} (line {lines[j - 1]}): dates must increase "
                            "strictly, one row per date")
        elif kind == "cumulative" and values[j] < values[j - 1]:
            problems.append(f"{source}: line {lines[j]}, column cumulative: {_num(values[j])} "
                            f"is below {_num(values[j - 1])} (line {lines[j - 1]}): cumulative "
                            "counts must not decrease")


def _num(x: float) -> str:
    return f"{x:,.0f}" if x == int(x) else f"{x:,.6g}"

