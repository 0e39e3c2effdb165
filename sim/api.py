"""The use cases, callable from Python without the CLI: run a scenario, sweep a design over
it, solve for a parameter value, write and redraw their results folders.

    import sim
    outcome = sim.run(sim.load("scenarios/baseline.toml"), engine="tau", jobs=2)
    print(outcome.line)
    sim.write(outcome, "results/baseline")

Bad input raises `InputError` (one line per problem) or `ScenarioError`; the CLI maps them
to exit status 2. Ctrl-C raises KeyboardInterrupt with nothing half-written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim import __version__
from sim.analysis.verdict import (
    Verdict,
    point_stats,
    readings_at,
    summary_fields,
    verdict,
    verdict_line,
)
from sim.engines import DETERMINISTIC, RunResult, engines, refusal
from sim.execution.executor import Executor, make_executor
from sim.execution.pool import default_jobs
from sim.execution.runner import run_replications
from sim.explore.design import (
    MAX_POINTS,
    MAX_RUNS,
    Range,
    SweepError,
    check_points,
    design_size,
    make_design,
    parse_vary,
    resolve_ranges,
)
from sim.explore.plan import SweepPlan, run_sweep
from sim.explore.solve import SolveResult
from sim.scenario import LEVELS, Scenario, load
from sim.store import files
from sim.store.journal import FolderError, FolderLock, Journal, check_manifest

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["InputError", "RunOutcome", "SolveOutcome", "SweepOutcome", "check_engine",
           "executor_for", "is_sweep_folder", "kept_runs", "load", "redraw_run", "redraw_sweep",
           "run", "solve", "solve_range", "sweep", "sweep_plan", "write", "write_solve"]

Progress = Callable[[int, "int | None"], None]
"""Called with (runs done, runs in all, None while unknown) as work returns."""


class InputError(ValueError):
    """Input that cannot be run as given, one line per problem. `options` says that the
    lines are about the command's options (the CLI puts the command's name before them)."""

    def __init__(self, *lines: str, options: bool = False):
        self.lines = list(lines)
        self.options = options
        super().__init__("\n".join(lines))


def check_engine(engine: str, scenario: Scenario | None = None) -> None:
    """Raise InputError unless `engine` names one of `engines()` and, given a scenario, can
    run it (the exact engine refuses a population it could not finish)."""
    if engine not in engines():
        raise InputError(f"--engine {engine!r}: must be one of {', '.join(engines())}",
                         options=True)
    why = None if scenario is None else refusal(scenario, engine)
    if why:
        raise InputError(why)


def executor_for(jobs: int | None = None, scheduler: str | None = None) -> Executor:
    """`make_executor` with its failures said as InputError."""
    try:
        return make_executor(jobs, scheduler)
    except ImportError:
        raise InputError("--scheduler needs Dask: pip install 'sim[dask]'",
                         options=True) from None
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"--scheduler {scheduler}: cannot reach the scheduler ({exc})",
                         options=True) from None


# ---------------------------------------------------------------------------------------------
# sim run


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

    def figure(self) -> Figure:
        """adoption.png's figure (drawn once, on first call)."""
        if self._figure is None:
            import numpy as np

            from sim.plots.adoption import run_figure

            reps = [self.results[i] for i in sorted(self.results)]
            self._figure = run_figure(self.scenario, np.stack([r.at_or_above for r in reps]),
                                      reps[0].initial, self.line,
                                      np.stack([r.upgraded for r in reps]))
        return self._figure


def run(scenario: Scenario, *, engine: str = "des", jobs: int | None = None,
        executor: Executor | None = None, progress: Progress | None = None) -> RunOutcome:
    """The scenario's replications (one for a deterministic engine) on `executor` or `jobs`
    local processes (default: all cores), and their verdict."""
    check_engine(engine, scenario)
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
    elapsed = time.perf_counter() - started
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
        "target": _target(sc),
        **summary_fields(v),
        "elapsed_s": round(elapsed, 3),
        "verdict": line,
        "initial_at_or_above": dict(zip(LEVELS, (int(x) for x in first.initial), strict=True)),
        "events_per_replication": sum(events) / len(events) if events else 0,
        "subsidy_spent_mean": {p.name: sum(r.spent[j] for r in results.values()) / len(results)
                               for j, p in enumerate(sc.policies)},
        "readings": readings_at(sc, results, sc.target.deadline),
    }


def _target(sc: Scenario) -> dict[str, Any]:
    t = sc.target
    return {"firms": t.firms, "level": t.level, "deadline": t.deadline.isoformat(),
            "count": t.count}


