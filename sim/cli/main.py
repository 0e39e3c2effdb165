"""The `sim` command: builds the parser from one module per command, dispatches, and maps
exceptions to exit codes. No modelling happens here.

Exit status: 0 success; 2 bad input (scenario, options, data file); 1 anything else;
130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sim import __version__
from sim.cli import calibrate as cli_calibrate
from sim.cli import check as cli_check
from sim.cli import compare as cli_compare
from sim.cli import plot as cli_plot
from sim.cli import run as cli_run
from sim.cli import solve as cli_solve
from sim.cli import sweep as cli_sweep
from sim.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    BadInput,
    Parser,
    Terminated,
)
from sim.scenario import ScenarioError

COMMANDS = {"run": cli_run.cmd_run, "check": cli_check.cmd_check, "plot": cli_plot.cmd_plot,
            "sweep": cli_sweep.cmd_sweep, "solve": cli_solve.cmd_solve,
            "calibrate": cli_calibrate.cmd_calibrate, "compare": cli_compare.cmd_compare}


def build_parser() -> argparse.ArgumentParser:
    """`sim` and its subcommands, in the order `sim --help` lists them."""
    parser = Parser(prog="sim", description="Simulate industrial-internet + AI adoption by "
                    "Chinese manufacturers and judge MIIT's 2028 target.")
    parser.add_argument("--version", action="version", version=f"sim {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    for module in (cli_run, cli_check, cli_plot, cli_sweep, cli_solve, cli_compare):
        module.add_parser(sub)
    cli_calibrate.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    from sim.api import InputError

    command = "sim"
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return EXIT_OK
        command = args.command
        return COMMANDS[command](args)
    except (BadInput, ScenarioError, InputError) as exc:
        if isinstance(exc, InputError):
            lines = [f"sim {command}: {ln}" for ln in exc.lines] if exc.options else exc.lines
        else:
            lines = exc.lines if isinstance(exc, BadInput) else exc.problems
        for line in lines:
            print(line, file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        print("sim: interrupted", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
