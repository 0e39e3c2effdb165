"""The rules' dated calendar: when policies and shocks switch, with dates outside the run
clipped to it (re-exported by `rules`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sim.scenario import DAYS_PER_YEAR, Scenario


@dataclass(frozen=True)
class Change:
    """A dated switch: policy `index` on or off, or shock `index` applied or lifted, at the
    start of day `day` (days since the scenario start)."""

    day: int
    kind: str  # "policy" | "shock"
    index: int
    on: bool

    @property
    def years(self) -> float:
        return self.day / DAYS_PER_YEAR


def window(sc: Scenario, first: dt.date, last: dt.date | None) -> tuple[int, int] | None:
    """Days [begin, end) of an interval from the start of date `first` to the end of date
    `last` (None: open-ended), clipped to the run; None if nothing of it falls inside.

    This is the one rule for dates outside the run: a policy or shock in force before the
    start acts from the start; one that is over before the start, or begins after the end,
    never acts."""
    horizon = (sc.end - sc.start).days + 1
    begin = max(0, (first - sc.start).days)
    end = horizon if last is None else min(horizon, (last - sc.start).days + 1)
    return (begin, end) if begin < end else None


def changes(sc: Scenario) -> list[Change]:
    """Every dated switch of the run, in time order; at one time, switches off come before
    switches on (an interval ends where the next begins)."""
    out = []
    for j, pol in enumerate(sc.policies):
        span = window(sc, pol.start, pol.end)
        if span is not None:
            out += [Change(span[0], "policy", j, True), Change(span[1], "policy", j, False)]
    for i, sh in enumerate(sc.shocks):
        span = window(sc, sh.at, sh.end)
        if span is not None:
            out.append(Change(span[0], "shock", i, True))
            if sh.end is not None:
                out.append(Change(span[1], "shock", i, False))
    horizon = (sc.end - sc.start).days + 1
    out = [c for c in out if c.day < horizon]
    out.sort(key=lambda c: (c.day, c.on))
    return out


__all__ = ["Change", "changes", "window"]
