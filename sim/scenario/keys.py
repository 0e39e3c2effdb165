"""Dotted keys (`levels.line.imitation`, `policy.subsidy.budget`) and `--set` overrides.

List elements are named by index or by their `name`; values are parsed as TOML values.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from sim.scenario.show import _show
from sim.scenario.tomlio import _toml_reason
from sim.scenario.types import ScenarioError


def parse_value(text: str) -> Any:
    """A `--set` value in TOML value syntax; a bare word that is not TOML is taken as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except RecursionError:
        raise ValueError("the value is nested too deeply") from None
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", text.strip()):
            return text.strip()
        raise ValueError(f"{_show(text)} is not a TOML value (quote strings, e.g. "
                         "'\"line\"')") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise ValueError(f"not a usable TOML value: {_toml_reason(exc)}") from None


def split_key(key: str) -> list[str]:
    """Split a dotted key; parts may be quoted ("a.b"), list elements named by index or name."""
    parts, buf, quote = [], "", None
    for ch in key:
        if quote:
            if ch == quote:
                quote = None
            else:
                buf += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(buf)
            buf = ""
        else:
            buf += ch
    parts.append(buf)
    return [p.strip() for p in parts]


def set_key(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set dotted `key` in `raw`, creating tables as needed; list elements by index or name."""
    parts = split_key(key)
    if not key.strip() or any(p == "" for p in parts):
        raise KeyError(f"{key!r} is not a dotted key")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        node = _child(node, part, parts[: i + 1], create=True)
    last = parts[-1]
    if isinstance(node, list):
        idx = _list_index(node, last, parts)
        node[idx] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise KeyError(f"{'.'.join(parts[:-1])} is a value, not a table")


def get_key(raw: Mapping[str, Any], key: str) -> Any:
    """Read dotted `key` from `raw` (KeyError if absent)."""
    node: Any = raw
    parts = split_key(key)
    for i, part in enumerate(parts):
        node = _child(node, part, parts[: i + 1], create=False)
    return node


def _child(node: Any, part: str, path: list[str], *, create: bool) -> Any:
    if isinstance(node, list):
        return node[_list_index(node, part, path)]
    if not isinstance(node, dict):
        raise KeyError(f"{'.'.join(path[:-1])} is a value, not a table")
    if part not in node:
        if not create:
            raise KeyError(f"{'.'.join(path)} is not set")
        node[part] = {}
    return node[part]


def _list_index(node: list[Any], part: str, path: list[str]) -> int:
    """The element `part` names: by `name`, or by index when it is digits. Digits that are
    one element's name and another's index are refused: either could be meant."""
    named = [i for i, item in enumerate(node)
             if isinstance(item, dict) and item.get("name") == part]
    if part.isdigit():
        idx = int(part)
        if named and named[0] != idx and idx < len(node):
            other = node[idx].get("name") if isinstance(node[idx], dict) else None
            # Only forms that name one entry: an index no entry has as its name, a name
            # that is not digits.
            forms = []
            if not any(isinstance(x, dict) and x.get("name") == str(named[0]) for x in node):
                forms.append(str(named[0]))
            if isinstance(other, str) and not other.isdigit():
                forms.append(repr(other))
            instead = (f"write {' or '.join(forms)} instead" if forms
                       else "rename one of them: digits that are both cannot be told apart")
            raise KeyError(f"{'.'.join(path)}: {part!r} is the name of entry {named[0]} and "
                           f"the index of entry {idx}; {instead}")
        if named:
            return named[0]
        if idx >= len(node):
            raise KeyError(f"{'.'.join(path)}: index {idx} but the list has {len(node)} entries")
        return idx
    if named:
        return named[0]
    raise KeyError(f"{'.'.join(path)}: no entry named {part!r} (use an index or a name)")


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str], *, source: str) -> None:
    """Apply `key=value` overrides in place; every malformed one is a ScenarioError line."""
    problems = []
    for item in overrides:
        if "=" not in item:
            problems.append(f"{source}: --set {_show(item)}: expected dotted.key=value")
            continue
        key, text = item.split("=", 1)
        try:
            value = parse_value(text)
            set_key(raw, key.strip(), value)
        except (ValueError, KeyError) as exc:
            msg = exc.args[0] if exc.args else str(exc)
            problems.append(f"{source}: --set {_show(item)}: {msg}")
    if problems:
        raise ScenarioError(problems)
