"""report.html: one self-contained page per results folder (run, sweep, solve, fit) with the
answer, the figures embedded as data URIs, the key assumptions with the sources their
scenario file cites, and the tables. Builders take dicts, text and PNG bytes and return HTML
(the parts are in `page`). Nothing here may cost a run its results: `report_file` and
`write_report` turn a failure into a warning and no report."""

from __future__ import annotations

import csv
import json
import re
import tomllib
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from sim.engines import DETERMINISTIC
from sim.scenario import LEVELS, NATIONAL
from sim.store.page import (
    assumptions,
    embed,
    esc,
    judgement,
    lookup,
    meta_list,
    note_for,
    number,
    page,
    percent,
    read_text,
    section,
    source_notes,
    stat_grid,
    table,
    target_text,
    whole,
)

REPORT = "report.html"
REGIONS_FIGURE = "regions.png"  # shown in the "By region" section, not beside adoption.png
READINGS = {"new": "new: reached the level during the plan",
            "stock": "stock: at or above the level at the deadline",
            "upgraded": "upgraded: completed a project at or above it during the plan"}

# ---------------------------------------------------------------------------------------------
# A run


def _readings(summary: Mapping[str, Any]) -> str:
    readings, t = summary.get("readings") or {}, summary.get("target") or {}
    if not readings:
        return ""
    rows = []
    for reading, by_level in readings.items():
        cells: list[Any] = [READINGS.get(reading, reading)]
        for lv in LEVELS:
            r = by_level.get(lv, {})
            text = f"{whole(r.get('mean'))} <small>[{whole(r.get('p05'))}–{whole(r.get('p95'))}]"
            own = reading == t.get("count") and lv == t.get("level")
            reach = isinstance(r.get("mean"), int | float) and r["mean"] >= t.get("firms", 1e99)
            cells.append((text + "</small>", "own" if own else "reach" if reach else ""))
        rows.append(cells)
    note = (f"Firms at the deadline, {esc(t.get('deadline'))}: mean [5%–95% of runs]. "
            f"Highlighted: this scenario's own reading ({esc(t.get('count'))} at "
            f"{esc(t.get('level'))}); in green: a mean at or above the target of "
            f"{esc(number(t.get('firms')))}.")
    return section("Every reading of the target", f'<p class="note">{note}</p>',
                   table(["reading", *LEVELS], rows, num=(1, 2, 3, 4)))


def has_regions(summary: Mapping[str, Any]) -> bool:
    """Whether the run's scenario declares regions (not only the one national region)."""
    names = [e.get("region") for e in summary.get("by_region") or []]
    return bool(names) and names != [NATIONAL]


def _regions(summary: Mapping[str, Any], figures: Sequence[tuple[str, bytes]]) -> str:
    """The "By region" section: each region's count at the deadline against its quota, and
    regions.png; empty without regions."""
    if not has_regions(summary):
        return ""
    t = summary.get("target") or {}
    rows = []
    for e in summary.get("by_region") or []:
        c, quota, firms = e.get("count_at_deadline") or {}, e.get("quota"), e.get("quota_firms")
        rows.append([e.get("region"), percent(e.get("share")),
                     "none" if quota is None else f"{percent(quota)} = {whole(firms)} firms",
                     (f"{whole(c.get('mean'))} <small>[{whole(c.get('p05'))}–"
                      f"{whole(c.get('p95'))}]</small>", ""),
                     "–" if e.get("quota_met") is None else percent(e["quota_met"])])
    note = (f"The count the target reads ({esc(t.get('count'))} at ≥ {esc(t.get('level'))}) at "
            f"{esc(t.get('deadline'))}, mean [5%–95% of runs]; the regions add up to the "
            "national count. A quota is the region's share of the national target; quota met: "
            "the share of runs in which the region's count reaches it.")
    return section("By region", f'<p class="note">{note}</p>',
                   table(["region", "share of firms", "quota", "count at the deadline",
                          "quota met"], rows, num=(1, 2, 3, 4)),
                   *(embed(n, b, "The counted firms by region against each quota's linear "
                           "schedule, and the count at the deadline by region")
                     for n, b in figures if n == REGIONS_FIGURE))


