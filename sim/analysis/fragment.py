"""The `[levels.LEVEL]` fragment `sim calibrate` writes for pasting into a scenario: the fitted
rates, with their intervals, the estimator and the warnings as comments."""

from __future__ import annotations

from collections.abc import Callable

from sim.analysis.fit import Estimate, Fit


def fragment(result: Fit) -> str:
    """`[levels.LEVEL]` keys from a fit, with the intervals and provenance as comments."""
    def ci(e: Estimate, fmt: Callable[[float], str]) -> str:
        if e.fixed:
            return "fixed by --market"
        if e.ci95 is None:
            return "no interval"
        lo, hi = e.ci95
        return (f"95% CI [{'open' if lo is None else fmt(lo)}, "
                f"{'open' if hi is None else fmt(hi)}]")

    def g(x: float) -> str:
        return f"{x:.4g}"

    def firms(x: float) -> str:
        return f"{x:,.0f}"

    p, q, m = result.params
    lines = [
        f"# sim calibrate {result.series.source} --level {result.level} "
        f"--estimator {result.estimator} (start {result.start}, {len(result.series.dates)} "
        f"points, {result.intervals} intervals)",
        f"# market size {firms(m)}, in the series' own units ({ci(result.market, firms)}): "
        "where they are firms, eligible = market / population.firms; a count of projects",
        "# or plants is no count of firms, so the market is not either",
        "# These are one-level Bass rates; in a four-level scenario a level's rates act on the",
        "# firms one rung below (see docs/calibration.md).",
    ]
    lines += [f"# warning: {w}" for w in result.warnings]
    lines += [
        f"[levels.{result.level}]",
        f"innovation = {g(p)}    # {ci(result.innovation, g)}",
        f"imitation = {g(q)}    # {ci(result.imitation, g)}",
    ]
    return "\n".join(lines) + "\n"
