"""What regions and firm entry/exit cost per replication, on each engine (issue 15's goal:
the baseline with regions within 1.5x the national baseline's time).

    python benchmarks/regions.py                  # best of 3, every engine, three variants
    python benchmarks/regions.py --repeats 5
    python benchmarks/regions.py --repo ../old    # the national variant on another checkout

Variants of scenarios/baseline.toml, made on its TOML table before validation (so an older
checkout, which knows no regions, can run the national one):
- national: no regions, no regional policies, no entry or exit (what the baseline was);
- regions: the provincial groups and their policies, no entry or exit;
- shipped: the file as it is (regions and entry/exit).
Each time is one replication in a fresh interpreter, CPU seconds after imports and loading,
best of the repeats, variants and engines interleaved; the load average is printed.
`tau-batch` is the fast engine as `sim run` runs it, a block of `batch_size` replications
together: its time is the block's divided by the replications in it (checkouts without
batches report it as missing, as do those without `des-simpy`: there `des` is the simpy
engine). Every engine but `des-simpy` runs one replication untimed first: the mean field's
solver imports, and the compiled loops of `des` and `tau` load their machine code from
numba's cache on the first call in a process (~0.2-0.3 s, once per process).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("national", "regions", "shipped")
ENGINES = ("des", "des-simpy", "tau", "tau-batch", "meanfield")

CHILD = r"""
import json, sys, time
import numpy as np
from sim.scenario import read_toml, validate
from sim.engines import engines
variant, engine, path = sys.argv[1], sys.argv[2], sys.argv[3]
from pathlib import Path
raw = read_toml(Path(path))
pop = raw["population"]
if variant != "shipped":
    for key in ("entry", "exit", "entry_device"):
        pop.pop(key, None)
if variant == "national":
    pop.pop("region", None)
    pop.pop("quotas", None)
    raw["policy"] = [p for p in raw.get("policy", []) if "regions" not in p]
sc = validate(raw, source=path)
n = 1
if engine == "tau-batch":  # as `sim run` runs it: a block of replications together
    from sim.engines.tau import batch_size, simulate_tau_batch
    n = batch_size(sc)
    def run(sc, rng):
        return simulate_tau_batch(sc, rng, n)
else:
    run = engines()[engine]
if engine != "des-simpy":  # the solver's imports; compiled loops load from numba's cache
    run(sc, np.random.default_rng(0))
import gc
gc.collect()
gc.freeze()  # as sim's workers do after their first task (sim.execution.pool.settle)
t = time.process_time()
run(sc, np.random.default_rng(1))
print(json.dumps({"cpu": (time.process_time() - t) / n}))
"""


def time_one(repo: Path, variant: str, engine: str) -> float:
    """CPU seconds of one replication in a fresh interpreter of `repo`."""
    env = dict(os.environ, PYTHONPATH=str(repo))
    out = subprocess.run([sys.executable, "-c", CHILD, variant, engine,
                          str(repo / "scenarios" / "baseline.toml")],
                         capture_output=True, text=True, env=env, cwd=repo, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["cpu"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--repo", type=Path, default=ROOT, help="checkout to time (default: this)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args(argv)
    variants = args.variants.split(",")
    print(f"load before: {os.getloadavg()[0]:.2f}  repo: {args.repo}", flush=True)
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.repeats):
        for engine in ENGINES:
            for variant in variants:
                try:
                    t = time_one(args.repo.resolve(), variant, engine)
                except subprocess.CalledProcessError:
                    t = math.nan  # an engine or variant that checkout does not have
                key = (engine, variant)
                seen = [x for x in (best.get(key, math.nan), t) if not math.isnan(x)]
                best[key] = min(seen, default=math.nan)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print("| engine | " + " | ".join(variants) + " |")
    print("|---|" + "---:|" * len(variants))
    for engine in ENGINES:
        row = [f"{best[(engine, v)]:.3f} s" for v in variants]
        if "national" in variants:
            base = best[(engine, "national")]
            row = [f"{best[(engine, v)]:.3f} s ({best[(engine, v)] / base:.2f}x)"
                   for v in variants]
        print(f"| {engine} | " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
