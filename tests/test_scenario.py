"""The gate from user input: every broken scenario is refused with one clear line per problem,
exit status 2, no traceback and nothing written; valid files round-trip."""

from __future__ import annotations

import copy
import datetime as dt
import math
import tomllib

import pytest
from conftest import SCENARIOS, base_raw, make

from sim.cli.main import main
from sim.scenario import ScenarioError, dumps, load, parse_value, set_key, validate


def _raw(**changes) -> dict:
    data = base_raw()
    for key, value in changes.items():
        set_key(data, key.replace("__", "."), value)
    return data


def _without(key: str) -> dict:
    data = base_raw()
    *path, last = key.split(".")
    node = data
    for part in path:
        node = node[part]
    del node[last]
    return data


# (id, file contents or raw dict, fragments every problem line must show collectively)
BROKEN = [
    ("empty", "", ["empty"]),
    ("not-toml", "name = \n[[[", ["not valid TOML"]),
    ("not-a-number", _raw(population__firms="many"), ["population.firms", "'many'"]),
    ("nan-rate", _raw(levels__line__innovation=math.nan), ["levels.line.innovation", "nan"]),
    ("infinite", _raw(levels__line__imitation=math.inf), ["levels.line.imitation", "inf"]),
    ("negative-rate", _raw(levels__device__imitation=-0.1), ["levels.device.imitation", "in [0, "]),
    ("share-above-one", _raw(levels__line__success=1.5), ["levels.line.success", "[0, 1]"]),
    ("unknown-key", _raw(levels__line__imitaton=0.3), ["levels.line.imitaton",
                                                        "did you mean 'imitation'"]),
    ("unknown-top", _raw(replicatons=3), ["replicatons", "did you mean 'replications'"]),
    ("reversed-dates", _raw(start=dt.date(2031, 1, 1)), ["end", "must be after start"]),
    ("unsafe-name", _raw(name="../x"), ["name", "'../x'", "letters, digits"]),
    ("absolute-name", _raw(name="/etc/passwd"), ["name", "letters, digits"]),
    ("segment-shares", _raw(population__segment__0__share=0.5), ["population.segment",
                                                                 "sum to 1"]),
    ("initial-above-one", _raw(population__segment__0__initial={"device": 0.8, "line": 0.5}),
     ["population.segment.large.initial", "at most 1"]),
    ("unknown-level", _raw(target__level="lines"), ["target.level", "did you mean 'line'"]),
    ("deadline-outside", _raw(target__deadline=dt.date(2035, 1, 1)), ["target.deadline"]),
    ("unknown-resource", _raw(levels__line__needs={"integrator": 1}),
     ["levels.line.needs.integrator", "did you mean 'integrators'"]),
    ("unknown-segment", _raw(policy__0__segments=["smes"]), ["policy[0].segments", "'smes'"]),
    ("shock-resource", _raw(shock__0__resource="gpu"), ["shock[0].resource", "'gpu'"]),
    ("datetime-not-date", _raw(start=dt.datetime(2026, 1, 1, 12, 0)), ["start", "TOML date"]),
    ("string-date", _raw(end="2030-12-31"), ["end", "TOML date"]),
    ("missing-target", _without("target"), ["target", "required"]),
    ("missing-firms", _without("population.firms"), ["population.firms", "required"]),
    ("eligible-rises", _raw(levels__factory__eligible=0.9), ["levels.factory.eligible"]),
    ("policy-reversed", _raw(policy__0__end=dt.date(2026, 1, 1)), ["policy[0].end"]),
    ("bool-as-number", _raw(seed=True), ["seed", "whole number"]),
    ("fraction-replications", _raw(replications=2.5), ["replications", "whole number"]),
    ("duplicate-segment", _raw(population__segment__1__name="large"),
     ["population.segment.large.name", "unique"]),
    ("target-too-big", _raw(target__firms=10**8), ["target.firms"]),
    ("huge-population", _raw(population__firms=10**12), ["population.firms"]),
    # The count is read at month ends: a deadline (or end) before the first one had none,
    # and `sim run` failed after simulating.
    ("deadline-first-month", _raw(target__deadline=dt.date(2026, 1, 20)),
     ["target.deadline", "first month end (2026-01-31)"]),
    ("end-first-month", _raw(end=dt.date(2026, 1, 20), target__deadline=dt.date(2026, 1, 20)),
     ["end", "first month end (2026-01-31)"]),
    # Spending is reported per policy name: two of one name lost one's spending.
    ("duplicate-policy", {**_raw(), "policy": [_raw()["policy"][0], _raw()["policy"][0]]},
     ["policy[1].name", "earlier policy"]),
    ("policy-reaches-nobody", _raw(policy__0__segments=[]),
     ["policy[0].segments", "at least one segment"]),
]


