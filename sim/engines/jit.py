"""How the compiled exact engine is compiled: numba's `njit`, cached on disk beside the
module (the first run on a machine compiles for 20-40 s, later ones load in a third of a
second), without reference counting, and with the hot helpers inlined.

The kernels take the whole state, a named tuple of ~60 arrays. With numba's reference counting
every call of a function that is not inlined increfs and decrefs each of them, which measured
86% of a run (0.70 s against 0.10 s a replication of the shipped baseline); the kernels
allocate nothing, so they need none of it (`_nrt=False`: no runtime for owned arrays). Inlining
the helpers that run on every event (numba's own inliner, `inline="always"`) saves passing the
tuple by value at each call: a further quarter (0.10 s to 0.07 s).
"""

from __future__ import annotations

from typing import Any

from numba import njit

_OPTIONS: dict[str, Any] = {"cache": True, "_nrt": False}

kernel = njit(**_OPTIONS)
"""Decorator of the compiled engine's entry points (called from Python)."""

inline = njit(**_OPTIONS, inline="always")
"""Decorator of its helpers on the hot path, compiled into their callers."""
