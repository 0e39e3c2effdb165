"""The code base stays `ruff` clean (rules in pyproject.toml)."""

from __future__ import annotations

import importlib.util
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


# Layers, lowest first. A module may import only packages of lower layers (packages of the
# same layer stay independent of one another); inside a package, modules import each other
# freely. Checked on the source text, so nothing is executed.
LAYERS = [
    ["scenario", "readout"],
    ["engines"],
    ["execution", "analysis", "store", "plots"],
    ["explore"],
    ["api"],
    ["cli"],
]


def _package(path) -> str:
    rel = path.relative_to(ROOT / "sim")
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_layers_import_one_way():
    """Lower layers never import upper ones, nor their neighbours in the same layer; every
    module of sim/ belongs to a layer."""
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    files = [p for p in (ROOT / "sim").rglob("*.py") if p.name != "__main__.py"
             and p.relative_to(ROOT / "sim") != type(p)("__init__.py")]
    packages = {_package(p) for p in files}
    assert packages <= set(rank), f"modules without a layer: {sorted(packages - set(rank))}"
    for path in files:
        name = _package(path)
        text = path.read_text(encoding="utf-8")
        imported = set(re.findall(r"^\s*(?:from|import) sim\.(\w+)", text, flags=re.M))
        for names in re.findall(r"^\s*from sim import \(?([\w, ]+)", text, flags=re.M):
            imported |= {n.strip() for n in names.split(",")}  # `from sim import api`
        assert not re.search(r"^\s*from \.", text, flags=re.M), f"{path}: use absolute imports"
        for other in (imported & set(rank)) - {name}:
            assert rank[other] < rank[name], (
                f"{path.relative_to(ROOT)} (layer {rank[name]}, {name}) imports sim.{other} "
                f"(layer {rank[other]})")
    assert sys.version_info >= (3, 11)


def test_no_module_over_500_lines():
    """Small modules with one job (docs/architecture.md)."""
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "sim").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, f"modules over 500 lines: {long}"


def test_mypy_clean(tmp_path):
    """`mypy sim --ignore-missing-imports` reports no errors."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    proc = subprocess.run([sys.executable, "-m", "mypy", "sim", "--ignore-missing-imports",
                           "--cache-dir", str(tmp_path / "mypy_cache")],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
