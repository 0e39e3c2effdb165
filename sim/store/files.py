"""A run's results folder, and how results files are written (the sweep's journal and lock
are in `journal`, its tables in `sweep_tables`). Every file is written to a temporary name and
renamed, so a reader (or a killed run) never sees a torn file. A run's folder is published
as a whole (see `publish`): killed at any moment, it holds the previous complete results or
none, never a summary beside curves that are not its own."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim.engines import RunResult
from sim.scenario import COUNT_COLUMNS, LEVELS, Scenario, dumps, parse_value, toml_value

RESULTS_ROOT = Path("results")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would have given; mkstemp makes files 0600
DIR_MODE = 0o777 & ~_umask()  # what mkdir() would have given; mkdtemp makes folders 0700
STAGING = ".partial-"  # `.<folder>.partial-<pid>-<random>`: a folder being built beside its place


def default_out(scenario: Scenario, suffix: str = "", overrides: Sequence[str] = ()) -> Path:
    """`results/<name><suffix>/`, or `results/<name>-<hash><suffix>/` with `--set` overrides
    (see `overrides_hash`), so that a variant never replaces the scenario's own results; the
    validated name cannot climb out of `results/`."""
    tag = f"-{overrides_hash(overrides)}" if overrides else ""
    return RESULTS_ROOT / f"{scenario.name}{tag}{suffix}"


def solve_out(scenario: Scenario, key: str, overrides: Sequence[str] = ()) -> Path:
    """A solve's default folder, `results/<name>[-<hash>]-solve-<key>/`: named by the key it
    searches, so that solves of two parameters of one scenario keep their own folders (the
    key's characters outside letters, digits, `.`, `_` and `-` become `_`)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", key)[:80]
    return default_out(scenario, f"-solve-{safe}", overrides)


def overrides_hash(overrides: Sequence[str]) -> str:
    """The first 8 hex digits of the SHA-256 of the canonical override list: `key=value` per
    key (the last one given wins), key as typed, value parsed as TOML and written back in one
    form (so `40_000` and `40000` agree), sorted. The same overrides, in any order, give the
    same hash. Overrides must already have been applied (they are well formed)."""
    last: dict[str, str] = {}
    for item in overrides:
        key, text = item.split("=", 1)
        last[key.strip()] = toml_value(_sorted_tables(parse_value(text)))
    canonical = "\n".join(sorted(f"{k}={v}" for k, v in last.items()))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]


