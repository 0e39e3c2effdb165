"""The Python API for notebooks (`sim.run`, `sim.sweep`, `sim.solve`): a scenario given as a
path or a Scenario, overrides as Python values, results as pandas DataFrames.

The CLI calls the use cases of `sim.api` (a validated Scenario in, an outcome out); these
wrappers add what a notebook user wants in one call: loading, `set` overrides applied before
validation, a progress bar, and tables. See docs/api.md.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import json
import numbers
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim import __version__
from sim.api import options
from sim.api.common import InputError, Progress, executor_for
from sim.api.run import RunOutcome
from sim.api.run import run as run_scenario
from sim.api.solve import SolveOutcome, write_solve
from sim.api.solve import solve as solve_scenario
from sim.api.sweep import SweepOutcome, sweep_plan
from sim.api.sweep import sweep as sweep_into
from sim.engines import RunResult
from sim.explore.plan import SweepPlan
from sim.scenario import (
    DATE_KEYS,
    LEVELS,
    Scenario,
    ScenarioError,
    get_key,
    key_text,
    read_toml,
    set_key,
    toml_value,
    validate,
)
from sim.store import files

if TYPE_CHECKING:
    import pandas as pd

ScenarioLike = str | os.PathLike[str] | Scenario
"""A scenario file's path, or a Scenario already loaded (`sim.load`)."""

ProgressLike = bool | Progress
"""False (quiet), True (a progress bar on stderr), or a callable `(done, total or None)`."""


def scenario_of(source: ScenarioLike, set: Mapping[str, Any] | None = None, *,
                replications: int | None = None, seed: int | None = None) -> Scenario:
    """The scenario to run: `source` loaded (a path) or taken as is (a Scenario), with the
    dotted keys of `set` and then `replications` and `seed` applied before validation.
    Raises ScenarioError listing every problem (a key that does not exist, a bad value)."""
    if set is not None and not isinstance(set, Mapping):
        raise InputError(f"set={set!r}: give a mapping of dotted keys to values, e.g. "
                         "{'levels.line.imitation': 0.8}")
    overrides = dict(set or {})
    if replications is not None:
        overrides["replications"] = replications
    if seed is not None:
        overrides["seed"] = seed
    if isinstance(source, Scenario):
        if not overrides:
            return source
        raw, where = copy.deepcopy(dict(source.raw)), source.source
    elif isinstance(source, str | os.PathLike):
        where = os.fspath(source)
        raw = read_toml(Path(where))
    else:
        raise TypeError(f"expected a scenario file's path or a Scenario, not "
                        f"{type(source).__name__}")
    problems = []
    for key, value in overrides.items():
        try:
            key = str(key).strip()
            set_key(raw, key, _toml_value(value, _current(raw, key), key.rsplit(".", 1)[-1]))
        except (ValueError, KeyError) as exc:
            msg = exc.args[0] if exc.args else str(exc)
            problems.append(f"{where}: set {key!r}: {msg}")
    if problems:
        raise ScenarioError(problems)
    return validate(raw, source=where)


def _current(raw: Mapping[str, Any], key: str) -> Any:
    try:
        return get_key(raw, key)
    except (KeyError, IndexError):
        return None


