"""Validate a raw scenario dictionary into a frozen Scenario.

This is the only gate from user input to the model: every problem found is reported at
once, one line each, naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any

from sim.scenario.checker import _Checker
from sim.scenario.regions import TURNOVER_KEYS, _quotas, _regions, _turnover
from sim.scenario.tables import _level, _policies, _resources, _segments, _shocks, _sweep
from sim.scenario.types import (
    COUNTS,
    DAYS_PER_YEAR,
    LEVELS,
    MAX_FIRMS,
    MAX_HORIZON_YEARS,
    NAME_PATTERN,
    TAU_STEP_DAYS,
    Level,
    Scenario,
    ScenarioError,
    Target,
)

TOP_KEYS = ("name", "description", "start", "end", "replications", "seed", "target",
            "population", "levels", "resources", "policy", "shock", "sweep", "engine")


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
    first_month_end = _month_end(start) if start else None
    if start and end and first_month_end and start < end < first_month_end:
        c.fail("end", end, f"must be on or after the first month end ({first_month_end}): "
               "the counts are recorded at month ends")
        end = None
    replications = c.number(raw, "replications", "", 100, lo=1, hi=1_000_000, integer=True)
    seed = c.number(raw, "seed", "", 0, lo=0, hi=2**63 - 1, integer=True)

    # population and segments
    pop = c.table(raw, "population", "", required=True)
    c.unknown(pop, ("firms", "peer_weight", "segment", "in_flight", "region", "quotas",
                    *TURNOVER_KEYS), "population")
    firms = c.number(pop, "firms", "population", None, lo=1, hi=MAX_FIRMS, integer=True)
    peer_weight = c.number(pop, "peer_weight", "population", 0.0, lo=0, hi=1)
    segments = _segments(c, pop)
    in_flight = c.per_level(pop.get("in_flight", {}), "population.in_flight", 0.0, lo=0, hi=1,
                            scalar_ok=False)
    for k, lv in enumerate(LEVELS):  # projects under way to level k come from level k-1
        below = sum(s.share * ((1.0 - sum(s.initial)) if k == 0 else s.initial[k - 1])
                    for s in segments)
        if in_flight[k] > below + 1e-9:
            c.fail(f"population.in_flight.{lv}", in_flight[k],
                   f"must be at most the share of firms one level below {lv} at the start "
                   f"({below:.6g})")
    regions = _regions(c, pop)  # None: not tables, a problem already
    quotas = _quotas(c, pop, regions)
    region_names = None if regions is None else tuple(r.name for r in regions)
    regions = regions or []
    turnover = _turnover(c, pop)

    # levels
    levels_raw = c.table(raw, "levels", "")
    c.unknown(levels_raw, LEVELS, "levels")
    resources = _resources(c, raw)
    resource_names = tuple(r.name for r in resources)
    built: list[Level] = []
    for lv in LEVELS:  # eligible defaults to the level below's share: "all who can climb"
        below = built[-1].eligible if built else 1.0
        built.append(_level(c, levels_raw, lv, resource_names, below))
    levels = tuple(built)
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
    elif t_deadline and first_month_end and t_deadline < first_month_end:
        c.fail("target.deadline", t_deadline, f"must be on or after the first month end "
               f"({first_month_end}): the count is read at month ends")
    if t_firms and firms and t_firms > firms:
        c.fail("target.firms", t_firms, f"must be at most population.firms ({firms:_})")

    policies = _policies(c, raw, start, end, {s.name for s in segments}, region_names)
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
        sweep=sweep, in_flight=tuple(in_flight), regions=tuple(regions), quotas=quotas,
        entry=turnover["entry"], exit=turnover["exit"], entry_device=turnover["entry_device"],
        tau_step=tau_step, source=source,
        raw=copy.deepcopy(dict(raw)),
    )


def _month_end(day: dt.date) -> dt.date:
    """The last day of `day`'s month."""
    nxt = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)
