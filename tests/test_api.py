"""The Python API (sim/api/notebook.py, docs/api.md): `sim.run`, `sim.sweep` and `sim.solve`
on a path or a Scenario, `set` overrides as Python values, results as DataFrames."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, base_raw, make

import sim
from sim.api.notebook import run_folder, scenario_of


def documented_names() -> list[str]:
    """The names docs/api.md documents, one `### \\`sim.NAME\\`` heading each."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    return re.findall(r"^### `sim\.(\w+)`", text, flags=re.M)


def test_all_is_what_docs_api_documents():
    """SimPy's check: the public names and the reference cannot drift apart."""
    names = documented_names()
    assert len(names) == len(set(names)), "a name is documented twice"
    assert sorted(sim.__all__) == sorted(names)
    assert all(getattr(sim, name) is not None for name in sim.__all__)


def test_import_sim_loads_no_numerics():
    code = ("import sys, sim; print(sorted(m for m in ('numpy', 'pandas', 'scipy', "
            "'matplotlib') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def read_curves(folder) -> pd.DataFrame:
    return pd.read_csv(folder / "curves.csv", parse_dates=["date"])


def test_run_takes_a_path_or_a_scenario_alike(write_scenario):
    path = write_scenario(base_raw())
    by_path = sim.run(path, engine="tau", jobs=1)
    by_text = sim.run(str(path), engine="tau", jobs=1)
    by_scenario = sim.run(sim.load(path), engine="tau", jobs=1)
    assert isinstance(by_path, sim.RunOutcome)
    assert by_path.line == by_text.line == by_scenario.line
    assert len(by_path.results) == 4 and by_path.summary["engine"] == "tau"
    pd.testing.assert_frame_equal(by_path.curves, by_scenario.curves)


def test_set_applies_python_values_before_validation(write_scenario):
    path = write_scenario(base_raw())
    sc = scenario_of(path, {
        "target.count": "upgraded",                          # text stays text
        "levels.line.imitation": np.float64(0.8),            # numpy scalars become numbers
        "resources.integrators.capacity": np.int64(900),
        "policy.subsidy.end": "2027-06-30",                  # a date key takes an ISO date
        "shock.chips.at": pd.Timestamp("2027-03-01"),        # a midnight Timestamp is a date
        "policy.0.segments": ("sme", "large"),               # a tuple is a list
        "levels.line.implementation": {"median": 8, "sigma": np.float32(0.25)},
    }, replications=3, seed=11)
    assert sc.target.count == "upgraded" and sc.levels[1].imitation == 0.8
    assert sc.resources[0].capacity == 900 and type(sc.raw["resources"]["integrators"][
        "capacity"]) is int
    assert sc.policies[0].end == dt.date(2027, 6, 30) and sc.shocks[0].at == dt.date(2027, 3, 1)
    assert set(sc.policies[0].segments) == {"sme", "large"}
    assert sc.raw["levels"]["line"]["implementation"] == {"median": 8, "sigma": 0.25}
    assert (sc.replications, sc.seed) == (3, 11)


def test_set_takes_iso_dates_in_tables_zero_d_arrays_and_refuses_nat_by_name(write_scenario):
    """A list of tables replacing the policies converts ISO text under the date keys (as a
    single dotted date key does), a 0-d array is the number it holds, and NaT is refused
    as no date (before: 'must be a TOML date', '0.6 (float) is not a scenario value' and
    'NaTType does not support time')."""
    path = write_scenario(base_raw())
    sc = scenario_of(path, {
        "policy": [{"name": "new", "start": "2026-03-01", "end": "2027-06-30",
                    "multiplier": {"line": 1.5}}],
        "levels.line.imitation": np.array(0.7),
    })
    assert [(p.name, p.start, p.end) for p in sc.policies] == [
        ("new", dt.date(2026, 3, 1), dt.date(2027, 6, 30))]
    assert sc.levels[1].imitation == 0.7
    assert sc.raw["policy"][0]["multiplier"] == {"line": 1.5}  # numbers stay numbers
    for nat in (pd.NaT, np.datetime64("NaT")):
        with pytest.raises(sim.ScenarioError) as err:
            scenario_of(path, {"target.deadline": nat})
        assert "set 'target.deadline': NaT (no date) is not a scenario value" in str(err.value)
    named = scenario_of(path, {"policy.subsidy.name": "2027-01-01"})  # not a date key: text
    assert "2027-01-01" in [p.name for p in named.policies]


def test_set_changes_the_result_as_expected(write_scenario):
    path = write_scenario(base_raw())
    base = sim.run(path, engine="meanfield")
    upgraded = sim.run(path, engine="meanfield", set={"target.count": "upgraded"})
    assert upgraded.summary["target"]["count"] == "upgraded" and "(upgraded)" in upgraded.line
    assert upgraded.summary["count_at_deadline"]["mean"] == pytest.approx(
        base.summary["readings"]["upgraded"]["line"]["mean"])
    faster = sim.run(path, engine="meanfield", set={"levels.line.innovation": 0.3})
    assert (faster.summary["count_at_deadline"]["mean"]
            > base.summary["count_at_deadline"]["mean"] + 100)


def test_set_leaves_a_given_scenario_alone():
    sc = make()
    outcome = sim.run(sc, engine="meanfield", set={"target.firms": 10})
    assert outcome.scenario.target.firms == 10 and sc.target.firms == 2_000
    assert sc.raw["target"]["firms"] == 2_000


def test_bad_overrides_name_the_key(write_scenario):
    path = write_scenario(base_raw())
    with pytest.raises(sim.ScenarioError) as err:
        sim.run(path, set={"policy.nosuch.budget": 1.0, "levels.line.success": object(),
                           "levels.line.imitation": -1})
    lines = err.value.problems
    assert any("'policy.nosuch.budget'" in ln and "no entry named 'nosuch'" in ln
               for ln in lines)
    assert any("'levels.line.success'" in ln and "not a scenario value" in ln for ln in lines)
    with pytest.raises(sim.ScenarioError, match="levels.line.imitation"):
        sim.run(path, set={"levels.line.imitation": -1})
    with pytest.raises(sim.InputError, match="^engine='fast': must be one of"):
        sim.run(path, engine="fast")
    with pytest.raises(TypeError):
        sim.run(42)


@pytest.mark.parametrize("engine", ["tau", "meanfield"])
def test_curves_hold_what_curves_csv_holds(tmp_path, write_scenario, engine):
    """Whole firms (tau) and expected values rounded as the file writes them (meanfield)."""
    outcome = sim.run(write_scenario(base_raw()), engine=engine, jobs=1)
    curves = outcome.curves
    assert list(curves.columns) == ["replication", "date", "level", "at_or_above",
                                    "new_since_start", "upgraded"]
    assert pd.api.types.is_datetime64_any_dtype(curves["date"])
    folder = outcome.write(tmp_path / "run")
    assert folder == tmp_path / "run"
    pd.testing.assert_frame_equal(curves, read_curves(folder))
    months = len(outcome.scenario.month_ends())
    assert len(curves) == len(outcome.results) * months * 4


def test_write_never_puts_a_variant_in_the_scenarios_folder(tmp_path, monkeypatch,
                                                             write_scenario):
    """`.write()` goes where `sim run` would: results/<name>/ for the scenario as its file
    has it (whatever replications and seed), results/<name>-<hash of the changes>/ else."""
    from sim.store.files import default_out

    path = write_scenario(base_raw())
    monkeypatch.chdir(tmp_path)
    plain = sim.run(path, engine="meanfield", replications=2, seed=3)
    assert plain.write() == Path("results/unit") and (tmp_path / "results/unit/summary.json"
                                                       ).is_file()
    variant = sim.run(path, engine="meanfield", set={"levels.line.imitation": 0.8})
    folder = variant.write()
    assert folder == default_out(variant.scenario, overrides=["levels.line.imitation=0.8"])
    assert folder != Path("results/unit") and (tmp_path / folder / "summary.json").is_file()
    by_name = sim.run(path, engine="meanfield", set={"policy.subsidy.end": dt.date(2027, 6, 30)})
    assert run_folder(by_name.scenario) == default_out(
        by_name.scenario, overrides=["policy.0.end=2027-06-30"])


def test_no_writer_puts_its_results_over_another_commands(tmp_path, write_scenario):
    """From Python as from the command line, a folder holding a run takes no sweep or solve
    and a folder holding a sweep takes no run: refused before any work, with every file left
    as it was (before, `sim.sweep(out=)` and `sim.write` wrote beside the other results,
    replacing the files of the same name)."""
    path = write_scenario(base_raw())
    run_dir = sim.run(path, engine="meanfield").write(tmp_path / "run")
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / "manifest.json").write_text('{"status": "finished"}', encoding="utf-8")

    def files(folder):
        return {p.name: p.read_bytes() for p in folder.iterdir()}

    before = files(run_dir), files(sweep_dir)
    with pytest.raises(sim.InputError, match=r"holds a run's results \(summary.json\)"):
        sim.sweep(path, vary={"levels.line.imitation": (0.3, 0.9)}, samples=2,
                  replications=1, jobs=1, out=run_dir)
    with pytest.raises(sim.InputError, match=r"holds a run's results"):
        sim.solve(path, vary={"target.firms": (50, 400)}, probability=0.5, out=run_dir,
                  progress=lambda done, total: pytest.fail("the search ran"))
    with pytest.raises(sim.InputError, match=r"holds a sweep's results \(manifest.json\)"):
        sim.run(path, engine="meanfield").write(sweep_dir)
    assert (files(run_dir), files(sweep_dir)) == before


