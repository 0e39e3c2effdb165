"""The scenario-key schema (sim/scenario/schema.py) against the validator that enforces it,
the reference files generated from it, and `sim keys`.

The validator keeps its ranges in code; these tests record every key it reads (through a
recording `_Checker`) and compare them with the schema, so neither can change alone."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import subprocess
import sys
import tomllib
from typing import Any

import pytest
from conftest import ROOT, SCENARIOS, base_raw

from sim.cli.main import main
from sim.scenario import LEVELS, schema, validate
from sim.scenario import validation as validation_module
from sim.scenario.checker import _Checker


def _rich_raw() -> dict[str, Any]:
    """base_raw with every optional table present, so that the validator reads every key."""
    raw = copy.deepcopy(base_raw())
    raw["population"]["in_flight"] = {"device": 0.01}
    raw["shock"].append({"name": "slow", "at": dt.date(2027, 1, 1), "end": dt.date(2027, 6, 30),
                         "level": "line", "innovation_factor": 0.5, "imitation_factor": 0.5,
                         "success_factor": 0.9})
    raw["sweep"] = {"design": "lhs", "samples": 8, "replications": 2,
                    "vary": {"levels.line.imitation": [0.3, 0.7]},
                    "log": ["levels.line.imitation"]}
    raw["engine"] = {"tau_step": 5}
    raw["population"].update(
        region=[{"name": "east", "share": 0.6, "multiplier": {"line": 1.2}, "quota": 0.7},
                {"name": "west", "share": 0.4, "multiplier": 0.8}],
        quotas={"push": 1.5, "every": 3}, entry=0.02, exit=0.01, entry_device=0.3)
    raw["policy"][0]["regions"] = ["east"]
    return raw


SEGMENTS, REGIONS, RESOURCES = ("large", "sme"), ("east", "west"), ("integrators", "compute")


def _declared(where: str) -> str:
    """A key as the checker names it (`levels.line.needs.compute`, `policy[0].end`,
    `population.segment.large.share`) written as the schema declares it."""
    path = re.sub(r"\[\d+\]", "[]", where)
    path = re.sub(r"^population\.segment\.(\w+)", lambda m: "population.segment[]"
                  if m.group(1) in SEGMENTS else m.group(0), path)
    path = re.sub(r"^population\.region\.(\w+)", lambda m: "population.region[]"
                  if m.group(1) in REGIONS else m.group(0), path)
    path = re.sub(r"^levels\.(\w+)", lambda m: "levels.<level>" if m.group(1) in LEVELS
                  else m.group(0), path)
    path = re.sub(r"^resources\.(\w+)", "resources.<resource>", path)
    return re.sub(r"\.needs\.\w+$", ".needs.<resource>", path)


class Recorder(_Checker):
    """A _Checker that notes what it is asked: allowed keys per table, and each key's kind,
    range, default and choices."""

    def __init__(self, source: str):
        super().__init__(source)
        Recorder.last = self
        self.allowed: dict[str, set[str]] = {}
        self.read: dict[str, dict[str, Any]] = {}

    def _note(self, where: str, **facts: Any) -> None:
        known = self.read.setdefault(_declared(where), {})
        if "kind" in known:  # a per-level table read as one number keeps its kind
            facts.pop("kind", None)
        known.update(facts)

    def unknown(self, table, allowed, prefix):
        self.allowed[_declared(prefix)] = set(allowed)
        super().unknown(table, allowed, prefix)

    def number(self, table, key, prefix, default, **kw):
        where = f"{prefix}.{key}" if prefix else key
        self._note(where, default=default, required=default is None)
        return super().number(table, key, prefix, default, **kw)

    def check_number(self, value, where, default, *, lo, hi, lo_open=False, integer=False,
                     what=""):
        if not re.search(r"\.(" + "|".join(LEVELS) + r")$", where) or \
                _declared(where).startswith("levels.<level>.needs"):
            self._note(where, kind="integer" if integer else "number", lo=lo, hi=hi)
        return super().check_number(value, where, default, lo=lo, hi=hi, lo_open=lo_open,
                                    integer=integer, what=what)

    def string(self, table, key, prefix, default, *, choices=None):
        where = f"{prefix}.{key}" if prefix else key
        self._note(where, kind="text", default=default, required=default is None,
                   choices=tuple(choices or ()))
        return super().string(table, key, prefix, default, choices=choices)

    def date(self, table, key, prefix, *, required=True):
        self._note(f"{prefix}.{key}" if prefix else key, kind="date", required=required)
        return super().date(table, key, prefix, required=required)

    def table(self, parent, key, prefix, *, required=False):
        self._note(f"{prefix}.{key}" if prefix else key, kind="table", required=required)
        return super().table(parent, key, prefix, required=required)

    def per_level(self, value, where, default, *, lo, hi, scalar_ok):
        self._note(where, kind="number or levels" if scalar_ok else "levels", lo=lo, hi=hi,
                   default=default)
        return super().per_level(value, where, default, lo=lo, hi=hi, scalar_ok=scalar_ok)


@pytest.fixture(scope="module")
def recorded() -> Recorder:
    """What the validator reads of a scenario with every table."""
    patch = pytest.MonkeyPatch()
    patch.setattr(validation_module, "_Checker", Recorder)
    try:
        validate(_rich_raw(), source="rich.toml")
    finally:
        patch.undo()
    return Recorder.last


# Keys the validator reads straight from the dictionary, not through the checker's helpers.
READ_DIRECTLY = {"population.segment", "policy", "shock", "policy[].segments",
                 "policy[].regions", "sweep.vary.<key>", "sweep.log", "resources.<resource>"}


def _by_path() -> dict[str, schema.Key]:
    return {k.path: k for k in schema.KEYS}


def test_every_table_allows_exactly_the_schema_keys(recorded):
    """The allowed lists of the validator (TOP_KEYS, LEVEL_KEYS, each `unknown(...)`) are the
    schema's children of that table, and every table of the schema with named keys is one."""
    declared = _by_path()
    children: dict[str, set[str]] = {}
    for path in declared:
        parent, _, last = path.replace("[]", "").rpartition(".")
        parent = path[: len(path) - len(last) - 1] if parent else ""
        children.setdefault(parent, set()).add(last)
    assert recorded.allowed[""] == set(validation_module.TOP_KEYS)
    for table, allowed in recorded.allowed.items():
        if table.endswith((".in_flight", ".propensity", ".initial", ".multiplier", ".cost")):
            assert allowed == set(LEVELS), table  # a table per level: the kind says so
            assert "levels" in declared[table].kind, table
            continue
        want = {"<level>"} if table == "levels" else allowed
        assert children.get(table) == want, f"{table or 'top level'}: validator allows " \
            f"{sorted(allowed)}, schema declares {sorted(children.get(table, ()))}"
    named = {t for t, c in children.items() if not any(x.startswith("<") for x in c)}
    assert named <= set(recorded.allowed), f"not checked by the validator: " \
        f"{sorted(named - set(recorded.allowed))}"