def write(outcome: RunOutcome, out: str | Path | None = None) -> Path:
    """Publish the run's folder (default results/<name>/) as a whole: killed at any moment,
    it holds the previous complete results or none. Returns the folder."""
    from sim.plots.adoption import png

    folder = Path(out) if out is not None else files.default_out(outcome.scenario)
    files.write_run(folder, outcome.scenario, outcome.results, outcome.summary,
                    [("adoption.png", png(outcome.figure()))])
    return folder


def redraw_run(folder: Path) -> list[Path]:
    """Draw a finished run's adoption.png again from its files."""
    import json

    import numpy as np

    from sim.plots.adoption import png, run_figure
    from sim.scenario import read_toml, validate

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
    initial = np.array([summary["initial_at_or_above"][lv] for lv in LEVELS])
    files.atomic_write(folder / "adoption.png", png(run_figure(
        sc, curves, initial, summary.get("verdict", ""), upgraded)))
    return [folder / "adoption.png"]


# ---------------------------------------------------------------------------------------------
# sim sweep


@dataclass
class SweepOutcome:
    """A finished sweep: its rows by (point, replication), in `out`, and its one-line answer."""

    plan: SweepPlan
    out: Path
    rows: dict[tuple[int, int], dict[str, Any]]
    line: str
    elapsed: float
    workers: int


def sweep_plan(scenario: Scenario, *, vary: Sequence[str] = (), design: str | None = None,
               samples: int | None = None, replications: int | None = None,
               engine: str = "des", precision: float | None = None,
               max_replications: int = 1000, axes: Sequence[str] | None = None) -> SweepPlan:
    """The sweep asked for: `vary` as `KEY=LO:HI[:log]` (default: the [sweep] table), its
    design, every point validated, `axes` (two varied keys) for its map; raises InputError
    when it cannot run."""
    check_engine(engine)
    cfg, source = scenario.sweep, scenario.source
    try:
        if vary:
            ranges_asked = [parse_vary(v) for v in vary]
        elif cfg is not None and cfg.vary:
            ranges_asked = [(k, lo, hi, k in cfg.log) for k, lo, hi in cfg.vary]
        else:
            raise InputError(f"{source}: nothing to vary: give --vary K=LO:HI or a "
                             "[sweep.vary] table", options=True)
        if cfg is not None and not vary:
            unknown = [k for k in cfg.log if k not in {v[0] for v in ranges_asked}]
            if unknown:
                raise InputError(*(f"{source}: sweep.log: {k!r} is not a key of [sweep.vary]"
                                   for k in unknown))
        ranges = resolve_ranges(scenario.raw, ranges_asked, source=source)
        design_name = design or (cfg.design if cfg else "lhs")
        samples = samples or (cfg.samples if cfg else 64)
        replications = replications or (cfg.replications if cfg else 50)
        points = design_size(design_name, len(ranges), samples)
        per_point = (1 if engine in DETERMINISTIC else
                     max(max_replications, replications) if precision else replications)
        if points > MAX_POINTS or points * per_point > MAX_RUNS:
            raise InputError(f"{points:,} points x up to {per_point:,} replications = "
                             f"{points * per_point:,} runs: more than the limits of "
                             f"{MAX_POINTS:,} points and {MAX_RUNS:,} runs; use fewer samples "
                             "or replications", options=True)
        made = make_design(design_name, ranges, samples, scenario.seed)
        plan = SweepPlan(scenario, made, engine, replications, samples, precision,
                         max(max_replications, replications), tuple(axes) if axes else None)
        check_points(scenario.raw, made, source)
    except InputError:
        raise
    except ValueError as exc:  # lines about --vary are about options; those about points not
        lines = exc.lines if isinstance(exc, SweepError) else [str(exc)]
        raise InputError(*lines, options=all(ln.startswith("--") for ln in lines)) from None
    return plan


def sweep(plan: SweepPlan, out: str | Path | None = None, *, executor: Executor | None = None,
          jobs: int | None = None, progress: Progress | None = None) -> SweepOutcome:
    """Do the plan's runs not yet in `out` (default results/<name>-sweep/), then write its
    tables and figures. Resumes an interrupted sweep; refuses a folder held by a live sweep
    or holding a different one (InputError)."""
    folder = Path(out) if out is not None else files.default_out(plan.scenario, "-sweep")
    own = executor is None
    executor = executor if executor is not None else executor_for(jobs)
    try:
        return _sweep_into(plan, folder, executor, progress)
    finally:
        if own:
            executor.close()


