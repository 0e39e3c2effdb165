"""What a new user copies and reads: scenarios/template.toml, the README's scenario snippet,
the scenario.toml a run writes (the source's comments kept, overrides written in), and
`sim plot` on every kind of results folder."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib

import pytest
from conftest import ROOT, SCENARIOS, base_raw

from sim.cli.main import main
from sim.scenario import dumps, load, validate
from sim.scenario.tomlio import CHANGED, dumps_as_run
from sim.store.files import scenario_sha256, scenario_text

TEMPLATE = ROOT / "scenarios" / "template.toml"
BASELINE = ROOT / "scenarios" / "baseline.toml"


# ---------------------------------------------------------------------------------------------
# The template


def test_template_explains_every_line_and_calls_its_numbers_assumptions():
    for n, line in enumerate(TEMPLATE.read_text(encoding="utf-8").splitlines(), 1):
        code, _, comment = line.partition("#")
        if not code.strip():
            continue
        assert comment.strip(), f"template.toml line {n} has no comment: {line!r}"
        value = code.partition("=")[2]
        if re.search(r"\d", value):
            assert "assumption" in comment, f"template.toml line {n}: say 'assumption'"


def test_template_checks_and_runs(tmp_path, capsys):
    assert main(["check", str(TEMPLATE)]) == 0
    assert "template.toml: ok (template: 52,000 firms" in capsys.readouterr().out
    out = tmp_path / "template"
    assert main(["run", str(TEMPLATE), "--engine", "tau", "--replications", "2", "--jobs", "1",
                 "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("target 5,000 firms at >= line (new)")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["replications"] == 2
    written = (out / "scenario.toml").read_text(encoding="utf-8")
    assert written == TEMPLATE.read_text(encoding="utf-8").replace(
        "replications = 20                # independent",
        "replications = 2                 # changed for this run (the file had 20); independent")


# ---------------------------------------------------------------------------------------------
# The README's snippet


def readme_snippet() -> str:
    """The ```toml block under "## The scenario format in brief" in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## The scenario format in brief", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```toml\n(.*?)```", section, flags=re.S)
    assert found, "README.md: no ```toml block under 'The scenario format in brief'"
    return found.group(1)


def test_readme_scenario_snippet_passes_sim_check(tmp_path, capsys):
    path = tmp_path / "baseline.toml"
    path.write_text(readme_snippet(), encoding="utf-8")
    status = main(["check", str(path)])
    assert status == 0, capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# scenario.toml as run


def test_scenario_toml_keeps_the_source_comments_and_number_forms():
    sc = load(BASELINE)
    source = BASELINE.read_text(encoding="utf-8")
    assert scenario_text(sc) == source  # no override: the file as it is
    assert "firms       = 520_000" in source


OVERRIDES = ["levels.line.imitation=0.9", "population.firms=600_000", "replications=7",
             "population.segment.large.propensity.line=5", "engine.tau_step=5",
             "policy.0.segments=['large']"]