def _population(summary: Mapping[str, Any]) -> str:
    """One line on entry and exit, when firms entered or left during the run."""
    pop = summary.get("population") or {}
    if not (pop.get("entered") or pop.get("exited")):
        return ""
    text = (f"{whole(pop.get('firms_at_start'))} firms at the start; {whole(pop.get('entered'))} "
            f"entered and {whole(pop.get('exited'))} left (of which "
            f"{whole(pop.get('exited_upgraded'))} had upgraded at or above the target's level "
            f"and no longer count); {whole(pop.get('firms_at_end'))} at the end (means over "
            "the runs).")
    return section("Population", f"<p>{esc(text)}</p>")


def _run_verdict(summary: Mapping[str, Any]) -> str:
    """The run's verdict box: a headline judged on P(met)'s interval (`judgement`), the count,
    the gap, the pace, and when the count crosses the target or that it is met at the start."""
    t, count = summary.get("target") or {}, summary.get("count_at_deadline") or {}
    p, n = summary.get("p_met"), summary.get("replications")
    lo, hi = summary.get("p_met_ci95") or (None, None)
    cls, word = judgement(p, lo, hi)
    mean_field = n == 1 and lo == hi
    head = (f"{word} in the mean field" if mean_field else f"{word}: met in {percent(p)} of "
            f"{number(n)} runs (95% interval {percent(lo)} to {percent(hi)})")
    start = (summary.get("initial_at_or_above") or {}).get(t.get("level"))
    at_start = (t.get("count") == "stock" and isinstance(start, int | float)
                and isinstance(t.get("firms"), int | float) and start >= t["firms"])
    gap = (t.get("firms") or 0) - (count.get("mean") or 0)
    pace = next((x for x in str(summary.get("verdict", "")).split("; ") if "/yr" in x), "")
    modelled, _, needed = pace.partition(" modelled vs ")
    crossing = summary.get("crossing_date") or {}
    numbers = [(f"count at {t.get('deadline')}", whole(count.get("mean")), "" if mean_field
                else f"5–95% of runs: {whole(count.get('p05'))}–{whole(count.get('p95'))}"),
               ("short of the target" if gap > 0 else "above the target", whole(abs(gap)),
                f"target {number(t.get('firms'))}"),
               ("pace modelled (a year)", modelled or "–",
                f"needed: {needed.removesuffix(' needed')}" if needed else pace),
               ("target met", "at the start", f"{whole(start)} firms then") if at_start else
               ("median crossing", crossing.get("p50") or "beyond the horizon",
                f"never within the horizon: {percent(crossing.get('never'))}")]
    return (f'<div class="verdict {cls}"><h2>{esc(head)}</h2><p>Target: '
            f"{esc(target_text(t))}</p>{stat_grid(numbers)}<p class=\"line\">As "
            f"<code>sim run</code> printed it: {esc(summary.get('verdict', ''))}</p></div>")