def test_every_schema_key_is_read_by_the_validator_and_vice_versa(recorded):
    declared = set(_by_path())
    read = {p.removesuffix("[]") for p in (*recorded.read, *recorded.allowed) if p}
    assert read - declared == set(), "read by the validator, missing from the schema"
    assert declared - read - READ_DIRECTLY == set(), "in the schema, never read"


def test_kinds_ranges_defaults_and_choices_match_the_validator(recorded):
    declared = _by_path()
    for path, facts in recorded.read.items():
        key = declared[path]
        if "kind" in facts:
            assert key.kind == facts["kind"], path
        if "lo" in facts:
            assert (key.lo, key.hi) == (facts["lo"], facts["hi"]), path
        if "choices" in facts and facts["choices"]:
            assert key.choices == facts["choices"], path
        if facts.get("required"):
            assert key.required, f"{path}: the validator requires it"
        elif "default" in facts and key.default is not None and not key.default_note:
            assert key.default == facts["default"], path
            assert type(key.default) is type(facts["default"]) or key.kind == "integer", path
        if key.required:
            assert facts.get("required"), f"{path}: the schema says required, the validator " \
                                          "has a default"


def test_shipped_scenarios_satisfy_the_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    doc = schema.json_schema()
    jsonschema.Draft202012Validator.check_schema(doc)
    checker = jsonschema.Draft202012Validator(doc, format_checker=jsonschema.FormatChecker())
    for path in SCENARIOS:
        problems = [e.message for e in checker.iter_errors(_json(tomllib.loads(
            path.read_text(encoding="utf-8"))))]
        assert not problems, f"{path.name}: {problems}"
    assert not list(checker.iter_errors(_json(_rich_raw())))
    bad = _rich_raw()
    bad["levels"]["line"]["imitatoin"] = 0.5
    bad["target"]["count"] = "all"
    bad["population"]["segment"][0]["propensity"] = {"line": -1}
    assert len(list(checker.iter_errors(_json(bad)))) == 3


def _json(value: Any) -> Any:
    """A TOML value as an editor's JSON view of it: dates become ISO strings."""
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


def test_reference_files_are_generated_from_the_schema():
    """docs/scenario-keys.md and docs/scenario.schema.json are what docs/make_keys.py writes
    (run it after changing sim/scenario/schema.py)."""
    keys_md = (ROOT / "docs" / "scenario-keys.md").read_text(encoding="utf-8")
    assert keys_md == schema.markdown(), "run python docs/make_keys.py"
    text = (ROOT / "docs" / "scenario.schema.json").read_text(encoding="utf-8")
    assert text == schema.json_text(), "run python docs/make_keys.py"
    proc = subprocess.run([sys.executable, "docs/make_keys.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(text)["properties"]["population"]["properties"]["in_flight"]


def test_the_reference_names_every_key_and_the_new_ones():
    text = schema.markdown()
    assert all(f"`{k.path}`" in text for k in schema.KEYS)
    in_flight = _by_path()["population.in_flight"]
    assert in_flight.kind == "levels" and (in_flight.lo, in_flight.hi) == (0, 1)
    assert _by_path()["target.count"].choices == ("new", "stock", "upgraded")


@pytest.mark.parametrize("prefix, first, absent", [
    ("", "name", None),
    ("levels.line", "levels.<level>", "target.firms"),
    ("population.segment.large.sh", "population.segment[].share", "population.firms"),
    ("policy.0.end", "policy[].end", "policy[].start"),
    ("population.in_flight.line", "population.in_flight", "population.firms"),
])
def test_sim_keys_prints_the_keys_under_a_prefix(capsys, prefix, first, absent):
    assert main(["keys", *([prefix] if prefix else [])]) == 0
    lines = capsys.readouterr().out.splitlines()
    body = [ln.split()[0] for ln in lines[2:] if ln.strip()]
    assert body[0] == first
    if absent:
        assert absent not in body
    else:
        assert set(body) == {k.path for k in schema.KEYS}


def test_sim_keys_refuses_an_unknown_prefix(capsys):
    assert main(["keys", "levels.lien"]) == 2
    err = capsys.readouterr().err
    assert "levels.lien" in err and "levels" in err
