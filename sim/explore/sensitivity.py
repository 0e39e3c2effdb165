"""Which varied parameter matters: Sobol indices for a Sobol (Saltelli) design, rank
correlations for any other, with bootstrap intervals.

Each point's output is a mean over finitely many replications, so its variance across
points is the parameters' variance plus replication noise (the within-point variance over
the replication count). The noise is estimated from the replications and taken out:
indices are shares of the parameters' variance, and the noise's share of the total is
reported beside them, so the two kinds of uncertainty are never mixed up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sim.explore.plan import SweepPlan

CONFIDENCE = 0.95
BOOTSTRAP = 1000


@dataclass(frozen=True)
class Index:
    """One estimate with its bootstrap interval."""

    output: str
    parameter: str
    index: str  # first | total | spearman | noise_share
    estimate: float
    lo: float
    hi: float


def sobol_estimates(f_a: np.ndarray, f_b: np.ndarray, f_ab: np.ndarray,
                    noise: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, float]:
    """First-order (Saltelli 2010) and total-order (Jansen 1999) indices, the estimators of
    `scipy.stats.sobol_indices`, and the noise share of the variance. `f_ab` is (d, N).
    `noise` holds the variance of each point's mean due to finite replications (A, B, AB);
    without it the indices are the plain estimators."""
    # Centre on the mean first (Sobol' and Levitan 1999), as scipy does: a steadier S_i.
    centre = float(np.mean(np.concatenate([f_a, f_b])))
    f_a, f_b, f_ab = f_a - centre, f_b - centre, f_ab - centre
    total_var = float(np.var(np.concatenate([f_a, f_b])))
    first_num = np.mean(f_b * (f_ab - f_a), axis=-1)
    total_num = 0.5 * np.mean((f_a - f_ab) ** 2, axis=-1)
    noise_var = 0.0
    if noise is not None:
        n_a, n_b, n_ab = noise
        noise_var = float(np.mean(np.concatenate([n_a, n_b])))
        # E[(f_A - f_AB_i)^2] / 2 carries the noise of both points; take it out.
        total_num = total_num - 0.5 * np.mean(n_a + n_ab, axis=-1)
    param_var = total_var - noise_var
    if not param_var > 1e-12 * max(total_var, 1e-300):
        nan = np.full(f_ab.shape[0], math.nan)
        return nan, nan.copy(), (1.0 if total_var > 0 else math.nan)
    return first_num / param_var, total_num / param_var, noise_var / total_var


def sobol_indices(f_a: np.ndarray, f_b: np.ndarray, f_ab: np.ndarray, parameters: Sequence[str],
                  output: str, noise: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                  *, seed: int = 0, resamples: int = BOOTSTRAP) -> list[Index]:
    """Sobol indices with percentile bootstrap intervals over the base rows (A, B and every
    AB_i resampled together, as the estimators pair them)."""
    first, total, share = sobol_estimates(f_a, f_b, f_ab, noise)
    rng = np.random.default_rng(seed)
    n = f_a.shape[0]
    boot_first, boot_total, boot_share = [], [], []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        nz = None if noise is None else (noise[0][idx], noise[1][idx], noise[2][:, idx])
        bf, bt, bs = sobol_estimates(f_a[idx], f_b[idx], f_ab[:, idx], nz)
        boot_first.append(bf)
        boot_total.append(bt)
        boot_share.append(bs)
    f_lo, f_hi = _percentiles(np.array(boot_first))
    t_lo, t_hi = _percentiles(np.array(boot_total))
    s_lo, s_hi = _percentiles(np.array(boot_share)[:, None])
    out = []
    for i, name in enumerate(parameters):
        out.append(Index(output, name, "first", float(first[i]), float(f_lo[i]), float(f_hi[i])))
        out.append(Index(output, name, "total", float(total[i]), float(t_lo[i]), float(t_hi[i])))
    if noise is not None:
        out.append(Index(output, "replication noise", "noise_share", share, float(s_lo[0]),
                         float(s_hi[0])))
    return out


def rank_correlations(x: np.ndarray, y: np.ndarray, parameters: Sequence[str], output: str,
                      *, seed: int = 0, resamples: int = BOOTSTRAP) -> list[Index]:
    """Spearman correlation of each parameter (columns of `x`) with the output, for designs
    that are not Saltelli's: a direction and a rough strength, not a variance share."""
    est = _spearman(x, y)
    rng = np.random.default_rng(seed)
    n = len(y)
    boots = np.array([_spearman(x[idx], y[idx]) for idx in
                      (rng.integers(0, n, n) for _ in range(resamples))])
    lo, hi = _percentiles(boots)
    return [Index(output, name, "spearman", float(est[i]), float(lo[i]), float(hi[i]))
            for i, name in enumerate(parameters)]


def noise_share(means: np.ndarray, noise: np.ndarray, output: str, *, seed: int = 0,
                resamples: int = BOOTSTRAP) -> Index:
    """Share of the variance of point means that is replication noise (any design)."""

    def share(m: np.ndarray, v: np.ndarray) -> float:
        total = float(np.var(m))
        return float(np.mean(v)) / total if total > 0 else math.nan

    rng = np.random.default_rng(seed)
    n = len(means)
    boots = np.array([[share(means[i], noise[i])] for i in
                      (rng.integers(0, n, n) for _ in range(resamples))])
    lo, hi = _percentiles(boots)
    return Index(output, "replication noise", "noise_share", share(means, noise), float(lo[0]),
                 float(hi[0]))