VARY = {"levels.line.imitation": (0.3, 0.9)}
SOLVE = {"vary": {"target.firms": (50, 400)}, "probability": 0.5}


@pytest.mark.parametrize("call, says", [
    (lambda p: sim.solve(p, **SOLVE, replications=0), "replications=0: must be a whole"),
    (lambda p: sim.solve(p, **SOLVE, replications=-2), "replications=-2"),
    (lambda p: sim.solve(p, **SOLVE, tolerance=0, engine="meanfield"),
     "tolerance=0: must be a positive number"),
    (lambda p: sim.solve(p, **{**SOLVE, "probability": 1.5}), "probability=1.5: must be "
     "strictly between 0 and 1"),
    (lambda p: sim.solve(p, **{**SOLVE, "probability": float("nan")}), "probability=nan"),
    (lambda p: sim.solve(p, **{**SOLVE, "probability": "0.5"}), "probability='0.5'"),
    (lambda p: sim.solve(p, **SOLVE, decreasing="no"), "decreasing='no': must be True or"),
    (lambda p: sim.solve(p, **SOLVE, max_replications=-1), "max_replications=-1"),
    (lambda p: sim.sweep(p, vary=VARY, replications=0), "replications=0"),
    (lambda p: sim.sweep(p, vary=VARY, samples=0), "samples=0"),
    (lambda p: sim.sweep(p, vary=VARY, replications=1.5), "replications=1.5"),
    (lambda p: sim.sweep(p, vary=VARY, precision=0), "precision=0: must be in (0, 0.5]"),
    (lambda p: sim.sweep(p, vary=VARY, precision="0.1"), "precision='0.1'"),
    (lambda p: sim.sweep(sim.sweep_plan(p, vary=["levels.line.imitation=0.3:0.9"]),
                         engine="tau"), "give engine to sim.sweep_plan"),
    (lambda p: sim.run(p, engine="meanfield", jobs=0), "jobs=0: must be a whole number"),
    (lambda p: sim.run(p, engine="meanfield", jobs="2"), "jobs='2'"),
    (lambda p: sim.sweep(p, vary=VARY, jobs=1.5), "jobs=1.5"),
    (lambda p: sim.run(p, engine="meanfield", jobs=100_000), "more than 4 workers a core"),
    (lambda p: sim.sweep_plan(p, vary=["levels.line.imitation=0.3:0.9"], precision=0.1,
                              replications=8, max_replications=4),
     "a cap of 4 replications is below the 8"),
    (lambda p: sim.sweep_plan(p, vary=["levels.line.imitation=0.3:0.9"], max_replications=9),
     "applies only with a precision"),
    (lambda p: sim.run(p, set=["levels.line.imitation=0.8"]), "set=['levels.line.imitation"
     "=0.8']: give a mapping"),
    (lambda p: sim.run(p, engine=["tau"]), "engine=['tau']: must be one of"),
    (lambda p: sim.sweep(p, vary=VARY, engine=""), "engine='': must be one of"),
    (lambda p: sim.solve(p, **SOLVE, engine="fast"),
     "engine='fast': must be one of"),
    (lambda p: sim.sweep_plan(p, vary=["levels.line.imitation=0.3:0.9"], engine="fast"),
     "engine='fast': must be one of"),
    (lambda p: sim.sweep(p, vary=VARY, precision=10**400), "precision=1000"),
])
def test_arguments_the_command_line_would_refuse_are_refused_before_any_work(
        tmp_path, monkeypatch, write_scenario, call, says):
    """Each call's options are checked as the command line checks them, in one InputError
    line naming the argument, before any run and before any folder is made. Before, a solve
    with replications=0 or tolerance=0 never ended, a sweep took replications=0 for the
    default and -2 for a finished sweep of no runs, probability=1.5 was searched, "no" was
    a True direction, and jobs="2" was a TypeError."""
    path = write_scenario(base_raw())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sim.InputError) as err:
        call(path)
    assert len(err.value.lines) == 1 and says in err.value.lines[0], err.value.lines
    assert not (tmp_path / "results").exists()


