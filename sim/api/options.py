"""The use cases' options checked as Python values, for calls from Python: the rules the
command line's option types apply (`sim.cli.common`), each refusal one InputError line that
names the argument. The command line has checked them before they get here."""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sim.api.common import PUBLISHED, InputError, folder_conflict


def whole(name: str, value: Any, lo: int = 1) -> int:
    """A whole number >= lo (numpy integers too; not a bool), as int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise InputError(f"{name}={value!r}: must be a whole number >= {lo}")
    return int(value)


def number(name: str, value: Any, ok: Callable[[float], bool], allowed: str) -> float:
    """A finite real number for which `ok` holds (`allowed` says which), as float."""
    try:
        good = (not isinstance(value, bool) and isinstance(value, numbers.Real)
                and math.isfinite(float(value)) and ok(float(value)))
    except OverflowError:  # an integer too large for a float
        good = False
    if not good:
        raise InputError(f"{name}={value!r}: must be {allowed}")
    return float(value)


def flag(name: str, value: Any) -> bool:
    """True or False (numpy's too), nothing else: "no" would read as True."""
    if not isinstance(value, bool | _np_bool()):
        raise InputError(f"{name}={value!r}: must be True or False")
    return bool(value)


def _np_bool() -> type:
    import numpy as np

    return np.bool_


OVERSUBSCRIBE = 4  # local workers per core at most: more only slow the runs and fill memory


def engine(value: Any, default: str | None = None) -> None:
    """`engine=` named as Python names it (the command line's `--engine` says its own): one
    of the engines; None where `default` stands for it."""
    from sim.engines import engines

    if value is None and default is not None:
        return
    if not isinstance(value, str) or value not in engines():
        raise InputError(f"engine={value!r}: must be one of {', '.join(engines())}",
                         options=True)


def jobs(value: Any) -> int | None:
    """`jobs`: None (all cores) or a whole number from 1 to OVERSUBSCRIBE x the cores (each
    worker is a process holding its own engine: 100,000 asked for started one per batch)."""
    if value is None:
        return None
    n = whole("jobs", value)
    from sim.execution.pool import default_jobs

    most = OVERSUBSCRIBE * default_jobs()
    if n > most:
        raise InputError(f"--jobs/jobs= {n}: more than {OVERSUBSCRIBE} workers a core (this "
                         f"machine gives {default_jobs()}) only slows the runs; give at "
                         f"most {most}", options=True)
    return n


def out_folder(out: str | Path, holds: str, also: Sequence[str] = ()) -> Path:
    """`out` as a folder to write `holds`' results (a key of MARKS) into: not empty (that is
    the working folder), usable (`out_problem`), and not holding another command's results
    (writing there would replace some of their files and leave the rest beside the new),
    nor a user's files of the names it writes (`users_files`; `also`: names beyond the
    usual ones, a run's regions files)."""
    if not str(out).strip():
        raise InputError(f"out={str(out)!r}: empty: give a folder")
    folder = Path(out)
    problem = out_problem(folder, staged=holds in PUBLISHED)
    if problem is not None:
        raise InputError(f"out={str(out)!r}: {problem}")
    conflict = folder_conflict(folder, holds, also)
    if conflict is not None:
        raise InputError(f"{folder}/ {conflict[0]}: write elsewhere, or remove {conflict[1]} "
                         "first")
    return folder


def out_problem(out: Path, staged: bool = True) -> str | None:
    """Why results cannot be written into the folder `out`, or None: it is a file, a folder
    above it is, a link on the way leads nowhere (or round in a loop), a name is too long
    (for the staging folder built beside it too, where the set is `staged`), or nothing can
    be created in the nearest folder that exists (tried by creating and removing a folder
    there: permissions alone do not say; root may write anywhere, /proc nowhere)."""
    try:
        return _out_problem(out, staged)
    except OSError as exc:  # what the system says of the path (a name or path too long)
        return f"cannot be used ({exc.strerror or exc})"


STAGING_ROOM = 40  # bytes a staging name adds to a folder's: `.NAME.partial-PID-RANDOM`


def _out_problem(out: Path, staged: bool) -> str | None:
    for path in (out, *out.parents):
        if path.is_symlink() and not path.exists():
            where = "is" if path == out else f"lies under {path}, which is"
            return f"{where} a link that leads nowhere or round a loop (to {os.readlink(path)})"
    if out.exists() and not out.is_dir():
        return "exists and is not a folder"
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            return f"{parent} is not a folder"
    there = out
    while not there.exists() and there != there.parent:
        there = there.parent
    most = _name_max(there)
    names = [(part, most) for part in out.relative_to(there).parts[:-1]]
    for part, longest in [*names, (out.name, most - STAGING_ROOM if staged else most)]:
        if most > STAGING_ROOM and len(os.fsencode(part)) > longest:
            return f"a name longer than {longest} bytes ({part[:24]}...)"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".sim-probe-", dir=there))
    except OSError:
        return f"cannot be written to ({there} is not a writable folder)"
    return None


def _name_max(folder: Path) -> int:
    """The longest name `folder`'s file system takes, or 0 where it does not say (no
    pathconf, or a file system that reports none): then the system is left to refuse."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):
        return 0
