"""Runs that cannot finish are refused up front with the estimate and the limit."""

from __future__ import annotations

from conftest import base_raw

from sim.cli.main import main
from sim.engines.limits import refusal
from sim.scenario import validate


def test_exact_engine_refuses_a_billion_firms(tmp_path, write_scenario, capsys):
    raw = base_raw()
    raw["population"]["firms"] = 1_000_000_000
    path = write_scenario(raw)
    out = tmp_path / "never"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "population.firms" in err[0] and "GiB" in err[0]
    assert "--engine tau" in err[0] and "Traceback" not in err[0]
    assert not out.exists()


def test_count_engines_are_not_limited_by_population():
    raw = base_raw()
    raw["population"]["firms"] = 1_000_000_000
    sc = validate(raw)
    assert refusal(sc, "tau") is None and refusal(sc, "meanfield") is None
    assert refusal(validate(base_raw()), "des") is None


def test_tau_memory_stays_bounded_with_crowded_cells():
    """Cells with more projects per step than _CROWD are filed by one multinomial draw;
    a population of 10^8 runs with arrays whose size does not depend on it: its peak of
    traced memory (numpy's arrays) is within 10% of 10^6 firms', whose projects a step
    are a hundredth as many. (Each size runs once untraced first: the crowded cells' kernels
    compile at their first use, and compiling allocates.) Two things do take memory by
    the project, for a step and then free it (docs/performance.md): a step's waiting
    projects put in order where capacity binds, and a step's decisions put in order where a
    budget runs out; this population has ample units and no budget, and still runs 10^8
    firms through every level."""
    import tracemalloc

    import sim.engines.tau as tau
    from sim.execution.runner import replication_rng

    peaks = {}
    for firms in (1_000_000, 100_000_000):
        raw = base_raw()
        raw["population"]["firms"] = firms
        raw["resources"] = {"integrators": {"capacity": firms}, "compute": {"capacity": firms}}
        raw["policy"] = []
        sc = validate(raw)
        tau.simulate_tau(sc, replication_rng(1, 0))  # compiles what this size uses, untraced
        tracemalloc.start()
        res = tau.simulate_tau(sc, replication_rng(1, 0))
        peaks[firms] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert res.at_or_above[-1, 0] > res.initial[0] + firms // 100
        assert res.at_or_above[-1, 3] > 0 and res.by_segment[-1].sum() == firms
    assert peaks[100_000_000] < 1.1 * peaks[1_000_000], peaks
