"""Designs over varied scenario keys: the ranges (checked against the scenario), the points
(grid, Latin hypercube, Sobol/Saltelli, seeded from the scenario seed) and the scenario at
each point."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.execution.seeds import replication_rng
from sim.scenario import Scenario, ScenarioError, get_key, set_key, validate

DESIGN_STREAM = 2**31 - 1
"""Spawn key of the design's random stream; runs use two-part keys, so it never collides."""
MAX_RUNS = 2_000_000
"""Largest sweep accepted: bounds the journal and the memory of the tables."""
MAX_POINTS = 100_000
"""Most points in a design (each is validated and listed in the manifest)."""


class SweepError(ValueError):
    """A sweep that cannot start as asked; `lines` says why, one line per problem."""

    def __init__(self, *lines: str):
        self.lines = list(lines)
        super().__init__("\n".join(lines))


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


RUN_SETTINGS = frozenset({"replications", "seed"})
"""Top-level keys that say how to run a scenario, not what it models: a sweep or solve
replaces them (its replications, its seed streams), so they cannot be varied, nor can the
[sweep] table's keys."""


def resolve_ranges(raw: Mapping[str, Any], vary: Sequence[tuple[str, float, float, bool]],
                   *, source: str, from_file: bool = False) -> tuple[Range, ...]:
    """Check each varied key against the scenario (both bounds must validate) and decide
    whether it is a whole-number key; raise SweepError with one line per problem, each
    naming `--vary KEY`, or `SOURCE: sweep.vary.KEY` for ranges `from_file`."""
    problems: list[str] = []
    out: list[Range] = []
    seen: set[str] = set()
    for key, lo, hi, log in vary:
        said = f"{source}: sweep.vary.{key}" if from_file else f"--vary {key}"
        if key in seen:
            problems.append(f"{said}: given twice")
            continue
        seen.add(key)
        if key in RUN_SETTINGS or key.split(".")[0] == "sweep":
            problems.append(f"{said}: a setting of the runs, not of the model (every "
                            "point runs the sweep's replications from its seed); vary a "
                            "model key, and set this one with --replications or --seed")
            continue
        if log and lo <= 0:
            problems.append(f"{said}: a log scale needs LO > 0 (got {lo:g})")
            continue
        ranged = (f"{said} = [{lo!r}, {hi!r}]" if from_file else f"{said}={lo:g}:{hi:g}")
        bad = _bound_problems(raw, key, lo, hi, source, said, ranged)
        if bad:
            problems.extend(bad)
            continue
        integer = _is_whole_number_key(raw, key, lo, hi, source)
        if integer and (lo != int(lo) or hi != int(hi)):
            problems.append(f"{said}: this key takes whole numbers; LO and HI must too")
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


def _bound_problems(raw: Mapping[str, Any], key: str, lo: float, hi: float, source: str,
                    said: str, ranged: str) -> list[str]:
    try:
        current = get_key(raw, key)
    except KeyError:
        current = None
    if isinstance(current, dict | list | bool | str):
        return [f"{said}: is not a number in {source} (it holds {type(current).__name__})"]
    for bound in (lo, hi):
        value = int(bound) if bound == int(bound) and isinstance(current, int) else bound
        try:
            validate(_with(raw, {key: value}), source=source)
        except KeyError as exc:
            return [f"{said}: {exc.args[0] if exc.args else exc}"]
        except ScenarioError as exc:
            named = ranged.startswith(f"{source}: ")  # (then not twice)
            return [f"{ranged}: {p.removeprefix(f'{source}: ') if named else p}"
                    for p in exc.problems]
    return []


def _is_whole_number_key(raw: Mapping[str, Any], key: str, lo: float, hi: float,
                         source: str) -> bool:
    """True when the validator accepts only whole numbers at `key` (capacities, firm counts,
    units a level needs), asked of the key itself, not of how the file writes its value: a
    key left at its default or written `1000.0` is a whole-number key too. The probe is a
    half-way value inside [lo, hi], whose bounds the validator has accepted, so a refusal
    there can only be for the half."""
    probe = lo + 0.5 if lo + 0.5 <= hi else 0.5 * (lo + hi)
    if probe == int(probe):
        return False  # (lo == hi, a whole number: nothing to tell)
    try:
        validate(_with(raw, {key: probe}), source=source)
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


def check_axes(keys: Sequence[str], asked: Sequence[str]) -> tuple[int, int]:
    """The columns of the two keys asked for the map's axes (x, y); SweepError, one line,
    unless they are two different varied keys."""
    shown = f"--axes {','.join(asked)}"
    if len(keys) < 2:
        raise SweepError(f"{shown}: the sweep varies only {', '.join(keys)}; a map over two "
                         "axes needs two varied keys")
    if len(asked) != 2 or asked[0] == asked[1]:
        raise SweepError(f"{shown}: give two different varied keys, KEY1,KEY2")
    unknown = [k for k in asked if k not in keys]
    if unknown:
        raise SweepError(f"{shown}: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'}"
                         f" not varied in this sweep (varied: {', '.join(keys)})")
    return keys.index(asked[0]), keys.index(asked[1])
