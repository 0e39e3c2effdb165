"""The `sim` command: builds the parser from one module per command, dispatches, and maps
exceptions to exit codes. No modelling happens here.

Exit status: 0 success; 2 bad input (scenario, options, data file); 1 anything else;
130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from sim import __version__
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

COMMANDS = {
    "run": "run a scenario's replications and print the verdict",
    "check": "validate scenario files without running them",
    "keys": "list the scenario keys: type, allowed values, default, meaning",
    "plot": "redraw the figures and report of a finished run, sweep, solve or fit",
    "sweep": "run a design over parameters; resumable",
    "solve": "find the parameter value at which P(target met) reaches a probability",
    "compare": "compare finished runs' counted curves against their targets",
    "calibrate": "fit Bass innovation, imitation and market size to an observed series",
}
"""The commands, in the order `sim --help` lists them, with that listing's line; each is the
module `sim.cli.<name>` with `add_parser(sub)` and `cmd_<name>(args)`. The lines repeat each
module's `help=` (tests/test_cli.py checks that they agree) so that the listing needs no
module: importing all of them loads scipy's optimisers and statistics (`calibrate`), the
use cases and the engines, about a second before anything is done."""


def build_parser(*loaded: str) -> argparse.ArgumentParser:
    """`sim` and its subcommands. The commands named in `loaded` (all of them when none is
    named) get their options from their modules; the others are only listed, so
    `build_parser("")` loads no command at all."""
    parser = Parser(prog="sim", description="Simulate industrial-internet + AI adoption by "
                    "Chinese manufacturers and judge MIIT's 2028 target.")
    parser.add_argument("--version", action="version", version=f"sim {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    for name, line in COMMANDS.items():
        if not loaded or name in loaded:
            importlib.import_module(f"sim.cli.{name}").add_parser(sub)
        else:
            sub.add_parser(name, help=line)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only the command asked for is imported (`sim --help` imports none), see COMMANDS.
    asked = argv[0] if argv and argv[0] in COMMANDS else ""
    command = "sim"
    try:
        args = build_parser(asked).parse_args(argv)
        if args.command is None:
            build_parser("").print_help()
            return EXIT_OK
        command = args.command
        module = importlib.import_module(f"sim.cli.{command}")
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line(command, warnings.showwarning)
            return getattr(module, f"cmd_{command}")(args)
    except KeyboardInterrupt as exc:
        print("sim: interrupted", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:
        lines = _bad_input(exc, command)
        if lines is None:
            raise
        for line in lines:
            print(line, file=sys.stderr)
        return EXIT_BAD_INPUT


def _warning_line(command: str, other: Callable[..., None]) -> Callable[..., None]:
    """How a command says a warning meant for its user (UserWarning, RuntimeWarning): one
    line, `sim COMMAND: warning: ...`, not Python's file, line number and source line (a
    report that could not be built, say). Others (a library's deprecations) go to `other`,
    Python's way."""
    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any
             ) -> None:
        if issubclass(category, UserWarning | RuntimeWarning):
            print(f"sim {command}: warning: {message}", file=sys.stderr)
        else:
            other(message, category, *args, **kwargs)

    return show


def _bad_input(exc: Exception, command: str) -> list[str] | None:
    """The lines saying what was wrong with the input, or None for any other error."""
    if isinstance(exc, BadInput):
        return exc.lines
    if isinstance(exc, ScenarioError):
        return exc.problems
    # InputError can only come from the use cases, which are then loaded; importing them
    # here would load numpy and the engines for `sim check` and `sim --help`.
    api = sys.modules.get("sim.api.common")
    if api is not None and isinstance(exc, api.InputError):
        return [f"sim {command}: {ln}" for ln in exc.lines] if exc.options else exc.lines
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
