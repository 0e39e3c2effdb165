"""The `sim` command: one short module per command; `sim.cli.main` parses and dispatches."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status. `sim --version` answers
    without importing the commands (and the numerical libraries behind them)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        from sim import __version__

        print(f"sim {__version__}")
        return 0
    from sim.cli.main import main as dispatch

    return dispatch(args)