def _spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ry = _ranks(y)
    out = np.full(x.shape[1], math.nan)
    for i in range(x.shape[1]):
        rx = _ranks(x[:, i])
        if np.std(rx) > 0 and np.std(ry) > 0:
            out[i] = float(np.corrcoef(rx, ry)[0, 1])
    return out


def _ranks(v: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(v)


def _percentiles(boots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    alpha = (1 - CONFIDENCE) / 2
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(boots)
        lo = np.array([np.quantile(col[m], alpha) if m.any() else math.nan
                       for col, m in zip(boots.T, ok.T, strict=True)])
        hi = np.array([np.quantile(col[m], 1 - alpha) if m.any() else math.nan
                       for col, m in zip(boots.T, ok.T, strict=True)])
    return lo, hi


def point_noise(kind: str, n: np.ndarray, variance: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Variance of one point's mean due to its `n` replications: s^2 / n for the count,
    p(1-p) / (n-1) (unbiased) for P(met). NaN where it cannot be estimated (n < 2)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = variance / n if kind == "count" else p * (1 - p) / (n - 1)
    return np.where(n >= 2, out, math.nan)


def analyse(design_name: str, base: int, parameters: Sequence[str], unit_x: np.ndarray,
            outputs: Mapping[str, tuple[np.ndarray, np.ndarray | None]], *, seed: int = 0,
            resamples: int = BOOTSTRAP) -> list[Index]:
    """Indices for every output (name -> (point means, noise per point or None)): Sobol
    first/total for a Sobol design with `base` rows per block, rank correlations otherwise."""
    d = len(parameters)
    out: list[Index] = []
    for name, (y, noise) in outputs.items():
        usable_noise = None if noise is None or not np.all(np.isfinite(noise)) else noise
        if design_name == "sobol" and base > 1 and len(y) == base * (d + 2):
            f_a, f_b = y[:base], y[base:2 * base]
            f_ab = y[2 * base:].reshape(d, base)
            nz = None
            if usable_noise is not None:
                nz = (usable_noise[:base], usable_noise[base:2 * base],
                      usable_noise[2 * base:].reshape(d, base))
            out.extend(sobol_indices(f_a, f_b, f_ab, parameters, name, nz, seed=seed,
                                     resamples=resamples))
        elif len(y) >= 3:
            out.extend(rank_correlations(unit_x, y, parameters, name, seed=seed,
                                         resamples=resamples))
            if usable_noise is not None:
                out.append(noise_share(y, usable_noise, name, seed=seed, resamples=resamples))
    return out


def sweep_indices(plan: SweepPlan, stats: Sequence[Mapping[str, Any]]) -> list[Index]:
    """The indices of a finished sweep from its per-point statistics (`point_stats`):
    for the mean count at the deadline and for P(met), replication noise taken out."""
    design = plan.design
    n = np.array([s["replications"] for s in stats], dtype=float)
    p = np.array([s["p_met"] for s in stats], dtype=float)
    mean = np.array([s["count_mean"] for s in stats], dtype=float)
    var = np.array([s["count_var"] for s in stats], dtype=float)
    unit = np.array([[r.unit(float(v)) for r, v in zip(design.ranges, pt, strict=True)]
                     for pt in design.points])
    if plan.deterministic:
        noise_count = noise_p = np.zeros(len(stats))
    else:
        noise_count, noise_p = point_noise("count", n, var, p), point_noise("p", n, var, p)
    outputs = {"count_at_deadline": (mean, noise_count), "P(met)": (p, noise_p)}
    ok = np.isfinite(p) & np.isfinite(mean)
    if design.name != "sobol":  # points whose runs all failed carry no estimate
        outputs = {k: (y[ok], nz[ok]) for k, (y, nz) in outputs.items()}
        unit = unit[ok]
    return analyse(design.name, design.base, design.keys, unit, outputs,
                   seed=plan.scenario.seed)


RANKED_BY = {"total": "largest total Sobol index of", "first": "largest first-order Sobol "
             "index of", "spearman": "strongest rank correlation with"}
"""The indices `ranking` ranks by, preferred first, and how a sentence names them."""


def ranking(rows: Sequence[Mapping[str, Any]], output: str
            ) -> tuple[list[tuple[str, float]], str] | None:
    """The parameters with their estimates by decreasing sensitivity of `output` (a
    sensitivity.csv output name), and the index that ranked them: the total Sobol index
    where there is one, else the first-order index, else the size of the rank correlation.
    None when no index of that output is finite (it does not vary across points)."""
    for kind in RANKED_BY:
        estimates = {r["parameter"]: float(r["estimate"]) for r in rows
                     if r["output"] == output and r["index"] == kind}
        size = {k: abs(v) if kind == "spearman" else v for k, v in estimates.items()
                if math.isfinite(v)}
        if size:  # parameters without an estimate go last, in their own order
            order = sorted(estimates, key=lambda k: -size.get(k, -math.inf))
            return [(k, estimates[k]) for k in order], kind
    return None
