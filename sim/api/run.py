"""`sim run`: a scenario's replications, their verdict and summary; write and redraw the
run's folder."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim import __version__
from sim.analysis.verdict import (
    READING_WORDS,
    Verdict,
    population_fields,
    readings_at,
    region_fields,
    summary_fields,
    verdict,
    verdict_line,
)
from sim.engines import DETERMINISTIC, RunResult
from sim.execution.executor import Executor
from sim.execution.pool import default_jobs
from sim.execution.runner import run_replications
from sim.scenario import LEVELS, Scenario
from sim.store import files

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

from sim.api import options
from sim.api.common import InputError, Progress, check_engine, redrawing, warn_of

REGIONS_PNG = "regions.png"
REGION_FILES = (files.REGIONS_CSV, REGIONS_PNG)
"""What a run with regions writes beside the usual files (a user's of these names stay)."""


@dataclass
class RunOutcome:
    """A finished run: its results by replication, the verdict and the summary.json content."""

    scenario: Scenario
    engine: str
    results: dict[int, RunResult]
    verdict: Verdict
    line: str
    summary: dict[str, Any]
    elapsed: float
    workers: int
    _figure: Figure | None = field(default=None, repr=False)
    _regions_figure: Figure | None = field(default=None, repr=False)

    def figure(self) -> Figure:
        """adoption.png's figure (drawn once, on first call)."""
        if self._figure is None:
            import numpy as np

            from sim.plots.adoption import run_figure

            reps = [self.results[i] for i in sorted(self.results)]
            self._figure = run_figure(self.scenario, np.stack([r.at_or_above for r in reps]),
                                      reps[0].initial, self.line,
                                      np.stack([r.upgraded for r in reps]),
                                      np.stack([r.at_or_above - r.base() for r in reps]))
        return self._figure

    def regions_figure(self) -> Figure:
        """regions.png's figure: the counted firms by region against their quotas, and the
        count at the deadline by region (drawn once, on first call)."""
        if self._regions_figure is None:
            from sim.plots.regions import run_regions_figure

            counted, start = regional_counted(self.scenario, self.results)
            self._regions_figure = run_regions_figure(
                self.scenario, counted, start, self.summary["by_region"],
                reading_words(self.scenario), self.line)
        return self._regions_figure

    @property
    def regions(self) -> pd.DataFrame:
        """regions.csv as a long DataFrame: curves' columns with `region` after the date,
        one row per replication, month end, region and level (one region, `national`, when
        the scenario declares none, for which no regions.csv is written)."""
        from sim.api.notebook import regions_frame

        return regions_frame(self.scenario, self.results)

    @property
    def curves(self) -> pd.DataFrame:
        """curves.csv as a long DataFrame: replication, date (datetime64), level and each
        reading of the count (at_or_above, new_since_start, upgraded), the file's values."""
        from sim.api.notebook import curves_frame

        return curves_frame(self.scenario, self.results)

    def write(self, out: str | Path | None = None) -> Path:
        """Publish the run's folder (`write`): by default in `results/<name>/`, or in
        `results/<name>-<hash>/` when the scenario differs from its file."""
        return write(self, out)


def run(scenario: Scenario, *, engine: str = "des", jobs: int | None = None,
        executor: Executor | None = None, progress: Progress | None = None) -> RunOutcome:
    """The scenario's replications (one for a deterministic engine) on `executor` or `jobs`
    local processes (default: all cores), and their verdict."""
    jobs = options.jobs(jobs)
    check_engine(engine, scenario)
    warn_of(scenario, engine)
    indices = [0] if engine in DETERMINISTIC else list(range(scenario.replications))
    workers = executor.workers if executor is not None else jobs or default_jobs()
    started = time.perf_counter()
    done = [0]

    def on_result(_i: int, _res: RunResult) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], len(indices))

    results = run_replications(scenario, indices, seed=scenario.seed, engine=engine,
                               jobs=workers, on_result=on_result, executor=executor)
    return outcome_of(scenario, engine, results, time.perf_counter() - started, workers)