def _write(tmp_path, content) -> str:
    path = tmp_path / "broken.toml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(dumps(content), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize(("case", "content", "fragments"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_scenario_refused(tmp_path, monkeypatch, capsys, command, case, content,
                                 fragments):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, content)
    status = main([command, path])
    err = capsys.readouterr().err
    assert status == 2
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and all(ln.startswith(path) for ln in lines), err
    for fragment in fragments:
        assert fragment in err, f"{case}: {fragment!r} not in {err!r}"
    assert not (tmp_path / "results").exists()


def test_non_utf8_bytes_refused(tmp_path, capsys):
    path = tmp_path / "bytes.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not UTF-8" in err and "Traceback" not in err


def test_a_file_too_large_for_a_scenario_is_refused_unread(tmp_path, capsys):
    """`sim check /dev/zero` read until memory ran out (a MemoryError traceback); a file
    is now read up to 16 MiB."""
    path = tmp_path / "huge.toml"
    path.write_bytes(b"#" * (17 * 2**20))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{path}: more than 16 MiB: not a scenario file"]


def test_missing_file_refused(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_every_problem_reported_at_once():
    raw = _raw(levels__line__innovation=-1, levels__device__success=2, target__level="x")
    with pytest.raises(ScenarioError) as info:
        validate(raw, source="f.toml")
    keys = " ".join(info.value.problems)
    assert len(info.value.problems) == 3
    for key in ("levels.line.innovation", "levels.device.success", "target.level"):
        assert key in keys


@pytest.mark.parametrize(("option", "fragment"), [
    (["--set", "levels.line.imitation=abc def"], "not a TOML value"),
    (["--set", "levels.line.imitation"], "expected dotted.key=value"),
    (["--set", "levels.line.imitaton=0.3"], "did you mean 'imitation'"),
    (["--set", "population.segment.9.share=0.1"], "index 9"),
    (["--set", "levels.line.innovation=-3"], "levels.line.innovation"),
    (["--jobs", "0"], "--jobs"),
    (["--replications", "-5"], "--replications"),
    (["--engine", "warp"], "--engine"),
])
def test_bad_options_refused(tmp_path, monkeypatch, capsys, write_scenario, option, fragment):
    monkeypatch.chdir(tmp_path)
    path = write_scenario(base_raw())
    status = main(["run", str(path), *option])
    err = capsys.readouterr().err
    assert status == 2, err
    assert fragment in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_overrides_by_index_and_by_name(write_scenario):
    path = write_scenario(base_raw())
    sc = load(path, ["population.segment.large.propensity=3.0", "policy.0.multiplier.line=2",
                     "target.level=factory", "levels.line.imitation=0.9"])
    assert sc.segments[0].propensity == (3.0,) * 4
    assert sc.policies[0].multiplier[1] == 2.0
    assert sc.target.level == "factory"
    assert sc.levels[1].imitation == 0.9


def test_parse_value_uses_toml_syntax():
    assert parse_value("1_000") == 1000
    assert parse_value("2027-01-01") == dt.date(2027, 1, 1)
    assert parse_value("{ line = 1.5 }") == {"line": 1.5}
    assert parse_value("line") == "line"


def test_dumps_round_trips():
    raw = base_raw()
    assert tomllib.loads(dumps(raw)) == raw


def test_dates_and_months():
    sc = make()
    assert sc.years(sc.start) == 0
    assert sc.horizon == pytest.approx(1096 / 365.25)
    months = sc.month_ends()
    assert months[0] == dt.date(2026, 1, 31) and months[-1] == dt.date(2028, 12, 31)
    assert len(months) == 36
    assert sc.date_at(sc.deadline - 1e-9) == sc.target.deadline


def test_absent_level_is_never_adopted():
    raw = copy.deepcopy(base_raw())
    del raw["levels"]["ecosystem"]
    sc = validate(raw)
    assert sc.levels[3].innovation == 0 and sc.levels[3].imitation == 0


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenarios_validate_and_are_named_after_their_file(path):
    sc = load(path)
    assert sc.name == path.stem
