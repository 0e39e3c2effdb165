"""report.html in every results folder: what it says (verdict, readings, sources, tables),
that it is self-contained and escapes what users wrote, that a broken report never costs a
run its results, and that a real browser (Chromium) renders it with every figure."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, base_raw, make
from test_sweep import tiny_raw

from sim.cli.main import main
from sim.scenario import dumps, load
from sim.store.page import esc, note_for, source_notes
from sim.store.report import REPORT

PNG = b"\x89PNG\r\n\x1a\n"
DESCRIPTION = 'a <script>alert("x")</script> & "quoted" scenario'


def commented(raw: dict) -> str:
    """The scenario as TOML with source comments beside some keys, as the shipped files have."""
    text = dumps(raw)
    text = text.replace("[levels.line]\n", "[levels.line]   # closed-loop control\n", 1)
    text = text.replace("innovation = 0.03\n", "innovation = 0.03   # cf §9 (H): <published> "
                        "rate\n#   range 0.01-0.05 (assumption)\n", 1)
    return text.replace("firms = 20000\n", 'firms = 20000   # "above size" #2 count\n', 1)


def images(text: str) -> list[bytes]:
    """The PNGs embedded in a page, decoded."""
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"',
                                                    text)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """A run (fast engine, with an override), a sweep, a solve and a fit, written by `sim`."""
    tmp = tmp_path_factory.mktemp("report")
    raw = base_raw()
    raw["description"] = DESCRIPTION
    scenario = tmp / "unit.toml"
    scenario.write_text(commented(raw), encoding="utf-8")
    tiny = tmp / "tiny.toml"
    tiny.write_text(commented(tiny_raw()), encoding="utf-8")
    series = tmp / "series.csv"
    t = np.arange(1, 9)
    p, q, m = 0.02, 0.8, 30_000
    cumulative = m * (1 - np.exp(-(p + q) * t)) / (1 + q / p * np.exp(-(p + q) * t))
    series.write_text("date,cumulative\n" + "".join(
        f"{2015 + k}-12-31,{c:.1f}\n" for k, c in enumerate(cumulative)), encoding="utf-8")
    out = {name: tmp / name for name in ("run", "sweep", "solve", "fit")}
    assert main(["run", str(scenario), "--engine", "tau", "--jobs", "1", "--set",
                 "levels.device.imitation=0.45", "--out", str(out["run"])]) == 0
    assert main(["sweep", str(tiny), "--engine", "tau", "--jobs", "1",
                 "--out", str(out["sweep"])]) == 0
    assert main(["solve", str(tiny), "--vary", "levels.line.imitation=0.2:1.5", "--probability",
                 "0.5", "--replications", "4", "--max-replications", "8", "--tolerance", "0.2",
                 "--engine", "tau", "--jobs", "1", "--out", str(out["solve"])]) == 0
    assert main(["calibrate", str(series), "--level", "line", "--start", "2015-01-01",
                 "--out", str(out["fit"])]) == 0
    return out


def read(folder: Path) -> str:
    return (folder / REPORT).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# What the pages say


def test_source_notes_read_comments_beside_keys_and_below_them():
    text = ('name = "a # not a comment"  # the name\n'
            "[levels.line]   # closed loop\n"
            "innovation = 0.2   # cf §1 (H)\n"
            "#   continued here\n"
            "# a block comment, not a continuation\n"
            "#   nor this\n"
            'multiplier = { line = 1.25 }   # assumption\n'
            "[[policy]]\nname = \"first\"\nstart = 2026-01-01   # cf §2\n"
            "[[policy]]\nname = \"second\"   # the second\n")
    notes = source_notes(text)
    assert notes["name"] == ('"a # not a comment"', "the name")
    assert notes["levels.line"][1] == "closed loop"
    assert notes["levels.line.innovation"] == ("0.2", "cf §1 (H) continued here")
    assert notes["policy.0.start"][1] == "cf §2" and notes["policy.1.name"][1] == "the second"
    assert note_for(notes, "levels.line.multiplier.line") == "assumption"
    assert note_for(notes, "levels.line.imitation") == "closed loop"
    assert note_for({}, "x.y") == ""


def test_run_report_says_the_verdict_readings_and_sources(folders):
    folder = folders["run"]
    text = read(folder)
    summary = json.loads((folder / "summary.json").read_text())
    assert html.escape(summary["verdict"]) in text
    assert "Every reading of the target" in text
    mean = summary["readings"]["new"]["line"]["mean"]
    assert re.search(rf'<td class="own num">{mean:,.0f} <small>', text), "own reading marked"
    # The sources come from the original file, and an override is said to be one.
    assert "cf §9 (H): &lt;published&gt; rate range 0.01-0.05 (assumption)" in text
    assert "&quot;above size&quot; #2 count" in text
    assert "[this run: 0.45; the file has 0.4]" in text
    assert (f"sim run scenario.toml --seed {summary['seed']} --replications "
            f"{summary['replications']} --engine tau") in text
    # The figure is embedded, byte for byte; nothing is fetched from elsewhere.
    assert images(text) == [(folder / "adoption.png").read_bytes()]
    assert not re.search(r"""(src|href)=["']?(https?:|//)|<link|@import|url\(""", text)


