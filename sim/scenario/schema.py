"""Every scenario key declared once, as data: dotted path, type, allowed range or choices,
default, unit and meaning.

The key reference (`sim keys`, docs/scenario-keys.md) and the JSON Schema for editors
(docs/scenario.schema.json) are generated from `KEYS`; tests/test_schema.py checks that the
validator reads exactly these keys with these ranges, so the three cannot drift apart. Rules
that relate several keys (shares summing to 1, dates in order) are in `RULES` and in code.

Paths: `<level>` is one of LEVELS, `<resource>` a name defined under [resources], `<key>` a
dotted scenario key, and `[]` an entry of an array of tables (`--set` names it by index or by
its `name`: `policy.0.end`, `population.segment.large.share`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sim.scenario.types import (
    COUNTS,
    DESIGNS,
    FIRST_DATE,
    LAST_DATE,
    LEVELS,
    MAX_FIRMS,
    MAX_HORIZON_YEARS,
    NAME_PATTERN,
    TAU_STEP_DAYS,
)

KINDS = {
    "text": "text",
    "integer": "whole number",
    "number": "number",
    "date": "date",
    "table": "table",
    "tables": "array of tables",
    "levels": "table per level",
    "number or levels": "number, or table per level",
    "list": "list of text",
    "range": "[low, high]",
}
"""Each kind of value, as the reference names it."""

PLACEHOLDERS = {"<level>": "a level", "<resource>": "a resource's name",
                "<key>": "a dotted scenario key"}


@dataclass(frozen=True)
class Key:
    """One scenario key. `default` None with `required` False means "absent: see note"."""

    path: str
    kind: str
    meaning: str
    required: bool = False
    default: Any = None
    default_note: str = ""  # the default in words, where it is not a plain value
    lo: float | None = None  # inclusive bounds of a number (per entry for "levels")
    hi: float | None = None
    lo_open: bool = False  # lo itself is excluded
    choices: tuple[str, ...] = ()
    unit: str = ""
    pattern: str = ""  # a regular expression the text must match in full

    @property
    def allowed(self) -> str:
        """The allowed values in words, as the checker's messages state them."""
        if self.choices:
            return " | ".join(c or '""' for c in self.choices)
        if self.kind == "date":
            return f"{FIRST_DATE} to {LAST_DATE}"
        if self.pattern:
            return "1-64 letters, digits, - or _"
        if self.lo is None and self.hi is None:
            return ""
        return f"{'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}]"

    @property
    def default_text(self) -> str:
        if self.required:
            return "required"
        if self.default_note:
            return self.default_note
        if self.default is None:
            return ""
        if isinstance(self.default, str):
            return json.dumps(self.default)
        if isinstance(self.default, list):
            return "[]"
        return f"{_num(self.default)}" + (" per level" if "levels" in self.kind else "")


def _num(x: float | None) -> str:
    if x is None:
        return ""
    if float(x).is_integer() and abs(x) >= 1e4:
        return f"{int(x):_}"
    return f"{x:g}"


K = Key
_LEVELS = " | ".join(LEVELS)
_YEAR, _MONTHS = "per year", "months"

