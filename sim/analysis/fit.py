"""Fit Bass innovation, imitation and market size to an observed adoption series.

Nonlinear least squares (`scipy.optimize.least_squares`) of the Bass curve `m F(t)`, counted
from zero adopters at `start`, in one of the estimator forms of ESTIMATORS: the published ones
on the cumulative level, on interval counts (Srinivasan and Mason 1986) and on per-period counts
as m f(t) (continuous time); and, under explicit names, on log cumulative counts and on
per-period counts conditional on the count before them. In every form the market is at least
the last observed cumulative count. Intervals are 95% Wald intervals from the Jacobian on log
parameters with a t quantile; where that is ill-conditioned or a parameter sits at a bound they
come from the profile likelihood (the F test of Bates & Watts), which may be open-ended.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

from sim.analysis.bass import bass_fraction, bass_from, bass_rate, default_start, years_since
from sim.analysis.series import Series, SeriesError, _num
from sim.scenario import LEVELS

PARAMETERS = ("innovation", "imitation", "market")
ESTIMATORS = {
    "cumulative": "the cumulative level m F(t_i), least squares on levels",
    "interval": "interval counts m (F(t_i) - F(t_i-1)) (Srinivasan and Mason 1986)",
    "rate": "per-period counts as m f(t_i) times the period length, f taken at the period's "
            "end (the continuous-time form)",
    "log-cumulative": "log cumulative counts (relative reporting errors)",
    "conditional": "per-period counts, each predicted from the observed count before it and "
                   "weighted by 1/sqrt(its variance under the Bass birth process), iterated",
}
DEFAULT_ESTIMATOR = {"cumulative": "cumulative", "new": "interval"}
"""The estimator used for each kind of series unless one is named: the published NLS form
on the quantity the series reports."""
WALD_MAX_LOG_SE = 0.25
"""Above this standard error of a log parameter (intervals wider than about x1.6 each way)
the linearisation behind Wald intervals is not trusted and profile intervals are used."""
WEAK_RATIO = 4.0
"""A parameter whose 95% interval spans more than this factor (hi / lo) is flagged weak."""
PROFILE_REACH = math.log(1e3)
"""How far (in log units) a profile is followed before an interval is declared open."""
P_BOUNDS = (1e-7, 50.0)
Q_BOUNDS = (1e-7, 50.0)
MARKET_REACH = 1e4
"""Upper bound of the market size as a multiple of the last cumulative count (the lower bound
is that count: the market cannot be smaller than the adopters already observed)."""


@dataclass(frozen=True)
class Estimate:
    """A fitted value with its 95% interval; a bound is None where the data leave it open."""

    estimate: float
    ci95: tuple[float | None, float | None] | None  # None: no interval (no degrees of freedom)
    fixed: bool = False

    def as_json(self) -> dict:
        return {"estimate": self.estimate,
                "ci95": None if self.ci95 is None else list(self.ci95),
                **({"fixed": True} if self.fixed else {})}


@dataclass(frozen=True)
class Fit:
    """A calibration: estimates, intervals, warnings and what is needed to draw it."""

    series: Series
    level: str
    start: dt.date
    innovation: Estimate
    imitation: Estimate
    market: Estimate
    fitted: tuple[float, ...]  # fitted value of each observation (cumulative or per period)
    rmse: float  # in the series' own units (firms, cumulative or per period)
    method: str
    estimator: str  # a key of ESTIMATORS
    intervals: str  # "jacobian" | "profile" | "none"
    dof: int
    residual_scale: float  # standard deviation of the fitting residuals
    warnings: tuple[str, ...] = ()
    covariance: tuple[tuple[float, ...], ...] | None = None  # of the free log parameters
    profile_sets: tuple[tuple[float, float, float], ...] = field(default=(), repr=False)

    @property
    def params(self) -> tuple[float, float, float]:
        return self.innovation.estimate, self.imitation.estimate, self.market.estimate

    def cumulative_at(self, dates: Sequence[dt.date]) -> np.ndarray:
        """Fitted cumulative adopters at `dates`."""
        p, q, m = self.params
        return m * bass_fraction(np.maximum(years_since(self.start, dates), 0.0), p, q)

    def rate_at(self, dates: Sequence[dt.date]) -> np.ndarray:
        """Fitted adopters per year at `dates`."""
        p, q, m = self.params
        return m * bass_rate(np.maximum(years_since(self.start, dates), 0.0), p, q)

    def band(self, dates: Sequence[dt.date], what: str = "cumulative"
             ) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise 95% confidence band of the fitted cumulative curve (or rate): the delta
        method on log values where the intervals are Wald, the envelope of the curves along
        the profile paths where they are profile intervals."""
        t = np.maximum(years_since(self.start, dates), 0.0)
        curve = bass_fraction if what == "cumulative" else bass_rate

        def values(p: float, q: float, m: float) -> np.ndarray:
            return m * curve(t, p, q)

        centre = values(*self.params)
        if self.intervals == "profile" and self.profile_sets:
            sets = np.array([values(*s) for s in self.profile_sets] + [centre])
            return sets.min(axis=0), sets.max(axis=0)
        if self.covariance is None:
            return centre, centre
        free = self._free()
        cov = np.array(self.covariance)
        theta = np.log(np.array(self.params))
        grad = np.empty((len(t), len(free)))
        for j, idx in enumerate(free):
            h = 1e-6
            up, down = theta.copy(), theta.copy()
            up[idx] += h
            down[idx] -= h
            grad[:, j] = (np.log(np.maximum(values(*np.exp(up)), 1e-300))
                          - np.log(np.maximum(values(*np.exp(down)), 1e-300))) / (2 * h)
        sd = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", grad, cov, grad), 0.0))
        tq = float(stats.t.ppf(0.975, max(self.dof, 1)))
        return centre * np.exp(-tq * sd), centre * np.exp(tq * sd)

    def _free(self) -> list[int]:
        return [0, 1] if self.market.fixed else [0, 1, 2]

    def as_json(self) -> dict:
        """`fit.json`: INTERFACE.md's keys, then what a reader needs to judge and redraw it."""
        return {
            "innovation": self.innovation.as_json(),
            "imitation": self.imitation.as_json(),
            "market": self.market.as_json(),
            "rmse": self.rmse,
            "method": self.method,
            "estimator": self.estimator,
            "intervals": self.intervals,
            "warnings": list(self.warnings),
            "level": self.level,
            "series": self.series.source,
            "kind": self.series.kind,
            "start": self.start.isoformat(),
            "points": len(self.series.dates),
            "dof": self.dof,
            "residual_scale": self.residual_scale,
            "data": [{"date": d.isoformat(), self.series.kind: v, "fitted": f}
                     for d, v, f in zip(self.series.dates, self.series.values, self.fitted,
                                        strict=True)],
        }



