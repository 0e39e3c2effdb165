"""Where a replication of the fast engine spends its time, on the shipped baseline and on
the national one (issue 17's goal: 10,000 runs in 20 s on 2 cores, 4 ms of CPU each).

    python benchmarks/tau_costs.py [SCENARIO] [--repeats 3]

For the scenario as shipped and its national variant (`variants.national`) it runs blocks
of `batch_size` replications, as `sim run` does, and prints per replication: the time of a
block (best of the repeats, after an untimed block that loads the compiled kernels), the
events (decisions, completions, exits, entrants), the 64-bit random draws (counted on the
counter of numpy's SFC64 generator, which the run draws from here), the cells, and the time
of each compiled kernel and of the rest (one more block under cProfile, which adds a little
to the Python part).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from pathlib import Path

import numpy as np
from variants import national

from sim.engines import rules
from sim.engines.tau import batch_size, simulate_tau_batch
from sim.engines.tau_cells import Cells, families
from sim.scenario import Scenario, load, validate

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ("decide", "decide_around", "file_projects", "complete", "take", "serve_in_order",
           "thin_out", "withdraw", "leave", "entrants", "unpack_into")


def _costs(sc: Scenario, repeats: int) -> dict[str, float]:
    n = batch_size(sc)
    bits = np.random.SFC64(sc.seed)
    rng = np.random.Generator(bits)
    simulate_tau_batch(sc, rng, n)  # loads the compiled kernels
    best = np.inf
    for _ in range(repeats):
        started = time.process_time()
        simulate_tau_batch(sc, rng, n)
        best = min(best, time.process_time() - started)
    before = int(bits.state["state"]["state"][3])  # SFC64's counter: one a 64-bit draw
    profile = cProfile.Profile()
    runs = profile.runcall(simulate_tau_batch, sc, rng, n)
    draws = int(bits.state["state"]["state"][3]) - before
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    kernel = {name: 0.0 for name in KERNELS}
    total = 0.0
    for (_, _, name), (_, _, own, inclusive, _) in stats.items():
        total += own
        if name in kernel:  # (with what it calls: numpy's multinomial for entrants)
            kernel[name] += inclusive
    out = {"ms": 1e3 * best / n, "cells": rules.Parameters(sc).n_segments
           * Cells(families(sc)).K}
    for key in ("decisions", "completions"):
        out[key] = float(np.mean([r.events[key] for r in runs]))
    out["exits"] = float(np.mean([r.exited for r in runs]))
    out["entrants"] = float(np.mean([r.entered for r in runs]))
    out["draws"] = draws / n
    out.update({f"ms {k}": 1e3 * v / n for k, v in kernel.items()})
    out["ms rest (profiled)"] = 1e3 * (total - sum(kernel.values())) / n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "baseline.toml"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    shipped = load(args.scenario)
    variants = {"shipped": shipped, "national": validate(national(shipped.raw),
                                                         source=args.scenario)}
    load_before = os.getloadavg()[0]
    rows = {name: _costs(sc, args.repeats) for name, sc in variants.items()}
    print(f"{shipped.name}, fast engine in blocks of {batch_size(shipped)}, per replication "
          f"(load average before {load_before:.2f}; goal: 4.0 ms)")
    print(f"{'':24}" + "".join(f"{name:>12}" for name in rows))
    for key in rows["shipped"]:
        if key.startswith("ms ") and all(r[key] < 0.005 for r in rows.values()):
            continue  # a kernel neither variant uses
        print(f"{key:24}" + "".join(
            f"{r[key]:12.2f}" if key.startswith("ms") else f"{r[key]:12,.0f}"
            for r in rows.values()))


if __name__ == "__main__":
    main()
