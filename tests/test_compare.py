"""`sim compare`: the table's quantiles against the input curves computed independently
(pandas), the figure, the reading imposed with --count/--level, and every refusal (exit 2,
one line per problem, nothing written). Synthetic run folders with known values keep it fast;
one real `sim run` checks the command reads what the run writer writes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import base_raw

from sim.analysis.compare import CompareError, compare
from sim.cli.main import main
from sim.scenario import LEVELS

PNG = b"\x89PNG\r\n\x1a\n"
COLUMNS = ["run", "scenario", "engine", "reading", "date", "p05", "p50", "p95", "target_firms",
           "deadline"]


def month_ends(first: dt.date, months: int) -> list[dt.date]:
    """`months` month ends from the month of `first`."""
    out, year, month = [], first.year, first.month
    for _ in range(months):
        nxt = dt.date(year + month // 12, month % 12 + 1, 1)
        out.append(nxt - dt.timedelta(days=1))
        year, month = nxt.year, nxt.month
    return out


def fake_run(folder: Path, *, seed: int, count: str = "new", level: str = "line",
             firms: int = 5_000, deadline: str = "2027-12-31", replications: int = 7,
             months: int = 36, upgraded: bool = False, engine: str = "tau") -> pd.DataFrame:
    """A run folder with random, growing curves (summary.json, curves.csv); returns the curves."""
    rng = np.random.default_rng(seed)
    dates = month_ends(dt.date(2026, 1, 1), months)
    initial = np.array([4_000, 2_000, 300, 20])
    rows = []
    for rep in range(replications):
        new = np.cumsum(rng.integers(0, 400, size=(months, len(LEVELS))), axis=0)
        for m, date in enumerate(dates):
            for k, lv in enumerate(LEVELS):
                row = {"replication": rep, "date": date.isoformat(), "level": lv,
                       "at_or_above": int(initial[k] + new[m, k]),
                       "new_since_start": int(new[m, k])}
                if upgraded:
                    row["upgraded"] = int(new[m, k] + rng.integers(0, 50))
                rows.append(row)
    curves = pd.DataFrame(rows)
    folder.mkdir(parents=True)
    curves.to_csv(folder / "curves.csv", index=False)
    (folder / "summary.json").write_text(json.dumps({
        "scenario": f"scenario-{folder.name}", "engine": engine, "replications": replications,
        "target": {"firms": firms, "level": level, "deadline": deadline, "count": count},
        "verdict": "synthetic"}), encoding="utf-8")
    return curves


def expected(curves: pd.DataFrame, column: str, level: str) -> pd.DataFrame:
    """5/50/95% over replications per date, by pandas (linear interpolation, as numpy)."""
    at = curves[curves.level == level].groupby("date")[column]
    return pd.DataFrame({"p05": at.quantile(0.05), "p50": at.quantile(0.5),
                         "p95": at.quantile(0.95)})


def run_compare(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["compare", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_table_holds_the_quantiles_of_each_runs_counted_curve(tmp_path, capsys):
    a = fake_run(tmp_path / "alpha", seed=1, count="new", level="line", firms=5_000)
    b = fake_run(tmp_path / "beta", seed=2, count="stock", level="device", firms=9_000,
                 deadline="2027-06-15", replications=5)
    out = tmp_path / "out"
    code, stdout, stderr = run_compare(capsys, str(tmp_path / "alpha"), str(tmp_path / "beta"),
                                       "--out", str(out))
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["compare.csv", "compare.png"]
    table = pd.read_csv(out / "compare.csv")
    assert list(table.columns) == COLUMNS
    assert len(table) == 2 * 36
    for name, curves, column, level, firms, deadline in [
            ("alpha", a, "new_since_start", "line", 5_000, "2027-12-31"),
            ("beta", b, "at_or_above", "device", 9_000, "2027-06-15")]:
        got = table[table.run == name].set_index("date")
        want = expected(curves, column, level)
        assert list(got.index) == list(want.index)
        np.testing.assert_allclose(got[["p05", "p50", "p95"]], want, atol=1e-3)
        assert set(got.reading) == {f"{'new' if name == 'alpha' else 'stock'} >= {level}"}
        assert set(got.target_firms) == {firms} and set(got.deadline) == {deadline}
        assert set(got.scenario) == {f"scenario-{name}"} and set(got.engine) == {"tau"}
    # One line per run: the mean at the last month end on or before the deadline, and the gap.
    lines = stdout.splitlines()
    assert len(lines) == 2
    for line, curves, column, level, firms, date in [
            (lines[0], a, "new_since_start", "line", 5_000, "2027-12-31"),
            (lines[1], b, "at_or_above", "device", 9_000, "2027-05-31")]:
        mean = curves[(curves.level == level) & (curves.date == date)][column].mean()
        gap = round(mean - firms)
        assert f"{mean:,.0f} at {date}" in line
        assert line.endswith(f"{-gap:,} short of {firms:,}" if gap < 0
                             else f"{gap:,} above {firms:,}")
    png = (out / "compare.png").read_bytes()
    assert png[:8] == PNG and len(png) > 10_000


def test_count_and_level_impose_one_reading_on_every_run(tmp_path, capsys):
    a = fake_run(tmp_path / "alpha", seed=3, count="new", level="line", upgraded=True)
    b = fake_run(tmp_path / "beta", seed=4, count="stock", level="device", upgraded=True)
    out = tmp_path / "out"
    code, stdout, _ = run_compare(capsys, str(tmp_path / "alpha"), str(tmp_path / "beta"),
                                  "--count", "upgraded", "--level", "factory",
                                  "--out", str(out))
    assert code == 0
    table = pd.read_csv(out / "compare.csv")
    assert set(table.reading) == {"upgraded >= factory"}
    for name, curves in [("alpha", a), ("beta", b)]:
        got = table[table.run == name].set_index("date")[["p05", "p50", "p95"]]
        np.testing.assert_allclose(got, expected(curves, "upgraded", "factory"), atol=1e-3)
    assert all("upgraded >= factory" in line for line in stdout.splitlines())
    # A margin against a target that counts another thing says so ("5,483 above 120" read
    # as if 120 were set for the imposed reading).
    assert stdout.splitlines()[0].endswith(" 5,000 (the target's number for new >= line)")
    assert stdout.splitlines()[1].endswith(" 5,000 (the target's number for stock >= device)")
    # --level alone keeps each run's own count.
    code, _, _ = run_compare(capsys, str(tmp_path / "alpha"), str(tmp_path / "beta"),
                             "--level", "ecosystem", "--out", str(out))
    assert code == 0
    table = pd.read_csv(out / "compare.csv")
    assert set(table[table.run == "alpha"].reading) == {"new >= ecosystem"}
    assert set(table[table.run == "beta"].reading) == {"stock >= ecosystem"}


def test_a_real_run_reads_back_as_its_summary_says(tmp_path, write_scenario, capsys):
    path = write_scenario(base_raw())
    run = tmp_path / "unit"
    assert main(["run", str(path), "--engine", "tau", "--replications", "3", "--jobs", "1",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    (curve,) = compare([run])
    summary = json.loads((run / "summary.json").read_text())
    assert curve.reading == "new >= line" and curve.replications == 3
    assert curve.at_deadline == pytest.approx(summary["count_at_deadline"]["mean"])
    code, stdout, _ = run_compare(capsys, str(run), "--out", str(tmp_path / "out"))
    assert code == 0 and stdout.startswith("unit (tau)  new >= line")


def test_a_deadline_between_month_ends_is_read_where_the_run_counted_it(tmp_path,
                                                                       write_scenario, capsys):
    """Deadline 15 December: compare reads the count at the deadline, as `sim run` took it,
    and says so; every reading it can impose too. (It read the month end before and dated
    it there, so its 'short of' could contradict the run's verdict.)"""
    raw = base_raw()
    raw["target"]["deadline"] = dt.date(2027, 12, 15)
    run = tmp_path / "mid"
    assert main(["run", str(write_scenario(raw)), "--engine", "tau", "--replications", "4",
                 "--jobs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    summary = json.loads((run / "summary.json").read_text())
    (curve,) = compare([run])
    assert curve.at_deadline == pytest.approx(summary["count_at_deadline"]["mean"])
    assert curve.at_deadline_date == dt.date(2027, 12, 15)
    for count in ("stock", "upgraded"):
        (other,) = compare([run], count=count, level="device")
        taken = summary["readings"][count]["device"]
        assert (other.at_deadline, other.deadline_band) == (taken["mean"], (taken["p05"],
                                                                             taken["p95"]))
    code, stdout, _ = run_compare(capsys, str(run), "--out", str(tmp_path / "out"))
    assert code == 0 and "at 2027-12-15;" in stdout


def test_the_out_folder_among_the_inputs_is_left_out(tmp_path, capsys):
    fake_run(tmp_path / "runs" / "alpha", seed=5)
    out = tmp_path / "runs" / "out"
    assert run_compare(capsys, str(tmp_path / "runs" / "alpha"), "--out", str(out))[0] == 0
    code, stdout, stderr = run_compare(capsys, *sorted(str(p) for p in (tmp_path / "runs")
                                                      .iterdir()), "--out", str(out))
    assert code == 0 and len(stdout.splitlines()) == 1
    assert "left out" in stderr


def _no_summary(tmp: Path) -> list[str]:
    (tmp / "empty").mkdir()
    return [str(tmp / "empty")]


def _no_column(tmp: Path) -> list[str]:
    fake_run(tmp / "old", seed=6, count="upgraded")  # a target reading its curves lack
    return [str(tmp / "old")]


def _not_json(tmp: Path) -> list[str]:
    fake_run(tmp / "torn", seed=7)
    (tmp / "torn" / "summary.json").write_text("{", encoding="utf-8")
    return [str(tmp / "torn")]


def _not_a_number(tmp: Path) -> list[str]:
    curves = fake_run(tmp / "bad", seed=9)
    curves["new_since_start"] = curves["new_since_start"].astype(object)
    curves.loc[5, "new_since_start"] = "lots"  # row 5 is at level line, on line 7
    curves.to_csv(tmp / "bad" / "curves.csv", index=False)
    return [str(tmp / "bad")]


def _cut_short(tmp: Path) -> list[str]:
    fake_run(tmp / "cut", seed=11)  # 7 replications; the copy stopped inside the first
    text = (tmp / "cut" / "curves.csv").read_text(encoding="utf-8")
    (tmp / "cut" / "curves.csv").write_text(text[:text.index("\n1,")], encoding="utf-8")
    return [str(tmp / "cut")]


def _cut_before_the_deadline(tmp: Path) -> list[str]:
    fake_run(tmp / "one", seed=12, replications=1)  # deadline 2027-12-31, 36 months
    lines = (tmp / "one" / "curves.csv").read_text(encoding="utf-8").splitlines()
    (tmp / "one" / "curves.csv").write_text("\n".join(lines[:1 + 12 * 4]), encoding="utf-8")
    return [str(tmp / "one")]


def _damaged_readings(tmp: Path) -> list[str]:
    fake_run(tmp / "odd", seed=13)
    doc = json.loads((tmp / "odd" / "summary.json").read_text(encoding="utf-8"))
    doc.update(readings_date="2027-12-31", readings={"new": {"line": {"mean": "many"}}})
    (tmp / "odd" / "summary.json").write_text(json.dumps(doc), encoding="utf-8")
    return [str(tmp / "odd")]


def _a_comparison(tmp: Path) -> list[str]:
    fake_run(tmp / "alpha", seed=10)
    assert main(["compare", str(tmp / "alpha"), "--out", str(tmp / "earlier")]) == 0
    return [str(tmp / "alpha"), str(tmp / "earlier")]


@pytest.mark.parametrize("build, args, says", [
    (lambda tmp: [str(tmp / "nowhere")], [], "no such folder"),
    (_no_summary, [], "not a finished run folder (no summary.json or curves.csv"),
    (_no_column, [], "no column 'upgraded', which the upgraded >= line reading needs"),
    (_not_json, [], "cannot read it as JSON"),
    (_not_a_number, [], "line 7: column 'new_since_start': 'lots' is not a number"),
    (_a_comparison, [], "the output of `sim compare`, not a run folder"),
    (_damaged_readings, [], "readings.new.line is not a mean with its 5% and 95%"),
    (_cut_short, [], "1 replication(s), where summary.json counts 7: the file is incomplete"),
    (_cut_before_the_deadline, [], "ends at 2026-12-31, before the month end 2027-12-31"),
    (lambda tmp: [str(tmp / "nowhere")], ["--count", "all"], "--count: invalid choice"),
    (lambda tmp: [str(tmp / "nowhere")], ["--level", "plant"], "--level: invalid choice"),
])
def test_refusals_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, build, args, says):
    folders = build(tmp_path)
    capsys.readouterr()
    out = tmp_path / "out"
    code, stdout, stderr = run_compare(capsys, *folders, *args, "--out", str(out))
    assert code == 2
    assert stdout == ""
    assert len(stderr.splitlines()) == 1 and says in stderr, stderr
    assert not out.exists()


def test_every_bad_folder_is_reported_at_once(tmp_path, capsys):
    fake_run(tmp_path / "good", seed=8)
    code, _, stderr = run_compare(capsys, str(tmp_path / "a"), str(tmp_path / "good"),
                                  str(tmp_path / "b"), "--out", str(tmp_path / "out"))
    assert code == 2
    assert stderr.splitlines() == [f"{tmp_path / 'a'}: no such folder",
                                   f"{tmp_path / 'b'}: no such folder"]
    with pytest.raises(CompareError, match="--count 'all'"):
        compare([tmp_path / "good"], count="all")