KEYS: tuple[Key, ...] = (
    # top level ---------------------------------------------------------------------------
    K("name", "text", "names the scenario and its results folder (results/<name>/)",
      required=True, pattern=NAME_PATTERN.pattern),
    K("description", "text", "one line on what the scenario represents", default=""),
    K("start", "date", "first day simulated", required=True),
    K("end", "date", f"last day simulated: after start, at most {MAX_HORIZON_YEARS} years "
      "after it", required=True),
    K("replications", "integer", "independent runs of the stochastic engines", default=100,
      lo=1, hi=1_000_000, unit="runs"),
    K("seed", "integer", "root of every run's random numbers (same seed, same results)",
      default=0, lo=0, hi=2**63 - 1),
    # target ------------------------------------------------------------------------------
    K("target", "table", "what counts as meeting the plan", required=True),
    K("target.firms", "integer", "firms to count by the deadline: at most population.firms",
      required=True, lo=1, hi=MAX_FIRMS, unit="firms"),
    K("target.level", "text", "the level counted: firms at it or above", required=True,
      choices=LEVELS),
    K("target.deadline", "date", "the day the count is taken: between start and end",
      required=True),
    K("target.count", "text", "the reading: new = reached the level during the plan (an "
      "entrant at device counts as new at device); stock = all at or above it at the "
      "deadline; upgraded = completed a project at or above it during the plan",
      default="new", choices=COUNTS),
    # population --------------------------------------------------------------------------
    K("population", "table", "the firms simulated", required=True),
    K("population.firms", "integer", "number of firms simulated", required=True, lo=1,
      hi=MAX_FIRMS, unit="firms"),
    K("population.peer_weight", "number", "weight of a firm's own segment in the peer "
      "signal (the rest is the whole population)", default=0.0, lo=0, hi=1),
    K("population.in_flight", "levels", "share of all firms with a project to that level "
      "under way at the start: at most the share one level below", default=0.0, lo=0, hi=1,
      unit="share of all firms"),
    K("population.segment", "tables", "groups of exchangeable firms; shares sum to 1",
      default_note="one segment \"all\""),
    K("population.segment[].name", "text", "the segment's name, unique (policies name it)",
      required=True),
    K("population.segment[].share", "number", "the segment's share of all firms",
      required=True, lo=0, hi=1, unit="share"),
    K("population.segment[].propensity", "number or levels", "multiplier of the adoption "
      "hazard of the segment's firms, one number or per level", default=1.0, lo=0, hi=1e6),
    K("population.segment[].initial", "levels", "share of the segment at EXACTLY each level "
      "at the start; sums to at most 1 (the rest are at no level)", default=0.0, lo=0, hi=1,
      unit="share of the segment"),
    K("population.region", "tables", "groups of provinces; every segment is split across them "
      "by share; shares sum to 1", default_note="none: one region, \"national\""),
    K("population.region[].name", "text", "the region's name, unique, not \"national\" "
      "(policies name it)", required=True),
    K("population.region[].share", "number", "the region's share of the firms (of every "
      "segment)", required=True, lo=0, hi=1, unit="share"),
    K("population.region[].multiplier", "number or levels", "multiplier of the adoption "
      "hazard of the region's firms (on the segment's propensity), one number or per level",
      default=1.0, lo=0, hi=1e6),
    K("population.region[].quota", "number", "share of the national target the region is "
      "asked to deliver; it pushes only with [population.quotas]",
      default_note="none: no quota", lo=0, hi=1, lo_open=True, unit="share of target.firms"),
    K("population.quotas", "table", "how quotas push: at each review a region that lags its "
      "quota (quota x target.firms x elapsed share of the plan) is pushed until the next",
      default_note="none: quotas are only reported"),
    K("population.quotas.push", "number", "multiplier of the hazards of the levels up to "
      "target.level in a region lagging its quota", default=1.0, lo=1, hi=1e3),
    K("population.quotas.every", "integer", "time between reviews of the regions against "
      "their quotas", default=3, lo=1, hi=24, unit=_MONTHS),
    K("population.entry", "number", "entrants per year, as a share of the firms at the start",
      default=0.0, lo=0, hi=1, unit="share of the firms per year"),
    K("population.exit", "number", "exit hazard per year of every firm, whatever it is "
      "doing (a project under way is abandoned)",
      default=0.0, lo=0, hi=1, unit=_YEAR),
    K("population.entry_device", "number", "share of entrants that arrive at device level "
      "(the rest at no level)", default=0.0, lo=0, hi=1, unit="share of entrants"),
    # levels ------------------------------------------------------------------------------
    K("levels", "table", f"the four levels, climbed in order: {_LEVELS}", default_note="none"),
    K("levels.<level>", "table", "the project that takes a firm to this level from the one "
      "below", default_note="left out: never adopted"),
    K("levels.<level>.innovation", "number", "Bass p: the external push to start a project",
      default=0.0, lo=0, hi=1e3, unit=_YEAR),
    K("levels.<level>.imitation", "number", "Bass q: the peer effect of firms already at or "
      "above the level", default=0.0, lo=0, hi=1e3, unit=_YEAR),
    K("levels.<level>.eligible", "number", "share of all firms that can ever reach the level: "
      "at most the level below's, at least the share already there",
      default_note="the level below's (device: 1)", lo=0, hi=1, unit="share of all firms"),
    K("levels.<level>.implementation", "table", "how long a project takes: lognormal",
      default_note="instantaneous"),
    K("levels.<level>.implementation.median", "number", "median duration of a project",
      default=0.0, lo=0, hi=1200, unit=_MONTHS),
    K("levels.<level>.implementation.sigma", "number", "log-scale spread of the duration",
      default=0.0, lo=0, hi=5),
    K("levels.<level>.success", "number", "probability that a finished project succeeds",
      default=1.0, lo=0, hi=1, unit="probability"),
    K("levels.<level>.retry", "number", "wait after a failed project before the firm may try "
      "again", default=12.0, lo=0, hi=1200, unit=_MONTHS),
    K("levels.<level>.needs", "table", "resource units a project holds while it runs",
      default_note="none"),
    K("levels.<level>.needs.<resource>", "integer", "units of that resource held per project",
      default=0, lo=0, hi=1e9, unit="units"),
    # resources ---------------------------------------------------------------------------
    K("resources", "table", "pools of capacity that running projects hold",
      default_note="none"),
    K("resources.<resource>", "table", "one pool (e.g. integrators, compute)"),
    K("resources.<resource>.capacity", "integer", "units available at the start",
      required=True, lo=0, hi=MAX_FIRMS, unit="concurrent projects"),
    K("resources.<resource>.growth", "number", "growth of the capacity, compounding",
      default=0.0, lo=-0.99, hi=10, unit=_YEAR),
    # policies ----------------------------------------------------------------------------
    K("policy", "tables", "dated interventions multiplying adoption hazards, optionally with "
      "a budget", default_note="none"),
    K("policy[].name", "text", "the policy's name", default_note="policy<index>"),
    K("policy[].start", "date", "first day in force", required=True),
    K("policy[].end", "date", "last day in force: not before its start", required=True),
    K("policy[].multiplier", "levels", "multiplier of the decision hazard while in force",
      default=1.0, lo=0, hi=1e3),
    K("policy[].segments", "list", "the segments it applies to",
      default_note="all segments"),
    K("policy[].regions", "list", "the regions it applies to (names under "
      "[[population.region]])", default_note="all regions"),
    K("policy[].budget", "number", "subsidy budget; the policy ends when it is spent",
      default_note="unlimited", lo=0, hi=1e15, unit="yuan"),
    K("policy[].cost", "levels", "subsidy paid per project started, drawn from the budget",
      default=0.0, lo=0, hi=1e12, unit="yuan per project"),
    # shocks ------------------------------------------------------------------------------
    K("shock", "tables", "dated changes to a resource's capacity or a level's rates",
      default_note="none"),
    K("shock[].name", "text", "the shock's name", default_note="shock<index>"),
    K("shock[].at", "date", "day the shock starts", required=True),
    K("shock[].end", "date", "day after which it is lifted: not before `at`",
      default_note="never lifted"),
    K("shock[].resource", "text", "the resource it hits (defined under [resources])",
      default_note="none"),
    K("shock[].capacity_factor", "number", "multiplier of the resource's capacity",
      default=1.0, lo=0, hi=1e3),
    K("shock[].level", "text", "the level whose rates it changes", default="",
      choices=("", *LEVELS)),
    K("shock[].innovation_factor", "number", "multiplier of the level's innovation",
      default=1.0, lo=0, hi=1e3),
    K("shock[].imitation_factor", "number", "multiplier of the level's imitation",
      default=1.0, lo=0, hi=1e3),
    K("shock[].success_factor", "number", "multiplier of the level's success",
      default=1.0, lo=0, hi=1e3),
    # sweep -------------------------------------------------------------------------------
    K("sweep", "table", "defaults of `sim sweep` (and of `sim solve`'s replications)",
      default_note="none"),
    K("sweep.design", "text", "the sampling design", default="lhs", choices=DESIGNS),
    K("sweep.samples", "integer", "points of the design", default=64, lo=1, hi=10**7,
      unit="points"),
    K("sweep.replications", "integer", "runs per point", default=50, lo=1, hi=10**6,
      unit="runs"),
    K("sweep.vary", "table", "the keys varied and their ranges", default_note="none"),
    K("sweep.vary.<key>", "range", "[low, high] of a numeric key of this scenario"),
    K("sweep.log", "list", "varied keys sampled on a log scale", default=[]),
    # engine ------------------------------------------------------------------------------
    K("engine", "table", "engine settings", default_note="none"),
    K("engine.tau_step", "number", "step of the fast engine (--engine tau); shorter where "
      "projects that hold resources or retry waits are short (docs/model.md)",
      default=TAU_STEP_DAYS, lo=1, hi=92, unit="days"),
)

