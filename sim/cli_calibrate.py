"""`sim calibrate`: fit Bass parameters to an observed series (issue 4; being built)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .cliutil import BadInput


def add_parser(sub) -> None:
    """Register the `calibrate` subcommand."""
    sub.add_parser("calibrate", help="fit Bass parameters to a series (not yet available)")


def is_fit_folder(folder: Path) -> bool:
    """True when `folder` holds a calibration's results."""
    return (folder / "fit.json").is_file()


def cmd_calibrate(args: argparse.Namespace) -> int:
    raise BadInput("sim calibrate: not available in this version")


def cmd_plot_fit(folder: Path) -> int:
    raise BadInput(f"sim plot: {folder}: fit figures are not available in this version")
