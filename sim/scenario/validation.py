"""Load a scenario TOML file, apply `--set` overrides and validate it into frozen objects.

This module is the only gate from user input to the model: everything downstream reads the
typed `Scenario`, never the raw dictionary. Every problem found is reported at once, one
line each, naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEVELS: tuple[str, ...] = ("device", "line", "factory", "ecosystem")
"""Adoption levels in climbing order; level index k = 1..4, 0 means `none`."""

COUNTS = ("new", "stock")
DESIGNS = ("grid", "lhs", "sobol")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DAYS_PER_YEAR = 365.25
MAX_FIRMS = 10**9
TAU_STEP_DAYS = 10.0  # default step of the fast engine: bias measured in docs/performance.md
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
MAX_HORIZON_YEARS = 100  # a planning horizon; months, curves and figures grow with it


class ScenarioError(ValueError):
    """A scenario (or an override) that cannot be run; `problems` holds one line per fault."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Level:
    """Parameters of the project that takes a firm from level k-1 to level k."""

    name: str
    innovation: float = 0.0
    imitation: float = 0.0
    eligible: float = 1.0
    implementation_median: float = 0.0  # months
    implementation_sigma: float = 0.0
    success: float = 1.0
    retry: float = 12.0  # months
    needs: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Segment:
    """A group of exchangeable firms: population share, propensity per level, initial levels."""

    name: str
    share: float
    propensity: tuple[float, ...]  # one per level, device..ecosystem
    initial: tuple[float, ...]  # share at exactly each level, device..ecosystem


@dataclass(frozen=True)
class Resource:
    """A pool of units held by running projects; capacity compounds at `growth` per year."""

    name: str
    capacity: int
    growth: float = 0.0


@dataclass(frozen=True)
class Policy:
    """A dated intervention multiplying decision hazards, optionally with a subsidy budget."""

    name: str
    start: dt.date
    end: dt.date
    multiplier: tuple[float, ...]  # per level
    segments: tuple[str, ...] | None = None  # None: all segments
    budget: float | None = None  # yuan; None: unlimited
    cost: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)  # yuan paid per project started, per level


@dataclass(frozen=True)
class Shock:
    """A dated change to a resource's capacity or to a level's parameters."""

    name: str
    at: dt.date
    end: dt.date | None = None  # optional: the shock is lifted after this day
    resource: str | None = None
    capacity_factor: float = 1.0
    level: str | None = None
    innovation_factor: float = 1.0
    imitation_factor: float = 1.0
    success_factor: float = 1.0


@dataclass(frozen=True)
class Target:
    """What counts as meeting the plan: `firms` at `level` or higher by `deadline`."""

    firms: int
    level: str
    deadline: dt.date
    count: str = "new"

    @property
    def level_index(self) -> int:
        return LEVELS.index(self.level) + 1


