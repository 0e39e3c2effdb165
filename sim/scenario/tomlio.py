"""Reading a scenario file into a dictionary, and writing one back as TOML.

Every reading fault becomes a ScenarioError line naming the line at fault. The writers give
the `scenario.toml` stored "exactly as run", which reads back to the same dictionary:
`dumps_as_run` writes the changes into the source file's text (tomlkit keeps its comments and
number forms), `dumps` writes canonical TOML when there is no source file.
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

MAX_BYTES = 16 * 2**20
"""The largest scenario file read (the shipped ones are about 30 KB)."""


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file into a dict, turning every reading fault into a ScenarioError line."""
    src = str(path)
    try:
        with open(path, "rb") as fh:  # (at most MAX_BYTES: /dev/zero never ends)
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ScenarioError([f"{src}: cannot read the file ({exc.strerror or exc})"]) from None
    if len(data) > MAX_BYTES:
        raise ScenarioError([f"{src}: more than {MAX_BYTES // 2**20} MiB: not a scenario file"])
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


# ---------------------------------------------------------------------------------------------
# The scenario as run, written over its source file (comments and layout kept)

CHANGED = "changed for this run"


def dumps_as_run(raw: Mapping[str, Any], source: str | Path | None) -> str:
    """`raw` (a scenario with its overrides applied) written as TOML over the text of its
    source file: comments, layout and number forms (`520_000`, `5.2e9`) stay as written,
    and each value that differs from the file is changed in place, its comment marked.
    Without a readable source file, or should the result not read back as exactly `raw`,
    this is `dumps(raw)`."""
    text = _source_text(source)
    if text is not None:
        try:
            import tomlkit

            doc = tomlkit.parse(text)
            _merge(doc, raw)
            out = tomlkit.dumps(doc)
            if _same(tomllib.loads(out), raw):
                return out if out.endswith("\n") else out + "\n"
        except Exception:  # whatever fails in the layout-keeping writer, dumps is exact
            pass
    return dumps(raw)


def _source_text(source: str | Path | None) -> str | None:
    if source is None:
        return None
    try:
        path = Path(source)
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _merge(node: Any, new: Mapping[str, Any]) -> None:
    """Make the tomlkit table `node` hold `new`, touching only what differs."""
    old = node.unwrap()
    for key in [k for k in old if k not in new]:
        del node[key]
    for key, value in new.items():
        if key not in old:
            node[key] = value
            _mark(node, key, None)
            continue
        if _same(old[key], value):
            continue
        was = _written(node, key)
        if isinstance(value, dict) and isinstance(old[key], dict):
            _merge(node[key], value)
            if not _is_table(node, key):  # an inline table: its line carries the comment
                _mark(node, key, was)
        elif (_is_table_array(value) and _is_table_array(old[key])
              and len(value) == len(old[key]) and _is_table(node, key)):
            for item, entry in zip(node[key], value, strict=True):
                _merge(item, entry)
        else:
            node[key] = value
            _mark(node, key, was)


def _written(node: Any, key: str) -> str:
    """`node[key]`'s value as the file writes it."""
    return node.item(key).as_string().strip() if hasattr(node, "item") else ""


def _is_table(node: Any, key: str) -> bool:
    """True when `node[key]` is written as a [table] or [[array of tables]] of its own."""
    import tomlkit.items as items

    return isinstance(node[key], items.Table | items.AoT)


def _mark(node: Any, key: str, was: str | None) -> None:
    """Say in the value's comment that the run changed it (from `was`, as the file wrote it;
    None: added), keeping the file's comment and, where it can, its column."""
    import tomlkit.items as items

    if not hasattr(node, "item") or isinstance(node, items.InlineTable):
        return  # a value inside an inline table: its line is marked by the caller
    item = node.item(key)
    if isinstance(item, items.Table | items.AoT) or not hasattr(item, "trivia"):
        return
    if was is None:
        note = "added for this run"
    elif was and len(was) <= 40 and "\n" not in was:
        note = f"{CHANGED} (the file had {was})"
    else:
        note = CHANGED
    comment = item.trivia.comment.lstrip("#").strip()
    if comment.startswith(CHANGED):  # a scenario.toml run again with other overrides
        comment = comment.split(";", 1)[1].strip() if ";" in comment else ""
    item.trivia.comment = f"# {note}" + (f"; {comment}" if comment else "")
    width = len(item.trivia.comment_ws) + len(was or "") - len(item.as_string().strip())
    item.trivia.comment_ws = " " * (max(width, 1) if item.trivia.comment_ws else 2)


def _same(a: Any, b: Any) -> bool:
    """Equal as TOML values: 1, 1.0 and true differ; NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a)
                                                     == math.copysign(1, b))
    return a == b
