"""`sim calibrate`: fit Bass parameters to an observed series and write fit.json, fit.png and
fragment.toml; `sim plot` on such a folder redraws fit.png from fit.json."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

from sim.analysis.calibrate import (
    DEFAULT_ESTIMATOR,
    ESTIMATORS,
    MAX_COUNT,
    Fit,
    Series,
    SeriesError,
    fit,
    fragment,
    read_series,
)
from sim.cli.common import EXIT_OK, BadInput, check_out, held, out_folder
from sim.scenario import LEVELS


def add_parser(sub) -> None:
    """Register the `calibrate` subcommand."""
    cal = sub.add_parser(
        "calibrate", help="fit Bass innovation, imitation and market size to an observed series",
        description="Fit the Bass curve to a CSV series with columns date,cumulative "
        "(cumulative adopters at irregular dates) or date,new (adopters per period ending at "
        "each date); other columns are ignored.")
    cal.add_argument("series", type=Path, help="CSV file: date,cumulative or date,new")
    cal.add_argument("--level", required=True, choices=LEVELS, metavar="LEVEL",
                     help=f"the level the series stands for ({', '.join(LEVELS)})")
    cal.add_argument("--start", type=_date, help="date adoption began, t = 0 with zero "
                     "adopters (default: the first date minus one period)")
    cal.add_argument("--market", type=_positive, help="fix the market size (firms)")
    cal.add_argument("--estimator", choices=list(ESTIMATORS), metavar="FORM",
                     help="the least-squares form: cumulative (the cumulative level m F(t)), "
                     "interval (interval counts m (F(t_i) - F(t_i-1)), Srinivasan and Mason "
                     "1986), rate (per-period counts as m f(t) at the period's end, continuous "
                     "time), log-cumulative (log cumulative counts) or conditional (per-period "
                     "counts given the count before each, weighted by the Bass birth-process "
                     "variance); default: "
                     + ", ".join(f"{v} for date,{k}" for k, v in DEFAULT_ESTIMATOR.items()))
    cal.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE",
                     help="keep only rows with this value in this column, e.g. tier=advanced; "
                     "repeatable")
    cal.add_argument("--until", type=_date, help="draw the fitted curve up to this date "
                     "(default: two years past the last observation)")
    cal.add_argument("--out", type=out_folder, help="results folder (default results/calibrate-"
                     "<series name>-<level>/)")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _positive(text: str) -> float:
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of firms in "
                                          f"(0, {MAX_COUNT:.0e}]")
    return value


def is_fit_folder(folder: Path) -> bool:
    """True when `folder` holds a calibration's results."""
    return (folder / "fit.json").is_file()


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit, then write its files as one set; nothing is written when the data are refused."""
    from sim.store.files import RESULTS_ROOT, json_text, publish
    from sim.store.report import fit_report, report_file

    try:
        series = read_series(args.series, args.where)
        result = fit(series, args.level, start=args.start, market=args.market,
                     estimator=args.estimator)
    except SeriesError as exc:  # (lines about options say the command, as elsewhere)
        raise BadInput(*(f"sim calibrate: {ln}" if ln.startswith("--") else ln
                         for ln in exc.problems)) from None
    until = args.until or _default_until(series)
    if until <= series.dates[-1]:
        raise BadInput(f"sim calibrate: --until {until}: must be after the last date "
                       f"({series.dates[-1]})")
    out = args.out or RESULTS_ROOT / f"calibrate-{args.series.stem}-{args.level}"
    check_out("calibrate", out, "fit")
    _refuse_other_series(out, args.series)
    fig = draw(result, until)
    doc = result.as_json()
    doc["until"] = until.isoformat()
    doc["where"] = list(args.where)
    doc["series_file"] = str(args.series.resolve())
    # One set: killed at any moment, the folder holds the previous fit or this one, and
    # fit.json (which `sim plot` reads) comes last.
    text = fragment(result)
    publish(out, [("fragment.toml", text), ("fit.png", fig),
                  *report_file(fit_report, doc, fig, text), ("fit.json", json_text(doc))])
    print(summary_line(result))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"results in {out}/", file=sys.stderr)
    return EXIT_OK


def summary_line(result: Fit) -> str:
    """One line: the three parameters with their intervals."""
    def show(name: str, fmt: str) -> str:
        e = getattr(result, name)
        if e.fixed:
            return f"{name} {e.estimate:{fmt}} (fixed)"
        if e.ci95 is None:
            return f"{name} {e.estimate:{fmt}} (no interval)"
        lo, hi = (("open" if b is None else f"{b:{fmt}}") for b in e.ci95)
        return f"{name} {e.estimate:{fmt}} [{lo}, {hi}]"

    return (f"{result.level}: {show('innovation', '.4g')}, {show('imitation', '.4g')}, "
            f"{show('market', ',.0f')}; rmse {result.rmse:,.4g} "
            f"({result.estimator} estimator, "
            f"{'no' if result.intervals == 'none' else result.intervals} intervals)")


def _default_until(series: Series) -> dt.date:
    last = series.dates[-1]
    return dt.date(last.year + 2, last.month, min(last.day, 28))


def draw(result: Fit, until: dt.date) -> bytes:
    """fit.png: the data, the fitted curve and its band, and the implied yearly flow."""
    from sim.plots.adoption import png
    from sim.plots.fit import fit_figure

    days = (until - result.start).days
    grid = [result.start + dt.timedelta(days=int(d)) for d in np.linspace(0, days, 240)]
    grid = sorted(set(grid) | set(result.series.dates))
    series = result.series
    observed_rate = None
    if series.kind == "new":
        bounds = [result.start, *series.dates]
        spans = np.array([(b - a).days / 365.25 for a, b in zip(bounds, bounds[1:],
                                                                 strict=False)])
        mids = [a + (b - a) / 2 for a, b in zip(bounds, bounds[1:], strict=False)]
        observed_rate = (mids, np.asarray(series.values) / spans)
    p, q, m = result.params
    where = f" ({', '.join(result.series.source.split('/')[-1:])})"
    fig = fit_figure(
        series.dates, series.cumulative(), grid, result.cumulative_at(grid),
        result.band(grid), result.rate_at(grid), result.band(grid, "rate"),
        title=f"Bass fit, {result.level} level{where}",
        subtitle=summary_line(result) + f"; t = 0 at {result.start}",
        observed_label=("published cumulative count" if series.kind == "cumulative"
                        else "cumulative of the published per-period counts"),
        observed_rate=observed_rate,
        notes=[f"warning: {w}" for w in result.warnings],
    )
    return png(fig)


def cmd_plot_fit(folder: Path) -> int:
    """Redraw fit.png and report.html: refit the data stored in fit.json (the fit is
    deterministic)."""
    from sim.store.files import atomic_write
    from sim.store.report import fit_report, read_text, write_report

    path = folder / "fit.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        kind = doc["kind"]
        series = Series(doc["series"], kind,
                        tuple(dt.date.fromisoformat(r["date"]) for r in doc["data"]),
                        tuple(float(r[kind]) for r in doc["data"]))
        market = doc["market"]["estimate"] if doc["market"].get("fixed") else None
        # fit.json files written before --estimator existed used these forms.
        estimator = doc.get("estimator") or {"cumulative": "log-cumulative",
                                             "new": "conditional"}[kind]
        result = fit(series, doc["level"], start=dt.date.fromisoformat(doc["start"]),
                     market=market, estimator=estimator)
        until = dt.date.fromisoformat(doc["until"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"sim plot: {path}: not a fit.json written by sim calibrate ({exc})"
                       ) from None
    image = draw(result, until)
    atomic_write(folder / "fit.png", image)
    write_report(folder, fit_report, doc, image, read_text(folder / "fragment.toml") or "")
    print(f"redrew {folder / 'fit.png'}")
    return EXIT_OK


def _refuse_other_series(out: Path, series: Path) -> None:
    """Refuse (BadInput) to replace the fit of another series file in `out` (two files of
    one name share the default folder)."""
    was = (held(out, "fit") or {}).get("series_file")
    if isinstance(was, str) and was != str(series.resolve()):
        raise BadInput(f"sim calibrate: {out}/ holds the fit of another series ({was}); pass "
                       "--out DIR to write elsewhere")