@dataclass(frozen=True)
class Sweep:
    """Defaults for `sim sweep`: a design over dotted keys with [lo, hi] ranges."""

    design: str = "lhs"
    samples: int = 64
    replications: int = 50
    vary: tuple[tuple[str, float, float], ...] = ()
    log: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: everything the engines need, nothing they must re-check."""

    name: str
    description: str
    start: dt.date
    end: dt.date
    replications: int
    seed: int
    target: Target
    firms: int
    peer_weight: float
    segments: tuple[Segment, ...]
    levels: tuple[Level, ...]  # always four, device..ecosystem
    resources: tuple[Resource, ...] = ()
    policies: tuple[Policy, ...] = ()
    shocks: tuple[Shock, ...] = ()
    sweep: Sweep | None = None
    tau_step: float = TAU_STEP_DAYS  # days; step of the fast engine (`[engine] tau_step`)
    source: str = "<scenario>"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def years(self, date: dt.date, *, end_of_day: bool = False) -> float:
        """Model time (years since the start of `start`) of the beginning or end of `date`."""
        days = (date - self.start).days + (1 if end_of_day else 0)
        return days / DAYS_PER_YEAR

    @property
    def horizon(self) -> float:
        """Model time of the end of the last day."""
        return self.years(self.end, end_of_day=True)

    @property
    def deadline(self) -> float:
        return self.years(self.target.deadline, end_of_day=True)

    def date_at(self, years: float) -> dt.date:
        """Calendar day on which model time `years` falls."""
        return self.start + dt.timedelta(days=math.floor(years * DAYS_PER_YEAR + 1e-9))

    def month_ends(self) -> list[dt.date]:
        """Last day of every month from the start month to the end month."""
        out = []
        year, month = self.start.year, self.start.month
        while True:
            nxt = dt.date(year + month // 12, month % 12 + 1, 1)
            last = nxt - dt.timedelta(days=1)
            if last > self.end:
                break
            out.append(last)
            year, month = nxt.year, nxt.month
        return out


# ---------------------------------------------------------------------------------------------
# Reading and overrides


def load(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override and validate a scenario file; raise ScenarioError listing every problem."""
    path = Path(path)
    raw = read_toml(path)
    apply_overrides(raw, overrides, source=str(path))
    return validate(raw, source=str(path))


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file into a dict, turning every reading fault into a ScenarioError line."""
    src = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioError([f"{src}: cannot read the file ({exc.strerror or exc})"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        shown = _show(data.split(b"\n")[line - 1].decode("utf-8", errors="replace"))
        raise ScenarioError(
            [f"{src}: line {line}: {shown}: byte {exc.start} is not UTF-8: a scenario file "
             "must be UTF-8 text"]
        ) from None
    if not text.strip():
        raise ScenarioError([f"{src}: the file is empty: a scenario needs at least name, start, "
                             "end, [target] and [population]"])
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ScenarioError([f"{src}: {_toml_line(text, None)}not valid TOML: nested too "
                             "deeply"]) from None
    except ValueError as exc:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise ScenarioError([f"{src}: {_toml_line(text, exc)}not valid TOML: "
                             f"{_toml_reason(exc)}"]) from None


_AT_LINE = re.compile(r" \(at line (\d+), column \d+\)| \(at end of document\)")


def _toml_reason(exc: ValueError) -> str:
    if isinstance(exc, tomllib.TOMLDecodeError):
        return _AT_LINE.sub("", str(exc))
    return "a whole number with more than 4300 digits"


def _toml_line(text: str, exc: ValueError | None) -> str:
    """'line N: <the line>: ' for a TOML error, so that the message shows the key at fault.

    tomllib names the line of a syntax error; an over-long integer or too deep nesting it
    does not, so the line with the longest run of digits or the most brackets is named."""
    lines = text.splitlines()
    found = _AT_LINE.search(str(exc)) if exc is not None else None
    if found and found.group(1):
        n = int(found.group(1))
    else:
        def weight(line: str) -> int:
            if exc is None:
                return line.count("[") + line.count("{")
            return max((len(m) for m in re.findall(r"\d+", line)), default=0)

        n = 1 + max(range(len(lines)), key=lambda i: weight(lines[i])) if lines else 0
    if not 1 <= n <= len(lines):
        return ""
    return f"line {n}: {_show(lines[n - 1].strip())}: "


def parse_value(text: str) -> Any:
    """A `--set` value in TOML value syntax; a bare word that is not TOML is taken as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except RecursionError:
        raise ValueError("the value is nested too deeply") from None
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", text.strip()):
            return text.strip()
        raise ValueError(f"{_show(text)} is not a TOML value (quote strings, e.g. "
                         "'\"line\"')") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise ValueError(f"not a usable TOML value: {_toml_reason(exc)}") from None


def split_key(key: str) -> list[str]:
    """Split a dotted key; parts may be quoted ("a.b"), list elements named by index or name."""
    parts, buf, quote = [], "", None
    for ch in key:
        if quote:
            if ch == quote:
                quote = None
            else:
                buf += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(buf)
            buf = ""
        else:
            buf += ch
    parts.append(buf)
    return [p.strip() for p in parts]


