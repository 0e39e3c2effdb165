"""The calibration figure: observed counts, the fitted Bass curve with its 95% band, and the
yearly flow it implies. Takes arrays, returns a Figure (`sim.plots.png` renders it)."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Sequence

import matplotlib.dates as mdates
import numpy as np
from matplotlib.figure import Figure

from sim.plots.adoption import BAND, MEDIAN, TARGET, Counts, plt

DATA = "#222222"
WARNING = "#a63603"


def fit_figure(
    observed_dates: Sequence[dt.date],
    observed: np.ndarray,
    curve_dates: Sequence[dt.date],
    curve: np.ndarray,
    band: tuple[np.ndarray, np.ndarray],
    rate: np.ndarray,
    rate_band: tuple[np.ndarray, np.ndarray],
    *,
    title: str,
    subtitle: str = "",
    observed_label: str = "published cumulative count",
    observed_rate: tuple[Sequence[dt.date], np.ndarray] | None = None,
    notes: Sequence[str] = (),
) -> Figure:
    """Left: cumulative data and fitted curve with band, the projection past the last
    observation dashed. Right: the fitted adopters per year with band (and per-period data
    shown as a yearly rate when the series gave per-period counts). `notes` (the fit's
    warnings) are printed under the subtitle, so the figure never travels without them."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)
    last = observed_dates[-1]
    inside = np.array([d <= last for d in curve_dates])
    # No interval (too few points, or a parameter at its bound): say so where a band would be.
    banded = not np.allclose(band[0], band[1], rtol=1e-9, atol=0)
    for ax, values, lo_hi in ((left, curve, band), (right, rate, rate_band)):
        ax.fill_between(curve_dates, lo_hi[0], lo_hi[1], color=BAND, alpha=0.7, lw=0,
                        label="95% confidence band of the fit" if banded else
                        "no 95% band: no interval (see the warnings)")
        ax.plot(np.array(curve_dates)[inside], values[inside], color=MEDIAN, lw=2,
                label="fitted Bass curve")
        ax.plot(np.array(curve_dates)[~inside], values[~inside], color=MEDIAN, lw=2, ls="--",
                label="projection beyond the data")
        ax.axvline(last, color="0.5", lw=0.8, ls=":")
        ax.yaxis.set_major_formatter(Counts())
        ax.xaxis.set_major_locator(mdates.YearLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    left.plot(observed_dates, observed, "o", color=DATA, ms=5, label=observed_label, zorder=3)
    # Keep the data readable when a weakly identified band runs off: clip at a few times the
    # largest observation.
    left.set_ylim(0, 1.1 * max(float(np.max(observed)) * 1.15,
                               min(float(np.max(lo_hi_top(band, curve))), 3 * float(
                                   np.max(observed)))))
    left.set_ylabel("cumulative adopters")
    left.set_title("cumulative", fontsize=10, loc="left")
    left.legend(loc="upper left", fontsize=8, frameon=False)
    if observed_rate is not None:
        right.plot(observed_rate[0], observed_rate[1], "s", color=TARGET, ms=5,
                   label="published per-period count, per year", zorder=3)
        right.legend(loc="upper left", fontsize=8, frameon=False)
    right.set_ylabel("adopters per year")
    right.set_title("flow implied by the fit", fontsize=10, loc="left")
    shown = float(np.max(rate[inside])) if inside.any() else float(np.max(rate))
    right.set_ylim(0, 1.1 * min(float(np.max(lo_hi_top(rate_band, rate))), 3 * max(shown, 1.0)))
    fig.suptitle(title, fontsize=12, fontweight="bold")
    if notes:  # flagged inside the axes too, so a cropped figure still carries them
        left.text(0.98, 0.03, f"{len(notes)} warning{'s' if len(notes) > 1 else ''} below: "
                  "read before use", transform=left.transAxes, ha="right", va="bottom",
                  fontsize=8.5, color=WARNING, fontweight="bold",
                  bbox={"facecolor": "white", "edgecolor": WARNING, "boxstyle": "round"})
    lines = [(subtitle, "0.25")] if subtitle else []
    lines += [(textwrap.fill(n, 150), WARNING) for n in notes]
    y = -0.01
    for text, colour in lines:
        fig.text(0.5, y, text, ha="center", va="top", fontsize=8.5, color=colour, wrap=True)
        y -= 0.045 * (text.count("\n") + 1) + 0.01
    return fig


def lo_hi_top(band: tuple[np.ndarray, np.ndarray], curve: np.ndarray) -> float:
    """The highest point of a curve and its band."""
    return max(float(np.max(band[1])), float(np.max(curve)))
