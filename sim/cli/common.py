"""Pieces every `sim` subcommand shares: exit codes, the one-line bad-input error, option types."""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class BadInput(Exception):
    """A problem with what the user typed: reported as one line per problem, exit 2."""

    def __init__(self, *lines: str):
        self.lines = list(lines)
        super().__init__("\n".join(lines))


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit 2 with usage; keep one line
        raise BadInput(f"sim: {message} (see 'sim {self.prog.split()[-1]} --help')"
                       if " " in self.prog else f"sim: {message} (see 'sim --help')")


def _whole(text: str, lo: int, rule: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < lo:
        raise argparse.ArgumentTypeError(f"{text} {rule}")
    return value


def positive_int(text: str) -> int:
    return _whole(text, 1, "must be at least 1")


def nonnegative_int(text: str) -> int:
    return _whole(text, 0, "must be >= 0")
