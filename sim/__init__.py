"""Discrete-event simulator of Chinese manufacturers adopting industrial-internet + AI.

The public API (docs/api.md): `sim.run`, `sim.sweep` and `sim.solve` take a scenario file's
path or a Scenario with overrides as Python values and return outcomes with pandas tables;
the rest comes from `sim.api` and `sim.scenario`. Everything is loaded on first use, so that
`import sim` stays cheap. Layers import one way: scenario < engines < {execution, analysis,
store, plots} < explore < api < cli, checked by tests/test_style.py.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["InputError", "RunOutcome", "ScenarioError", "SolveOutcome", "SweepOutcome",
           "SweepTables", "__version__", "load", "run", "solve", "sweep", "sweep_plan", "write",
           "write_solve"]

_HOMES = {"run": "sim.api.notebook", "sweep": "sim.api.notebook", "solve": "sim.api.notebook",
          "SweepTables": "sim.api.notebook", "ScenarioError": "sim.scenario"}
"""Where the names not found in `sim.api` live."""


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from importlib import import_module

        return getattr(import_module(_HOMES.get(name, "sim.api")), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
