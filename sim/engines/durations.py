"""The law of implementation times, for the engines that file projects by it: the time
left on a project found under way at the start, and when a project started at a uniform
moment of a step completes. Re-exported by `rules` (one place for every rule)."""

from __future__ import annotations

import math

import numpy as np


def residual_years(rng: np.random.Generator, median_years: float, sigma: float, n: int
                   ) -> np.ndarray:
    """Time left (years) on n projects found under way at the start. For a steady stream of
    starts, a project in progress has a length-biased duration T* (density t g(t) / E[T]) of
    which a uniform part has elapsed; for a lognormal T, T* is lognormal with log-mean
    mu + sigma^2. The remaining time then has density (1 - G(r)) / E[T]."""
    if median_years <= 0:
        return np.zeros(n)
    mu = math.log(median_years) + sigma * sigma
    return rng.uniform(size=n) * np.exp(mu + sigma * rng.standard_normal(n))


def started_cdf(x, d0: float, d1: float, median: float, sigma: float):
    """P(s + T <= x) for a project started at s uniform on [d0, d1) with the lognormal
    duration T (median, sigma; median <= 0: instant), in any one unit of time:
    (G(x - d0) - G(x - d1)) / (d1 - d0), where G(y) = E[(y - T)^+] is the integral of T's
    CDF up to y (for the lognormal, y Phi(z) - E[T] Phi(z - sigma), z = (ln y - ln median) /
    sigma); with d1 = d0, a start at d0: T's CDF at x - d0. The fast engine files projects
    by it."""
    from scipy.special import ndtr

    if d1 == d0:
        y = np.asarray(x, dtype=float) - d0
        if median <= 0:
            return (y >= 0).astype(float)
        if sigma == 0:
            return (y >= median).astype(float)
        return np.where(y > 0, ndtr((np.log(np.maximum(y, 1e-300)) - math.log(median))
                                   / sigma), 0.0)

    def G(y: np.ndarray) -> np.ndarray:
        if median <= 0:
            return np.maximum(y, 0.0)
        if sigma == 0:
            return np.maximum(y - median, 0.0)
        mu = math.log(median)
        z = (np.log(np.maximum(y, 1e-300)) - mu) / sigma
        return np.where(y > 0, y * ndtr(z) - math.exp(mu + sigma * sigma / 2) * ndtr(z - sigma),
                        0.0)

    x = np.asarray(x, dtype=float)
    return np.clip((G(x - d0) - G(x - d1)) / (d1 - d0), 0.0, 1.0)


def residual_cdf(r, median_years: float, sigma: float):
    """P(time left <= r) for a project under way at the start (the law `residual_years`
    draws from): E[min(T, r)] / E[T] for the lognormal T; tests and the mean field use it."""
    from scipy.special import ndtr

    r = np.asarray(r, dtype=float)
    if median_years <= 0:
        return (r >= 0).astype(float)
    mu = math.log(median_years)
    mean = math.exp(mu + sigma * sigma / 2)
    with np.errstate(divide="ignore"):
        z = (np.log(np.maximum(r, 1e-300)) - mu) / sigma if sigma > 0 else None
    if sigma == 0:
        return np.minimum(r, median_years) / median_years
    assert z is not None  # sigma > 0 here
    part = mean * ndtr(z - sigma) + r * (1 - ndtr(z))
    return np.where(r > 0, part / mean, 0.0)
