"""The problem collector: reads typed values out of the raw dictionary, one line per fault.

Each line names the source, the key, the value and what is allowed.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sim.scenario.show import _key, _show
from sim.scenario.types import FIRST_DATE, LAST_DATE, LEVELS


class _Checker:
    """Collects problems while reading typed values out of the raw dictionary."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []

    def fail(self, key: str, value: Any, allowed: str) -> None:
        shown = _show(value)
        self.problems.append(f"{self.source}: {key} = {shown}: {allowed}")

    def note(self, key: str, message: str) -> None:
        self.problems.append(f"{self.source}: {key}: {message}")

    def unknown(self, table: Mapping[str, Any], allowed: Sequence[str], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                guess = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"; did you mean {guess[0]!r}?" if guess else ""
                where = f"{prefix}.{_key(key)}" if prefix else _key(key)
                self.note(where, f"unknown key (allowed: {', '.join(allowed)}){hint}")

    def table(self, parent: Mapping[str, Any], key: str, prefix: str, *, required: bool = False
              ) -> dict[str, Any]:
        where = f"{prefix}.{key}" if prefix else key
        if key not in parent:
            if required:
                self.note(where, "missing: this table is required")
            return {}
        value = parent[key]
        if not isinstance(value, dict):
            self.fail(where, value, "must be a table")
            return {}
        return value

    def number(self, table: Mapping[str, Any], key: str, prefix: str, default: float | None, *,
               lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False,
               integer: bool = False, what: str = "") -> float | None:
        where = f"{prefix}.{key}" if prefix else key
        if key not in table:
            if default is None:
                self.note(where, "missing: this key is required")
            return default
        return self.check_number(table[key], where, default, lo=lo, hi=hi, lo_open=lo_open,
                                 integer=integer, what=what)

    def check_number(self, value: Any, where: str, default: float | None, *, lo: float,
                     hi: float, lo_open: bool = False, integer: bool = False, what: str = ""
                     ) -> float | None:
        kind = "a whole number" if integer else "a number"
        rng = _range_text(lo, hi, lo_open)
        allowed = f"must be {kind}{rng}" + (f" ({what})" if what else "")
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, value, allowed)
            return default
        # Compared as they are: math.isfinite and float() overflow on integers past 1e308.
        finite = isinstance(value, int) or math.isfinite(value)
        whole = isinstance(value, int) or (finite and value == int(value))
        if not finite or (integer and not whole):
            self.fail(where, value, allowed)
            return default
        if value < lo or value > hi or (lo_open and value == lo):
            self.fail(where, value, allowed)
            return default
        return int(value) if integer else float(value)

    def date(self, table: Mapping[str, Any], key: str, prefix: str, *, required: bool = True
             ) -> dt.date | None:
        where = f"{prefix}.{key}" if prefix else key
        if key not in table:
            if required:
                self.note(where, "missing: this key is required (a TOML date such as 2026-01-01)")
            return None
        value = table[key]
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            self.fail(where, value, "must be a TOML date such as 2026-01-01 (no quotes, no time)")
            return None
        if not FIRST_DATE <= value <= LAST_DATE:
            self.fail(where, value, f"must lie between {FIRST_DATE} and {LAST_DATE}")
            return None
        return value

    def string(self, table: Mapping[str, Any], key: str, prefix: str, default: str | None, *,
               choices: Sequence[str] | None = None) -> str | None:
        where = f"{prefix}.{key}" if prefix else key
        if key not in table:
            if default is None:
                self.note(where, "missing: this key is required")
            return default
        value = table[key]
        if not isinstance(value, str):
            allowed = f"one of {', '.join(choices)}" if choices else "text"
            self.fail(where, value, f"must be {allowed}")
            return default
        if choices is not None and value not in choices:
            guess = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
            hint = f"; did you mean {guess[0]!r}?" if guess else ""
            self.fail(where, value, f"must be one of {', '.join(choices)}{hint}")
            return default
        return value

    def per_level(self, value: Any, where: str, default: float, *, lo: float, hi: float,
                  scalar_ok: bool) -> tuple[float, ...]:
        """A number for every level, or a table {level = number}; missing levels take default."""
        if scalar_ok and not isinstance(value, dict):
            num = self.check_number(value, where, default, lo=lo, hi=hi)
            return (num,) * len(LEVELS)  # type: ignore[return-value]
        if not isinstance(value, dict):
            self.fail(where, value, "must be a table per level, e.g. { line = 1.5 }")
            return (default,) * len(LEVELS)
        self.unknown(value, LEVELS, where)
        return tuple(  # default is a float, so check_number returns a float
            cast(float, self.check_number(value[lv], f"{where}.{lv}", default, lo=lo, hi=hi))
            if lv in value else default
            for lv in LEVELS
        )


def _range_text(lo: float, hi: float, lo_open: bool) -> str:
    if lo == -math.inf and hi == math.inf:
        return ""
    if hi == math.inf:
        return f" > {_num(lo)}" if lo_open else f" >= {_num(lo)}"
    if lo == -math.inf:
        return f" <= {_num(hi)}"
    left = "(" if lo_open else "["
    return f" in {left}{_num(lo)}, {_num(hi)}]"


def _num(x: float) -> str:
    return f"{int(x):_}" if float(x).is_integer() and abs(x) >= 1e4 else f"{x:g}"
