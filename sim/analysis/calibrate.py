"""Fit Bass innovation, imitation and market size to an observed adoption series.

The data are published counts: cumulative adopters at irregular dates (`date,cumulative`) or
adopters per period ending at each date (`date,new`). The fit is nonlinear least squares
(`scipy.optimize.least_squares`) on the Bass curve `m F(t)` counted from zero adopters at
`start`: on log counts for cumulative series (reporting errors are relative: "more than
15,000"), on per-period counts weighted by their fitted size for per-period series
(Poisson-like errors, iteratively reweighted). Intervals are 95% Wald intervals from the
Jacobian on log parameters with a t quantile; where that is ill-conditioned they come from
the profile likelihood (the F test of Bates & Watts), which may be open-ended.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import optimize, stats

from sim.scenario import DAYS_PER_YEAR, FIRST_DATE, LAST_DATE, LEVELS, MAX_FIRMS, ScenarioError

KINDS = ("cumulative", "new")
MAX_COUNT = float(MAX_FIRMS)  # no series counts more firms than a scenario may hold
PARAMETERS = ("innovation", "imitation", "market")
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
"""Upper bound of the market size as a multiple of the largest cumulative count."""


class SeriesError(ScenarioError):
    """A data file or fitting option that cannot be used; `problems` holds one line each
    (the same one-line-per-fault contract as a scenario's, so the CLI reports both alike)."""


# ---------------------------------------------------------------------------------------------
# Reading the series


@dataclass(frozen=True)
class Series:
    """An observed adoption series: strictly increasing dates and one count per date."""

    source: str
    kind: str  # "cumulative" | "new"
    dates: tuple[dt.date, ...]
    values: tuple[float, ...]

    def cumulative(self) -> np.ndarray:
        """Cumulative adopters at each date (for `new`: since the start of the first period)."""
        v = np.asarray(self.values, dtype=float)
        return v if self.kind == "cumulative" else np.cumsum(v)


def read_series(path: str | Path, where: Sequence[str] = ()) -> Series:
    """Read and check a CSV series; `where` keeps rows with COLUMN=VALUE (e.g. tier=advanced)."""
    path = Path(path)
    src = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SeriesError([f"{src}: cannot read the file ({exc.strerror or exc})"]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SeriesError([f"{src}: byte {exc.start} is not UTF-8: a series must be UTF-8 "
                           "CSV text"]) from None
    return parse_series(text, src, where)


def parse_series(text: str, source: str, where: Sequence[str] = ()) -> Series:
    """Check CSV text: a `date` column and exactly one of `cumulative` or `new`; every fault
    is one line naming the file, line, column and value and what is allowed."""
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:  # an over-long field, a stray carriage return inside a field
        raise SeriesError([f"{source}: not a readable CSV file ({exc}): expected a header "
                           "'date,cumulative' or 'date,new' and one row per date"]) from None
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    if not rows:
        raise SeriesError([f"{source}: the file is empty: expected a header 'date,cumulative' "
                           "or 'date,new' and at least three rows"])
    header = [h.strip() for h in rows[0]]
    problems = _header_problems(header, source)
    filters = _filters(where, header, source, problems)
    if problems:
        raise SeriesError(problems)
    kind = "cumulative" if "cumulative" in header else "new"
    i_date, i_value = header.index("date"), header.index(kind)
    dates: list[dt.date] = []
    values: list[float] = []
    lines: list[int] = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = row + [""] * (len(header) - len(row))
        if any(cells[i].strip() != want for i, want in filters):
            continue
        date = _date(cells[i_date].strip(), source, n, problems)
        value = _count(cells[i_value].strip(), kind, source, n, problems)
        if date is not None and value is not None:
            dates.append(date)
            values.append(value)
            lines.append(n)
    _order_problems(dates, values, lines, kind, source, problems)
    if not problems and dates and not any(values):
        problems.append(f"{source}: every count is 0: a Bass curve needs some adopters")
    if not problems and len(dates) < 3:
        chosen = f" matching {', '.join(where)}" if where else ""
        problems.append(f"{source}: {len(dates)} data row(s){chosen}: at least three are needed "
                        "to fit a Bass curve")
    if problems:
        raise SeriesError(problems)
    return Series(source, kind, tuple(dates), tuple(values))


def _columns(header: list[str]) -> str:
    """The header's cells for a one-line message (line breaks inside a cell escaped)."""
    return ", ".join(h.replace("\r", "\\r").replace("\n", "\\n") for h in header)


def _header_problems(header: list[str], source: str) -> list[str]:
    have = [k for k in KINDS if k in header]
    out = []
    if "date" not in header:
        out.append(f"{source}: line 1: no 'date' column (columns: {_columns(header)}); "
                   "expected 'date,cumulative' or 'date,new'")
    if not have:
        out.append(f"{source}: line 1: no 'cumulative' or 'new' column (columns: "
                   f"{_columns(header)}); expected 'date,cumulative' or 'date,new'")
    elif len(have) == 2:
        out.append(f"{source}: line 1: both 'cumulative' and 'new' columns: keep one, so it is "
                   "clear which the counts are")
    dupes = sorted({h for h in header if header.count(h) > 1 and h})
    if dupes:
        out.append(f"{source}: line 1: column(s) {', '.join(dupes)} appear more than once")
    return out


def _filters(where: Sequence[str], header: list[str], source: str, problems: list[str]
             ) -> list[tuple[int, str]]:
    out = []
    for item in where:
        column, sep, value = item.partition("=")
        if not sep or not column.strip():
            problems.append(f"{source}: --where {item!r}: expected COLUMN=VALUE, e.g. "
                            "tier=advanced")
        elif column.strip() not in header:
            problems.append(f"{source}: --where {item!r}: no column {column.strip()!r} "
                            f"(columns: {', '.join(header)})")
        else:
            out.append((header.index(column.strip()), value.strip()))
    return out


def _date(cell: str, source: str, line: int, problems: list[str]) -> dt.date | None:
    try:
        date = dt.date.fromisoformat(cell)
    except ValueError:
        problems.append(f"{source}: line {line}, column date: {cell!r} is not a date: use "
                        "YYYY-MM-DD, e.g. 2025-11-20")
        return None
    if not FIRST_DATE <= date <= LAST_DATE:
        problems.append(f"{source}: line {line}, column date: {cell!r}: must lie between "
                        f"{FIRST_DATE} and {LAST_DATE}")
        return None
    return date


def _count(cell: str, kind: str, source: str, line: int, problems: list[str]) -> float | None:
    allowed = ("a count greater than 0 (a cumulative series starts at its first adopters; "
               "use --start for when adoption began)" if kind == "cumulative"
               else "a count of 0 or more")
    try:
        value = float(cell)
    except ValueError:
        problems.append(f"{source}: line {line}, column {kind}: {cell!r} is not a number: "
                        f"must be {allowed}, digits only (no thousands separators)")
        return None
    if (not math.isfinite(value) or value < 0 or value > MAX_COUNT
            or (kind == "cumulative" and value == 0)):
        problems.append(f"{source}: line {line}, column {kind}: {cell!r}: must be {allowed}, "
                        f"at most {MAX_COUNT:.0e}")
        return None
    return value


def _order_problems(dates: list[dt.date], values: list[float], lines: list[int], kind: str,
                    source: str, problems: list[str]) -> None:
    for j in range(1, len(dates)):
        if dates[j] <= dates[j - 1]:
            problems.append(f"{source}: line {lines[j]}, column date: {dates[j]} is not after "
                            f"{dates[j - 1]} (line {lines[j - 1]}): dates must increase "
                            "strictly, one row per date")
        elif kind == "cumulative" and values[j] < values[j - 1]:
            problems.append(f"{source}: line {lines[j]}, column cumulative: {_num(values[j])} "
                            f"is below {_num(values[j - 1])} (line {lines[j - 1]}): cumulative "
                            "counts must not decrease")


def _num(x: float) -> str:
    return f"{x:,.0f}" if x == int(x) else f"{x:,.6g}"


def default_start(dates: Sequence[dt.date]) -> dt.date:
    """The first date minus one period (the gap between the first two dates)."""
    return dates[0] - (dates[1] - dates[0])


# ---------------------------------------------------------------------------------------------
# The Bass curve


def bass_fraction(t: np.ndarray, innovation: float, imitation: float) -> np.ndarray:
    """Bass (1969) cumulative share F(t) from zero adopters at t = 0 (vectorised, t >= 0)."""
    t = np.asarray(t, dtype=float)
    e = np.exp(-(innovation + imitation) * t)
    return (1.0 - e) / (1.0 + (imitation / innovation) * e)


def bass_from(share: np.ndarray, t: np.ndarray, innovation: float, imitation: float
              ) -> np.ndarray:
    """Bass share after time t starting from adopter share `share` (the ODE's solution through
    that point; a share at or above 1 stays there)."""
    s = np.minimum(np.asarray(share, dtype=float), 1.0)
    c = (1.0 - s) / (1.0 + (imitation / innovation) * s)
    e = c * np.exp(-(innovation + imitation) * np.asarray(t, dtype=float))
    return np.maximum((1.0 - e) / (1.0 + (imitation / innovation) * e), s)


def bass_rate(t: np.ndarray, innovation: float, imitation: float) -> np.ndarray:
    """Adoption rate f(t) = dF/dt = (p + q F)(1 - F), per year."""
    f = bass_fraction(t, innovation, imitation)
    return (innovation + imitation * f) * (1.0 - f)


def years_since(start: dt.date, dates: Sequence[dt.date]) -> np.ndarray:
    """Model time in years (1/365.25 per day) from `start` to each date."""
    return np.array([(d - start).days / DAYS_PER_YEAR for d in dates])


# ---------------------------------------------------------------------------------------------
# The fit


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
        market: float | None = None) -> Fit:
    """Fit Bass parameters to `series` (see the module docstring); `market` fixes m."""
    problems = []
    if level not in LEVELS:
        problems.append(f"--level {level!r}: must be one of {', '.join(LEVELS)}")
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
    problem = _Problem(series, start, market)
    theta, rss = problem.solve()
    return problem.finish(level, theta, rss)


class _Problem:
    """One least-squares problem: residuals in the free log parameters and their intervals."""

    def __init__(self, series: Series, start: dt.date, market: float | None):
        self.series = series
        self.start = start
        self.t = years_since(start, series.dates)
        self.y = np.asarray(series.values, dtype=float)
        self.fixed_m = market
        self.k = 2 if market is not None else 3
        self.n = len(self.y)
        self.top = float(series.cumulative()[-1])
        self.weights = np.ones(self.n)
        lo = [math.log(P_BOUNDS[0]), math.log(Q_BOUNDS[0])]
        hi = [math.log(P_BOUNDS[1]), math.log(Q_BOUNDS[1])]
        if market is None:
            lo.append(math.log(self.top * (0.5 if series.kind == "cumulative" else 1.0)))
            hi.append(math.log(self.top * MARKET_REACH))
        self.lo, self.hi = np.array(lo), np.array(hi)

    # model values -------------------------------------------------------------------------
    def full(self, theta: np.ndarray) -> tuple[float, float, float]:
        p, q = math.exp(theta[0]), math.exp(theta[1])
        m = self.fixed_m if self.fixed_m is not None else math.exp(theta[2])
        return p, q, float(m)

    def predict(self, theta: np.ndarray) -> np.ndarray:
        """Fitted cumulative counts; for per-period counts, each period's expected adopters
        given the observed cumulative count at its beginning (so that the errors of
        successive periods are uncorrelated even when adoption feeds on itself)."""
        p, q, m = self.full(theta)
        if self.series.kind == "cumulative":
            return m * bass_fraction(self.t, p, q)
        before = np.concatenate([[0.0], np.cumsum(self.y)[:-1]]) / m
        gaps = np.diff(np.concatenate([[0.0], self.t]))
        return m * (bass_from(before, gaps, p, q) - before)

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        pred = self.predict(theta)
        if self.series.kind == "cumulative":
            return np.log(self.y) - np.log(np.maximum(pred, 1e-300))
        return (self.y - pred) * self.weights

    # solving ------------------------------------------------------------------------------
    def solve(self, fixed: dict[int, float] | None = None,
              x0: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Least squares over the free parameters not in `fixed` (index -> log value)."""
        fixed = fixed or {}
        if self.series.kind == "new" and not fixed:
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
        before = np.concatenate([[0.0], np.cumsum(self.y)[:-1]]) / m
        mid = np.minimum(before + 0.5 * mean / m, 1.0)
        gaps = np.diff(np.concatenate([[0.0], self.t]))
        growth = q - p - 2.0 * q * mid
        return mean * 0.5 * (1.0 + np.exp(np.clip(growth * gaps, -50.0, 50.0)))

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
        """Best point of a coarse grid over p and q, the market set by linear least squares."""
        best, best_rss = None, math.inf
        cum_y = self.series.cumulative()
        grid_p = [fixed[0]] if 0 in fixed else np.linspace(-9, 1, 21)
        grid_q = [fixed[1]] if 1 in fixed else np.linspace(-5, 2.5, 16)
        for lp in grid_p:
            for lq in grid_q:
                shape = bass_fraction(self.t, math.exp(lp), math.exp(lq))
                theta = [lp, lq]
                if self.k == 3:
                    lm = fixed.get(2, float(np.mean(np.log(cum_y)
                                                    - np.log(np.maximum(shape, 1e-300)))))
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
        if dof <= 0:
            warnings.append(f"{self.n} points for {self.k} parameters: no residual degrees of "
                            "freedom are left, so no interval can be computed")
        else:
            jac = self._jacobian(theta)
            cov = _covariance(jac, s2)
            se = None if cov is None else np.sqrt(np.maximum(np.diag(cov), 0.0))
            at_bound = np.any(np.isclose(theta, self.lo, atol=1e-6)
                              | np.isclose(theta, self.hi, atol=1e-6))
            if se is not None and not at_bound and np.all(se <= WALD_MAX_LOG_SE):
                intervals = "jacobian"
                tq = float(stats.t.ppf(0.975, dof))
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
            if np.isclose(theta[i], self.lo[i], atol=1e-6) or np.isclose(theta[i], self.hi[i],
                                                                          atol=1e-6):
                warnings.append(f"{name} ran to the edge of the search range "
                                f"({math.exp(self.lo[i]):.3g} to {math.exp(self.hi[i]):.3g}): "
                                "the data do not determine it")
        warnings.extend(self._identification(ests, p, q, m))
        pred = self.predict(theta)
        rmse = float(np.sqrt(np.mean((self.y - pred) ** 2)))
        return Fit(
            series=self.series, level=level, start=self.start,
            innovation=ests["innovation"], imitation=ests["imitation"], market=ests["market"],
            fitted=tuple(float(x) for x in pred), rmse=rmse, method=self.method(intervals),
            intervals=intervals, dof=dof, residual_scale=math.sqrt(s2) if dof > 0 else 0.0,
            warnings=tuple(warnings),
            covariance=None if cov is None else tuple(tuple(float(x) for x in r) for r in cov),
            profile_sets=tuple(profile_sets),
        )

    def method(self, intervals: str) -> str:
        what = ("log cumulative counts" if self.series.kind == "cumulative"
                else "per-period counts, each predicted from the observed count before it and "
                     "weighted by 1/sqrt(its variance under the Bass birth process), iterated")
        how = {"jacobian": "Wald intervals from the Jacobian on log parameters (t quantile)",
               "profile": "profile-likelihood intervals (F test), the Jacobian being "
                          "ill-conditioned",
               "none": "no intervals (no degrees of freedom)"}[intervals]
        fixed = "; market fixed by --market" if self.fixed_m is not None else ""
        return (f"nonlinear least squares (scipy.optimize.least_squares, trust region "
                f"reflective) of the Bass curve on {what}{fixed}; 95% {how}")

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
        ridge). Also returns the parameter sets met inside the region, for the band."""
        path: list[tuple[float, float, float]] = []
        bounds: list[float | None] = []
        for direction in (-1.0, 1.0):
            edge = self.lo[i] if direction < 0 else self.hi[i]
            reach = min(PROFILE_REACH, abs(edge - theta[i]))
            warm = [theta.copy()]

            def excess(v: float, warm: list = warm) -> float:
                th, r = self.solve({i: v}, warm[0])
                warm[0] = th
                if r <= limit:
                    path.append(self.full(th))
                return r - limit

            prev, found = theta[i], None
            for step in _steps(reach):
                v = theta[i] + direction * step
                if excess(v) > 0:
                    try:
                        found = optimize.brentq(excess, min(prev, v), max(prev, v), xtol=1e-6)
                    except ValueError:  # the warm-started refits disagree: leave it open
                        found = None
                    break
                prev = v
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
            if not open_end and hi / lo <= WEAK_RATIO:
                continue
            span = ("open-ended" if open_end else f"spans a factor of {hi / lo:.3g}")
            why = ""
            if name == "market" and not_bent:
                why = (f": the series has not yet bent (fitted share {share:.0%} of the market "
                       f"at the last date, inflection at {inflection:.0%}), so the market size "
                       "rests on the curve's shape alone; fix it with --market if it is known")
            out.append(f"{name} is weakly identified: its 95% interval is {span}{why}")
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


# ---------------------------------------------------------------------------------------------
# The fragment to paste into a scenario


def fragment(result: Fit) -> str:
    """`[levels.LEVEL]` keys from a fit, with the intervals and provenance as comments."""
    def ci(e: Estimate, fmt: Callable[[float], str]) -> str:
        if e.fixed:
            return "fixed by --market"
        if e.ci95 is None:
            return "no interval"
        lo, hi = e.ci95
        return (f"95% CI [{'open' if lo is None else fmt(lo)}, "
                f"{'open' if hi is None else fmt(hi)}]")

    def g(x: float) -> str:
        return f"{x:.4g}"

    def firms(x: float) -> str:
        return f"{x:,.0f}"

    p, q, m = result.params
    lines = [
        f"# sim calibrate {result.series.source} --level {result.level} "
        f"(start {result.start}, {len(result.series.dates)} points, {result.intervals} "
        "intervals)",
        f"# market size {firms(m)} firms ({ci(result.market, firms)}): in a scenario, "
        "eligible = market / population.firms",
        "# These are one-level Bass rates; in a four-level scenario a level's rates act on the",
        "# firms one rung below (see docs/calibration.md).",
    ]
    lines += [f"# warning: {w}" for w in result.warnings]
    lines += [
        f"[levels.{result.level}]",
        f"innovation = {g(p)}    # {ci(result.innovation, g)}",
        f"imitation = {g(q)}    # {ci(result.imitation, g)}",
    ]
    return "\n".join(lines) + "\n"
