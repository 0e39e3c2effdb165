"""Sweeps: a design over varied scenario keys, seeded runs per (point, replication), batched
execution on local processes or a Dask cluster, and a crash-safe results folder.

A run's random stream depends only on `(seed, point, replication)`, and batches are plain
data, so the rows are identical whatever executes them. Finished runs go to an append-only
journal (`runs.jsonl`) as soon as their batch returns; the tables are rebuilt from it.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import math
import multiprocessing
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.analysis.verdict import wilson
from sim.engines import DETERMINISTIC, engines
from sim.execution.runner import replication_rng, stop_pool, worker_init
from sim.scenario import Scenario, ScenarioError, get_key, set_key, validate

CURVE_REPS = 50
"""Replications per point whose monthly curve is kept (for the fan of curves)."""
MAX_RUNS = 2_000_000
"""Largest sweep accepted: bounds the journal and the memory of the tables."""
MAX_POINTS = 100_000
"""Most points in a design (each is validated and listed in the manifest)."""
DESIGN_STREAM = 2**31 - 1
"""Spawn key of the design's random stream; runs use two-part keys, so it never collides."""
BATCH_SECONDS = 0.5
"""Work per batch once run times are known: long enough to hide per-task overhead."""
RETRIES = 3
"""Times a batch is resubmitted after its worker died before its runs are marked failed."""
CONNECT_TIMEOUT = "10s"
"""How long to try to reach a Dask scheduler before giving up."""


class SweepError(ValueError):
    """A sweep that cannot start as asked; `lines` says why, one line per problem."""

    def __init__(self, *lines: str):
        self.lines = list(lines)
        super().__init__("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Ranges and designs


@dataclass(frozen=True)
class Range:
    """One varied key: its bounds, whether it is sampled on a log scale and kept whole."""

    key: str
    lo: float
    hi: float
    log: bool = False
    integer: bool = False

    def value(self, u: float) -> float | int:
        """The value at unit coordinate `u` in [0, 1]."""
        if self.log:
            x = math.exp(math.log(self.lo) + u * (math.log(self.hi) - math.log(self.lo)))
        else:
            x = self.lo + u * (self.hi - self.lo)
        x = min(max(x, self.lo), self.hi)
        return int(round(x)) if self.integer else float(f"{x:.12g}")  # no 0.85000000000001

    def unit(self, x: float) -> float:
        """Inverse of `value`: where `x` lies in [0, 1]."""
        if self.hi == self.lo:
            return 0.5
        if self.log:
            return (math.log(x) - math.log(self.lo)) / (math.log(self.hi) - math.log(self.lo))
        return (x - self.lo) / (self.hi - self.lo)

    def as_dict(self) -> dict[str, Any]:
        lo, hi = (int(self.lo), int(self.hi)) if self.integer else (self.lo, self.hi)
        return {"key": self.key, "lo": lo, "hi": hi, "log": self.log, "integer": self.integer}


def parse_vary(text: str) -> tuple[str, float, float, bool]:
    """`KEY=LO:HI` or `KEY=LO:HI:log` -> (key, lo, hi, log); ValueError says what is wrong."""
    if "=" not in text:
        raise ValueError(f"--vary {text!r}: expected KEY=LO:HI "
                         "(e.g. levels.line.imitation=0.2:0.6)")
    key, spec = (s.strip() for s in text.split("=", 1))
    parts = [p.strip() for p in spec.split(":")]
    log = len(parts) == 3 and parts[2].lower() == "log"
    if len(parts) != 2 and not log:
        raise ValueError(f"--vary {text!r}: expected KEY=LO:HI or KEY=LO:HI:log")
    try:
        lo, hi = (float(p.replace("_", "")) for p in parts[:2])
    except ValueError:
        raise ValueError(f"--vary {text!r}: LO and HI must be numbers") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"--vary {text!r}: LO and HI must be finite")
    if not key:
        raise ValueError(f"--vary {text!r}: the key is empty")
    if lo > hi:
        raise ValueError(f"--vary {text!r}: LO ({parts[0]}) exceeds HI ({parts[1]})")
    return key, lo, hi, log


