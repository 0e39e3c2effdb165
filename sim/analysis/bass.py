"""The Bass (1969) curve: cumulative share F(t), its rate f(t), the curve through a given share,
and model time in years from a start date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np

from sim.scenario import DAYS_PER_YEAR


def default_start(dates: Sequence[dt.date]) -> dt.date:
    """The first date minus one period (the gap between the first two dates)."""
    return dates[0] - (dates[1] - dates[0])


def bass_fraction(t: np.ndarray, innovation: float, imitation: float) -> np.ndarray:
    """Bass (1969) cumulative share F(t) from zero adopters at t = 0 (vectorised, t >= 0)."""
    t = np.asarray(t, dtype=float)
    e = np.exp(-(innovation + imitation) * t)
    return (1.0 - e) / (1.0 + (imitation / innovation) * e)


def bass_from(share: np.ndarray, t: np.ndarray, innovation: float, imitation: float
              ) -> np.ndarray:
    """Bass share after time t starting from adopter share `share` (the ODE's solution through
    that point; a share at or above 1 stays there)."""
    s = np.minimum(np.asarray(share, dtype=float), 1.0)
    c = (1.0 - s) / (1.0 + (imitation / innovation) * s)
    e = c * np.exp(-(innovation + imitation) * np.asarray(t, dtype=float))
    return np.maximum((1.0 - e) / (1.0 + (imitation / innovation) * e), s)


def bass_rate(t: np.ndarray, innovation: float, imitation: float) -> np.ndarray:
    """Adoption rate f(t) = dF/dt = (p + q F)(1 - F), per year."""
    f = bass_fraction(t, innovation, imitation)
    return (innovation + imitation * f) * (1.0 - f)


def years_since(start: dt.date, dates: Sequence[dt.date]) -> np.ndarray:
    """Model time in years (1/365.25 per day) from `start` to each date."""
    return np.array([(d - start).days / DAYS_PER_YEAR for d in dates])

