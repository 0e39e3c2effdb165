"""The parts of report.html's pages: style, figures embedded as data URIs, tables, the
verdict box, and a scenario's key assumptions with the source comments its file puts beside
them. Plain HTML text; every value from a user is escaped (`esc`)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sim.readout.shares import share_text
from sim.scenario import LEVELS

CSS = """
body{margin:0;background:#eef0f3;color:#1d2330;font:15px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","PingFang SC","Microsoft YaHei",sans-serif}
main{max-width:1100px;margin:0 auto;padding:28px 36px 40px;background:#fff;min-height:100vh;
box-sizing:border-box}
h1{font-size:26px;line-height:1.25;margin:0 0 4px}
h2{font-size:19px;margin:34px 0 10px;padding-bottom:4px;border-bottom:1px solid #dde1e7}
p{margin:6px 0 10px} .sub,.note,footer{color:#5b6475} .note,footer{font-size:13px}
.verdict{border-left:6px solid #8a94a6;background:#f3f5f8;border-radius:6px;padding:16px 22px;
margin:18px 0}
.verdict.met{border-color:#2e7d4f;background:#eaf5ee} .verdict.miss{border-color:#b8452f;
background:#fbefeb} .verdict.partial{border-color:#c08a12;background:#fdf6e3}
.verdict h2{border:0;margin:0 0 2px;padding:0;font-size:22px}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:10px 18px;
margin:14px 0 10px}
.stat b{display:block;font-size:20px;font-variant-numeric:tabular-nums}
.stat span{display:block;color:#5b6475;font-size:13px}
.line{font-size:13px;color:#394150;margin:8px 0 0}
.warn{color:#8a4b00}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0;
font-size:14px} dl.meta dt{color:#5b6475} dl.meta dd{margin:0;overflow-wrap:anywhere}
.scroll{overflow-x:auto;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:14px;font-variant-numeric:tabular-nums}
th,td{padding:5px 10px;border-bottom:1px solid #e3e6eb;text-align:left;vertical-align:top}
thead th{background:#f3f5f8;color:#394150;font-weight:600;border-bottom:1px solid #c9ced6}
td.num,th.num{text-align:right;white-space:nowrap} td.src{color:#394150;font-size:13px}
td.own{background:#fff1b8;font-weight:600;outline:2px solid #e0b400;outline-offset:-2px}
td.reach{color:#2e7d4f} small{color:#5b6475;font-weight:400}
tr.group th{background:#fff;padding-top:14px;border-bottom:1px solid #c9ced6;font-weight:600}
tr.group th small{font-weight:400;margin-left:6px}
tr.set td{background:#f0f4ff}
figure{margin:14px 0 22px}
figure img{display:block;max-width:100%;max-height:760px;width:auto;height:auto;margin:0 auto}
figcaption{color:#5b6475;font-size:13px;text-align:center;margin-top:4px}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;
font-size:13px} pre{background:#f3f5f8;padding:10px 14px;border-radius:4px;
overflow-x:auto;margin:6px 0} pre.wrap{white-space:pre-wrap;overflow-wrap:anywhere}
td code{font-size:12px;color:#394150;white-space:nowrap}
@media print{body{background:#fff} main{padding:0;max-width:none}}
"""
# Harmless without it: marks <body> with how many images loaded (checked in a real browser).
SCRIPT = ("addEventListener('load',function(){var n=0,im=document.images;for(var i=0;i<im."
          "length;i++)if(im[i].complete&&im[i].naturalWidth>0)n++;document.body.setAttribute("
          "'data-images-loaded',n)});")


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Control characters HTML does not allow in text (NUL is a parse error): shown as U+FFFD."""


def esc(x: Any) -> str:
    """`x` as HTML text: every value that comes from a user goes through here."""
    return _CONTROL.sub("\ufffd", html.escape(str(x), quote=True))


def number(x: Any) -> str:
    """A value as a reader wants it: 50,000 / 0.22 / 5,200,000,000 / 2026-01-01 / a, b."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return "–" if x != x else f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.6g}"
    if isinstance(x, dt.date):
        return x.isoformat()
    if isinstance(x, Mapping):
        return ", ".join(f"{k} {number(v)}" for k, v in x.items())
    if isinstance(x, list | tuple):
        return ", ".join(number(v) for v in x)
    return str(x)


def whole(x: Any) -> str:
    """A count of firms: 19,811."""
    return f"{x:,.0f}" if isinstance(x, int | float) and x == x else "–"


def percent(x: Any) -> str:
    """A share as a whole percent that reads 0% or 100% only when it is exactly 0 or 1 ("<1%",
    ">99%" in between: 1 run in 200 is not "0%"); "–" when there is none."""
    return "–" if not isinstance(x, int | float) or x != x else share_text(x)


def embed(name: str, data: bytes, caption: str = "") -> str:
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    size = ""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        size = f' width="{w}" height="{h}"'
    cap = f"<figcaption>{esc(caption or name)}</figcaption>"
    return f'<figure><img src="{uri}" alt="{esc(name)}"{size}>{cap}</figure>'


def table(head: Sequence[Any], rows: Sequence[Any], num: Sequence[int] = ()) -> str:
    """A table; a row is a list of cells, each a plain value (escaped) or (html, class), or a
    whole `<tr>` built here. Columns in `num` are right-aligned."""
    def cell(k: int, c: Any, tag: str = "td") -> str:
        body, cls = c if isinstance(c, tuple) else (esc(c), "")
        cls = " ".join(x for x in (cls, "num" if k in num else "") if x)
        return f'<{tag} class="{cls}">{body}</{tag}>' if cls else f"<{tag}>{body}</{tag}>"

    def row(r: Any) -> str:
        return r if isinstance(r, str) else "<tr>" + "".join(map(cell, range(len(r)), r)) + "</tr>"

    thead = "".join(cell(k, h, "th") for k, h in enumerate(head))
    return (f'<div class="scroll"><table><thead><tr>{thead}</tr></thead><tbody>'
            f"{''.join(row(r) for r in rows)}</tbody></table></div>")


def group_row(title: str, note: str, width: int) -> str:
    small = f"<small>{esc(note)}</small>" if note else ""
    return f'<tr class="group"><th colspan="{width}">{esc(title)}{small}</th></tr>'


def section(title: str, *parts: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{''.join(parts)}</section>"


def meta_list(pairs: Sequence[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs if v not in (None, ""))
    return f'<dl class="meta">{items}</dl>'


def stat_grid(pairs: Sequence[tuple[str, str, str]]) -> str:
    return '<div class="stats">' + "".join(
        f'<div class="stat"><b>{esc(v)}</b><span>{esc(k)}</span><span>{esc(s)}</span></div>'
        for k, v, s in pairs) + "</div>"


def page(title: str, subtitle: str, parts: Sequence[str], files: Sequence[str]) -> str:
    made = ", ".join(f"<code>{esc(f)}</code>" for f in files)
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><main>"
            f"<h1>{esc(title)}</h1><p class=\"sub\">{esc(subtitle)}</p>{''.join(parts)}"
            f"<footer><p>Written by <code>sim</code>; the files beside this page: {made}."
            f"</p></footer></main><script>{SCRIPT}</script></body></html>\n")


def target_text(t: Mapping[str, Any]) -> str:
    return (f"{number(t.get('firms'))} firms at ≥ {t.get('level')} ({t.get('count')}) "
            f"by {t.get('deadline')}")


def judgement(p: Any, lo: Any = None, hi: Any = None) -> tuple[str, str]:
    """The verdict box's class and headline word from P(met)'s 95% interval [lo, hi], not its
    point estimate `p`, so a headline claims no more than the runs support: "Reached" when
    lo >= 0.9, "Not reached" when hi <= 0.1, else "Likely" (lo >= 0.5), "Unlikely"
    (hi <= 0.5) or "Uncertain". A missing bound is taken as `p` (the mean field's [p, p])."""
    if not isinstance(p, int | float) or p != p:
        return "", "No answer"
    lo = lo if isinstance(lo, int | float) and lo == lo else p
    hi = hi if isinstance(hi, int | float) and hi == hi else p
    if lo >= 0.9:
        return "met", "Reached"
    if hi <= 0.1:
        return "miss", "Not reached"
    return "partial", "Likely" if lo >= 0.5 else "Unlikely" if hi <= 0.5 else "Uncertain"


# ---------------------------------------------------------------------------------------------
# The scenario's key assumptions, with the comments its file puts beside them


def read_text(path: str | Path | None) -> str | None:
    """A file's text, or None when there is none to read (e.g. "<scenario>")."""
    try:
        return Path(str(path)).read_text(encoding="utf-8") if path else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*(\"[^\"]*\"|[A-Za-z0-9_.-]+)\s*=\s*(.*)$")


def _split_comment(rest: str) -> tuple[str, str]:
    quote = ""
    for i, ch in enumerate(rest):
        if quote:
            quote = "" if ch == quote and rest[i - 1] != "\\" else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return rest[:i].strip(), rest[i + 1:].strip()
    return rest.strip(), ""


def source_notes(text: str) -> dict[str, tuple[str, str]]:
    """Dotted key (arrays of tables by index) -> (value as written, its comment): the comment
    after the key on its line and the `#   ` lines right below it. A table header's comment
    is kept under the table's key."""
    notes: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    counts: dict[str, int] = {}
    prefix, last = "", None
    for line in text.splitlines():
        stripped = line.strip()
        if last is not None and stripped.startswith("#   "):
            notes[last].append(stripped[1:].strip())
            continue
        last = None
        if (head := _HEADER.match(line)) and not _KEY.match(line):
            name = head.group(2).replace('"', "")
            if head.group(1) == "[[":
                counts[name] = counts.get(name, -1) + 1
                name = f"{name}.{counts[name]}"
            prefix, last = name, name
            notes[name] = [head.group(3)[1:].strip()] if head.group(3) else []
        elif (kv := _KEY.match(line)) and not stripped.startswith("#"):
            key = ".".join(p for p in (prefix, kv.group(1).strip('"')) if p)
            values[key], comment = _split_comment(kv.group(2))
            notes[key], last = [comment] if comment else [], key
    return {k: (values.get(k, ""), " ".join(x for x in v if x)) for k, v in notes.items()}


def note_for(notes: Mapping[str, tuple[str, str]], key: str) -> str:
    """The comment on `key`, else on the nearest table or inline table holding it (the
    comment of `multiplier = { line = 1.25 }` speaks for `multiplier.line`)."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        if note := notes.get(".".join(parts[:n]), ("", ""))[1]:
            return note
    return ""


def lookup(raw: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted key (list entries by index), None when there is none."""
    node: Any = raw
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return None
    return node


def _as_written(value_text: str) -> Any:
    try:
        return tomllib.loads(f"v = {value_text}")["v"]
    except (tomllib.TOMLDecodeError, KeyError):
        return None


def _assumption_groups(raw: Mapping[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(title, table key, dotted keys) of the assumptions worth showing, in file order."""
    pop = raw.get("population", {}) or {}
    groups = [("target", "target", [f"target.{k}" for k in ("firms", "level", "deadline",
                                                            "count")]),
              ("population", "population", [f"population.{k}" for k in
                                            ("firms", "peer_weight", "in_flight", "entry",
                                             "exit", "entry_device")])]
    for i, seg in enumerate(pop.get("segment", []) or []):
        groups.append((f"segment {seg.get('name', i)}", f"population.segment.{i}",
                       [f"population.segment.{i}.{k}" for k in ("share", "propensity")]))
    for i, reg in enumerate(pop.get("region", []) or []):
        groups.append((f"region {reg.get('name', i)}", f"population.region.{i}",
                       [f"population.region.{i}.{k}" for k in ("share", "multiplier",
                                                               "quota")]))
    if pop.get("quotas"):
        groups.append(("quota reviews", "population.quotas",
                       [f"population.quotas.{k}" for k in ("push", "every")]))
    for lv in LEVELS:
        if lv in (raw.get("levels") or {}):
            groups.append((f"level {lv}", f"levels.{lv}", [
                f"levels.{lv}.{k}" for k in ("innovation", "imitation", "eligible", "success",
                                             "implementation")]))
    for name in raw.get("resources") or {}:
        groups.append((f"resource {name}", f"resources.{name}",
                       [f"resources.{name}.{k}" for k in ("capacity", "growth")]))
    for kind in ("policy", "shock"):
        for i, item in enumerate(raw.get(kind, []) or []):
            groups.append((f"{kind} {item.get('name', i)}", f"{kind}.{i}",
                           [f"{kind}.{i}.{k}" for k in item if k != "name"]))
    return groups


def assumptions(raw: Mapping[str, Any], source_text: str | None, source: str = "",
                varied: Sequence[str] = ()) -> str:
    """The key assumptions as run, each with the source its scenario file cites beside it
    (an empty column when the file could not be read); rows of `varied` keys are marked."""
    notes = source_notes(source_text) if source_text else {}
    rows: list[Any] = []
    for title, table_key, keys in _assumption_groups(raw):
        present = [k for k in keys if lookup(raw, k) is not None]
        if present:
            rows.append(group_row(title, notes.get(table_key, ("", ""))[1], 3))
        for key in present:
            value = lookup(raw, key)
            written, note = notes.get(key, ("", ""))
            was = _as_written(written) if written else None
            if was is not None and was != value:
                note = f"[this run: {number(value)}; the file has {number(was)}] {note}"
            swept = any(v == key or v.startswith(f"{key}.") for v in varied)
            mark = ("<tr class=\"set\">", "<br><small>varied</small>") if swept else ("<tr>", "")
            rows.append(f"{mark[0]}<td><code>{esc(key)}</code>{mark[1]}</td>"
                        f"<td>{esc(number(value))}</td><td class=\"src\">{esc(note)}</td></tr>")
    where = (f"Sources: the comment beside each key in <code>{esc(source)}</code>."
             if source_text else "Sources: the scenario file was not readable, so the "
             "comments that cite the sources are not shown.")
    return section("Key assumptions and their sources",
                   f'<p class="note">The scenario as run (keys as <code>--set</code> takes them). '
                   f"{where}</p>", table(["key", "value", "source (comment in the file)"], rows))