def outcome_of(scenario: Scenario, engine: str, results: dict[int, RunResult],
               elapsed: float = 0.0, workers: int = 1) -> RunOutcome:
    """The RunOutcome of replications already run: their verdict, its line and summary."""
    first = results[min(results)]
    stock = scenario.target.count == "stock"
    start = first.initial[scenario.target.level_index - 1] if stock else 0
    v = verdict(scenario, [r.count_at_deadline for r in results.values()],
                [r.crossing_time for r in results.values()],
                deterministic=engine in DETERMINISTIC, start_count=float(start))
    line = verdict_line(scenario, v)
    return RunOutcome(scenario, engine, results, v, line,
                      _summary(scenario, engine, results, v, line, elapsed), elapsed, workers)


def _summary(sc: Scenario, engine: str, results: Mapping[int, RunResult], v: Verdict,
             line: str, elapsed: float) -> dict[str, Any]:
    first = results[min(results)]
    events = [r.events.get("events", 0) for r in results.values()]
    return {
        "scenario": sc.name,
        "scenario_sha256": files.scenario_sha256(sc),
        "version": __version__,
        "engine": engine,
        "seed": sc.seed,
        "replications": len(results),
        "target": target_fields(sc),
        **summary_fields(v),
        "elapsed_s": round(elapsed, 3),
        "verdict": line,
        "initial_at_or_above": dict(zip(LEVELS, (int(x) for x in first.initial), strict=True)),
        "events_per_replication": sum(events) / len(events) if events else 0,
        "subsidy_spent_mean": {p.name: sum(r.spent[j] for r in results.values()) / len(results)
                               for j, p in enumerate(sc.policies)},
        "readings": readings_at(sc, results, sc.target.deadline),
        "readings_date": sc.target.deadline.isoformat(),  # (taken at it, month end or not)
        "by_region": region_fields(sc, results),
        "population": population_fields(sc, results),
    }


def regional_counted(sc: Scenario, results: Mapping[int, RunResult]) -> tuple[Any, Any]:
    """The target's reading at its level by region: (replications, months, regions) at the
    month ends, and its value at the start, (regions,) zeros or, for the stock reading,
    (replications, regions)."""
    import numpy as np

    k = sc.target.level_index - 1
    parts = [results[i].regional() for i in sorted(results)]
    stock = np.stack([p[0][:, :, k] for p in parts]).astype(float)
    initial = np.stack([p[2][:, k] for p in parts]).astype(float)
    if sc.target.count == "upgraded":
        return np.stack([p[1][:, :, k] for p in parts]).astype(float), np.zeros(stock.shape[2])
    if sc.target.count == "new":
        base = np.stack([results[i].region_base()[:, :, k] for i in sorted(results)])
        return stock - base, np.zeros(stock.shape[2])
    return stock, initial


def reading_words(sc: Scenario) -> str:
    """The target's reading in words, e.g. "new firms at >= line"."""
    return READING_WORDS[sc.target.count].format(sc.target.level)


def target_fields(sc: Scenario) -> dict[str, Any]:
    """The target as summary.json and solve.json state it."""
    t = sc.target
    return {"firms": t.firms, "level": t.level, "deadline": t.deadline.isoformat(),
            "count": t.count}


def write(outcome: RunOutcome, out: str | Path | None = None) -> Path:
    """Publish the run's folder as a whole: killed at any moment, it holds the previous
    complete results or none. By default `results/<name>/`, or `results/<name>-<hash>/` when
    the scenario differs from its file (`notebook.run_folder`); replaces a run there, never
    another command's results (InputError). Returns the folder."""
    from sim.api.notebook import run_folder
    from sim.plots.adoption import png
    from sim.store.report import read_text, report_file, run_report

    folder = options.out_folder(out if out is not None else run_folder(outcome.scenario), "run",
                                REGION_FILES if outcome.scenario.regions else ())
    figures: list[tuple[str, Any]] = [("adoption.png", png(outcome.figure()))]  # + report: str
    sc = outcome.scenario  # report.html goes in the same set: never beside other results
    if sc.regions:
        figures.append((REGIONS_PNG, png(outcome.regions_figure())))
    report = report_file(run_report, outcome.summary, sc.raw, figures, source=sc.source,
                         source_text=read_text(sc.source))
    files.write_run(folder, sc, outcome.results, outcome.summary, figures + report)
    return folder


