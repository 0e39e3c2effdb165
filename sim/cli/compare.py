"""`sim compare RESULTS_DIR...`: several finished runs' counted curves against their targets,
as one figure (compare.png) and one table (compare.csv), and a line per run on stdout."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sim.analysis.compare import READINGS, RunCurve, compare, describe_reading, summary_lines
from sim.analysis.compare import table_csv as compare_table_csv
from sim.cli.common import (
    EXIT_OK,
    check_out,
    interrupted_line,
    out_folder,
    signals_held,
    stop_on_signals,
)
from sim.scenario import LEVELS
from sim.store import files

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_OUT = files.RESULTS_ROOT / "compare"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the `compare` subcommand."""
    cmp = sub.add_parser(
        "compare", help="compare finished runs' counted curves against their targets",
        description="Draw the counted curve of several finished runs (median and 5-95% of "
        "replications at each month end) on one figure against their targets, and write "
        "the same numbers as a table. Each run is read as its target counts (its "
        "[target] count and level) unless --count or --level imposes one reading on all.")
    cmp.add_argument("results", type=Path, nargs="+", metavar="RESULTS_DIR",
                     help="run folders written by `sim run`")
    cmp.add_argument("--count", choices=READINGS, metavar="COUNT",
                     help="read every run as this count: new (firms newly at or above the "
                     "level since the start), stock (all firms at or above it) or upgraded "
                     "(firms that completed a project at or above it); default: each run's "
                     "target count")
    cmp.add_argument("--level", choices=LEVELS, metavar="LEVEL",
                     help=f"read every run at this level ({', '.join(LEVELS)}); default: each "
                     "run's target level")
    cmp.add_argument("--out", type=out_folder, metavar="DIR",
                     help=f"folder for compare.png and compare.csv (default {DEFAULT_OUT}/)")


def cmd_compare(args: argparse.Namespace) -> int:
    out: Path = args.out if args.out is not None else DEFAULT_OUT
    check_out("compare", out, "comparison")
    folders, left_out = _without_out(args.results, out)
    runs = compare(folders, count=args.count, level=args.level)
    figure = compare_figure_of(runs)
    with stop_on_signals():
        try:
            with signals_held():
                write_compare(runs, out, figure)
        except KeyboardInterrupt as exc:
            return interrupted_line("compare", exc, f"{out}/ holds the previous comparison or none")
    for line in summary_lines(runs):
        print(line)
    if left_out:
        print(f"sim compare: left out {out} (the --out folder)", file=sys.stderr)
    runs_said = f"{len(runs)} run{'s' if len(runs) > 1 else ''}"
    print(f"results in {out}/ (compare.png, compare.csv; {runs_said})", file=sys.stderr)
    return EXIT_OK


def _without_out(folders: Sequence[Path], out: Path) -> tuple[list[Path], bool]:
    """The folders given, less the --out folder itself (`sim compare results/* --out
    results/compare` run twice finds its own earlier output among the folders), and whether
    it was among them."""
    target = out.resolve()
    kept = [f for f in folders if f.resolve() != target]
    return kept, len(kept) < len(folders)


def compare_figure_of(runs: Sequence[RunCurve]) -> Figure:
    """compare.png's figure: each run labelled `name (engine, reading): mean at deadline`."""
    from sim.plots.compare import compare_figure

    readings = {(r.count, r.level) for r in runs}
    imposed = not all(r.own_reading for r in runs)
    if len(readings) == 1:
        (count, level), = readings
        ylabel = describe_reading(count, level)
        title = f"{ylabel[0].upper()}{ylabel[1:]}: {len(runs)} runs against the target"
        if len({r.target_firms for r in runs}) > 1:
            title += "s"
    else:
        ylabel = "firms counted (the reading of each run is in the legend)"
        counts, levels = {r.count for r in runs}, {r.level for r in runs}
        how = ("each on its own target reading" if not imposed
               else f"{counts.pop()} at each run's target level" if len(counts) == 1
               else f"each run's target count at {levels.pop()}" if len(levels) == 1
               else "on the readings in the legend")
        title = f"Counted firms: {len(runs)} runs, {how}"
    if imposed:
        subtitle = (f"runs read as {', '.join(sorted({r.reading for r in runs}))}; their "
                    "targets were set for "
                    f"{', '.join(sorted({r.target_reading for r in runs}))}")
    else:
        subtitle = "each run read as its target counts"
    labels = [f"{r.name} ({r.engine}, {r.reading}): {_at_deadline(r)}" for r in runs]
    return compare_figure(
        [r.dates for r in runs], labels, [r.p05 for r in runs], [r.p50 for r in runs],
        [r.p95 for r in runs], targets=[r.target_firms for r in runs],
        deadlines=[r.deadline for r in runs], ylabel=ylabel, title=title, subtitle=subtitle,
        legend_title="run (engine, reading): mean count at the deadline [5-95% of "
        "replications]; line: median, band: 5-95% (hidden by the line where they agree)",
        names=[r.name for r in runs])


def _at_deadline(run: RunCurve) -> str:
    """`14,680 [14,545-14,897] at 2028-12-31`: mean and 5-95% of the replications."""
    if run.replications == 1:
        return f"{run.at_deadline:,.0f} at {run.at_deadline_date.isoformat()} (one trajectory)"
    lo, hi = run.deadline_band
    return f"{run.at_deadline:,.0f} [{lo:,.0f}-{hi:,.0f}] at {run.at_deadline_date.isoformat()}"


def write_compare(runs: Sequence[RunCurve], out: Path, figure: Figure | None = None) -> Path:
    """Publish compare.png and compare.csv into `out` as a set (see `files.publish`): killed
    at any moment, `out` holds the previous comparison or none, never half of each."""
    from sim.plots.adoption import png

    fig = figure if figure is not None else compare_figure_of(runs)
    files.publish(out, [("compare.png", png(fig)), ("compare.csv", compare_table_csv(runs))])
    return out
