"""The rule of resource capacity, re-exported by `rules`: whole units of a resource at a
model time (base x shock factor x (1 + growth)^t, floored), the time the next unit is gained
or lost, and the unfloored fluid form the mean field uses. Plain float code where the
compiled exact engine compiles it (`capacity_at`, `next_unit_change`)."""

from __future__ import annotations

import math

import numpy as np

CAPACITY_EPS = 1e-9
"""Capacity is floored to whole units; this keeps 2.9999999999 from losing a unit."""


def capacity_units(base, factor, log_growth, t):
    """Whole units of a resource at model time t (years): base * shock factor * (1+g)^t,
    floored; on floats (an int back) or arrays (broadcast)."""
    if isinstance(t, float) and isinstance(base, float) or not (np.ndim(base) or np.ndim(t)):
        return capacity_at(base, factor, log_growth, t)  # (checked first: the hot case)
    return np.floor(capacity_fluid(base, factor, log_growth, t) + CAPACITY_EPS)


def capacity_at(base: float, factor: float, log_growth: float, t: float) -> int:
    """`capacity_units` of one resource, on floats only: the compiled exact engine compiles
    this function itself, so the rule stays written once."""
    return int(base * factor * math.exp(log_growth * t) + CAPACITY_EPS)


def next_unit_change(base: float, factor: float, log_growth: float, units: int) -> float:
    """Model time at which a resource now holding `units` whole units gains (growth) or
    loses (decline) one: the inverse of `capacity_units`, stepped past rounding so that the
    capacity there has changed (at 1e8 units the exact inverse can land a hair before it);
    inf if it never does. Plain float code: the compiled exact engine compiles it."""
    b = base * factor
    if log_growth > 0 and b > 0:
        t, up = math.log((units + 1) / b) / log_growth, True
    elif log_growth < 0 and units > 0:
        t, up = math.log(units / b) / log_growth, False
    else:
        return math.inf
    step = max(abs(t), 1.0) * 2.3e-16
    while True:
        now = int(b * math.exp(log_growth * t) + CAPACITY_EPS)  # capacity_at
        if now > units if up else now < units:
            return t
        t += step
        step *= 2.0


def capacity_fluid(base: np.ndarray, factor: np.ndarray, log_growth: np.ndarray, t
                   ) -> np.ndarray:
    """The same capacity before flooring, for the mean field's fluid queue."""
    return base * factor * np.exp(log_growth * t)
