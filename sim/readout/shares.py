"""Shares as people read them: one rule for every verdict line, report and figure."""

from __future__ import annotations


def share_text(x: float) -> str:
    """A share as a whole percent that reads 0% or 100% only when it is exactly 0 or 1, and
    "<1%" or ">99%" in between: 1 run in 200 that met the target is not "0%"; "n/a" for
    NaN."""
    if x != x:
        return "n/a"
    text = f"{100 * x:.0f}%"
    if text == "0%" and x > 0:
        return "<1%"
    return ">99%" if text == "100%" and x < 1 else text


def share_decimal(x: float) -> str:
    """A share to two decimals, as a solve states P(met), by the same rule: 0.00 or 1.00
    only when it is exactly 0 or 1, "<0.01" or ">0.99" in between; "n/a" for NaN."""
    if x != x:
        return "n/a"
    text = f"{x:.2f}"
    if text == "0.00" and x > 0:
        return "<0.01"
    return ">0.99" if text == "1.00" and x < 1 else text
