"""regions.png: the counted firms by region over time against each region's quota schedule,
and the count at the deadline by region. Functions take arrays and the summary's `by_region`
entries (plain dicts) and return a Figure; `sim.plots.adoption.png` renders it."""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a screen
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sim.plots.adoption import TARGET, Counts, thousands  # noqa: E402
from sim.readout.shares import share_text  # noqa: E402
from sim.scenario import Scenario  # noqa: E402

DEADLINE = "0.3"


def colours(n: int) -> list[Any]:
    """`n` distinct colours: tab10 up to ten regions, tab20 beyond (cycled past twenty)."""
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def quota_schedule(x: Sequence[dt.date], start: dt.date, deadline: dt.date, firms: float
                   ) -> tuple[list[dt.date], np.ndarray]:
    """The linear quota schedule on the dates of `x` up to the deadline, ending on it: `firms`
    times the elapsed share of the period from `start` to the deadline."""
    days = max((deadline - start).days, 1)
    when = [d for d in x if d < deadline] + [deadline]
    return when, np.array([firms * min((d - start).days / days, 1.0) for d in when])


def _grid(n: int) -> tuple[int, int]:
    rows = math.ceil(n / 4)
    return rows, math.ceil(n / rows)


def regions_figure(
    dates: Sequence[dt.date],
    counted: np.ndarray,
    *,
    regions: Sequence[str],
    start: dt.date,
    start_counts: np.ndarray,
    deadline: dt.date,
    by_region: Sequence[Mapping[str, Any]],
    title: str,
    ylabel: str,
    subtitle: str = "",
) -> Figure:
    """One panel per region: the counted firms (`counted`: replications, months, regions),
    median and 5-95% band from `start_counts` ((regions,) or (replications, regions)) at
    `start`, the region's quota schedule when it
    has one, the deadline; below, the count at the deadline by region from `by_region`
    (summary.json's entries: median, 5-95% whiskers, quota and share of runs meeting it)."""
    n_rep, _months, n_reg = counted.shape
    x = [start, *dates]
    begin = np.broadcast_to(np.asarray(start_counts, dtype=float).reshape(-1, 1, n_reg),
                            (n_rep, 1, n_reg))
    full = np.concatenate([begin, counted], axis=1)
    lo, med, hi = np.percentile(full, [5, 50, 95], axis=0)
    rows, cols = _grid(n_reg)
    bar_height = 0.9 + 0.32 * n_reg
    fig = plt.figure(figsize=(3.2 * cols + 1.6, 2.75 * rows + bar_height + 0.6),
                     constrained_layout=True)
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[2.75] * rows + [bar_height])
    colour = colours(n_reg)
    first: Axes | None = None
    for j, name in enumerate(regions):
        ax: Any = fig.add_subplot(grid[j // cols, j % cols], sharex=first)  # dates on x
        first = first or ax
        ax.fill_between(x, lo[:, j], hi[:, j], color=colour[j], alpha=0.25, lw=0,
                        label="5-95% of runs" if n_rep > 1 else None)
        ax.plot(x, med[:, j], color=colour[j], lw=2, label="median" if n_rep > 1 else "run")
        top = float(hi[:, j].max())
        quota = by_region[j].get("quota_firms") if j < len(by_region) else None
        if quota is not None:
            when, line = quota_schedule(x, start, deadline, float(quota))
            ax.plot(when, line, color=TARGET, lw=1.3, ls=(0, (4, 2)), label="quota schedule")
            ax.plot([deadline], [quota], marker="o", ms=4, color=TARGET)
            top = max(top, float(quota))
        ax.axvline(deadline, color=DEADLINE, ls="--", lw=1,
                   label=f"deadline {deadline:%Y-%m-%d}" if j == 0 else None)
        ax.set_ylim(min(0.0, float(lo.min())), max(top, 1.0) * 1.12)
        share = by_region[j].get("share") if j < len(by_region) else None
        label = textwrap.shorten(name, 26, placeholder="…")
        if isinstance(share, int | float):
            label += f" · {100 * share:.0f}% of firms"
        ax.set_title(label, fontsize=9.5, loc="left", color=colour[j], fontweight="bold")
        ax.yaxis.set_major_formatter(Counts())
        ax.xaxis.set_major_locator(mdates.YearLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if j % cols == 0:
            ax.set_ylabel(ylabel, fontsize=8.5)
        if j == 0:
            ax.legend(loc="upper left", fontsize=7.5, frameon=False)
    _deadline_bars(fig.add_subplot(grid[rows, :]), regions, by_region, colour, deadline,
                   n_rep)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    if subtitle:
        fig.text(0.5, -0.01, textwrap.fill(subtitle, 130), ha="center", va="top", fontsize=9,
                 color="0.25")
    return fig


def _deadline_bars(ax: Axes, regions: Sequence[str], by_region: Sequence[Mapping[str, Any]],
                   colour: Sequence[Any], deadline: dt.date, runs: int) -> None:
    """Horizontal bars: the median count at the deadline by region with 5-95% whiskers, each
    region's quota as a red tick, the median and the share of runs meeting the quota."""
    ys = np.arange(len(regions))
    stats = [e.get("count_at_deadline") or {} for e in by_region]
    med = np.array([float(s.get("p50", math.nan)) for s in stats])
    low = np.array([float(s.get("p05", math.nan)) for s in stats])
    high = np.array([float(s.get("p95", math.nan)) for s in stats])
    ax.barh(ys, med, color=colour, alpha=0.75, height=0.62)
    if runs > 1:
        ax.errorbar(med, ys, xerr=[np.maximum(med - low, 0), np.maximum(high - med, 0)],
                    fmt="none", ecolor="0.15", elinewidth=1.2, capsize=3)
    quotas = [e.get("quota_firms") for e in by_region]
    ends = [float(np.nanmax([h, m, q or 0.0, 0.0])) for h, m, q in zip(high, med, quotas,
                                                                      strict=True)]
    noted: list[float] = []  # where each quota's note starts
    for y, (q, e, m, h, end) in enumerate(zip(quotas, by_region, med, high, ends,
                                              strict=True)):
        # The count beside its bar (past its whisker); the quota and how often it is met
        # beside the quota's tick, or after the count where the tick is close to the bar.
        bar_end = float(np.nanmax([h, m, 0.0]))
        ax.text(bar_end, float(y), f" {thousands(m)}", va="center", fontsize=8, color="0.15")
        if q is None:
            continue
        ax.plot([q, q], [y - 0.42, y + 0.42], color=TARGET, lw=2.2)
        if e.get("quota_met") is not None:
            met = e["quota_met"]
            note = f" quota {thousands(float(q))}: " + (
                f"met in {share_text(met)} of runs" if runs > 1 else "met" if met else "not met")
            gap = max(ends, default=1.0) * 0.12  # room for the count's label
            noted.append(max(end, bar_end + gap))
            ax.text(noted[-1], float(y), note, va="center", fontsize=8, color=TARGET)
    ax.set_yticks(ys, [textwrap.shorten(r, 30, placeholder="…") for r in regions], fontsize=8.5)
    ax.invert_yaxis()
    widest = max(ends, default=1.0)  # (a note needs about a third of the widest bar)
    ax.set_xlim(0, max(widest * 1.32, max(noted, default=0.0) + widest * 0.36) or 1.0)
    ax.xaxis.set_major_formatter(Counts())
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    spread = "median, whiskers 5-95% of runs" if runs > 1 else "the one run"
    tick = "; red tick: the region's quota" if any(q is not None for q in quotas) else ""
    ax.set_title(f"count at the deadline ({deadline:%Y-%m-%d}) by region: {spread}{tick}",
                 fontsize=9.5, loc="left")


def run_regions_figure(scenario: Scenario, counted: np.ndarray, start_counts: np.ndarray,
                       by_region: Sequence[Mapping[str, Any]], what: str, line: str = ""
                       ) -> Figure:
    """regions.png of a run: `counted` (replications, months, regions) is the target's reading
    at its level, `start_counts` its value at the start (see `regions_figure`), `by_region`
    summary.json's entries, `what` the reading in words ("new firms at >= line")."""
    sc = scenario
    return regions_figure(
        sc.month_ends(), counted, regions=sc.region_names, start=sc.start,
        start_counts=start_counts, deadline=sc.target.deadline, by_region=by_region,
        title=f"{sc.name}: {what} ({sc.target.count}), by region, "
              f"{counted.shape[0]} run{'s' if counted.shape[0] != 1 else ''}",
        ylabel=f"firms counted ({sc.target.count})", subtitle=line)