RULES: tuple[str, ...] = (
    f"`end` is after `start`, at most {MAX_HORIZON_YEARS} years later; `target.deadline` lies "
    "between them.",
    "`target.firms` is at most `population.firms`.",
    "Segment shares sum to 1; a segment's `initial` shares sum to at most 1.",
    "Region shares sum to 1 (no regions: one national region); region names are unique and "
    "not `national`; `policy[].regions` names regions and needs some; `[population.quotas]` "
    "needs a region with a `quota` (a quota without it is only reported). Quotas need not "
    "sum to 1.",
    "`levels.<level>.eligible` never exceeds the level below's, and is at least the share of "
    "firms already at or above the level.",
    "`population.in_flight.<level>` is at most the share of firms one level below at the "
    "start.",
    "Segment names are unique; `policy[].segments` names segments; `shock[].resource` and "
    "`levels.<level>.needs` name resources defined under [resources].",
    "A policy's `budget` needs a `cost`; a shock needs a `resource` or a `level`.",
    "`sweep.vary` keys are numeric keys of the scenario, with low <= high.",
)
"""Rules relating several keys: checked in code (sim/scenario/validation.py, tables.py)."""


def keys(prefix: str = "") -> Iterator[Key]:
    """The keys at or under `prefix`, in declaration order. The prefix may name entries as
    `--set` does (`levels.line`, `policy.0`, `population.segment.large`); its last part may be
    the start of a key (`levels.line.imi`)."""
    want = _parts(prefix)
    for key in KEYS:
        have = _parts(key.path)
        if _consumed(want, have) is not None or (  # an entry of a table per level
                "levels" in key.kind and len(want) > 1 and want[-1] in LEVELS
                and _consumed(want[:-1], have) == len(have)):
            yield key


