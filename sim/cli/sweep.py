"""`sim sweep`, `sim solve` and `sim plot SWEEP_DIR`: options, progress, signals, figures.

The work itself is in sweep.py (designs, batches, journal, lock), solve.py and
sensitivity.py; this module turns options into their calls and results into files.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import math
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sim import __version__
from sim.cli.common import EXIT_INTERRUPTED, EXIT_OK, BadInput, nonnegative_int, positive_int
from sim.scenario import DESIGNS, Scenario, load

EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C."""


def _float_option(text: str, ok, allowed: str) -> float:
    """An option's number, or argparse's one-line complaint naming what is allowed."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"{text} must be {allowed}")
    return value


def _probability(text: str) -> float:
    return _float_option(text, lambda v: 0 < v < 1, "strictly between 0 and 1")


def _half_width(text: str) -> float:
    return _float_option(text, lambda v: 0 < v <= 0.5, "in (0, 0.5]")


def _positive_float(text: str) -> float:
    return _float_option(text, lambda v: v > 0, "a positive number")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", type=Path, help="scenario TOML file")
    p.add_argument("--replications", type=positive_int,
                   help="runs per point (default: [sweep] replications, else 50)")
    p.add_argument("--seed", type=nonnegative_int, help="override `seed`")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                   help="override any scenario key (TOML value syntax); repeatable")
    p.add_argument("--jobs", type=positive_int, default=None,
                   help="local worker processes (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask distributed cluster (e.g. tcp://127.0.0.1:8786) "
                   "instead of local processes")
    p.add_argument("--engine", default="des", help="simulation engine (see `sim run --help`)")
    p.add_argument("--out", type=Path, help="results folder (default: results/<name>-sweep/ "
                   "or results/<name>-solve/)")


def add_parsers(sub) -> None:
    """Register the `sweep` and `solve` subcommands."""
    sweep = sub.add_parser("sweep", help="run a design over parameters; resumable")
    _common(sweep)
    sweep.add_argument("--design", choices=DESIGNS, help="default: [sweep] design, else lhs")
    sweep.add_argument("--samples", type=positive_int,
                       help="points (grid: about this many; sobol: base rows, giving "
                       "samples x (parameters + 2) points); default [sweep] samples, else 64")
    sweep.add_argument("--vary", action="append", default=[], metavar="K=LO:HI[:log]",
                       help="a varied key and its range; repeatable; replaces [sweep.vary]")
    sweep.add_argument("--precision", type=_half_width, metavar="H",
                       help="add replications per point until the Wilson 95%% half-width "
                       "of P(met) is at most H")
    sweep.add_argument("--max-replications", type=positive_int, default=1000,
                       help="cap per point with --precision (default 1000)")

    solve = sub.add_parser("solve", help="find the parameter value at which P(target met) "
                           "reaches a probability")
    _common(solve)
    solve.add_argument("--vary", required=True, metavar="K=LO:HI[:log]",
                       help="the parameter and the range to search")
    solve.add_argument("--probability", type=_probability, required=True, metavar="P")
    solve.add_argument("--decreasing", action="store_true",
                       help="P(met) falls as the parameter rises: find the largest value")
    solve.add_argument("--max-replications", type=positive_int, default=400,
                       help="cap per evaluated value (default 400)")
    solve.add_argument("--tolerance", type=_positive_float,
                       help="stop when the bracket is this narrow (parameter units; default "
                       "1/128 of the range, 1 for whole-number keys)")


def is_sweep_folder(folder: Path) -> bool:
    """True when `folder` holds a sweep's results (its manifest)."""
    return (folder / "manifest.json").is_file()


# ---------------------------------------------------------------------------------------------
# Shared option handling


def _scenario(args: argparse.Namespace) -> Scenario:
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    return load(args.scenario, overrides)


def _check_engine(command: str, engine: str) -> None:
    from sim.engines import engines

    if engine not in engines():
        raise BadInput(f"sim {command}: --engine {engine!r}: must be one of "
                       f"{', '.join(engines())}")


