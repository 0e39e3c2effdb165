"""What every use case shares: the error for input that cannot be run, engine and executor
checks, and the progress callback's type."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sim.engines import engines, refusal
from sim.engines.limits import caution
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


WRITES = {
    "run": ("scenario.toml", "curves.csv", "adoption.png", "report.html"),  # (and a run with
    # regions its regions.csv and .png, which a run without leaves to the folder's owner)
    "sweep": ("scenario.toml", "runs.jsonl", "runs.csv", "points.csv", "curves.csv",
              "sensitivity.csv", "reachability.png", "fan.png", "sensitivity.png",
              "report.html"),
    "solve": ("scenario.toml", "solve.png", "report.html"),
    "fit": ("fragment.toml", "fit.png", "report.html"),
    "comparison": ("compare.png",),
}
"""The files each writer puts beside its mark, replacing any of that name."""
_CORE = {"run": ("scenario.toml", "curves.csv", "adoption.png"),
         "solve": ("scenario.toml", "solve.png"), "fit": ("fragment.toml", "fit.png"),
         "comparison": ("compare.png",)}
"""The files every set of a writer holds: with all of them but no mark, a folder holds a
set whose writing was killed after its mark was removed (a sweep writes its mark first)."""


PUBLISHED = frozenset({"run", "fit", "comparison"})
"""The writers that build their set in a staging folder beside `out` (`files.publish`)."""


def users_files(out: Path, holds: str, also: Sequence[str] = ()) -> list[str]:
    """The files in `out` that the writer of `holds` (a key of MARKS) would replace though
    they are no results of its (`also`: names this one writes beyond WRITES, a run's
    regions files): the folder holds no mark of that kind, nor all of a set's core files.
    A scenario file run with `--out .` beside it, say."""
    if not out.is_dir() or (out / MARKS[holds]).is_file():
        return []
    core = _CORE.get(holds, ())
    if core and all((out / name).is_file() for name in core):
        return []
    return [name for name in (*WRITES[holds], *also) if (out / name).exists()]


def folder_conflict(out: Path, holds: str, also: Sequence[str] = ()) -> tuple[str, str] | None:
    """Why the writer of `holds` must not write into `out`, and what to remove for it to
    (the CLI and the API word the advice their own way), or None: another command's
    results there (`others_results`), or a user's files of the names it writes
    (`users_files`)."""
    found = others_results(out, holds)
    if found is not None:
        return f"holds a {found[0]}'s results ({found[1]})", "the folder"
    theirs = users_files(out, holds, also)
    if theirs:
        return (f"holds {', '.join(theirs)}, not a {holds}'s results, which writing there "
                "would replace", "them")
    return None


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


def warn_of(scenario: Scenario, engine: str) -> None:
    """A UserWarning where `engine` is approximate on `scenario` in a way a user should know
    (`limits.caution`); the command line prints it as one `warning:` line."""
    said = caution(scenario, engine)
    if said:
        warnings.warn(said, UserWarning, stacklevel=3)


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
