"""`sim solve`: the value of one parameter at which P(met) reaches a probability."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim import __version__
from sim.analysis.verdict import wilson
from sim.engines import DETERMINISTIC
from sim.execution.executor import Executor
from sim.explore.design import (
    Range,
    SweepError,
    parse_vary,
    resolve_ranges,
)
from sim.explore.solve import SolveResult
from sim.scenario import Scenario
from sim.store import files

if TYPE_CHECKING:
    pass

from sim.api import options
from sim.api.common import InputError, Progress, executor_for, redrawing, warn_of
from sim.api.run import target_fields


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
    except ValueError as exc:  # (lines about --vary are about options, as in a sweep's)
        lines = exc.lines if isinstance(exc, SweepError) else [str(exc)]
        raise InputError(*lines, options=all(ln.startswith("--") for ln in lines)) from None
    if rng.lo == rng.hi:
        raise InputError(f"--vary {vary}: LO and HI must differ", options=True)
    return rng


def _check_decidable(probability: float, replications: int, most: int) -> None:
    """Refuse a cap of replications that could never show P(met) >= `probability`: with
    too few runs even all of them meeting the target leaves it inside the Wilson 95%
    interval, so the search could only end 'not shown to be reached'."""
    if most < replications:
        raise InputError(f"a cap of {most} replications (--max-replications, "
                         f"max_replications=) is below the {replications} each value starts "
                         "with: give a cap at least that", options=True)
    need = 1
    while wilson(need, need)[0] < probability:
        need *= 2
    low = need // 2
    while low + 1 < need:  # the least n at which n of n can show P(met) >= probability
        mid = (low + need) // 2
        low, need = (low, mid) if wilson(mid, mid)[0] >= probability else (mid, need)
    if most < need:
        raise InputError(f"a cap of {most} replications (--max-replications, "
                         f"max_replications=) cannot show P(met) >= {probability:g}: even "
                         f"{most} of {most} runs meeting the target give a 95% interval from "
                         f"{wilson(most, most)[0]:.3f}; allow at least {need}", options=True)


def solve(scenario: Scenario, vary: str | Range, probability: float, *, engine: str = "des",
          replications: int | None = None, max_replications: int | None = None,
          decreasing: bool = False, tolerance: float | None = None,
          executor: Executor | None = None, jobs: int | None = None,
          progress: Progress | None = None) -> SolveOutcome:
    """The smallest (largest, if `decreasing`) value of one parameter at which P(target met)
    reaches `probability`; replications default to [sweep] replications, else 50."""
    from sim.explore.solve import result_json
    from sim.explore.solve import solve as search

    options.engine(engine)  # (the command line has checked its --engine before)
    warn_of(scenario, engine)
    probability = options.number("probability", probability, lambda v: 0 < v < 1,
                                 "strictly between 0 and 1")
    replications = None if replications is None else options.whole("replications",
                                                                    replications)
    cap_given = max_replications is not None  # (the default, 400, rises to the replications)
    max_replications = 400 if max_replications is None else options.whole(
        "max_replications", max_replications)
    tolerance = None if tolerance is None else options.number(
        "tolerance", tolerance, lambda v: v > 0, "a positive number")
    decreasing = options.flag("decreasing", decreasing)
    jobs = options.jobs(jobs)
    rng = vary if isinstance(vary, Range) else solve_range(scenario, vary)
    if replications is None:
        replications = scenario.sweep.replications if scenario.sweep else 50
    if not cap_given:
        max_replications = max(max_replications, replications)
    if engine not in DETERMINISTIC:
        _check_decidable(probability, replications, max_replications)
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
    except SweepError as exc:
        raise InputError(*exc.lines, options=True) from None
    finally:
        if own:
            executor.close()
    elapsed = time.perf_counter() - started
    doc = result_json(res, deterministic=engine in DETERMINISTIC, extra={
        "scenario": scenario.name, "scenario_sha256": files.scenario_sha256(scenario),
        "version": __version__, "engine": engine, "seed": scenario.seed,
        "direction": "decreasing" if decreasing else "increasing", "range": [rng.lo, rng.hi],
        "target": target_fields(scenario), "elapsed_s": round(elapsed, 3)})
    return SolveOutcome(scenario, rng, res, doc, elapsed)


def write_solve(outcome: SolveOutcome, out: str | Path | None = None) -> Path:
    """Write scenario.toml, solve.png, report.html and solve.json (default
    results/<name>-solve-<key>/); never over another command's results (InputError)."""
    from sim.explore.solve import fitted_curve
    from sim.plots.adoption import png
    from sim.plots.sweep import solve_figure
    from sim.store.report import read_text, report_file, solve_report

    sc, rng, res, doc = outcome.scenario, outcome.range, outcome.result, outcome.doc
    folder = options.out_folder(out if out is not None else files.solve_out(sc, rng.key),
                                "solve")
    t = sc.target
    fx, fp = fitted_curve(res, [e.value for e in res.evaluations])
    fig = solve_figure(doc["evaluations"], parameter=rng.key, probability=res.probability,
                       value=res.value, ci95=res.ci95, fitted=fp, fitted_x=fx, log=rng.log,
                       title=f"{sc.name}: P(target met) against {rng.key}",
                       subtitle=f"target {t.firms:,} at >= {t.level} ({t.count}) by "
                       f"{t.deadline}; {doc['runs']} runs ({doc['engine']})\n{res.message}")
    # Everything is made before the first file is written, so that a kill leaves a half
    # written folder only in the milliseconds of the four renames, not while drawing.
    image = png(fig)
    report = report_file(solve_report, doc, image, sc.raw, source=sc.source,
                         source_text=read_text(sc.source))
    folder.mkdir(parents=True, exist_ok=True)
    files.atomic_write(folder / "scenario.toml", files.scenario_text(sc))
    files.atomic_write(folder / "solve.png", image)
    for name, text in report:
        files.atomic_write(folder / name, text)
    files.write_json(folder / "solve.json", doc)
    return folder