def test_a_default_cap_rises_to_the_replications_asked_for(write_scenario):
    """Only a cap the user gave is refused below the replications; the default (1000 for a
    sweep with a precision) rises to them."""
    path = write_scenario(base_raw())
    plan = sim.sweep_plan(path, vary=["levels.line.imitation=0.3:0.9"], samples=2,
                          precision=0.05, replications=1200)
    assert plan.max_replications == 1200


def test_numpy_whole_numbers_and_paths_are_taken_where_python_ones_are(tmp_path,
                                                                      write_scenario):
    """A notebook's numpy integers are whole numbers (samples=np.int64(4) was a TypeError
    that left an empty sweep folder), and sim.sweep_plan takes a path as the other calls do
    (it raised AttributeError)."""
    path = write_scenario(base_raw())
    plan = sim.sweep_plan(path, vary=["levels.line.imitation=0.3:0.9"], design="grid",
                          samples=np.int64(2), replications=np.int64(1), engine="meanfield")
    assert plan.samples == 2 and type(plan.samples) is int and len(plan.design.points) == 2
    assert sim.sweep(plan, out=tmp_path / "s").points.shape[0] == 2
    # One override text alone is one override (it was read letter by letter).
    assert sim.load(path, "levels.line.imitation=0.7").levels[1].imitation == 0.7


