"""Discrete-event simulator of Chinese manufacturers adopting industrial-internet + AI.

The use cases are importable from here (`sim.run`, `sim.sweep`, `sim.solve`, ...; see
`sim.api`), loaded on first use so that `import sim` stays cheap. Layers import one way:
scenario < engines < {execution, analysis, store, plots} < explore < api < cli, checked by
tests/test_style.py.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["InputError", "RunOutcome", "SolveOutcome", "SweepOutcome", "__version__", "load",
           "run", "solve", "sweep", "sweep_plan", "write", "write_solve"]


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from sim import api

        return getattr(api, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
