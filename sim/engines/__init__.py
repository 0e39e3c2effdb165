"""The engines: three ways of advancing the same model in time, and what they share.

`engines()` names them: `des` exact discrete-event (compiled with numba), `tau` fixed steps,
`meanfield` the deterministic ODE limit, and `des-simpy`, the exact engine's events on simpy in
plain Python: the independent implementation the compiled one is checked against. Everything
above this package imports engine things from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from sim.engines.limits import refusal
from sim.engines.population import Layout, layout
from sim.engines.result import RunResult
from sim.scenario import Scenario

Engine = Callable[[Scenario, np.random.Generator], RunResult]

DETERMINISTIC = frozenset({"meanfield"})
"""Engines whose result does not depend on the seed: one replication says everything."""


_MODULES = {"des": ("sim.engines.des_jit", "simulate"), "tau": ("sim.engines.tau", "simulate_tau"),
            "meanfield": ("sim.engines.meanfield", "solve"),
            "des-simpy": ("sim.engines.des", "simulate")}


class _Engines(Mapping[str, Engine]):
    """The engines by name, each imported on first use: a tau run (and every worker process
    it spawns) need not load simpy or scipy.integrate."""

    def __getitem__(self, name: str) -> Engine:
        module, attr = _MODULES[name]
        return getattr(importlib.import_module(module), attr)

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


BatchEngine = Callable[[Scenario, np.random.Generator, int], list[RunResult]]
_BATCHED = {"tau": ("sim.engines.tau", "simulate_tau_batch", "batch_size")}


def batched(name: str) -> tuple[BatchEngine, Callable[[Scenario], int]] | None:
    """The engine's way of running n replications together from one stream, and the
    number it runs together for a scenario; None if it runs one at a time."""
    if name not in _BATCHED:
        return None
    module, run, size = _BATCHED[name]
    mod = importlib.import_module(module)
    return getattr(mod, run), getattr(mod, size)


_SENTINELS = {"des": ("sim.engines.des_kernel", "advance"),
              "tau": ("sim.engines.tau_kernels", "complete")}
"""Per engine compiled on first use, a kernel that every run of it compiles."""


def compiled(name: str) -> bool:
    """False if engine `name` is compiled on first use and its machine code is not yet in
    numba's cache (a fresh install: the first run compiles, 20-40 s for des, ~6 s for tau);
    True otherwise. Asks numba where it keeps that cache (beside the kernels, or the user's
    cache folder where the package is read-only, or NUMBA_CACHE_DIR), so it imports the
    engine's kernels but compiles nothing."""
    if name not in _SENTINELS:
        return True
    module, kernel = _SENTINELS[name]
    dispatcher = getattr(importlib.import_module(module), kernel)
    cache = getattr(dispatcher, "_cache", None)
    index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
    return index is None or Path(index).exists()


def engines() -> Mapping[str, Engine]:
    """Engines by name: `des` exact discrete-event, `tau` fixed steps, `meanfield` the ODE limit,
    `des-simpy` the exact engine on simpy (slower; the compiled one's reference)."""
    return _Engines()


__all__ = ["DETERMINISTIC", "BatchEngine", "Engine", "Layout", "RunResult", "batched", "compiled",
           "engines", "layout", "refusal"]
