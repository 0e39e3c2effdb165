"""`sim solve SCENARIO --vary K=LO:HI --probability P`: the parameter value at which
P(target met) reaches P; writes solve.json and solve.png."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim import api
from sim.cli.common import (
    EXIT_OK,
    BadInput,
    add_batch_options,
    check_jobs,
    check_out,
    held,
    interrupted_line,
    plural,
    positive_float,
    positive_int,
    probability,
    progress,
    stop_on_signals,
)
from sim.cli.sweep import scenario_of
from sim.explore.design import Range
from sim.scenario import Scenario
from sim.store.files import scenario_sha256, solve_out


def add_parser(sub: argparse._SubParsersAction) -> None:
    solve = sub.add_parser("solve", help="find the parameter value at which P(target met) "
                           "reaches a probability")
    add_batch_options(solve)
    solve.add_argument("--vary", required=True, action="append", metavar="K=LO:HI[:log]",
                       help="the parameter and the range to search (one)")
    solve.add_argument("--probability", type=probability, required=True, metavar="P",
                       help="the P(target met) to reach, in (0, 1)")
    solve.add_argument("--decreasing", action="store_true",
                       help="P(met) falls as the parameter rises: find the largest value")
    solve.add_argument("--max-replications", type=positive_int,
                       help="cap per evaluated value (default 400, or --replications if more)")
    solve.add_argument("--tolerance", type=positive_float,
                       help="stop when the bracket is this narrow (parameter units; default "
                       "1/128 of the range, 1 for whole-number keys)")


def cmd_solve(args: argparse.Namespace) -> int:
    api.check_engine(args.engine)
    sc = scenario_of(args)
    if len(args.vary) > 1:
        raise BadInput(f"sim solve: --vary given {len(args.vary)} times: a solve searches "
                       "one parameter (a sweep varies several)")
    args.vary = args.vary[0]
    rng = api.solve_range(sc, args.vary)
    out = args.out if args.out is not None else solve_out(sc, rng.key, args.overrides)
    check_out("solve", out, "solve")
    _refuse_other_solve(out, args, sc, rng)
    check_jobs(args)
    with api.executor_for(args.jobs, args.scheduler) as executor:
        try:
            with stop_on_signals(), progress(f"sim solve {sc.name}", workers=executor.workers,
                                      engine=args.engine) as shown:
                outcome = api.solve(sc, rng, args.probability, engine=args.engine,
                                    replications=args.replications,
                                    max_replications=args.max_replications,
                                    decreasing=args.decreasing, tolerance=args.tolerance,
                                    executor=executor, progress=shown)
        except KeyboardInterrupt as exc:
            return interrupted_line("solve", exc, "nothing was written (a solve does not resume)")
    api.write_solve(outcome, out)
    print(outcome.result.message)
    print(f"results in {out}/ ({outcome.elapsed:.1f} s, {plural(outcome.doc['runs'], 'run')})",
          file=sys.stderr)
    return EXIT_OK


def _refuse_other_solve(out: Path, args: argparse.Namespace, sc: Scenario,
                        rng: Range) -> None:
    """Refuse (BadInput) to replace another search's solve.json in `out`: one of another
    scenario, parameter, range, probability, direction or engine (the same search again
    replaces it)."""
    was = held(out, "solve") or {}
    key = args.vary.split("=", 1)[0].strip()
    mine = {"parameter": key, "probability": args.probability, "engine": args.engine,
            "direction": "decreasing" if args.decreasing else "increasing",
            "seed": sc.seed, "scenario_sha256": scenario_sha256(sc), "range": [rng.lo, rng.hi]}
    differ = [k for k, v in mine.items() if k in was and was[k] != v]
    if differ:
        what = ", ".join(f"{k} {was[k]}" for k in differ if k != "scenario_sha256") or (
            f"scenario {was.get('scenario')} as it ran then: its file or --set differ")
        raise BadInput(f"sim solve: {out}/ holds another solve ({what}); pass --out DIR to "
                       "write elsewhere")