def test_an_out_that_is_a_file_or_empty_is_refused_before_any_work(tmp_path, monkeypatch,
                                                                   write_scenario):
    """Before, `.write("notes.md")` over a file failed deep in the publish with a bare
    OSError, `sim.solve(out=...)` so only after the whole search, and `.write("")` wrote
    the run into the working folder."""
    path = write_scenario(base_raw())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.md").write_text("mine", encoding="utf-8")
    outcome = sim.run(path, engine="meanfield")
    for out, says in (("notes.md", "exists and is not a folder"),
                      ("notes.md/run", "notes.md is not a folder"), ("", "empty"),
                      ("/proc/sim-run", "cannot be written to")):
        with pytest.raises(sim.InputError, match=says):
            outcome.write(out)
    with pytest.raises(sim.InputError, match="exists and is not a folder"):
        sim.solve(path, **SOLVE, out="notes.md",
                  progress=lambda done, total: pytest.fail("the search ran"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.md", "scenario.toml"]


def test_a_run_written_into_a_users_folder_keeps_their_regions_files(tmp_path,
                                                                     write_scenario):
    """A run without regions replaces an earlier run's regions.csv and regions.png (they
    would describe another run); in a folder that held no run they are the user's and
    stay. Before, they were deleted."""
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("regions.csv", "regions.png", "notes.txt"):
        (folder / name).write_text("mine", encoding="utf-8")
    sim.run(write_scenario(base_raw()), engine="meanfield").write(folder)
    assert all((folder / n).read_text(encoding="utf-8") == "mine"
               for n in ("regions.csv", "regions.png", "notes.txt"))
    assert (folder / "summary.json").is_file()
    # A run's folder whose publish was killed after it removed summary.json: the other
    # files of the set are there, so regions files beside them are the old run's.
    (folder / "summary.json").unlink()
    sim.run(write_scenario(base_raw()), engine="meanfield").write(folder)
    assert not (folder / "regions.csv").exists() and not (folder / "regions.png").exists()
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_redrawing_a_damaged_run_is_input_error_and_rewrites_nothing(tmp_path,
                                                                     write_scenario):
    """`sim.api.redraw_run` on a folder whose files were damaged raised JSONDecodeError,
    KeyError or ValueError, sometimes after adoption.png was rewritten. Now one InputError
    line naming the folder, and every figure as it was."""
    raw = base_raw()
    folder = sim.run(write_scenario(raw), engine="tau", replications=2, jobs=1).write(
        tmp_path / "run")
    png_before = (folder / "adoption.png").read_bytes()
    for name, text in (("summary.json", "{"), ("summary.json", "{}"), ("curves.csv", "")):
        kept = (folder / name).read_bytes()
        (folder / name).write_text(text, encoding="utf-8")
        with pytest.raises(sim.InputError, match="cannot be redrawn, a file in it is damaged"):
            sim.api.redraw_run(str(folder))
        (folder / name).write_bytes(kept)
    assert (folder / "adoption.png").read_bytes() == png_before
    assert [p.name for p in sim.api.redraw_run(str(folder))][0] == "adoption.png"


def test_figure_is_a_matplotlib_figure(write_scenario):
    from matplotlib.figure import Figure

    outcome = sim.run(write_scenario(base_raw()), engine="meanfield")
    assert isinstance(outcome.figure(), Figure)


def test_progress_reports_runs(write_scenario, capsys):
    seen = []
    sim.run(write_scenario(base_raw()), engine="tau", jobs=1,
            progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (4, 4)
    sim.run(write_scenario(base_raw()), engine="tau", jobs=1, progress=True)
    assert "4/4" in capsys.readouterr().err


@pytest.mark.slow
def test_sweep_returns_its_tables_and_resumes(tmp_path, monkeypatch, write_scenario):
    path = write_scenario(base_raw())
    monkeypatch.chdir(tmp_path)
    vary = {"levels.line.imitation": (0.3, 0.9),
            "resources.integrators.capacity": (300, 1200, "log")}
    swept = sim.sweep(path, vary=vary, design="grid", samples=4, replications=2, jobs=1)
    assert isinstance(swept, sim.SweepTables) and isinstance(swept, sim.SweepOutcome)
    assert re.fullmatch(r"results/unit-sweep-[0-9a-f]{8}", swept.out.as_posix())
    assert len(swept.points) == 4 and len(swept.runs) == 8
    assert {"levels.line.imitation", "resources.integrators.capacity", "p_met"} <= set(
        swept.points.columns)
    assert swept.runs["error"].isna().all()
    assert {p.name for p in swept.figures()} >= {"reachability.png", "fan.png"}
    assert swept.line.startswith("target 2,000 firms")
    again = sim.sweep(path, vary=vary, design="grid", samples=4, replications=2, jobs=1)
    assert again.out == swept.out
    pd.testing.assert_frame_equal(again.runs, swept.runs)
    # A comment added to the file changes no value: the same folder, read back (before,
    # the folder was named by the file's text, so a new sweep started elsewhere)
    path.write_text("# a note\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    noted = sim.sweep(path, vary=vary, design="grid", samples=4, replications=2, jobs=1)
    assert noted.out == swept.out and len(list(Path("results").iterdir())) == 1
    pd.testing.assert_frame_equal(noted.runs, swept.runs)
    plan = sim.sweep_plan(sim.load(path), vary=["levels.line.imitation=0.3:0.9",
                                                "resources.integrators.capacity=300:1200:log"],
                          design="grid", samples=4, replications=2, engine="tau")
    assert sim.sweep(plan, jobs=1).out == swept.out  # the same sweep, read back
    with pytest.raises(sim.InputError, match="run as it is: give vary"):
        sim.sweep(plan, vary=vary)
    other = sim.sweep(path, vary=vary, design="grid", samples=4, replications=2, jobs=1,
                      set={"target.firms": 100})
    assert other.out != swept.out and other.points["p_met"].iloc[-1] == 1.0
    with pytest.raises(sim.InputError, match="give \\(LO, HI\\)"):
        sim.sweep(path, vary={"levels.line.imitation": 0.5})


def test_solve_finds_a_value_and_writes_when_asked(tmp_path, write_scenario):
    """The largest target met with P >= 0.5 lies near the median count (~140 firms)."""
    solved = sim.solve(write_scenario(base_raw()), probability=0.5, decreasing=True,
                       vary={"target.firms": (50, 400)}, replications=4, max_replications=8,
                       jobs=1, out=tmp_path / "solve")
    assert isinstance(solved, sim.SolveOutcome) and solved.result.reached
    median = sim.run(solved.scenario, engine="tau", jobs=1).summary["count_at_deadline"]["p50"]
    assert solved.result.ci95[0] - 10 <= median <= solved.result.ci95[1] + 10
    assert (tmp_path / "solve" / "solve.json").is_file()
    with pytest.raises(sim.InputError, match="exactly one"):
        sim.solve(make(), vary={}, probability=0.5)
