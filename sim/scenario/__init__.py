"""The only gate from TOML to the model: read, override and validate a scenario file.

Everything downstream reads the typed, frozen `Scenario`, never the raw dictionary; every
problem found is reported at once as a ScenarioError, one line each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sim.scenario.keys import apply_overrides, get_key, parse_value, set_key, split_key
from sim.scenario.show import _key
from sim.scenario.show import _key as key_text
from sim.scenario.tables import LEVEL_KEYS
from sim.scenario.tomlio import _value, dumps, read_toml
from sim.scenario.tomlio import _value as toml_value
from sim.scenario.types import (
    COUNT_COLUMNS,
    COUNTS,
    DATE_KEYS,
    DAYS_PER_YEAR,
    DESIGNS,
    FIRST_DATE,
    LAST_DATE,
    LEVELS,
    MAX_FIRMS,
    MAX_HORIZON_YEARS,
    NAME_PATTERN,
    NATIONAL,
    TAU_STEP_DAYS,
    Level,
    Policy,
    Quotas,
    Region,
    Resource,
    Scenario,
    ScenarioError,
    Segment,
    Shock,
    Sweep,
    Target,
)
from sim.scenario.validation import TOP_KEYS, validate


def load(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override (`KEY=VALUE` texts; one text alone is taken as one) and validate a
    scenario file; raise ScenarioError listing every problem."""
    if isinstance(overrides, str):  # (else each of its letters would be an override)
        overrides = [overrides]
    path = Path(path)
    raw = read_toml(path)
    apply_overrides(raw, overrides, source=str(path))
    return validate(raw, source=str(path))


__all__ = [
    "COUNT_COLUMNS", "COUNTS", "DATE_KEYS", "DAYS_PER_YEAR", "DESIGNS", "FIRST_DATE",
    "LAST_DATE", "LEVELS",
    "LEVEL_KEYS",
    "MAX_FIRMS", "MAX_HORIZON_YEARS", "NAME_PATTERN", "NATIONAL", "TAU_STEP_DAYS", "TOP_KEYS",
    "Level", "Policy", "Quotas", "Region", "Resource", "Scenario", "ScenarioError", "Segment",
    "Shock", "Sweep", "Target",
    "_key", "_value", "apply_overrides", "dumps", "get_key", "key_text", "load", "parse_value",
    "read_toml", "set_key", "split_key", "toml_value", "validate",
]