def test_the_reports_command_runs_the_same_results_again(folders, tmp_path, monkeypatch,
                                                         capsys):
    """The report's 'run it again' command, run as written from a copy of the run's folder,
    gives the same verdict (same seed); it writes to rerun/ beside it (without --out it
    went to results/<name>/, which another run of that name may hold, and was refused)."""
    text = read(folders["run"])
    command = html.unescape(re.search(r"<pre>(sim run scenario\.toml.*?)</pre>", text,
                                      flags=re.S).group(1)).replace("\\\n", " ").split()
    copy = tmp_path / "copy"
    shutil.copytree(folders["run"], copy)
    monkeypatch.chdir(copy)
    (copy / "results" / "unit").mkdir(parents=True)  # another run of the name's folder
    (copy / "results" / "unit" / "summary.json").write_text("{}", encoding="utf-8")
    assert main([*command[1:], "--jobs", "1"]) == 0
    capsys.readouterr()
    again = json.loads((copy / "rerun" / "summary.json").read_text(encoding="utf-8"))
    first = json.loads((folders["run"] / "summary.json").read_text(encoding="utf-8"))
    assert again["verdict"] == first["verdict"]


def test_what_users_wrote_is_escaped(folders):
    text = read(folders["run"])
    assert "<script>alert" not in text
    assert html.escape(DESCRIPTION) in text
    assert text.count("<script>") == 1  # the page's own image check, harmless without it
    # Control characters HTML does not allow in text (NUL is a parse error) are not written
    # raw; tabs and line ends are text.
    assert esc("nul\x00 esc\x1b[31m\ttab\n\x85") == "nul\ufffd esc\ufffd[31m\ttab\n\ufffd"


@pytest.mark.parametrize("kind, figures, words", [
    ("sweep", 3, ["in the swept space", "What was varied", "The best points",
                  "sim sweep scenario.toml --design lhs --samples 6 --replications 3"]),
    ("solve", 1, ["Evaluations", "sim solve scenario.toml --vary levels.line.imitation=0.2:1.5",
                  "P(met) asked"]),
    ("fit", 1, ["Bass fit, line level", "Data and fit", "fragment.toml", "--start 2015-01-01"]),
])
def test_sweep_solve_and_fit_folders_have_their_report(folders, kind, figures, words):
    text = read(folders[kind])
    embedded = images(text)
    assert len(embedded) == figures and all(png.startswith(PNG) for png in embedded)
    for word in words:
        assert html.escape(word, quote=False) in text, word
    if kind != "fit":
        assert "closed-loop control" in text  # sources of the scenario's keys


def test_sweep_ranges_show_the_scenario_value_and_source(folders):
    text = read(folders["sweep"])
    row = re.search(r"<code>levels\.line\.imitation</code>.*?</tr>", text).group(0)
    assert ">0.5<" in row and "closed-loop control" in row  # the table's comment speaks for it


def test_plot_writes_the_report_again(folders, tmp_path):
    for kind in ("run", "fit", "sweep"):
        folder = tmp_path / kind
        shutil.copytree(folders[kind], folder)
        (folder / REPORT).unlink()
        assert main(["plot", str(folder)]) == 0
        assert images(read(folder))


