"""Validation of the population's regions, regional quotas and firm turnover (entry, exit).

`[[population.region]]` splits every segment across groups of provinces; `[population.quotas]`
says how a region's quota (its share of the national target) pushes its firms; `entry`,
`exit` and `entry_device` open the population. Each helper reads through the _Checker.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sim.scenario.checker import _Checker
from sim.scenario.show import _key
from sim.scenario.types import NATIONAL, Quotas, Region

REGION_KEYS = ("name", "share", "multiplier", "quota")
QUOTA_KEYS = ("push", "every")
TURNOVER_KEYS = ("entry", "exit", "entry_device")


def _regions(c: _Checker, pop: Mapping[str, Any]) -> list[Region] | None:
    """The regions, in file order; none (an absent or empty array) means one national one.
    None when `population.region` is not an array of tables (one problem line)."""
    items = pop.get("region")
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        c.fail("population.region", items, "must be [[population.region]] tables")
        return None
    out, names, shares_ok = [], set(), True
    for i, item in enumerate(items):
        where = f"population.region[{i}]"
        c.unknown(item, REGION_KEYS, where)
        name = c.string(item, "name", where, None)
        if name is not None:
            where = f"population.region.{_key(name)}"
            if name == NATIONAL:
                c.fail(f"{where}.name", name, f"{NATIONAL!r} names the one region of a "
                       "scenario without regions: choose another name")
            elif name in names:
                c.fail(f"{where}.name", name, "must be unique among regions")
            names.add(name)
        share = c.number(item, "share", where, None, lo=0, hi=1)
        shares_ok = shares_ok and share is not None
        mult = c.per_level(item.get("multiplier", 1.0), f"{where}.multiplier", 1.0, lo=0,
                           hi=1e6, scalar_ok=True)
        quota = c.number(item, "quota", where, math.nan, lo=0, hi=1, lo_open=True)
        out.append(Region(name or f"region{i}", share or 0.0, mult,
                          None if quota is None or math.isnan(quota) else quota))
    total = sum(r.share for r in out)
    if out and shares_ok and abs(total - 1) > 1e-6:  # a bad share is its own line already
        c.note("population.region", f"shares sum to {total:.6g}: they must sum to 1")
    return out


def _quotas(c: _Checker, pop: Mapping[str, Any], regions: list[Region] | None) -> Quotas:
    """How quotas push. A region may have a quota without this table: the quota is then only
    reported (push 1); the table without any quota is a problem (unless `regions` is None:
    the regions are already a problem)."""
    tbl = c.table(pop, "quotas", "population")
    where = "population.quotas"
    c.unknown(tbl, QUOTA_KEYS, where)
    push = c.number(tbl, "push", where, 1.0, lo=1, hi=1e3)
    every = c.number(tbl, "every", where, 3, lo=1, hi=24, integer=True, what="months")
    items = pop.get("region")
    quoted = isinstance(items, list) and any(isinstance(x, dict) and "quota" in x
                                             for x in items)
    if isinstance(pop.get("quotas"), dict) and regions is not None and not quoted:
        c.note(where, "no region has a quota: give a [[population.region]] a quota (its "
               "share of the target) or leave [population.quotas] out")
    return Quotas(push=push or 1.0, every=int(every or 3))


def _turnover(c: _Checker, pop: Mapping[str, Any]) -> dict[str, float]:
    """Firm entry and exit: `entry`, `exit` and `entry_device`, all 0 by default."""
    return {
        "entry": c.number(pop, "entry", "population", 0.0, lo=0, hi=1,
                          what="entrants per year, a share of the firms at the start") or 0.0,
        "exit": c.number(pop, "exit", "population", 0.0, lo=0, hi=1,
                         what="per year, of every firm, whatever it is doing") or 0.0,
        "entry_device": c.number(pop, "entry_device", "population", 0.0, lo=0, hi=1,
                                 what="share of entrants at device level") or 0.0,
    }


def _names(c: _Checker, item: Mapping[str, Any], key: str, where: str, known: Sequence[str],
           what: str) -> tuple[str, ...] | None:
    """A list naming some of `known` (segments or regions) at `item[key]`; None if absent."""
    if key not in item:
        return None
    value = item[key]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        c.fail(f"{where}.{key}", value, f"must be a list of {what} names")
        return None
    if not value:
        c.fail(f"{where}.{key}", value, f"must name at least one {what} (leave {key} out to "
               f"cover every {what})")
        return None
    for s in value:
        if s not in known:
            guess = difflib.get_close_matches(s, sorted(known), n=1)
            hint = f"; did you mean {guess[0]!r}?" if guess else ""
            c.fail(f"{where}.{key}", s, f"is not a {what} (defined: "
                   f"{', '.join(sorted(known))}){hint}")
    return tuple(value)
