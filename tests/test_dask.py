"""`--scheduler`: the same batches on a Dask LocalCluster (loopback only) give the same rows
as local processes, and a worker killed mid-sweep loses no run and duplicates none."""

from __future__ import annotations

import os
import signal
from collections import Counter

import pytest
from conftest import make
from test_sweep import tiny_raw

import sim.execution.executor as executor_mod
from sim.cli.main import main
from sim.execution.executor import DaskExecutor
from sim.explore.design import make_design, resolve_ranges
from sim.explore.runs import RunSpec, run_points

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes on 127.0.0.1, no dashboard."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=40) as lc:
        yield lc


@pytest.mark.slow
def test_dask_rows_equal_local_rows_for_one_and_two_jobs(cluster, write_scenario, tmp_path):
    path = write_scenario(tiny_raw(), "tiny.toml")
    outs = {name: tmp_path / name for name in ("j1", "j2", "dask")}
    assert main(["sweep", str(path), "--out", str(outs["j1"]), "--jobs", "1"]) == 0
    assert main(["sweep", str(path), "--out", str(outs["j2"]), "--jobs", "2"]) == 0
    assert main(["sweep", str(path), "--out", str(outs["dask"]), "--scheduler",
                 cluster.scheduler_address]) == 0
    for name in ("runs.csv", "points.csv", "curves.csv"):
        one = (outs["j1"] / name).read_bytes()
        assert one == (outs["j2"] / name).read_bytes(), name
        assert one == (outs["dask"] / name).read_bytes(), name


@pytest.mark.slow
def test_a_worker_killed_mid_sweep_loses_and_repeats_nothing(cluster):
    sc = make({"population.firms": 4000, "target.firms": 33})
    ranges = resolve_ranges(sc.raw, [("levels.line.imitation", 0.2, 1.5, False)], source="t")
    design = make_design("lhs", ranges, 6, seed=3)
    runs = [(j, design.points[j], r) for j in range(6) for r in range(8)]
    with distributed.Client(cluster.scheduler_address, timeout="20s") as client:
        executor = DaskExecutor(cluster.scheduler_address, client=client)
        pids = client.run(os.getpid)  # worker address -> process id
        seen: Counter = Counter()
        killed: list[int] = []

        def on_rows(rows):
            for row in rows:
                seen[(row["point"], row["replication"])] += 1
            if not killed:
                # SIGKILL, as an out-of-memory killer would; the nanny starts a fresh worker.
                killed.append(pids[sorted(pids)[0]])
                os.kill(killed[0], signal.SIGKILL)

        run_points(executor, runs, RunSpec(sc.raw, "t", "des", 7, design.keys), on_rows)
    assert killed
    assert set(seen) == {(p, r) for p, _, r in runs}
    assert all(n == 1 for n in seen.values())


def test_an_unreachable_scheduler_is_one_line_and_writes_nothing(write_scenario, tmp_path,
                                                                 capsys, monkeypatch):
    monkeypatch.setattr(executor_mod, "CONNECT_TIMEOUT", "1s")
    path = write_scenario(tiny_raw(), "tiny.toml")
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--scheduler",
                 "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the scheduler" in err[0]
    assert not out.exists()
