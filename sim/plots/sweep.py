"""Figures of sweeps and solves: reachability map, fan of adoption curves, sensitivity bars,
the solve curve. Functions take arrays and return a Figure; `plots.png` renders one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only; never needs a screen
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from sim.plots.adoption import TARGET, Counts, thousands  # noqa: E402
from sim.readout.indices import caveat_settings, caveats, noise_text  # noqa: E402
from sim.readout.shares import share_decimal  # noqa: E402

CMAP = "RdYlGn"
CMAP_COUNT = "viridis"
LEVELS_P = np.linspace(0.0, 1.0, 11)
CONTOURS = ((0.5, "--"), (0.9, "-"))
"""The P(met) contours of the map, with their line styles."""
POINT_COLUMNS = ("p_met", "p_met_lo", "p_met_hi", "replications", "count_mean", "count_p05",
                 "count_p95")
"""What the map needs of each point (columns of points.csv)."""


def _axis_values(rng: Mapping, u: np.ndarray) -> np.ndarray:
    lo, hi = float(rng["lo"]), float(rng["hi"])
    if rng.get("log"):
        return np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
    return lo + u * (hi - lo)


def _unit(rng: Mapping, x: np.ndarray) -> np.ndarray:
    lo, hi = float(rng["lo"]), float(rng["hi"])
    if hi == lo:
        return np.full_like(x, 0.5, dtype=float)
    if rng.get("log"):
        return (np.log(x) - np.log(lo)) / (np.log(hi) - np.log(lo))
    return (x - lo) / (hi - lo)


def smooth_points(ux: np.ndarray, uy: np.ndarray, y: np.ndarray, weight: np.ndarray,
                  grid: int = 121) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A point output (P(met) or the mean count) on a grid over two unit axes: a Gaussian-
    kernel weighted mean of the points (weights = replications), so it is averaged over
    any other varied parameters."""
    n = len(y)
    h = max(0.035, 0.75 / np.sqrt(max(n, 1)))
    g = np.linspace(0.0, 1.0, grid)
    gx, gy = np.meshgrid(g, g)
    d2 = (gx[..., None] - ux) ** 2 + (gy[..., None] - uy) ** 2
    k = np.exp(-0.5 * d2 / h**2) * weight
    z = (k * y).sum(axis=-1) / np.maximum(k.sum(axis=-1), 1e-300)
    return g, g, z


@dataclass(frozen=True)
class MapData:
    """What the reachability map draws. `colour` is "p_met", or "count" when P(met) reaches
    no contour (`state` then says why); `grid` is (X, Y, Z) in the axes' units (None for one
    varied parameter); `points` holds the per-point columns of POINT_COLUMNS."""

    colour: str
    ranges: tuple[Mapping, ...]
    values: np.ndarray
    points: Mapping[str, np.ndarray]
    target: float
    grid: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    state: str = ""
    axes_note: str = ""

    @property
    def keys(self) -> tuple[str, ...]:
        """The varied keys on the axes, x first."""
        return tuple(r["key"] for r in self.ranges)


def contours_reached(lo: float, hi: float) -> list[float]:
    """The P(met) contour levels strictly between `lo` and `hi`."""
    return [level for level, _ in CONTOURS if lo < level < hi]


def _flat_state(p: np.ndarray) -> str:
    """Why the colour is not P(met): it is 0 (or 1) everywhere, or never crosses a contour."""
    if p.size and (p == 0).all():
        return "P(met) = 0 at every point"
    if p.size and (p == 1).all():
        return "P(met) = 1 at every point"
    return (f"P(met) {share_decimal(p.min())} to {share_decimal(p.max())} at the points, no "
            "0.5 or 0.9 contour")


