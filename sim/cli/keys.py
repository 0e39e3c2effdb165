"""`sim keys [PREFIX]`: the scenario keys, with type, allowed values, default, unit and
meaning, from the schema (the same table as docs/scenario-keys.md)."""

from __future__ import annotations

import argparse
import difflib

from sim.cli.common import EXIT_OK, BadInput
from sim.scenario import schema

COLUMNS = ("key", "type", "allowed", "default", "unit", "meaning")


def add_parser(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys",
                          help="list the scenario keys: type, allowed values, default, meaning",
                          description="List the keys a scenario file may hold. PREFIX narrows "
                          "the list and may name entries as --set does: levels.line, "
                          "policy.0, population.segment.large.share, target.c")
    keys.add_argument("prefix", nargs="?", default="", metavar="PREFIX",
                      help="a dotted key or the start of one (default: every key)")


def cmd_keys(args: argparse.Namespace) -> int:
    found = list(schema.keys(args.prefix))
    if not found:
        tops = sorted({k.path.split(".")[0].removesuffix("[]") for k in schema.KEYS})
        guess = difflib.get_close_matches(args.prefix, [k.path for k in schema.KEYS], n=1,
                                          cutoff=0.6)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        raise BadInput(f"sim keys: {args.prefix!r}: no scenario key starts so (top-level keys: "
                       f"{', '.join(tops)}){hint}")
    print(table(found), end="")
    return EXIT_OK


def table(found: list[schema.Key]) -> str:
    """Aligned columns, the meaning last and unwrapped (a line per key, for grep)."""
    rows = [(k.path, schema.KINDS[k.kind], k.allowed, k.default_text, k.unit, k.meaning)
            for k in found]
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS) - 1)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join([*(c.ljust(w) for c, w in zip(cells, widths, strict=False)),
                          cells[-1]]).rstrip() + "\n"

    return "".join([line(COLUMNS), line(tuple("-" * w for w in [*widths, 7])),
                    *(line(r) for r in rows)])