def redraw_solve(folder: str | Path) -> list[Path]:
    """Draw a finished solve's solve.png again from its solve.json (`sim plot`): the same
    figure `write_solve` drew, the monotone fit recomputed along the search direction. A
    damaged folder is InputError."""
    folder = Path(folder)
    with redrawing(folder):
        return _redraw_solve(folder)


def _redraw_solve(folder: Path) -> list[Path]:
    import json

    import numpy as np

    from sim.explore.solve import isotonic
    from sim.plots.adoption import png
    from sim.plots.sweep import solve_figure

    path = folder / "solve.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        evs = sorted(doc["evaluations"], key=lambda e: e["value"])
        # The fit runs along the search: towards smaller values when it was decreasing.
        along = evs[::-1] if doc.get("direction") == "decreasing" else evs
        fitted = isotonic(np.array([e["p_met"] for e in along], dtype=float),
                          np.array([e["replications"] for e in along], dtype=float))
        if along is not evs:
            fitted = fitted[::-1]
        t = doc["target"]
        fig = solve_figure(evs, parameter=doc["parameter"], probability=doc["probability"],
                           value=doc["value"], ci95=doc["ci95"], fitted=fitted,
                           fitted_x=np.array([e["value"] for e in evs], dtype=float),
                           log=bool(doc.get("log", False)),
                           title=f"{doc['scenario']}: P(target met) against {doc['parameter']}",
                           subtitle=f"target {t['firms']:,} at >= {t['level']} ({t['count']}) "
                           f"by {t['deadline']}; {doc['runs']} runs ({doc['engine']})\n"
                           f"{doc['message']}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a solve.json written by sim solve ({exc})") from None
    files.atomic_write(folder / "solve.png", png(fig))
    return [folder / "solve.png"]
