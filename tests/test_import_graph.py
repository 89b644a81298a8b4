"""The import graph of the packages, read from the source with ``ast`` (nothing is imported).

Rules (DESIGN.md): ``bottomup`` never imports ``deep`` or torch, nor names ``deep`` in a string;
``deep`` and ``bench`` import no private ``bottomup`` module; ``bench`` does not edit ``sys.path``;
the modules of ``bottomup`` form no import circle, and no stage imports a later one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Stages of the pipeline in order; a module may import its own stage and earlier ones only.
STAGES = [
    ("bottomup.validate", "bottomup.config", "bottomup.io", "bottomup.masks", "bottomup._threads",
     "bottomup.graph"),
    ("bottomup.cues",),
    ("bottomup.contours",),
    ("bottomup.owt",),
    ("bottomup.hierarchy",),
    ("bottomup.superpixels", "bottomup.metrics"),
    ("bottomup.pipeline",),
    ("bottomup.mcg", "bottomup.interactive"),  # applications on the hierarchy and the pipeline
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module named by an import statement of the file (function-local ones too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, node.lineno))
            out += [(f"{mod}.{a.name}", node.lineno) for a in node.names]
    return out


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _stage(module: str) -> int | None:
    for i, group in enumerate(STAGES):
        if any(module == g or module.startswith(g + ".") for g in group):
            return i
    return None


def _is_private(module: str) -> bool:
    return module.startswith("bottomup") and any(p.startswith("_") and not p.startswith("__")
                                                 for p in module.split("."))


def test_bottomup_never_imports_deep_or_torch():
    bad = []
    for f in _files("bottomup"):
        for mod, line in _imports(f):
            if mod.split(".")[0] in ("deep", "torch", "torchvision"):
                bad.append(f"{f.relative_to(ROOT)}:{line} imports {mod}")
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                    node.value.startswith("deep.") or node.value.startswith("deep:")):
                bad.append(f"{f.relative_to(ROOT)}:{node.lineno} names {node.value!r}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", ["deep", "bench"])
def test_no_private_bottomup_imports(package):
    bad = [f"{f.relative_to(ROOT)}:{line} imports {mod}"
           for f in _files(package) for mod, line in _imports(f) if _is_private(mod)]
    assert not bad, "\n".join(bad)


def test_bench_does_not_edit_sys_path():
    bad = []
    for f in _files("bench"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "path" and \
                    isinstance(node.value, ast.Name) and node.value.id == "sys":
                bad.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert not bad, "sys.path used in: " + ", ".join(bad)


def _graph() -> nx.DiGraph:
    modules = {_module_name(f): f for f in _files("bottomup")}
    g = nx.DiGraph()
    g.add_nodes_from(modules)
    for name, f in modules.items():
        for mod, line in _imports(f):
            # the longest prefix that is a module of the package (``from a.b import c`` names a.b.c)
            parts = mod.split(".")
            for k in range(len(parts), 0, -1):
                target = ".".join(parts[:k])
                if target in modules:
                    if target != name and not name.startswith(target + "."):  # a package's own __init__
                        g.add_edge(name, target, line=line)
                    break
    return g


def test_no_import_circle():
    g = _graph()
    # a package __init__ re-exporting its submodules is not a circle: collapse each module onto
    # itself but drop the edges from a submodule to its own package's __init__
    cycles = list(nx.simple_cycles(g))
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c + [c[0]]) for c in cycles[:5])


def test_no_stage_imports_a_later_one():
    g = _graph()
    bad = []
    for a, b, data in g.edges(data=True):
        sa, sb = _stage(a), _stage(b)
        if sa is not None and sb is not None and sb > sa:
            bad.append(f"{a}:{data['line']} imports {b} (stage {sb} > {sa})")
    assert not bad, "\n".join(bad)


def test_the_scan_sees_a_violation(tmp_path):
    """The scanner itself: a module that imports deep inside a function is found."""
    f = ROOT / "bottomup" / "_probe_for_test.py"
    try:
        f.write_text("def f():\n    from deep.contours import LearnedContours\n")
        assert ("deep.contours", 2) in _imports(f)
        assert ("deep.contours.LearnedContours", 2) in _imports(f)
    finally:
        f.unlink()
    assert _is_private("bottomup._validate") and _is_private("bottomup.owt._kernels")
    assert not _is_private("bottomup.validate") and not _is_private("bottomup.owt.__init__")