def test_overrides_are_written_into_the_source_and_read_back_the_same():
    sc = load(BASELINE, OVERRIDES)
    text = scenario_text(sc)
    again = tomllib.loads(text)
    assert validate(again, source=sc.source) == sc
    assert again["population"]["firms"] == 600_000 and type(again["replications"]) is int
    assert type(again["target"]["firms"]) is int and type(again["seed"]) is int
    lines = text.splitlines()
    imitation = next(ln for ln in lines if ln.startswith("imitation      = 0.9 "))
    assert f"# {CHANGED} (the file had 0.60); assumption:" in imitation
    assert any(ln.startswith("replications = 7 ") and "(the file had 200)" in ln
               for ln in lines)
    assert any("added for this run" in ln for ln in lines if ln.startswith("segments"))
    # Everything else is the file as written, comment lines included.
    source = BASELINE.read_text(encoding="utf-8").splitlines()
    kept = [ln for ln in source if ln in set(lines)]
    assert len(kept) >= len(source) - len(OVERRIDES)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_shipped_scenario_takes_overrides_of_every_kind_in_place(path):
    """Numbers, text, dates, an entry of an inline table, a list, a new table: the file
    written reads back as the scenario run, and is the source file changed (not the
    canonical fallback, which has no comments)."""
    overrides = ["seed=11", "target.count='upgraded'", "end=2031-06-30",
                 "levels.device.implementation.median=7", "population.peer_weight=0.25",
                 "engine.tau_step=3"]
    raw = load(path).raw
    if "segment" in raw["population"]:
        overrides.append("population.segment.0.initial.device=0.01")
    segments = [seg["name"] for seg in raw["population"].get("segment", [])]
    if "policy" in raw and segments:  # (a list naming no segment is refused)
        overrides.append(f"policy.0.segments=[{segments[0]!r}]")
    sc = load(path, overrides)
    text = scenario_text(sc)
    assert validate(tomllib.loads(text), source=sc.source) == sc
    assert text.splitlines()[0] == path.read_text(encoding="utf-8").splitlines()[0]
    assert re.search(rf"^end\s*= 2031-06-30\s+# {CHANGED} \(the file had 20\d\d-\d\d-\d\d\)",
                     text, flags=re.M)
    # Every changed or added value is marked, except those that make a new [table].
    assert text.count(CHANGED) + text.count("added for this run") >= len(overrides) - 2


def test_scenario_hash_is_stable_for_the_same_file_and_overrides():
    one = scenario_sha256(load(BASELINE, OVERRIDES))
    assert one == scenario_sha256(load(BASELINE, OVERRIDES[::-1]))
    assert one != scenario_sha256(load(BASELINE, OVERRIDES[:-1]))
    text = scenario_text(load(BASELINE, OVERRIDES))
    assert one == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_scenario_toml_run_again_with_other_overrides_keeps_one_mark(tmp_path):
    first = tmp_path / "first.toml"
    first.write_text(scenario_text(load(BASELINE, ["levels.line.imitation=0.9"])),
                     encoding="utf-8")
    assert scenario_text(load(first)) == first.read_text(encoding="utf-8")
    text = scenario_text(load(first, ["levels.line.imitation=1.1"]))
    line = next(ln for ln in text.splitlines() if ln.startswith("imitation      = 1.1"))
    assert line.count(CHANGED) == 1 and "(the file had 0.9)" in line


def test_without_a_source_file_the_scenario_is_written_canonically(tmp_path):
    raw = base_raw()
    sc = validate(raw, source="<built in Python>")
    assert scenario_text(sc) == dumps(sc.raw)
    missing = validate(raw, source=str(tmp_path / "gone.toml"))
    assert scenario_text(missing) == dumps(raw)
    # A source whose text the layout-keeping writer cannot reproduce falls back as well.
    odd = tmp_path / "odd.toml"
    odd.write_text("not toml at all [", encoding="utf-8")
    assert dumps_as_run(raw, odd) == dumps(raw)


# ---------------------------------------------------------------------------------------------
# sim plot on a solve folder


def test_plot_redraws_a_solve_folder(tmp_path, write_scenario, capsys):
    path = write_scenario(base_raw())
    out = tmp_path / "solve"
    assert main(["solve", str(path), "--vary", "levels.line.imitation=0.1:3",
                 "--probability", "0.5", "--engine", "meanfield", "--out", str(out)]) == 0
    drawn = (out / "solve.png").read_bytes()
    (out / "solve.png").unlink()
    capsys.readouterr()
    assert main(["plot", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"redrew {out / 'solve.png'}"
    assert (out / "solve.png").read_bytes() == drawn  # the same figure, from solve.json


def test_plot_refuses_a_broken_solve_json(tmp_path, capsys):
    (tmp_path / "solve.json").write_text("{}", encoding="utf-8")
    assert main(["plot", str(tmp_path)]) == 2
    assert "not a solve.json written by sim solve" in capsys.readouterr().err


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Default results folders land in the test's folder, never in the checkout."""
    monkeypatch.chdir(tmp_path)
