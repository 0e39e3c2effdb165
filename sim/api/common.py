"""What every use case shares: the error for input that cannot be run, engine and executor
checks, and the progress callback's type."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sim.engines import engines, refusal
from sim.execution.executor import Executor, make_executor
from sim.scenario import Scenario, ScenarioError

if TYPE_CHECKING:
    pass

Progress = Callable[[int, "int | None"], None]
"""Called with (runs done, runs in all, None while unknown) as work returns."""


class InputError(ValueError):
    """Input that cannot be run as given, one line per problem. `options` says that the
    lines are about the command's options (the CLI puts the command's name before them)."""

    def __init__(self, *lines: str, options: bool = False):
        self.lines = list(lines)
        self.options = options
        super().__init__("\n".join(lines))


MARKS = {"run": "summary.json", "sweep": "manifest.json", "solve": "solve.json",
         "fit": "fit.json", "comparison": "compare.csv"}
"""The file that says what a results folder holds, by what wrote it."""


def others_results(out: Path, holds: str) -> tuple[str, str] | None:
    """(what, marker file) of another command's results in `out` (`holds`: what the
    writer writes, a key of MARKS), or None."""
    for kind, mark in MARKS.items():
        if kind != holds and (out / mark).is_file():
            return kind, mark
    return None


@contextlib.contextmanager
def redrawing(folder: Path) -> Iterator[None]:
    """A results folder read back to redraw it: a file truncated, emptied or edited by hand
    is bad input, said in one line naming the folder (InputError, as an option's)."""
    try:
        yield
    except (InputError, ScenarioError):
        raise  # what the redraw refuses, in its own words
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{folder}/ cannot be redrawn, a file in it is damaged or missing "
                         f"({type(exc).__name__}: {what})", options=True) from None


def check_engine(engine: str, scenario: Scenario | None = None) -> None:
    """Raise InputError unless `engine` names one of `engines()` and, given a scenario, can
    run it (the exact engine refuses a population it could not finish)."""
    if not isinstance(engine, str) or engine not in engines():
        raise InputError(f"--engine {engine!r}: must be one of {', '.join(engines())}",
                         options=True)
    why = None if scenario is None else refusal(scenario, engine)
    if why:
        raise InputError(why)


def executor_for(jobs: int | None = None, scheduler: str | None = None) -> Executor:
    """`make_executor` with its failures said as InputError."""
    from sim.api.options import jobs as check_jobs

    jobs = check_jobs(jobs)
    try:
        return make_executor(jobs, scheduler)
    except ImportError:
        raise InputError("--scheduler needs Dask: pip install 'sim[dask]'",
                         options=True) from None
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"--scheduler {scheduler}: cannot reach the scheduler ({exc})",
                         options=True) from None
