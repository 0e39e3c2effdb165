"""`sim check SCENARIO...`: validate scenario files without running them."""

from __future__ import annotations

import argparse
from pathlib import Path

from sim.cli.common import EXIT_OK
from sim.scenario import ScenarioError, load


def add_parser(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser("check", help="validate scenario files without running them")
    check.add_argument("scenarios", type=Path, nargs="+")
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def cmd_check(args: argparse.Namespace) -> int:
    problems: list[str] = []
    for path in args.scenarios:
        try:
            sc = load(path, args.overrides)
            parts = [f"{sc.firms:,} firms", _count(len(sc.segments), "segment")]
            if sc.regions:
                parts.append(_count(len(sc.regions), "region"))
            if sc.entry or sc.exit:
                parts.append(f"entry {sc.entry:g}/yr, exit {sc.exit:g}/yr")
            if sc.sweep is not None and sc.sweep.vary:  # each bound must validate, as
                from sim.explore.design import SweepError, resolve_ranges  # `sim sweep` checks

                try:
                    resolve_ranges(sc.raw, sc.sweep.ranges(), source=str(path))
                except SweepError as exc:
                    problems.extend(f"{path}: sweep.vary: {line}" for line in exc.lines)
                    continue
            print(f"{path}: ok ({sc.name}: {', '.join(parts)}, {sc.start} to {sc.end})")
        except ScenarioError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ScenarioError(problems)
    return EXIT_OK
