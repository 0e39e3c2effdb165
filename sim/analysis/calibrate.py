"""`sim calibrate`'s analysis, by job: reading series (sim.analysis.series), the Bass curve
(sim.analysis.bass), the fit and its intervals (sim.analysis.fit) and the scenario fragment
(sim.analysis.fragment). This module re-exports their public names for existing imports."""

from __future__ import annotations

from sim.analysis.bass import bass_fraction, bass_from, bass_rate, default_start, years_since
from sim.analysis.fit import (
    DEFAULT_ESTIMATOR,
    ESTIMATORS,
    MARKET_REACH,
    P_BOUNDS,
    PARAMETERS,
    PROFILE_REACH,
    Q_BOUNDS,
    WALD_MAX_LOG_SE,
    WEAK_RATIO,
    Estimate,
    Fit,
    fit,
)
from sim.analysis.fragment import fragment
from sim.analysis.series import KINDS, MAX_COUNT, Series, SeriesError, parse_series, read_series

__all__ = [
    "DEFAULT_ESTIMATOR", "ESTIMATORS", "KINDS", "MARKET_REACH", "MAX_COUNT", "PARAMETERS",
    "PROFILE_REACH", "P_BOUNDS", "Q_BOUNDS", "WALD_MAX_LOG_SE", "WEAK_RATIO", "Estimate", "Fit",
    "Series", "SeriesError", "bass_fraction", "bass_from", "bass_rate", "default_start", "fit",
    "fragment", "parse_series", "read_series", "years_since",
]