def resolve_ranges(raw: Mapping[str, Any], vary: Sequence[tuple[str, float, float, bool]],
                   *, source: str) -> tuple[Range, ...]:
    """Check each varied key against the scenario (both bounds must validate) and decide
    whether it is a whole-number key; raise SweepError with one line per problem."""
    problems: list[str] = []
    out: list[Range] = []
    seen: set[str] = set()
    for key, lo, hi, log in vary:
        if key in seen:
            problems.append(f"--vary {key}: given twice")
            continue
        seen.add(key)
        if log and lo <= 0:
            problems.append(f"--vary {key}: a log scale needs LO > 0 (got {lo:g})")
            continue
        bad = _bound_problems(raw, key, lo, hi, source)
        if bad:
            problems.extend(bad)
            continue
        integer = _is_whole_number_key(raw, key, source)
        if integer and (lo != int(lo) or hi != int(hi)):
            problems.append(f"--vary {key}: this key takes whole numbers; LO and HI must too")
            continue
        out.append(Range(key, float(lo), float(hi), log, integer))
    if problems:
        raise SweepError(*problems)
    return tuple(out)


def _with(raw: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(dict(raw))
    for key, value in values.items():
        set_key(data, key, value)
    return data


def _bound_problems(raw: Mapping[str, Any], key: str, lo: float, hi: float, source: str
                    ) -> list[str]:
    try:
        current = get_key(raw, key)
    except KeyError:
        current = None
    if isinstance(current, dict | list | bool | str):
        return [f"--vary {key}: is not a number in {source} "
                f"(it holds {type(current).__name__})"]
    for bound in (lo, hi):
        value = int(bound) if bound == int(bound) and isinstance(current, int) else bound
        try:
            validate(_with(raw, {key: value}), source=source)
        except KeyError as exc:
            return [f"--vary {key}: {exc.args[0] if exc.args else exc}"]
        except ScenarioError as exc:
            return [f"--vary {key}={lo:g}:{hi:g}: {p}" for p in exc.problems]
    return []


def _is_whole_number_key(raw: Mapping[str, Any], key: str, source: str) -> bool:
    """True when the validator accepts only whole numbers at `key` (capacities, firm counts)."""
    try:
        current = get_key(raw, key)
    except KeyError:
        return False
    if not isinstance(current, int) or isinstance(current, bool):
        return False
    try:
        validate(_with(raw, {key: current + 0.5}), source=source)
    except ScenarioError as exc:
        return any("whole number" in p for p in exc.problems)
    return False


@dataclass(frozen=True)
class Design:
    """Points of a design. For `sobol`, the points are Saltelli's A, B and AB_i blocks of
    `base` rows each, in that order (what the sensitivity estimators need)."""

    name: str
    ranges: tuple[Range, ...]
    points: tuple[tuple[float | int, ...], ...]
    base: int = 0

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(r.key for r in self.ranges)


def design_size(name: str, d: int, samples: int) -> int:
    """Points that `make_design` would make, computed without making them."""
    if name == "grid":
        return max(2, int(math.floor(samples ** (1.0 / d) + 1e-9))) ** d
    if name == "sobol":
        return (1 << max(0, math.ceil(math.log2(max(samples, 1))))) * (d + 2)
    return samples


def make_design(name: str, ranges: Sequence[Range], samples: int, seed: int) -> Design:
    """Grid (about `samples` points, the same number of levels on every axis), Latin
    hypercube (`samples` points) or Sobol (`samples` base rows, rounded up to a power of two,
    giving samples * (d + 2) points), all seeded from the scenario seed."""
    from scipy.stats import qmc

    d = len(ranges)
    rng = replication_rng(seed, DESIGN_STREAM)
    base = 0
    if name == "grid":
        per_axis = round(design_size(name, d, samples) ** (1.0 / d))
        axes = np.meshgrid(*[np.linspace(0.0, 1.0, per_axis)] * d, indexing="ij")
        unit = np.stack([a.ravel() for a in axes], axis=1)
    elif name == "lhs":
        unit = qmc.LatinHypercube(d=d, rng=rng).random(samples)
    elif name == "sobol":
        base = design_size(name, d, samples) // (d + 2)
        ab = qmc.Sobol(d=2 * d, scramble=True, rng=rng).random_base2(int(math.log2(base)))
        a, b = ab[:, :d], ab[:, d:]
        blocks = [a, b]
        for i in range(d):
            abi = a.copy()
            abi[:, i] = b[:, i]
            blocks.append(abi)
        unit = np.concatenate(blocks, axis=0)
    else:
        raise ValueError(f"unknown design {name!r} (grid, lhs, sobol)")
    points = tuple(tuple(r.value(float(u)) for r, u in zip(ranges, row, strict=True))
                   for row in unit)
    return Design(name, tuple(ranges), points, base)


def point_scenario(raw: Mapping[str, Any], keys: Sequence[str], values: Sequence[Any],
                   source: str) -> Scenario:
    """The scenario at one point: the base with the varied keys set."""
    return validate(_with(raw, dict(zip(keys, values, strict=True))), source=source)


def check_points(raw: Mapping[str, Any], design: Design, source: str) -> None:
    """Validate every point before anything runs (combinations may break rules that each
    bound alone respects); raise SweepError listing the first few that fail."""
    problems: list[str] = []
    for j, values in enumerate(design.points):
        try:
            point_scenario(raw, design.keys, values, source)
        except ScenarioError as exc:
            shown = ", ".join(f"{k}={v}" for k, v in zip(design.keys, values, strict=True))
            problems.append(f"sweep point {j} ({shown}): {exc.problems[0]}")
            if len(problems) >= 5:
                break
    if problems:
        raise SweepError(*problems)


# ---------------------------------------------------------------------------------------------
# Batches: plain data in, plain rows out (the same on a local process or a Dask worker)


@dataclass(frozen=True)
class Batch:
    """Runs to do, each `(point, values, replication)`, against one base scenario."""

    raw: Mapping[str, Any]
    source: str
    engine: str
    seed: int
    keys: tuple[str, ...]
    runs: tuple[tuple[int, tuple[Any, ...], int], ...]
    common_random_numbers: bool = False  # solve: replication r uses the same stream at every x
    curve_reps: int = CURVE_REPS


def run_batch(batch: Batch) -> tuple[list[dict[str, Any]], float]:
    """Do the batch's runs; a run that raises becomes a row with its error, not a failed
    batch. Returns the rows and the seconds spent."""
    started = time.perf_counter()
    engine = engines()[batch.engine]
    scenarios: dict[int, Scenario | Exception] = {}
    rows = []
    for point, values, rep in batch.runs:
        if point not in scenarios:
            try:
                scenarios[point] = point_scenario(batch.raw, batch.keys, values, batch.source)
            except Exception as exc:  # noqa: BLE001 - recorded in the row
                scenarios[point] = exc
        sc = scenarios[point]
        key = (rep,) if batch.common_random_numbers else (point, rep)
        try:
            if isinstance(sc, Exception):
                raise sc
            result = engine(sc, replication_rng(batch.seed, *key))
            rows.append(_row(sc, point, rep, result, keep_curve=rep < batch.curve_reps))
        except Exception as exc:  # noqa: BLE001 - a failed run is kept with its error
            rows.append(failed_row(point, rep, f"{type(exc).__name__}: {exc}"))
    return rows, time.perf_counter() - started


def _number(x: Any) -> int | float:
    if isinstance(x, int | np.integer):
        return int(x)
    return round(float(x), 3)


def _row(sc: Scenario, point: int, rep: int, result: Any, *, keep_curve: bool) -> dict[str, Any]:
    crossing = None if result.crossing_time is None else sc.date_at(result.crossing_time)
    row: dict[str, Any] = {
        "point": point, "replication": rep,
        "count_at_deadline": _number(result.count_at_deadline),
        "met": bool(result.met),
        "crossing_date": None if crossing is None else crossing.isoformat(),
        "error": None,
    }
    if keep_curve:
        k = sc.target.level_index - 1
        offset = result.initial[k] if sc.target.count == "new" else 0
        row["curve"] = [_number(x) for x in result.at_or_above[:, k] - offset]
    return row


def failed_row(point: int, rep: int, error: str) -> dict[str, Any]:
    return {"point": point, "replication": rep, "count_at_deadline": None, "met": None,
            "crossing_date": None, "error": error}


# ---------------------------------------------------------------------------------------------
# Executors: local processes or a Dask cluster behind the same two calls


class LocalExecutor:
    """`jobs` spawned worker processes (or this process when jobs is 1)."""

    shared_fate = True  # one dead worker breaks the pool and every batch in it

    def __init__(self, jobs: int):
        self.workers = jobs
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, batch: Batch):
        if self.workers <= 1:
            from concurrent.futures import Future

            fut: Future = Future()
            fut.set_result(run_batch(batch))
            return fut
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                             initializer=worker_init,
                                             initargs=(os.getpid(),))
        return self._pool.submit(run_batch, batch)

    def wait(self, futures: set, timeout: float) -> tuple[set, set]:
        done, pending = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        return set(done), set(pending)

    @staticmethod
    def outcome(fut) -> tuple[list[dict[str, Any]], float] | BaseException:
        exc = fut.exception()
        return exc if exc is not None else fut.result()

    def lost_workers(self, exc: BaseException) -> bool:
        """A dead worker breaks the whole pool: start a fresh one for the resubmitted batches."""
        if isinstance(exc, BrokenProcessPool):
            self.close(kill=True)
            return True
        return False

    def close(self, *, kill: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if kill:
            stop_pool(pool)
        else:
            pool.shutdown(wait=True)


class DaskExecutor:
    """Batches sent to a running Dask distributed scheduler (imported only here)."""

    shared_fate = False  # the scheduler reschedules a lost worker's other batches itself

    def __init__(self, address: str, client: Any = None):
        from distributed import Client

        self.client = client if client is not None else Client(address, timeout=CONNECT_TIMEOUT)
        self._own = client is None
        self.workers = max(1, sum(w.get("nthreads", 1) for w in
                                  self.client.scheduler_info()["workers"].values()))

    def submit(self, batch: Batch):
        return self.client.submit(run_batch, batch, pure=False)

    def wait(self, futures: set, timeout: float) -> tuple[set, set]:
        from distributed import wait as dask_wait

        try:
            done, pending = dask_wait(list(futures), timeout=timeout,
                                      return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set(), set(futures)
        return set(done), set(pending)

    @staticmethod
    def outcome(fut) -> tuple[list[dict[str, Any]], float] | BaseException:
        if fut.status == "finished":
            return fut.result()
        try:
            return fut.exception()
        except Exception as exc:  # noqa: BLE001 - e.g. the future was cancelled
            return exc

    def lost_workers(self, exc: BaseException) -> bool:
        return True  # the scheduler already moved the other batches; resubmit this one

    def close(self, *, kill: bool = False) -> None:
        if self._own:
            with contextlib.suppress(Exception):
                self.client.close(timeout=5)


def execute(executor: Any, runs: Sequence[tuple[int, tuple[Any, ...], int]], *, raw: Mapping,
            source: str, engine: str, seed: int, keys: tuple[str, ...],
            on_rows: Callable[[list[dict[str, Any]]], None],
            common_random_numbers: bool = False) -> None:
    """Do `runs` in batches on `executor`, calling `on_rows` (in this process) as each batch
    returns. Batches start with one run and grow to about BATCH_SECONDS of work once run
    times are known; at most two per worker are in flight. A batch whose worker died is
    resubmitted up to RETRIES times, then its runs are recorded as failed."""
    queue = list(runs)
    queue.reverse()  # pop() from the end takes runs in their given order
    workers = max(1, executor.workers)
    in_flight: dict[Any, tuple[Batch, int]] = {}
    timing = [0.0, 0]  # seconds, runs
    delivered: set[tuple[int, int]] = set()

    def deliver(rows: list[dict[str, Any]]) -> None:
        # A batch can come back twice (a worker judged lost that finished after all, or
        # rescheduled by Dask as well as by us): each run is passed on once, the first time.
        fresh = [row for row in rows if (row["point"], row["replication"]) not in delivered]
        delivered.update((row["point"], row["replication"]) for row in fresh)
        if fresh:
            on_rows(fresh)

    def next_batch() -> Batch:
        per_run = timing[0] / timing[1] if timing[1] else math.inf
        size = 1 if math.isinf(per_run) else int(BATCH_SECONDS / max(per_run, 1e-6))
        size = max(1, min(size, len(queue) // (2 * workers) or 1, 1000))
        take = [queue.pop() for _ in range(min(size, len(queue)))]
        return Batch(raw, source, engine, seed, keys, tuple(take), common_random_numbers)

    def fill() -> None:
        while queue and len(in_flight) < 2 * workers:
            batch = next_batch()
            in_flight[executor.submit(batch)] = (batch, 0)

    try:
        fill()
        while in_flight:
            done, _ = executor.wait(set(in_flight), timeout=0.25)
            for fut in done:
                if fut not in in_flight:
                    continue  # resubmitted with its broken pool below
                batch, tries = in_flight.pop(fut)
                outcome = executor.outcome(fut)
                if isinstance(outcome, BaseException):
                    if tries + 1 < RETRIES and executor.lost_workers(outcome):
                        again = [(batch, tries + 1)]
                        if executor.shared_fate:  # a broken local pool fails every batch
                            again.extend(in_flight.values())
                            in_flight.clear()
                        for b, t in again:
                            in_flight[executor.submit(b)] = (b, t)
                        continue
                    text = f"{type(outcome).__name__}: {outcome}".strip()
                    deliver([failed_row(p, r, f"worker lost: {text}") for p, _, r in batch.runs])
                    continue
                rows, seconds = outcome
                timing[0] += seconds
                timing[1] += len(rows)
                deliver(rows)
            fill()
    except BaseException:
        executor.close(kill=True)
        raise


# ---------------------------------------------------------------------------------------------
# The results folder: lock, manifest check, journal


class FolderLock:
    """`OUT/.lock` holding our pid and host; refuses a live holder, takes over a dead one's."""

    def __init__(self, folder: Path):
        self.path = folder / ".lock"
        self.held = False

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _proc_start(os.getpid()),
              "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and _alive(holder):
                    raise SweepError(
                        f"{self.path.parent}: another sweep is running on this folder (pid "
                        f"{holder.get('pid')} on {holder.get('host')} since "
                        f"{holder.get('since', '?')}); wait for it or use another --out"
                    ) from None
                with contextlib.suppress(FileNotFoundError):  # stale: its process is gone
                    os.unlink(self.path)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self.held = True
            return
        raise SweepError(f"{self.path}: could not take the lock (another sweep keeps taking it)")

    def _holder(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # A lock being written right now, or torn by a crash while being written.
            age = time.time() - self.path.stat().st_mtime if self.path.exists() else 99
            return {"pid": "?", "host": "?", "young": age < 5}

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.held = False


def _proc_start(pid: int) -> str | None:
    """Start time of `pid` (clock ticks since boot), so a reused pid is not taken for ours."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: Mapping[str, Any]) -> bool:
    if "young" in holder:  # unreadable: being written now, or torn by a crash long ago
        return bool(holder["young"])
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process: we cannot tell, so we do not take it over
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = holder.get("started")
    return started is None or _proc_start(pid) in (None, started)


class Journal:
    """Append-only JSON lines, one per finished run, flushed and fsynced per batch. A line
    torn by a kill is dropped (and cut off) when the journal is read back."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict[tuple[int, int], dict[str, Any]]:
        rows: dict[tuple[int, int], dict[str, Any]] = {}
        if not self.path.is_file():
            return rows
        good = 0
        with open(self.path, "rb") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                    key = (int(row["point"]), int(row["replication"]))
                except (ValueError, KeyError, TypeError):
                    break
                if not line.endswith(b"\n"):
                    break
                rows.setdefault(key, row)  # first record wins: a run is never counted twice
                good += len(line)
        if good < self.path.stat().st_size:
            with open(self.path, "r+b") as fh:
                fh.truncate(good)
        return rows

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def check_manifest(path: Path, identity: Mapping[str, Any]) -> None:
    """Refuse to resume into a folder that holds a different sweep."""
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise SweepError(f"{path}: unreadable manifest; use another --out") from None
    differs = [k for k in identity if _plain(old.get(k)) != _plain(identity[k])]
    if differs:
        raise SweepError(
            f"{path.parent}: holds a different sweep (it differs in {', '.join(differs)}); "
            "use another --out or delete that folder")


def _plain(x: Any) -> Any:
    return json.loads(json.dumps(x))


# ---------------------------------------------------------------------------------------------
# Tables


def point_stats(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Replications, failures, P(met) with its Wilson interval and the count's mean and
    quantiles over the successful runs of one point."""
    ok = [r for r in rows if r.get("error") is None]
    n = len(ok)
    met = sum(bool(r["met"]) for r in ok)
    lo, hi = wilson(met, n)
    counts = np.array([r["count_at_deadline"] for r in ok], dtype=float)
    var = float(counts.var(ddof=1)) if n > 1 else math.nan
    return {
        "replications": n, "failed": sum(1 for r in rows if r.get("error") is not None),
        "met": met, "p_met": met / n if n else math.nan, "p_met_lo": lo, "p_met_hi": hi,
        "count_mean": float(counts.mean()) if n else math.nan,
        "count_var": var,
        "count_p05": float(np.quantile(counts, 0.05)) if n else math.nan,
        "count_p50": float(np.quantile(counts, 0.50)) if n else math.nan,
        "count_p95": float(np.quantile(counts, 0.95)) if n else math.nan,
    }


def _cell(x: Any) -> Any:
    if x is None:
        return ""
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, float):
        return "" if math.isnan(x) else repr(round(x, 6))
    return x


def runs_csv(design: Design, rows: Mapping[tuple[int, int], Mapping[str, Any]]) -> str:
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


POINT_COLUMNS = ("replications", "failed", "met", "p_met", "p_met_lo", "p_met_hi",
                 "count_mean", "count_p05", "count_p50", "count_p95")


def points_csv(design: Design, stats: Sequence[Mapping[str, Any]]) -> str:
    """One row per point: its parameters, P(met) with the Wilson 95% interval, counts."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["point", *design.keys, *POINT_COLUMNS])
    for j, values in enumerate(design.points):
        writer.writerow([j, *values, *(_cell(stats[j][c]) for c in POINT_COLUMNS)])
    return buf.getvalue()


def curves_csv(dates: Sequence[str], curves: Mapping[int, np.ndarray]) -> str:
    """Counted firms per point and month end: 5%, 50% and 95% over the kept replications."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["point", "date", "p05", "p50", "p95"])
    for point in sorted(curves):
        lo, med, hi = np.percentile(curves[point], [5, 50, 95], axis=0)
        for m, date in enumerate(dates):
            writer.writerow([point, date, _cell(float(lo[m])), _cell(float(med[m])),
                             _cell(float(hi[m]))])
    return buf.getvalue()


def point_curves(rows: Mapping[tuple[int, int], Mapping[str, Any]]) -> dict[int, np.ndarray]:
    """Kept monthly curves stacked per point, (replications, months)."""
    by_point: dict[int, list[tuple[int, list]]] = {}
    for (point, rep), r in rows.items():
        if r.get("curve") is not None:
            by_point.setdefault(point, []).append((rep, r["curve"]))
    return {p: np.array([c for _, c in sorted(items)], dtype=float)
            for p, items in by_point.items()}


# ---------------------------------------------------------------------------------------------
# Replications per point, fixed or until a precision is reached


def needed_replications(met: int, n: int, half_width: float, cap: int) -> int:
    """Smallest replication count (>= n, <= cap) at which the Wilson half-width at the
    current share met/n would be at most `half_width`; grows by at least a quarter."""
    if n and _half(met / n, n) <= half_width:
        return n
    p = met / n if n else 0.5
    target = max(n + 1, math.ceil(n * 1.25))
    while target < cap and _half(p, target) > half_width:
        target = math.ceil(target * 1.25)
    return min(target, cap)


def _half(p: float, n: int) -> float:
    lo, hi = wilson(round(p * n), n)
    return (hi - lo) / 2


def replication_plan(rows: Mapping[tuple[int, int], Mapping[str, Any]], n_points: int,
                     replications: int, precision: float | None, cap: int,
                     deterministic: bool) -> Iterable[list[int]]:
    """Yield, round by round, the replication count wanted per point. Round k's counts
    depend only on the runs of round k-1 (not on any others already in the journal), so a
    resumed sweep asks for exactly what an uninterrupted one would."""
    wanted = [1 if deterministic else replications] * n_points
    yield wanted
    if precision is None or deterministic:
        return
    while True:
        nxt = []
        for j, n in enumerate(wanted):
            ok = [rows[(j, r)] for r in range(n) if rows[(j, r)].get("error") is None]
            met = sum(bool(r["met"]) for r in ok)
            more = needed_replications(met, len(ok), precision, cap)
            nxt.append(n + max(0, more - len(ok)) if len(ok) < cap else n)
        if nxt == wanted:
            return
        wanted = [min(x, cap) for x in nxt]
        yield wanted


@dataclass
class SweepState:
    """What has been done so far: rows by (point, replication), and how they are saved."""

    journal: Journal
    rows: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)

    def add(self, new_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        fresh = [r for r in new_rows if (r["point"], r["replication"]) not in self.rows]
        if fresh:
            self.journal.append(fresh)
            for r in fresh:
                self.rows[(r["point"], r["replication"])] = r
        return fresh


# ---------------------------------------------------------------------------------------------
# A whole sweep


@dataclass(frozen=True)
class SweepPlan:
    """Everything that defines a sweep's results; its `identity` goes in the manifest."""

    scenario: Scenario
    design: Design
    engine: str
    replications: int
    samples: int
    precision: float | None = None
    max_replications: int = 1000

    @property
    def deterministic(self) -> bool:
        return self.engine in DETERMINISTIC

    def identity(self, version: str, scenario_sha256: str) -> dict[str, Any]:
        t = self.scenario.target
        return {
            "kind": "sweep", "scenario": self.scenario.name,
            "scenario_sha256": scenario_sha256, "version": version, "engine": self.engine,
            "seed": self.scenario.seed, "design": self.design.name, "samples": self.samples,
            "base_samples": self.design.base,
            "replications": 1 if self.deterministic else self.replications,
            "precision": self.precision,
            "max_replications": self.max_replications if self.precision else None,
            "ranges": [r.as_dict() for r in self.design.ranges],
            "points": [list(p) for p in self.design.points],
            "target": {"firms": t.firms, "level": t.level, "deadline": t.deadline.isoformat(),
                       "count": t.count},
        }

    def runs_upper_bound(self) -> int:
        per_point = self.max_replications if self.precision else self.replications
        return len(self.design.points) * (1 if self.deterministic else per_point)


def run_sweep(plan: SweepPlan, out: Path, executor: Any, *,
              on_progress: Callable[[int, int], None] = lambda done, total: None
              ) -> dict[tuple[int, int], dict[str, Any]]:
    """Do every run of `plan` not yet in `out`'s journal (all of them for a new folder),
    round by round when a precision is asked; return all rows by (point, replication)."""
    n_points = len(plan.design.points)
    state = SweepState(Journal(out / "runs.jsonl"))
    state.rows = {k: v for k, v in state.journal.read().items() if 0 <= k[0] < n_points}
    sc = plan.scenario
    for wanted in replication_plan(state.rows, n_points, plan.replications, plan.precision,
                                   plan.max_replications, plan.deterministic):
        missing = [(j, plan.design.points[j], r) for j in range(n_points)
                   for r in range(wanted[j]) if (j, r) not in state.rows]
        total = sum(wanted)
        done = [total - len(missing)]
        on_progress(done[0], total)

        def take(rows: list[dict[str, Any]], done=done, total=total) -> None:
            done[0] += len(state.add(rows))
            on_progress(done[0], total)

        if missing:
            execute(executor, missing, raw=sc.raw, source=sc.source, engine=plan.engine,
                    seed=sc.seed, keys=plan.design.keys, on_rows=take)
    return state.rows
