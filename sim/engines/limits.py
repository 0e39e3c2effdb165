"""Up-front estimates of what a run will cost, so that a run that cannot finish is refused
with the estimate and the limit instead of dying of memory or running for days.

The exact engines' cost grows with the number of events (about one per firm over five years
in the shipped scenarios, at about 0.3 microseconds each compiled, 3 on simpy) and their memory
with the projects in flight (at most about a tenth of the firms, some 150 bytes each on simpy,
24 compiled: the bound below is the larger). The fast and mean-field engines keep counts only:
their memory does not grow with the population.
"""

from __future__ import annotations

import os

from sim.scenario import Scenario

EVENTS_PER_FIRM_YEAR = 0.2  # accelerated.toml: 524k events / 520k firms / 5 years
SECONDS_PER_EVENT = {"des": 0.35e-6, "des-simpy": 3e-6}  # the baseline (benchmarks/run.py)
BYTES_PER_FIRM = 0.1 * 150  # projects in flight (<= ~10% of firms) x bytes per heap entry
MAX_SECONDS_PER_REPLICATION = 3600.0


def memory_limit() -> float:
    """Bytes a run may plan to use: half the machine's memory, at most 8 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        total = 8 * 2**30
    return min(0.5 * total, 8 * 2**30)


def caution(scenario: Scenario, engine: str) -> str | None:
    """What to know of `engine`'s accuracy on `scenario`, or None: the fast engine dates the
    projects a step's freed units serve across the step, not in queue order, which durations
    without spread (sigma 0) carry to their completions where projects wait for resources
    (docs/performance.md, limit (1): a curve's |z| against the exact engine 11 at 10-day
    steps, 1.7 at 1 day, in a constructed case)."""
    if engine != "tau":
        return None
    exact = [lv.name for lv in scenario.levels
             if lv.needs and lv.implementation_sigma == 0 and lv.implementation_median > 0]
    if not exact:
        return None
    one = len(exact) == 1
    return (f"{scenario.source}: {'level' if one else 'levels'} {', '.join(exact)} "
            f"{'needs' if one else 'need'} resources and {'takes' if one else 'take'} an exact "
            "time (implementation sigma 0): where their projects wait, the fast engine's "
            "order within a step is approximate; for exact completions use --engine des or "
            "engine.tau_step = 1 (docs/performance.md)")


def refusal(scenario: Scenario, engine: str) -> str | None:
    """Why `engine` should not run `scenario` (estimate and limit), or None if it may."""
    if engine not in SECONDS_PER_EVENT:
        return None
    years = scenario.horizon
    seconds = scenario.firms * EVENTS_PER_FIRM_YEAR * years * SECONDS_PER_EVENT[engine]
    memory = scenario.firms * BYTES_PER_FIRM
    limit_mem = memory_limit()
    if seconds <= MAX_SECONDS_PER_REPLICATION and memory <= limit_mem:
        return None
    return (f"{scenario.source}: population.firms = {scenario.firms:_}: the exact engine "
            f"({engine}) would need about {seconds / 60:,.0f} min and "
            f"{memory / 2**30:,.1f} GiB per replication "
            f"(limits {MAX_SECONDS_PER_REPLICATION / 60:.0f} min, {limit_mem / 2**30:.1f} GiB); "
            f"use --engine tau or --engine meanfield, whose memory does not grow with the "
            f"population")
