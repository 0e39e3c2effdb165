"""Verdicts over replications: P(target met) with a Wilson interval; count and crossing
quantiles, for a run (`verdict`) or for each point of a sweep (`point_stats`)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.readout.shares import share_text
from sim.scenario import Scenario

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (good near 0 and 1, unlike Wald)."""
    if n <= 0:
        return (0.0, 1.0)
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    # At 0 or n successes the bound is exactly 0 or 1; the formula leaves rounding dust.
    lo = 0.0 if successes <= 0 else max(0.0, centre - half)
    hi = 1.0 if successes >= n else min(1.0, centre + half)
    return (lo, hi)


@dataclass(frozen=True)
class Verdict:
    """The answer to "is the target met?" over a set of replications."""

    replications: int
    met: int
    p_met: float
    p_met_ci95: tuple[float, float]
    count_mean: float
    count_p05: float
    count_p50: float
    count_p95: float
    crossing_p05: dt.date | None
    crossing_p50: dt.date | None
    crossing_p95: dt.date | None
    never: float  # share of runs that never cross within the horizon
    deterministic: bool = False
    start_count: float = 0.0  # the count at the start (nonzero only for the stock reading)


def verdict(scenario: Scenario, counts: Sequence[float], crossings: Sequence[float | None],
            *, deterministic: bool = False, start_count: float = 0.0) -> Verdict:
    """Summarise deadline counts and crossing times (years, None = never) of replications.
    A deterministic engine's single trajectory has no sampling interval: it is [p, p].
    `start_count`: the count at the start, so the pace counts only what the plan adds."""
    n = len(counts)
    arr = np.asarray(counts, dtype=float)
    met = int(np.sum(arr >= scenario.target.firms))
    stats = count_stats(arr)
    cross = np.array([math.inf if c is None else c for c in crossings], dtype=float)

    def cross_q(q: float) -> dt.date | None:
        # Quantile of a right-censored sample: the order statistic, inf if it is censored.
        value = float(np.quantile(cross, q, method="inverted_cdf")) if n else math.inf
        return None if math.isinf(value) else scenario.date_at(value)

    return Verdict(
        replications=n,
        met=met,
        p_met=met / n if n else math.nan,
        p_met_ci95=(met / n, met / n) if deterministic and n else wilson(met, n),
        count_mean=stats["mean"],
        count_p05=stats["p05"],
        count_p50=stats["p50"],
        count_p95=stats["p95"],
        crossing_p05=cross_q(0.05),
        crossing_p50=cross_q(0.50),
        crossing_p95=cross_q(0.95),
        never=float(np.mean(np.isinf(cross))) if n else math.nan,
        deterministic=deterministic,
        start_count=start_count,
    )


