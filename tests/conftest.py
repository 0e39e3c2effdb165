"""Shared builders: small scenarios written as dictionaries, validated through the real gate."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest

from sim.scenario import Scenario, dumps, set_key, validate

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))


def base_raw() -> dict:
    """A four-level, two-segment scenario with resources, a policy and a shock."""
    return {
        "name": "unit",
        "description": "test scenario",
        "start": dt.date(2026, 1, 1),
        "end": dt.date(2028, 12, 31),
        "replications": 4,
        "seed": 7,
        "target": {"firms": 2_000, "level": "line", "deadline": dt.date(2027, 12, 31),
                   "count": "new"},
        "population": {
            "firms": 20_000,
            "peer_weight": 0.3,
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
        "resources": {"integrators": {"capacity": 600, "growth": 0.2},
                      "compute": {"capacity": 60}},
        "policy": [{"name": "subsidy", "start": dt.date(2026, 3, 1),
                    "end": dt.date(2027, 12, 31), "multiplier": {"line": 1.5},
                    "segments": ["sme"], "budget": 1.0e9, "cost": {"line": 1.0e6}}],
        "shock": [{"name": "chips", "at": dt.date(2027, 1, 1), "resource": "compute",
                   "capacity_factor": 0.5}],
    }


def make(changes: dict | None = None, raw: dict | None = None) -> Scenario:
    """Validate `raw` (default: base_raw()) after setting dotted keys from `changes`."""
    data = copy.deepcopy(raw if raw is not None else base_raw())
    for key, value in (changes or {}).items():
        set_key(data, key, value)
    return validate(data, source="test.toml")


@pytest.fixture
def write_scenario(tmp_path):
    """Write a raw scenario dictionary to a TOML file and return its path."""

    def _write(raw: dict, name: str = "scenario.toml") -> Path:
        path = tmp_path / name
        path.write_text(dumps(raw), encoding="utf-8")
        return path

    return _write
