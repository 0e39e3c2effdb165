"""Validation of the scenario's tables: segments, levels, resources, policies, shocks, sweep.

Each helper reads one table through the _Checker and returns typed objects.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sim.scenario.checker import _Checker
from sim.scenario.keys import get_key, set_key, split_key
from sim.scenario.regions import QUOTA_KEYS, TURNOVER_KEYS, _names
from sim.scenario.show import _key
from sim.scenario.types import (
    DESIGNS,
    LEVELS,
    MAX_FIRMS,
    Level,
    Policy,
    Resource,
    Segment,
    Shock,
    Sweep,
)

LEVEL_KEYS = ("innovation", "imitation", "eligible", "implementation", "success", "retry",
              "needs")


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
              segment_names: set[str], region_names: Sequence[str] | None = ()
              ) -> list[Policy]:
    """The policies; `region_names` None means the regions are a problem already: a policy's
    `regions` is then not checked."""
    out = []
    seen: set[str] = set()
    for i, item in enumerate(_array_of_tables(c, raw, "policy")):
        where = f"policy[{i}]"
        c.unknown(item, ("name", "start", "end", "multiplier", "segments", "regions", "budget",
                         "cost"), where)
        name = c.string(item, "name", where, f"policy{i}") or f"policy{i}"
        if name in seen:  # results report spending per policy name
            c.fail(f"{where}.name", name, "is the name of an earlier policy: names must differ")
        seen.add(name)
        p_start = c.date(item, "start", where) or start
        p_end = c.date(item, "end", where) or end
        if p_start and p_end and p_end < p_start:
            c.fail(f"{where}.end", p_end, f"must not be before {where}.start ({p_start})")
        mult = c.per_level(item.get("multiplier", {}), f"{where}.multiplier", 1.0, lo=0, hi=1e3,
                           scalar_ok=False)
        segs = _names(c, item, "segments", where, sorted(segment_names), "segment")
        regs = None
        if region_names is not None and "regions" in item and not region_names:
            c.fail(f"{where}.regions", item["regions"], "needs [[population.region]] tables: "
                   "this scenario has none (leave regions out to apply the policy nationally)")
        elif region_names is not None:
            regs = _names(c, item, "regions", where, region_names, "region")
        budget = c.number(item, "budget", where, math.nan, lo=0, hi=1e15)
        cost = c.per_level(item.get("cost", {}), f"{where}.cost", 0.0, lo=0, hi=1e12,
                           scalar_ok=False)
        if budget is not None and not math.isnan(budget) and not any(cost):
            c.note(f"{where}.budget", "a budget needs a cost per project (e.g. cost = "
                   "{ line = 1.5e6 }) to be drawn down")
        out.append(Policy(name, p_start or dt.date.min, p_end or dt.date.max, mult,
                          segments=segs, regions=regs,
                          budget=None if budget is None or math.isnan(budget) else budget,
                          cost=cost))
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
        return _has_default(raw, key)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _has_default(raw: Mapping[str, Any], key: str) -> bool:
    """True for a numeric key with a default that the scenario may vary without setting it:
    `levels.line.eligible`, `population.entry`, `population.quotas.push`, and a declared
    region's `quota` or `multiplier` (also `multiplier.<level>` unless it is one number)."""
    parts = split_key(key)
    if len(parts) == 3 and parts[0] == "levels":
        return parts[2] in LEVEL_KEYS
    if parts[:1] != ["population"]:
        return False
    if len(parts) == 2:
        return parts[1] in TURNOVER_KEYS
    if len(parts) == 3 and parts[1] == "quotas":
        return parts[2] in QUOTA_KEYS
    region = len(parts) == 4 and parts[3] in ("quota", "multiplier")
    region = region or (len(parts) == 5 and parts[3] == "multiplier" and parts[4] in LEVELS)
    pop = raw.get("population")
    if not (parts[1] == "region" and region and isinstance(pop, dict)
            and isinstance(pop.get("region"), list)):
        return False
    try:  # the region exists and the key can be set (not under a one-number multiplier)
        set_key(copy.deepcopy(dict(raw)), key, 1.0)
    except KeyError:
        return False
    return True
