"""bench/ scripts run against the installed package: no sys.path edits, no private bottomup imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _private(module: str) -> bool:
    """True for ``bottomup._x`` and ``bottomup.x._y`` (any component after the first is private)."""
    parts = module.split(".")
    return parts[0] == "bottomup" and any(p.startswith("_") for p in parts[1:])


def _dynamic_import(call: ast.Call) -> bool:
    """``__import__(...)``, ``import_module(...)`` or ``importlib.import_module(...)``."""
    f = call.func
    return (isinstance(f, ast.Name) and f.id in ("__import__", "import_module")) or (
        isinstance(f, ast.Attribute) and f.attr == "import_module")


def violations(source: str, siblings=()) -> list[str]:
    """Every ``sys.path`` edit, PYTHONPATH injection, private ``bottomup`` import and import of a
    sibling script (a name of ``siblings``: shared helpers belong in the package) in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [f"{line}: import {a.name}" for a in node.names
                      if _private(a.name) or a.name.split(".")[0] in siblings]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in siblings:
                found.append(f"{line}: from {node.module} import ... (a bench script)")
            elif _private(node.module):
                found.append(f"{line}: from {node.module} import ...")
            elif node.module.split(".")[0] == "bottomup":
                found += [f"{line}: from {node.module} import {a.name}" for a in node.names
                          if a.name.startswith("_")]
        elif isinstance(node, ast.Attribute) and node.attr == "path" and \
                isinstance(node.value, ast.Name) and node.value.id == "sys":
            found.append(f"{line}: sys.path")
        elif isinstance(node, ast.Call) and _dynamic_import(node) and node.args and \
                isinstance(node.args[0], ast.Constant) and _private(str(node.args[0].value)):
            found.append(f"{line}: dynamic import of {node.args[0].value}")
        elif isinstance(node, ast.Constant) and node.value == "PYTHONPATH":
            found.append(f"{line}: PYTHONPATH")
    return found


def test_scanner_catches_each_kind():
    bad = (
        "import sys\nsys.path.insert(0, 'x')\nsys.path.append('y')\n"
        "from bottomup._files import atomic_path\nimport bottomup.metrics._cli\n"
        "from bottomup.mcg.pipeline import _check_owt\nfrom bottomup import _validate\n"
        "importlib.import_module('bottomup._segment_cli')\n"
        "env = dict(PYTHONPATH='.')\n"
    )
    v = violations(bad)
    assert len(v) == 7, v  # PYTHONPATH as a keyword is not a string constant: not counted
    assert any("dynamic import of bottomup._segment_cli" in x for x in v)
    assert any("sys.path" in x for x in v) and any("bottomup._files" in x for x in v)
    assert any("_check_owt" in x for x in v) and any("import _validate" in x for x in v)
    assert violations("import os\nenv = {'PYTHONPATH': '.'}\n") == ["2: PYTHONPATH"]
    sib = "from proposals import list_items\nimport train_arcs\nimport proposals_extra\n"
    assert len(violations(sib, siblings={"proposals", "train_arcs"})) == 2
    ok = (
        "import sys\nprint(sys.argv)\nfrom bottomup.io.files import atomic_path\n"
        "from bottomup.metrics.proposals import overlaps_leaves\nimport numpy._core\n"
        "from . import _local\nm = __import__(name)\nimportlib.import_module('numba')\n"
    )
    assert violations(ok) == []


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_bench_script_uses_the_installed_public_api(path):
    siblings = {p.stem for p in BENCH.glob("*.py")}
    assert violations(path.read_text(), siblings) == [], path.name
