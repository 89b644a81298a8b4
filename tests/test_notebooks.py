"""Execute every notebook in ``notebooks/`` (STYLE section 9: the notebooks run in CI).

Each notebook runs top to bottom in a fresh kernel with nbclient; any cell that raises fails the
test with the cell's traceback. The repository root is put first on the kernel's ``PYTHONPATH`` so
the notebooks import this checkout (installed or not), and the kernel starts in a temporary
folder, so a notebook cannot depend on, or litter, the working directory.

The torch notebooks must also run without torch (they skip their cells): the last test hides
torch from the kernel behind a stub package that raises ImportError.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")  # every notebook draws figures

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# notebooks whose cells are guarded by ``HAVE_TORCH``
TORCH_NOTEBOOKS = [p for p in NOTEBOOKS if p.stem in ("05_crf", "06_learned_contours", "08_deep_heads")]
PRIVATE = re.compile(r"\b(?:bottomup|deep)(?:\.\w+)*\._\w+")  # e.g. bottomup.owt._kernels
CELL_TIMEOUT = 300  # seconds per cell; a cold numba cache compiles gPb's kernels (~20 s)


def _run(path: Path, cwd: Path, extra_path: list[Path] | None = None):
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    paths = [str(p) for p in (extra_path or [])] + [str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",  # jupyter_client maps it to sys.executable
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute(env=env)
    return nb


def _text_outputs(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append(o.get("text", ""))
            elif "data" in o:
                out.append(o["data"].get("text/plain", ""))
    return "\n".join(out)


def test_notebooks_found():
    names = [p.stem for p in NOTEBOOKS]
    assert names == sorted(names) and len(names) >= 6, names
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        nbformat.validate(nb)
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), (
            f"{p.name} must open with a markdown title"
        )
        assert "References" in nb.cells[0].source, f"{p.name}: the first cell cites its papers"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not PRIVATE.search(cell.source), (
                    f"{p.name}: notebooks call the public API only, found {PRIVATE.search(cell.source)[0]}"
                )
                assert not cell.get("outputs") and cell.get("execution_count") is None, (
                    f"{p.name}: commit notebooks with outputs stripped"
                )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    nb = _run(path, tmp_path)
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert list(tmp_path.iterdir()) == [], "notebooks must write only to their own temporary folders"


@pytest.mark.parametrize("path", TORCH_NOTEBOOKS, ids=[p.stem for p in TORCH_NOTEBOOKS])
def test_torch_notebook_without_torch(path, tmp_path):
    stub = tmp_path / "stub"
    (stub / "torch").mkdir(parents=True)
    (stub / "torch" / "__init__.py").write_text('raise ImportError("torch hidden by the test")\n')
    work = tmp_path / "cwd"
    work.mkdir()
    nb = _run(path, work, extra_path=[stub])
    text = _text_outputs(nb)
    assert "torch is not installed" in text
    assert "False" in text  # the guard cell's value, HAVE_TORCH


def test_torch_stub_hides_torch(tmp_path):
    """The stub really makes ``import torch`` fail (else the test above proves nothing)."""
    import subprocess

    stub = tmp_path / "torch"
    stub.mkdir()
    (stub / "__init__.py").write_text('raise ImportError("torch hidden by the test")\n')
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "torch hidden by the test" in r.stderr