def count_stats(counts: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean and 5/50/95% quantiles of counts over replications (NaN when there are none): the
    shape of summary.json's `count_at_deadline`, national and by region."""
    arr = np.asarray(counts, dtype=float)
    if not arr.size:
        return {"mean": math.nan, "p05": math.nan, "p50": math.nan, "p95": math.nan}
    return {"mean": float(arr.mean()), "p05": float(np.quantile(arr, 0.05)),
            "p50": float(np.quantile(arr, 0.50)), "p95": float(np.quantile(arr, 0.95))}


READING_WORDS = {"new": "new firms at >= {}", "stock": "firms at >= {}",
                 "upgraded": "firms upgraded to >= {}"}
"""How a count of each reading is named in a sentence."""


def met_at_start(scenario: Scenario, v: Verdict) -> bool:
    """Whether the firms at the start already meet the target (a stock reading can)."""
    return v.start_count >= scenario.target.firms


def gap_text(scenario: Scenario, v: Verdict) -> str:
    """The mean count at the deadline with the spread of single runs (labelled, as it is no
    confidence interval), the shortfall or margin, and the pace the runs kept against the
    pace the target needs (0/yr when it is met at the start: holding it), e.g. "14,635 new
    firms at >= line (5-95% of runs: 14,459-14,805) at 2028-12-31; 35,365 short; 4,878/yr
    modelled vs 16,667/yr needed"."""
    t = scenario.target
    what = READING_WORDS[t.count].format(t.level)
    band = ("" if v.deterministic
            else f" (5-95% of runs: {v.count_p05:,.0f}-{v.count_p95:,.0f})")
    gap = t.firms - v.count_mean
    where = f"{gap:,.0f} short" if gap > 0 else f"{-gap:,.0f} above the target"
    years = scenario.deadline
    pace = (v.count_mean - v.start_count) / years
    # (met at the start, holding the count is what is needed: 0/yr, which a stock that
    # falls with exits misses; "none" read as if nothing could go wrong)
    need = ("0/yr" if met_at_start(scenario, v)
            else f"{(t.firms - v.start_count) / years:,.0f}/yr")
    return (f"{v.count_mean:,.0f} {what}{band} at {t.deadline.isoformat()}; {where}; "
            f"{pace:,.0f}/yr modelled vs {need} needed")


def verdict_line(scenario: Scenario, v: Verdict) -> str:
    """One line a policy analyst can quote, in the form INTERFACE.md shows, followed by the
    count, the shortfall or margin and the pace (`gap_text`)."""
    return f"{_answer(scenario, v)}; {gap_text(scenario, v)}"


def _answer(scenario: Scenario, v: Verdict) -> str:
    """P(met) with its interval and when the count crosses the target (or that the firms at
    the start already meet it), shares never rounded to a misleading 0% or 100%."""
    t = scenario.target
    goal = f"target {t.firms:,} firms at >= {t.level} ({t.count}) by {t.deadline.isoformat()}"
    start = (f"met at the start ({v.start_count:,.0f} {READING_WORDS[t.count].format(t.level)} "
             f"on {scenario.start.isoformat()})") if met_at_start(scenario, v) else ""
    if v.deterministic:
        state = "met" if v.met else "not met"
        when = start or (f"crossing {v.crossing_p50:%Y-%m}" if v.crossing_p50 is not None
                         else f"no crossing by {scenario.end:%Y-%m}")
        return f"{goal}: {state} in the mean field; {when}"
    head = (f"{goal}: met in {share_text(v.p_met)} of {v.replications} runs "
            f"[{share_text(v.p_met_ci95[0])}, {share_text(v.p_met_ci95[1])}]")
    never = f"({share_text(v.never)} never within horizon)"
    if start:
        tail = start
    elif v.crossing_p50 is not None:
        tail = f"median crossing {v.crossing_p50:%Y-%m} {never}"
    else:
        tail = f"median crossing beyond {scenario.end:%Y-%m} {never}"
    return f"{head}; {tail}"


def summary_fields(v: Verdict) -> dict:
    """The verdict's part of summary.json."""

    def iso(d: dt.date | None) -> str | None:
        return None if d is None else d.isoformat()

    return {
        "p_met": v.p_met,
        "p_met_ci95": [v.p_met_ci95[0], v.p_met_ci95[1]],
        "count_at_deadline": {"mean": v.count_mean, "p05": v.count_p05, "p50": v.count_p50,
                              "p95": v.count_p95},
        "crossing_date": {"p05": iso(v.crossing_p05), "p50": iso(v.crossing_p50),
                          "p95": iso(v.crossing_p95), "never": v.never},
    }


def reading_counts(scenario: Scenario, results: Mapping[int, Any], date: dt.date
                   ) -> dict[str, np.ndarray]:
    """Each replication's count under every reading (stock, new, upgraded) at every level,
    (replications, 4) per reading: at the deadline itself when `date` is the deadline (as
    the verdict's own count), else on the last month end at or before `date`."""
    reps = [results[i] for i in sorted(results)]
    if date == scenario.target.deadline and all(
            getattr(r, "deadline_readings", None) is not None for r in reps):
        stock, base, upgraded = np.moveaxis(
            np.array([r.deadline_readings for r in reps], dtype=float), 1, 0)
        return {"stock": stock, "new": stock - base, "upgraded": upgraded}
    m = scenario.month_ends().index(max(d for d in scenario.month_ends() if d <= date))
    stock = np.array([r.at_or_above[m] for r in reps], dtype=float)
    return {"stock": stock,
            "new": stock - np.array([r.base()[m] for r in reps], dtype=float),
            "upgraded": np.array([r.upgraded[m] for r in reps], dtype=float)}


def readings_at(scenario: Scenario, results: Mapping[int, Any], date: dt.date
                ) -> dict[str, dict[str, dict[str, float]]]:
    """Every reading of the count at every level at `date` (`reading_counts`), over
    replications (mean, 5% and 95%): how the answer depends on what the target counts."""
    from sim.scenario import LEVELS

    return {reading: {lv: {"mean": float(a[:, k].mean()),
                           "p05": float(np.quantile(a[:, k], 0.05)),
                           "p95": float(np.quantile(a[:, k], 0.95))}
                      for k, lv in enumerate(LEVELS)}
            for reading, a in reading_counts(scenario, results, date).items()}


def point_stats(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Replications, failures, P(met) with its Wilson interval and the count's mean and
    quantiles over the successful runs of one sweep point."""
    rows = list(rows)
    ok = [r for r in rows if r.get("error") is None]
    n = len(ok)
    met = sum(bool(r["met"]) for r in ok)
    lo, hi = wilson(met, n)
    counts = np.array([r["count_at_deadline"] for r in ok], dtype=float)
    var = float(counts.var(ddof=1)) if n > 1 else math.nan
    return {
        "replications": n, "failed": sum(1 for r in rows if r.get("error") is not None),
        "met": met, "p_met": met / n if n else math.nan, "p_met_lo": lo, "p_met_hi": hi,
        "count_mean": float(counts.mean()) if n else math.nan,
        "count_var": var,
        "count_p05": float(np.quantile(counts, 0.05)) if n else math.nan,
        "count_p50": float(np.quantile(counts, 0.50)) if n else math.nan,
        "count_p95": float(np.quantile(counts, 0.95)) if n else math.nan,
    }


def region_fields(scenario: Scenario, results: Mapping[int, Any]) -> list[dict[str, Any]]:
    """summary.json's `by_region`, in the scenario's order (one, `national`, when it declares
    none): share, quota, the count at the deadline over replications (as the national one:
    the regions' means add up to it) and, with a quota, the share of runs that meet it."""
    reps = [results[i] for i in sorted(results)]
    counts = np.array([r.regional()[3] for r in reps], dtype=float).reshape(len(reps), -1)
    regions = scenario.regions or ()
    out = []
    for j, name in enumerate(scenario.region_names):
        region = regions[j] if regions else None
        quota = None if region is None else region.quota
        firms = None if quota is None else quota * scenario.target.firms
        out.append({
            "region": name, "share": 1.0 if region is None else region.share, "quota": quota,
            "count_at_deadline": count_stats(counts[:, j]),
            "quota_firms": firms,
            "quota_met": None if firms is None or not reps else
            float(np.mean(counts[:, j] >= firms)),
        })
    return out


def population_fields(scenario: Scenario, results: Mapping[int, Any]) -> dict[str, float]:
    """summary.json's `population`: firms at the start, and means over replications of the
    firms that entered and left (and of those, the ones that had upgraded) and at the end."""
    reps = list(results.values())

    def mean(name: str) -> float:
        return float(np.mean([float(getattr(r, name)) for r in reps])) if reps else 0.0

    entered, exited = mean("entered"), mean("exited")
    return {"firms_at_start": scenario.firms, "entered": entered, "exited": exited,
            "exited_upgraded": mean("exited_upgraded"),
            "firms_at_end": scenario.firms + entered - exited}