def _toml_value(value: Any, current: Any = None, name: str = "") -> Any:
    """A Python value as the TOML reader would have produced it: numpy scalars and arrays,
    tuples, mappings and midnight datetimes (pandas Timestamps) become int, float, list,
    dict and date. ISO text becomes a date where it replaces a date or sits under a date's
    key (`DATE_KEYS`: `start`, `end`, ... also inside a list of tables); other text stays
    text. `name` is the last part of the value's key."""
    import numpy as np

    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        dated = isinstance(current, dt.date) and not isinstance(current, dt.datetime)
        if dated or name in DATE_KEYS:
            with contextlib.suppress(ValueError):
                return dt.date.fromisoformat(value.strip())
        return value
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValueError("NaT (no date) is not a scenario value: give a date")
        value = value.astype("datetime64[us]").item()
    if isinstance(value, dt.datetime):
        if value != value:  # pandas' NaT, a datetime that is no date
            raise ValueError("NaT (no date) is not a scenario value: give a date")
        if value.tzinfo is None and value.time() == dt.time(0):
            return value.date()
        return dt.datetime(value.year, value.month, value.day, value.hour, value.minute,
                           value.second, value.microsecond, value.tzinfo)  # not a Timestamp
    if isinstance(value, dt.date):
        return value
    if isinstance(value, Mapping):
        inner = current if isinstance(current, dict) else {}
        return {str(k): _toml_value(v, inner.get(str(k)), str(k)) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        if value.ndim == 0:  # np.array(0.6): the number it holds
            return _toml_value(value.item(), current, name)
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [_toml_value(v, name=name) for v in value]
    raise ValueError(f"{value!r} ({type(value).__name__}) is not a scenario value: give a "
                     "number, text, a date, a list or a dict")


@contextlib.contextmanager
def _progress(progress: ProgressLike, label: str) -> Iterator[Progress | None]:
    """The callback for `progress`: None, the caller's own, or a tqdm bar closed at the end."""
    if callable(progress):
        yield progress
        return
    if not progress:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(desc=label, unit="run", dynamic_ncols=True)

    def update(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()


def run(scenario: ScenarioLike, *, set: Mapping[str, Any] | None = None,
        engine: str = "des", replications: int | None = None, seed: int | None = None,
        jobs: int | None = None, progress: ProgressLike = False) -> RunOutcome:
    """Run a scenario (a path or a Scenario) with `set` overrides (dotted keys to Python
    values) and return its RunOutcome: `.line`, `.summary`, `.curves`, `.figure()`,
    `.write()`. Writes nothing. `jobs` local processes (default: all cores)."""
    options.engine(engine)
    sc = scenario_of(scenario, set, replications=replications, seed=seed)
    with _progress(progress, sc.name) as bar:
        return run_scenario(sc, engine=engine, jobs=jobs, progress=bar)


def curves_frame(scenario: Scenario, results: Mapping[int, RunResult]) -> pd.DataFrame:
    """A run's curves.csv as a long DataFrame, the same rows and values (counts rounded as
    the file writes them), with `date` as datetime64."""
    import numpy as np

    return _long_frame(scenario, {rep: (np.asarray(r.at_or_above)[:, None, :],
                                        np.asarray(r.upgraded)[:, None, :],
                                        r.base()[:, None, :])
                                  for rep, r in results.items()}, None)


def regions_frame(scenario: Scenario, results: Mapping[int, RunResult]) -> pd.DataFrame:
    """A run's regions.csv as a long DataFrame (curves_frame's columns with `region` after
    the date), the same rows and values; one region, `national`, when there are none."""
    return _long_frame(scenario, {rep: (*r.regional()[:2], r.region_base())
                                  for rep, r in results.items()},
                       scenario.region_names)


def _long_frame(scenario: Scenario, arrays: Mapping[int, tuple[Any, Any, Any]],
                regions: Sequence[str] | None) -> pd.DataFrame:
    """Rows by replication, month end, region (when `regions` is given) and level, from each
    replication's (at_or_above, upgraded, base: (months, regions, 4); base is what `new`
    subtracts from the stock)."""
    import numpy as np
    import pandas as pd

    dates = [d.isoformat() for d in scenario.month_ends()]
    width = len(LEVELS) * (len(regions) if regions is not None else 1)
    reps = sorted(arrays)
    columns: dict[str, list[np.ndarray]] = {c: [] for c in files.CURVE_COLUMNS.values()}
    for rep in reps:
        at_or_above, upgraded, base = arrays[rep]
        stock = np.asarray(at_or_above)
        new = stock - np.asarray(base)
        whole = np.issubdtype(stock.dtype, np.integer)
        for name, values in zip(columns, (stock, new, np.asarray(upgraded)), strict=True):
            flat = np.asarray(values).reshape(-1)
            columns[name].append(flat.astype(np.int64) if whole else np.array(
                [float(f"{x:.3f}") for x in flat], dtype=float))
    rows = len(dates) * width * len(reps)
    frame = pd.DataFrame({
        "replication": np.repeat(np.array(reps, dtype=np.int64), len(dates) * width),
        "date": pd.to_datetime(np.tile(np.repeat(dates, width), len(reps)), format="%Y-%m-%d"),
    })
    if regions is not None:
        per = np.repeat(np.array(list(regions), dtype=object), len(LEVELS))
        frame["region"] = np.tile(per, rows // len(per)) if rows else per[:0]
    frame["level"] = np.tile(np.array(LEVELS, dtype=object), rows // len(LEVELS))
    for name, parts in columns.items():
        frame[name] = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return frame


def run_folder(scenario: Scenario) -> Path:
    """Where `RunOutcome.write()` publishes a run: `results/<name>/` for the scenario as its
    file has it (replications and seed aside), else `results/<name>-<hash>/` named by the
    values changed, as `sim run --set` names it, so a variant never replaces the scenario's
    own results."""
    try:
        original = read_toml(Path(scenario.source))
    except ScenarioError:  # no file behind it (built in Python): nothing to differ from
        original = None
    changed = [] if original is None else sorted(_changes(scenario.raw, original, ()))
    return files.default_out(scenario, overrides=changed)


_ABSENT = object()


def _changes(new: Any, old: Any, path: tuple[str, ...]) -> list[str]:
    """`key=value` for every value of `new` that differs from `old`, keys dotted as `--set`
    takes them (list entries by index)."""
    if isinstance(new, dict) and isinstance(old, dict):
        keys = [k for k in {**old, **new} if path or k not in ("replications", "seed")]
        return [c for k in keys for c in _changes(new.get(k, _ABSENT), old.get(k, _ABSENT),
                                                   (*path, str(k)))]
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [c for i, (x, y) in enumerate(zip(new, old, strict=True))
                for c in _changes(x, y, (*path, str(i)))]
    if type(new) is type(old) and new == old:
        return []
    text = '"(removed)"' if new is _ABSENT else toml_value(new)
    return [f"{'.'.join(key_text(p) for p in path)}={text}"]


@dataclass
class SweepTables(SweepOutcome):
    """A finished sweep (a SweepOutcome: `.plan`, `.out`, `.rows`, `.line`) with its tables
    read from its folder as DataFrames and its figures' paths."""

    @cached_property
    def points(self) -> pd.DataFrame:
        """points.csv: one row per point, its parameters, P(met) with its interval, counts."""
        return _read_csv(self.out / "points.csv")

    @cached_property
    def runs(self) -> pd.DataFrame:
        """runs.csv: one row per run (point, replication), its count and crossing date."""
        return _read_csv(self.out / "runs.csv")

    @cached_property
    def sensitivity(self) -> pd.DataFrame:
        """sensitivity.csv: the Sobol (or design) indices per output and parameter."""
        return _read_csv(self.out / "sensitivity.csv")

    def figures(self) -> list[Path]:
        """The sweep's figures (PNG files in `out`)."""
        return sorted(self.out.glob("*.png"))


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    return pd.read_csv(path)


def _vary_texts(vary: str | Sequence[str] | Mapping[str, Any] | None) -> list[str]:
    """`vary` as `KEY=LO:HI[:log]` texts: from texts, or a mapping of dotted keys to
    (lo, hi), (lo, hi, "log") or a "LO:HI[:log]" text."""
    if vary is None:
        return []
    if isinstance(vary, str):
        return [vary]
    if not isinstance(vary, Mapping):
        return [str(v) for v in vary]
    out = []
    for key, spec in vary.items():
        if isinstance(spec, str):
            out.append(f"{key}={spec}")
            continue
        parts = list(spec) if isinstance(spec, Sequence) else []
        log = len(parts) == 3 and str(parts[2]).lower() == "log"
        if not (len(parts) == 2 or log) or not all(isinstance(x, numbers.Real)
                                                     for x in parts[:2]):
            raise InputError(f"vary {key!r}: give (LO, HI) or (LO, HI, 'log'), not {spec!r}")
        out.append(f"{key}={float(parts[0])!r}:{float(parts[1])!r}" + (":log" if log else ""))
    return out


def sweep(scenario: ScenarioLike | SweepPlan, *,
          vary: str | Sequence[str] | Mapping[str, Any] | None = None,
          design: str | None = None, samples: int | None = None,
          replications: int | None = None, precision: float | None = None,
          set: Mapping[str, Any] | None = None, seed: int | None = None,
          engine: str | None = None, axes: Sequence[str] | None = None,
          jobs: int | None = None, scheduler: str | None = None,
          out: str | Path | None = None, progress: ProgressLike = False) -> SweepTables:
    """Run a design over the scenario's parameters (`vary`: {key: (lo, hi)}, default its
    [sweep.vary] table) and return its SweepTables. A sweep always writes a folder: `out`,
    default `results/<name>-sweep-<hash>/` named by a hash of the sweep (scenario as run,
    design, engine, replications), so the same call again resumes it or just reads it back,
    and a different one never touches it. `engine` defaults to "tau". A SweepPlan
    (`sim.sweep_plan`) is run as it is, on its own engine."""
    options.engine(engine, default="tau")
    if isinstance(scenario, SweepPlan):
        given = {"vary": vary, "design": design, "samples": samples, "replications":
                 replications, "precision": precision, "set": set, "seed": seed, "axes": axes,
                 "engine": None if engine == scenario.engine else engine}
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise InputError(f"a SweepPlan is run as it is: give {', '.join(extra)} to "
                             "sim.sweep_plan instead")
        plan = scenario
    else:
        sc = scenario_of(scenario, set, seed=seed)
        plan = sweep_plan(sc, vary=_vary_texts(vary), design=design, samples=samples,
                          replications=replications,
                          engine="tau" if engine is None else engine,
                          precision=precision,
                          axes=axes)
    folder = options.out_folder(out, "sweep") if out is not None else sweep_folder(plan)
    with executor_for(jobs, scheduler) as executor, \
            _progress(progress, f"{plan.scenario.name} sweep") as bar:
        outcome = sweep_into(plan, folder, executor=executor, progress=bar)
    return SweepTables(**{f.name: getattr(outcome, f.name) for f in fields(SweepOutcome)})


def sweep_folder(plan: SweepPlan) -> Path:
    """`results/<name>-sweep-<8 hex digits>/`: the hash of what must match to resume it,
    with the scenario's values in place of its text, so that a comment added to the file,
    which `sim sweep` resumes across, names the same folder."""
    identity = plan.identity(__version__, files.model_sha256(plan.scenario))
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    return files.default_out(plan.scenario, f"-sweep-{digest.hexdigest()[:8]}")


def solve(scenario: ScenarioLike, *, vary: str | Mapping[str, Any], probability: float,
          decreasing: bool = False, replications: int | None = None,
          max_replications: int | None = None, tolerance: float | None = None,
          set: Mapping[str, Any] | None = None, seed: int | None = None,
          engine: str = "tau", jobs: int | None = None, out: str | Path | None = None,
          progress: ProgressLike = False) -> SolveOutcome:
    """The value of one parameter (`vary`: {key: (lo, hi)} or "KEY=LO:HI") at which P(target
    met) reaches `probability`, to within `tolerance` (parameter units): a SolveOutcome
    (`.result.value`, `.result.message`, `.doc`). Writes solve.json and solve.png only when
    `out` is given."""
    options.engine(engine)
    texts = _vary_texts(vary)
    if len(texts) != 1:
        raise InputError(f"vary: give exactly one parameter to search, not {len(texts)}")
    sc = scenario_of(scenario, set, seed=seed)
    if out is not None:  # before the search, not after it
        options.out_folder(out, "solve")
    with _progress(progress, f"{sc.name} solve") as bar:
        outcome = solve_scenario(sc, texts[0], probability, engine=engine,
                                 replications=replications, max_replications=max_replications,
                                 decreasing=decreasing, tolerance=tolerance, jobs=jobs,
                                 progress=bar)
    if out is not None:
        write_solve(outcome, out)
    return outcome


__all__ = ["ScenarioLike", "SweepTables", "curves_frame", "regions_frame", "run", "run_folder",
           "scenario_of", "solve", "sweep", "sweep_folder"]
