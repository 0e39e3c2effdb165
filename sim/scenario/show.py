"""How a value or a key appears in a problem line and in written TOML.

Shared by the reader, the `--set` keys, the checks and the writer, so that a message names a
key exactly as the file spells it.
"""

from __future__ import annotations

import re
from typing import Any


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{...}" if value else "{}"
    if isinstance(value, list) and len(value) > 4:
        return "[...]"
    text = repr(value) if isinstance(value, str) else str(value)
    if isinstance(value, bool):
        text = str(value).lower()
    return text if len(text) <= 60 else text[:57] + "..."


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


def _quote(text: str) -> str:
    """A TOML basic string: every control character escaped, so the text stays on one line
    and reads back as it was."""
    return '"' + "".join(_ESCAPES.get(ch) or (f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or
                                              ord(ch) == 0x7F else ch) for ch in text) + '"'


def _key(k: str) -> str:
    """A key as TOML writes it (and as messages show it): bare if it can be, else quoted."""
    return k if _BARE.fullmatch(k) else _quote(k)
