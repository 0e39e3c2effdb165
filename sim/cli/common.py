"""What every `sim` subcommand shares: exit codes, the one-line bad-input error, option
types, the options of the batch commands, signal handling and progress on stderr."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

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
    p.add_argument("--out", type=out_folder, help="results folder (default: results/<name>-sweep/ "
                   "or results/<name>-solve-<searched key>/; with --set, results/<name>-<hash "
                   "of the overrides>-sweep/ or -solve-<key>/)")


def held(out: Path, kind: str) -> dict[str, Any] | None:
    """What the marker file of `kind` (`sim.api.common.MARKS`) in `out` records: None when
    there is none, {} when it cannot be read as a JSON table (a damaged folder records
    nothing to compare)."""
    from sim.api.common import MARKS

    try:
        doc = json.loads((out / MARKS[kind]).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def out_folder(text: str) -> Path:
    """--out's type: a folder path; an empty one (an unset shell variable, say) would
    mean the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty: give a folder")
    return Path(text)


def shown(path: Path | str, most: int = 100) -> str:
    """A path as a message shows it: a very long one cut in the middle."""
    text = str(path)
    return text if len(text) <= most else f"{text[:most // 2]}...{text[-most // 2:]}"


def check_out(command: str, out: Path, holds: str | None = None,
              also: Sequence[str] = ()) -> None:
    """Refuse an --out that exists and is not a folder, that cannot be written to (before
    any work is done), that holds another command's results (`holds`: what this one
    writes, a key of `sim.api.common.MARKS`), or files of the names it writes that are no
    results of its (`users_files`; `also`: names beyond the usual ones)."""
    from sim.api.common import PUBLISHED, folder_conflict  # (the work imports it anyway)
    from sim.api.options import out_problem

    problem = out_problem(out, staged=holds is None or holds in PUBLISHED)
    if problem is not None:
        raise BadInput(f"sim {command}: --out {shown(out)!r}: {problem}")
    # (--force replaces a run, not another command's files or the user's: they would stand
    # beside the new ones, or be lost)
    conflict = None if holds is None else folder_conflict(out, holds, also)
    if conflict is not None:
        raise BadInput(f"sim {command}: {out}/ {conflict[0]}; pass --out DIR to write "
                       f"elsewhere, or remove {conflict[1]} first")


def check_jobs(args: argparse.Namespace) -> None:
    """--jobs (local processes) and --scheduler (a cluster) exclude each other."""
    if args.scheduler and args.jobs is not None:
        raise BadInput(f"sim {args.command}: --jobs and --scheduler exclude each other "
                       "(the cluster's workers do the work)")


