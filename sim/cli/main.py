"""The `sim` command: argument parsing, progress, exit codes. No modelling happens here.

Exit status: 0 success; 2 bad input (scenario, options, data file); 1 anything else;
130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from sim import __version__
from sim.analysis.verdict import summary_fields, verdict, verdict_line
from sim.cli import calibrate as cli_calibrate
from sim.cli import sweep as cli_sweep
from sim.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    BadInput,
    Parser,
    nonnegative_int,
    positive_int,
)
from sim.cli.sweep import EXIT_TERMINATED, Terminated, _interrupted, _signals
from sim.engines import DETERMINISTIC, engines, refusal
from sim.execution.runner import default_jobs, run_replications
from sim.scenario import LEVELS, Scenario, ScenarioError, load


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="sim", description="Simulate industrial-internet + AI adoption by "
                     "Chinese manufacturers and judge MIIT's 2028 target.")
    parser.add_argument("--version", action="version", version=f"sim {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")

    run = sub.add_parser("run", help="run a scenario's replications and print the verdict")
    run.add_argument("scenario", type=Path, help="scenario TOML file")
    run.add_argument("--replications", type=positive_int, help="override `replications`")
    run.add_argument("--seed", type=nonnegative_int, help="override `seed`")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                     help="override any scenario key (TOML value syntax); repeatable")
    run.add_argument("--out", type=Path, help="results folder (default results/<name>/)")
    run.add_argument("--jobs", type=positive_int, default=None,
                     help="local worker processes (default: all cores)")
    run.add_argument("--engine", default="des",
                     help="des (exact discrete-event, default), tau (fixed steps of "
                     "[engine] tau_step days, ~50x faster, for sweeps) or meanfield (the "
                     "deterministic large-population limit, one trajectory)")

    check = sub.add_parser("check", help="validate scenario files without running them")
    check.add_argument("scenarios", type=Path, nargs="+")
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")

    plot = sub.add_parser("plot", help="redraw the figures of a finished run")
    plot.add_argument("results", type=Path,
                      help="a results folder written by `sim run`, `sim sweep` or `sim calibrate`")
    cli_sweep.add_parsers(sub)
    cli_calibrate.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return EXIT_OK
        commands = {"run": cmd_run, "check": cmd_check, "plot": cmd_plot,
                    "sweep": cli_sweep.cmd_sweep, "solve": cli_sweep.cmd_solve,
                    "calibrate": cli_calibrate.cmd_calibrate}
        return commands[args.command](args)
    except (BadInput, ScenarioError) as exc:
        lines = exc.lines if isinstance(exc, BadInput) else exc.problems
        for line in lines:
            print(line, file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        print("sim: interrupted", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR


def _load(path: Path, overrides: Sequence[str]) -> Scenario:
    return load(path, overrides)


def cmd_check(args: argparse.Namespace) -> int:
    problems: list[str] = []
    for path in args.scenarios:
        try:
            sc = _load(path, args.overrides)
            print(f"{path}: ok ({sc.name}: {sc.firms:,} firms, {len(sc.segments)} segments, "
                  f"{sc.start} to {sc.end})")
        except ScenarioError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ScenarioError(problems)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from sim.plots.adoption import png
    from sim.store.files import default_out, write_run

    overrides = list(args.overrides)
    if args.replications is not None:
        overrides.append(f"replications={args.replications}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.engine not in engines():
        raise BadInput(f"sim run: --engine {args.engine!r}: must be one of "
                       f"{', '.join(engines())}")
    sc = _load(args.scenario, overrides)
    why = refusal(sc, args.engine)
    if why:
        raise BadInput(why)
    out = args.out if args.out is not None else default_out(sc)
    if out.exists() and not out.is_dir():
        raise BadInput(f"sim run: --out {str(out)!r}: exists and is not a folder")
    jobs = args.jobs or default_jobs()

    started = time.perf_counter()
    published = False
    with _signals():  # SIGINT -> KeyboardInterrupt, SIGTERM -> Terminated, in this thread
        try:
            results = _run_with_progress(sc, args.engine, jobs)
            elapsed = time.perf_counter() - started
            counts = [results[i].count_at_deadline for i in sorted(results)]
            crossings = [results[i].crossing_time for i in sorted(results)]
            v = verdict(sc, counts, crossings, deterministic=args.engine in DETERMINISTIC)
            line = verdict_line(sc, v)
            summary = build_summary(sc, args.engine, results, v, line, elapsed)
            fig = draw_adoption(sc, results, line)
            with _signals_held():
                write_run(out, sc, results, summary, [("adoption.png", png(fig))])
                published = True
        except KeyboardInterrupt as exc:
            return _interrupted("run", exc, _kept(out, published))
        except BrokenProcessPool:
            print("sim run: a worker process died (killed from outside, or out of memory); "
                  "nothing was written", file=sys.stderr)
            return EXIT_ERROR
    print(line)
    print(f"results in {out}/ ({elapsed:.1f} s, {len(results)} runs, {jobs} jobs)",
          file=sys.stderr)
    return EXIT_OK


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while a finished run is published (well under a second), then
    act on them, so that a signal never stops the renames half-way."""
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.getsignal(s) for s in held}
    for s in held:
        signal.signal(s, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if caught:
        signal.raise_signal(caught[0])


def _kept(out: Path, published: bool) -> str:
    """What an interrupted `sim run` leaves behind, for its last line."""
    if published:
        return f"the results were already complete in {out}/"
    if (out / "summary.json").is_file():
        return (f"nothing was written ({out}/ still holds the previous results); run the same "
                "command again to start over")
    return "nothing was written; run the same command again to start over"


def _run_with_progress(sc: Scenario, engine: str, jobs: int) -> dict:
    from tqdm import tqdm

    indices = [0] if engine in DETERMINISTIC else list(range(sc.replications))
    with tqdm(total=len(indices), unit="run", desc=sc.name, disable=None, file=sys.stderr,
              leave=False) as bar:
        return run_replications(sc, indices, seed=sc.seed, engine=engine, jobs=jobs,
                                on_result=lambda i, r: bar.update(1))


def build_summary(sc: Scenario, engine: str, results: dict, v, line: str, elapsed: float
                  ) -> dict:
    from sim.store.files import scenario_sha256

    first = results[min(results)]
    events = [r.events.get("events", 0) for r in results.values()]
    summary = {
        "scenario": sc.name,
        "scenario_sha256": scenario_sha256(sc),
        "version": __version__,
        "engine": engine,
        "seed": sc.seed,
        "replications": len(results),
        "target": {"firms": sc.target.firms, "level": sc.target.level,
                   "deadline": sc.target.deadline.isoformat(), "count": sc.target.count},
        **summary_fields(v),
        "elapsed_s": round(elapsed, 3),
        "verdict": line,
        "initial_at_or_above": dict(zip(LEVELS, (int(x) for x in first.initial), strict=True)),
        "events_per_replication": sum(events) / len(events) if events else 0,
        "subsidy_spent_mean": {p.name: sum(r.spent[j] for r in results.values()) / len(results)
                               for j, p in enumerate(sc.policies)},
    }
    return summary


def draw_adoption(sc: Scenario, results: dict, line: str):
    import numpy as np

    curves = np.stack([results[i].at_or_above for i in sorted(results)])
    initial = results[min(results)].initial
    return _adoption(sc, curves, initial, line)


def _adoption(sc: Scenario, curves, initial, line: str):
    from sim.plots.adoption import adoption_figure

    k = sc.target.level_index - 1
    if sc.target.count == "new":
        threshold = float(initial[k]) + sc.target.firms
        label = (f"target: {sc.target.firms:,} new (= {threshold:,.0f} at or above "
                 f"{sc.target.level})")
    else:
        threshold = float(sc.target.firms)
        label = f"target: {sc.target.firms:,} at or above {sc.target.level}"
    return adoption_figure(
        sc.month_ends(), curves, levels=LEVELS, start=sc.start, initial=initial,
        target_level=sc.target.level, threshold=threshold, target_label=label,
        deadline=sc.target.deadline,
        title=f"{sc.name}: firms at or above each level, {curves.shape[0]} runs",
        subtitle=line,
    )


def cmd_plot(args: argparse.Namespace) -> int:
    import numpy as np

    from sim.plots.adoption import png
    from sim.scenario import read_toml, validate
    from sim.store.files import atomic_write, read_curves

    folder: Path = args.results
    if cli_sweep.is_sweep_folder(folder):
        return cli_sweep.cmd_plot_sweep(folder)
    if cli_calibrate.is_fit_folder(folder):
        return cli_calibrate.cmd_plot_fit(folder)
    needed = [folder / "summary.json", folder / "curves.csv", folder / "scenario.toml"]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise BadInput(*(f"sim plot: {m}: missing (is {folder} a finished run?)" for m in missing))
    sc = validate(read_toml(folder / "scenario.toml"), source=str(folder / "scenario.toml"))
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    _dates, arrays = read_curves(folder / "curves.csv")
    curves = np.stack([arrays[i] for i in sorted(arrays)])
    initial = np.array([summary["initial_at_or_above"][lv] for lv in LEVELS])
    fig = _adoption(sc, curves, initial, summary.get("verdict", ""))
    atomic_write(folder / "adoption.png", png(fig))
    print(f"redrew {folder / 'adoption.png'}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
