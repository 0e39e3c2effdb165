"""The typed, frozen objects a validated scenario is made of, and the constants they use.

Everything downstream of the gate reads these, never the raw dictionary.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LEVELS: tuple[str, ...] = ("device", "line", "factory", "ecosystem")
"""Adoption levels in climbing order; level index k = 1..4, 0 means `none`."""

COUNTS = ("new", "stock", "upgraded")
COUNT_COLUMNS = {"new": "new_since_start", "stock": "at_or_above", "upgraded": "upgraded"}
"""The column of curves.csv that each reading of the target counts: firms newly at or above
the level since the start, all firms at or above it, firms that completed a project at or
above it since the start."""
DESIGNS = ("grid", "lhs", "sobol")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DAYS_PER_YEAR = 365.25
MAX_FIRMS = 10**9
TAU_STEP_DAYS = 10.0  # default step of the fast engine: bias measured in docs/performance.md
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
DATE_KEYS = frozenset({"start", "end", "deadline", "at"})
"""The keys whose values are dates, wherever they appear (the top level, target, policies,
shocks): what the Python API turns ISO text into."""
NATIONAL = "national"  # the one region of a scenario that declares none
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
class Region:
    """A group of provinces: its share of the firms (every segment is split by it), rate
    multipliers per level (on the segments' propensities) and, optionally, its quota: the
    share of the national target it is asked to deliver (`population.region`)."""

    name: str
    share: float
    multiplier: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)  # per level device..ecosystem
    quota: float | None = None


@dataclass(frozen=True)
class Quotas:
    """How regional quotas push (`population.quotas`): every `every` months a region whose
    count lags `quota x firms x elapsed share of the plan period` has its hazards for the
    levels up to the target's multiplied by `push` until the next review."""

    push: float = 1.0
    every: int = 3  # months


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
    regions: tuple[str, ...] | None = None  # None: all regions


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

    def ranges(self) -> list[tuple[str, float, float, bool]]:
        """The varied keys as (key, lo, hi, on a log scale), as `--vary` gives them."""
        return [(k, lo, hi, k in self.log) for k, lo, hi in self.vary]


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
    in_flight: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)  # share of all firms with a project to
    # each level device..ecosystem under way at the start (`population.in_flight`)
    regions: tuple[Region, ...] = ()  # () : one national region
    entry: float = 0.0  # entrants per year, as a share of the firms at the start
    exit: float = 0.0  # per year: exit hazard of every firm, whatever it is doing
    entry_device: float = 0.0  # share of entrants that arrive at device level (rest: none)
    quotas: Quotas = Quotas()
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
    def region_names(self) -> tuple[str, ...]:
        """Names of the regions; a scenario without regions has one, `national`."""
        return tuple(r.name for r in self.regions) or (NATIONAL,)

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