# ---------------------------------------------------------------------------------------------
# Signals and progress


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C."""


def _ignore(_signum: int, _frame: Any) -> None:
    """A signal handler that does nothing (see stop_on_signals)."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM stop the work where it is (KeyboardInterrupt, Terminated); a
    second signal is ignored while the workers are stopped and the lock released."""

    def stop(signum: int, _frame: Any) -> None:
        # Later signals go to a handler that does nothing, not to SIG_IGN: one already on
        # its way would find SIG_IGN and CPython would print "Signal 15 ignored due to race
        # condition" with a traceback.
        signal.signal(signal.SIGINT, _ignore)
        signal.signal(signal.SIGTERM, _ignore)
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
def signals_held() -> Iterator[None]:
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


def interrupted_line(command: str, exc: KeyboardInterrupt, kept: str) -> int:
    """Say what an interrupted command kept; the exit status for the signal."""
    what = "terminated" if isinstance(exc, Terminated) else "interrupted"
    print(f"sim {command}: {what}; {kept}", file=sys.stderr)
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def plural(n: int, word: str) -> str:
    """`1 run`, `2 runs`."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def duration(seconds: float) -> str:
    """`41 s`, `3 min 20 s`, `2 h 5 min`, to the second."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(m, 60)
    return f"{h} h {m} min" if m else f"{h} h"


TAU_SPEEDUP = "about 4x"
"""How much faster `tau` is than `des` on the shipped baseline (520,000 firms, 8 regions,
entry and exit): 0.017 s against 0.061 s of CPU per replication, tau in blocks as `sim run`
runs it, at the default 10-day step, des compiled (benchmarks/regions.py,
docs/performance.md, 6 December 2026: 3.6x). Said by `--engine`'s help and by the hint
before a long exact run."""


class Progress:
    """How far a batch command has got, on stderr, fed by (runs done, runs in all or None).

    On a terminal, a bar. Elsewhere (logs, notebooks, CI) a line such as `sim run baseline:
    120/200 runs, 41 s elapsed, ETA 27 s` at most every INTERVAL seconds, and one at the end
    once any was printed (so a short run says nothing). Once a second round of runs (one per
    worker) is back, it prints the estimated time of the whole, once, when that is at least
    ESTIMATE_FROM seconds, and suggests `--engine tau` when the exact engine would take over
    SUGGEST_TAU_FROM. The pace is measured from the end of the first round, which carries the
    workers' start-up (imports in every spawned process); counting it would inflate the
    estimate by a factor of two on a short-run scenario.
    """

    INTERVAL = 5.0
    ESTIMATE_FROM = 10.0
    SUGGEST_TAU_FROM = 60.0

    def __init__(self, label: str, *, workers: int = 1, engine: str | None = None,
                 resumes: bool = False, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic, tty: bool | None = None):
        """`label` starts every line (`sim run baseline`); `resumes`: the first call reports
        runs done before this command (a resumed sweep), not runs done now; `clock` and `tty`
        are for tests (default: the monotonic clock, and whether `stream` is a terminal)."""
        self.label, self.workers, self.engine = label, max(1, workers), engine
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.started = clock()
        self.done: int = 0
        self.total: int | None = None
        self._base: int | None = None if resumes else 0
        self._first: tuple[float, int] | None = None  # (time, done) when round one was back
        self._pace: float | None = None  # seconds per run after round one
        self._estimated = False
        self._printed_at = self.started  # time of the last line
        self._printed: int | None = None  # done at the last line
        self._bar = None
        if tty if tty is not None else _isatty(self.stream):
            from tqdm import tqdm  # only a terminal gets a bar

            self._bar = tqdm(unit="run", desc=label.removeprefix("sim "), file=self.stream,
                             leave=False, dynamic_ncols=True)

    def __call__(self, done: int, total: int | None) -> None:
        now = self.clock()
        self.done, self.total = done, total
        if self._base is None:
            self._base = done
        self._measure(now)
        if self._bar is not None:
            if total is not None and self._bar.total != total:
                self._bar.total = total
            self._bar.n = done
            self._bar.refresh()
        elif total is not None and done >= total and self._printed is not None:
            self._line(now, eta=False)
        elif now - self._printed_at >= self.INTERVAL:
            self._line(now, eta=True)

    def close(self) -> None:
        """Remove the bar, or print the last line if lines were printed and it is not out."""
        if self._bar is not None:
            self._bar.close()
        elif self._printed is not None and self._printed != self.done:
            self._line(self.clock(), eta=False)

    def _measure(self, now: float) -> None:
        """Time the rounds; estimate the whole once the second round is back."""
        base = self._base or 0
        left = None if self.total is None else self.total - base
        round_size = self.workers if left is None else max(1, min(self.workers, left))
        if self._first is None:
            if self.done - base >= round_size:
                self._first = (now, self.done)
            return
        t1, d1 = self._first
        if self.done - d1 < round_size or now <= t1:
            return
        self._pace = (now - t1) / (self.done - d1)
        if self._estimated or self.total is None or self.done >= self.total:
            return
        self._estimated = True
        whole = now - self.started + (self.total - self.done) * self._pace
        if whole >= self.ESTIMATE_FROM:
            self._say(f"{self.label}: estimated {duration(whole)} for "
                      f"{plural(self.total - base, 'run')} on {plural(self.workers, 'worker')}")
        if whole >= self.SUGGEST_TAU_FROM and self.engine == "des":
            self._say(f"{self.label}: over a minute with the exact engine; --engine tau is "
                      f"{TAU_SPEEDUP} faster on the baseline (its accuracy: docs/performance.md)")

    def _line(self, now: float, *, eta: bool) -> None:
        runs = f"{self.done}/{self.total} runs" if self.total is not None else \
            plural(self.done, "run")
        text = f"{self.label}: {runs}, {duration(now - self.started)} elapsed"
        if eta and self._pace is not None and self.total is not None:
            text += f", ETA {duration(max(0, self.total - self.done) * self._pace)}"
        self._say(text)
        self._printed_at, self._printed = now, self.done

    def _say(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False


@contextlib.contextmanager
def progress(label: str, *, workers: int = 1, engine: str | None = None,
             resumes: bool = False) -> Iterator[Progress]:
    """A `Progress` on stderr for the duration of the block, closed however it ends (and,
    before it, a word if the engine has still to be compiled on this machine)."""
    from sim import api

    if engine is not None and not api.compiled(engine):
        print(f"{label}: compiling the {engine} engine for this machine (once, under a minute)",
              file=sys.stderr, flush=True)
    shown = Progress(label, workers=workers, engine=engine, resumes=resumes)
    try:
        yield shown
    finally:
        shown.close()