def fit(series: Series, level: str, *, start: dt.date | None = None,
        market: float | None = None, estimator: str | None = None) -> Fit:
    """Fit Bass parameters to `series` (see the module docstring); `market` fixes m;
    `estimator` names the form (default: DEFAULT_ESTIMATOR for the series' kind)."""
    problems = []
    if level not in LEVELS:
        problems.append(f"--level {level!r}: must be one of {', '.join(LEVELS)}")
    estimator = estimator or DEFAULT_ESTIMATOR[series.kind]
    if estimator not in ESTIMATORS:
        problems.append(f"--estimator {estimator!r}: must be one of {', '.join(ESTIMATORS)}")
    start = start if start is not None else default_start(series.dates)
    if start >= series.dates[0]:
        problems.append(f"--start {start}: must be before the first date of {series.source} "
                        f"({series.dates[0]}): the Bass curve counts from zero adopters then")
    top = float(series.cumulative()[-1])
    if market is not None and not (math.isfinite(market) and market >= top):
        problems.append(f"--market {market:g}: must be a number at least the largest cumulative "
                        f"count in {series.source} ({_num(top)})")
    if problems:
        raise SeriesError(problems)
    problem = _Problem(series, start, market, estimator)
    theta, rss = problem.solve()
    return problem.finish(level, theta, rss)


