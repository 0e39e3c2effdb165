"""docs/quickstart.ipynb runs from top to bottom, as a reader's Jupyter would run it: every
cell in a `python3` kernel of this interpreter, in a temporary working folder (where its
sweep writes), no cell raising."""

from __future__ import annotations

import json
import sys
import time

import pytest
from conftest import ROOT

NOTEBOOK = ROOT / "docs" / "quickstart.ipynb"


@pytest.fixture
def kernel_of_this_python(tmp_path, monkeypatch):
    """A `python3` kernelspec that starts this interpreter, found first on JUPYTER_PATH, so a
    user-wide `python3` kernel of another Python cannot take its place."""
    pytest.importorskip("ipykernel")
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (sim tests)", "language": "python"}), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    manager = pytest.importorskip("jupyter_client.manager")
    kernel = manager.KernelManager(kernel_name="python3")
    assert kernel.kernel_spec.resource_dir == str(spec)
    assert kernel.format_kernel_cmd()[0] == sys.executable
    return "python3"


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path, kernel_of_this_python):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    started = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=180, kernel_name=kernel_of_this_python,
                            resources={"metadata": {"path": str(work)}}).execute()
    elapsed = time.perf_counter() - started

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, "\n".join(f"{o.ename}: {o.evalue}" for o in errors)
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the run's figure and the sweep's map
    assert [p.name.split("-sweep-")[0] for p in (work / "results").iterdir()] == ["baseline"]
    assert elapsed < 120, f"the quickstart took {elapsed:.0f} s; keep it under a minute"
