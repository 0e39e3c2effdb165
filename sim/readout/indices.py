"""Reading a sweep's sensitivity indices (sensitivity.csv rows): what the report and the
figure show, shares within the [0, 1] they must lie in, and when an output's indices cannot
be read at all (replication noise as large as the spread, Sobol estimates that contradict
each other). Shared by the report and the figures, which may not import `explore`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sim.readout.shares import share_text

TOLERANCE = 0.05
"""How far Sobol estimates may break the bounds true indices obey (first <= total, first
indices summing to <= 1, every index in [0, 1]) before they are flagged. A parameter without
interactions has first = total, so its estimates fall either side by chance; on Ishigami the
worst break over 20 designs is 0.02 at 1,024 base rows, 0.11 at 256 and 0.21 at 64."""

AIM = 0.1
"""The 95% half-width of an index that the advice on base samples aims for."""

SHARES = ("first", "total", "noise_share")
"""The indices that are shares of a variance, so lie in [0, 1] (rank correlations in [-1, 1])."""


@dataclass(frozen=True)
class Caveat:
    """Why one output's indices cannot be read as they stand: `tag` (a few words),
    `advice` (what to run instead) and `text` (a sentence for the report)."""

    output: str
    tag: str
    advice: str
    text: str


def value(row: Mapping[str, Any], column: str) -> float:
    """A number of a sensitivity.csv row (read as text or as numbers); NaN where empty."""
    try:
        return float(row[column])
    except (KeyError, TypeError, ValueError):
        return math.nan


def shown(x: float, index: str, *, end: bool = False) -> str:
    """One estimate (or, with `end`, an interval end) as the report and figure show it. A
    share cannot leave [0, 1]: an estimate past a bound shows as "≤ 0" or "≥ 1" ("≥ 100%"
    for the noise share, also at exactly 1: the Sobol estimator stops there when the noise
    is all of the variance), an interval end as the bound. sensitivity.csv keeps raw values."""
    if not math.isfinite(x):
        return "n/a"
    text = share_text if index == "noise_share" else (lambda v: f"{v:.3g}")
    if index not in SHARES or (0 <= x <= 1 and not (_top(x, index) and not end)):
        return text(x)
    bound = 1.0 if x >= 1 else 0.0
    return text(bound) if end else f"{'≥' if bound else '≤'} {text(bound)}"


def _top(x: float, index: str) -> bool:
    """A noise share of 1 or more: noise is all of the variance across points."""
    return index == "noise_share" and x >= 1


def interval_shown(row: Mapping[str, Any]) -> str:
    """A row's 95% interval as shown: its ends within [0, 1] for a share; one bound ("≥
    100%") when the whole interval lies past it."""
    index, lo, hi = row["index"], value(row, "lo"), value(row, "hi")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "n/a"
    if index in SHARES and (lo > 1 or _top(lo, index) or hi < 0):
        return shown(lo, index)  # the whole interval is past one bound
    return f"[{shown(lo, index, end=True)}, {shown(hi, index, end=True)}]"


def noise_text(row: Mapping[str, Any]) -> str:
    """The noise share with its interval, as a figure or sentence shows it."""
    est, ends = shown(value(row, "estimate"), "noise_share"), interval_shown(row)
    whole = not ends.startswith("[") and ends != "n/a"  # the whole interval past 100%
    return (f"{est} of the variance across points"
            + (" (so is its 95% interval)" if whole else f" {ends}"))


def caveat_settings(manifest: Mapping[str, Any]) -> dict[str, int | None]:
    """`caveats`' settings from a sweep's manifest: its base rows, and its replications a
    point where they are fixed (not with --precision, where points differ)."""
    return {"base": manifest.get("base_samples"),
            "replications": None if manifest.get("precision") else manifest.get("replications")}


