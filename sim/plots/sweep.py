"""Figures of sweeps and solves: reachability map, fan of adoption curves, sensitivity bars,
the solve curve. Functions take arrays and return a Figure; `plots.png` renders one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a screen
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from sim.plots.adoption import TARGET, thousands  # noqa: E402

CMAP = "RdYlGn"
LEVELS_P = np.linspace(0.0, 1.0, 11)


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


def smooth_probability(ux: np.ndarray, uy: np.ndarray, p: np.ndarray, weight: np.ndarray,
                       grid: int = 121) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(met) on a grid over two unit axes: a Gaussian-kernel weighted mean of the points
    (weights = replications), i.e. P(met) averaged over any other varied parameters."""
    n = len(p)
    h = max(0.035, 0.75 / np.sqrt(max(n, 1)))
    g = np.linspace(0.0, 1.0, grid)
    gx, gy = np.meshgrid(g, g)
    d2 = (gx[..., None] - ux) ** 2 + (gy[..., None] - uy) ** 2
    k = np.exp(-0.5 * d2 / h**2) * weight
    z = (k * p).sum(axis=-1) / np.maximum(k.sum(axis=-1), 1e-300)
    return g, g, z


def reachability_figure(ranges: Sequence[Mapping], values: np.ndarray, p_met: np.ndarray,
                        lo: np.ndarray, hi: np.ndarray, replications: np.ndarray, *,
                        title: str, subtitle: str = "") -> Figure:
    """P(met) over the first two varied parameters: colour, contours at 0.5 and 0.9 and the
    sample points; with one varied parameter, P(met) against it with Wilson intervals."""
    ok = np.isfinite(p_met)
    if len(ranges) == 1:
        return _reachability_1d(ranges[0], values[:, 0], p_met, lo, hi, ok, title, subtitle)
    rx, ry = ranges[0], ranges[1]
    ux, uy = _unit(rx, values[ok, 0].astype(float)), _unit(ry, values[ok, 1].astype(float))
    gx, gy, z = smooth_probability(ux, uy, p_met[ok], replications[ok].astype(float))
    X, Y = _axis_values(rx, gx), _axis_values(ry, gy)
    fig, ax = plt.subplots(figsize=(8.6, 6.6), constrained_layout=True)
    norm = BoundaryNorm(LEVELS_P, plt.get_cmap(CMAP).N)
    filled = ax.contourf(X, Y, z, levels=LEVELS_P, cmap=CMAP, norm=norm, extend="neither")
    lines = []
    for level, style in ((0.5, "--"), (0.9, "-")):
        if z.min() < level < z.max():
            cs = ax.contour(X, Y, z, levels=[level], colors="black", linestyles=style,
                            linewidths=1.8)
            ax.clabel(cs, fmt={level: f"P = {level:g}"}, fontsize=9)
            lines.append(level)
    ax.scatter(values[ok, 0], values[ok, 1], c=p_met[ok], cmap=CMAP, norm=norm, s=26,
               edgecolors="black", linewidths=0.6, zorder=3, label="sample points (own P)")
    if (~ok).any():
        ax.scatter(values[~ok, 0], values[~ok, 1], marker="x", color="black", s=30, zorder=3,
                   label="points whose runs all failed")
    for rng, axis in ((rx, "x"), (ry, "y")):
        if rng.get("log"):
            (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    ax.set_xlabel(rx["key"])
    ax.set_ylabel(ry["key"])
    ax.xaxis.set_major_formatter(FuncFormatter(_tick))
    ax.yaxis.set_major_formatter(FuncFormatter(_tick))
    cbar = fig.colorbar(filled, ax=ax, ticks=LEVELS_P[::2])
    cbar.set_label("P(target met)")
    missing = [lv for lv in (0.5, 0.9) if lv not in lines]
    if missing:
        where = "below" if z.max() <= min(missing) else "above"
        ax.text(0.02, 0.02, f"no {' / '.join(f'{m:g}' for m in missing)} contour: smoothed "
                f"P(met) stays {where} it (max {z.max():.2f}, min {z.min():.2f})",
                transform=ax.transAxes, fontsize=8.5, color="0.15",
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.7"})
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    if subtitle:
        ax.set_title(subtitle, fontsize=9, color="0.25")
    return fig


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
        ax.plot(dates, medians[j], color=colour, lw=1.1, alpha=alpha)
        top = max(top, float(np.nanmax(medians[j])))
    ax.axhline(threshold, color=TARGET, lw=1.8, label=f"target {threshold:,.0f}")
    ax.axvline(deadline, color="0.25", ls="--", lw=1.2)
    ax.text(deadline, 0.98, f" deadline {deadline:%Y-%m-%d}", fontsize=8.5, color="0.25",
            va="top", transform=ax.get_xaxis_transform())
    ax.set_ylim(0, top * 1.08)
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
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


def sensitivity_figure(rows: Sequence[Mapping], *, title: str) -> Figure:
    """Bars per parameter and output: first and total Sobol indices (or rank correlations)
    with their bootstrap intervals; the replication-noise share printed under each panel."""
    outputs = list(dict.fromkeys(r["output"] for r in rows))
    fig, axes = plt.subplots(1, max(1, len(outputs)), figsize=(5.6 * max(1, len(outputs)), 5.2),
                             constrained_layout=True, squeeze=False)
    for ax, output in zip(axes.flat, outputs, strict=False):
        mine = [r for r in rows if r["output"] == output and r["index"] != "noise_share"]
        params = list(dict.fromkeys(r["parameter"] for r in mine))
        kinds = list(dict.fromkeys(r["index"] for r in mine))
        width = 0.8 / max(1, len(kinds))
        y = np.arange(len(params))
        colours = {"first": "#3182bd", "total": "#fd8d3c", "spearman": "#756bb1"}
        for i, kind in enumerate(kinds):
            est = np.array([_get(mine, p, kind, "estimate") for p in params])
            lo = np.array([_get(mine, p, kind, "lo") for p in params])
            hi = np.array([_get(mine, p, kind, "hi") for p in params])
            err = np.nan_to_num(np.vstack([est - lo, hi - est]), nan=0.0).clip(min=0)
            label = {"first": "first order", "total": "total order",
                     "spearman": "rank correlation"}[kind]
            ax.barh(y + (i - (len(kinds) - 1) / 2) * width, np.nan_to_num(est), height=width,
                    xerr=err, color=colours[kind], ecolor="0.2", capsize=2, label=label)
        ax.set_yticks(y, params, fontsize=8.5)
        ax.invert_yaxis()
        ax.axvline(0, color="0.3", lw=0.8)
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(output, fontsize=10, loc="left")
        ax.legend(fontsize=8, loc="lower right")
        noise = [r for r in rows if r["output"] == output and r["index"] == "noise_share"]
        if noise:
            r = noise[0]
            rest = ("; indices are shares of the rest" if "first" in kinds
                    else "; correlations of the point means")
            ax.set_xlabel(f"replication noise: {_pct(r['estimate'])} of the variance across "
                          f"points [{_pct(r['lo'])}, {_pct(r['hi'])}]{rest}", fontsize=8)
        if all(np.isnan(_get(mine, p, k, "estimate")) for p in params for k in kinds):
            ax.text(0.5, 0.5, "output does not vary across points:\nno index to estimate",
                    ha="center", va="center", transform=ax.transAxes, fontsize=10)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    return fig


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.0f}%"


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
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=12, fontweight="bold")
    if subtitle:
        ax.set_title(subtitle, fontsize=9, color="0.25")
    return fig


