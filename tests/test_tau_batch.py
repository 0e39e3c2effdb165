"""The fast engine over a batch of replications at once (issue 17): every replication of a
batch is a replication of the model on its own, and the runner's blocks make results a
function of the seed and the replication index alone.

A batch shares one random stream, so its replications cannot be compared draw for draw with
single runs; they are compared in law. Tolerances as in tests/test_turnover.py: a mean is
allowed Z standard errors of the difference of two independent samples, with Z the normal
quantile that keeps the chance of any false alarm over all compared cells at 1e-3
(Bonferroni); variances the F interval at the same level.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pytest
from cases import assert_same_result, capacity_by_day
from conftest import make
from scipy.stats import f as f_dist
from scipy.stats import norm

from sim.engines import rules
from sim.engines.tau import _Tau, batch_size, simulate_tau, simulate_tau_batch
from sim.execution.runner import run_block, run_replications
from sim.execution.seeds import block_of, replication_rng
from sim.explore.runs import RunSpec, run_batch
from sim.scenario import Quotas, Region

FIRMS = 5_000
STRONG = {"entry": 0.3, "exit": 0.3, "entry_device": 0.2}


def small(quotas: bool = False, **turnover):
    """conftest's scenario at FIRMS firms to 2027 with resources that bind, a budget, a
    capacity shock, projects under way at the start and two unequal regions (with
    `quotas`, each asked for half the target and pushed 1.5x when it lags)."""
    sc = make({"population.firms": FIRMS, "target.firms": FIRMS // 10,
               "end": dt.date(2027, 12, 31),
               "population.in_flight": {"device": 0.01, "line": 0.01},
               "resources.integrators.capacity": 600 * FIRMS // 20_000,
               "resources.compute.capacity": 60 * FIRMS // 20_000})
    quota = 0.5 if quotas else None
    sc = dataclasses.replace(sc, regions=(Region("east", 0.6, (1.3, 1.5, 1.0, 1.0), quota),
                                          Region("west", 0.4, quota=quota)),
                             quotas=Quotas(1.5 if quotas else 1.0, 3))
    return dataclasses.replace(sc, **turnover)


class _Watched(_Tau):
    """Checks after every start that no replication holds more units than the (sub-)step
    the projects start in has at most (test_tau's watcher)."""

    worst = -math.inf

    def _start(self, X, m, span, **kw):
        super()._start(X, m, span, **kw)
        over = self.in_use - np.maximum(capacity_by_day(self.params, span[0]),
                                            capacity_by_day(self.params, span[1]))
        _Watched.worst = max(_Watched.worst, float(over.max()))


@pytest.mark.parametrize("turnover", [{}, STRONG], ids=["fixed", "entry-exit"])
def test_every_replication_of_a_batch_keeps_the_invariants(turnover):
    """Per replication of one batch: firms conserved (start + entered - exited at the end,
    per segment without turnover), levels monotone without exits, capacity never exceeded,
    budgets never overspent, the regions adding up; and the replications differ."""
    sc = small(**turnover)
    eng = _Watched(sc, replication_rng(1, 0), 6)
    results = eng.run()
    assert _Watched.worst <= 0
    sizes = np.array(rules.Parameters(sc).layout.segment_sizes)
    budget = [p.budget or math.inf for p in sc.policies]
    for res in results:
        firms = res.by_segment.sum(axis=(1, 2))
        assert firms[-1] == FIRMS + res.entered - res.exited
        if not turnover:
            assert np.all(res.by_segment.sum(axis=2) == sizes)
            assert np.all(np.diff(res.at_or_above, axis=0) >= 0)
        assert all(s <= b for s, b in zip(res.spent, budget, strict=True))
        np.testing.assert_array_equal(res.region_at_or_above.sum(axis=1), res.at_or_above)
        assert res.events["max_waiting"] > 0, "the resources must bind for the check to matter"
    counts = [r.count_at_deadline for r in results]
    assert len(set(counts)) > 1, "replications of a batch must not be copies"


@pytest.mark.parametrize(("quotas", "turnover"), [(False, {}), (False, STRONG), (True, {})],
                         ids=["fixed", "entry-exit", "quotas"])
def test_a_batch_has_the_law_of_single_runs(quotas, turnover):
    """64 replications in batches of 16 against 64 single runs: means at every year end and
    level and of the count at the deadline within Z SE of their difference, variances inside
    the F interval, over the cells that hold enough firms for the normal approximation (mean
    >= 20: the few factory firms take two or three values only). Anything one replication
    leaks into another (a sum over the wrong axis, a shared queue or budget) moves these by
    far more; with quotas, each replication's reviews push its own lagging regions."""
    sc = small(quotas, **turnover)
    reps, size = 64, 16
    single = [simulate_tau(sc, replication_rng(2, i)) for i in range(reps)]
    batch = [r for b in range(reps // size)
             for r in simulate_tau_batch(sc, replication_rng(3, b), size)]
    ye = np.arange(11, len(sc.month_ends()), 12)

    def cells(rs):
        return np.stack([np.concatenate([r.at_or_above[ye].ravel(), r.upgraded[ye].ravel(),
                                         [r.count_at_deadline, r.exited, r.entered]])
                         for r in rs]).astype(float)

    a, b = cells(single), cells(batch)
    enough = (a.mean(axis=0) >= 20) & (b.mean(axis=0) >= 20)
    a, b = a[:, enough], b[:, enough]
    assert a.shape[1] >= 8
    alpha = 1e-3 / a.shape[1]
    z = norm.isf(alpha / 2)
    se = np.sqrt(a.var(axis=0, ddof=1) / reps + b.var(axis=0, ddof=1) / reps)
    gap = np.abs(a.mean(axis=0) - b.mean(axis=0))
    assert np.all(gap <= z * se), f"worst gap / allowed {np.max(gap / (z * se)):.2f}"
    ratio = a.var(axis=0, ddof=1) / b.var(axis=0, ddof=1)
    lo, hi = f_dist.ppf(alpha / 2, reps - 1, reps - 1), f_dist.isf(alpha / 2, reps - 1, reps - 1)
    assert np.all((ratio >= lo) & (ratio <= hi)), (ratio.min(), ratio.max(), lo, hi)


def test_results_depend_on_the_replication_index_only(monkeypatch):
    """Blocks are fixed by the indices: asking for two replications of a run of 12, on two
    workers, gives exactly what the whole run on one worker gives for them; a sweep's rows
    likewise whichever of a point's replications are asked for."""
    import sim.engines.tau as tau

    monkeypatch.setattr(tau, "BATCH", 4)
    sc = small(**STRONG)
    assert batch_size(sc) == 4
    assert block_of(6, 4, 12) == (1, range(4, 8)) and block_of(9, 4, 10) == (2, range(8, 10))
    whole = run_replications(sc, range(12), seed=5, engine="tau", jobs=1)
    some = run_replications(sc, [3, 9], seed=5, engine="tau", jobs=2, total=12)
    assert set(some) == {3, 9}
    for i in (3, 9):
        assert_same_result(whole[i], some[i])
    assert_same_result(whole[5], run_block(sc, "tau", 5, 1, range(4, 8))[1][1])
    spec = RunSpec(sc.raw, sc.source, "tau", 5, ())
    all_rows = {r["replication"]: r for r in run_batch(spec, [(0, (), r) for r in range(8)])[0]}
    few_rows = run_batch(spec, [(0, (), 6), (0, (), 1)])[0]
    for row in few_rows:
        assert row == all_rows[row["replication"]]


def test_batch_size_keeps_the_tables_bounded():
    """Fewer replications run together where the tables of completions by step would grow
    past TABLE_BYTES; never fewer than one."""
    import sim.engines.tau as tau

    big = small(**STRONG)
    n = batch_size(big)
    eng = _Tau(big, replication_rng(1, 0), n)
    assert 1 <= n <= tau.BATCH
    assert eng.pipe.nbytes <= tau.TABLE_BYTES or n == 1
