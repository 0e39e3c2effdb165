"""How much faster a sweep runs on 2 local workers than on 1 (issue 5 asks for >= 1.7x).

Runs the same sweep (a Latin hypercube over two baseline parameters, exact engine) into two
fresh folders, once with --jobs 1 and once with --jobs 2, through the real code path
(batches, journal, tables), and checks that both wrote identical rows. The 2-worker time
includes starting the worker processes. The two are measured in turn, `--repeat` times,
and the fastest of each is kept: other work on the machine only ever adds time.

    .venv/bin/python benchmarks/sweep_speedup.py [--points 8] [--replications 6] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.execution.executor import LocalExecutor  # noqa: E402
from sim.explore.design import make_design, resolve_ranges  # noqa: E402
from sim.explore.plan import SweepPlan, run_sweep  # noqa: E402
from sim.scenario import load  # noqa: E402
from sim.store.sweep_tables import runs_csv  # noqa: E402

VARY = [("levels.line.imitation", 0.2, 1.0, False),
        ("resources.integrators.capacity", 12_000, 40_000, False)]


def _cpu() -> float:
    """CPU seconds used so far by this process and its finished children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed_sweep(plan: SweepPlan, jobs: int) -> tuple[float, float, str]:
    """Wall seconds for the whole sweep with `jobs` workers, the cores it got on average
    (CPU seconds / wall seconds: below `jobs` when other work held the machine), and its
    runs table."""
    with tempfile.TemporaryDirectory() as tmp:
        executor = LocalExecutor(jobs)
        cpu, started = _cpu(), time.perf_counter()
        try:
            rows = run_sweep(plan, Path(tmp), executor)
        finally:
            executor.close()
        wall = time.perf_counter() - started
        return wall, (_cpu() - cpu) / wall, runs_csv(plan.design, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "baseline.toml")
    parser.add_argument("--engine", default="des")
    parser.add_argument("--points", type=int, default=8)
    parser.add_argument("--replications", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--require", type=float, default=1.7,
                        help="exit 1 when the speed-up is below this")
    args = parser.parse_args()
    sc = load(args.scenario)
    ranges = resolve_ranges(sc.raw, VARY, source=str(args.scenario))
    design = make_design("lhs", ranges, args.points, sc.seed)
    plan = SweepPlan(sc, design, args.engine, args.replications, args.points)
    runs = len(design.points) * args.replications
    load_avg = os.getloadavg()[0]
    times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    rows: dict[int, str] = {}
    for _ in range(args.repeat):
        for jobs in (1, 2):
            seconds, cores, rows[jobs] = timed_sweep(plan, jobs)
            times[jobs].append((seconds, cores))
    (one, cores_one), (two, cores_two) = min(times[1]), min(times[2])
    speedup = one / two
    rows_one, rows_two = rows[1], rows[2]
    print(f"{sc.name}, {args.engine} engine, {runs} runs, best of {args.repeat}: 1 worker "
          f"{one:.1f} s ({one / runs:.3f} s/run), 2 workers {two:.1f} s: speed-up "
          f"{speedup:.2f}x (required {args.require:.2f}x); rows identical: "
          f"{rows_one == rows_two}; cores obtained {cores_one:.2f} and {cores_two:.2f} "
          f"(load average at start {load_avg:.2f} on {os.cpu_count()} cores)")
    return 0 if speedup >= args.require and rows_one == rows_two else 1


if __name__ == "__main__":
    sys.exit(main())