def sweep_figures(manifest: Mapping, points: Sequence[Mapping[str, float]],
                  dates: Sequence[dt.date], medians: Mapping[int, np.ndarray],
                  sensitivity: Sequence[Mapping]) -> list[tuple[str, Figure]]:
    """A sweep folder's figures from its manifest and tables: reachability.png, then
    fan.png when curves were kept and sensitivity.png when indices were estimated."""
    ranges = manifest["ranges"]
    keys = [r["key"] for r in ranges]
    values = np.array([[s[k] for k in keys] for s in points], dtype=float)
    p = np.array([s["p_met"] for s in points])
    t = manifest["target"]
    n_rep = manifest["replications"] if manifest.get("precision") is None else "adaptive"
    goal = f"target {t['firms']:,} at >= {t['level']} ({t['count']}) by {t['deadline']}"
    others = len(ranges) - 2
    smooth = (f"; colour kernel-smoothed, averaged over {others} other varied parameter"
              f"{'s' if others > 1 else ''}" if others > 0 else "")
    figures = [("reachability.png", reachability_figure(
        ranges, values, p, np.array([s["p_met_lo"] for s in points]),
        np.array([s["p_met_hi"] for s in points]),
        np.array([s["replications"] for s in points]),
        title=f"{manifest['scenario']}: where the target is reachable",
        subtitle=f"{goal}\n{len(points)} {manifest['design']} points x {n_rep} runs "
                 f"({manifest['engine']}){smooth}"))]
    if medians:
        counted = "new firms" if t["count"] == "new" else "firms"
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
            sensitivity, title=f"{manifest['scenario']}: which parameter matters: {kind}")))
    return figures
