"""The `sim` command end to end: results folder contents, determinism across worker counts,
`plot`, `check`, and every shipped scenario running a small replication count."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, SCENARIOS, base_raw

from sim.cli.main import main
from sim.scenario import dumps

SUMMARY_KEYS = {"scenario", "scenario_sha256", "version", "engine", "seed", "replications",
                "target", "p_met", "p_met_ci95", "count_at_deadline", "crossing_date",
                "elapsed_s"}


def test_run_writes_the_results_folder(tmp_path, write_scenario, capsys):
    path = write_scenario(base_raw())
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--jobs", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("target 2,000 firms at >= line (new) by 2027-12-31: met in ")
    assert sorted(p.name for p in out.iterdir()) == ["adoption.png", "curves.csv", "report.html",
                                                     "scenario.toml", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["engine"] == "des" and summary["replications"] == 4
    assert set(summary["count_at_deadline"]) == {"mean", "p05", "p50", "p95"}
    assert set(summary["crossing_date"]) == {"p05", "p50", "p95", "never"}
    lo, hi = summary["p_met_ci95"]
    assert 0 <= lo <= summary["p_met"] <= hi <= 1
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == ["replication", "date", "level", "at_or_above",
                                    "new_since_start", "upgraded"]
    assert len(curves) == 4 * 36 * 4
    # Every firm counted new has upgraded, and every upgraded firm is in the stock.
    assert (curves.new_since_start <= curves.upgraded).all()
    assert (curves.upgraded <= curves.at_or_above).all()
    # The summary's count at the deadline agrees with the curve at the deadline month end.
    at_deadline = curves[(curves.date == "2027-12-31") & (curves.level == "line")]
    assert at_deadline.new_since_start.mean() == pytest.approx(
        summary["count_at_deadline"]["mean"])
    # scenario.toml is the scenario as run, and runs again to the same result.
    again = tmp_path / "again"
    assert main(["run", str(out / "scenario.toml"), "--out", str(again), "--jobs", "1"]) == 0
    assert (again / "curves.csv").read_bytes() == (out / "curves.csv").read_bytes()
    assert (out / "adoption.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_same_seed_identical_for_any_jobs_other_seed_differs(tmp_path, write_scenario):
    path = write_scenario(base_raw())
    outs = {}
    for name, extra in [("j1", ["--jobs", "1"]), ("j2", ["--jobs", "2"]),
                        ("other", ["--jobs", "2", "--seed", "8"])]:
        outs[name] = tmp_path / name
        assert main(["run", str(path), "--out", str(outs[name]), "--replications", "6",
                     *extra]) == 0
    one = (outs["j1"] / "curves.csv").read_bytes()
    assert one == (outs["j2"] / "curves.csv").read_bytes()
    assert one != (outs["other"] / "curves.csv").read_bytes()


def test_overrides_are_recorded_in_scenario_toml(tmp_path, write_scenario):
    path = write_scenario(base_raw())
    out = tmp_path / "o"
    assert main(["run", str(path), "--out", str(out), "--jobs", "1", "--replications", "2",
                 "--set", "levels.line.imitation=0.9"]) == 0
    text = (out / "scenario.toml").read_text()
    assert "imitation = 0.9" in text and "replications = 2" in text


def test_plot_redraws(tmp_path, write_scenario):
    path = write_scenario(base_raw())
    out = tmp_path / "o"
    assert main(["run", str(path), "--out", str(out), "--jobs", "1", "--replications", "2"]) == 0
    (out / "adoption.png").unlink()
    assert main(["plot", str(out)]) == 0
    assert (out / "adoption.png").stat().st_size > 10_000


def test_plot_of_a_folder_without_results_is_bad_input(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "missing" in capsys.readouterr().err
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    for given, says in (("nowhere", "no such folder"), ("notes.md", "is not a folder"),
                        ("dangling", "no such folder"), ("b" * 300, "too long")):
        assert main(["plot", str(tmp_path / given)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], err


def test_a_report_that_cannot_be_built_is_one_warning_line(tmp_path, capsys, monkeypatch,
                                                           write_scenario):
    """The results are kept without report.html, and the command says so in one line, not
    with Python's file, line number and source line of the warning."""
    import sim.store.report as report

    def broken(*args, **kwargs):
        raise RuntimeError("no report today")

    monkeypatch.setattr(report, "run_report", broken)
    out = tmp_path / "o"
    assert main(["run", str(write_scenario(base_raw())), "--engine", "meanfield",
                 "--out", str(out)]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if "report.html" in ln]
    assert err == ["sim run: warning: report.html not written: RuntimeError('no report "
                   "today')"], err
    assert (out / "summary.json").is_file() and not (out / "report.html").exists()