def run_report(summary: Mapping[str, Any], raw: Mapping[str, Any],
               figures: Sequence[tuple[str, bytes]], *, source_text: str | None = None,
               source: str = "") -> str:
    """report.html of a run: verdict, figure, every reading, the regions and population change
    when there are any, subsidies, assumptions, how to run it again. `raw`: the scenario as
    run; `source_text`: its original file's text."""
    spent = summary.get("subsidy_spent_mean") or {}
    budgets = {p.get("name"): p.get("budget") for p in raw.get("policy", []) or []}
    subsidy = section("Subsidy spent (mean per run, yuan)", table(
        ["policy", "spent", "budget"],
        [[k, whole(v), number(budgets[k]) if budgets.get(k) else "no budget"]
         for k, v in spent.items()], num=(1, 2))) if spent else ""
    how = (f"sim run scenario.toml --seed {summary.get('seed')} --replications "
           f"{summary.get('replications')} --engine {summary.get('engine')} --out rerun")
    about = meta_list([
        ("scenario", summary.get("scenario")), ("scenario file", source),
        ("period", f"{number(raw.get('start'))} to {number(raw.get('end'))}"),
        ("engine", summary.get("engine")), ("seed", summary.get("seed")),
        ("replications", summary.get("replications")), ("version", summary.get("version")),
        ("scenario sha256", summary.get("scenario_sha256")),
        ("elapsed", f"{summary.get('elapsed_s')} s")])
    parts = [_run_verdict(summary),
             *(embed(n, b, "Adoption at each level: median and 5–95% band of the runs")
               for n, b in figures if n != REGIONS_FIGURE),
             _readings(summary), _regions(summary, figures), _population(summary), subsidy,
             assumptions(raw, source_text, source),
             section("The run", about, _rerun(how, "To run it again from this folder "
                                              "(<code>scenario.toml</code> is the scenario "
                                              "exactly as run, overrides applied; the results "
                                              "go to <code>rerun/</code> beside it, so they "
                                              "meet no other run's folder):"))]
    return page(f"{summary.get('scenario', 'run')}: will the target be met?",
                str(raw.get("description", "")), parts,
                ["scenario.toml", "summary.json", "curves.csv",
                 *(["regions.csv"] if has_regions(summary) else []), *(n for n, _ in figures)])


# ---------------------------------------------------------------------------------------------
# A sweep, a solve, a fit


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _rerun(how: str, lead: str = "To run it again from this folder:") -> str:
    """How to run it again: the command, continued with backslashes before options."""
    lines = [""]
    for option in re.split(r" (?=--)", how):
        if lines[-1] and len(lines[-1]) + len(option) > 86:
            lines.append("  ")
        lines[-1] += f"{' ' if lines[-1].strip() else ''}{option}"
    command = " \\\n".join(lines)
    return f"<p>{lead}</p><pre>{esc(command)}</pre>"


def _box(cls: str, head: str, lines: str, numbers: Sequence[tuple[str, str, str]],
         tail: str = "") -> str:
    return (f'<div class="verdict {cls}"><h2>{esc(head)}</h2><p>{lines}</p>'
            f"{stat_grid(numbers)}{tail}</div>")


def _sensitivity_section(manifest: Mapping[str, Any], rows: Sequence[Mapping[str, str]]) -> str:
    """The sweep's Sensitivity section: shares shown within [0, 1], and a warning, its rows
    marked, where an output's indices cannot be read (all noise, inconsistent estimates)."""
    from sim.readout.indices import caveat_settings, caveats, interval_shown, shown, value

    rows = [r for r in rows if r.get("estimate")]
    if not rows:
        return ""
    warned = caveats(rows, **caveat_settings(manifest))
    tags = {c.output: "unreliable: " + "; ".join(w.tag for w in warned if w.output == c.output)
            for c in warned}
    body = [[r["output"], r["parameter"], r["index"], shown(value(r, "estimate"), r["index"]),
             interval_shown(r), *([(esc(tags.get(r["output"], "") if r["index"] !=
                                    "noise_share" else ""), "warn")] if tags else [])]
            for r in rows]
    return section("Sensitivity", '<p class="note">Estimates with 95% intervals; the share of '
                   "replication noise says how much of the spread is chance. Sobol indices and "
                   "the noise share are shares of a variance: values past 0 or 1 are shown at "
                   "the bound (≤ 0, ≥ 1, ≥ 100%); sensitivity.csv keeps the raw estimates.</p>",
                   *(f'<p class="warn">warning: {esc(c.text)}</p>' for c in warned),
                   table(["output", "parameter", "index", "estimate", "95% interval",
                          *(["note"] if tags else [])], body, num=(3, 4)))