def _sweep_into(plan: SweepPlan, out: Path, executor: Executor, progress: Progress | None
                ) -> SweepOutcome:
    identity = plan.identity(__version__, files.scenario_sha256(plan.scenario))
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with FolderLock(out):
            check_manifest(out / "manifest.json", identity)
            files.write_json(out / "manifest.json", {**identity, "status": "running"})
            files.atomic_write(out / "scenario.toml", files.scenario_text(plan.scenario))
            rows = run_sweep(plan, out, executor, on_progress=progress or (lambda d, t: None))
            stats = _write_tables(plan, out, rows)
            redraw_sweep(out, plan.axes)
            elapsed = time.perf_counter() - started
            failed = sum(1 for r in rows.values() if r.get("error") is not None)
            asked = {"axes": list(plan.axes)} if plan.axes else {}  # `sim plot` redraws them
            files.write_json(out / "manifest.json", {**identity, "status": "finished",
                                                     "runs": len(rows), "failed": failed,
                                                     "elapsed_s": round(elapsed, 3), **asked})
    except FolderError as exc:
        raise InputError(*exc.lines) from None
    return SweepOutcome(plan, out, rows, _sweep_line(plan, stats, rows), elapsed,
                        executor.workers)


def kept_runs(out: Path) -> int:
    """Finished runs journalled in a sweep folder (what an interrupted sweep keeps)."""
    return len(Journal(out / "runs.jsonl").read())


def is_sweep_folder(folder: Path) -> bool:
    """True when `folder` holds a sweep's results (its manifest)."""
    return (folder / "manifest.json").is_file()


def _write_tables(plan: SweepPlan, out: Path, rows: Mapping[tuple[int, int], Any]
                  ) -> list[dict[str, Any]]:
    from sim.store.sweep_tables import point_curves, points_csv, runs_csv, sweep_curves_csv

    design = plan.design
    by_point: dict[int, list] = {j: [] for j in range(len(design.points))}
    for (j, _r), row in rows.items():
        by_point[j].append(row)
    stats = [point_stats(by_point[j]) for j in range(len(design.points))]
    dates = [d.isoformat() for d in plan.scenario.month_ends()]
    files.atomic_write(out / "runs.csv", runs_csv(design, rows))
    files.atomic_write(out / "points.csv", points_csv(design, stats))
    files.atomic_write(out / "curves.csv", sweep_curves_csv(dates, point_curves(rows)))
    _write_sensitivity(plan, out, stats)
    return stats


def _write_sensitivity(plan: SweepPlan, out: Path, stats: list[dict[str, Any]]) -> None:
    from sim.explore.sensitivity import sweep_indices
    from sim.store.sweep_tables import sensitivity_csv

    files.atomic_write(out / "sensitivity.csv", sensitivity_csv(
        (ix.output, ix.parameter, ix.index, ix.estimate, ix.lo, ix.hi)
        for ix in sweep_indices(plan, stats)))


def _sweep_line(plan: SweepPlan, stats: Sequence[Mapping[str, Any]],
                rows: Mapping[tuple[int, int], Mapping[str, Any]]) -> str:
    """One line: how much of the swept space meets the target, and the best point."""
    import numpy as np

    p = np.array([s["p_met"] for s in stats], dtype=float)
    ok = np.isfinite(p)
    failed = sum(1 for r in rows.values() if r.get("error") is not None)
    t = plan.scenario.target
    head = (f"target {t.firms:,} firms at >= {t.level} ({t.count}) by {t.deadline}: "
            f"{len(stats)} {plan.design.name} points")
    if not ok.any():
        return f"{head}: every run failed"
    counts = np.array([s["count_mean"] for s in stats], dtype=float)
    # The best point: highest P(met), then the highest mean count (P is often 0 everywhere).
    best = max(np.flatnonzero(ok), key=lambda j: (p[j], np.nan_to_num(counts[j], nan=-1)))
    where = ", ".join(f"{k}={v:g}" for k, v in zip(plan.design.keys, plan.design.points[best],
                                                  strict=True))
    line = (f"{head}: P(met) >= 0.9 at {int(np.sum(p[ok] >= 0.9))}, >= 0.5 at "
            f"{int(np.sum(p[ok] >= 0.5))}; best {p[best]:.0%} (mean count {counts[best]:,.0f}) "
            f"at {where}")
    if failed:
        line += f"; {failed} runs failed (see the error column of runs.csv)"
    return line