def _check_out(command: str, out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise BadInput(f"sim {command}: --out {str(out)!r}: exists and is not a folder")


def _executor(args: argparse.Namespace):
    from sim.execution.runner import default_jobs
    from sim.explore.sweep import DaskExecutor, LocalExecutor

    if args.scheduler:
        if args.jobs is not None:
            raise BadInput(f"sim {args.command}: --jobs and --scheduler exclude each other "
                           "(the cluster's workers do the work)")
        try:
            return DaskExecutor(args.scheduler)
        except ImportError:
            raise BadInput(f"sim {args.command}: --scheduler needs Dask: pip install "
                           "'sim[dask]'") from None
        except (OSError, TimeoutError, ValueError) as exc:
            raise BadInput(f"sim {args.command}: --scheduler {args.scheduler}: cannot reach "
                           f"the scheduler ({exc})") from None
    return LocalExecutor(args.jobs or default_jobs())


@contextlib.contextmanager
def _signals() -> Iterator[None]:
    """SIGINT and SIGTERM stop the work where it is; a second signal is ignored while
    the workers are stopped and the lock released."""

    def stop(signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, stop)
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _interrupted(command: str, exc: KeyboardInterrupt, kept: str) -> int:
    what = "terminated" if isinstance(exc, Terminated) else "interrupted"
    print(f"sim {command}: {what}; {kept}", file=sys.stderr)
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def _progress(total: int | None, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="run", desc=desc, disable=None, file=sys.stderr, leave=False,
                dynamic_ncols=True)


# ---------------------------------------------------------------------------------------------
# sim sweep


def cmd_sweep(args: argparse.Namespace) -> int:
    from sim.engines import DETERMINISTIC
    from sim.explore.sweep import (
        MAX_POINTS,
        MAX_RUNS,
        SweepError,
        SweepPlan,
        check_points,
        design_size,
        make_design,
        parse_vary,
        resolve_ranges,
    )
    from sim.store.files import default_out

    _check_engine("sweep", args.engine)
    sc = _scenario(args)
    cfg = sc.sweep
    try:
        if args.vary:
            vary = [parse_vary(v) for v in args.vary]
        elif cfg is not None and cfg.vary:
            vary = [(k, lo, hi, k in cfg.log) for k, lo, hi in cfg.vary]
        else:
            raise BadInput(f"sim sweep: {args.scenario}: nothing to vary: give --vary "
                           "K=LO:HI or a [sweep.vary] table")
        if cfg is not None and not args.vary:
            unknown = [k for k in cfg.log if k not in {v[0] for v in vary}]
            if unknown:
                raise BadInput(*(f"{args.scenario}: sweep.log: {k!r} is not a key of "
                                 "[sweep.vary]" for k in unknown))
        ranges = resolve_ranges(sc.raw, vary, source=str(args.scenario))
        design_name = args.design or (cfg.design if cfg else "lhs")
        samples = args.samples or (cfg.samples if cfg else 64)
        replications = args.replications or (cfg.replications if cfg else 50)
        points = design_size(design_name, len(ranges), samples)
        per_point = (1 if args.engine in DETERMINISTIC else
                     max(args.max_replications, replications) if args.precision
                     else replications)
        if points > MAX_POINTS or points * per_point > MAX_RUNS:
            raise BadInput(f"sim sweep: {points:,} points x up to {per_point:,} replications = "
                           f"{points * per_point:,} runs: more than the limits of "
                           f"{MAX_POINTS:,} points and {MAX_RUNS:,} runs; use fewer samples "
                           "or replications")
        design = make_design(design_name, ranges, samples, sc.seed)
        plan = SweepPlan(sc, design, args.engine, replications, samples, args.precision,
                         max(args.max_replications, replications))
        check_points(sc.raw, design, str(args.scenario))
    except ValueError as exc:
        lines = exc.lines if isinstance(exc, SweepError) else [str(exc)]
        raise BadInput(*(f"sim sweep: {ln}" if ln.startswith("--") else ln
                         for ln in lines)) from None
    out = args.out if args.out is not None else default_out(sc, "-sweep")
    _check_out("sweep", out)
    executor = _executor(args)
    try:
        return _sweep_into(plan, out, executor)
    finally:
        executor.close()


def _sweep_into(plan, out: Path, executor) -> int:
    from sim.explore.sweep import FolderLock, SweepError, check_manifest, run_sweep
    from sim.store.files import atomic_write, scenario_sha256, scenario_text, write_json

    identity = plan.identity(__version__, scenario_sha256(plan.scenario))
    started = time.perf_counter()
    rows: dict = {}
    out.mkdir(parents=True, exist_ok=True)
    try:
        with _signals(), FolderLock(out):
            check_manifest(out / "manifest.json", identity)
            write_json(out / "manifest.json", {**identity, "status": "running"})
            atomic_write(out / "scenario.toml", scenario_text(plan.scenario))
            bar = _progress(0, f"{plan.scenario.name} sweep")

            def progress(done: int, total: int) -> None:
                if bar.total != total:
                    bar.total = total
                bar.n = done
                bar.refresh()

            try:
                rows = run_sweep(plan, out, executor, on_progress=progress)
            finally:
                bar.close()
            _write_tables(plan, out, rows)
            elapsed = time.perf_counter() - started
            failed = sum(1 for r in rows.values() if r.get("error") is not None)
            write_json(out / "manifest.json", {**identity, "status": "finished",
                                                "runs": len(rows), "failed": failed,
                                                "elapsed_s": round(elapsed, 3)})
    except SweepError as exc:
        raise BadInput(*exc.lines) from None
    except KeyboardInterrupt as exc:
        from sim.explore.sweep import Journal

        kept = len(Journal(out / "runs.jsonl").read())
        return _interrupted("sweep", exc, f"{kept} finished runs are kept in {out}/; run the "
                            "same command again to resume")
    print(_sweep_line(plan, out, rows))
    print(f"results in {out}/ ({time.perf_counter() - started:.1f} s, {len(rows)} runs, "
          f"{executor.workers} worker{'s' if executor.workers > 1 else ''})", file=sys.stderr)
    return EXIT_OK


def _write_tables(plan, out: Path, rows: dict) -> None:
    from sim.explore.sweep import curves_csv, point_curves, point_stats, points_csv, runs_csv
    from sim.store.files import atomic_write

    design = plan.design
    by_point: dict[int, list] = {j: [] for j in range(len(design.points))}
    for (j, _r), row in rows.items():
        by_point[j].append(row)
    stats = [point_stats(by_point[j]) for j in range(len(design.points))]
    dates = [d.isoformat() for d in plan.scenario.month_ends()]
    atomic_write(out / "runs.csv", runs_csv(design, rows))
    atomic_write(out / "points.csv", points_csv(design, stats))
    atomic_write(out / "curves.csv", curves_csv(dates, point_curves(rows)))
    _write_sensitivity(plan, out, stats)
    draw_sweep(out)


def _write_sensitivity(plan, out: Path, stats: list[dict]) -> None:
    from sim.explore.sensitivity import analyse, point_noise
    from sim.store.files import atomic_write

    design = plan.design
    n = np.array([s["replications"] for s in stats], dtype=float)
    p = np.array([s["p_met"] for s in stats], dtype=float)
    mean = np.array([s["count_mean"] for s in stats], dtype=float)
    var = np.array([s["count_var"] for s in stats], dtype=float)
    unit = np.array([[r.unit(float(v)) for r, v in zip(design.ranges, pt, strict=True)]
                     for pt in design.points])
    if plan.deterministic:
        noise_count = noise_p = np.zeros(len(stats))
    else:
        noise_count, noise_p = point_noise("count", n, var, p), point_noise("p", n, var, p)
    outputs = {"count_at_deadline": (mean, noise_count), "P(met)": (p, noise_p)}
    ok = np.isfinite(p) & np.isfinite(mean)
    if design.name != "sobol":  # points whose runs all failed carry no estimate
        outputs = {k: (y[ok], nz[ok]) for k, (y, nz) in outputs.items()}
        unit = unit[ok]
    indices = analyse(design.name, design.base, design.keys, unit, outputs,
                      seed=plan.scenario.seed)
    buf = ["output,parameter,index,estimate,lo,hi"]
    for ix in indices:
        buf.append(",".join([ix.output, _quote(ix.parameter), ix.index,
                             *(_num(x) for x in (ix.estimate, ix.lo, ix.hi))]))
    atomic_write(out / "sensitivity.csv", "\n".join(buf) + "\n")


def _quote(text: str) -> str:
    return f'"{text}"' if "," in text else text


def _num(x: float) -> str:
    return "" if not math.isfinite(x) else repr(round(float(x), 6))


def _sweep_line(plan, out: Path, rows: dict) -> str:
    """One line: how much of the swept space meets the target, and the best point."""
    stats = _read_points(out)
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


# ---------------------------------------------------------------------------------------------
# Figures of a sweep folder (also `sim plot SWEEP_DIR`)


def _read_points(folder: Path) -> list[dict[str, float]]:
    with open(folder / "points.csv", newline="", encoding="utf-8") as fh:
        return [{k: (float(v) if v != "" else math.nan) for k, v in row.items()}
                for row in csv.DictReader(fh)]


def draw_sweep(folder: Path) -> list[str]:
    """Draw reachability.png, fan.png and sensitivity.png from a sweep folder's tables."""
    from sim.plots.adoption import png
    from sim.plots.sweep import fan_figure, reachability_figure, sensitivity_figure
    from sim.store.files import atomic_write

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    ranges = manifest["ranges"]
    keys = [r["key"] for r in ranges]
    stats = _read_points(folder)
    values = np.array([[s[k] for k in keys] for s in stats], dtype=float)
    p = np.array([s["p_met"] for s in stats])
    t = manifest["target"]
    n_rep = manifest["replications"] if manifest.get("precision") is None else "adaptive"
    goal = f"target {t['firms']:,} at >= {t['level']} ({t['count']}) by {t['deadline']}"
    others = len(ranges) - 2
    smooth = (f"; colour kernel-smoothed, averaged over {others} other varied parameter"
              f"{'s' if others > 1 else ''}" if others > 0 else "")
    written = []
    fig = reachability_figure(
        ranges, values, p, np.array([s["p_met_lo"] for s in stats]),
        np.array([s["p_met_hi"] for s in stats]), np.array([s["replications"] for s in stats]),
        title=f"{manifest['scenario']}: where the target is reachable",
        subtitle=f"{goal}\n{len(stats)} {manifest['design']} points x {n_rep} runs "
                 f"({manifest['engine']}){smooth}")
    atomic_write(folder / "reachability.png", png(fig))
    written.append("reachability.png")

    dates, medians = _read_curves(folder)
    if medians:
        counted = "new firms" if t["count"] == "new" else "firms"
        fig = fan_figure(dates, medians, {j: p[j] for j in medians}, threshold=t["firms"],
                         deadline=dt.date.fromisoformat(t["deadline"]),
                         ylabel=f"{counted} at >= {t['level']} (median over runs)",
                         title=f"{manifest['scenario']}: adoption across the sweep",
                         subtitle=f"{goal}; one line per point, coloured by its P(met)")
        atomic_write(folder / "fan.png", png(fig))
        written.append("fan.png")

    sens = folder / "sensitivity.csv"
    if sens.is_file():
        with open(sens, newline="", encoding="utf-8") as fh:
            rows = [{**r, **{c: float(r[c]) if r[c] else math.nan for c in ("estimate", "lo",
                                                                           "hi")}}
                    for r in csv.DictReader(fh)]
        if rows:
            kind = ("Sobol indices (95% bootstrap)" if manifest["design"] == "sobol"
                    else "rank correlation with the point means (95% bootstrap)")
            fig = sensitivity_figure(rows, title=f"{manifest['scenario']}: which parameter "
                                     f"matters: {kind}")
            atomic_write(folder / "sensitivity.png", png(fig))
            written.append("sensitivity.png")
    return written


def _read_curves(folder: Path) -> tuple[list[dt.date], dict[int, np.ndarray]]:
    path = folder / "curves.csv"
    if not path.is_file():
        return [], {}
    dates: list[str] = []
    seen: set[str] = set()
    medians: dict[int, list[float]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["date"] not in seen:
                seen.add(row["date"])
                dates.append(row["date"])
            medians.setdefault(int(row["point"]), []).append(float(row["p50"]))
    return [dt.date.fromisoformat(d) for d in dates], {j: np.array(v) for j, v in
                                                        medians.items()}


def cmd_plot_sweep(folder: Path) -> int:
    if not (folder / "points.csv").is_file():
        raise BadInput(f"sim plot: {folder / 'points.csv'}: missing (the sweep has not "
                       "finished: run it again to resume)")
    for name in draw_sweep(folder):
        print(f"redrew {folder / name}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# sim solve


def cmd_solve(args: argparse.Namespace) -> int:
    from sim.explore.sweep import SweepError, parse_vary, resolve_ranges
    from sim.store.files import default_out

    _check_engine("solve", args.engine)
    sc = _scenario(args)
    try:
        (rng,) = resolve_ranges(sc.raw, [parse_vary(args.vary)], source=str(args.scenario))
    except SweepError as exc:
        raise BadInput(*exc.lines) from None
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    if rng.lo == rng.hi:
        raise BadInput(f"sim solve: --vary {args.vary}: LO and HI must differ")
    replications = args.replications or (sc.sweep.replications if sc.sweep else 50)
    out = args.out if args.out is not None else default_out(sc, "-solve")
    _check_out("solve", out)
    executor = _executor(args)
    try:
        return _solve_into(args, sc, rng, replications, out, executor)
    finally:
        executor.close()


def _solve_into(args, sc: Scenario, rng, replications: int, out: Path, executor) -> int:
    from sim.engines import DETERMINISTIC
    from sim.explore.solve import fitted_curve, result_json, solve
    from sim.plots.adoption import png
    from sim.plots.sweep import solve_figure
    from sim.store.files import atomic_write, scenario_sha256, scenario_text, write_json

    started = time.perf_counter()
    bar = _progress(None, f"{sc.name} solve")  # the number of runs is not known ahead

    def on_runs(n: int) -> None:
        bar.update(n)

    try:
        with _signals():
            res = solve(sc, rng, args.probability, engine=args.engine,
                        replications=replications, max_replications=args.max_replications,
                        decreasing=args.decreasing, tolerance=args.tolerance,
                        executor=executor, on_runs=on_runs)
    except KeyboardInterrupt as exc:
        return _interrupted("solve", exc, "nothing was written (a solve does not resume)")
    finally:
        bar.close()
    deterministic = args.engine in DETERMINISTIC
    elapsed = time.perf_counter() - started
    t = sc.target
    doc = result_json(res, deterministic=deterministic, extra={
        "scenario": sc.name, "scenario_sha256": scenario_sha256(sc), "version": __version__,
        "engine": args.engine, "seed": sc.seed, "direction": "decreasing" if args.decreasing
        else "increasing", "range": [rng.lo, rng.hi],
        "target": {"firms": t.firms, "level": t.level, "deadline": t.deadline.isoformat(),
                   "count": t.count},
        "elapsed_s": round(elapsed, 3)})
    values = [e.value for e in res.evaluations]
    fx, fp = fitted_curve(res, values)
    fig = solve_figure(doc["evaluations"], parameter=rng.key, probability=args.probability,
                       value=res.value, ci95=res.ci95, fitted=fp, fitted_x=fx, log=rng.log,
                       title=f"{sc.name}: P(target met) against {rng.key}",
                       subtitle=f"target {t.firms:,} at >= {t.level} ({t.count}) by "
                       f"{t.deadline}; {doc['runs']} runs ({args.engine})\n{res.message}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "scenario.toml", scenario_text(sc))
    atomic_write(out / "solve.png", png(fig))
    write_json(out / "solve.json", doc)
    print(res.message)
    print(f"results in {out}/ ({elapsed:.1f} s, {doc['runs']} runs)", file=sys.stderr)
    return EXIT_OK
