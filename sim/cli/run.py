"""`sim run SCENARIO`: run the replications, print the verdict, publish the results folder."""

from __future__ import annotations

import argparse
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from sim import api
from sim.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    _interrupted,
    _signals,
    _signals_held,
    check_out,
    nonnegative_int,
    positive_int,
    progress_bar,
)
from sim.execution.pool import default_jobs
from sim.scenario import load
from sim.store.files import default_out


def add_parser(sub: argparse._SubParsersAction) -> None:
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


def cmd_run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.replications is not None:
        overrides.append(f"replications={args.replications}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    api.check_engine(args.engine)
    sc = load(args.scenario, overrides)
    api.check_engine(args.engine, sc)
    out = args.out if args.out is not None else default_out(sc)
    check_out("run", out)
    jobs = args.jobs or default_jobs()
    published = False
    with _signals():  # SIGINT -> KeyboardInterrupt, SIGTERM -> Terminated, in this thread
        try:
            with progress_bar(sc.name) as bar:
                outcome = api.run(sc, engine=args.engine, jobs=jobs, progress=bar)
            outcome.figure()  # drawn before the signals are held for publishing
            with _signals_held():
                api.write(outcome, out)
                published = True
        except KeyboardInterrupt as exc:
            return _interrupted("run", exc, _kept(out, published))
        except BrokenProcessPool:
            print("sim run: a worker process died (killed from outside, or out of memory); "
                  "nothing was written", file=sys.stderr)
            return EXIT_ERROR
    print(outcome.line)
    print(f"results in {out}/ ({outcome.elapsed:.1f} s, {len(outcome.results)} runs, "
          f"{jobs} jobs)", file=sys.stderr)
    return EXIT_OK


def _kept(out: Path, published: bool) -> str:
    """What an interrupted `sim run` leaves behind, for its last line."""
    if published:
        return f"the results were already complete in {out}/"
    if (out / "summary.json").is_file():
        return (f"nothing was written ({out}/ still holds the previous results); run the same "
                "command again to start over")
    return "nothing was written; run the same command again to start over"