class _Problem:
    """One least-squares problem: residuals in the free log parameters and their intervals."""

    def __init__(self, series: Series, start: dt.date, market: float | None, estimator: str):
        self.series = series
        self.start = start
        self.estimator = estimator
        self.t = years_since(start, series.dates)
        self.gaps = np.diff(np.concatenate([[0.0], self.t]))
        cum = series.cumulative()
        self.cum = cum
        self.y = cum if estimator in ("cumulative", "log-cumulative") else np.diff(
            np.concatenate([[0.0], cum]))
        self.fixed_m = market
        self.k = 2 if market is not None else 3
        self.n = len(self.y)
        self.top = float(cum[-1])
        self.weights = np.ones(self.n)
        lo = [math.log(P_BOUNDS[0]), math.log(Q_BOUNDS[0])]
        hi = [math.log(P_BOUNDS[1]), math.log(Q_BOUNDS[1])]
        if market is None:
            lo.append(math.log(self.top))
            hi.append(math.log(self.top * MARKET_REACH))
        self.lo, self.hi = np.array(lo), np.array(hi)

    # model values -------------------------------------------------------------------------
    def full(self, theta: np.ndarray) -> tuple[float, float, float]:
        p, q = math.exp(theta[0]), math.exp(theta[1])
        m = self.fixed_m if self.fixed_m is not None else math.exp(theta[2])
        return p, q, float(m)

    def shape(self, p: float, q: float) -> np.ndarray:
        """The fitted values per unit market, for the forms linear in m."""
        if self.estimator in ("cumulative", "log-cumulative"):
            return bass_fraction(self.t, p, q)
        if self.estimator == "interval":
            return np.diff(np.concatenate([[0.0], bass_fraction(self.t, p, q)]))
        return bass_rate(self.t, p, q) * self.gaps  # rate

    def predict(self, theta: np.ndarray) -> np.ndarray:
        """Fitted values of the estimator's target: cumulative counts, interval counts or
        per-period counts; for "conditional", each period's expected adopters given the
        observed cumulative count at its beginning (so that the errors of successive periods
        are uncorrelated even when adoption feeds on itself)."""
        p, q, m = self.full(theta)
        if self.estimator != "conditional":
            return m * self.shape(p, q)
        before = np.concatenate([[0.0], self.cum[:-1]]) / m
        return m * (bass_from(before, self.gaps, p, q) - before)

    def observed_fit(self, theta: np.ndarray) -> np.ndarray:
        """Fitted value of each observation in the series' own units."""
        p, q, m = self.full(theta)
        if self.series.kind == "cumulative":
            return m * bass_fraction(self.t, p, q)
        if self.estimator in ("cumulative", "log-cumulative"):
            return m * np.diff(np.concatenate([[0.0], bass_fraction(self.t, p, q)]))
        return self.predict(theta)

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        pred = self.predict(theta)
        if self.estimator == "log-cumulative":
            return np.log(self.y) - np.log(np.maximum(pred, 1e-300))
        return (self.y - pred) * self.weights

    # solving ------------------------------------------------------------------------------
    def solve(self, fixed: dict[int, float] | None = None,
              x0: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Least squares over the free parameters not in `fixed` (index -> log value)."""
        fixed = fixed or {}
        if self.estimator == "conditional" and not fixed:
            return self._reweighted(x0)
        return self._least_squares(fixed, x0)

    def _reweighted(self, x0: np.ndarray | None) -> tuple[np.ndarray, float]:
        # Weighted least squares with weights 1/sqrt(variance of each period's count), held
        # fixed within a pass (so the Jacobian covariance is standard) and iterated to a
        # fixed point.
        self.weights = 1.0 / np.sqrt(np.maximum(self.y, 1.0))
        theta, rss = self._least_squares({}, x0)
        for _ in range(20):
            new = 1.0 / np.sqrt(self.variance(theta))
            if np.allclose(new, self.weights, rtol=1e-9, atol=0):
                break
            self.weights = new
            theta, rss = self._least_squares({}, theta)
        return theta, rss

    def variance(self, theta: np.ndarray) -> np.ndarray:
        """Relative variance of each period's count: its expected size times the
        over-dispersion (1 + exp(b T)) / 2 that a birth process whose rate grows by b per
        adopter (b = q - p - 2 q F for Bass) accumulates over a period of T years (the linear
        noise approximation); a single factor for everything else is estimated from the fit."""
        p, q, m = self.full(theta)
        mean = np.maximum(self.predict(theta), 0.5)
        before = np.concatenate([[0.0], self.cum[:-1]]) / m
        mid = np.minimum(before + 0.5 * mean / m, 1.0)
        growth = q - p - 2.0 * q * mid
        return mean * 0.5 * (1.0 + np.exp(np.clip(growth * self.gaps, -50.0, 50.0)))

    def _least_squares(self, fixed: dict[int, float], x0: np.ndarray | None
                       ) -> tuple[np.ndarray, float]:
        free = [i for i in range(self.k) if i not in fixed]
        start = self._initial(fixed) if x0 is None else np.array(x0, dtype=float)
        for i, v in fixed.items():
            start[i] = v

        def res(z: np.ndarray) -> np.ndarray:
            theta = start.copy()
            theta[free] = z
            return self.residuals(theta)

        z0 = np.clip(start[free], self.lo[free] + 1e-9, self.hi[free] - 1e-9)
        sol = optimize.least_squares(res, z0, bounds=(self.lo[free], self.hi[free]),
                                     method="trf", x_scale="jac", xtol=1e-14, ftol=1e-14,
                                     gtol=1e-14, max_nfev=5000)
        theta = start.copy()
        theta[free] = sol.x
        return theta, float(np.sum(sol.fun ** 2))

    def _initial(self, fixed: dict[int, float]) -> np.ndarray:
        """Best point of a coarse grid over p and q, the market set by linear least squares
        (on log counts for the log and conditional forms)."""
        best, best_rss = None, math.inf
        grid_p = [fixed[0]] if 0 in fixed else np.linspace(-9, 1, 21)
        grid_q = [fixed[1]] if 1 in fixed else np.linspace(-5, 2.5, 16)
        linear = self.estimator in ("cumulative", "interval", "rate")
        for lp in grid_p:
            for lq in grid_q:
                theta = [lp, lq]
                if self.k == 3:
                    if 2 in fixed:
                        lm = fixed[2]
                    elif linear:
                        g = self.shape(math.exp(lp), math.exp(lq))
                        lm = math.log(max(float(g @ self.y) / max(float(g @ g), 1e-300), 1e-300))
                    else:
                        shape = bass_fraction(self.t, math.exp(lp), math.exp(lq))
                        lm = float(np.mean(np.log(self.cum) - np.log(np.maximum(shape, 1e-300))))
                    theta.append(float(np.clip(lm, self.lo[2], self.hi[2])))
                rss = float(np.sum(self.residuals(np.array(theta)) ** 2))
                if rss < best_rss:
                    best, best_rss = np.array(theta), rss
        assert best is not None
        return best

    # intervals ----------------------------------------------------------------------------
    def finish(self, level: str, theta: np.ndarray, rss: float) -> Fit:
        dof = self.n - self.k
        s2 = rss / dof if dof > 0 else math.nan
        p, q, m = self.full(theta)
        warnings: list[str] = []
        cov = None
        intervals = "none"
        cis: list[tuple[float | None, float | None] | None] = [None] * self.k
        profile_sets: list[tuple[float, float, float]] = []
        at_lo = np.isclose(theta, self.lo, atol=1e-6)
        at_hi = np.isclose(theta, self.hi, atol=1e-6)
        if dof <= 0:
            warnings.append(f"{self.n} points for {self.k} parameters: no residual degrees of "
                            "freedom are left, so no interval can be computed")
        else:
            jac = self._jacobian(theta)
            cov = _covariance(jac, s2)
            se = None if cov is None else np.sqrt(np.maximum(np.diag(cov), 0.0))
            tq = float(stats.t.ppf(0.975, dof))
            # A Wald interval reaching below the bound m >= last count would state markets the
            # data exclude: the profile, which respects the bound, is used instead.
            below = (se is not None and self.k == 3
                     and theta[2] - tq * se[2] < self.lo[2])
            if (se is not None and not np.any(at_lo | at_hi) and not below
                    and np.all(se <= WALD_MAX_LOG_SE)):
                intervals = "jacobian"
                cis = [(math.exp(theta[i] - tq * se[i]), math.exp(theta[i] + tq * se[i]))
                       for i in range(self.k)]
            else:
                intervals = "profile"
                limit = rss * (1.0 + float(stats.f.ppf(0.95, 1, dof)) / dof)
                for i in range(self.k):
                    cis[i], path = self._profile(i, theta, limit)
                    profile_sets.extend(path)
        names = PARAMETERS[: self.k]
        ests = {name: Estimate(v, cis[i]) for i, (name, v) in enumerate(zip(names, (p, q, m),
                                                                            strict=False))}
        if self.fixed_m is not None:
            ests["market"] = Estimate(m, (m, m), fixed=True)
        for i, name in enumerate(names):
            if name == "market" and at_lo[i]:
                warnings.append(f"market is at its lower bound, the last observed cumulative "
                                f"count ({_num(self.top)}): the fit would put it lower, so the "
                                "curve has saturated on these data or does not fit their end")
            elif at_lo[i] or at_hi[i]:
                warnings.append(f"{name} ran to the edge of the search range "
                                f"({math.exp(self.lo[i]):.3g} to {math.exp(self.hi[i]):.3g}): "
                                "the data do not determine it")
        warnings.extend(self._identification(ests, p, q, m))
        fitted = self.observed_fit(theta)
        rmse = float(np.sqrt(np.mean((np.asarray(self.series.values) - fitted) ** 2)))
        return Fit(
            series=self.series, level=level, start=self.start,
            innovation=ests["innovation"], imitation=ests["imitation"], market=ests["market"],
            fitted=tuple(float(x) for x in fitted), rmse=rmse, method=self.method(intervals),
            estimator=self.estimator, intervals=intervals, dof=dof,
            residual_scale=math.sqrt(s2) if dof > 0 else 0.0, warnings=tuple(warnings),
            covariance=None if cov is None else tuple(tuple(float(x) for x in r) for r in cov),
            profile_sets=tuple(profile_sets),
        )

    def method(self, intervals: str) -> str:
        how = {"jacobian": "Wald intervals from the Jacobian on log parameters (t quantile)",
               "profile": "profile-likelihood intervals (F test), the Jacobian being "
                          "ill-conditioned or a parameter at a bound",
               "none": "no intervals (no degrees of freedom)"}[intervals]
        fixed = ("market fixed by --market" if self.fixed_m is not None else
                 f"market at least the last observed cumulative count ({_num(self.top)})")
        return (f"{self.estimator}: nonlinear least squares (scipy.optimize.least_squares, "
                f"trust region reflective) of the Bass curve on {ESTIMATORS[self.estimator]}; "
                f"{fixed}; 95% {how}")

    def _jacobian(self, theta: np.ndarray) -> np.ndarray:
        jac = np.empty((self.n, self.k))
        for i in range(self.k):
            h = 1e-6 * max(1.0, abs(theta[i]))
            up, down = theta.copy(), theta.copy()
            up[i] += h
            down[i] -= h
            jac[:, i] = (self.residuals(up) - self.residuals(down)) / (2 * h)
        return jac

    def _profile(self, i: int, theta: np.ndarray, limit: float
                 ) -> tuple[tuple[float | None, float | None], list[tuple[float, float, float]]]:
        """Interval for parameter i: where the refitted RSS crosses `limit` on each side,
        following the profile outward from the estimate (warm-started, so it stays on the
        ridge). Also returns the parameter sets met inside the region, for the band. The
        market's lower end, when the profile reaches it, is the bound itself (the last
        observed count), not an open end."""
        path: list[tuple[float, float, float]] = []
        bounds: list[float | None] = []
        for direction in (-1.0, 1.0):
            edge = self.lo[i] if direction < 0 else self.hi[i]
            to_edge = abs(edge - theta[i])
            reach = min(PROFILE_REACH, to_edge)
            warm = [theta.copy()]

            def excess(v: float, warm: list = warm) -> float:
                th, r = self.solve({i: v}, warm[0])
                warm[0] = th
                if r <= limit:
                    path.append(self.full(th))
                return r - limit

            prev, found, crossed = theta[i], None, False
            for step in _steps(reach):
                v = theta[i] + direction * step
                if excess(v) > 0:
                    crossed = True
                    try:
                        found = optimize.brentq(excess, min(prev, v), max(prev, v), xtol=1e-6)
                    except ValueError:  # the warm-started refits disagree: leave it open
                        found = None
                    break
                prev = v
            if not crossed and i == 2 and direction < 0 and reach == to_edge:
                found = float(edge)
            bounds.append(None if found is None else math.exp(found))
        return (bounds[0], bounds[1]), path

    def _identification(self, ests: dict[str, Estimate], p: float, q: float, m: float
                        ) -> list[str]:
        out = []
        t_last = self.t[-1]
        share = float(bass_fraction(np.array([t_last]), p, q)[0])
        inflection = max(0.0, (q - p) / (2 * q))
        not_bent = share < inflection
        for name in ("innovation", "imitation", "market"):
            est = ests[name]
            if est.fixed or est.ci95 is None:
                continue
            lo, hi = est.ci95
            open_end = lo is None or hi is None
            if not open_end and hi / lo <= WEAK_RATIO:  # type: ignore[operator]  # both set
                continue
            span = ("is open-ended" if open_end
                    else f"spans a factor of {hi / lo:.3g}")  # type: ignore[operator]
            why = ""
            if name == "market" and not_bent:
                why = (f": the series has not yet bent (fitted share {share:.0%} of the market "
                       f"at the last date, inflection at {inflection:.0%}), so the market size "
                       "rests on the curve's shape alone; fix it with --market if it is known")
            out.append(f"{name} is weakly identified: its 95% interval {span}{why}")
        if self.fixed_m is None and not_bent and not any(w.startswith("market") for w in out):
            out.append(f"market: the series has not yet bent (fitted share {share:.0%} at the "
                       f"last date, inflection at {inflection:.0%}): treat the market size "
                       "with care")
        return out


def _steps(reach: float) -> list[float]:
    """Growing steps out to `reach` (log units): fine near the estimate, coarse far away."""
    out, step = [], 0.01
    while step < reach:
        out.append(step)
        step *= 1.5
    out.append(reach)
    return out


def _covariance(jac: np.ndarray, s2: float) -> np.ndarray | None:
    jtj = jac.T @ jac
    if not np.all(np.isfinite(jtj)) or np.linalg.cond(jtj) > 1e12:
        return None
    return s2 * np.linalg.inv(jtj)