def set_key(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set dotted `key` in `raw`, creating tables as needed; list elements by index or name."""
    parts = split_key(key)
    if not key.strip() or any(p == "" for p in parts):
        raise KeyError(f"{key!r} is not a dotted key")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        node = _child(node, part, parts[: i + 1], create=True)
    last = parts[-1]
    if isinstance(node, list):
        idx = _list_index(node, last, parts)
        node[idx] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise KeyError(f"{'.'.join(parts[:-1])} is a value, not a table")


def get_key(raw: Mapping[str, Any], key: str) -> Any:
    """Read dotted `key` from `raw` (KeyError if absent)."""
    node: Any = raw
    parts = split_key(key)
    for i, part in enumerate(parts):
        node = _child(node, part, parts[: i + 1], create=False)
    return node


def _child(node: Any, part: str, path: list[str], *, create: bool) -> Any:
    if isinstance(node, list):
        return node[_list_index(node, part, path)]
    if not isinstance(node, dict):
        raise KeyError(f"{'.'.join(path[:-1])} is a value, not a table")
    if part not in node:
        if not create:
            raise KeyError(f"{'.'.join(path)} is not set")
        node[part] = {}
    return node[part]


def _list_index(node: list[Any], part: str, path: list[str]) -> int:
    if part.isdigit():
        idx = int(part)
        if idx >= len(node):
            raise KeyError(f"{'.'.join(path)}: index {idx} but the list has {len(node)} entries")
        return idx
    for idx, item in enumerate(node):
        if isinstance(item, dict) and item.get("name") == part:
            return idx
    raise KeyError(f"{'.'.join(path)}: no entry named {part!r} (use an index or a name)")


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str], *, source: str) -> None:
    """Apply `key=value` overrides in place; every malformed one is a ScenarioError line."""
    problems = []
    for item in overrides:
        if "=" not in item:
            problems.append(f"{source}: --set {_show(item)}: expected dotted.key=value")
            continue
        key, text = item.split("=", 1)
        try:
            value = parse_value(text)
            set_key(raw, key.strip(), value)
        except (ValueError, KeyError) as exc:
            msg = exc.args[0] if exc.args else str(exc)
            problems.append(f"{source}: --set {_show(item)}: {msg}")
    if problems:
        raise ScenarioError(problems)


# ---------------------------------------------------------------------------------------------
# Validation


class _Checker:
    """Collects problems while reading typed values out of the raw dictionary."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []

    def fail(self, key: str, value: Any, allowed: str) -> None:
        shown = _show(value)
        self.problems.append(f"{self.source}: {key} = {shown}: {allowed}")

    def note(self, key: str, message: str) -> None:
        self.problems.append(f"{self.source}: {key}: {message}")

    def unknown(self, table: Mapping[str, Any], allowed: Sequence[str], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                guess = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"; did you mean {guess[0]!r}?" if guess else ""
                where = f"{prefix}.{_key(key)}" if prefix else _key(key)
                self.note(where, f"unknown key (allowed: {', '.join(allowed)}){hint}")

    def table(self, parent: Mapping[str, Any], key: str, prefix: str, *, required: bool = False
              ) -> dict[str, Any]:
        where = f"{prefix}.{key}" if prefix else key
        if key not in parent:
            if required:
                self.note(where, "missing: this table is required")
            return {}
        value = parent[key]
        if not isinstance(value, dict):
            self.fail(where, value, "must be a table")
            return {}
        return value

    def number(self, table: Mapping[str, Any], key: str, prefix: str, default: float | None, *,
               lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False,
               integer: bool = False, what: str = "") -> float | None:
        where = f"{prefix}.{key}" if prefix else key
        if key not in table:
            if default is None:
                self.note(where, "missing: this key is required")
            return default
        return self.check_number(table[key], where, default, lo=lo, hi=hi, lo_open=lo_open,
                                 integer=integer, what=what)

    def check_number(self, value: Any, where: str, default: float | None, *, lo: float,
                     hi: float, lo_open: bool = False, integer: bool = False, what: str = ""
                     ) -> float | None:
        kind = "a whole number" if integer else "a number"
        rng = _range_text(lo, hi, lo_open)
        allowed = f"must be {kind}{rng}" + (f" ({what})" if what else "")
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, value, allowed)
            return default
        # Compared as they are: math.isfinite and float() overflow on integers past 1e308.
        finite = isinstance(value, int) or math.isfinite(value)
        whole = isinstance(value, int) or (finite and value == int(value))
        if not finite or (integer and not whole):
            self.fail(where, value, allowed)
            return default
        if value < lo or value > hi or (lo_open and value == lo):
            self.fail(where, value, allowed)
            return default
        return int(value) if integer else float(value)

    def date(self, table: Mapping[str, Any], key: str, prefix: str, *, required: bool = True
             ) -> dt.date | None:
        where = f"{prefix}.{key}" if prefix else key
        if key not in table:
            if required:
                self.note(where, "missing: this key is required (a TOML date such as 2026-01-01)")
            return None
        value = table[key]
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            self.fail(where, value, "must be a TOML date such as 2026-01-01 (no quotes, no time)")
            return None
        if not FIRST_DATE <= value <= LAST_DATE:
            self.fail(where, value, f"must lie between {FIRST_DATE} and {LAST_DATE}")
            return None
        return value

    def string(self, table: Mapping[str, Any], key: str, prefix: str, default: str | None, *,
               choices: Sequence[str] | None = None) -> str | None:
        where = f"{prefix}.{key}" if prefix else key
        if key not in table:
            if default is None:
                self.note(where, "missing: this key is required")
            return default
        value = table[key]
        if not isinstance(value, str):
            allowed = f"one of {', '.join(choices)}" if choices else "text"
            self.fail(where, value, f"must be {allowed}")
            return default
        if choices is not None and value not in choices:
            guess = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
            hint = f"; did you mean {guess[0]!r}?" if guess else ""
            self.fail(where, value, f"must be one of {', '.join(choices)}{hint}")
            return default
        return value

    def per_level(self, value: Any, where: str, default: float, *, lo: float, hi: float,
                  scalar_ok: bool) -> tuple[float, ...]:
        """A number for every level, or a table {level = number}; missing levels take default."""
        if scalar_ok and not isinstance(value, dict):
            num = self.check_number(value, where, default, lo=lo, hi=hi)
            return (num,) * len(LEVELS)  # type: ignore[return-value]
        if not isinstance(value, dict):
            self.fail(where, value, "must be a table per level, e.g. { line = 1.5 }")
            return (default,) * len(LEVELS)
        self.unknown(value, LEVELS, where)
        return tuple(
            self.check_number(value[lv], f"{where}.{lv}", default, lo=lo, hi=hi)
            if lv in value else default
            for lv in LEVELS
        )  # type: ignore[return-value]


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{...}" if value else "{}"
    if isinstance(value, list) and len(value) > 4:
        return "[...]"
    text = repr(value) if isinstance(value, str) else str(value)
    if isinstance(value, bool):
        text = str(value).lower()
    return text if len(text) <= 60 else text[:57] + "..."


def _range_text(lo: float, hi: float, lo_open: bool) -> str:
    if lo == -math.inf and hi == math.inf:
        return ""
    if hi == math.inf:
        return f" > {_num(lo)}" if lo_open else f" >= {_num(lo)}"
    if lo == -math.inf:
        return f" <= {_num(hi)}"
    left = "(" if lo_open else "["
    return f" in {left}{_num(lo)}, {_num(hi)}]"


def _num(x: float) -> str:
    return f"{int(x):_}" if float(x).is_integer() and abs(x) >= 1e4 else f"{x:g}"


TOP_KEYS = ("name", "description", "start", "end", "replications", "seed", "target",
            "population", "levels", "resources", "policy", "shock", "sweep", "engine")
LEVEL_KEYS = ("innovation", "imitation", "eligible", "implementation", "success", "retry",
              "needs")


def validate(raw: Mapping[str, Any], source: str = "<scenario>") -> Scenario:
    """Turn a raw scenario dictionary into a Scenario, or raise ScenarioError with every fault."""
    c = _Checker(source)
    if not isinstance(raw, dict):
        raise ScenarioError([f"{source}: the scenario must be a TOML table"])
    c.unknown(raw, TOP_KEYS, "")

    name = c.string(raw, "name", "", None)
    if name is not None and not NAME_PATTERN.fullmatch(name):
        c.fail("name", name, "must be 1-64 letters, digits, '-' or '_' (it names the results "
               "folder)")
        name = None
    description = c.string(raw, "description", "", "") or ""
    start = c.date(raw, "start", "")
    end = c.date(raw, "end", "")
    if start and end and end <= start:
        c.fail("end", end, f"must be after start ({start})")
    elif start and end and (end - start).days > MAX_HORIZON_YEARS * DAYS_PER_YEAR:
        c.fail("end", end, f"must be at most {MAX_HORIZON_YEARS} years after start ({start})")
    replications = c.number(raw, "replications", "", 100, lo=1, hi=1_000_000, integer=True)
    seed = c.number(raw, "seed", "", 0, lo=0, hi=2**63 - 1, integer=True)

    # population and segments
    pop = c.table(raw, "population", "", required=True)
    c.unknown(pop, ("firms", "peer_weight", "segment"), "population")
    firms = c.number(pop, "firms", "population", None, lo=1, hi=MAX_FIRMS, integer=True)
    peer_weight = c.number(pop, "peer_weight", "population", 0.0, lo=0, hi=1)
    segments = _segments(c, pop)

    # levels
    levels_raw = c.table(raw, "levels", "")
    c.unknown(levels_raw, LEVELS, "levels")
    resources = _resources(c, raw)
    resource_names = tuple(r.name for r in resources)
    levels: list[Level] = []
    for lv in LEVELS:  # eligible defaults to the level below's share: "all who can climb"
        below = levels[-1].eligible if levels else 1.0
        levels.append(_level(c, levels_raw, lv, resource_names, below))
    levels = tuple(levels)
    eligible = [lv.eligible for lv in levels]
    for k in range(1, len(LEVELS)):
        if eligible[k] > eligible[k - 1] + 1e-12:
            c.fail(f"levels.{LEVELS[k]}.eligible", eligible[k],
                   f"must not exceed levels.{LEVELS[k - 1]}.eligible ({eligible[k - 1]:g}): "
                   "a firm climbs one level at a time")
    if segments:
        for k, lv in enumerate(LEVELS):
            already = sum(s.share * sum(s.initial[k:]) for s in segments)
            if already > eligible[k] + 1e-9:
                c.fail(f"levels.{lv}.eligible", eligible[k],
                       f"must be at least the share already at or above {lv} at the start "
                       f"({already:.6g})")

    # target
    tgt = c.table(raw, "target", "", required=True)
    c.unknown(tgt, ("firms", "level", "deadline", "count"), "target")
    t_firms = c.number(tgt, "firms", "target", None, lo=1, hi=MAX_FIRMS, integer=True)
    t_level = c.string(tgt, "level", "target", None, choices=LEVELS)
    t_deadline = c.date(tgt, "deadline", "target")
    t_count = c.string(tgt, "count", "target", "new", choices=COUNTS)
    if t_deadline and start and end and not (start <= t_deadline <= end):
        c.fail("target.deadline", t_deadline, f"must lie between start ({start}) and end ({end})")
    if t_firms and firms and t_firms > firms:
        c.fail("target.firms", t_firms, f"must be at most population.firms ({firms:_})")

    policies = _policies(c, raw, start, end, {s.name for s in segments})
    shocks = _shocks(c, raw, start, end, resource_names)
    sweep = _sweep(c, raw)
    tau_step = TAU_STEP_DAYS
    eng = c.table(raw, "engine", "")
    c.unknown(eng, ("tau_step",), "engine")
    if "tau_step" in eng:
        tau_step = (c.number(eng, "tau_step", "engine", TAU_STEP_DAYS, lo=1, hi=92,
                             what="days") or TAU_STEP_DAYS)

    if c.problems:
        raise ScenarioError(c.problems)
    assert name and start and end and firms and t_firms and t_level and t_deadline
    return Scenario(
        name=name, description=description, start=start, end=end,
        replications=int(replications or 1), seed=int(seed or 0),
        target=Target(int(t_firms), t_level, t_deadline, t_count or "new"),
        firms=int(firms), peer_weight=float(peer_weight or 0.0), segments=tuple(segments),
        levels=levels, resources=resources, policies=tuple(policies), shocks=tuple(shocks),
        sweep=sweep, tau_step=tau_step, source=source, raw=copy.deepcopy(dict(raw)),
    )


def _segments(c: _Checker, pop: Mapping[str, Any]) -> list[Segment]:
    items = pop.get("segment")
    if items is None:
        return [Segment("all", 1.0, (1.0,) * 4, (0.0,) * 4)]
    if not isinstance(items, list) or not items or not all(isinstance(x, dict) for x in items):
        c.fail("population.segment", items, "must be one or more [[population.segment]] tables")
        return []
    out, names = [], set()
    for i, item in enumerate(items):
        where = f"population.segment[{i}]"
        c.unknown(item, ("name", "share", "propensity", "initial"), where)
        seg_name = c.string(item, "name", where, None)
        if seg_name is not None:
            where = f"population.segment.{_key(seg_name)}"
            if seg_name in names:
                c.fail(f"{where}.name", seg_name, "must be unique among segments")
            names.add(seg_name)
        share = c.number(item, "share", where, None, lo=0, hi=1)
        prop = c.per_level(item.get("propensity", 1.0), f"{where}.propensity", 1.0, lo=0,
                           hi=1e6, scalar_ok=True)
        init_raw = item.get("initial", {})
        initial = c.per_level(init_raw, f"{where}.initial", 0.0, lo=0, hi=1, scalar_ok=False)
        if sum(initial) > 1 + 1e-9:
            c.fail(f"{where}.initial", init_raw, f"shares sum to {sum(initial):.6g}: must be at "
                   "most 1 (the rest start at level none)")
        out.append(Segment(seg_name or f"segment{i}", share or 0.0, prop, initial))
    total = sum(s.share for s in out)
    if abs(total - 1) > 1e-6:
        c.note("population.segment", f"shares sum to {total:.6g}: they must sum to 1")
    return out


def _level(c: _Checker, levels: Mapping[str, Any], name: str, resources: Sequence[str],
           eligible_below: float) -> Level:
    if name not in levels:  # an absent level is never adopted (innovation = imitation = 0)
        return Level(name, eligible=eligible_below)
    where = f"levels.{name}"
    tbl = levels[name]
    if not isinstance(tbl, dict):
        c.fail(where, tbl, "must be a table")
        return Level(name, eligible=eligible_below)
    c.unknown(tbl, LEVEL_KEYS, where)
    impl = c.table(tbl, "implementation", where)
    c.unknown(impl, ("median", "sigma"), f"{where}.implementation")
    needs_raw = c.table(tbl, "needs", where)
    needs = []
    for res, units in needs_raw.items():
        if res not in resources:
            guess = difflib.get_close_matches(res, resources, n=1, cutoff=0.6)
            hint = f"; did you mean {guess[0]!r}?" if guess else ""
            known = ", ".join(resources) or "none are defined"
            c.note(f"{where}.needs.{_key(res)}", f"unknown resource (defined under [resources]: "
                   f"{known}){hint}")
            continue
        n = c.check_number(units, f"{where}.needs.{res}", 0, lo=0, hi=1e9, integer=True)
        if n:
            needs.append((res, int(n)))
    return Level(
        name=name,
        innovation=c.number(tbl, "innovation", where, 0.0, lo=0, hi=1e3) or 0.0,
        imitation=c.number(tbl, "imitation", where, 0.0, lo=0, hi=1e3) or 0.0,
        eligible=c.number(tbl, "eligible", where, eligible_below, lo=0, hi=1) or 0.0,
        implementation_median=c.number(impl, "median", f"{where}.implementation", 0.0, lo=0,
                                       hi=1200) or 0.0,
        implementation_sigma=c.number(impl, "sigma", f"{where}.implementation", 0.0, lo=0,
                                      hi=5) or 0.0,
        success=c.number(tbl, "success", where, 1.0, lo=0, hi=1) or 0.0,
        retry=c.number(tbl, "retry", where, 12.0, lo=0, hi=1200) or 0.0,
        needs=tuple(needs),
    )


def _resources(c: _Checker, raw: Mapping[str, Any]) -> tuple[Resource, ...]:
    tbl = c.table(raw, "resources", "")
    out = []
    for name, spec in tbl.items():
        where = f"resources.{_key(name)}"
        if not isinstance(spec, dict):
            c.fail(where, spec, "must be a table with capacity and growth")
            continue
        c.unknown(spec, ("capacity", "growth"), where)
        cap = c.number(spec, "capacity", where, None, lo=0, hi=MAX_FIRMS, integer=True)
        growth = c.number(spec, "growth", where, 0.0, lo=-0.99, hi=10)
        out.append(Resource(name, int(cap or 0), growth or 0.0))
    return tuple(out)


def _array_of_tables(c: _Checker, raw: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    items = raw.get(key, [])
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        c.fail(key, items, f"must be [[{key}]] tables")
        return []
    return items


def _policies(c: _Checker, raw: Mapping[str, Any], start: dt.date | None, end: dt.date | None,
              segment_names: set[str]) -> list[Policy]:
    out = []
    for i, item in enumerate(_array_of_tables(c, raw, "policy")):
        where = f"policy[{i}]"
        c.unknown(item, ("name", "start", "end", "multiplier", "segments", "budget", "cost"),
                  where)
        name = c.string(item, "name", where, f"policy{i}") or f"policy{i}"
        p_start = c.date(item, "start", where) or start
        p_end = c.date(item, "end", where) or end
        if p_start and p_end and p_end < p_start:
            c.fail(f"{where}.end", p_end, f"must not be before {where}.start ({p_start})")
        mult = c.per_level(item.get("multiplier", {}), f"{where}.multiplier", 1.0, lo=0, hi=1e3,
                           scalar_ok=False)
        segs = None
        if "segments" in item:
            value = item["segments"]
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                c.fail(f"{where}.segments", value, "must be a list of segment names")
            else:
                for s in value:
                    if s not in segment_names:
                        guess = difflib.get_close_matches(s, sorted(segment_names), n=1)
                        hint = f"; did you mean {guess[0]!r}?" if guess else ""
                        c.fail(f"{where}.segments", s, "is not a segment (defined: "
                               f"{', '.join(sorted(segment_names))}){hint}")
                segs = tuple(value)
        budget = c.number(item, "budget", where, math.nan, lo=0, hi=1e15)
        cost = c.per_level(item.get("cost", {}), f"{where}.cost", 0.0, lo=0, hi=1e12,
                           scalar_ok=False)
        if budget is not None and not math.isnan(budget) and not any(cost):
            c.note(f"{where}.budget", "a budget needs a cost per project (e.g. cost = "
                   "{ line = 1.5e6 }) to be drawn down")
        out.append(Policy(name, p_start or dt.date.min, p_end or dt.date.max, mult, segs,
                          None if budget is None or math.isnan(budget) else budget, cost))
    return out


def _shocks(c: _Checker, raw: Mapping[str, Any], start: dt.date | None, end: dt.date | None,
            resources: Sequence[str]) -> list[Shock]:
    out = []
    for i, item in enumerate(_array_of_tables(c, raw, "shock")):
        where = f"shock[{i}]"
        c.unknown(item, ("name", "at", "end", "resource", "capacity_factor", "level",
                         "innovation_factor", "imitation_factor", "success_factor"), where)
        name = c.string(item, "name", where, f"shock{i}") or f"shock{i}"
        at = c.date(item, "at", where)
        s_end = c.date(item, "end", where, required=False)
        if at and s_end and s_end < at:
            c.fail(f"{where}.end", s_end, f"must not be before {where}.at ({at})")
        resource = c.string(item, "resource", where, "")
        if resource and resource not in resources:
            guess = difflib.get_close_matches(resource, resources, n=1)
            hint = f"; did you mean {guess[0]!r}?" if guess else ""
            c.fail(f"{where}.resource", resource, f"must be a resource defined under "
                   f"[resources] ({', '.join(resources) or 'none'}){hint}")
        level = c.string(item, "level", where, "", choices=("",) + LEVELS)
        factors = {k: c.number(item, k, where, 1.0, lo=0, hi=1e3) or 0.0
                   for k in ("capacity_factor", "innovation_factor", "imitation_factor",
                             "success_factor")}
        if not resource and not level:
            c.note(where, "a shock needs a resource (with capacity_factor) or a level (with "
                   "innovation_factor, imitation_factor or success_factor)")
        out.append(Shock(name, at or dt.date.min, s_end, resource or None,
                         factors["capacity_factor"], level or None, factors["innovation_factor"],
                         factors["imitation_factor"], factors["success_factor"]))
    return out


def _sweep(c: _Checker, raw: Mapping[str, Any]) -> Sweep | None:
    if "sweep" not in raw:
        return None
    tbl = c.table(raw, "sweep", "")
    c.unknown(tbl, ("design", "samples", "replications", "vary", "log"), "sweep")
    design = c.string(tbl, "design", "sweep", "lhs", choices=DESIGNS) or "lhs"
    samples = c.number(tbl, "samples", "sweep", 64, lo=1, hi=10**7, integer=True) or 64
    reps = c.number(tbl, "replications", "sweep", 50, lo=1, hi=10**6, integer=True) or 50
    vary = []
    for key, rng in c.table(tbl, "vary", "sweep").items():
        where = f"sweep.vary.{_key(key)}"
        ok = (isinstance(rng, list) and len(rng) == 2
              and all(isinstance(x, int | float) and not isinstance(x, bool)
                      and abs(x) <= 1e300 for x in rng))
        if not ok:
            c.fail(where, rng, "must be [low, high] with two finite numbers "
                   "(at most 1e300 in size)")
            continue
        if rng[0] > rng[1]:
            c.fail(where, rng, "low must not exceed high")
            continue
        if not _is_known_key(raw, key):
            c.note(where, "is not a key of this scenario (e.g. \"levels.line.imitation\")")
            continue
        vary.append((key, float(rng[0]), float(rng[1])))
    log = tbl.get("log", [])
    if not isinstance(log, list) or not all(isinstance(x, str) for x in log):
        c.fail("sweep.log", log, "must be a list of varied keys to sample on a log scale")
        log = []
    return Sweep(design, int(samples), int(reps), tuple(vary), tuple(log))


def _is_known_key(raw: Mapping[str, Any], key: str) -> bool:
    try:
        value = get_key(raw, key)
    except KeyError:
        # Keys with defaults (for example levels.line.eligible) may be varied without being set.
        parts = split_key(key)
        return len(parts) == 3 and parts[0] == "levels" and parts[2] in LEVEL_KEYS
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------
# Writing the scenario back (scenario.toml "exactly as run")

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def dumps(raw: Mapping[str, Any]) -> str:
    """Serialise a scenario dictionary as TOML (tables, arrays of tables, inline tables)."""
    lines: list[str] = []
    _dump_table(raw, [], lines)
    return "\n".join(lines).strip() + "\n"


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


def _quote(text: str) -> str:
    """A TOML basic string: every control character escaped, so the text stays on one line
    and reads back as it was."""
    return '"' + "".join(_ESCAPES.get(ch) or (f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or
                                              ord(ch) == 0x7F else ch) for ch in text) + '"'


def _key(k: str) -> str:
    """A key as TOML writes it (and as messages show it): bare if it can be, else quoted."""
    return k if _BARE.fullmatch(k) else _quote(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _quote(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _dump_table(tbl: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    subtables = []
    for k, v in tbl.items():
        if isinstance(v, dict) or _is_table_array(v):
            subtables.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in subtables:
        full = [*path, _key(k)]
        if isinstance(v, dict):
            scalars_only = all(not isinstance(x, dict) and not _is_table_array(x)
                               for x in v.values())
            if scalars_only or v:
                lines.append("")
                lines.append(f"[{'.'.join(full)}]")
            _dump_table(v, full, lines)
        else:
            for item in v:
                lines.append("")
                lines.append(f"[[{'.'.join(full)}]]")
                for ik, iv in item.items():
                    lines.append(f"{_key(ik)} = {_value(iv)}")