def map_data(ranges: Sequence[Mapping], values: np.ndarray, points: Mapping[str, np.ndarray],
             *, target: float, axes: Sequence[int] = (0, 1), colour: str | None = None,
             axes_note: str = "") -> MapData:
    """The data of the reachability map over the varied parameters in columns `axes` of
    `values`: P(met), kernel-smoothed, when it reaches a contour (or `colour="p_met"`),
    else the mean count at the deadline, so a flat P(met) still shows how close each point
    gets. With one varied parameter there is no grid, and P(met) counts as reaching a
    contour when points lie on both sides of it."""
    cols = {c: np.asarray(points[c], dtype=float) for c in POINT_COLUMNS}
    p, count = cols["p_met"], cols["count_mean"]
    ok = np.isfinite(p) & np.isfinite(count)
    if len(ranges) == 1:
        hi = p[ok].max(initial=0.0)
        crossed = any(p[ok].min(initial=1.0) < level <= hi for level, _ in CONTOURS)
        colour = colour or ("p_met" if crossed or not ok.any() else "count")
        return MapData(colour, (ranges[0],), values[:, :1].astype(float), cols, target, None,
                       _flat_state(p[ok]) if colour == "count" else "", axes_note)
    a, b = axes
    rx, ry = ranges[a], ranges[b]
    ux, uy = _unit(rx, values[ok, a].astype(float)), _unit(ry, values[ok, b].astype(float))
    weight = cols["replications"][ok]
    g, _, z = smooth_points(ux, uy, p[ok], weight)
    if colour is None:
        colour = "p_met" if contours_reached(z.min(), z.max()) or not ok.any() else "count"
    if colour == "count":
        g, _, z = smooth_points(ux, uy, count[ok], weight)
    grid = (_axis_values(rx, g), _axis_values(ry, g), z)
    return MapData(colour, (rx, ry), values[:, [a, b]].astype(float), cols, target, grid,
                   _flat_state(p[ok]) if colour == "count" else "", axes_note)