def test_a_failing_report_costs_nothing_else(tmp_path, monkeypatch):
    import sim.store.report as report
    from sim.api.run import run, write

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(report, "run_report", broken)
    outcome = run(make({"replications": 2}), engine="tau", jobs=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        folder = write(outcome, tmp_path / "out")
    said = [str(w.message) for w in caught if "report.html" in str(w.message)]
    assert said == ["report.html not written: RuntimeError('boom')"]
    assert sorted(p.name for p in folder.iterdir()) == ["adoption.png", "curves.csv",
                                                        "scenario.toml", "summary.json"]


def test_a_scenario_without_a_file_has_no_sources():
    from sim.store.report import run_report

    text = run_report({"verdict": "v", "target": {"firms": 1}}, {"population": {"firms": 5}},
                      [], source_text=None)
    assert "the scenario file was not readable" in text and "population.firms" in text


def test_the_assumptions_show_firms_coming_and_going_and_the_regions():
    """The shipped baseline's report lists entry, exit and entry_device (which move the
    `new >= device` count by about 6,000) and its regions with their sources, and
    regional-quotas its quotas and their reviews; before, none of them was shown."""
    from sim.store.page import assumptions

    for name, keys in (("baseline", ("population.entry", "population.exit",
                                     "population.entry_device", "population.region.0.share")),
                       ("regional-quotas", ("population.region.0.quota",
                                            "population.quotas.push"))):
        path = ROOT / "scenarios" / f"{name}.toml"
        text = assumptions(load(path).raw, path.read_text(encoding="utf-8"), str(path))
        for key in keys:
            row = re.search(rf"<code>{re.escape(key)}</code></td><td>([^<]+)</td>"
                            rf'<td class="src">([^<]*)</td>', text)
            assert row and row.group(2), (name, key)  # shown, with the file's comment


def test_a_percent_reads_0_or_100_only_when_exact():
    """A share of 1 in 200 is not "0%", nor 199 in 200 "100%"."""
    from sim.store.page import percent

    assert [percent(x) for x in (0, 0.0009, 0.005, 0.012, 0.5, 0.994, 0.996, 1, 1.0)] == [
        "0%", "<1%", "<1%", "1%", "50%", "99%", ">99%", "100%", "100%"]
    assert percent(None) == percent(float("nan")) == "–"


@pytest.mark.parametrize("p, lo, hi, cls, word", [
    (0.995, 0.972, 0.999, "met", "Reached"), (1.0, 0.72, 1.0, "partial", "Likely"),
    (0.6, 0.51, 0.69, "partial", "Likely"), (0.5, 0.3, 0.7, "partial", "Uncertain"),
    (0.0, 0.0, 0.16, "partial", "Unlikely"), (0.005, 0.0009, 0.028, "miss", "Not reached"),
    (1.0, 1.0, 1.0, "met", "Reached"), (0.0, 0.0, 0.0, "miss", "Not reached"),
    (None, None, None, "", "No answer")])
def test_the_headline_judges_by_the_interval_not_the_point(p, lo, hi, cls, word):
    """"Reached" needs the 95% interval at or above 0.9, "Not reached" at or below 0.1."""
    from sim.store.page import judgement

    assert judgement(p, lo, hi) == (cls, word)


def test_run_headline_of_1_in_200_and_of_a_target_met_at_the_start():
    from sim.store.report import run_report

    target = {"firms": 8000, "level": "line", "count": "stock", "deadline": "2028-12-31"}
    summary = {"target": target, "p_met": 0.005, "replications": 200,
               "p_met_ci95": [0.00088, 0.0278], "count_at_deadline": {"mean": 7000},
               "verdict": "x; 7,000 firms; 1,000 short; 5/yr modelled vs 6/yr needed"}
    text = run_report(summary, {}, [])
    assert "<h2>Not reached: met in &lt;1% of 200 runs (95% interval &lt;1% to 3%)</h2>" in text
    start = {**summary, "p_met": 1.0, "p_met_ci95": [0.83, 1.0],
             "count_at_deadline": {"mean": 9000}, "initial_at_or_above": {"line": 8200},
             "crossing_date": {"p50": "2026-01-01", "never": 0.0},
             "verdict": "x; met at the start; 9,000 firms; 5/yr modelled vs 0/yr needed"}
    text = run_report(start, {}, [])
    assert "<h2>Likely: met in 100% of 200 runs (95% interval 83% to 100%)</h2>" in text
    assert "<b>at the start</b><span>target met</span><span>8,200 firms then</span>" in text
    assert "<span>needed: 0/yr</span>" in text and "median crossing" not in text


def test_the_sweep_headline_needs_the_best_points_own_interval():
    """The best of many noisy points, 10 of 10 runs met ([72%, 100%]), is not "Reached"."""
    from sim.store.report import sweep_report

    manifest = {"target": {"firms": 100}, "ranges": [{"key": "a", "lo": 0, "hi": 1}],
                "design": "lhs"}
    points = [{"a": "0.5", "p_met": "1.0", "p_met_lo": "0.7225", "p_met_hi": "1.0",
               "count_mean": "120", "replications": "10", "failed": "0"},
              {"a": "0.1", "p_met": "0.1", "p_met_lo": "0.018", "p_met_hi": "0.40",
               "count_mean": "80", "replications": "10", "failed": "0"}]
    text = sweep_report(manifest, points, [], [], {})
    assert "<h2>Likely in the swept space</h2>" in text and "Reached" not in text
    assert "95% interval 72% to 100%" in text


def test_the_sweep_headline_counts_every_points_support_and_exact_points():
    """A point of 1,000 runs (990 met, [98%, 99.5%]) supports "Reached" though a point of
    20 of 20 scores higher; a mean-field sweep's points are exact ([p, p], not the Wilson
    interval of one run, [21%, 100%], which made every such sweep 'Uncertain')."""
    from sim.store.report import sweep_report

    manifest = {"target": {"firms": 100}, "ranges": [{"key": "a", "lo": 0, "hi": 1}],
                "design": "lhs", "engine": "tau"}
    points = [{"a": "0.5", "p_met": "1.0", "p_met_lo": "0.839", "p_met_hi": "1.0",
               "count_mean": "120", "replications": "20", "failed": "0"},
              {"a": "0.9", "p_met": "0.99", "p_met_lo": "0.9817", "p_met_hi": "0.9946",
               "count_mean": "130", "replications": "1000", "failed": "0"}]
    assert "<h2>Reached in the swept space</h2>" in sweep_report(manifest, points, [], [], {})
    exact = [{"a": "0.5", "p_met": "1.0", "p_met_lo": "0.2065", "p_met_hi": "1.0",
              "count_mean": "120", "replications": "1", "failed": "0"}]
    text = sweep_report({**manifest, "engine": "meanfield"}, exact, [], [], {})
    assert "<h2>Reached in the swept space</h2>" in text


# ---------------------------------------------------------------------------------------------
# In a real browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    """Chromium's path; installed from Debian's packages (.ci/chromium.sh) when missing and
    this machine can (root, apt-get); else the test is skipped, saying why."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["bash", str(ROOT / ".ci" / "chromium.sh")], capture_output=True,
                       timeout=900, check=False)
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("Chromium is not installed and cannot be installed here (needs root and "
                    "apt-get): run .ci/chromium.sh")
    return found


def browse(page: Path, profile: Path, *extra: str) -> str:
    proc = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra,
                           page.resolve().as_uri()], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("kind, figures", [("run", 1), ("sweep", 3), ("solve", 1), ("fit", 1)])
def test_chromium_renders_every_figure(folders, tmp_path, kind, figures):
    dom = browse(folders[kind] / REPORT, tmp_path / "profile", "--dump-dom")
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert f'data-images-loaded="{figures}"' in body, body
    assert "<h1>" in dom and "verdict" in dom
    if kind == "run":
        summary = json.loads((folders["run"] / "summary.json").read_text())
        assert html.escape(summary["verdict"]) in dom


@pytest.mark.slow
def test_chromium_screenshot_is_not_blank(folders, tmp_path):
    import matplotlib.image as mpimg

    shot = tmp_path / "shot.png"
    browse(folders["run"] / REPORT, tmp_path / "profile", f"--screenshot={shot}",
           "--window-size=1200,2000")
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    colours = np.unique((pixels.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 50, "a blank or nearly blank page"
    # The figure (blue curves) and the verdict box (tinted) are on screen.
    assert pixels.std() > 0.05
