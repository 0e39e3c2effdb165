"""The code base stays `ruff` clean (rules in pyproject.toml)."""

from __future__ import annotations

import re
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


# Layers, lowest first: configuration -> engines -> runner -> analysis -> figures -> commands.
# A module may import only modules of lower layers (same-layer imports are refused too, so
# each layer's modules stay independent of one another).
LAYERS = [
    ["scenario", "validation", "sensitivity", "plots", "cliutil"],
    ["population", "limits", "target", "calibrate", "plots_fit", "plots_sweep"],
    ["model"],
    ["tau", "meanfield", "results"],
    ["runner"],
    ["sweep"],
    ["solve"],
    ["cli_calibrate", "cli_sweep"],
    ["cli"],
]


def test_layers_import_one_way():
    """Lower layers never import upper ones, nor their neighbours in the same layer (checked
    on the source text, so nothing is executed); every module of sim/ has a layer."""
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    modules = {p.stem for p in (ROOT / "sim").glob("*.py")} - {"__init__", "__main__"}
    assert modules <= set(rank), f"modules without a layer: {sorted(modules - set(rank))}"
    for name in modules:
        text = (ROOT / "sim" / f"{name}.py").read_text(encoding="utf-8")
        imported = set(re.findall(r"from \.(\w+) import", text))
        imported |= {m for group in re.findall(r"from \. import ([\w, ]+)", text)
                     for m in re.split(r",\s*", group.strip())}
        for other in imported & set(rank):
            assert rank[other] < rank[name], (
                f"sim/{name}.py (layer {rank[name]}) imports sim/{other}.py "
                f"(layer {rank[other]})")
    assert sys.version_info >= (3, 11)
