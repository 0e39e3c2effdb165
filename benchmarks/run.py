"""Speed and memory of the engines, side by side in one run, so machine noise cancels.

    python benchmarks/run.py              # the full table (about 6 minutes on 2 cores)
    python benchmarks/run.py --quick      # 50,000 and 520,000 firms only

Each measurement runs in its own process (one warm-up replication, then timed ones) and
reports seconds per replication, events per second and the process's peak resident memory.
Two workloads: the yardstick of issue 6 (`four-levels.toml`: one segment, no resources,
lognormal times, the only model the one-process-per-firm reference can run) and the shipped
baseline with population, capacities and budgets scaled to each size.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SIZES = (50_000, 200_000, 520_000, 1_000_000, 5_000_000)
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


def measure(engine: str, workload: str, firms: int, reps: int) -> dict:
    """Run in this process: warm up once, then time `reps` replications."""
    sys.path.insert(0, str(HERE))
    from sim.engines import engines
    from sim.execution.runner import replication_rng

    sc = scaled(workload, firms)
    if engine == "reference":
        from reference import simulate_reference

        def run(rng):
            simulate_reference(sc, rng)
            return None
    else:
        fn = engines()[engine]

        def run(rng):
            return fn(sc, rng)

    run(replication_rng(99, 0))
    events = 0
    started = time.perf_counter()
    for i in range(reps):
        res = run(replication_rng(1, i))
        events += res.events.get("events", 0) if res is not None else 0
    elapsed = (time.perf_counter() - started) / reps
    return {"engine": engine, "workload": workload, "firms": firms, "reps": reps,
            "s_per_rep": elapsed, "events": events / reps,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(engine: str, workload: str, firms: int, reps: int) -> dict:
    """`measure` in a fresh interpreter, so peak memory is this measurement's alone."""
    out = subprocess.run([sys.executable, __file__, "--one", engine, workload, str(firms),
                          str(reps)], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def reps_for(engine: str, firms: int) -> int:
    per_rep = {"reference": 2e-5, "des": 2e-6, "tau": 1e-8, "meanfield": 1e-9}[engine] * firms
    return max(1, min(20, int(6.0 / max(per_rep, 1e-3))))


def plan(quick: bool) -> list[tuple[str, str, int]]:
    sizes = (50_000, 200_000, 520_000) if quick else SIZES
    jobs = []
    for firms in sizes:
        for engine in ("reference", "des", "tau"):
            if engine != "reference" or firms <= REFERENCE_MAX:
                jobs.append((engine, "yardstick", firms))
        if firms != 200_000:
            jobs += [("des", "baseline", firms), ("tau", "baseline", firms)]
    return jobs


def table(rows: list[dict]) -> str:
    ref = {r["firms"]: r["s_per_rep"] for r in rows if r["engine"] == "reference"}
    lines = ["| workload | firms | engine | s / replication | events / s | peak MB | "
             "reference / engine |", "|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        events = f"{r['events'] / r['s_per_rep']:,.0f}" if r["events"] else "-"
        ratio = ("" if r["engine"] == "reference" or r["workload"] != "yardstick"
                 or r["firms"] not in ref else f"{ref[r['firms']] / r['s_per_rep']:,.0f}x")
        lines.append(f"| {r['workload']} | {r['firms']:,} | {r['engine']} | "
                     f"{r['s_per_rep']:.3f} | {events} | {r['peak_mb']:.0f} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="up to 520,000 firms only")
    parser.add_argument("--one", nargs=4, metavar=("ENGINE", "WORKLOAD", "FIRMS", "REPS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        engine, workload, firms, reps = args.one
        print(json.dumps(measure(engine, workload, int(firms), int(reps))))
        return
    rows = []
    started = time.perf_counter()
    for engine, workload, firms in plan(args.quick):
        row = child(engine, workload, firms, reps_for(engine, firms))
        rows.append(row)
        print(f"  {workload:9s} {firms:>9,} {engine:9s} {row['s_per_rep']:8.3f} s/rep "
              f"{row['peak_mb']:6.0f} MB", file=sys.stderr, flush=True)
    print(table(rows))
    print(f"\n{time.perf_counter() - started:.0f} s in all; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
