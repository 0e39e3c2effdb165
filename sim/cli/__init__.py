"""The `sim` command: one short module per command; `main` parses and dispatches."""

from sim.cli.main import main

__all__ = ["main"]
