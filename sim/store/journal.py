"""A sweep's folder kept safe: one sweep at a time (the lock), the same sweep when resumed
(the manifest), and finished runs never lost (the append-only journal `runs.jsonl`)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sim.store.files import pid_alive


class FolderError(ValueError):
    """A results folder that cannot be used as asked; `lines` says why, one per problem."""

    def __init__(self, *lines: str):
        self.lines = list(lines)
        super().__init__("\n".join(lines))


class FolderLock:
    """`OUT/.lock` holding our pid and host; refuses a live holder, takes over a dead one's."""

    def __init__(self, folder: Path):
        self.path = folder / ".lock"
        self.held = False

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, or raise FolderError naming the live sweep that holds it."""
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _proc_start(os.getpid()),
              "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and _holder_alive(holder):
                    raise FolderError(
                        f"{self.path.parent}: another sweep is running on this folder (pid "
                        f"{holder.get('pid')} on {holder.get('host')} since "
                        f"{holder.get('since', '?')}); wait for it or use another --out"
                    ) from None
                with contextlib.suppress(FileNotFoundError):  # stale: its process is gone
                    os.unlink(self.path)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self.held = True
            return
        raise FolderError(f"{self.path}: could not take the lock (another sweep keeps taking it)")

    def _holder(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # A lock being written right now, or torn by a crash while being written.
            age = time.time() - self.path.stat().st_mtime if self.path.exists() else 99
            return {"pid": "?", "host": "?", "young": age < 5}

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.held = False


def _proc_start(pid: int) -> str | None:
    """Start time of `pid` (clock ticks since boot), so a reused pid is not taken for ours."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _holder_alive(holder: Mapping[str, Any]) -> bool:
    """Whether the lock's holder may still be running (when in doubt, yes)."""
    if "young" in holder:  # unreadable: being written now, or torn by a crash long ago
        return bool(holder["young"])
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process: we cannot tell, so we do not take it over
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0 or not pid_alive(pid):
        return False
    started = holder.get("started")
    return started is None or _proc_start(pid) in (None, started)


class Journal:
    """Append-only JSON lines, one per finished run, flushed and fsynced per batch. A line
    torn by a kill is dropped (and cut off) when the journal is read back."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict[tuple[int, int], dict[str, Any]]:
        """Rows by (point, replication); the first record of a run wins."""
        rows: dict[tuple[int, int], dict[str, Any]] = {}
        if not self.path.is_file():
            return rows
        good = 0
        with open(self.path, "rb") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                    key = (int(row["point"]), int(row["replication"]))
                except (ValueError, KeyError, TypeError):
                    break
                if not line.endswith(b"\n"):
                    break
                rows.setdefault(key, row)  # first record wins: a run is never counted twice
                good += len(line)
        if good < self.path.stat().st_size:
            with open(self.path, "r+b") as fh:
                fh.truncate(good)
        return rows

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add rows and make them durable before returning."""
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def check_manifest(path: Path, identity: Mapping[str, Any], model_sha256: str | None = None
                   ) -> None:
    """Refuse to resume into a folder that holds a different sweep. A scenario file whose
    text changed but not its values (a comment added, 40000 written 40_000) is the same
    sweep when the manifest records the values' fingerprint, `model_sha256`."""
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise FolderError(f"{path}: unreadable manifest; use another --out") from None
    differs = [k for k in identity if _plain(old.get(k)) != _plain(identity[k])]
    if differs == ["scenario_sha256"] and model_sha256 is not None and (
            old.get("model_sha256") == model_sha256):
        return
    if differs:
        raise FolderError(
            f"{path.parent}: holds a different sweep (it differs in {', '.join(differs)}); "
            "use another --out or delete that folder")


def _plain(x: Any) -> Any:
    return json.loads(json.dumps(x))
