"""Reference cases with known answers, shared by the test suite and docs/make_validation.py.

Each builder returns a raw scenario dictionary (validate it with `sim.scenario.validate`).
"""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from pathlib import Path

import numpy as np


def bass_share(t: np.ndarray, innovation: float, imitation: float) -> np.ndarray:
    """Bass (1969) cumulative adopter share from zero adopters at t = 0."""
    e = np.exp(-(innovation + imitation) * t)
    return (1 - e) / (1 + (imitation / innovation) * e)


def bass_raw(firms: int = 100_000, years: int = 5) -> dict:
    """One level, no resources or policies, instant projects, success 1, peer weight 0: the
    model reduces to the Bass curve with p = 0.03, q = 0.38."""
    return {
        "name": "bass",
        "start": dt.date(2026, 1, 1),
        "end": dt.date(2026 + years - 1, 12, 31),
        "replications": 1,
        "seed": 1,
        "target": {"firms": firms // 2, "level": "device",
                   "deadline": dt.date(2026 + years - 1, 12, 31)},
        "population": {"firms": firms, "peer_weight": 0.0},
        "levels": {"device": {"innovation": 0.03, "imitation": 0.38}},
    }


def four_level_raw(firms: int, years: int = 5) -> dict:
    """Four levels, two segments, peer weight 0.5, instant projects, no resources, success
    0.8 with immediate retry: every ingredient the mean field represents exactly."""
    return {
        "name": "agree", "start": dt.date(2026, 1, 1), "end": dt.date(2025 + years, 12, 31),
        "replications": 1, "seed": 1,
        "target": {"firms": firms // 10, "level": "line", "deadline": dt.date(2027, 12, 31)},
        "population": {"firms": firms, "peer_weight": 0.5, "segment": [
            {"name": "large", "share": 0.2, "propensity": 2.0,
             "initial": {"device": 0.3, "line": 0.1, "factory": 0.02}},
            {"name": "sme", "share": 0.8, "propensity": {"device": 0.8, "line": 0.6},
             "initial": {"device": 0.05}},
        ]},
        "levels": {
            "device": {"innovation": 0.05, "imitation": 0.5, "success": 0.8, "retry": 0},
            "line": {"innovation": 0.1, "imitation": 0.6, "eligible": 0.7, "success": 0.8,
                     "retry": 0},
            "factory": {"innovation": 0.1, "imitation": 0.5, "eligible": 0.4, "retry": 0},
            "ecosystem": {"innovation": 0.2, "imitation": 0.5, "eligible": 0.2, "retry": 0},
        },
    }


def binding_raw(firms: int = 20_000) -> dict:
    """Four levels, two segments, lognormal times, retries, integrators and compute that
    bind, a budgeted policy and a compute shock: the mean field's approximations at work."""
    return {
        "name": "binding", "description": "binding resources",
        "start": dt.date(2026, 1, 1), "end": dt.date(2028, 12, 31),
        "replications": 4, "seed": 7,
        "target": {"firms": firms // 10, "level": "line", "deadline": dt.date(2027, 12, 31),
                   "count": "new"},
        "population": {
            "firms": firms, "peer_weight": 0.3,
            "segment": [
                {"name": "large", "share": 0.2, "propensity": 2.0,
                 "initial": {"device": 0.3, "line": 0.1, "factory": 0.01}},
                {"name": "sme", "share": 0.8, "propensity": {"device": 1.0, "line": 0.7},
                 "initial": {"device": 0.05}},
            ],
        },
        "levels": {
            "device": {"innovation": 0.05, "imitation": 0.4, "success": 0.9, "retry": 6,
                       "implementation": {"median": 4, "sigma": 0.5},
                       "needs": {"integrators": 1}},
            "line": {"innovation": 0.03, "imitation": 0.5, "eligible": 0.6, "success": 0.8,
                     "implementation": {"median": 6, "sigma": 0.5},
                     "needs": {"integrators": 1}},
            "factory": {"innovation": 0.01, "imitation": 0.3, "eligible": 0.2,
                        "implementation": {"median": 9, "sigma": 0.6},
                        "needs": {"integrators": 1, "compute": 1}},
            "ecosystem": {"innovation": 0.005, "imitation": 0.2, "eligible": 0.05,
                          "implementation": {"median": 12, "sigma": 0.6},
                          "needs": {"integrators": 2, "compute": 2}},
        },
        "resources": {"integrators": {"capacity": firms * 3 // 100, "growth": 0.2},
                      "compute": {"capacity": firms * 3 // 1000}},
        "policy": [{"name": "subsidy", "start": dt.date(2026, 3, 1),
                    "end": dt.date(2027, 12, 31), "multiplier": {"line": 1.5},
                    "segments": ["sme"], "budget": 5.0e8, "cost": {"line": 1.0e6}}],
        "shock": [{"name": "chips", "at": dt.date(2027, 1, 1), "resource": "compute",
                   "capacity_factor": 0.5}],
    }


def assert_same_result(a, b) -> None:
    """Two RunResults are the same to the bit: every array (national and per region) and
    every scalar the engines report."""
    for name in ("at_or_above", "upgraded", "by_segment", "initial", "region_at_or_above",
                 "region_upgraded", "region_initial", "region_count_at_deadline"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), name
    assert (a.count_at_deadline, a.crossing_time, a.met, a.events, a.spent) == (
        b.count_at_deadline, b.crossing_time, b.met, b.events, b.spent)


def scaled_raw(path: Path, factor: float, **target) -> dict:
    """A scenario file with its population, target, capacities and budgets scaled by
    `factor` (and `target` keys set)."""
    with open(path, "rb") as fh:
        raw = copy.deepcopy(tomllib.load(fh))
    raw["population"]["firms"] = round(raw["population"]["firms"] * factor)
    raw["target"]["firms"] = max(1, round(raw["target"]["firms"] * factor))
    raw["target"].update(target)
    for res in raw.get("resources", {}).values():
        res["capacity"] = max(1, round(res["capacity"] * factor))
    for pol in raw.get("policy", []):
        if "budget" in pol:
            pol["budget"] *= factor
    return raw


def capacity_by_day(params, day: float) -> np.ndarray:
    """Units of every resource on `day` (days from the start) under `params`' shock
    factors: the limit the fast engine's starts in a (sub-)step ending that day must keep."""
    from sim.engines.capacity import capacity_units
    from sim.scenario import DAYS_PER_YEAR

    return capacity_units(params.capacity_base, params.capacity_factor, params.log_growth,
                          day / DAYS_PER_YEAR)
