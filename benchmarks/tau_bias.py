"""Bias of the fixed-step engine against the exact engine on a shipped scenario.

    python benchmarks/tau_bias.py [SCENARIO] [--replications 500] [--jobs 2] [--step DAYS]

Runs the same replications with both engines and prints: P(met) with Wilson 95% intervals
for the scenario's own target and for a target put at the exact engine's median count at
the deadline (where P(met) is near one half, so a bias shows), and the largest gap between
the two engines' median curves at any month and level, as a share of the population.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sim.analysis.verdict import wilson
from sim.execution.runner import run_replications
from sim.scenario import load

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "baseline.toml"))
    parser.add_argument("--replications", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--step", type=float, help="tau step in days (default: the scenario's)")
    args = parser.parse_args()
    overrides = [f"engine.tau_step={args.step}"] if args.step else []
    sc = load(args.scenario, overrides)
    idx = range(args.replications)
    count, median, secs = {}, {}, {}
    for engine in ("des", "tau"):
        started = time.perf_counter()
        runs = run_replications(sc, idx, seed=sc.seed, engine=engine, jobs=args.jobs)
        secs[engine] = time.perf_counter() - started
        count[engine] = np.array([runs[i].count_at_deadline for i in idx])
        median[engine] = np.median(np.stack([runs[i].at_or_above for i in idx]), axis=0)
    gap = np.abs(median["des"] - median["tau"]) / sc.firms
    month, level = np.unravel_index(np.argmax(gap), gap.shape)
    print(f"{sc.name}: {args.replications} replications per engine, tau step {sc.tau_step:g} "
          f"days; des {secs['des']:.0f} s, tau {secs['tau']:.1f} s ({args.jobs} jobs)")
    print(f"largest gap between median curves: {gap.max():.4%} of the population "
          f"(month {month + 1}, level {level + 1}); limit 0.5%")
    sensitive = int(np.median(count["des"]))
    for label, firms in (("scenario target", sc.target.firms), ("target at DES median",
                                                                 sensitive)):
        parts = []
        for e in count:
            met = int(np.sum(count[e] >= firms))
            lo, hi = wilson(met, args.replications)
            parts.append(f"{e} {met / args.replications:.1%} [{lo:.1%}, {hi:.1%}]")
        print(f"P(met), {label} ({firms:,} new firms): " + "; ".join(parts))
    for e in count:
        c = count[e]
        print(f"count at deadline, {e}: mean {c.mean():,.0f}, sd {c.std(ddof=1):,.0f}")


if __name__ == "__main__":
    main()
