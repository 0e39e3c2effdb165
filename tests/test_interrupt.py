"""Interruption and kills during `sim run` (issue 7, items 3 and 4).

Ctrl-C (SIGINT to the whole process group) and SIGTERM stop a run within seconds, with one
line saying that nothing was written (exit 130 or 143), and leave no worker process behind.
SIGKILL, which nothing can catch, is survived by how results are published (sim/results.py):
killed at any moment, the results folder holds the previous complete results, the new
complete results, or no complete results (no summary.json); never a torn summary.json or a
summary beside curves that are not its own. It is tested at fixed moments of real runs and,
deterministically, before every file-system step of the publishing itself (a helper process
forks once per step and kills the fork there).

The sweep's own interruption, resume, lock and worker-loss tests are in test_sweep.py and
test_dask.py. `pytest tests/test_interrupt.py -s` prints how many kills were survived.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, base_raw

from sim.cli.main import main
from sim.scenario import dumps

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads processes from /proc and forks")

RUN_FILES = ("adoption.png", "curves.csv", "scenario.toml", "summary.json")
STOP_SECONDS = 5.0  # "within seconds", on a loaded two-core machine


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `condition` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


# ---------------------------------------------------------------------------------------------
# Processes, from /proc (Linux)


def workers(pid: int) -> list[int]:
    """The pool's worker processes among `pid`'s children."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                found.append(int(child))
    return found


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for a reaper counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def start_run(scenario: Path, out: Path, *extra: str) -> subprocess.Popen:
    """`python -m sim run` in a session of its own, so that a signal can reach the whole group
    as Ctrl-C at a terminal does."""
    return subprocess.Popen([sys.executable, "-m", "sim", "run", str(scenario), "--out", str(out),
                             *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """Make sure a test's run and its workers are gone, whatever happened to the test."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


@pytest.fixture
def long_run(write_scenario):
    """A run of about a minute on two cores: far from done when it is interrupted (2,000
    replications of 300,000 firms: the compiled exact engine takes ~0.06 s each)."""
    raw = base_raw()
    raw["replications"] = 2000
    raw["population"]["firms"] = 300_000
    return write_scenario(raw, "long.toml")


# ---------------------------------------------------------------------------------------------
# SIGINT and SIGTERM


@pytest.mark.slow
@pytest.mark.parametrize("signum, whole_group, previous, code", [
    (signal.SIGINT, True, False, 130),  # Ctrl-C at a terminal: every process of the group
    (signal.SIGTERM, False, True, 143),  # kill PID, a batch system's time limit
    (signal.SIGTERM, True, False, 143),  # timeout(1), a container being stopped
], ids=["ctrl-c", "sigterm", "sigterm-to-group"])
def test_a_signal_stops_a_run_within_seconds_and_leaves_no_worker(long_run, tmp_path, signum,
                                                                  whole_group, previous, code):
    out = tmp_path / "out"
    if previous:
        assert main(["run", str(long_run), "--out", str(out), "--replications", "2",
                     "--jobs", "1"]) == 0
    before = snapshot(out)
    proc = start_run(long_run, out, "--jobs", "2", "--force")  # over another run's results
    try:
        busy = wait_for(lambda: [w for w in workers(proc.pid) if cpu_seconds(w) > 0.5], 120,
                        "the workers to be simulating")
        pool = workers(proc.pid)
        sent = time.monotonic()
        if whole_group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        stop(proc)
    assert busy and len(pool) == 2
    assert took < STOP_SECONDS, f"took {took:.1f} s to stop"
    assert proc.returncode == code, err
    what = "interrupted" if signum == signal.SIGINT else "terminated"
    kept = (f"nothing was written ({out}/ still holds the previous results); run the same "
            "command again to start over" if previous
            else "nothing was written; run the same command again to start over")
    assert err.splitlines()[-1] == f"sim run: {what}; {kept}", err  # after any progress lines
    assert snapshot(out) == before
    wait_for(lambda: all(gone(w) for w in pool), STOP_SECONDS, "the workers to exit")
    print(f"\n{what} by {signal.Signals(signum).name}: stopped in {took:.2f} s")


RACE = """
import os, signal
from sim.cli.common import stop_on_signals
both = {signal.SIGINT, signal.SIGTERM}
try:
    with stop_on_signals():
        signal.pthread_sigmask(signal.SIG_BLOCK, both)
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, both)  # both arrive at once
        sum(range(1000))
except KeyboardInterrupt as exc:
    print("stopped by", type(exc).__name__)
"""


def test_a_second_signal_on_the_heels_of_the_first_is_ignored_without_a_word():
    """Ctrl-C, then `kill` before Python has run the first handler: the first stops the
    work, the second is ignored, and nothing else is printed (before, CPython printed
    "OSError: Signal 15 ignored due to race condition" with a traceback, as the handler
    had switched the signals to SIG_IGN). Both signals are made pending at once, so the
    race is met every time."""
    done = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.stdout == "stopped by KeyboardInterrupt\n", done.stdout
    assert done.stderr == "", done.stderr


@pytest.mark.slow
def test_a_worker_killed_during_a_run_is_one_line_and_nothing_written(long_run, tmp_path):
    """`sim run` keeps no partial runs, so a lost worker ends it (sweeps redo the lost
    batch instead: test_sweep.py and test_dask.py); it says so in one line, exit 1."""
    out = tmp_path / "out"
    proc = start_run(long_run, out, "--jobs", "2")
    try:
        busy = wait_for(lambda: [w for w in workers(proc.pid) if cpu_seconds(w) > 0.5], 120,
                        "the workers to be simulating")
        os.kill(busy[0], signal.SIGKILL)  # as the out-of-memory killer would
        _, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 1 and err.splitlines()[-1] == (
        "sim run: a worker process died (killed from outside, or out of memory); nothing was "
        "written"), err
    assert not out.exists()


def test_a_signal_while_publishing_waits_for_the_renames(tmp_path, write_scenario, monkeypatch,
                                                         capsys):
    """SIGTERM arriving in the middle of publishing is held until the folder is complete:
    the run then stops with 143 and says that the results are complete."""
    import sim.store.files as results

    real = results.publish

    def publish_and_be_terminated(out, files, **kw):
        os.kill(os.getpid(), signal.SIGTERM)  # lands half-way through publishing
        real(out, files, **kw)

    monkeypatch.setattr(results, "publish", publish_and_be_terminated)
    out = tmp_path / "out"
    path = write_scenario(base_raw())
    handler = signal.getsignal(signal.SIGTERM)
    assert main(["run", str(path), "--out", str(out), "--replications", "2", "--jobs", "1"]) == 143
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"sim run: terminated; the results were already complete in {out}/")
    assert state(out, {}) == "complete"
    assert signal.getsignal(signal.SIGTERM) == handler  # put back as it was


# ---------------------------------------------------------------------------------------------
# SIGKILL: what the results folder may hold afterwards


def snapshot(out: Path) -> dict[str, bytes]:
    """The run's files in `out` (missing ones left out)."""
    return {name: (out / name).read_bytes() for name in RUN_FILES if (out / name).is_file()}


def state(out: Path, previous: dict[str, bytes]) -> str:
    """'previous' (byte for byte), 'complete' (a summary that vouches for the files beside
    it), or 'none' (no summary: no finished run). Anything else fails the test."""
    files = snapshot(out)
    if "summary.json" not in files:
        return "none"
    if previous and files == previous:
        return "previous"
    assert set(files) == set(RUN_FILES), f"a summary without {set(RUN_FILES) - set(files)}"
    summary = json.loads(files["summary.json"])
    assert summary["scenario_sha256"] == hashlib.sha256(files["scenario.toml"]).hexdigest(), \
        "summary.json beside the scenario.toml of another run"
    lines = files["curves.csv"].decode().splitlines()[1:]
    deadline = summary["target"]["deadline"]
    at = [float(ln.split(",")[4]) for ln in lines
          if f",{deadline},{summary['target']['level']}," in ln]
    reps = {ln.split(",", 1)[0] for ln in lines}
    assert len(reps) == summary["replications"] == len(at), "curves of another run"
    assert abs(sum(at) / len(at) - summary["count_at_deadline"]["mean"]) < 1e-6, \
        "summary.json beside the curves of another run"
    assert files["adoption.png"].endswith(b"IEND\xaeB`\x82"), "a torn figure"
    return "complete"


@pytest.mark.slow
def test_sigkill_at_moments_of_a_real_run_keeps_the_previous_results(long_run, tmp_path,
                                                                     write_scenario):
    out = tmp_path / "out"
    assert main(["run", str(long_run), "--out", str(out), "--replications", "2",
                 "--jobs", "1"]) == 0
    previous = snapshot(out)
    kills: list[str] = []
    for moment in (0.5, 1.5, 3.0, 6.0):
        proc = start_run(long_run, out, "--jobs", "2", "--seed", "2", "--force")
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=moment)  # the run lasts about a minute
            pool = workers(proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        finally:
            stop(proc)
        assert proc.returncode == -signal.SIGKILL
        assert state(out, previous) == "previous"
        # The workers die with the run (they asked the kernel to), not minutes later.
        wait_for(lambda pool=pool: all(gone(w) for w in pool), 10, "orphaned workers to exit")
        kills.append(f"{moment} s")
    # And once while the results are being published: watch for the staging folder.
    short = write_scenario({**base_raw(), "replications": 40}, "short.toml")
    proc = start_run(short, out, "--jobs", "2", "--seed", "3", "--force")
    try:
        staging = f".{out.name}.partial-"
        while proc.poll() is None:
            if any(name.startswith(staging) for name in os.listdir(tmp_path)):
                proc.send_signal(signal.SIGKILL)
                kills.append("publishing")
                break
            time.sleep(0.001)
        proc.communicate(timeout=30)
    finally:
        stop(proc)
    assert state(out, previous) in ("previous", "none", "complete")
    print(f"\nSIGKILL of a real run survived {len(kills)} times: {', '.join(kills)}")
    assert len(kills) >= 4


def _write_scenario_file(folder: Path) -> Path:
    path = folder / "unit.toml"
    path.write_text(dumps(base_raw()), encoding="utf-8")
    return path


@pytest.mark.slow
def test_sigkill_before_every_step_of_publishing_leaves_previous_results_or_none(tmp_path):
    """A helper process runs `sim run` once per file-system step of publishing, in a fork
    killed just before that step, both into a new folder and over previous results."""
    proc = subprocess.run([sys.executable, __file__, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    previous = snapshot(tmp_path / "previous")
    seen: dict[str, set[str]] = {"new": set(), "over": set()}
    for case in report["cases"]:
        assert case["killed"], case
        out = Path(case["out"])
        found = state(out, previous if case["over"] else {})
        seen["over" if case["over"] else "new"].add(found)
    # A new folder appears complete in one rename, so a kill before any step leaves none.
    # Over previous results: killed early, the old results stand; killed late, the new ones
    # are complete; in between there is a moment with no finished run at all.
    assert seen == {"new": {"none"}, "over": {"previous", "none", "complete"}}, seen
    # The next publish into a folder clears the staging folder a killed process left beside it.
    def left(name: str) -> list[Path]:
        return [p for p in tmp_path.iterdir() if p.name.startswith(f".{name}.partial-")]

    name = next(c["out"] for c in report["cases"] if left(Path(c["out"]).name))
    assert main(["run", report["scenario"], "--out", name, "--replications", "2", "--jobs", "1",
                 "--seed", "2", "--force"]) == 0
    assert not left(Path(name).name) and state(Path(name), {}) == "complete"
    print(f"\nSIGKILL survived before each of the {report['steps']['new']} steps into a new "
          f"folder and {report['steps']['over']} steps over previous results: "
          f"{len(report['cases'])} kills")


# ---------------------------------------------------------------------------------------------
# The helper process: `python tests/test_interrupt.py FOLDER`


FS_STEPS = ("mkdir", "chmod", "fsync", "rename", "replace", "unlink", "rmdir")


def _publish_steps(folder: Path) -> None:
    """Count the file-system steps of publishing a run, then, for each step k, fork a
    `sim run` that kills itself just before step k; print a JSON report on the last line."""
    import sim.store.files as results

    scenario = _write_scenario_file(folder)
    run = ["run", str(scenario), "--replications", "2", "--jobs", "1", "--force"]
    assert main([*run, "--seed", "1", "--out", str(folder / "previous")]) == 0
    real_write, real_ops = results.write_run, {name: getattr(os, name) for name in FS_STEPS}

    def write_with_steps(kill_at: int | None, counted: list[int]):
        def write_run(*args, **kwargs):
            def step(name):
                def op(*args, **kwargs):
                    counted[0] += 1
                    if counted[0] == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return real_ops[name](*args, **kwargs)
                return op
            for name in FS_STEPS:
                setattr(os, name, step(name))
            try:
                real_write(*args, **kwargs)
            finally:
                for name, op in real_ops.items():
                    setattr(os, name, op)
        return write_run

    steps, cases = {}, []
    for over in (False, True):
        label = "over" if over else "new"
        counted = [0]
        results.write_run = write_with_steps(None, counted)
        if over:
            shutil.copytree(folder / "previous", folder / f"{label}-count")
        assert main([*run, "--seed", "2", "--out", str(folder / f"{label}-count")]) == 0
        steps[label] = counted[0]
        for k in range(1, counted[0] + 1):
            out = folder / f"{label}-{k}"
            if over:
                shutil.copytree(folder / "previous", out)
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the fork dies by SIGKILL
                results.write_run = write_with_steps(k, [0])
                with open(os.devnull, "w") as sink:
                    os.dup2(sink.fileno(), 1)
                    os.dup2(sink.fileno(), 2)
                main([*run, "--seed", "2", "--out", str(out)])
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            cases.append({"out": str(out), "over": over, "step": k, "killed": killed})
    results.write_run = real_write
    print(json.dumps({"scenario": str(scenario), "steps": steps, "cases": cases}))


if __name__ == "__main__":
    _publish_steps(Path(sys.argv[1]))
