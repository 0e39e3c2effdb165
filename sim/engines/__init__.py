"""The engines: three ways of advancing the same model in time, and what they share.

`engines()` names them: `des` exact discrete-event, `tau` fixed steps, `meanfield` the
deterministic ODE limit. Everything above this package imports engine things from here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.engines.limits import refusal
from sim.engines.population import Layout, layout
from sim.engines.result import RunResult
from sim.scenario import Scenario

Engine = Callable[[Scenario, np.random.Generator], RunResult]

DETERMINISTIC = frozenset({"meanfield"})
"""Engines whose result does not depend on the seed: one replication says everything."""


def engines() -> dict[str, Engine]:
    """Engines by name: `des` exact discrete-event, `tau` fixed steps, `meanfield` the ODE limit."""
    from sim.engines.des import simulate
    from sim.engines.meanfield import solve
    from sim.engines.tau import simulate_tau

    return {"des": simulate, "tau": simulate_tau, "meanfield": solve}


__all__ = ["DETERMINISTIC", "Engine", "Layout", "RunResult", "engines", "layout", "refusal"]