def reachability_figure(m: MapData, *, title: str, subtitle: str = "", counted: str = "firms"
                        ) -> Figure:
    """The map: P(met) as colour with contours at 0.5 and 0.9, or (P(met) flat) the mean
    count in firms with a contour at the target; the sample points marked. With one varied
    parameter, P(met) with Wilson intervals, or the mean count with its 5-95% band."""
    if m.grid is None:
        if m.colour == "count":
            return _count_1d(m, title, subtitle, counted)
        pts = m.points
        return _reachability_1d(m.ranges[0], m.values[:, 0], pts["p_met"], pts["p_met_lo"],
                                pts["p_met_hi"], np.isfinite(pts["p_met"]), title, subtitle)
    rx, ry = m.ranges
    X, Y, z = m.grid
    x, y = m.values[:, 0], m.values[:, 1]
    p = m.points["p_met"]
    ok = np.isfinite(p) & np.isfinite(m.points["count_mean"])
    fig, ax = plt.subplots(figsize=(8.6, 6.9), constrained_layout=True)
    if m.colour == "count":
        filled = _count_map(fig, ax, m, ok, counted)
    else:
        norm = BoundaryNorm(LEVELS_P, plt.get_cmap(CMAP).N)
        filled = ax.contourf(X, Y, z, levels=LEVELS_P, cmap=CMAP, norm=norm, extend="neither")
        lines = []
        for level, style in CONTOURS:
            if level in contours_reached(z.min(), z.max()):
                cs = ax.contour(X, Y, z, levels=[level], colors="black", linestyles=style,
                                linewidths=1.8)
                ax.clabel(cs, fmt={level: f"P = {level:g}"}, fontsize=9)
                lines.append(level)
        ax.scatter(x[ok], y[ok], c=p[ok], cmap=CMAP, norm=norm, s=26, edgecolors="black",
                   linewidths=0.6, zorder=3, label="sample points (own P)")
        cbar = fig.colorbar(filled, ax=ax, ticks=LEVELS_P[::2])
        cbar.set_label("P(target met)")
        missing = [lv for lv, _ in CONTOURS if lv not in lines]
        if missing:
            where = "below" if z.max() <= min(missing) else "above"
            _note(ax, f"no {' / '.join(f'{lv:g}' for lv in missing)} contour: smoothed P(met) "
                  f"stays {where} it (max {z.max():.2f}, min {z.min():.2f})")
    if (~ok).any():
        ax.scatter(x[~ok], y[~ok], marker="x", color="black", s=30, zorder=3,
                   label="points whose runs all failed")
    for rng, axis in ((rx, "x"), (ry, "y")):
        if rng.get("log"):
            (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    ax.set_xlabel(rx["key"])
    ax.set_ylabel(ry["key"])
    ax.xaxis.set_major_formatter(FuncFormatter(_tick))
    ax.yaxis.set_major_formatter(FuncFormatter(_tick))
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    if subtitle:
        ax.set_title(subtitle, fontsize=9, color="0.25")
    return fig


def _count_map(fig: Figure, ax, m: MapData, ok: np.ndarray, counted: str):
    """Fill the map with the smoothed mean count; the target contour when a point's mean
    reaches it; the points coloured by their own mean, ringed where P(met) > 0."""
    assert m.grid is not None  # the caller draws a map only with a grid
    X, Y, z = m.grid
    count, p = m.points["count_mean"], m.points["p_met"]
    x, y = m.values[:, 0], m.values[:, 1]
    # One scale for the smoothed field and the points' own means (which spread wider).
    lo, hi = min(float(z.min()), count[ok].min()), max(float(z.max()), count[ok].max())
    if hi - lo < 1e-9 * max(abs(hi), 1.0):
        lo, hi = lo - 0.5, hi + 0.5
    levels = MaxNLocator(nbins=12).tick_values(lo, hi)
    norm = BoundaryNorm(levels, plt.get_cmap(CMAP_COUNT).N)
    filled = ax.contourf(X, Y, z, levels=levels, cmap=CMAP_COUNT, norm=norm)
    ax.scatter(x[ok], y[ok], c=count[ok], cmap=CMAP_COUNT, norm=norm, s=30,
               edgecolors="black", linewidths=0.6, zorder=3,
               label="sample points (own mean count)")
    some = ok & (p > 0)
    if some.any() and not some[ok].all():  # ring the few points that meet it at all
        ax.scatter(x[some], y[some], facecolors="none", edgecolors=TARGET, s=110,
                   linewidths=1.4, zorder=4, label="P(met) > 0 at the point")
    best = float(count[ok].max(initial=-np.inf))
    if best >= m.target and z.min() < m.target < z.max():
        cs = ax.contour(X, Y, z, levels=[m.target], colors=TARGET, linewidths=2.0)
        ax.clabel(cs, fmt={m.target: f"target {m.target:,.0f}"}, fontsize=9)
    elif best >= m.target:
        _note(ax, f"{int(np.sum(count[ok] >= m.target))} point(s) reach {m.target:,.0f} on "
              "average; the smoothed mean does not")
    elif np.isfinite(best):
        _note(ax, f"no point's mean reaches {m.target:,.0f}: highest {best:,.0f} "
              f"({best / m.target:.0%} of the target)")
    cbar = fig.colorbar(filled, ax=ax, format=FuncFormatter(lambda v, _: f"{v:,.0f}"))
    cbar.set_label(f"mean {counted} at the deadline")
    if lo <= m.target <= hi:
        cbar.ax.axhline(m.target, color=TARGET, lw=2)
    return filled


def _note(ax, text: str) -> None:
    ax.text(0.02, 0.02, text, transform=ax.transAxes, fontsize=8.5, color="0.15",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.7"})


def _count_1d(m: MapData, title: str, subtitle: str, counted: str) -> Figure:
    """The mean count at the deadline against the one varied parameter, its 5-95% band over
    the runs at each point, and the target."""
    pts = m.points
    x = m.values[:, 0]
    ok = np.isfinite(pts["count_mean"])
    order = np.argsort(x[ok])
    xs = x[ok][order]
    fig, ax = plt.subplots(figsize=(8.6, 5.2), constrained_layout=True)
    ax.fill_between(xs, pts["count_p05"][ok][order], pts["count_p95"][ok][order],
                    color="#9ecae1", alpha=0.6, label="5-95% over the runs")
    ax.plot(xs, pts["count_mean"][ok][order], "o-", color="#08519c", ms=4, label="mean count")
    top = float(np.nanmax(pts["count_p95"][ok], initial=0.0))
    best = float(np.nanmax(pts["count_mean"][ok], initial=0.0))
    if top >= 0.25 * m.target:  # else the line would squash the curve flat: say it instead
        ax.axhline(m.target, color=TARGET, lw=1.8, label=f"target {m.target:,.0f}")
        top = max(top, m.target)
    if best < m.target:
        _note(ax, f"no point's mean reaches {m.target:,.0f}: highest {best:,.0f} "
              f"({best / m.target:.0%} of the target)")
    rng = m.ranges[0]
    if rng.get("log"):
        ax.set_xscale("log")
    ax.set_ylim(0, max(top, 1.0) * 1.08)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_major_formatter(FuncFormatter(_tick))
    ax.set_xlabel(rng["key"])
    ax.set_ylabel(f"{counted} at the deadline")
    return _finish_line(fig, ax, title, subtitle)


def _bars(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Error-bar lengths below and above, never negative (Wilson bounds round past p)."""
    return np.clip(np.vstack([p - lo, hi - p]), 0.0, None)


def _tick(x: float, _pos: int) -> str:
    if abs(x) >= 1e4:
        return thousands(x, _pos)
    return f"{x:g}"


def _reachability_1d(rng: Mapping, x: np.ndarray, p: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                     ok: np.ndarray, title: str, subtitle: str) -> Figure:
    order = np.argsort(x)
    x, p, lo, hi, ok = x[order], p[order], lo[order], hi[order], ok[order]
    fig, ax = plt.subplots(figsize=(8.6, 5.2), constrained_layout=True)
    ax.errorbar(x[ok], p[ok], yerr=_bars(p[ok], lo[ok], hi[ok]), fmt="o", color="#08519c",
                ecolor="0.5", capsize=2, label="P(met), Wilson 95%")
    for level, style in ((0.5, "--"), (0.9, "-")):
        ax.axhline(level, color="black", ls=style, lw=1, label=f"P = {level:g}")
    return _probability_axes(fig, ax, rng["key"], bool(rng.get("log")), title, subtitle)


def fan_figure(dates: Sequence[dt.date], medians: Mapping[int, np.ndarray],
               p_met: Mapping[int, float], *, threshold: float, deadline: dt.date,
               ylabel: str, title: str, subtitle: str = "") -> Figure:
    """One line per sweep point: the median counted firms over its replications, coloured by
    the point's P(met); the target as a red line and the deadline dashed."""
    fig, ax = plt.subplots(figsize=(10, 6), constrained_layout=True)
    cmap = plt.get_cmap(CMAP)
    order = sorted(medians, key=lambda j: (np.nan_to_num(p_met.get(j, np.nan), nan=-1), j))
    alpha = 0.85 if len(order) <= 60 else max(0.15, 0.85 * (60 / len(order)) ** 0.5)
    top = float(threshold)
    for j in order:
        p = p_met.get(j, np.nan)
        colour = "0.6" if not np.isfinite(p) else cmap(p)
        ax.plot(dates, medians[j], color=colour, lw=1.1, alpha=alpha)  # type: ignore[arg-type]
        top = max(top, float(np.nanmax(medians[j])))
    ax.axhline(threshold, color=TARGET, lw=1.8, label=f"target {threshold:,.0f}")
    # matplotlib draws dates on the x axis; its stubs accept only floats
    ax.axvline(deadline, color="0.25", ls="--", lw=1.2)  # type: ignore[arg-type]
    ax.text(deadline, 0.98, f" deadline {deadline:%Y-%m-%d}",  # type: ignore[arg-type]
            fontsize=8.5, color="0.25", va="top", transform=ax.get_xaxis_transform())
    ax.set_ylim(0, top * 1.08)
    ax.yaxis.set_major_formatter(Counts())
    ax.xaxis.set_major_locator(mdates.YearLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 1))
    cbar = fig.colorbar(sm, ax=ax)
    cbar.set_label("P(target met) at the point")
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    if subtitle:
        ax.set_title(subtitle, fontsize=9, color="0.25")
    return fig


def sensitivity_figure(rows: Sequence[Mapping], *, title: str, base: int | None = None,
                       replications: int | None = None) -> Figure:
    """Bars per parameter and output: first and total Sobol indices (or rank correlations)
    with their bootstrap intervals, Sobol bars within [0, 1] (what a share can be); the
    noise share under each panel; an output whose indices cannot be read (`caveats`) is
    drawn faded and hatched under a red warning, so it is not read as a finding."""
    outputs = list(dict.fromkeys(r["output"] for r in rows))
    warned = caveats(rows, base=base, replications=replications)
    fig, axes = plt.subplots(1, max(1, len(outputs)), figsize=(5.6 * max(1, len(outputs)), 5.2),
                             constrained_layout=True, squeeze=False)
    colours = {"first": "#3182bd", "total": "#fd8d3c", "spearman": "#756bb1"}
    for ax, output in zip(axes.flat, outputs, strict=False):
        mine = [r for r in rows if r["output"] == output and r["index"] in colours]
        bad = [c for c in warned if c.output == output]
        params = list(dict.fromkeys(r["parameter"] for r in mine))
        kinds = list(dict.fromkeys(r["index"] for r in mine))
        width = 0.8 / max(1, len(kinds))
        y = np.arange(len(params))
        for i, kind in enumerate(kinds):
            est, lo, hi = (np.array([_get(mine, p, kind, c) for p in params])
                           for c in ("estimate", "lo", "hi"))
            if kind != "spearman":  # a share: what lies past [0, 1] is shown at the bound
                est, lo, hi = est.clip(0, 1), lo.clip(0, 1), hi.clip(0, 1)
            err = np.nan_to_num(np.vstack([est - lo, hi - est]), nan=0.0).clip(min=0)
            label = {"first": "first order", "total": "total order",
                     "spearman": "rank correlation"}[kind]
            ax.barh(y + (i - (len(kinds) - 1) / 2) * width, np.nan_to_num(est), height=width,
                    xerr=err, color=colours[kind], ecolor="0.2", capsize=2, label=label,
                    alpha=0.35 if bad else 1.0, hatch="//" if bad else None)
        ax.set_yticks(y, params, fontsize=8.5)
        ax.invert_yaxis()
        ax.axvline(0, color="0.3", lw=0.8)
        ax.grid(axis="x", alpha=0.3)
        ax.set_title("\n".join([output, *(f"UNRELIABLE: {c.tag}\n({c.advice})" for c in bad)]),
                     fontsize=10 if not bad else 9, loc="left", color="#b30000" if bad else "k")
        ax.legend(fontsize=8, loc="lower right")
        noise = [r for r in rows if r["output"] == output and r["index"] == "noise_share"]
        if noise:
            rest = ("indices are shares of the rest, shown within [0, 1]" if "first" in kinds
                    else "correlations of the point means")
            ax.set_xlabel(f"replication noise: {noise_text(noise[0])};\n{rest}", fontsize=8)
        if all(np.isnan(_get(mine, p, k, "estimate")) for p in params for k in kinds):
            ax.text(0.5, 0.5, "no index to estimate:\n" + (
                "the spread across points is all noise" if bad else
                "output does not vary across points"),
                ha="center", va="center", transform=ax.transAxes, fontsize=10)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    return fig


def _get(rows: Sequence[Mapping], parameter: str, kind: str, col: str) -> float:
    for r in rows:
        if r["parameter"] == parameter and r["index"] == kind:
            return float(r[col])
    return float("nan")


def solve_figure(evaluations: Sequence[Mapping], *, parameter: str, probability: float,
                 value: float | None, ci95: Sequence[float] | None, fitted: np.ndarray,
                 fitted_x: np.ndarray, log: bool, title: str, subtitle: str = "") -> Figure:
    """P(met) at each evaluated value (Wilson 95% bars, marker size ~ replications), the
    monotone fit, the required probability and the answer with its interval."""
    fig, ax = plt.subplots(figsize=(8.6, 5.4), constrained_layout=True)
    x = np.array([e["value"] for e in evaluations], dtype=float)
    p = np.array([e["p_met"] for e in evaluations], dtype=float)
    lo = np.array([e["p_met_lo"] for e in evaluations], dtype=float)
    hi = np.array([e["p_met_hi"] for e in evaluations], dtype=float)
    n = np.array([e["replications"] for e in evaluations], dtype=float)
    ax.errorbar(x, p, yerr=_bars(p, lo, hi), fmt="none", ecolor="0.5", capsize=2, zorder=2)
    ax.scatter(x, p, s=12 + 60 * n / max(n.max(), 1), color="#08519c", zorder=3,
               label="evaluations (size ~ replications)")
    if len(fitted_x):
        ax.plot(fitted_x, fitted, color="#6baed6", lw=1.2, label="monotone fit")
    ax.axhline(probability, color=TARGET, lw=1.4, label=f"required P = {probability:g}")
    if ci95 is not None:
        ax.axvspan(ci95[0], ci95[1], color="#fdd0a2", alpha=0.6, label="95% interval")
    if value is not None:
        ax.axvline(value, color="black", lw=1.6, label=f"answer {value:,.4g}")
    return _probability_axes(fig, ax, parameter, log, title, subtitle)


def _probability_axes(fig: Figure, ax, parameter: str, log: bool, title: str, subtitle: str
                      ) -> Figure:
    """Finish a P(met)-against-one-parameter figure: axes, legend and titles."""
    if log:
        ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(parameter)
    ax.set_ylabel("P(target met)")
    ax.xaxis.set_major_formatter(FuncFormatter(_tick))
    return _finish_line(fig, ax, title, subtitle)


def _finish_line(fig: Figure, ax, title: str, subtitle: str) -> Figure:
    """Grid, legend and titles of a figure against one parameter (P(met) or the count)."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=12, fontweight="bold")
    if subtitle:
        ax.set_title(subtitle, fontsize=9, color="0.25")
    return fig


def sweep_map(manifest: Mapping, points: Sequence[Mapping[str, float]], *,
              axes: Sequence[int] = (0, 1), colour: str | None = None, axes_note: str = ""
              ) -> MapData:
    """`map_data` for a sweep folder's manifest and points.csv rows."""
    keys = [r["key"] for r in manifest["ranges"]]
    values = np.array([[s[k] for k in keys] for s in points], dtype=float).reshape(-1, len(keys))
    cols = {c: np.array([s.get(c, np.nan) for s in points], dtype=float) for c in POINT_COLUMNS}
    return map_data(manifest["ranges"], values, cols, target=float(manifest["target"]["firms"]),
                    axes=axes, colour=colour, axes_note=axes_note)


def sweep_figures(manifest: Mapping, points: Sequence[Mapping[str, float]],
                  dates: Sequence[dt.date], medians: Mapping[int, np.ndarray],
                  sensitivity: Sequence[Mapping], reach: MapData | None = None
                  ) -> list[tuple[str, Figure]]:
    """A sweep folder's figures from its manifest and tables: reachability.png (drawn from
    `reach`, by default over the first two varied parameters), then fan.png when curves
    were kept and sensitivity.png when indices were estimated."""
    ranges = manifest["ranges"]
    reach = reach if reach is not None else sweep_map(manifest, points)
    p = np.array([s["p_met"] for s in points])
    t = manifest["target"]
    n_rep = manifest["replications"] if manifest.get("precision") is None else "adaptive"
    goal = f"target {t['firms']:,} at >= {t['level']} ({t['count']}) by {t['deadline']}"
    counted = "new firms" if t["count"] == "new" else "firms"
    others = len(ranges) - 2
    smooth = (f"; colour kernel-smoothed, averaged over {others} other varied parameter"
              f"{'s' if others > 1 else ''}" if others > 0 else "")
    lines = [goal, f"{len(points)} {manifest['design']} points x {n_rep} runs "
             f"({manifest['engine']}){smooth}"]
    title = f"{manifest['scenario']}: where the target is reachable"
    if reach.colour == "count":
        title = f"{manifest['scenario']}: how close each point gets to the target"
        shows = ("colour shows the mean count at the deadline" if reach.grid is not None
                 else "showing the mean count at the deadline")
        lines.append(f"{reach.state}: {shows}; target {t['firms']:,}")
    if reach.axes_note:
        lines.append(reach.axes_note)
    figures = [("reachability.png", reachability_figure(
        reach, title=title, subtitle="\n".join(lines),
        counted=f"{counted} at >= {t['level']}"))]
    if medians:
        figures.append(("fan.png", fan_figure(
            dates, medians, {j: p[j] for j in medians}, threshold=t["firms"],
            deadline=dt.date.fromisoformat(t["deadline"]),
            ylabel=f"{counted} at >= {t['level']} (median over runs)",
            title=f"{manifest['scenario']}: adoption across the sweep",
            subtitle=f"{goal}; one line per point, coloured by its P(met)")))
    if sensitivity:
        kind = ("Sobol indices (95% bootstrap)" if manifest["design"] == "sobol"
                else "rank correlation with the point means (95% bootstrap)")
        figures.append(("sensitivity.png", sensitivity_figure(
            sensitivity, title=f"{manifest['scenario']}: which parameter matters: {kind}",
            **caveat_settings(manifest))))
    return figures