def test_a_librarys_deprecation_is_not_said_as_the_commands_warning(tmp_path, capsys,
                                                                    monkeypatch,
                                                                    write_scenario):
    """Only warnings meant for the user (UserWarning, RuntimeWarning) become a command's
    'sim run: warning:' line; a library's DeprecationWarning goes Python's way (here to
    pytest's recorder), not onto the terminal as if the run had a problem."""
    import warnings

    import sim.store.report as report

    made = report.run_report

    def deprecated(*args, **kwargs):
        warnings.warn("old_api is deprecated", DeprecationWarning, stacklevel=1)
        return made(*args, **kwargs)

    monkeypatch.setattr(report, "run_report", deprecated)
    out = tmp_path / "o"
    with pytest.warns(DeprecationWarning, match="old_api"):
        assert main(["run", str(write_scenario(base_raw())), "--engine", "meanfield",
                     "--out", str(out)]) == 0
    assert "old_api" not in capsys.readouterr().err
    assert (out / "report.html").is_file()


def test_a_run_with_regions_refuses_a_folder_with_the_users_regions_files(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "regions.csv").write_text("my own data", encoding="utf-8")
    assert main(["run", str(ROOT / "scenarios" / "regional-quotas.toml"), "--out",
                 str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds regions.csv, not a run's results" in err[0], err
    assert [p.name for p in folder.iterdir()] == ["regions.csv"]


@pytest.mark.parametrize("command", ["run", "sweep", "solve"])
def test_outs_that_lead_nowhere_or_replace_the_users_files_are_refused_first(
        tmp_path, capsys, command, monkeypatch):
    """A link that leads nowhere or round in a loop, and a name too long for the folder (or
    for the staging folder a run builds beside it), failed with a traceback, run and solve after
    all their work; `--out .` beside the scenario file replaced it with the as-run copy.
    Each is now one line before any work, exit 2, and the folder is left as it was."""
    monkeypatch.chdir(tmp_path)
    raw = base_raw()
    raw["population"]["firms"] = 2000
    source = tmp_path / "scenario.toml"
    source.write_text(dumps(raw), encoding="utf-8")
    text = source.read_bytes()
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    (tmp_path / "loop").symlink_to("loop")
    extra = {"run": [], "sweep": ["--samples", "2", "--vary", "levels.line.innovation=0.01:0.2"],
             "solve": ["--vary", "levels.line.innovation=0.01:0.2", "--probability", "0.5"]}
    staged = [("b" * 230, "longer than")] if command == "run" else []  # (its staging folder)
    for out, says in (("dangling", "leads nowhere"), ("loop/x", "round a loop"),
                      ("b" * 300, "too long"), *staged, (".", "holds scenario.toml, not a")):
        before = sorted(p.name for p in tmp_path.iterdir())
        assert main([command, str(source), "--replications", "2", "--jobs", "1",
                     *extra[command], "--out", out]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0] and len(err[0]) < 400, err
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert source.read_bytes() == text


@pytest.mark.parametrize("damage", [
    ("summary.json", '{"broken'), ("summary.json", ""), ("summary.json", "[1, 2]"),
    ("curves.csv", ""), ("curves.csv", "replication,date\n0,2026-01-31,1,2,3\n")])
def test_plot_of_a_damaged_run_is_bad_input(tmp_path, write_scenario, capsys, damage):
    """A results file emptied, truncated or edited by hand: one line naming the folder,
    exit 2, no traceback (sim plot raised JSONDecodeError, KeyError, TypeError...)."""
    out = tmp_path / "o"
    assert main(["run", str(write_scenario(base_raw())), "--out", str(out), "--jobs", "1",
                 "--replications", "2"]) == 0
    capsys.readouterr()
    name, text = damage
    (out / name).write_text(text)
    assert main(["plot", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{out}/ cannot be redrawn" in err[0]


def test_check_refuses_a_sweep_table_that_sweep_would_refuse(write_scenario, capsys):
    """`sim check` said ok to a [sweep.vary] key that `sim sweep` then refused."""
    raw = base_raw()
    raw["sweep"] = {"vary": {"levels.nope.innovation": [0.1, 0.5]}}
    path = write_scenario(raw)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{path}: sweep.vary:") and "levels.nope" in err[0]


def test_check_accepts_shipped_scenarios(capsys):
    assert SCENARIOS, "no scenarios shipped"
    assert main(["check", *map(str, SCENARIOS)]) == 0


def test_python_dash_m_is_the_sim_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sim", "--version"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.startswith("sim ")


@pytest.mark.slow
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_shipped_scenario_runs(tmp_path, path, capsys):
    out = tmp_path / path.stem
    assert main(["run", str(path), "--out", str(out), "--replications", "2", "--jobs", "1"]) == 0
    assert "target " in capsys.readouterr().out
    assert (out / "summary.json").is_file()


def test_the_library_runs_a_scenario_without_the_command(tmp_path, write_scenario):
    import sim

    outcome = sim.run(sim.load(write_scenario(base_raw())), engine="tau", jobs=1)
    assert outcome.line.startswith("target 2,000 firms") and len(outcome.results) == 4
    assert outcome.summary["replications"] == 4 and outcome.summary["engine"] == "tau"
    out = sim.write(outcome, tmp_path / "lib")
    assert json.loads((out / "summary.json").read_text())["verdict"] == outcome.line


def test_public_names_resolve_and_version_loads_no_numerics():
    import sim

    assert all(getattr(sim, name) is not None for name in sim.__all__)
    code = ("import sys; from sim.cli import main; main(['--version']); "
            "print(sorted(m for m in ('scipy', 'matplotlib', 'numpy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.splitlines() == ["sim 0.1.0", "[]"]


def test_help_and_check_load_no_numerics_and_list_what_the_commands_say():
    """`sim --help` and `sim check` import no command they do not run (the listing's lines
    are kept in sim/cli/main.py; they must be the modules' own)."""
    from sim.cli.main import build_parser

    assert build_parser("").format_help() == build_parser().format_help()
    shown = "print(sorted(m for m in ('scipy', 'matplotlib', 'numpy') if m in sys.modules))"
    for argv in (["--help"], ["check", str(SCENARIOS[0])]):
        code = (f"import sys\nfrom sim.cli import main\ntry:\n    main({argv!r})\n"
                f"except SystemExit:\n    pass\n{shown}")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=ROOT)
        assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "[]", proc.stderr


# ---------------------------------------------------------------------------------------------
# Results never replaced silently (issue 14)


def short_hash(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]


def test_overrides_get_a_folder_of_their_own(tmp_path, write_scenario, monkeypatch, capsys):
    """With --set and no --out, results/<name>-<first 8 hex digits of the SHA-256 of the
    sorted key=value list, values in one TOML form>/: the same overrides, however written
    and in any order, reuse it, and the scenario's own folder is left alone."""
    path = write_scenario(base_raw())
    monkeypatch.chdir(tmp_path)
    run = ["run", str(path), "--jobs", "1", "--replications", "1"]
    assert main(run) == 0
    assert capsys.readouterr().err.splitlines()[-1].startswith("results in results/unit/ (")
    own = (tmp_path / "results" / "unit" / "curves.csv").read_bytes()
    h = short_hash("levels.line.imitation=0.8\nresources.integrators.capacity=1000")
    assert main([*run, "--set", "levels.line.imitation=0.8",
                 "--set", "resources.integrators.capacity=1_000"]) == 0
    said = capsys.readouterr().err.splitlines()[-1]
    assert said.startswith(f"results in results/unit-{h}/ (") and said.endswith(
        " s, 1 run, 1 job)")
    assert main([*run, "--set", "resources.integrators.capacity = 1000",
                 "--set", "levels.line.imitation=0.80"]) == 0
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["unit", f"unit-{h}"]
    assert (tmp_path / "results" / "unit" / "curves.csv").read_bytes() == own
    summary = json.loads((tmp_path / "results" / f"unit-{h}" / "summary.json").read_text())
    assert summary["scenario"] == "unit" and summary["replications"] == 1


def test_a_sweep_with_overrides_gets_a_folder_of_its_own(tmp_path, write_scenario,
                                                         monkeypatch):
    raw = base_raw()
    raw["population"]["firms"] = 4000
    path = write_scenario(raw)
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(path), "--jobs", "1", "--engine", "tau", "--samples", "2",
                 "--replications", "1", "--vary", "levels.line.imitation=0.2:1.5",
                 "--set", "target.firms=33"]) == 0
    assert (tmp_path / "results" / f"unit-{short_hash('target.firms=33')}-sweep" /
            "runs.csv").is_file()


def test_a_run_replaced_keeps_none_of_the_old_runs_files(tmp_path, write_scenario):
    """A run with regions replaced (--force) by one without: its regions.csv and
    regions.png went on standing beside the new summary, as if they were the new run's."""
    raw = base_raw()
    raw["population"]["region"] = [{"name": "east", "share": 0.6},
                                   {"name": "west", "share": 0.4}]
    out = tmp_path / "out"
    args = ["--out", str(out), "--jobs", "1", "--replications", "2"]
    assert main(["run", str(write_scenario(raw, "regions.toml")), *args]) == 0
    assert (out / "regions.csv").is_file() and (out / "regions.png").is_file()
    assert main(["run", str(write_scenario(base_raw(), "plain.toml")), *args, "--force"]) == 0
    assert not (out / "regions.csv").exists() and not (out / "regions.png").exists()
    assert (out / "summary.json").is_file()


def test_another_scenarios_results_are_replaced_only_with_force(tmp_path, write_scenario,
                                                                capsys):
    """A folder holding a finished run of another scenario (another scenario hash) is
    refused in one line, nothing written; a rerun of the same scenario replaces it, as
    does --force."""
    path = write_scenario(base_raw())
    out = tmp_path / "out"
    run = ["run", str(path), "--out", str(out), "--jobs", "1", "--replications", "2"]
    assert main(run) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main([*run, "--seed", "8"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"sim run: {out}/ holds this scenario's results with other values (it differs in "
        f"seed)"
        " (unit, 2 runs, engine des); pass --force to replace them or --out DIR to write "
        "elsewhere"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # The same scenario run by another engine is another result, as another seed is.
    assert main([*run, "--engine", "meanfield"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"sim run: {out}/ holds this scenario's results from another engine (unit, 2 runs, "
        "engine des); pass --force to replace them or --out DIR to write elsewhere"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # The same values with another comment in the source file: the same scenario.
    path.write_text(path.read_text() + "# a note\n")
    assert main(run) == 0
    assert main([*run, "--seed", "8", "--force"]) == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 8


def test_a_refusal_names_the_keys_that_differ_as_set_takes_them():
    """Lists of tables are compared entry by entry, so a refusal names `policy.1.budget`,
    not `policy`; a list of another length is named whole."""
    from sim.cli.run import _differ

    was = {"seed": 1, "policy": [{"budget": 1.0}, {"budget": 2.0}], "levels": {"line": {}}}
    now = {"seed": 2, "policy": [{"budget": 1.0}, {"budget": 3.0}], "levels": {"line": {}}}
    assert _differ(was, now, "") == ["policy.1.budget", "seed"]
    assert _differ(was, {**now, "policy": [{"budget": 1.0}]}, "") == ["policy", "seed"]


def test_the_fast_engine_warns_where_its_queue_order_is_approximate(write_scenario, tmp_path,
                                                                    capsys):
    """Levels that need resources and take an exact time (sigma 0) are where the fast
    engine's order within a step shows (docs/performance.md, limit (1)): one warning line,
    naming the levels and the remedy; none with a spread, none for the exact engine."""
    raw = base_raw()
    raw["levels"]["line"]["implementation"]["sigma"] = 0.0
    exact = write_scenario(raw, "exact.toml")
    args = ["--replications", "2", "--jobs", "1"]
    assert main(["run", str(exact), "--engine", "tau", *args, "--out", str(tmp_path / "a")]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert err == [f"sim run: warning: {exact}: level line needs resources and takes an exact "
                   "time (implementation sigma 0): where their projects wait, the fast "
                   "engine's order within a step is approximate; for exact completions use "
                   "--engine des or engine.tau_step = 1 (docs/performance.md)"], err
    assert main(["run", str(exact), "--engine", "des", *args, "--out", str(tmp_path / "b")]) == 0
    spread = write_scenario(base_raw(), "spread.toml")
    assert main(["run", str(spread), "--engine", "tau", *args, "--out", str(tmp_path / "c")]) == 0
    assert "warning" not in capsys.readouterr().err
