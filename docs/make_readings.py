"""Regenerate the README's verdict tables: every shipped scenario under every reading of the
target, and the figures the README shows (the baseline's adoption curves, the comparison).

    .venv/bin/python docs/make_readings.py               # exact engine, 200 runs: ~2 min
    .venv/bin/python docs/make_readings.py --engine tau  # a quick look, not for the README

Runs each scenario as `sim run` would (results/<name>/), then rewrites the README between
the markers `<!-- readings:begin -->` / `<!-- readings:end -->` and
`<!-- verdicts:begin -->` / `<!-- verdicts:end -->`. Every number is computed here.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from sim import api
from sim.analysis.verdict import reading_counts, wilson
from sim.cli.main import main as sim_main
from sim.readout.shares import share_text
from sim.scenario import LEVELS, load

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
SCENARIOS = ("baseline", "broad-definition", "constrained", "accelerated", "regional-quotas")
READINGS = (("new", "line"), ("stock", "line"), ("upgraded", "line"),
            ("new", "device"), ("stock", "device"), ("upgraded", "device"))
WHAT = {
    "baseline": "announced policies with their end dates; integrator and compute capacity on "
                "trend",
    "broad-definition": "as baseline, but the target counts any device-level upgrade",
    "constrained": "integrator shortage plus a compute cut from tighter chip export controls",
    "accelerated": "stronger policies extended to 2030, integrators as baseline",
    "regional-quotas": "as baseline, with each region asked for its share of the target and "
                       "pushed (x1.3) when it lags",
}


def counts(outcome: api.RunOutcome, reading: str, level: str) -> np.ndarray:
    """Each replication's count at the deadline under one reading of the target."""
    sc = outcome.scenario
    k = LEVELS.index(level)
    return reading_counts(sc, outcome.results, sc.target.deadline)[reading][:, k]


def cell(x: np.ndarray, firms: int) -> str:
    """'~46,300 · met 100% [98-100%]' for one scenario under one reading; a share reads 0% or
    100% only when none or all runs meet it ('met <1% [<1%, 3%]' for 1 run in 200)."""
    met = int((x >= firms).sum())
    lo, hi = (share_text(b) for b in wilson(met, len(x)))
    mark = "**" if met / len(x) >= 0.5 else ""
    band = (f"[{lo[:-1]}-{hi}]" if lo[0].isdigit() and hi[0].isdigit() else f"[{lo}, {hi}]")
    return f"{mark}{x.mean():,.0f}{mark} · met {share_text(met / len(x))} {band}"


def replace_between(text: str, tag: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {tag}:begin -->\n).*?(<!-- {tag}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md: markers <!-- {tag}:begin/end --> not found")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="des")
    ap.add_argument("--replications", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--no-readme", action="store_true", help="print the tables only")
    args = ap.parse_args(argv)

    outcomes: dict[str, api.RunOutcome] = {}
    for name in SCENARIOS:
        sets = [f"replications={args.replications}"] if args.replications else []
        sc = load(ROOT / "scenarios" / f"{name}.toml", sets)
        t0 = time.perf_counter()
        out = api.run(sc, engine=args.engine, jobs=args.jobs)
        api.write(out, ROOT / "results" / name)
        outcomes[name] = out
        print(f"{name}: {out.line} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    first = outcomes["baseline"]
    firms, deadline = first.scenario.target.firms, first.scenario.target.deadline
    head = "| scenario | " + " | ".join(f"{r} >= {lv}" for r, lv in READINGS) + " |"
    rows = [head, "|---|" + "---:|" * len(READINGS)]
    for name, out in outcomes.items():
        rows.append(f"| `{name}` | " + " | ".join(
            cell(counts(out, r, lv), firms) for r, lv in READINGS) + " |")
    n = len(first.results)
    readings = "\n".join([
        f"Firms counted at {deadline} (mean over {n} runs, {args.engine} engine, seed "
        f"{first.scenario.seed}) and the share of runs reaching {firms:,} with its Wilson "
        "95% interval; bold where it is met in at least half the runs.", "", *rows, ""])

    verdicts = ["| scenario | what it assumes | verdict as `sim run` prints it |", "|---|---|---|"]
    for name, out in outcomes.items():
        verdicts.append(f"| `{name}` | {WHAT[name]} | {out.line} |")
    verdict_text = "\n".join([*verdicts, ""])

    print(readings)
    print(verdict_text)
    if args.no_readme:
        return 0
    shutil.copyfile(ROOT / "results" / "baseline" / "adoption.png",
                    DOCS / "figures" / "baseline-adoption.png")
    shutil.copyfile(ROOT / "results" / "regional-quotas" / "regions.png",
                    DOCS / "figures" / "regional-quotas-regions.png")
    code = sim_main(["compare", *(str(ROOT / "results" / s) for s in SCENARIOS),
                     "--out", str(ROOT / "results" / "compare")])
    if code == 0 and (ROOT / "results" / "compare" / "compare.png").is_file():
        shutil.copyfile(ROOT / "results" / "compare" / "compare.png",
                        DOCS / "figures" / "compare.png")
    readme = ROOT / "README.md"
    text = replace_between(readme.read_text(encoding="utf-8"), "readings", readings)
    text = replace_between(text, "verdicts", verdict_text)
    readme.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
