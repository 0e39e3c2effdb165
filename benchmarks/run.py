"""Speed and memory of the engines, side by side in one run, so machine noise cancels.

    python benchmarks/run.py              # the full table (about 15 minutes on 2 cores)
    python benchmarks/run.py --quick      # 50,000 to 520,000 firms only
    python benchmarks/run.py --repeats 5  # best of 5 (default 3)

Every contender is timed the same way: one replication in a fresh interpreter (after its
imports and the scenario are loaded, which are not timed), in CPU seconds, repeated in fresh
processes with the contenders interleaved, and the best of the repeats kept. (Timing a
second replication in a warm process, as this script once did, penalised the per-firm
reference, whose second run in one process took about twice its first: 6.8 s vs 3.5 s.)
Reports CPU seconds per replication, events per second, the peak resident memory of the
measuring process, and the load average before and after. The compiled exact engine (`des`)
loads its machine code from numba's cache on its first call in a process: like the imports,
that is done (on the workload at 1,000 firms) before the timed replication, and reported in
the last column. `des-simpy` is the same exact engine in plain Python on simpy. Before the
timed replication every contender's process freezes its objects out of the garbage
collector's reach, as sim's workers do (a full collection of numba's objects costs ~30 ms).
Two workloads: the yardstick of issue 6 (`four-levels.toml`: one segment, no resources,
lognormal times, the only model the one-process-per-firm reference can run) and the shipped
baseline with population, capacities and budgets scaled to each size.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SIZES = (50_000, 200_000, 520_000, 1_000_000, 5_000_000)
ENGINES = ("reference", "des", "des-simpy", "tau")
REFERENCE_MAX = 1_000_000  # one simpy process per firm: ~0.5 kB each, so 5M would need GBs


def scaled(workload: str, firms: int):
    """The workload's scenario at `firms` firms, capacities and budgets scaled alike."""
    from sim.scenario import read_toml, validate

    path = HERE / "four-levels.toml" if workload == "yardstick" else (
        ROOT / "scenarios" / "baseline.toml")
    raw = copy.deepcopy(read_toml(path))
    factor = firms / raw["population"]["firms"]
    raw["population"]["firms"] = firms
    raw["target"]["firms"] = max(1, round(raw["target"]["firms"] * factor))
    for res in raw.get("resources", {}).values():
        res["capacity"] = max(1, round(res["capacity"] * factor))
    for pol in raw.get("policy", []):
        if "budget" in pol:
            pol["budget"] *= factor
    return validate(raw, source=str(path))


def measure(engine: str, workload: str, firms: int) -> dict:
    """In this (fresh) process: load everything, then time one replication."""
    sys.path.insert(0, str(HERE))
    from sim.engines import engines
    from sim.execution.runner import replication_rng

    sc = scaled(workload, firms)
    load = 0.0
    if engine == "reference":
        from reference import simulate_reference

        def run(rng):
            simulate_reference(sc, rng)
            return None
    else:
        fn = engines()[engine]

        def run(rng):
            return fn(sc, rng)

        # The compiled engine loads its machine code from numba's cache on its first call in
        # a process (a one-time cost like the imports, reported as load_s, not timed): a run
        # of the workload at 1,000 firms first.
        load = time.process_time()
        fn(scaled(workload, 1_000), replication_rng(2, 0))
        load = time.process_time() - load
    gc.collect()
    gc.freeze()  # every contender alike, as sim's workers do (sim.execution.pool.settle)
    rng = replication_rng(1, 0)
    cpu, wall = time.process_time(), time.perf_counter()
    res = run(rng)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"engine": engine, "workload": workload, "firms": firms, "s_per_rep": cpu,
            "wall_s": wall, "load_s": load,
            "events": res.events.get("events", 0) if res is not None else 0,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(engine: str, workload: str, firms: int) -> dict:
    """`measure` in a fresh interpreter: no warm state, and its peak memory is its own."""
    out = subprocess.run([sys.executable, __file__, "--one", engine, workload, str(firms)],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def plan(quick: bool) -> list[tuple[str, str, int]]:
    sizes = (50_000, 200_000, 520_000) if quick else SIZES
    jobs = []
    for firms in sizes:
        for engine in ENGINES:
            if engine != "reference" or firms <= REFERENCE_MAX:
                jobs.append((engine, "yardstick", firms))
        if firms != 200_000:
            jobs += [(engine, "baseline", firms) for engine in ENGINES[1:]]
    return jobs


def table(rows: list[dict]) -> str:
    ref = {r["firms"]: r["s_per_rep"] for r in rows if r["engine"] == "reference"}
    lines = ["| workload | firms | engine | CPU s / replication | events / s | peak MB | "
             "reference / engine | first call s |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        events = f"{r['events'] / r['s_per_rep']:,.0f}" if r["events"] else "-"
        ratio = ("" if r["engine"] == "reference" or r["workload"] != "yardstick"
                 or r["firms"] not in ref else f"{ref[r['firms']] / r['s_per_rep']:,.0f}x")
        lines.append(f"| {r['workload']} | {r['firms']:,} | {r['engine']} | "
                     f"{r['s_per_rep']:.3f} | {events} | {r['peak_mb']:.0f} | {ratio} | "
                     f"{r.get('load_s', 0.0):.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="up to 520,000 firms only")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per contender")
    parser.add_argument("--one", nargs=3, metavar=("ENGINE", "WORKLOAD", "FIRMS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        engine, workload, firms = args.one
        print(json.dumps(measure(engine, workload, int(firms))))
        return
    load_before = os.getloadavg()
    started = time.perf_counter()
    jobs = plan(args.quick)
    best: dict[tuple, dict] = {}
    for repeat in range(args.repeats):  # interleaved: every contender once per round
        for job in jobs:
            row = child(*job)
            old = best.get(job)
            if old is None or row["s_per_rep"] < old["s_per_rep"]:
                best[job] = {**row, "peak_mb": max(row["peak_mb"], old["peak_mb"] if old
                                                   else 0.0)}
            print(f"  round {repeat + 1}: {job[1]:9s} {job[2]:>9,} {job[0]:9s} "
                  f"{row['s_per_rep']:8.3f} CPU s", file=sys.stderr, flush=True)
    print(table([best[job] for job in jobs]))
    load_after = os.getloadavg()
    print(f"\nbest of {args.repeats} fresh processes each, CPU seconds; "
          f"{time.perf_counter() - started:.0f} s in all; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; "
          f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
