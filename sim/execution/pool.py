"""Local worker processes: how they start (tied to their parent), how they are stopped."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def worker_init(parent: int) -> None:
    """Workers leave Ctrl-C (sent to the whole process group) to the parent, which stops
    them, and die with the parent even when it is killed with SIGKILL (Linux)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not sys.platform.startswith("linux"):  # pragma: no cover
        return
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


_settled = False


def settle() -> None:
    """In a worker process, once, after its first task: put every object that exists (the
    imports, an engine's compiled code) out of the garbage collector's reach (`gc.freeze`).
    numba leaves a large long-lived object graph whose full collections otherwise cost ~30 ms
    at unpredictable moments: half a replication of the compiled exact engine. (Not in the
    user's own process, whose objects are theirs to collect.)"""
    global _settled
    if _settled or multiprocessing.parent_process() is None:
        return
    _settled = True
    gc.collect()
    gc.freeze()


def start_pool(jobs: int) -> ProcessPoolExecutor:
    """`jobs` spawned workers (no fork: nothing of the parent's state leaks into them)."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=worker_init, initargs=(os.getpid(),))


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: drop queued work and kill the running workers instead of waiting
    for their tasks to finish (an interrupted run keeps nothing of them, and a worker
    holds nothing that needs cleaning up)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(OSError, ValueError):  # already gone, or already closed
            proc.kill()
            proc.join(timeout=5)
