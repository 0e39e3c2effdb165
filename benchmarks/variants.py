"""Variants of a shipped scenario for the benchmarks, made on its TOML table before
validation."""

from __future__ import annotations

import copy
from typing import Any


def national(raw: dict[str, Any]) -> dict[str, Any]:
    """The scenario without regions, regional policies, quotas or entry and exit: the
    baseline as it was when issue 17 set its throughput goal."""
    out = copy.deepcopy(dict(raw))
    pop = out["population"]
    for key in ("entry", "exit", "entry_device", "region", "quotas"):
        pop.pop(key, None)
    out["policy"] = [p for p in out.get("policy", []) if "regions" not in p]
    return out
