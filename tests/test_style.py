"""The code base stays `ruff` clean (rules in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT


def test_ruff_clean():
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(ROOT / ".venv" / "bin"))
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    folders = [d for d in ("sim", "tests", "benchmarks") if (ROOT / d).is_dir()]
    proc = subprocess.run([ruff, "check", *folders], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_layers_import_one_way():
    """configuration -> model -> runner -> analysis/plots -> CLI: lower layers never import
    upper ones (checked on the source text, so nothing is executed)."""
    order = ["scenario", "population", "model", "runner", "target", "results", "plots", "cliutil",
             "cli"]
    rank = {name: i for i, name in enumerate(order)}
    for name in order:
        text = (ROOT / "sim" / f"{name}.py").read_text(encoding="utf-8")
        for other in order:
            if rank[other] > rank[name] and (f"from .{other} import" in text
                                             or f"from sim.{other} import" in text):
                pytest.fail(f"sim/{name}.py imports the upper layer sim/{other}.py")
    assert sys.version_info >= (3, 11)