def sweep_report(manifest: Mapping[str, Any], points: Sequence[Mapping[str, str]],
                 sensitivity: Sequence[Mapping[str, str]], figures: Sequence[tuple[str, bytes]],
                 raw: Mapping[str, Any], *, source_text: str | None = None,
                 source: str = "") -> str:
    """report.html of a sweep: how much of the space meets the target, the figures, the
    ranges with their sources, sensitivity, the best points. `points`, `sensitivity`: the
    rows of points.csv and sensitivity.csv."""
    t, ranges = manifest.get("target") or {}, manifest.get("ranges") or []
    keys = [r["key"] for r in ranges]
    col = {c: [_float(r.get(c)) for r in points] for c in
           ("p_met", "p_met_lo", "p_met_hi", "count_mean", "count_p05", "count_p95",
            "replications", "failed")}
    p, count = col["p_met"], col["count_mean"]
    order = sorted((j for j in range(len(points)) if p[j] == p[j]), reverse=True,
                   key=lambda j: (p[j], count[j] if count[j] == count[j] else -1.0))
    best = order[0] if order else None
    # Judged on the points' own intervals (the best of many noisy estimates overstates): the
    # highest lower end and highest upper end over the points, so a point of many runs that
    # supports "Reached" counts even where another scores higher on few. A deterministic
    # engine's points are exact: [p, p].
    lo, hi = col["p_met_lo"], col["p_met_hi"]
    if manifest.get("engine") in DETERMINISTIC:
        lo, hi = p, p
    cls, word = judgement(*((p[best], max(lo[j] for j in order), max(hi[j] for j in order))
                            if best is not None else (None,)))
    gap = (t.get("firms") or 0) - (count[best] if best is not None else 0)
    failed = int(sum(x for x in col["failed"] if x == x))
    numbers = [("points", number(len(points)), f"{manifest.get('design')} design"),
               ("runs", whole(sum(x for x in col["replications"] if x == x) + failed),
                f"{failed:,} failed" if failed else "none failed"),
               ("points with P(met) ≥ 0.9", number(sum(x >= 0.9 for x in p)), ""),
               ("points with P(met) ≥ 0.5", number(sum(x >= 0.5 for x in p)), ""),
               ("best P(met)", percent(p[best]) if best is not None else "–",
                "" if best is None else (
                    f"mean count {whole(count[best])}" if lo is p else
                    f"95% interval {percent(lo[best])} to {percent(hi[best])}; "
                    f"mean count {whole(count[best])}")),
               ("short at the best point" if gap > 0 else "above the target at the best point",
                whole(abs(gap)), f"target {number(t.get('firms'))}")]
    where = "" if best is None else ", ".join(
        f"{k} = {number(_float(points[best].get(k)))}" for k in keys)
    box = _box(cls, f"{word} in the swept space", f"Target: {esc(target_text(t))}", numbers,
               f'<p class="line">Best point: {esc(where)}</p>')
    notes = source_notes(source_text) if source_text else {}
    ranged = [[(f"<code>{esc(r['key'])}</code>", ""), number(r.get("lo")), number(r.get("hi")),
               "log" if r.get("log") else "linear", number(lookup(raw, r["key"])),
               (esc(note_for(notes, r["key"])), "src")] for r in ranges]
    top = [[j, *(number(_float(points[j].get(k))) for k in keys),
            f"{percent(p[j])} [{percent(col['p_met_lo'][j])}–{percent(col['p_met_hi'][j])}]",
            f"{whole(count[j])} [{whole(col['count_p05'][j])}–{whole(col['count_p95'][j])}]"]
           for j in order[:25]]
    vary = "".join(f" --vary {r['key']}={r.get('lo')}:{r.get('hi')}"
                   + (":log" if r.get("log") else "") for r in ranges)
    how = (f"sim sweep scenario.toml --design {manifest.get('design')} --samples "
           f"{manifest.get('samples')} --replications {manifest.get('replications')} --engine "
           f"{manifest.get('engine')}{vary}"
           + (f" --precision {manifest['precision']}" if manifest.get("precision") else ""))
    heads = [(esc(k).replace(".", ".<wbr>"), "") for k in keys]
    parts = [
        box, *(embed(n, b) for n, b in figures),
        section("What was varied", table(["key", "low", "high", "scale", "in the scenario",
                                          "source (comment in the file)"], ranged,
                                         num=(1, 2, 4))),
        _sensitivity_section(manifest, sensitivity),
        section(f"The best points ({min(25, len(order))} of {len(points)}; all in points.csv)",
                table(["point", *heads, "P(met) [95%]", "mean count [5–95%]"], top,
                      num=tuple(range(len(keys) + 3)))),
        assumptions(raw, source_text, source, keys),
        section("The sweep", meta_list([(k, manifest.get(k)) for k in
                                        ("scenario", "engine", "seed", "version")]),
                _rerun(how))]
    return page(f"{manifest.get('scenario', 'sweep')}: what would it take?",
                str(raw.get("description", "")), parts,
                ["manifest.json", "points.csv", "runs.csv", "curves.csv", "sensitivity.csv",
                 *(n for n, _ in figures)])