def _parts(path: str) -> list[str]:
    return [p for p in path.replace("[]", ".[]").split(".") if p] if path else []


def _consumed(want: list[str], have: list[str]) -> int | None:
    """How many parts of `have` (a declared path) the prefix `want` (as a user types it)
    covers; None when it does not lead to `have`."""
    i = j = 0
    while i < len(want):
        if j >= len(have):
            return None
        w, h, last = want[i], have[j], i == len(want) - 1
        if h == "<key>":  # a dotted key: the rest of the prefix
            return j + 1
        if h == "[]":  # an entry, named by index or name, or not named at all
            j += 1
            if w == "[]" or w.isdigit() or not _leads(w, have[:j], last):
                i += 1
            continue
        if not (w == h or (last and h.startswith(w))
                or (h == "<level>" and any(lv == w or (last and lv.startswith(w))
                                           for lv in LEVELS))
                or h == "<resource>"):
            return None
        i, j = i + 1, j + 1
    return j


def _leads(word: str, entry: list[str], last: bool) -> bool:
    """True when `word`, after the array entry `entry`, is (the start of) one of its keys."""
    n = len(entry)
    children = {p[n] for k in KEYS if len(p := _parts(k.path)) > n and p[:n] == entry}
    return any(c == word or (last and c.startswith(word)) for c in children)


