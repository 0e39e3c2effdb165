"""The only gate from TOML to the model: read, override and validate a scenario file.

Everything downstream reads the typed, frozen `Scenario`, never the raw dictionary.
"""

from __future__ import annotations

from sim.scenario.validation import (
    COUNTS,
    DAYS_PER_YEAR,
    DESIGNS,
    FIRST_DATE,
    LAST_DATE,
    LEVEL_KEYS,
    LEVELS,
    MAX_FIRMS,
    MAX_HORIZON_YEARS,
    NAME_PATTERN,
    TAU_STEP_DAYS,
    TOP_KEYS,
    Level,
    Policy,
    Resource,
    Scenario,
    ScenarioError,
    Segment,
    Shock,
    Sweep,
    Target,
    _key,
    _value,
    apply_overrides,
    dumps,
    get_key,
    load,
    parse_value,
    read_toml,
    set_key,
    split_key,
    validate,
)

__all__ = [
    "COUNTS", "DAYS_PER_YEAR", "DESIGNS", "FIRST_DATE", "LAST_DATE", "LEVELS", "LEVEL_KEYS",
    "MAX_FIRMS", "MAX_HORIZON_YEARS", "NAME_PATTERN", "TAU_STEP_DAYS", "TOP_KEYS", "Level",
    "Policy", "Resource", "Scenario", "ScenarioError", "Segment", "Shock", "Sweep", "Target",
    "_key", "_value", "apply_overrides", "dumps", "get_key", "load", "parse_value", "read_toml",
    "set_key", "split_key", "validate",
]