def solve_report(doc: Mapping[str, Any], image: bytes, raw: Mapping[str, Any], *,
                 source_text: str | None = None, source: str = "") -> str:
    """report.html of a solve: the value found (or why not), the evaluations, assumptions."""
    t, key, evals = doc.get("target") or {}, str(doc.get("parameter")), doc.get("evaluations", [])
    ci = doc.get("ci95")
    numbers = [("value found", number(doc.get("value")) if doc.get("reached") else "none",
                f"95% interval {number(ci[0])} to {number(ci[1])}" if ci else ""),
               ("P(met) asked", percent(doc.get("probability")), str(doc.get("direction", ""))),
               ("in the scenario", number(lookup(raw, key)), key),
               ("runs", number(doc.get("runs")), f"engine {doc.get('engine')}")]
    box = _box("met" if doc.get("reached") else "miss", str(doc.get("message", "")),
               f"Target: {esc(target_text(t))}", numbers,
               "" if doc.get("monotone", True) else
               '<p class="warn">P(met) is not monotone in the parameter over the range.</p>')
    rows = [[number(e.get("value")), number(e.get("replications")), number(e.get("met")),
             f"{percent(e.get('p_met'))} [{percent(e.get('p_met_lo'))}–"
             f"{percent(e.get('p_met_hi'))}]", whole(e.get("count_mean")),
             e.get("decision", "")] for e in evals]
    lo, hi = (doc.get("range") or [None, None])[:2]
    down = " --decreasing" if doc.get("direction") == "decreasing" else ""
    how = (f"sim solve scenario.toml --vary {key}={lo}:{hi} --probability "
           f"{doc.get('probability')}{down} --replications "
           f"{min((e.get('replications', 0) for e in evals), default=0)} --engine "
           f"{doc.get('engine')}")
    parts = [box, embed("solve.png", image),
             section("Evaluations", table([key, "runs", "met", "P(met) [95%]", "mean count",
                                           "decision"], rows, num=(0, 1, 2, 3, 4))),
             assumptions(raw, source_text, source, [key]),
             section("The search", meta_list([(k, doc.get(k)) for k in
                                              ("scenario", "engine", "seed", "version")]),
                     _rerun(how))]
    return page(f"{doc.get('scenario', 'solve')}: what value of {key} meets the target?",
                str(raw.get("description", "")), parts,
                ["scenario.toml", "solve.json", "solve.png"])