def json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the scenario file for editors: TOML dates are strings
    of format "date", as TOML-aware editors present them."""
    root: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sim scenario",
        "description": "A scenario of sim (docs/scenario-keys.md). Generated from "
                       "sim/scenario/schema.py by docs/make_keys.py: do not edit.",
        "type": "object",
        "properties": {},
        "additionalProperties": False,
    }
    for key in KEYS:
        parent, last = _node_for(root, _parts(key.path))
        node = _value_schema(key)
        if last == "<level>":
            for level in LEVELS:
                parent.setdefault("properties", {})[level] = node
            parent["additionalProperties"] = False
        elif last.startswith("<"):
            parent["additionalProperties"] = node
        else:
            parent.setdefault("properties", {})[last] = node
        if key.required and not last.startswith("<"):
            parent.setdefault("required", []).append(last)
    return root


def _node_for(root: dict[str, Any], parts: list[str]) -> tuple[dict[str, Any], str]:
    """The object schema that holds the last part of `parts`, and that part."""
    node = root
    for part in parts[:-1]:
        if part == "[]":
            node = node["items"]
        elif part.startswith("<"):
            node = node["additionalProperties"] if part != "<level>" else \
                node["properties"][LEVELS[0]]
        else:
            node = node["properties"][part]
    return node, parts[-1]


def _value_schema(key: Key) -> dict[str, Any]:
    out: dict[str, Any] = {"description": key.meaning + (f" ({key.unit})" if key.unit else "")}
    number: dict[str, Any] = {"type": "integer" if key.kind == "integer" else "number"}
    if key.lo is not None:
        number["exclusiveMinimum" if key.lo_open else "minimum"] = _plain(key.lo)
    if key.hi is not None:
        number["maximum"] = _plain(key.hi)
    default = {} if key.default is None or key.required else {"default": key.default}
    per_level = {"type": "object", "properties": {lv: {**number, **default} for lv in LEVELS},
                 "additionalProperties": False}
    if key.kind == "text":
        out["type"] = "string"
        if key.choices:
            out["enum"] = list(key.choices)
        if key.pattern:
            out["pattern"] = key.pattern
    elif key.kind in ("integer", "number"):
        out.update(number)
    elif key.kind == "date":
        out.update(type="string", format="date")
    elif key.kind == "table":
        out.update(type="object", properties={}, additionalProperties=False)
    elif key.kind == "tables":
        out.update(type="array", items={"type": "object", "properties": {},
                                         "additionalProperties": False})
    elif key.kind == "levels":
        return {**out, **per_level}
    elif key.kind == "number or levels":
        out["oneOf"] = [number, per_level]
    elif key.kind == "list":
        out.update(type="array", items={"type": "string"})
    elif key.kind == "range":
        out.update(type="array", items={"type": "number"}, minItems=2, maxItems=2)
    else:
        raise ValueError(f"{key.path}: unknown kind {key.kind!r}")
    return {**out, **default}


def _plain(x: float) -> float | int:
    """A whole bound as an integer, so that the JSON reads 1000, not 1000.0."""
    return int(x) if float(x).is_integer() else x


def json_text() -> str:
    """docs/scenario.schema.json's content."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


SECTIONS = (("", "Top level"), ("target", "[target]"), ("population", "[population]"),
            ("levels", "[levels.<level>]"), ("resources", "[resources.<resource>]"),
            ("policy", "[[policy]]"), ("shock", "[[shock]]"), ("sweep", "[sweep]"),
            ("engine", "[engine]"))


def markdown() -> str:
    """docs/scenario-keys.md's content: one table per section, then the cross-key rules."""
    out = [
        "# Scenario keys",
        "",
        "<!-- Generated from sim/scenario/schema.py by `python docs/make_keys.py`: do not "
        "edit. -->",
        "",
        "Every key a scenario file may hold. `sim keys [PREFIX]` prints the same table; "
        "[`scenario.schema.json`](scenario.schema.json) gives editors the same as a JSON "
        "Schema. In paths, `<level>` is one of " + ", ".join(f"`{lv}`" for lv in LEVELS)
        + ", `<resource>` a name defined under `[resources]`, `<key>` a dotted key, and `[]` "
        "an entry of an array of tables, which `--set` names by index or name "
        "(`policy.0.end`, `population.segment.large.share`). Rates are per year, durations "
        "in months, shares in [0, 1]. A minimal file that runs is "
        "[`scenarios/template.toml`](../scenarios/template.toml).",
        "",
        "Editors that check TOML against a JSON Schema (Taplo, the Even Better TOML "
        "extension) use it when a scenario's first line is `#:schema <path to "
        "docs/scenario.schema.json>`, as in the template. The schema checks each key's type "
        "and range; the rules across keys at the end are checked by `sim check` only.",
    ]
    for top, title in SECTIONS:
        if top:
            rows = [k for k in KEYS if _parts(k.path)[0] == top]
        else:
            rows = [k for k in KEYS if "." not in k.path and k.kind not in ("table", "tables")]
        out += ["", f"## {title}", "",
                "| key | type | allowed | default | unit | meaning |",
                "|---|---|---|---|---|---|"]
        out += [f"| `{k.path}` | {KINDS[k.kind]} | {_cell(k.allowed)} | {_cell(k.default_text)} "
                f"| {k.unit} | {_cell(k.meaning)} |" for k in rows]
    out += ["", "## Rules across keys", "", *(f"- {rule}" for rule in RULES)]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