def caveats(rows: Sequence[Mapping[str, Any]], *, base: int | None = None,
            replications: int | None = None) -> list[Caveat]:
    """What makes an output's indices unreliable (sensitivity.csv rows; `base` rows of a
    Sobol design, `replications` per point where fixed): the parameters' effect cannot be
    told from replication noise (the noise share or its 95% interval reaches 100%), or Sobol
    estimates that break their bounds by more than TOLERANCE (too few base samples)."""
    out = []
    for output in dict.fromkeys(r["output"] for r in rows):
        mine = [r for r in rows if r["output"] == output]
        sobol = any(r["index"] in ("first", "total") for r in mine)
        noise = [r for r in mine if r["index"] == "noise_share"
                 and (value(r, "estimate") >= 1 or value(r, "hi") >= 1)]
        if noise:
            out.append(_noise_caveat(output, noise[0], sobol, replications))
        broken = _broken(mine) if sobol else []
        if broken:
            out.append(_sobol_caveat(output, mine, broken, base))
    return out


def _noise_caveat(output: str, row: Mapping[str, Any], sobol: bool,
                  replications: int | None) -> Caveat:
    """Replication noise as large as the whole spread across points: no effect to read."""
    what = "Sobol indices" if sobol else "rank correlations"
    now = f", now {replications}" if replications else ""
    return Caveat(output, "the parameters' effect cannot be told from replication noise",
                  "more replications per point needed",
                  f"{output}: replication noise is {noise_text(row)}: the swept parameters' "
                  f"effect cannot be told from noise, and the {what} are unreliable; more "
                  f"replications per point are needed (--replications{now}, or --precision).")


def _sobol_caveat(output: str, rows: Sequence[Mapping[str, Any]], broken: Sequence[str],
                  base: int | None) -> Caveat:
    """Sobol estimates that contradict each other: too imprecise, too few base samples."""
    many = _base_advice(rows, base)
    try_more = (f"try --samples {many[0]} or more (the widest interval, ±{many[1]:.2f} now, "
                f"narrows to about ±{many[2]:.2f})" if many else "use more (--samples)")
    return Caveat(output, "inconsistent indices", "too few base samples"
                  + (f": try --samples {many[0]}" if many else ""),
                  f"{output}: the Sobol indices are inconsistent, by more than {TOLERANCE:g} "
                  f"({'; '.join(broken)}): too few base samples" + (f" ({base})" if base else "")
                  + f" for their precision; {try_more}.")


def _broken(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The bounds true Sobol indices obey that these estimates break by more than TOLERANCE."""
    est = {(r["parameter"], r["index"]): value(r, "estimate") for r in rows
           if r["index"] in ("first", "total")}
    first = {p: v for (p, k), v in est.items() if k == "first" and math.isfinite(v)}
    out = [f"{p}: first-order {v:.3g} > total {est[p, 'total']:.3g}" for p, v in first.items()
           if v - est.get((p, "total"), math.nan) > TOLERANCE]
    if len(first) > 1 and sum(first.values()) - 1 > TOLERANCE:
        out.append(f"the first-order indices sum to {sum(first.values()):.3g} > 1")
    names = {"first": "first-order", "total": "total"}
    out += [f"{p}: {names[k]} {v:.3g} {'< 0' if v < 0 else '> 1'}" for (p, k), v in est.items()
            if v < -TOLERANCE or v > 1 + TOLERANCE]
    return out


def _base_advice(rows: Sequence[Mapping[str, Any]], base: int | None
                 ) -> tuple[int, float, float] | None:
    """Base samples to try (a power of two, at least 4x `base`, enough to narrow the widest
    first/total interval to about ±AIM: half-widths shrink as 1/sqrt(samples)), with the
    widest half-width now and then; None without `base` or a finite interval."""
    widths = [(value(r, "hi") - value(r, "lo")) / 2 for r in rows
              if r["index"] in ("first", "total")]
    widest = max((w for w in widths if math.isfinite(w)), default=math.nan)
    if not base or not math.isfinite(widest):
        return None
    need = max(4 * base, math.ceil(base * (widest / AIM) ** 2))
    many = 1 << (need - 1).bit_length()
    return many, widest, widest * math.sqrt(base / many)
