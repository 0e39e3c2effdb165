"""Shares as people read them: one rule for every verdict line, report and figure."""

from __future__ import annotations


def _exact_ends(x: float, text: str, ends: tuple[str, str], near: tuple[str, str]) -> str:
    """`text`, x as shown, unless it shows an end (0 or 1, `ends`) that x is not exactly:
    then `near` ("<" or ">" the next digit), so 1 run in 200 never reads as none."""
    if x != x:
        return "n/a"
    if text == ends[0] and x > 0:
        return near[0]
    return near[1] if text == ends[1] and x < 1 else text


def share_text(x: float) -> str:
    """A share as a whole percent: 0% or 100% only when it is exactly 0 or 1, "<1%" or
    ">99%" in between; "n/a" for NaN."""
    return _exact_ends(x, f"{100 * x:.0f}%", ("0%", "100%"), ("<1%", ">99%"))


def share_decimal(x: float) -> str:
    """A share to two decimals, as a solve states P(met), by the same rule: 0.00 or 1.00
    only when exact, "<0.01" or ">0.99" in between; "n/a" for NaN."""
    return _exact_ends(x, f"{x:.2f}", ("0.00", "1.00"), ("<0.01", ">0.99"))
