"""`sim sweep` and `sim solve`: what it would take to meet the target (issue 5; being built)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .cliutil import BadInput


def add_parsers(sub) -> None:
    """Register the `sweep` and `solve` subcommands."""
    sub.add_parser("sweep", help="run a design over parameters (not yet available)")
    sub.add_parser("solve", help="find the parameter value that meets the target (not yet "
                   "available)")


def is_sweep_folder(folder: Path) -> bool:
    """True when `folder` holds a sweep's results (its manifest)."""
    return (folder / "manifest.json").is_file()


def cmd_sweep(args: argparse.Namespace) -> int:
    raise BadInput("sim sweep: not available in this version")


def cmd_solve(args: argparse.Namespace) -> int:
    raise BadInput("sim solve: not available in this version")


def cmd_plot_sweep(folder: Path) -> int:
    raise BadInput(f"sim plot: {folder}: sweep figures are not available in this version")
