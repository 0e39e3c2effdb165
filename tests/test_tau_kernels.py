"""The fast engine's compiled kernels draw the model's laws (issue 17): the binomial draws,
the completion step of every started project, and the firms that leave the tables of
projects by step. Chi-square and moment checks at a false-alarm level of 1e-3 over each
test's comparisons (Bonferroni), as in tests/test_tau_batch.py."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from scipy.stats import binom, chi2, norm

from sim.engines import rules
from sim.engines.tau_exits import withdraw
from sim.engines.tau_kernels import binomial, decide_around, file_projects

ALPHA = 1e-3


@njit(cache=True)
def _draws(rng: np.random.Generator, n: int, p: float, size: int) -> np.ndarray:
    out = np.empty(size, dtype=np.int64)
    for i in range(size):
        out[i] = binomial(rng, n, p)
    return out


def _chi2_pvalue(counts: np.ndarray, expected: np.ndarray) -> float:
    """Pearson's test over the cells expected at least 5 times (the rest pooled)."""
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    keep = exp > 0
    stat = float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum())
    return float(chi2.sf(stat, keep.sum() - 1))


CASES = [(100, 0.1), (1000, 0.02), (60, 0.5), (200, 0.25), (100, 0.85), (10**6, 0.001),
         (40, 0.2), (7, 0.3)]


@pytest.mark.parametrize(("n", "p"), CASES)
def test_binomial_has_the_binomial_law(n, p):
    """Numpy's draw below n min(p, 1-p) = 10, Hormann's BTRS above: the pmf."""
    size = 400_000
    x = _draws(np.random.default_rng(11), n, p, size)
    assert x.min() >= 0 and x.max() <= n
    lo, hi = (0, n) if n <= 10_000 else (int(n * p - 400), int(n * p + 400))
    inside = (x >= lo) & (x <= hi)
    counts = np.append(np.bincount(x[inside] - lo, minlength=hi - lo + 1), (~inside).sum())
    pmf = binom.pmf(np.arange(lo, hi + 1), n, p)
    expected = np.append(pmf, max(0.0, 1.0 - pmf.sum())) * size
    assert _chi2_pvalue(counts.astype(float), expected) > ALPHA / len(CASES)


def test_projects_are_filed_by_the_law_of_their_completion():
    """Every project's completion step is drawn from P(completing by each step's end)
    (rules.started_cdf): a uniform start in the step and a lognormal duration."""
    days = np.arange(0, 370, 10)
    rng = np.random.default_rng(5)
    m, n = 3, 300_000
    ends = days[m + 1:].astype(float)
    cdf = np.ones((2, ends.size + 1))
    for i, (median, sigma) in enumerate([(40.0, 0.5), (100.0, 0.8)]):
        c = rules.started_cdf(ends, float(days[m]), float(days[m + 1]), median, sigma)
        cdf[i, :-1] = np.maximum.accumulate(np.minimum(c, 1.0))
    pipe = np.zeros((3, days.size), dtype=np.int32)
    cells, counts = np.array([0, 2]), np.array([n, n])
    now = file_projects(rng, pipe, cells, counts, np.array([0, 1]), cdf, m)
    assert now == pipe[:, m].sum() and pipe[1].sum() == 0 and pipe[:, :m].sum() == 0
    for row, i in ((0, 0), (2, 1)):
        assert pipe[row].sum() == n
        expected = np.diff(cdf[i], prepend=0.0) * n
        assert _chi2_pvalue(pipe[row, m:].astype(float), expected) > ALPHA / 2


@pytest.mark.parametrize(("p", "group"), [(0.3, 1), (0.8, 1), (0.3, 3), (0.8, 3)])
def test_withdraw_thins_every_step_independently(p, group):
    """Firms leaving the tables of projects by step: per cell and step, what is left has
    the mean and variance of an independent binomial thinning, cells and steps
    uncorrelated; steps before `start` and each cell's total are kept right. p = 0.8 draws
    the firms that stay; group 3: one binomial for the three cells, shared among them."""
    rows = np.array([[4, 0, 3, 0, 6, 2, 0, 5], [1, 2, 0, 7, 0, 0, 3, 1],
                     [0, 5, 2, 2, 1, 0, 0, 4]])
    start, reps = 2, 40_000
    rng = np.random.default_rng(9)
    left = np.empty((reps, *rows.shape))
    for r in range(reps):
        table = rows.astype(np.int32).copy()
        total = rows[:, start:].sum(axis=1)
        gone = withdraw(rng, table, total, start, p, group)
        np.testing.assert_array_equal(total, table[:, start:].sum(axis=1))
        np.testing.assert_array_equal(total, rows[:, start:].sum(axis=1) - gone)
        left[r] = table
    np.testing.assert_array_equal(left[:, :, :start],
                                  np.broadcast_to(rows[:, :start], (reps, 3, start)))
    cells = [(i, j) for i in range(3) for j in range(start, rows.shape[1]) if rows[i, j]]
    z = norm.isf(ALPHA / (4 * len(cells)))
    for i, j in cells:
        pq = p * (1 - p)
        mean, var = rows[i, j] * (1 - p), rows[i, j] * pq
        excess = (1 - 6 * pq) / var  # the binomial's excess kurtosis
        assert abs(left[:, i, j].mean() - mean) < z * np.sqrt(var / reps)
        assert abs(left[:, i, j].var() / var - 1) < z * np.sqrt((2 + excess) / reps)
    x = np.stack([left[:, i, j] for i, j in cells])
    corr = np.corrcoef(x)[np.triu_indices(len(cells), 1)]
    assert np.all(np.abs(corr) < z / np.sqrt(reps))


def test_decisions_around_completions_have_the_law_of_two_half_steps():
    """A cell's firms idle before the completions decide over both halves (hazards h0,
    h1), those the completions made idle over the second only: the pmf of the sum of
    Binomial(n, 1 - exp(-(h0 + h1) / 2)) and Binomial(a, 1 - exp(-h1 / 2)), which is the law
    of drawing the first half, then the second from those still idle; idle keeps the rest."""
    h0, h1 = np.array([0.05, 1.0]), np.array([0.1, 1.1])  # inversion; BTRS of 1 - p
    n, a, size = np.array([40, 300]), np.array([15, 100]), 200_000
    both, late = -np.expm1(-0.5 * (h0 + h1)), -np.expm1(-0.5 * h1)
    before = np.tile(n, (size, 1))[:, None, :]
    idle = before + a
    d = decide_around(np.random.default_rng(8), idle, before,
                      np.tile(both, (size, 1))[:, None, :], np.tile(late, (size, 1))[:, None, :],
                      np.arange(2), tally := np.zeros(size, dtype=np.int64))
    assert np.array_equal(idle + d, before + a) and np.array_equal(tally, d.sum(axis=(1, 2)))
    for i in range(2):
        p1, p2 = 1 - np.exp(-0.5 * h0[i]), late[i]  # the halves in turn
        first = binom.pmf(np.arange(n[i] + 1), n[i], p1)
        # what is left of the n after the first half, then all who are idle decide at p2
        pmf = np.zeros(n[i] + a[i] + 1)
        for k1, w in enumerate(first):
            pmf[k1:] += w * binom.pmf(np.arange(n[i] + a[i] - k1 + 1), n[i] + a[i] - k1, p2)
        counts = np.bincount(d[:, 0, i], minlength=pmf.size).astype(float)
        assert _chi2_pvalue(counts, pmf * size) > ALPHA / 2
