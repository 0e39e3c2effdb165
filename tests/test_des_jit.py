"""The compiled exact engine (`des`) against the simpy one it reimplements (`des-simpy`): the
same law on every shipped scenario, runs that resume exactly when their arrays grow, and the
units held by projects under way accounted for when firms leave.

The two draw differently (docs/model.md, Randomness), so they are compared as independent
samples: every month x level mean, the count at the deadline and the event counts, within a
Bonferroni-corrected Student-t bound of the Welch standard error.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from cases import assert_same_result, scaled_raw
from conftest import ROOT, make
from scipy.stats import f as f_dist
from scipy.stats import t as student_t
from test_turnover import SEED, STRONG, small

from sim.engines import des, des_jit
from sim.engines.des_heap import DEAD, unpack
from sim.engines.des_state import I_HN
from sim.execution.runner import replication_rng
from sim.scenario import validate

REPS = 40
ALPHA = 1e-3  # chance of any false alarm per scenario


def _measures(res) -> np.ndarray:
    """What is compared: the curves at every month and level, the count at the deadline, the
    events and (with turnover) entrants and leavers."""
    ev = res.events
    return np.concatenate([
        res.at_or_above.ravel(), res.upgraded.ravel(),
        [res.count_at_deadline, ev["decisions"], ev["starts"], ev["completions"],
         ev["failures"], ev["retries"], res.entered, res.exited, res.exited_upgraded]]
    ).astype(float)


@pytest.mark.slow
@pytest.mark.parametrize("name, target", [
    ("baseline", {}), ("baseline", {"count": "upgraded"}), ("accelerated", {}),
    ("constrained", {}), ("regional-quotas", {}), ("broad-definition", {"count": "stock"}),
    ("hindcast", {}),
])
def test_the_compiled_engine_has_the_simpy_engines_law(name, target):
    """REPS runs of each engine at a tenth of the population (regions, entry and exit,
    policies with budgets, shocks, binding capacity, quotas, projects under way, every
    reading of the target): |mean difference| <= t x Welch SE at every measure, t the
    Student quantile that keeps the chance of any false alarm at ALPHA (Bonferroni over the
    measures that vary), and the variances of the count at the deadline in the F interval."""
    sc = validate(scaled_raw(ROOT / "scenarios" / f"{name}.toml", 0.1, **target))
    a = np.stack([_measures(des_jit.simulate(sc, replication_rng(5, i))) for i in range(REPS)])
    b = np.stack([_measures(des.simulate(sc, replication_rng(6, i))) for i in range(REPS)])
    gap = np.abs(a.mean(axis=0) - b.mean(axis=0))
    se = np.sqrt(a.var(axis=0, ddof=1) / REPS + b.var(axis=0, ddof=1) / REPS)
    varies = se > 0
    assert varies.sum() > 100, "almost nothing varies: the comparison would be vacuous"
    assert np.all(gap[~varies] == 0), "a measure constant in both engines differs"
    z = float(student_t.isf(ALPHA / (2 * varies.sum()), REPS - 1))
    ratio = gap[varies] / (z * se[varies])
    assert ratio.max() <= 1, f"worst gap {ratio.max():.2f} x the bound (t = {z:.2f})"
    count = len(sc.month_ends()) * 8  # index of the count at the deadline
    va, vb = a[:, count].var(ddof=1), b[:, count].var(ddof=1)
    lo, hi = f_dist.ppf([ALPHA / 2, 1 - ALPHA / 2], REPS - 1, REPS - 1)
    assert lo <= va / vb <= hi, f"variance ratio {va / vb:.2f} outside [{lo:.2f}, {hi:.2f}]"


def test_a_run_resumes_exactly_when_its_arrays_grow(monkeypatch):
    """Starting with room for 2 calendar items, 1 waiting project per level and 1 trace row,
    the loop stops to grow them hundreds of times; the result is the same to the bit."""
    sc = small(**STRONG)
    roomy = des_jit.simulate(sc, replication_rng(SEED, 1), trace=True)
    monkeypatch.setattr(des_jit, "HEAP0", 2)
    monkeypatch.setattr(des_jit, "QUEUE0", 1)
    monkeypatch.setattr(des_jit, "TRACE0", 1)
    tight = des_jit.simulate(sc, replication_rng(SEED, 1), trace=True)
    assert roomy.events["max_waiting"] > 1 and len(roomy.trace) > 1_000
    assert_same_result(roomy, tight)
    assert roomy.trace == tight.trace
    assert (roomy.entered, roomy.exited) == (tight.entered, tight.exited)


def test_a_run_that_must_grow_before_its_first_event_is_the_run_that_need_not(monkeypatch):
    """15,000 line projects under way hold every integrator and 5,000 more wait: the calendar
    and queue overflow their first size before the first event, so the loop stops to grow
    them before it has built its rates or served its queue. It must still do both (it once
    resumed without them: no decisions at all until the first month end), giving the run
    that had room from the start, to the bit."""
    sc = make({"population.firms": 400_000, "population.in_flight": {"line": 0.05},
               "resources.integrators.capacity": 15_000, "resources.integrators.growth": 0.0,
               "end": dt.date(2026, 3, 31), "target.deadline": dt.date(2026, 3, 31)})
    tight = des_jit.simulate(sc, replication_rng(SEED, 2))
    monkeypatch.setattr(des_jit, "HEAP0", 1 << 20)
    monkeypatch.setattr(des_jit, "QUEUE0", 1 << 16)
    roomy = des_jit.simulate(sc, replication_rng(SEED, 2))
    assert tight.events["max_waiting"] >= 5_000
    assert_same_result(roomy, tight)
    assert tight.events == roomy.events


def test_capacity_holds_and_leavers_give_their_units_back():
    """Units in use at every start stay within capacity, which binds; at the end the units in
    use are exactly those held by the running projects still on the calendar (a project whose
    firm left gave its units back when it left), and firms are conserved."""
    sc = small(**STRONG)
    run = des_jit._Run(sc, replication_rng(SEED, 5, 0), True)
    res = run.run()
    st = run.st
    uses = [e for e in res.trace if e[0] == "use"]
    assert len(uses) > 1_000
    assert all(0 <= in_use <= cap for _, _, _, in_use, cap in uses)
    assert any(in_use == cap for _, _, _, in_use, cap in uses)
    assert res.events["max_waiting"] > 0 and res.exited > 0
    held = np.zeros(len(sc.resources), dtype=np.int64)
    for pay in st.hpay[:st.i[I_HN]]:
        _s, k, _code = unpack(int(pay))
        if k > 0 and not pay & DEAD:
            held += st.units[k]
    np.testing.assert_array_equal(st.in_use, held)
    assert res.by_segment[-1].sum() == sc.firms + res.entered - res.exited
    assert np.all(st.idle >= 0) and np.all(st.idle_v >= 0) and np.all(st.settled >= 0)
    assert np.array_equal(st.idle.sum(axis=1), st.idle_total)
    assert np.array_equal(st.idle_v.sum(axis=2), st.idle)


def test_same_seed_same_result_and_the_generator_is_the_stream():
    """A replication depends on its Generator only: the same seed gives the same run, and the
    run leaves the Generator where its draws ended (nothing else is drawn from)."""
    sc = small(**STRONG)
    a, b = (des_jit.simulate(sc, replication_rng(SEED, 2)) for _ in range(2))
    assert_same_result(a, b)
    c = des_jit.simulate(sc, replication_rng(SEED, 3))
    assert not np.array_equal(a.at_or_above, c.at_or_above)
    rng1, rng2 = replication_rng(SEED, 2), replication_rng(SEED, 2)
    des_jit.simulate(sc, rng1)
    des_jit.simulate(sc, rng2)
    assert rng1.random() == rng2.random()
    assert math.isfinite(a.count_at_deadline)


def test_the_first_run_on_a_machine_says_it_compiles(monkeypatch, capsys):
    """Before numba's cache holds the compiled loop, a command says why it is quiet for ~20 s;
    once a run has compiled it (the cache beside the kernels), `compiled` says so."""
    from sim import api
    from sim.cli.common import progress

    des_jit.simulate(small(), replication_rng(SEED, 0))
    assert api.compiled("des") and api.compiled("tau")
    monkeypatch.setattr(api, "compiled", lambda name: name != "des")
    with progress("sim run x", engine="des"):
        pass
    with progress("sim run y", engine="tau"):
        pass
    err = capsys.readouterr().err
    assert "sim run x: compiling the des engine for this machine" in err
    assert "sim run y: compiling" not in err


def test_compiled_looks_where_numba_keeps_its_cache(tmp_path):
    """Where numba keeps its cache elsewhere than beside the kernels (NUMBA_CACHE_DIR here;
    the user's cache folder where the package is read-only), an empty cache there means a
    first run compiles, whatever lies beside the kernels; a run fills it."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np\n"
            "from sim.engines import compiled\n"
            "from sim.engines.tau import simulate_tau\n"
            "from test_turnover import small\n"
            "print(compiled('des'), compiled('tau'), compiled('meanfield'))\n"
            "simulate_tau(small(), np.random.default_rng(1))\n"
            "print(compiled('tau'))\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout.split("\n")
    assert out[:2] == ["False False True", "True"]


def test_workers_freeze_their_long_lived_objects_and_the_users_process_does_not():
    """`settle` puts a worker's imports and compiled code out of the collector's reach once;
    in the user's own process (this one) it does nothing; in a spawned worker it freezes."""
    import gc

    from sim.execution.pool import settle, start_pool

    before = gc.get_freeze_count()
    settle()
    assert gc.get_freeze_count() == before
    with start_pool(1) as pool:  # a spawned worker, as sim's runs use
        assert pool.submit(gc.get_freeze_count).result() == 0
        pool.submit(settle).result()
        assert pool.submit(gc.get_freeze_count).result() > 1000
