"""`sim solve`: the noise-aware bisection against a model whose P(met) curve is known, its
handling of unreachable and non-monotone cases, and the command's files and errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import make
from test_sweep import tiny_raw

import sim
import sim.explore.runs as runs_mod
from sim.api.common import InputError
from sim.cli.main import main
from sim.engines import RunResult
from sim.execution.executor import LocalExecutor
from sim.explore.design import Range, SweepError
from sim.explore.solve import isotonic, solve


def known_curve(p_of_x):
    """An engine whose run meets the target with probability p_of_x(line imitation)."""

    def engine(sc, rng):
        met = bool(rng.random() < p_of_x(sc.levels[1].imitation))
        months = len(sc.month_ends())
        return RunResult(at_or_above=np.zeros((months, 4), dtype=np.int64),
                         by_segment=np.zeros((months, 1, 5), dtype=np.int64),
                         initial=np.zeros(4, dtype=np.int64),
                         count_at_deadline=sc.target.firms if met else 0,
                         crossing_time=None, met=met,
                         upgraded=np.zeros((months, 4), dtype=np.int64))

    return engine


def logistic(centre: float, scale: float):
    return lambda x: 1.0 / (1.0 + math.exp(-(x - centre) / scale))


IMITATION = Range("levels.line.imitation", 0.2, 1.5)


def run_solve(monkeypatch, p_of_x, probability=0.9, **kw):
    monkeypatch.setattr(runs_mod, "engines", lambda: {"des": known_curve(p_of_x)})
    return solve(make(), IMITATION, probability, engine="des", executor=LocalExecutor(1),
                 **{"replications": 40, "max_replications": 640, **kw})


def test_isotonic_pools_adjacent_violators():
    fit = isotonic(np.array([0.1, 0.5, 0.3, 0.9]), np.array([1.0, 1.0, 3.0, 1.0]))
    assert fit == pytest.approx([0.1, 0.35, 0.35, 0.9])
    assert np.all(np.diff(fit) >= 0)


def test_finds_the_known_threshold_inside_its_interval(monkeypatch):
    # P(met)(x) = logistic((x - 0.8) / 0.05) reaches 0.9 at x* = 0.8 + 0.05 ln 9.
    truth = 0.8 + 0.05 * math.log(9)
    res = run_solve(monkeypatch, logistic(0.8, 0.05))
    assert res.reached and res.monotone
    lo, hi = res.ci95
    assert lo <= truth <= hi
    assert lo <= res.value <= hi
    assert hi - lo < 0.15  # the bisection narrowed the 1.3-wide range
    # Replications were added where the decision was hard, not everywhere.
    reps = {round(e.value, 4): e.replications for e in res.evaluations}
    assert max(reps.values()) > 40 and reps[0.2] == 40


def test_decreasing_finds_the_largest_value(monkeypatch):
    truth = 0.9 - 0.05 * math.log(9)  # 1 - logistic((x - 0.9) / 0.05) = 0.9
    res = run_solve(monkeypatch, lambda x: 1 - logistic(0.9, 0.05)(x), decreasing=True)
    assert res.reached and res.ci95[0] <= truth <= res.ci95[1]


def test_a_value_where_every_run_fails_is_one_line_of_bad_input(monkeypatch, tmp_path,
                                                               write_scenario, capsys):
    """Runs that fail at a searched value (an engine error, a value the scenario cannot
    take) stopped `sim solve` with a RuntimeError traceback after its work. It is bad
    input, said in one line with the first run's error: the search's SweepError, the
    API's InputError, the command's exit 2."""
    def failing(sc, rng):
        raise ValueError("no firm can take this")

    monkeypatch.setattr(runs_mod, "engines", lambda: {"des": failing})
    with pytest.raises(SweepError, match="every run at 0.2 failed: .*no firm can take this"):
        solve(make(), IMITATION, 0.9, engine="des", executor=LocalExecutor(1),
              replications=4)
    path = write_scenario(tiny_raw(), "tiny.toml")
    with pytest.raises(InputError, match="every run at"):
        sim.solve(path, vary="levels.line.imitation=0.2:1.5", probability=0.9, engine="des",
                  jobs=1, replications=4)
    assert main(["solve", str(path), "--vary", "levels.line.imitation=0.2:1.5",
                 "--probability", "0.9", "--jobs", "1", "--replications", "4", "--engine",
                 "des", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "every run at" in err[0] and "no firm can take this" in err[0]
    assert not (tmp_path / "s").exists()


def test_unreachable_says_so(monkeypatch):
    res = run_solve(monkeypatch, lambda x: 0.3)
    assert not res.reached and res.value is None and res.ci95 is None
    assert "not reached within [0.2, 1.5]" in res.message


def test_a_high_end_that_cannot_be_told_from_p_is_not_called_unreached(monkeypatch):
    """P(met) = P everywhere: at the cap the high end is still undecided, which is no
    evidence that P is not reached (it was reported as 'not reached')."""
    res = run_solve(monkeypatch, lambda x: 0.9, max_replications=160)
    assert not res.reached and "not shown to be reached" in res.message


def test_a_cap_too_small_to_decide_is_refused_before_any_run(monkeypatch, write_scenario,
                                                             capsys, tmp_path):
    """With 32 runs at most, even 32 of 32 meeting the target leaves P(met) >= 0.9 inside
    the Wilson interval (from 0.893): a solve could only end 'not reached' (it did). A cap
    below the starting replications was silently raised to them. Both are refused, with
    the least cap that can decide."""
    calls = []
    monkeypatch.setattr(runs_mod, "engines", lambda: {"des": lambda sc, rng: calls.append(1)})
    path = write_scenario(tiny_raw(), "tiny.toml")
    for cap, says in ((32, "allow at least 35"), (4, "is below the 8 each value")):
        with pytest.raises(InputError, match=says):
            sim.solve(path, vary="levels.line.imitation=0.2:1.5", probability=0.9,
                      engine="des", jobs=1, replications=8, max_replications=cap)
        assert main(["solve", str(path), "--vary", "levels.line.imitation=0.2:1.5",
                     "--probability", "0.9", "--jobs", "1", "--replications", "8",
                     "--max-replications", str(cap), "--engine", "des",
                     "--out", str(tmp_path / "s")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], err
    assert not calls and not (tmp_path / "s").exists()
    # The default cap (400) is no cap the user gave: it rises to more replications asked
    # for (a second read found 'max replications 400 is below the replications 500').
    monkeypatch.setattr(runs_mod, "engines", lambda: {"des": known_curve(lambda x: 1.0)})
    solved = sim.solve(path, vary="levels.line.imitation=0.2:1.5", probability=0.9,
                       engine="des", jobs=1, replications=410)
    assert solved.result.reached and "already" in solved.result.message


def test_already_met_at_the_low_end(monkeypatch):
    res = run_solve(monkeypatch, lambda x: 1.0)
    assert res.reached and res.value == 0.2 and "already" in res.message


def test_non_monotone_curve_is_reported(monkeypatch):
    # Met only in the middle of the range: the first crossing is found, with a warning.
    res = run_solve(monkeypatch, lambda x: 1.0 if 0.5 < x < 1.0 else 0.0)
    assert not res.monotone and "not monotone" in res.message
    assert res.reached and res.ci95[0] <= 0.5 <= res.ci95[1] + 1e-9


def test_solve_command_writes_solve_json_and_figure(write_scenario, tmp_path, capsys):
    path = write_scenario(tiny_raw(), "tiny.toml")
    out = tmp_path / "out"
    assert main(["solve", str(path), "--vary", "levels.line.imitation=0.2:1.5",
                 "--probability", "0.5", "--replications", "8", "--max-replications", "32",
                 "--tolerance", "0.1", "--jobs", "1", "--out", str(out)]) == 0
    doc = json.loads((out / "solve.json").read_text())
    assert {"parameter", "value", "ci95", "probability", "evaluations"} <= set(doc)
    assert doc["parameter"] == "levels.line.imitation" and doc["probability"] == 0.5
    assert doc["reached"] and doc["ci95"][0] <= doc["value"] <= doc["ci95"][1]
    assert doc["ci95"][1] - doc["ci95"][0] <= 0.1 + 1e-9 or any(
        e["decision"] == "undecided" for e in doc["evaluations"])
    assert all({"value", "replications", "p_met", "p_met_lo", "p_met_hi"} <= set(e)
               for e in doc["evaluations"])
    assert (out / "solve.png").stat().st_size > 20_000
    assert capsys.readouterr().out.startswith("smallest levels.line.imitation")


@pytest.mark.parametrize("extra, words", [
    (["--probability", "1.5"], "--probability"),
    (["--probability", "0.9", "--vary", "levels.line.imitation=0.9:0.2"],
     "sim solve: --vary 'levels.line.imitation=0.9:0.2': LO (0.9) exceeds"),  # (no 'sim solve')
    (["--probability", "0.9", "--vary", "target.level=0:1"], "sim solve: --vary target.level"),
    (["--probability", "0.9", "--vary", "replications=2:9"], "a setting of the runs"),
    (["--probability", "0.9", "--jobs", "0"], "--jobs"),
])
def test_bad_solve_options_exit_2(write_scenario, tmp_path, capsys, extra, words):
    path = write_scenario(tiny_raw(), "tiny.toml")
    out = tmp_path / "out"
    args = ["solve", str(path), "--out", str(out)]
    if "--vary" not in extra:
        args += ["--vary", "levels.line.imitation=0.2:1.5"]
    assert main(args + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert not out.exists()


def test_unreachable_solve_still_writes_its_answer_and_figure(write_scenario, tmp_path,
                                                             capsys):
    raw = tiny_raw()
    raw["target"]["firms"] = 2000  # far beyond what 4,000 firms deliver: P(met) = 0
    path = write_scenario(raw, "tiny.toml")
    out = tmp_path / "out"
    assert main(["solve", str(path), "--vary", "levels.line.imitation=0.2:1.5",
                 "--probability", "0.9", "--replications", "3", "--jobs", "1",
                 "--out", str(out)]) == 0
    doc = json.loads((out / "solve.json").read_text())
    assert doc["value"] is None and doc["ci95"] is None and not doc["reached"]
    assert "not reached within [0.2, 1.5]" in capsys.readouterr().out
    assert all(0 < e["count_mean"] < 2000 for e in doc["evaluations"])
    assert (out / "solve.png").is_file()


def test_a_solve_of_another_parameter_does_not_replace_the_first(write_scenario, tmp_path,
                                                                  capsys):
    """Two searches of one scenario default to one folder: the second, of another
    parameter, is refused in one line and the first solve.json stays; the same search
    again replaces it. Two --vary are refused, not the first silently dropped."""
    path = write_scenario(tiny_raw(), "tiny.toml")
    out = tmp_path / "out"
    base = ["solve", str(path), "--probability", "0.5", "--replications", "8",
            "--max-replications", "16", "--tolerance", "0.4", "--jobs", "1", "--out", str(out)]
    first = [*base, "--vary", "levels.line.imitation=0.2:1.5"]
    assert main(first) == 0
    kept = (out / "solve.json").read_bytes()
    capsys.readouterr()
    assert main([*base, "--vary", "levels.line.innovation=0.01:0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds another solve (parameter levels.line.imitation, " in err[0]
    assert (out / "solve.json").read_bytes() == kept
    assert main([*first, "--seed", "99"]) == 2  # (it said 'another solve (scenario tiny)')
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds another solve (seed 7)" in err[0], err
    assert (out / "solve.json").read_bytes() == kept
    assert main([*base, "--vary", "levels.line.innovation=0.01:0.5",
                 "--vary", "levels.line.imitation=0.2:1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--vary given 2 times" in err[0]
    assert main(first) == 0


def test_solves_of_two_parameters_keep_their_own_default_folders(write_scenario, tmp_path,
                                                                monkeypatch, capsys):
    """Without --out, a solve's folder is named by the key it searches: a second solve of
    the same scenario, of another parameter, runs beside the first instead of being
    refused (a new user met that refusal reproducing the README's own two solves)."""
    path = write_scenario(tiny_raw(), "tiny.toml")
    monkeypatch.chdir(tmp_path)
    base = ["solve", str(path), "--probability", "0.5", "--replications", "8",
            "--max-replications", "16", "--tolerance", "0.4", "--jobs", "1"]
    assert main([*base, "--vary", "levels.line.imitation=0.2:1.5"]) == 0
    assert main([*base, "--vary", "levels.line.innovation=0.01:0.5"]) == 0
    capsys.readouterr()
    made = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert made == ["unit-solve-levels.line.imitation", "unit-solve-levels.line.innovation"]
    assert all((tmp_path / "results" / m / "solve.json").is_file() for m in made)


def test_a_command_does_not_write_over_another_commands_results(write_scenario, tmp_path,
                                                                capsys):
    """A run's folder given to `sim solve` (or a solve's to `sim run`, even with --force) is
    refused in one line, nothing changed."""
    path = write_scenario(tiny_raw(), "tiny.toml")
    run_out = tmp_path / "run"
    run = ["run", str(path), "--replications", "2", "--jobs", "1", "--out", str(run_out)]
    assert main(run) == 0
    before = {p.name: p.read_bytes() for p in run_out.iterdir()}
    capsys.readouterr()
    assert main(["solve", str(path), "--vary", "levels.line.imitation=0.2:1.5",
                 "--probability", "0.5", "--jobs", "1", "--out", str(run_out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a run's results (summary.json)" in err[0]
    assert {p.name: p.read_bytes() for p in run_out.iterdir()} == before
    (tmp_path / "solve").mkdir()
    (tmp_path / "solve" / "solve.json").write_text("{}")
    assert main([*run[:-1], str(tmp_path / "solve")]) == 2
    assert "holds a solve's results" in capsys.readouterr().err
    # --force replaces a run, not another command's files (they would stay beside it).
    assert main([*run[:-1], str(tmp_path / "solve"), "--force"]) == 2
    assert sorted(p.name for p in (tmp_path / "solve").iterdir()) == ["solve.json"]


@pytest.mark.parametrize("out, words", [("", "empty"), ("/proc/sim-out", "cannot be written")])
def test_an_out_that_cannot_be_used_is_refused_before_any_work(write_scenario, capsys, out,
                                                              words, tmp_path, monkeypatch):
    """An empty --out (an unset shell variable) would mean the current folder; an
    unwritable one failed with a traceback after the whole run. Both: exit 2, one line."""
    monkeypatch.chdir(tmp_path)
    path = write_scenario(tiny_raw(), "tiny.toml")
    assert main(["run", str(path), "--replications", "2", "--jobs", "1", "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert words in err[-1] and "Traceback" not in "".join(err)
    assert not any(tmp_path.glob("*.json"))
