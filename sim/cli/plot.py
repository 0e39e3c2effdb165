"""`sim plot RESULTS_DIR`: redraw the figures of a finished run, sweep, solve or fit."""

from __future__ import annotations

import argparse
from pathlib import Path

from sim import api
from sim.api.solve import redraw_solve
from sim.cli import calibrate as cli_calibrate
from sim.cli.common import EXIT_OK, BadInput, shown
from sim.cli.sweep import add_axes_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    plot = sub.add_parser("plot", help="redraw the figures and report of a finished run, "
                          "sweep, solve or fit")
    plot.add_argument("results", type=Path,
                      help="a results folder written by `sim run`, `sim sweep`, `sim solve` "
                      "or `sim calibrate`")
    add_axes_option(plot)


def cmd_plot(args: argparse.Namespace) -> int:
    folder: Path = args.results
    try:
        problem = (None if folder.is_dir() else "is not a folder" if folder.exists()
                   else "no such folder")
    except OSError as exc:  # a name too long, a loop of links
        problem = exc.strerror or str(exc)
    if problem is not None:
        raise BadInput(f"sim plot: {shown(folder)}: {problem} (give a folder written by sim "
                       "run, sweep, solve or calibrate)")
    if args.axes and not api.is_sweep_folder(folder):
        raise BadInput(f"sim plot: --axes {','.join(args.axes)}: only for a sweep folder "
                       f"({folder} is not one)")
    if cli_calibrate.is_fit_folder(folder) and not api.is_sweep_folder(folder):
        return cli_calibrate.cmd_plot_fit(folder)
    # (a damaged folder is InputError from the redraws: `sim.api.common.redrawing`)
    if api.is_sweep_folder(folder):
        drawn = api.redraw_sweep(folder, args.axes)
    elif (folder / "solve.json").is_file():
        drawn = redraw_solve(folder)
    else:
        drawn = api.redraw_run(folder)
    for path in drawn:
        print(f"redrew {path}")
    return EXIT_OK
