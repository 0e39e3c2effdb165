"""The figure of `sim compare`: several runs' counted curves on one axes against their
targets. Takes arrays and returns a Figure (`sim.plots.adoption.png` renders it); drawn on a
bare Figure, so it leaves pyplot's global state alone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sim.plots.adoption import TARGET, Counts

# A qualitative palette without red, which stays the target's colour.
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#7f7f7f", "#bcbd22", "#393b79")
BAND_ALPHA = 0.25
LABEL_BOX = {"facecolor": "white", "alpha": 0.75, "lw": 0, "pad": 1}  # over lines and bands
# Each run its own dash as well as colour, so that a curve lying on another stays visible.
RUN_STYLES = ("-", (0, (5, 2)), (0, (1.5, 1.5)), (0, (6, 2, 1.5, 2)), (0, (10, 3)))
TARGET_STYLES = ("-", (0, (6, 3)), (0, (2, 2)), (0, (6, 2, 1, 2)))


def compare_figure(
    dates: Sequence[Sequence[dt.date]],
    labels: Sequence[str],
    p05: Sequence[np.ndarray],
    p50: Sequence[np.ndarray],
    p95: Sequence[np.ndarray],
    *,
    targets: Sequence[float],
    deadlines: Sequence[dt.date],
    ylabel: str,
    title: str,
    subtitle: str = "",
    names: Sequence[str] | None = None,
    legend_title: str = "median (line) and 5-95% of replications (band)",
) -> Figure:
    """Each run's median (line) and 5-95% of its replications (light band) at each month end,
    its target as a red horizontal line (one line per distinct target, named by the runs it
    belongs to when they differ: `names`, default `labels`) and its deadline dashed; the
    legend, beneath the axes so that it never hides a curve, names each run by `labels`."""
    n = len(labels)
    if not n or not all(len(s) == n for s in (dates, p05, p50, p95, targets, deadlines)):
        raise ValueError("compare_figure: one date list, curve triple, target and deadline "
                         "per label")
    fig = Figure(figsize=(11, 6.2 + 0.24 * n), layout="constrained")
    ax = fig.add_subplot()
    top = 1.0
    handles: list[Any] = []  # (band, line) pairs: matplotlib's HandlerTuple draws them
    for k in range(n):
        colour = COLOURS[k % len(COLOURS)]
        x: list[Any] = list(dates[k])  # dates: matplotlib plots them, its stubs want numbers
        lo, med, hi = (np.asarray(a, dtype=float) for a in (p05[k], p50[k], p95[k]))
        band = ax.fill_between(x, lo, hi, color=colour, alpha=BAND_ALPHA, lw=0)
        (line,) = ax.plot(x, med, color=colour, lw=2, ls=RUN_STYLES[k % len(RUN_STYLES)])
        handles.append((band, line))
        top = max(top, float(np.nanmax(hi)) if hi.size else 0.0)
    top = max(top, *(float(t) for t in targets))
    names = list(names) if names is not None else list(labels)
    _targets(ax, names, targets)
    _deadlines(ax, names, deadlines)
    ax.set_ylim(0, top * 1.12)
    ax.yaxis.set_major_formatter(Counts())
    ax.xaxis.set_major_locator(mdates.YearLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.grid(alpha=0.3)
    ax.set_ylabel(ylabel)
    fig.suptitle(title, fontsize=12, fontweight="bold", x=0.01, ha="left")
    if subtitle:
        ax.set_title(subtitle, fontsize=9, color="0.25", loc="left")
    fig.legend(handles, labels, loc="outside lower center", fontsize=9, frameon=False,
               title=legend_title, title_fontsize=9)
    return fig


def _targets(ax: Axes, names: Sequence[str], targets: Sequence[float]) -> None:
    """A red line per distinct target; named by its runs when the runs' targets differ."""
    distinct = sorted(set(float(t) for t in targets))
    for j, value in enumerate(distinct):
        ax.axhline(value, color=TARGET, lw=1.5, ls=TARGET_STYLES[j % len(TARGET_STYLES)],
                   zorder=1.5)
        text = f"target {value:,.0f} firms"
        if len(distinct) > 1:
            text += ": " + ", ".join(name for name, t in zip(names, targets, strict=True)
                                     if float(t) == value)
        ax.annotate(text, (0.005, value), xycoords=ax.get_yaxis_transform(), xytext=(0, 2.5),
                    textcoords="offset points", color=TARGET, fontsize=9, va="bottom",
                    bbox=LABEL_BOX)


def _deadlines(ax: Axes, names: Sequence[str], deadlines: Sequence[dt.date]) -> None:
    """A dashed vertical line per distinct deadline, dated at the top of the axes, above every
    curve (the y axis reaches 12% past the highest), named by its runs when the runs'
    deadlines differ, and staggered so that close dates do not overprint."""
    distinct = sorted(set(deadlines))
    for j, deadline in enumerate(distinct):
        ax.axvline(deadline, color="0.3", ls="--", lw=1)  # type: ignore[arg-type]  # a date
        text = f"deadline {deadline:%Y-%m-%d}"
        if len(distinct) > 1:
            text += ": " + ", ".join(name for name, d in zip(names, deadlines, strict=True)
                                     if d == deadline)
        ax.annotate(text, (mdates.date2num(deadline), 0.985 - 0.04 * j),
                    xycoords=ax.get_xaxis_transform(), xytext=(3, 0),
                    textcoords="offset points", fontsize=8.5, color="0.3", va="top",
                    bbox=LABEL_BOX)
