"""Reading a scenario file into a dictionary, and writing one back as TOML.

Every reading fault becomes a ScenarioError line naming the line at fault; the writer gives
the `scenario.toml` stored "exactly as run", which reads back to the same dictionary.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sim.scenario.show import _key, _quote, _show
from sim.scenario.types import ScenarioError


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file into a dict, turning every reading fault into a ScenarioError line."""
    src = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioError([f"{src}: cannot read the file ({exc.strerror or exc})"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        shown = _show(data.split(b"\n")[line - 1].decode("utf-8", errors="replace"))
        raise ScenarioError(
            [f"{src}: line {line}: {shown}: byte {exc.start} is not UTF-8: a scenario file "
             "must be UTF-8 text"]
        ) from None
    if not text.strip():
        raise ScenarioError([f"{src}: the file is empty: a scenario needs at least name, start, "
                             "end, [target] and [population]"])
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ScenarioError([f"{src}: {_toml_line(text, None)}not valid TOML: nested too "
                             "deeply"]) from None
    except ValueError as exc:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise ScenarioError([f"{src}: {_toml_line(text, exc)}not valid TOML: "
                             f"{_toml_reason(exc)}"]) from None


_AT_LINE = re.compile(r" \(at line (\d+), column \d+\)| \(at end of document\)")


def _toml_reason(exc: ValueError) -> str:
    if isinstance(exc, tomllib.TOMLDecodeError):
        return _AT_LINE.sub("", str(exc))
    return "a whole number with more than 4300 digits"


def _toml_line(text: str, exc: ValueError | None) -> str:
    """'line N: <the line>: ' for a TOML error, so that the message shows the key at fault.

    tomllib names the line of a syntax error; an over-long integer or too deep nesting it
    does not, so the line with the longest run of digits or the most brackets is named."""
    lines = text.splitlines()
    found = _AT_LINE.search(str(exc)) if exc is not None else None
    if found and found.group(1):
        n = int(found.group(1))
    else:
        def weight(line: str) -> int:
            if exc is None:
                return line.count("[") + line.count("{")
            return max((len(m) for m in re.findall(r"\d+", line)), default=0)

        n = 1 + max(range(len(lines)), key=lambda i: weight(lines[i])) if lines else 0
    if not 1 <= n <= len(lines):
        return ""
    return f"line {n}: {_show(lines[n - 1].strip())}: "


# ---------------------------------------------------------------------------------------------
# Writing the scenario back (scenario.toml "exactly as run")


def dumps(raw: Mapping[str, Any]) -> str:
    """Serialise a scenario dictionary as TOML (tables, arrays of tables, inline tables)."""
    lines: list[str] = []
    _dump_table(raw, [], lines)
    return "\n".join(lines).strip() + "\n"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _quote(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _dump_table(tbl: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    subtables = []
    for k, v in tbl.items():
        if isinstance(v, dict) or _is_table_array(v):
            subtables.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in subtables:
        full = [*path, _key(k)]
        if isinstance(v, dict):
            scalars_only = all(not isinstance(x, dict) and not _is_table_array(x)
                               for x in v.values())
            if scalars_only or v:
                lines.append("")
                lines.append(f"[{'.'.join(full)}]")
            _dump_table(v, full, lines)
        else:
            for item in v:
                lines.append("")
                lines.append(f"[[{'.'.join(full)}]]")
                for ik, iv in item.items():
                    lines.append(f"{_key(ik)} = {_value(iv)}")
