"""Regenerate docs/scenario-keys.md and docs/scenario.schema.json from the scenario-key
schema (sim/scenario/schema.py), the one place the keys are declared.

    .venv/bin/python docs/make_keys.py            # write both files
    .venv/bin/python docs/make_keys.py --check    # exit 1 if either is out of date

tests/test_schema.py fails while a committed file differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sim.scenario import schema

DOCS = Path(__file__).resolve().parent
FILES = {DOCS / "scenario-keys.md": schema.markdown, DOCS / "scenario.schema.json":
         schema.json_text}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, make in FILES.items():
        text = make()
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old == text:
            continue
        stale.append(path)
        if not check:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(DOCS.parent)}")
    if check and stale:
        print("out of date (run python docs/make_keys.py): "
              + ", ".join(str(p.relative_to(DOCS.parent)) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