def redraw_run(folder: str | Path) -> list[Path]:
    """Draw a finished run's adoption.png (and regions.png, when it has regions) and
    report.html again from its files. A file that cannot be read is InputError before any
    figure is rewritten (a summary that reads but holds values of the wrong kind may still
    leave report.html unwritten, with a warning, as `sim run` would)."""
    folder = Path(folder)
    with redrawing(folder):
        return _redraw_run(folder)


def _redraw_run(folder: Path) -> list[Path]:
    import json

    import numpy as np

    from sim.plots.adoption import png, run_figure
    from sim.scenario import read_toml, validate
    from sim.store.report import read_text, run_report, write_report

    needed = [folder / "summary.json", folder / "curves.csv", folder / "scenario.toml"]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise InputError(*(f"{m}: missing (is {folder} a finished run?)" for m in missing),
                         options=True)
    sc = validate(read_toml(folder / "scenario.toml"), source=str(folder / "scenario.toml"))
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    _dates, arrays = files.read_run_curves(folder / "curves.csv")
    curves = np.stack([arrays[i] for i in sorted(arrays)])
    upgraded = None
    if sc.target.count == "upgraded":
        try:
            _dates, up = files.read_run_curves(folder / "curves.csv", "upgraded")
        except KeyError:
            raise InputError(f"{folder / 'curves.csv'}: no 'upgraded' column, which the "
                             "target counts (written before version 0.2?)", options=True
                             ) from None
        upgraded = np.stack([up[i] for i in sorted(up)])
    new = None
    if sc.target.count == "new" and sc.exit > 0:
        _dates, nw = files.read_run_curves(folder / "curves.csv", "new_since_start")
        new = np.stack([nw[i] for i in sorted(nw)])
    initial = np.array([summary["initial_at_or_above"][lv] for lv in LEVELS])
    image = png(run_figure(sc, curves, initial, summary.get("verdict", ""), upgraded, new))
    figures = [("adoption.png", image)]
    if sc.regions and (folder / files.REGIONS_CSV).is_file() and summary.get("by_region"):
        figures.append((REGIONS_PNG, png(_redrawn_regions(folder, sc, summary))))
    for name, data in figures:  # (all drawn first: a damaged file stops the redraw before)
        files.atomic_write(folder / name, data)
    return [*(folder / name for name, _ in figures), *write_report(
        folder, run_report, summary, sc.raw, figures, source=sc.source,
        source_text=read_text(sc.source))]


def _redrawn_regions(folder: Path, sc: Scenario, summary: Mapping[str, Any]) -> Figure:
    """regions.png's figure from a run folder's regions.csv and summary.json."""
    import numpy as np

    from sim.plots.regions import run_regions_figure
    from sim.scenario import COUNT_COLUMNS

    k = sc.target.level_index - 1
    path = folder / files.REGIONS_CSV
    try:
        _dates, _names, arrays = files.read_run_regions(path, COUNT_COLUMNS[sc.target.count])
    except KeyError as exc:
        raise InputError(f"{path}: no {exc.args[0]!r} column, which the target counts",
                         options=True) from None
    counted = np.stack([arrays[i][:, :, k] for i in sorted(arrays)])
    start = np.zeros(counted.shape[2])
    if sc.target.count == "stock":
        _dates, _names, new = files.read_run_regions(path, "new_since_start")
        start = np.stack([(arrays[i] - new[i])[0, :, k] for i in sorted(arrays)])
    return run_regions_figure(sc, counted, start, summary["by_region"], reading_words(sc),
                              str(summary.get("verdict", "")))
