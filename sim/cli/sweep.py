"""`sim sweep SCENARIO`: a design over parameters, resumable; prints the one-line answer."""

from __future__ import annotations

import argparse
import sys

from sim import api
from sim.cli.common import (
    EXIT_OK,
    add_batch_options,
    check_jobs,
    check_out,
    half_width,
    interrupted_line,
    plural,
    positive_int,
    progress,
    stop_on_signals,
)
from sim.scenario import DESIGNS, Scenario, load
from sim.store.files import default_out


def add_parser(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser("sweep", help="run a design over parameters; resumable")
    add_batch_options(sweep)
    sweep.add_argument("--design", choices=DESIGNS, help="default: [sweep] design, else lhs")
    sweep.add_argument("--samples", type=positive_int,
                       help="points (grid: about this many; sobol: base rows, giving "
                       "samples x (parameters + 2) points); default [sweep] samples, else 64")
    sweep.add_argument("--vary", action="append", default=[], metavar="K=LO:HI[:log]",
                       help="a varied key and its range; repeatable; replaces [sweep.vary]")
    sweep.add_argument("--precision", type=half_width, metavar="H",
                       help="add replications per point until the Wilson 95%% half-width "
                       "of P(met) is at most H")
    sweep.add_argument("--max-replications", type=positive_int,
                       help="cap per point with --precision (default 1000, or "
                       "--replications if more); only with it")
    add_axes_option(sweep)


def axes_pair(text: str) -> tuple[str, str]:
    """`--axes KEY1,KEY2`: two different keys (whether they are varied is checked later)."""
    keys = [k.strip() for k in text.split(",")]
    if len(keys) != 2 or not all(keys) or keys[0] == keys[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: give two different varied keys, "
                                         "KEY1,KEY2")
    return keys[0], keys[1]


def add_axes_option(parser: argparse.ArgumentParser) -> None:
    """--axes, shared by `sim sweep` and `sim plot`."""
    parser.add_argument("--axes", type=axes_pair, metavar="KEY1,KEY2",
                        help="the reachability map's x and y axes, two varied keys (default: "
                        "the two that matter most by the sensitivity indices)")


def scenario_of(args: argparse.Namespace) -> Scenario:
    """The scenario of a batch command: its file with --set and --seed applied."""
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    return load(args.scenario, overrides)


def cmd_sweep(args: argparse.Namespace) -> int:
    api.check_engine(args.engine)
    sc = scenario_of(args)
    plan = api.sweep_plan(sc, vary=args.vary, design=args.design, samples=args.samples,
                          replications=args.replications, engine=args.engine,
                          precision=args.precision, max_replications=args.max_replications,
                          axes=args.axes)
    out = args.out if args.out is not None else default_out(sc, "-sweep", args.overrides)
    check_out("sweep", out, "sweep")
    check_jobs(args)
    with api.executor_for(args.jobs, args.scheduler) as executor:
        try:
            with stop_on_signals(), progress(f"sim sweep {sc.name}", workers=executor.workers,
                                      engine=args.engine, resumes=True) as shown:
                outcome = api.sweep(plan, out, executor=executor, progress=shown)
        except KeyboardInterrupt as exc:
            return interrupted_line("sweep", exc, f"{api.kept_runs(out)} finished runs are kept in "
                                f"{out}/; run the same command again to resume")
    print(outcome.line)
    print(f"results in {out}/ ({outcome.elapsed:.1f} s, {plural(len(outcome.rows), 'run')}, "
          f"{plural(outcome.workers, 'worker')})", file=sys.stderr)
    return EXIT_OK
