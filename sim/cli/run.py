"""`sim run SCENARIO`: run the replications, print the verdict, publish the results folder."""

from __future__ import annotations

import argparse
import sys
import tomllib
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from sim import api
from sim.api.run import REGION_FILES
from sim.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    TAU_SPEEDUP,
    BadInput,
    check_out,
    held,
    interrupted_line,
    nonnegative_int,
    out_folder,
    plural,
    positive_int,
    progress,
    signals_held,
    stop_on_signals,
)
from sim.execution.pool import default_jobs
from sim.scenario import Scenario, load
from sim.store.files import default_out, scenario_sha256


def add_parser(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run a scenario's replications and print the verdict")
    run.add_argument("scenario", type=Path, help="scenario TOML file")
    run.add_argument("--replications", type=positive_int, help="override `replications`")
    run.add_argument("--seed", type=nonnegative_int, help="override `seed`")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                     help="override any scenario key (TOML value syntax); repeatable")
    run.add_argument("--out", type=out_folder, help="results folder (default results/<name>/, or "
                     "results/<name>-<hash of the --set overrides>/)")
    run.add_argument("--force", action="store_true",
                     help="replace a folder that holds other results: another scenario's, or "
                     "this one's with other values (--set, --seed, --replications) or from "
                     "another engine")
    run.add_argument("--jobs", type=positive_int, default=None,
                     help="local worker processes (default: all cores)")
    run.add_argument("--engine", default="des",
                     help="des (exact discrete-event, compiled, default), tau (fixed steps "
                     f"of [engine] tau_step days, {TAU_SPEEDUP} faster on the baseline, for "
                     "sweeps), meanfield (the deterministic large-population limit, one "
                     "trajectory) or des-simpy (the exact engine in plain Python, its "
                     "reference, as before December 2026)")


def cmd_run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.replications is not None:
        overrides.append(f"replications={args.replications}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    api.check_engine(args.engine)
    sc = load(args.scenario, overrides)
    api.check_engine(args.engine, sc)
    out = args.out if args.out is not None else default_out(sc, overrides=args.overrides)
    check_out("run", out, "run", REGION_FILES if sc.regions else ())
    if not args.force:
        refuse_other_run(out, sc, args.engine)
    jobs = args.jobs or default_jobs()
    published = False
    with stop_on_signals():  # SIGINT -> KeyboardInterrupt, SIGTERM -> Terminated, in this thread
        try:
            with progress(f"sim run {sc.name}", workers=min(jobs, sc.replications),
                          engine=args.engine) as shown:
                outcome = api.run(sc, engine=args.engine, jobs=jobs, progress=shown)
            outcome.figure()  # drawn before the signals are held for publishing
            if sc.regions:
                outcome.regions_figure()
            with signals_held():
                api.write(outcome, out)
                published = True
        except KeyboardInterrupt as exc:
            return interrupted_line("run", exc, _kept(out, published))
        except BrokenProcessPool:
            print("sim run: a worker process died (killed from outside, or out of memory); "
                  "nothing was written", file=sys.stderr)
            return EXIT_ERROR
    print(outcome.line)
    print(f"results in {out}/ ({outcome.elapsed:.1f} s, {plural(len(outcome.results), 'run')}, "
          f"{plural(jobs, 'job')})", file=sys.stderr)
    return EXIT_OK


def refuse_other_run(out: Path, sc: Scenario, engine: str) -> None:
    """Refuse (BadInput) to replace the finished run of another scenario, or of this one
    with other values or another engine, in `out`: a rerun of the same scenario with the
    same engine replaces it (its summary.json records the scenario hash and the engine)."""
    was = held(out, "run")
    if was is None:
        return
    differ = _differing_keys(out, sc)
    same = was.get("scenario_sha256") == scenario_sha256(sc) or differ == []
    if same and was.get("engine", engine) == engine:
        return
    name, runs = was.get("scenario"), was.get("replications")
    what = f" ({name}, {plural(runs, 'run')}, engine {was.get('engine')})" if isinstance(
        name, str) and isinstance(runs, int) else ""
    keys = (f" (it differs in {', '.join(differ[:4])}{', ...' if len(differ) > 4 else ''})"
            if differ else "")
    other = ("another scenario's results" if not same and name != sc.name else
             f"this scenario's results with other values{keys}" if not same else
             "this scenario's results from another engine")
    raise BadInput(f"sim run: {out}/ holds {other}{what}; pass --force to replace them or "
                   "--out DIR to write elsewhere")


def _differing_keys(out: Path, sc: Scenario) -> list[str] | None:
    """The top-level or table keys whose values differ between the folder's scenario.toml
    and `sc` ([] for the same values; None where the file cannot be read). The hash is of the
    text as written, which also changes with the source file's comments and with the writer
    of another version of sim: neither makes it another scenario."""
    try:
        was = tomllib.loads((out / "scenario.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _differ(was, sc.raw, "")


def _differ(a: Any, b: Any, where: str) -> list[str]:
    """Dotted keys at which `a` and `b` differ, as `--set` names them: descending into tables
    both have, and into lists of tables of one length by index (`policy.0.budget`)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in sorted(set(a) | set(b), key=str)
                for k in _differ(a.get(key), b.get(key), f"{where}{key}.")]
    if (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
            and all(isinstance(x, dict) for x in a + b)):
        return [k for i, (x, y) in enumerate(zip(a, b, strict=True))
                for k in _differ(x, y, f"{where}{i}.")]
    return [] if a == b else [where.rstrip(".")]


def _kept(out: Path, published: bool) -> str:
    """What an interrupted `sim run` leaves behind, for its last line."""
    if published:
        return f"the results were already complete in {out}/"
    if (out / "summary.json").is_file():
        return (f"nothing was written ({out}/ still holds the previous results); run the same "
                "command again to start over")
    return "nothing was written; run the same command again to start over"
