"""`sim plot RESULTS_DIR`: redraw the figures of a finished run, sweep, solve or fit."""

from __future__ import annotations

import argparse
from pathlib import Path

from sim import api
from sim.api.solve import redraw_solve
from sim.cli import calibrate as cli_calibrate
from sim.cli.common import EXIT_OK, BadInput
from sim.cli.sweep import add_axes_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    plot = sub.add_parser("plot", help="redraw the figures of a finished run")
    plot.add_argument("results", type=Path,
                      help="a results folder written by `sim run`, `sim sweep`, `sim solve` "
                      "or `sim calibrate`")
    add_axes_option(plot)


def cmd_plot(args: argparse.Namespace) -> int:
    folder: Path = args.results
    if args.axes and not api.is_sweep_folder(folder):
        raise BadInput(f"sim plot: --axes {','.join(args.axes)}: only for a sweep folder "
                       f"({folder} is not one)")
    if cli_calibrate.is_fit_folder(folder) and not api.is_sweep_folder(folder):
        return cli_calibrate.cmd_plot_fit(folder)
    try:
        if api.is_sweep_folder(folder):
            drawn = api.redraw_sweep(folder, args.axes)
        elif (folder / "solve.json").is_file():
            drawn = redraw_solve(folder)
        else:
            drawn = api.redraw_run(folder)
    except api.InputError:
        raise  # options and folders the redraw refuses, in its own words
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        # A damaged folder (a file truncated, emptied or edited by hand) is bad input: say
        # which folder and what was wrong, in one line.
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(f"sim plot: {folder}/ cannot be redrawn, a file in it is damaged or "
                       f"missing ({type(exc).__name__}: {what})") from None
    for path in drawn:
        print(f"redrew {path}")
    return EXIT_OK
