"""`sim sweep`: designs, options, the results folder, resuming, the lock, failed runs,
precision, interruption by signals, worker loss and determinism across worker counts."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, base_raw, make

import sim.explore.runs as runs_mod
from sim.analysis.verdict import wilson
from sim.cli.main import main
from sim.engines import engines
from sim.execution.executor import LocalExecutor
from sim.execution.seeds import replication_rng
from sim.explore.design import (
    Range,
    SweepError,
    make_design,
    parse_vary,
    point_scenario,
    resolve_ranges,
)
from sim.explore.plan import needed_replications
from sim.explore.runs import RunSpec, run_points
from sim.store.journal import Journal, _proc_start

VARY = ["--vary", "levels.line.imitation=0.2:1.5", "--vary",
        "resources.integrators.capacity=100:400"]


def tiny_raw() -> dict:
    """About 13 ms a run; the target sits inside the swept range, so P(met) varies."""
    raw = base_raw()
    raw["population"]["firms"] = 4000
    raw["target"]["firms"] = 33
    raw["sweep"] = {"design": "lhs", "samples": 6, "replications": 3,
                    "vary": {"levels.line.imitation": [0.2, 1.5],
                             "resources.integrators.capacity": [100, 400]}}
    return raw


@pytest.fixture
def tiny(write_scenario):
    return write_scenario(tiny_raw(), "tiny.toml")


def sweep(path, out, *extra: str) -> int:
    return main(["sweep", str(path), "--out", str(out), "--jobs", "1", *extra])


# ---------------------------------------------------------------------------------------------
# Ranges and designs


def test_parse_vary():
    assert parse_vary("levels.line.imitation=0.2:0.6") == ("levels.line.imitation", 0.2, 0.6,
                                                            False)
    assert parse_vary("levels.line.innovation = 0.01:0.3:log") == ("levels.line.innovation",
                                                                  0.01, 0.3, True)
    assert parse_vary("resources.integrators.capacity=10_000:40_000")[1:3] == (10000, 40000)
    for bad, words in [("levels.line.imitation=0.6:0.2", "exceeds"), ("x", "KEY=LO:HI"),
                       ("k=a:b", "numbers"), ("k=1:2:3", "KEY=LO:HI"), ("k=nan:1", "finite")]:
        with pytest.raises(ValueError, match=words):
            parse_vary(bad)


def test_ranges_keep_whole_numbers_and_name_bad_keys():
    raw = tiny_raw()
    ranges = resolve_ranges(raw, [("resources.integrators.capacity", 100, 400, False),
                                  ("levels.line.imitation", 0.2, 1.5, False),
                                  ("levels.line.retry", 6, 18, False)], source="t.toml")
    assert [r.integer for r in ranges] == [True, False, False]  # retry accepts 7.5 months
    # Whole-number keys left at their default, or written as a float: whole numbers too
    # (they were sampled as reals, and every point refused: 'must be a whole number').
    raw["resources"]["integrators"]["capacity"] = 900.0
    assert "compute" not in raw["levels"]["line"]["needs"]
    ranges = resolve_ranges(raw, [("resources.integrators.capacity", 100, 400, False),
                                  ("levels.line.needs.compute", 0, 3, False)], source="t.toml")
    assert [r.integer for r in ranges] == [True, True]
    with pytest.raises(SweepError) as err:
        resolve_ranges(raw, [("levels.line.imitatoin", 0.1, 0.2, False),
                             ("levels.line.success", 0.5, 1.5, False),
                             ("levels.line.innovation", 0.0, 0.1, True)], source="t.toml")
    lines = err.value.lines
    assert len(lines) == 3
    assert "levels.line.imitatoin" in lines[0] and "unknown key" in lines[0]
    assert "levels.line.success" in lines[1] and "1.5" in lines[1]
    assert "log scale needs LO > 0" in lines[2]
    with pytest.raises(SweepError) as err:  # (they were taken, and changed nothing)
        resolve_ranges(raw, [("replications", 1, 100, False), ("seed", 1, 9, False),
                             ("sweep.samples", 2, 9, False)], source="t.toml")
    assert len(err.value.lines) == 3
    assert all("a setting of the runs, not of the model" in line for line in err.value.lines)


def test_lhs_is_stratified_seeded_and_integers_stay_integers():
    ranges = (Range("a", 0.0, 1.0), Range("b", 10, 1000, integer=True),
              Range("c", 0.001, 1.0, log=True))
    d = make_design("lhs", ranges, 20, seed=5)
    pts = np.array(d.points, dtype=float)
    assert pts.shape == (20, 3)
    assert all(isinstance(p[1], int) for p in d.points)
    # One point in each of the 20 strata of every axis (log axis: strata in log space).
    units = np.column_stack([[r.unit(x) for x in pts[:, i]] for i, r in enumerate(ranges)])
    for i in (0, 2):
        assert sorted(np.floor(units[:, i] * 20).astype(int)) == list(range(20))
    assert make_design("lhs", ranges, 20, seed=5).points == d.points
    assert make_design("lhs", ranges, 20, seed=6).points != d.points


def test_grid_and_sobol_layouts():
    ranges = (Range("a", 0.0, 1.0), Range("b", 2.0, 4.0))
    grid = make_design("grid", ranges, 16, seed=1)
    assert len(grid.points) == 16 and sorted({p[0] for p in grid.points}) == pytest.approx(
        [0, 1 / 3, 2 / 3, 1])
    sob = make_design("sobol", ranges, 6, seed=1)  # 6 base rows round up to 8
    assert sob.base == 8 and len(sob.points) == 8 * (2 + 2)
    a, b = np.array(sob.points[:8]), np.array(sob.points[8:16])
    for i in range(2):
        abi = np.array(sob.points[16 + 8 * i: 24 + 8 * i])
        expect = a.copy()
        expect[:, i] = b[:, i]
        assert np.array_equal(abi, expect)


def test_needed_replications_reaches_the_half_width():
    for met, n in [(0, 10), (5, 10), (9, 10)]:
        m = needed_replications(met, n, 0.05, cap=10_000)
        lo, hi = wilson(round(met / n * m), m)
        assert (hi - lo) / 2 <= 0.05 and m > n
    assert needed_replications(50, 100, 0.2, cap=10_000) == 100
    assert needed_replications(5, 10, 0.001, cap=300) == 300


# ---------------------------------------------------------------------------------------------
# Options


@pytest.mark.parametrize("extra, words", [
    (["--vary", "levels.line.imitation=0.6:0.2"], "exceeds"),
    (["--vary", "levels.line.imitatoin=0.2:0.6"], "levels.line.imitatoin"),
    (["--jobs", "0"], "--jobs"),
    (["--jobs", "100000"], "more than 4 workers a core"),  # (it started one per batch)
    (["--precision", "0.7"], "--precision"),
    (["--engine", "warp"], "--engine"),
    (["--vary", "levels.line.success=0.5:1.2"], "levels.line.success"),
    (["--vary", "replications=1:100"], "a setting of the runs"),
    (["--max-replications", "9"], "applies only with a precision"),  # (was ignored)
    (["--precision", "0.1", "--max-replications", "2"], "below the 3 every point"),
])
def test_bad_options_exit_2_with_one_line_and_write_nothing(tiny, tmp_path, capsys, extra,
                                                             words):
    out = tmp_path / "out"
    assert main(["sweep", str(tiny), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "Traceback" not in err[0]
    assert not out.exists()


def test_nothing_to_vary_is_bad_input(write_scenario, tmp_path, capsys):
    path = write_scenario(base_raw())
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "nothing to vary" in capsys.readouterr().err


def test_a_problem_of_the_files_sweep_table_names_the_file_not_the_command_line(
        write_scenario, tmp_path, capsys):
    """A [sweep] log key whose range starts at 0 was blamed on '--vary', which the user
    never typed; it now names the file and its table."""
    raw = tiny_raw()
    raw["sweep"]["vary"] = {"levels.line.innovation": [0.0, 0.3]}
    raw["sweep"]["log"] = ["levels.line.innovation"]
    path = write_scenario(raw, "logged.toml")
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{path}: sweep.vary.levels.line.innovation: a log scale needs LO > 0 "
                   "(got 0)"], err
    assert not (tmp_path / "o").exists()


def test_a_sweep_tables_log_keys_and_ranges_are_refused_together(write_scenario, tmp_path,
                                                                  capsys):
    """A log key that is not varied and a range the model refuses are two lines of one
    refusal (the log key was refused alone, and the range only once it was fixed)."""
    raw = tiny_raw()
    raw["sweep"]["vary"]["levels.line.success"] = [0.3, 1.8]
    raw["sweep"]["log"] = ["levels.line.innovation"]
    path = write_scenario(raw, "two.toml")
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2, err
    assert "sweep.log: 'levels.line.innovation' is not a key of [sweep.vary]" in err[0]
    assert "sweep.vary.levels.line.success = [0.3, 1.8]" in err[1]
    assert not (tmp_path / "o").exists()


def test_a_sweep_of_too_many_runs_is_refused_up_front(tiny, tmp_path, capsys):
    assert sweep(tiny, tmp_path / "o", "--samples", "100000", "--replications", "100") == 2
    err = capsys.readouterr().err
    assert "10,000,000 runs" in err and "limits" in err
    assert sweep(tiny, tmp_path / "o", "--samples", "10000000", "--replications", "1") == 2
    assert "10,000,000 points" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
# The results folder


def test_sweep_writes_tables_manifest_and_figures(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert sweep(tiny, out) == 0
    assert "6 lhs points" in capsys.readouterr().out
    for name in ("runs.csv", "points.csv", "manifest.json", "curves.csv", "sensitivity.csv",
                 "reachability.png", "fan.png", "sensitivity.png", "scenario.toml"):
        assert (out / name).is_file(), name
    runs = pd.read_csv(out / "runs.csv")
    keys = ["levels.line.imitation", "resources.integrators.capacity"]
    assert list(runs.columns) == ["point", "replication", *keys, "count_at_deadline", "met",
                                  "crossing_date", "error"]
    assert len(runs) == 6 * 3 and runs.error.isna().all()
    assert runs["resources.integrators.capacity"].dtype.kind == "i"
    assert (runs.met == (runs.count_at_deadline >= 33)).all()
    points = pd.read_csv(out / "points.csv")
    assert {"p_met", "p_met_lo", "p_met_hi", *keys} <= set(points.columns)
    for j, grp in runs.groupby("point"):
        row = points[points.point == j].iloc[0]
        met = int(grp.met.sum())
        assert row.p_met == pytest.approx(met / 3)
        assert (row.p_met_lo, row.p_met_hi) == pytest.approx(wilson(met, 3), abs=1e-6)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["design"] == "lhs" and manifest["seed"] == 7 and manifest["engine"] == "des"
    assert manifest["status"] == "finished" and manifest["runs"] == 18
    assert [r["key"] for r in manifest["ranges"]] == keys
    assert {"version", "scenario_sha256"} <= set(manifest)
    assert (out / "reachability.png").stat().st_size > 20_000
    (out / "fan.png").unlink()
    assert main(["plot", str(out)]) == 0
    assert (out / "fan.png").is_file()
    # A sweep stopped while writing its tables (its manifest still says running) is not
    # redrawn as if finished (it was, from whatever tables were there, exit 0).
    (out / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    (out / "fan.png").unlink()
    assert main(["plot", str(out)]) == 2
    assert not (out / "fan.png").exists()


def test_seeds_come_from_point_and_replication(tiny, tmp_path):
    out = tmp_path / "out"
    assert sweep(tiny, out) == 0
    runs = pd.read_csv(out / "runs.csv")
    sc = make({"population.firms": 4000, "target.firms": 33})
    row = runs.iloc[4]
    values = dict(zip(["levels.line.imitation", "resources.integrators.capacity"],
                      row.iloc[2:4], strict=True))
    values["resources.integrators.capacity"] = int(values["resources.integrators.capacity"])
    point = point_scenario(sc.raw, list(values), list(values.values()), "t")
    result = engines()["des"](point, replication_rng(7, int(row.point), int(row.replication)))
    assert result.count_at_deadline == row.count_at_deadline


def _counting_engine(monkeypatch) -> Counter:
    calls: Counter = Counter()
    real = engines()

    def counted(name):
        def run(sc, rng):
            calls[name] += 1
            return real[name](sc, rng)
        return run

    monkeypatch.setattr(runs_mod, "engines", lambda: {k: counted(k) for k in real})
    return calls


def test_interrupted_sweep_resumes_without_redoing_or_losing_runs(tiny, tmp_path, monkeypatch,
                                                                   capsys):
    whole = tmp_path / "whole"
    assert sweep(tiny, whole) == 0
    out = tmp_path / "out"
    real_batch = runs_mod.run_batch
    batches = Counter()

    def interrupting(spec, runs):
        batches["n"] += 1
        if batches["n"] == 4:
            raise KeyboardInterrupt
        return real_batch(spec, runs)

    monkeypatch.setattr(runs_mod, "run_batch", interrupting)
    assert sweep(tiny, out) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "resume" in err and "Traceback" not in err
    kept = len(Journal(out / "runs.jsonl").read())
    assert 0 < kept < 18
    assert not (out / ".lock").exists()
    monkeypatch.setattr(runs_mod, "run_batch", real_batch)
    calls = _counting_engine(monkeypatch)
    assert sweep(tiny, out) == 0
    assert calls["des"] == 18 - kept  # nothing done twice
    for name in ("runs.csv", "points.csv", "curves.csv", "sensitivity.csv"):
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name
    calls.clear()
    assert sweep(tiny, out) == 0  # a finished sweep run again does nothing new
    assert calls["des"] == 0


def test_torn_journal_line_is_dropped_and_duplicates_count_once(tmp_path):
    j = Journal(tmp_path / "runs.jsonl")
    j.append([{"point": 0, "replication": 0, "met": True}, {"point": 0, "replication": 1}])
    j.append([{"point": 0, "replication": 0, "met": False}])
    with open(j.path, "a") as fh:
        fh.write('{"point": 1, "replicat')
    rows = j.read()
    assert set(rows) == {(0, 0), (0, 1)} and rows[(0, 0)]["met"] is True
    assert j.path.read_text().endswith("}\n")  # the torn tail is cut off


def test_a_different_sweep_in_the_same_folder_is_refused(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert sweep(tiny, out) == 0
    before = (out / "runs.csv").read_bytes()
    capsys.readouterr()
    assert sweep(tiny, out, "--replications", "4") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different sweep" in err[0] and "replications" in err[0]
    assert (out / "runs.csv").read_bytes() == before
    # A comment added to the scenario file changes no value: the same sweep, whose runs
    # are kept (it was refused as differing in scenario_sha256); a changed value is not.
    text = tiny.read_text(encoding="utf-8")
    tiny.write_text("# a note added while the sweep waited\n" + text, encoding="utf-8")
    assert sweep(tiny, out) == 0
    assert (out / "runs.csv").read_bytes() == before
    tiny.write_text(text.replace("firms = 4000", "firms = 4001"), encoding="utf-8")
    assert "firms = 4001" in tiny.read_text(encoding="utf-8")
    capsys.readouterr()
    assert sweep(tiny, out) == 2
    assert "differs in scenario_sha256" in capsys.readouterr().err


def test_lock_refuses_a_live_sweep_and_takes_over_a_dead_ones(tiny, tmp_path, capsys):
    import socket

    out = tmp_path / "out"
    out.mkdir()
    lock = out / ".lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                "started": _proc_start(os.getpid())}))
    assert sweep(tiny, out) == 2
    assert "another sweep is running" in capsys.readouterr().err
    assert not (out / "runs.jsonl").exists()
    lock.write_text('{"pid": 12')  # torn by a crash while it was written, long ago
    old = time.time() - 60
    os.utime(lock, (old, old))
    assert sweep(tiny, out) == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    assert sweep(tiny, out) == 0
    assert not lock.exists() and (out / "runs.csv").is_file()


def test_a_run_that_raises_is_recorded_and_the_sweep_goes_on(tiny, tmp_path, monkeypatch,
                                                             capsys):
    real = engines()["des"]

    def flaky(sc, rng):
        if sc.levels[1].imitation == first_imitation and flaky.calls == 0:
            flaky.calls += 1
            raise RuntimeError("solver blew up")
        return real(sc, rng)

    flaky.calls = 0
    design = make_design("lhs", resolve_ranges(tiny_raw(), [
        ("levels.line.imitation", 0.2, 1.5, False),
        ("resources.integrators.capacity", 100, 400, False)], source="t"), 6, seed=7)
    first_imitation = design.points[0][0]
    monkeypatch.setattr(runs_mod, "engines", lambda: {"des": flaky})
    out = tmp_path / "out"
    assert sweep(tiny, out) == 0
    assert "1 runs failed" in capsys.readouterr().out
    runs = pd.read_csv(out / "runs.csv")
    bad = runs[runs.error.notna()]
    assert len(bad) == 1 and "RuntimeError: solver blew up" in bad.error.iloc[0]
    assert bad.point.iloc[0] == 0 and np.isnan(bad.met.iloc[0])
    points = pd.read_csv(out / "points.csv")
    assert points.failed.tolist() == [1, 0, 0, 0, 0, 0]
    assert points.replications.tolist() == [2, 3, 3, 3, 3, 3]
    assert json.loads((out / "manifest.json").read_text())["failed"] == 1


def test_precision_adds_replications_until_the_half_width_is_reached(tiny, tmp_path):
    out = tmp_path / "out"
    assert sweep(tiny, out, "--precision", "0.15", "--samples", "3") == 0
    points = pd.read_csv(out / "points.csv")
    half = (points.p_met_hi - points.p_met_lo) / 2
    assert (half <= 0.15).all()
    assert (points.replications > 3).all()  # 3 runs never give a half-width of 0.15
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == points.replications.sum()
    assert not runs.duplicated(["point", "replication"]).any()


def test_local_worker_loss_still_gives_every_run_once(tmp_path):
    sc = make({"population.firms": 4000, "target.firms": 33})
    ranges = resolve_ranges(sc.raw, [("levels.line.imitation", 0.2, 1.5, False)], source="t")
    design = make_design("lhs", ranges, 4, seed=3)
    runs = [(j, design.points[j], r) for j in range(4) for r in range(6)]
    executor = LocalExecutor(2)
    seen: Counter = Counter()
    killed = []

    def on_rows(rows):
        for row in rows:
            seen[(row["point"], row["replication"])] += 1
        if not killed and executor._pool is not None:
            proc = next(iter(executor._pool._processes.values()))
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(proc.pid)

    try:
        run_points(executor, runs, RunSpec(sc.raw, "t", "des", 7, design.keys), on_rows)
    finally:
        executor.close()
    assert killed
    assert set(seen) == {(p, r) for p, _, r in runs}
    assert all(n == 1 for n in seen.values())  # the lost batches were done again, once


@pytest.mark.slow
def test_same_rows_for_one_or_two_local_workers(tiny, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["sweep", str(tiny), "--out", str(one), "--jobs", "1"]) == 0
    assert main(["sweep", str(tiny), "--out", str(two), "--jobs", "2"]) == 0
    for name in ("runs.csv", "points.csv", "curves.csv"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def sweep_in_a_process(write_scenario, tmp_path):
    """Start `sim sweep` (400 runs, 2 workers) as a process; return once runs are on disk."""
    raw = tiny_raw()
    raw["sweep"]["samples"] = 40
    raw["sweep"]["replications"] = 10
    path = write_scenario(raw, "long.toml")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sim", "sweep", str(path), "--out", str(out), "--jobs", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    journal = out / "runs.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not journal.is_file() or
                                           journal.stat().st_size < 2000):
        time.sleep(0.05)
    return path, out, cmd, proc


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_within_seconds_keeps_runs_and_resumes(write_scenario, tmp_path, signum,
                                                            code):
    path, out, cmd, proc = sweep_in_a_process(write_scenario, tmp_path)
    journal = out / "runs.jsonl"
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert proc.returncode == code, err
    assert "Traceback" not in err and "resume" in err
    kept = len(Journal(journal).read())
    assert 0 < kept < 400
    assert not (out / ".lock").exists()
    assert subprocess.run(cmd, cwd=ROOT, capture_output=True).returncode == 0
    whole = tmp_path / "whole"
    assert main(["sweep", str(path), "--out", str(whole), "--jobs", "1"]) == 0
    assert (out / "runs.csv").read_bytes() == (whole / "runs.csv").read_bytes()
    assert math.isclose(len(pd.read_csv(out / "runs.csv")), 400)


@pytest.mark.slow
def test_sigkill_leaves_a_resumable_folder_and_no_stray_workers(write_scenario, tmp_path):
    path, out, cmd, proc = sweep_in_a_process(write_scenario, tmp_path)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    proc.kill()
    proc.communicate(timeout=30)
    assert (out / ".lock").exists()  # no chance to release it: the next sweep takes it over
    gone = time.monotonic() + 10
    alive = children
    while alive and time.monotonic() < gone:
        alive = [c for c in children if Path(f"/proc/{c}").exists()
                 and Path(f"/proc/{c}/stat").read_text().split()[2] != "Z"]
        time.sleep(0.2)
    assert not alive, f"workers outlived their killed coordinator: {alive}"
    assert subprocess.run(cmd, cwd=ROOT, capture_output=True).returncode == 0
    whole = tmp_path / "whole"
    assert main(["sweep", str(path), "--out", str(whole), "--jobs", "1"]) == 0
    assert (out / "runs.csv").read_bytes() == (whole / "runs.csv").read_bytes()