def redraw_sweep(folder: Path, axes: Sequence[str] | None = None) -> list[Path]:
    """Draw a sweep folder's figures from its manifest and tables, the map over `axes` (two
    varied keys; default: those the sweep was asked for, else by sensitivity)."""
    from sim.explore.reachability import folder_figures
    from sim.plots.adoption import png

    if not (folder / "points.csv").is_file():
        raise InputError(f"{folder / 'points.csv'}: missing (the sweep has not finished: run "
                         "it again to resume)", options=True)
    try:
        figures = folder_figures(folder, axes)
    except SweepError as exc:
        raise InputError(*exc.lines, options=True) from None
    for name, fig in figures:
        files.atomic_write(folder / name, png(fig))
    return [folder / name for name, _ in figures]


# ---------------------------------------------------------------------------------------------
# sim solve


@dataclass
class SolveOutcome:
    """A finished solve: the search's result and solve.json's content."""

    scenario: Scenario
    range: Range
    result: SolveResult
    doc: dict[str, Any]
    elapsed: float


def solve_range(scenario: Scenario, vary: str) -> Range:
    """The searched parameter, `KEY=LO:HI[:log]`, checked against the scenario."""
    try:
        (rng,) = resolve_ranges(scenario.raw, [parse_vary(vary)], source=scenario.source)
    except SweepError as exc:
        raise InputError(*exc.lines) from None
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if rng.lo == rng.hi:
        raise InputError(f"--vary {vary}: LO and HI must differ", options=True)
    return rng


def solve(scenario: Scenario, vary: str | Range, probability: float, *, engine: str = "des",
          replications: int | None = None, max_replications: int = 400,
          decreasing: bool = False, tolerance: float | None = None,
          executor: Executor | None = None, jobs: int | None = None,
          progress: Progress | None = None) -> SolveOutcome:
    """The smallest (largest, if `decreasing`) value of one parameter at which P(target met)
    reaches `probability`; replications default to [sweep] replications, else 50."""
    from sim.explore.solve import result_json
    from sim.explore.solve import solve as search

    check_engine(engine)
    rng = vary if isinstance(vary, Range) else solve_range(scenario, vary)
    if replications is None:
        replications = scenario.sweep.replications if scenario.sweep else 50
    own = executor is None
    executor = executor if executor is not None else executor_for(jobs)
    started = time.perf_counter()
    done = [0]

    def on_runs(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], None)

    try:
        res = search(scenario, rng, probability, engine=engine, replications=replications,
                     max_replications=max_replications, decreasing=decreasing,
                     tolerance=tolerance, executor=executor, on_runs=on_runs)
    finally:
        if own:
            executor.close()
    elapsed = time.perf_counter() - started
    doc = result_json(res, deterministic=engine in DETERMINISTIC, extra={
        "scenario": scenario.name, "scenario_sha256": files.scenario_sha256(scenario),
        "version": __version__, "engine": engine, "seed": scenario.seed,
        "direction": "decreasing" if decreasing else "increasing", "range": [rng.lo, rng.hi],
        "target": _target(scenario), "elapsed_s": round(elapsed, 3)})
    return SolveOutcome(scenario, rng, res, doc, elapsed)


def write_solve(outcome: SolveOutcome, out: str | Path | None = None) -> Path:
    """Write scenario.toml, solve.png and solve.json (default results/<name>-solve/)."""
    from sim.explore.solve import fitted_curve
    from sim.plots.adoption import png
    from sim.plots.sweep import solve_figure

    sc, rng, res, doc = outcome.scenario, outcome.range, outcome.result, outcome.doc
    folder = Path(out) if out is not None else files.default_out(sc, "-solve")
    t = sc.target
    fx, fp = fitted_curve(res, [e.value for e in res.evaluations])
    fig = solve_figure(doc["evaluations"], parameter=rng.key, probability=res.probability,
                       value=res.value, ci95=res.ci95, fitted=fp, fitted_x=fx, log=rng.log,
                       title=f"{sc.name}: P(target met) against {rng.key}",
                       subtitle=f"target {t.firms:,} at >= {t.level} ({t.count}) by "
                       f"{t.deadline}; {doc['runs']} runs ({doc['engine']})\n{res.message}")
    folder.mkdir(parents=True, exist_ok=True)
    files.atomic_write(folder / "scenario.toml", files.scenario_text(sc))
    files.atomic_write(folder / "solve.png", png(fig))
    files.write_json(folder / "solve.json", doc)
    return folder

