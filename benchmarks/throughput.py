"""Sweep throughput: many runs of one scenario with the fast engine on local processes.

    python benchmarks/throughput.py [SCENARIO] [--runs 10000] [--jobs 2] [--engine tau]
    python benchmarks/throughput.py --national   # the baseline without regions or entry/exit

Times `sim.runner.run_replications` (the executor behind `sim run`; `sim sweep` batches the
same calls) over all runs and prints runs per second and the time for the whole batch.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from variants import national

from sim.execution.runner import run_replications
from sim.scenario import load, validate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "baseline.toml"))
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--engine", default="tau")
    parser.add_argument("--national", action="store_true",
                        help="drop regions, regional policies and entry/exit (the baseline "
                             "as it was before them, benchmarks/regions.py's `national`)")
    args = parser.parse_args()
    sc = load(args.scenario)
    if args.national:
        sc = validate(national(sc.raw), source=args.scenario)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    results = run_replications(sc, range(args.runs), seed=sc.seed, engine=args.engine,
                               jobs=args.jobs)
    elapsed = time.perf_counter() - started
    met = sum(r.met for r in results.values())
    print(f"{sc.name}: {len(results):,} runs of --engine {args.engine} on {args.jobs} processes "
          f"in {elapsed:.1f} s ({len(results) / elapsed:,.0f} runs/s; load average before "
          f"{load_before:.2f}); met in {met:,}")


if __name__ == "__main__":
    main()