def fit_report(doc: Mapping[str, Any], image: bytes, fragment: str = "") -> str:
    """report.html of a calibration: estimates with intervals, warnings, data and fit, the
    fragment to paste into a scenario."""
    def estimate(name: str) -> tuple[str, str, str]:
        e = doc.get(name) or {}
        ci = e.get("ci95")
        bound = ["open" if b is None else whole(b) if name == "market" else f"{b:.4g}"
                 for b in ci or ()]
        value = e.get("estimate")
        shown = whole(value) if name == "market" else f"{_float(value):.4g}"
        return name, shown, ("fixed" if e.get("fixed") else
                                                 "no interval" if not ci else
                                                 f"95% interval {bound[0]} to {bound[1]}")

    warned = doc.get("warnings") or []
    numbers = [estimate("innovation"), estimate("imitation"), estimate("market"),
               ("rmse", whole(doc.get("rmse")), f"{doc.get('estimator')} estimator")]
    box = _box("partial" if warned else "", f"Bass fit, {doc.get('level')} level",
               f"Series <code>{esc(doc.get('series'))}</code> ({esc(doc.get('kind'))}, "
               f"{esc(doc.get('points'))} points; t = 0 at {esc(doc.get('start'))})", numbers,
               "".join(f'<p class="warn">warning: {esc(w)}</p>' for w in warned))
    kind = doc.get("kind", "cumulative")
    rows = [[r.get("date"), whole(r.get(kind)), whole(r.get("fitted")),
             whole(_float(r.get(kind)) - _float(r.get("fitted")))] for r in doc.get("data", [])]
    extra = "".join(f" --where {w}" for w in doc.get("where") or [])
    if (doc.get("market") or {}).get("fixed"):
        extra += f" --market {doc['market']['estimate']}"
    how = (f"sim calibrate {doc.get('series')} --level {doc.get('level')} --estimator "
           f"{doc.get('estimator')} --start {doc.get('start')} --until {doc.get('until')}{extra}")
    parts = [box, embed("fit.png", image),
             section("Data and fit", table(["date", kind, "fitted", "residual"], rows,
                                           num=(1, 2, 3))),
             section("Method", f"<p>{esc(doc.get('method', ''))}</p>"),
             section("fragment.toml (to paste into a scenario)",
                     f'<pre class="wrap">{esc(fragment)}</pre>'),
             section("To run it again", _rerun(how, "From the folder it was run in (the "
                                                    "series' path is relative to it):"))]
    return page(f"Calibration: {doc.get('level')} level", str(doc.get("series", "")), parts,
                ["fit.json", "fit.png", "fragment.toml"])


# ---------------------------------------------------------------------------------------------
# Glue for the writers: a report never costs a run its results


def report_file(build: Callable[..., str], *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
    """[("report.html", build(...))] to publish with the other files; [] and a warning when
    building it fails."""
    try:
        return [(REPORT, build(*args, **kwargs))]
    except Exception as exc:  # a bug in the report must not lose the results
        warnings.warn(f"{REPORT} not written: {exc!r}", stacklevel=2)
        return []


def write_report(folder: Path, build: Callable[..., str], *args: Any, **kwargs: Any
                 ) -> list[Path]:
    """Build and write `folder`/report.html atomically; the paths written ([] on failure)."""
    from sim.store.files import atomic_write

    made = report_file(build, *args, **kwargs)
    for name, text in made:
        atomic_write(folder / name, text)
    return [folder / name for name, _ in made]


def sweep_folder_report(folder: Path, figures: Sequence[Path], source: str | None = None
                        ) -> str:
    """A sweep folder's report from its files; sources from `source` (the scenario's
    original file), else from the folder's scenario.toml."""
    def rows(name: str) -> list[dict[str, str]]:
        if not (folder / name).is_file():
            return []
        with open(folder / name, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    scenario = read_text(folder / "scenario.toml") or ""
    text = read_text(source) if source else None
    return sweep_report(manifest, rows("points.csv"), rows("sensitivity.csv"),
                        [(p.name, p.read_bytes()) for p in figures], tomllib.loads(scenario),
                        source_text=text or scenario,
                        # text is read from `source`, so a source is given when there is text
                        source=cast(str, source) if text else str(folder / "scenario.toml"))
