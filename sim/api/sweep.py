"""`sim sweep`: a design over a scenario's parameters, its tables, figures and one-line answer."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim import __version__
from sim.analysis.verdict import (
    point_stats,
)
from sim.engines import DETERMINISTIC
from sim.execution.executor import Executor
from sim.explore.design import (
    MAX_POINTS,
    MAX_RUNS,
    SweepError,
    check_points,
    design_size,
    make_design,
    parse_vary,
    resolve_ranges,
)
from sim.explore.plan import SweepPlan, run_sweep
from sim.readout.shares import share_text
from sim.scenario import Scenario, load
from sim.store import files
from sim.store.journal import FolderError, FolderLock, Journal, check_manifest

if TYPE_CHECKING:
    pass

from sim.api import options
from sim.api.common import InputError, Progress, executor_for, redrawing, warn_of


@dataclass
class SweepOutcome:
    """A finished sweep: its rows by (point, replication), in `out`, and its one-line answer."""

    plan: SweepPlan
    out: Path
    rows: dict[tuple[int, int], dict[str, Any]]
    line: str
    elapsed: float
    workers: int


def sweep_plan(scenario: Scenario | str | os.PathLike[str], *, vary: Sequence[str] = (),
               design: str | None = None,
               samples: int | None = None, replications: int | None = None,
               engine: str = "des", precision: float | None = None,
               max_replications: int | None = None, axes: Sequence[str] | None = None
               ) -> SweepPlan:
    """The sweep asked for: `vary` as `KEY=LO:HI[:log]` (default: the [sweep] table), its
    design, every point validated, `axes` (two varied keys) for its map; raises InputError
    when it cannot run. `scenario` may be a scenario file's path. `max_replications` caps
    a point's replications with `precision` (default 1000, or the replications if more)
    and is refused without it, or below the replications."""
    if not isinstance(scenario, Scenario):
        scenario = load(os.fspath(scenario))
    options.engine(engine)  # (the command line has checked its --engine before)
    warn_of(scenario, engine)
    samples = None if samples is None else options.whole("samples", samples)
    replications = None if replications is None else options.whole("replications",
                                                                    replications)
    precision = None if precision is None else options.number(
        "precision", precision, lambda v: 0 < v <= 0.5, "in (0, 0.5]")
    if max_replications is not None and precision is None:
        raise InputError(f"a cap of {max_replications} replications (--max-replications, "
                         "max_replications=) applies only with a precision (--precision, "
                         "precision=): without one every point runs the replications asked "
                         "for", options=True)
    cap_given = max_replications is not None  # (the default rises to the replications)
    max_replications = 1000 if max_replications is None else options.whole(
        "max_replications", max_replications)
    cfg, source = scenario.sweep, scenario.source
    try:
        if vary:
            ranges_asked = [parse_vary(v) for v in vary]
        elif cfg is not None and cfg.vary:
            ranges_asked = cfg.ranges()
        else:
            raise InputError(f"{source}: nothing to vary: give --vary K=LO:HI or a "
                             "[sweep.vary] table", options=True)
        unknown = [] if cfg is None or vary else [
            f"{source}: sweep.log: {k!r} is not a key of [sweep.vary]" for k in cfg.log
            if k not in {v[0] for v in ranges_asked}]
        try:  # (every problem of the table at once: its log keys and its ranges)
            ranges = resolve_ranges(scenario.raw, ranges_asked, source=source,
                                    from_file=not vary)
        except SweepError as exc:
            raise SweepError(*unknown, *exc.lines) from None
        if unknown:
            raise InputError(*unknown)
        design_name = design or (cfg.design if cfg else "lhs")
        samples = samples or (cfg.samples if cfg else 64)
        replications = replications or (cfg.replications if cfg else 50)
        if cap_given and precision is not None and max_replications < replications:
            raise InputError(f"a cap of {max_replications} replications is below the "
                             f"{replications} every point starts with: give a cap at least "
                             "that", options=True)
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
                         max(max_replications, replications),
                         # SweepPlan refuses axes that are not two varied keys (check_axes)
                         tuple(axes) if axes else None)  # type: ignore[arg-type]
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
    or holding a different one or another command's results (InputError)."""
    folder = options.out_folder(out if out is not None
                                else files.default_out(plan.scenario, "-sweep"), "sweep")
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
    model = {"model_sha256": files.model_sha256(plan.scenario)}  # (comments aside)
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with FolderLock(out):
            check_manifest(out / "manifest.json", identity, **model)
            identity = {**identity, **model}
            files.write_json(out / "manifest.json", {**identity, "status": "running"})
            files.atomic_write(out / "scenario.toml", files.scenario_text(plan.scenario))
            rows = run_sweep(plan, out, executor, on_progress=progress or (lambda d, t: None))
            stats = _write_tables(plan, out, rows)
            with redrawing(out):  # (its manifest says running until they are drawn)
                _redraw_sweep(out, plan.axes, plan.scenario.source)
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
            f"{int(np.sum(p[ok] >= 0.5))}; best {share_text(p[best])} "
            f"(mean count {counts[best]:,.0f}) at {where}")
    if failed:
        line += f"; {failed} runs failed (see the error column of runs.csv)"
    return line


def redraw_sweep(folder: str | Path, axes: Sequence[str] | None = None, *,
                 source: str | None = None) -> list[Path]:
    """Draw a finished sweep folder's figures from its manifest and tables, the map over
    `axes` (two varied keys; default: those the sweep was asked for, else by sensitivity),
    and its report.html (sources from the scenario file `source`, default the folder's
    copy). A damaged or unfinished folder is InputError."""
    folder = Path(folder)
    with redrawing(folder):
        status = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["status"]
        if status != "finished" or not (folder / "points.csv").is_file():
            raise InputError(f"{folder}/: the sweep has not finished (manifest.json says "
                             f"{status!r}, or points.csv is missing): run it again to "
                             "resume", options=True)
        return _redraw_sweep(folder, axes, source)


def _redraw_sweep(folder: Path, axes: Sequence[str] | None, source: str | None) -> list[Path]:
    """The figures and report of a sweep whose tables are written (finished, or finishing)."""
    from sim.explore.reachability import folder_figures
    from sim.plots.adoption import png
    from sim.store.report import sweep_folder_report, write_report

    try:
        figures = folder_figures(folder, axes)
    except SweepError as exc:
        raise InputError(*exc.lines, options=True) from None
    for name, fig in figures:
        files.atomic_write(folder / name, png(fig))
    drawn = [folder / name for name, _ in figures]
    return drawn + write_report(folder, sweep_folder_report, folder, drawn, source)
