"""Progress on stderr (sim/cli/common.py `Progress`), driven by a fake clock: lines at most
every 5 s and at the end when stderr is not a terminal, the estimate from the first rounds of
runs, the hint to use the fast engine, and a bar on a terminal."""

from __future__ import annotations

import io

import pytest

from sim.cli.common import TAU_SPEEDUP, Progress, duration, plural


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, label: str = "sim run baseline", **kwargs) -> tuple[Progress, io.StringIO]:
    stream = io.StringIO()
    return Progress(label, stream=stream, clock=clock, tty=False, **kwargs), stream


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def two_workers(clock: Clock, shown: Progress, total: int, *, start_up: float,
                per_run: float) -> None:
    """Two workers, each finishing a run every `per_run` seconds after `start_up`, the
    second half a run behind the first."""
    for k in range(1, total // 2 + 1):
        clock.now = 100.0 + start_up + per_run * k
        shown(2 * k - 1, total)
        clock.now += per_run / 2
        shown(2 * k, total)


def test_durations_and_plurals():
    assert [duration(s) for s in (0, 0.4, 41, 59.6, 60, 200, 3600, 3900, 7200)] == [
        "0 s", "0 s", "41 s", "1 min", "1 min", "3 min 20 s", "1 h", "1 h 5 min", "2 h"]
    assert (plural(1, "run"), plural(0, "run"), plural(2, "job")) == ("1 run", "0 runs", "2 jobs")


def test_a_long_run_estimates_after_two_rounds_and_reports_every_five_seconds():
    """200 runs on 2 workers, 1.2 s a run after 2 s of start-up: 122.6 s in all. The first
    round carries the start-up; the pace is measured after it, so the estimate is exact."""
    clock = Clock()
    shown, stream = make(clock, workers=2, engine="des")
    two_workers(clock, shown, 200, start_up=2.0, per_run=1.2)
    shown.close()
    out = lines(stream)
    assert out[0] == "sim run baseline: estimated 2 min 3 s for 200 runs on 2 workers"
    assert out[1] == (f"sim run baseline: over a minute with the exact engine; --engine tau is "
                      f"{TAU_SPEEDUP} faster on the baseline (its accuracy: docs/performance.md)")
    # The first progress line comes once 5 s have passed (the 4th run), with the time left
    # at the measured pace: 196 runs at 0.6 s.
    assert out[2] == "sim run baseline: 4/200 runs, 5 s elapsed, ETA 1 min 58 s"
    assert out[-1] == "sim run baseline: 200/200 runs, 2 min 3 s elapsed"
    periodic = out[2:-1]
    assert all(ln.startswith("sim run baseline: ") and ", ETA " in ln for ln in periodic)
    # At most one line every 5 s: 122 s give at most 24 lines, and here at least 20.
    assert 20 <= len(periodic) <= 24
    elapsed = [seconds(ln.split(", ")[1].removesuffix(" elapsed")) for ln in periodic]
    assert all(b - a >= 4 for a, b in zip(elapsed, elapsed[1:], strict=False))  # whole seconds


def seconds(text: str) -> int:
    """`2 min 3 s` -> 123."""
    parts = text.split()
    return sum(int(n) * {"s": 1, "min": 60, "h": 3600}[unit]
               for n, unit in zip(parts[::2], parts[1::2], strict=True))


def test_a_short_run_says_nothing():
    clock = Clock()
    shown, stream = make(clock, workers=2, engine="des")
    two_workers(clock, shown, 8, start_up=1.0, per_run=0.3)
    shown.close()
    assert stream.getvalue() == ""


def test_no_hint_for_the_fast_engine_and_no_estimate_under_ten_seconds():
    clock = Clock()
    shown, stream = make(clock, workers=2, engine="tau")
    two_workers(clock, shown, 400, start_up=1.0, per_run=0.4)  # about 81 s
    assert lines(stream)[0] == "sim run baseline: estimated 1 min 21 s for 400 runs on 2 workers"
    assert not any("--engine tau" in ln for ln in lines(stream))

    clock = Clock()
    shown, stream = make(clock, workers=2, engine="des")
    two_workers(clock, shown, 30, start_up=1.0, per_run=0.5)  # 8.75 s: no estimate
    shown.close()
    assert lines(stream) == ["sim run baseline: 15/30 runs, 5 s elapsed, ETA 4 s",
                             "sim run baseline: 30/30 runs, 9 s elapsed"]


def test_a_resumed_sweep_times_only_the_runs_it_does():
    """The first call reports runs kept from before; they took no time now."""
    clock = Clock()
    shown, stream = make(clock, "sim sweep tiny", workers=1, engine="des", resumes=True)
    shown(300, 400)
    for k in range(1, 101):
        clock.now = 100.0 + 0.7 + 1.0 * k
        shown(300 + k, 400)
    assert lines(stream)[0] == "sim sweep tiny: estimated 1 min 41 s for 100 runs on 1 worker"
    assert "sim sweep tiny: 305/400 runs, 6 s elapsed, ETA 1 min 35 s" in lines(stream)


def test_an_unknown_total_counts_runs_and_says_the_last_count_when_closed():
    clock = Clock()
    shown, stream = make(clock, "sim solve tiny", workers=2)
    for k in range(1, 13):
        clock.now = 100.0 + k
        shown(10 * k, None)
    shown.close()
    assert lines(stream) == ["sim solve tiny: 50 runs, 5 s elapsed",
                             "sim solve tiny: 100 runs, 10 s elapsed",
                             "sim solve tiny: 120 runs, 12 s elapsed"]


def test_a_growing_total_is_followed():
    """A sweep with a precision adds rounds: each reports its new total."""
    clock = Clock()
    shown, stream = make(clock, "sim sweep tiny", workers=1, resumes=True)
    shown(0, 10)
    clock.now = 106.0
    shown(10, 10)
    shown(10, 30)
    clock.now = 112.0
    shown(20, 30)
    shown.close()
    assert lines(stream) == ["sim sweep tiny: 10/10 runs, 6 s elapsed",
                             "sim sweep tiny: estimated 18 s for 30 runs on 1 worker",
                             "sim sweep tiny: 20/30 runs, 12 s elapsed, ETA 6 s"]


def test_on_a_terminal_a_bar_and_the_estimate_above_it():
    pytest.importorskip("tqdm")
    clock = Clock()
    stream = io.StringIO()
    shown = Progress("sim run baseline", workers=2, engine="des", stream=stream, clock=clock,
                     tty=True)
    two_workers(clock, shown, 200, start_up=2.0, per_run=1.2)
    shown.close()
    text = stream.getvalue()
    assert "sim run baseline: estimated 2 min 3 s for 200 runs on 2 workers\n" in text
    assert "ETA" not in text.replace("estimated", "")  # the bar, not the lines
    assert "run baseline:" in text and "200/200" in text  # the bar's own drawing
