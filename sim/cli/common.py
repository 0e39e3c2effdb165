"""What every `sim` subcommand shares: exit codes, the one-line bad-input error, option
types, the options of the batch commands, signal handling and the progress bar."""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_TERMINATED = 143


class BadInput(Exception):
    """A problem with what the user typed: reported as one line per problem, exit 2."""

    def __init__(self, *lines: str):
        self.lines = list(lines)
        super().__init__("\n".join(lines))


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one BadInput line instead of usage and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInput(f"sim: {message} (see 'sim {self.prog.split()[-1]} --help')"
                       if " " in self.prog else f"sim: {message} (see 'sim --help')")


# ---------------------------------------------------------------------------------------------
# Option types


def _whole(text: str, lo: int, rule: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < lo:
        raise argparse.ArgumentTypeError(f"{text} {rule}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return _whole(text, 1, "must be at least 1")


def nonnegative_int(text: str) -> int:
    """A whole number >= 0."""
    return _whole(text, 0, "must be >= 0")


def _float_option(text: str, ok: Callable[[float], bool], allowed: str) -> float:
    """An option's number, or argparse's one-line complaint naming what is allowed."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"{text} must be {allowed}")
    return value


def probability(text: str) -> float:
    """A number strictly between 0 and 1."""
    return _float_option(text, lambda v: 0 < v < 1, "strictly between 0 and 1")


def half_width(text: str) -> float:
    """A Wilson half-width in (0, 0.5]."""
    return _float_option(text, lambda v: 0 < v <= 0.5, "in (0, 0.5]")


def positive_float(text: str) -> float:
    """A number > 0."""
    return _float_option(text, lambda v: v > 0, "a positive number")


def add_batch_options(p: argparse.ArgumentParser) -> None:
    """The options `sim sweep` and `sim solve` share."""
    p.add_argument("scenario", type=Path, help="scenario TOML file")
    p.add_argument("--replications", type=positive_int,
                   help="runs per point (default: [sweep] replications, else 50)")
    p.add_argument("--seed", type=nonnegative_int, help="override `seed`")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                   help="override any scenario key (TOML value syntax); repeatable")
    p.add_argument("--jobs", type=positive_int, default=None,
                   help="local worker processes (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask distributed cluster (e.g. tcp://127.0.0.1:8786) "
                   "instead of local processes")
    p.add_argument("--engine", default="des", help="simulation engine (see `sim run --help`)")
    p.add_argument("--out", type=Path, help="results folder (default: results/<name>-sweep/ "
                   "or results/<name>-solve/)")


def check_out(command: str, out: Path) -> None:
    """Refuse an --out that exists and is not a folder."""
    if out.exists() and not out.is_dir():
        raise BadInput(f"sim {command}: --out {str(out)!r}: exists and is not a folder")


def check_jobs(args: argparse.Namespace) -> None:
    """--jobs (local processes) and --scheduler (a cluster) exclude each other."""
    if args.scheduler and args.jobs is not None:
        raise BadInput(f"sim {args.command}: --jobs and --scheduler exclude each other "
                       "(the cluster's workers do the work)")


# ---------------------------------------------------------------------------------------------
# Signals and progress


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C."""


@contextlib.contextmanager
def _signals() -> Iterator[None]:
    """SIGINT and SIGTERM stop the work where it is (KeyboardInterrupt, Terminated); a
    second signal is ignored while the workers are stopped and the lock released."""

    def stop(signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, stop)
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while a finished run is published (well under a second), then
    act on them, so that a signal never stops the renames half-way."""
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.getsignal(s) for s in held}
    for s in held:
        signal.signal(s, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if caught:
        signal.raise_signal(caught[0])


def _interrupted(command: str, exc: KeyboardInterrupt, kept: str) -> int:
    """Say what an interrupted command kept; the exit status for the signal."""
    what = "terminated" if isinstance(exc, Terminated) else "interrupted"
    print(f"sim {command}: {what}; {kept}", file=sys.stderr)
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


@contextlib.contextmanager
def progress_bar(desc: str, total: int | None = None
                 ) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar on stderr (only on a terminal), fed by (done, total or None)."""
    from tqdm import tqdm

    bar = tqdm(total=total, unit="run", desc=desc, disable=None, file=sys.stderr, leave=False,
               dynamic_ncols=True)

    def update(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()