def _sorted_tables(value: Any) -> Any:
    """`value` with every inline table's keys in sorted order (TOML tables are unordered)."""
    if isinstance(value, dict):
        return {k: _sorted_tables(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_tables(v) for v in value]
    return value


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` via a temporary file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def scenario_text(scenario: Scenario) -> str:
    """The scenario exactly as run (overrides applied), as TOML: its source file with the
    changed values written in (comments and number forms kept), or canonical TOML when there
    is no source file (a scenario built in Python)."""
    from sim.scenario.tomlio import dumps_as_run

    return dumps_as_run(scenario.raw, scenario.source)


def scenario_sha256(scenario: Scenario) -> str:
    """The fingerprint of the scenario as run, recorded in every summary and manifest."""
    return hashlib.sha256(scenario_text(scenario).encode("utf-8")).hexdigest()


def model_sha256(scenario: Scenario) -> str:
    """The fingerprint of the scenario's values alone (canonical TOML): its comments, and
    how its numbers are written, aside."""
    return hashlib.sha256(dumps(scenario.raw).encode("utf-8")).hexdigest()


def run_curves_csv(scenario: Scenario, results: Mapping[int, RunResult]) -> str:
    """A run's curves.csv, long: replication, month-end date, level, and each reading of the
    count at that level: firms at or above it (stock), new since start, and distinct firms
    that completed a project at or above it since the start (upgraded)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["replication", "date", "level", *CURVE_COLUMNS.values()])
    dates = [d.isoformat() for d in scenario.month_ends()]
    for rep in sorted(results):
        res = results[rep]
        _write_rows(writer, rep, dates, None, res.at_or_above[:, None, :],
                    res.base()[:, None, :], res.upgraded[:, None, :])
    return buf.getvalue()


def run_regions_csv(scenario: Scenario, results: Mapping[int, RunResult]) -> str:
    """A run's regions.csv: curves.csv with a `region` column after the date, one row per
    replication, month end, region (the scenario's order) and level; the regions' rows add up
    to curves.csv's. Written only when the scenario declares regions."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["replication", "date", "region", "level", *CURVE_COLUMNS.values()])
    dates = [d.isoformat() for d in scenario.month_ends()]
    for rep in sorted(results):
        at_or_above, upgraded, _initial, _count = results[rep].regional()
        _write_rows(writer, rep, dates, scenario.region_names, at_or_above,
                    results[rep].region_base(), upgraded)
    return buf.getvalue()


def _write_rows(writer: Any, rep: int, dates: Sequence[str], regions: Sequence[str] | None,
                at_or_above: np.ndarray, base: np.ndarray, upgraded: np.ndarray) -> None:
    """One replication's rows: (months, regions, 4) arrays (`base`: what `new` subtracts
    from the stock, RunResult.base); no region column when `regions` is None (curves.csv,
    the one national region)."""
    new = at_or_above - base
    # Counts are whole firms in the stochastic engines, expected values in the mean field.
    fmt = int if np.issubdtype(at_or_above.dtype, np.integer) else _expected
    names: Sequence[Any] = regions if regions is not None else [None] * at_or_above.shape[1]
    for m, date in enumerate(dates):
        for j, region in enumerate(names):
            row_a, row_n, row_u = at_or_above[m, j], new[m, j], upgraded[m, j]
            head = [rep, date] if region is None else [rep, date, region]
            for k, level in enumerate(LEVELS):
                writer.writerow([*head, level, fmt(row_a[k]), fmt(row_n[k]), fmt(row_u[k])])


CURVE_COLUMNS = {r: COUNT_COLUMNS[r] for r in ("stock", "new", "upgraded")}
"""curves.csv's count columns in file order, one per reading of the target."""


def _expected(x: float) -> str:
    return f"{x:.3f}"


def json_text(obj: Any) -> str:
    """Indented JSON; NaN and infinities are refused, so every reader can load it."""
    return json.dumps(obj, indent=2, allow_nan=False) + "\n"


def write_json(path: Path, obj: Any) -> None:
    """`json_text(obj)` written atomically to `path`."""
    atomic_write(path, json_text(obj))


def write_run(out: Path, scenario: Scenario, results: Mapping[int, RunResult],
              summary: Mapping[str, Any], figures: Iterable[tuple[str, bytes | str]]) -> None:
    """Publish a finished run: scenario, curves (and regions.csv when the scenario declares
    regions), figures, and last the summary that vouches for them."""
    tables = [("curves.csv", run_curves_csv(scenario, results))]
    if scenario.regions:
        tables.append((REGIONS_CSV, run_regions_csv(scenario, results)))
    publish(out, [("scenario.toml", scenario_text(scenario)), *tables, *figures,
                  ("summary.json", json_text(dict(summary)))],
            stale=(REGIONS_CSV, "regions.png"))  # a run with regions replaced by one without


REGIONS_CSV = "regions.csv"


def publish(out: Path, files: Sequence[tuple[str, bytes | str]],
            stale: Sequence[str] = ()) -> None:
    """Put a complete set of files into the folder `out`; the last file vouches for the rest.
    Files named in `stale` that the set does not hold are removed from `out` with the old
    vouching file: they belonged to the set being replaced (where no such set was there, they
    are the user's and stay).

    The set is built in a staging folder beside `out`. A new `out` is that folder renamed
    into place in one step. An existing one (which may hold files of the user's, so it is
    never replaced wholesale) first loses its last file, so that it stops claiming to hold
    finished results, then takes the new files by rename, the vouching one last. Killed at
    any moment, `out` holds the previous complete set or no complete set, never a mix; a
    staging folder left by a killed process is removed by the next publish to `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}{STAGING}{os.getpid()}-"))
    try:
        os.chmod(staging, DIR_MODE)
        for name, data in files:
            with open(staging / name, "wb") as fh:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
                fh.flush()
                os.fsync(fh.fileno())
        try:
            os.rename(staging, out)  # atomic; refused when `out` exists and is not empty
            return
        except OSError:
            if not out.is_dir():
                raise
        # A set like this one was there (complete, or all but its vouching file: a publish
        # killed after removing it): its stale files are its own, not the user's.
        held = (out / files[-1][0]).is_file() or all((out / n).is_file() for n, _ in files[:-1])
        with contextlib.suppress(FileNotFoundError):
            os.unlink(out / files[-1][0])
        for name in set(stale) - {name for name, _ in files} if held else ():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(out / name)
        for name, _ in files:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_stale_staging(out: Path) -> None:
    """Remove staging folders of `out` whose process is gone (killed while publishing)."""
    prefix = f".{out.name}{STAGING}"
    for entry in out.parent.iterdir():
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if entry.name.startswith(prefix) and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """True while process `pid` exists on this machine (someone else's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def read_run_curves(path: Path, column: str = "at_or_above"
                    ) -> tuple[list[str], dict[int, np.ndarray]]:
    """Read one count column of a run's curves.csv back: month-end dates and, per
    replication, a (months, 4) array. KeyError if the file has no such column."""
    rows: dict[int, dict[str, list[float]]] = {}
    dates: list[str] = []
    seen: set[str] = set()
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if column not in (reader.fieldnames or ()):
            raise KeyError(column)
        for row in reader:
            rep = int(row["replication"])
            if row["date"] not in seen:
                seen.add(row["date"])
                dates.append(row["date"])
            rows.setdefault(rep, {lv: [] for lv in LEVELS})[row["level"]].append(
                float(row[column]))
    arrays = {rep: np.array([cols[lv] for lv in LEVELS]).T for rep, cols in rows.items()}
    return dates, arrays


def read_run_regions(path: Path, column: str = "at_or_above"
                     ) -> tuple[list[str], list[str], dict[int, np.ndarray]]:
    """Read one count column of a run's regions.csv back: month-end dates, region names (in
    file order) and, per replication, a (months, regions, 4) array. KeyError if the file has
    no such column."""
    values: dict[int, dict[tuple[str, str], list[float]]] = {}
    dates: dict[str, None] = {}  # insertion-ordered sets
    regions: dict[str, None] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if column not in (reader.fieldnames or ()):
            raise KeyError(column)
        for row in reader:
            dates.setdefault(row["date"])
            regions.setdefault(row["region"])
            values.setdefault(int(row["replication"]), {}).setdefault(
                (row["region"], row["level"]), []).append(float(row[column]))
    arrays = {rep: np.array([[cells[(g, lv)] for lv in LEVELS] for g in regions]
                            ).transpose(2, 0, 1) for rep, cells in values.items()}
    return list(dates), list(regions), arrays
