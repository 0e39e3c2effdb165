"""A run's figure: adoption curves per level against the target. Functions take data and
return a Figure; `png` renders one (shared by every figure module)."""

from __future__ import annotations

import datetime as dt
import io
import textwrap
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a screen
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import Formatter  # noqa: E402

from sim.engines import rules  # noqa: E402
from sim.scenario import LEVELS, Scenario  # noqa: E402

LEVEL_TITLES = {
    "device": "device: smart machines, robots, sensors",
    "line": "line: intelligent control, closed AI loop",
    "factory": "factory: AI models orchestrate production",
    "ecosystem": "ecosystem: AI across management and supply chain",
}
BAND = "#9ecae1"
MEDIAN = "#08519c"
TARGET = "#d62728"
COUNTED = "#e6550d"


def thousands(x: float, _pos: int = 0) -> str:
    """A count in a label: 12.3M, 45k or 1,234."""
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.0f}k"
    return f"{x:,.0f}"


class Counts(Formatter):
    """Tick labels of a count axis in one unit for the whole axis: k throughout once it
    reaches 10,000, M once it reaches a million (not 5,000 beside 10k)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        top = max(abs(v) for v in self.axis.get_view_interval()) if self.axis else abs(x)
        if x == 0:
            return "0"
        if top >= 1e6:
            return f"{x / 1e6:g}M"
        if top >= 1e4:
            return f"{x / 1e3:g}k"
        return f"{x:,.0f}"


def adoption_figure(
    dates: Sequence[dt.date],
    curves: np.ndarray,
    *,
    levels: Sequence[str],
    start: dt.date,
    initial: np.ndarray,
    target_level: str,
    threshold: float,
    target_label: str,
    deadline: dt.date,
    title: str,
    subtitle: str = "",
    counted: np.ndarray | None = None,
    counted_label: str = "",
) -> Figure:
    """Firms at or above each level: median and 5-95% band over replications (one panel per
    level), the target as a horizontal line on the counted level, the deadline marked.
    `counted` (replications, months): a count that is not a stock (the `upgraded` reading),
    drawn on the target's panel, starting from 0, against the threshold."""
    x = [start, *dates]
    n_rep = curves.shape[0]
    full = np.concatenate([np.broadcast_to(initial, (n_rep, 1, len(levels))), curves], axis=1)
    lo, med, hi = np.percentile(full, [5, 50, 95], axis=0)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True, constrained_layout=True)
    for k, (ax, level) in enumerate(zip(axes.flat, levels, strict=True)):
        ax.fill_between(x, lo[:, k], hi[:, k], color=BAND, alpha=0.7, lw=0,
                        label="5-95% of runs" if n_rep > 1 else None)
        ax.plot(x, med[:, k], color=MEDIAN, lw=2, label="median" if n_rep > 1 else "run")
        ax.axvline(deadline, color="0.3", ls="--", lw=1)
        ax.text(deadline, 0.02, f" deadline {deadline:%Y-%m-%d}", fontsize=8, color="0.3",
                va="bottom", transform=ax.get_xaxis_transform())
        if level == target_level and counted is not None:
            c_full = np.concatenate([np.zeros((n_rep, 1)), counted], axis=1)
            c_lo, c_med, c_hi = np.percentile(c_full, [5, 50, 95], axis=0)
            ax.fill_between(x, c_lo, c_hi, color=COUNTED, alpha=0.3, lw=0)
            ax.plot(x, c_med, color=COUNTED, lw=2, label=counted_label)
            hi = hi.copy()
            hi[:, k] = np.maximum(hi[:, k], c_hi)
        if level == target_level:
            # The target named in the legend, placed where it covers the fewest curves: a
            # label written on the line ran through curves that cross it.
            # (room above a target near the top, so the legend need not cover its line)
            ax.axhline(threshold, color=TARGET, lw=1.5, ls="-", label=target_label)
            ax.set_ylim(0, max(float(hi[:, k].max()) * 1.12, threshold * 1.6))
            ax.legend(loc="best", fontsize=8, framealpha=0.8)
            for side in ax.spines.values():
                side.set_edgecolor(TARGET)
                side.set_linewidth(1.4)
        else:
            ax.set_ylim(0, max(float(hi[:, k].max()), 1.0) * 1.12)
        ax.set_title(LEVEL_TITLES.get(level, level), fontsize=10, loc="left")
        ax.yaxis.set_major_formatter(Counts())
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(mdates.YearLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
        ax.set_ylabel("firms at or above level")
    if levels[0] != target_level:
        axes.flat[0].legend(loc="upper left", fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    if subtitle:
        fig.text(0.5, -0.01, textwrap.fill(subtitle, 130), ha="center", va="top", fontsize=9,
                 color="0.25")
    return fig


def run_figure(scenario: Scenario, curves: np.ndarray, initial: np.ndarray, line: str,
               upgraded: np.ndarray | None = None, new: np.ndarray | None = None) -> Figure:
    """adoption.png of a run: `curves` is (replications, months, levels), `initial` the
    firms at or above each level at the start, `line` the verdict shown beneath; `upgraded`
    (same shape as `curves`) is drawn on the target's panel when the target counts it, and
    so is `new` when firms leave (the count is then not the stock less a fixed number)."""
    sc = scenario
    k = sc.target.level_index - 1
    counted = None
    if sc.target.count == "upgraded" and upgraded is not None:
        threshold = float(sc.target.firms)
        label = f"target: {sc.target.firms:,} firms upgraded to >= {sc.target.level}"
        counted = upgraded[:, :, k]
    elif sc.target.count == "new" and sc.exit > 0 and new is not None:
        threshold = float(sc.target.firms)
        label = f"target: {sc.target.firms:,} new at >= {sc.target.level} (firms that exist)"
        counted = new[:, :, k]
    elif sc.target.count == "new":
        threshold = float(rules.TargetCount.of(sc, initial).offset) + sc.target.firms
        label = (f"target: {sc.target.firms:,} new (= {threshold:,.0f} at or above "
                 f"{sc.target.level})")
    else:
        threshold = float(sc.target.firms)
        label = f"target: {sc.target.firms:,} at or above {sc.target.level}"
    return adoption_figure(
        sc.month_ends(), curves, levels=LEVELS, start=sc.start, initial=initial,
        target_level=sc.target.level, threshold=threshold, target_label=label,
        deadline=sc.target.deadline,
        title=f"{sc.name}: firms at or above each level, {curves.shape[0]} runs",
        subtitle=line, counted=counted,
        counted_label=(f"{'upgraded to' if sc.target.count == 'upgraded' else 'new at'} >= "
                       f"{sc.target.level} since {sc.start:%Y-%m} (counted)"),
    )


def png(fig: Figure, dpi: int = 110) -> bytes:
    """Render a figure to PNG bytes and release it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
