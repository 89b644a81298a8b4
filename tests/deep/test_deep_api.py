"""Public API: explicit exports, and every documented signature matches its ``Parameters``."""

from __future__ import annotations

import inspect
import re

import pytest

import deep

_PUBLIC = sorted(
    name
    for name in deep.__all__
    if inspect.isfunction(getattr(deep, name)) or inspect.isclass(getattr(deep, name))
)


def test_all_is_exported():
    for name in deep.__all__:
        assert hasattr(deep, name), name
    assert {"roi_align", "RoIAlign", "efficientnet_lite0", "Hypercolumns"} <= set(deep.__all__)
    assert deep.backbone.efficientnet_lite0 is deep.efficientnet_lite0
    assert deep.features.Hypercolumns is deep.Hypercolumns


def _documented_parameters(doc: str) -> list[str]:
    m = re.search(
        r"\n\s*Parameters\n\s*-{3,}\n(.*?)(\n\s*\n\s*[A-Z][A-Za-z ]+\n\s*-{3,}|\Z)", doc, re.S
    )
    if not m:
        return []
    names = []
    for line in m.group(1).splitlines():
        if line.startswith("Shape:"):  # kornia-style shape note closes the section
            break
        hit = re.match(r"^(\*{0,2}[A-Za-z_][\w, ]*?)\s*(:|$)", line)
        if hit:
            names += [n.strip().lstrip("*") for n in hit.group(1).split(",")]
    return names


@pytest.mark.parametrize("name", _PUBLIC)
def test_signature_matches_docstring(name):
    """Like stumpy's ``docstring.py``: documented names equal the signature's, in order."""
    obj = getattr(deep, name)
    doc = inspect.getdoc(obj) or ""
    documented = _documented_parameters("\n" + doc)
    target = obj.__init__ if inspect.isclass(obj) else obj
    params = [p for p in inspect.signature(target).parameters if p not in ("self", "cls")]
    if name in ("LayerRF", "ShapeError", "MaxUnpool"):
        pytest.skip(f"{name} takes no documented parameters (dataclass / exception / stateless)")
    assert documented == params, f"{name}: documented {documented}, signature {params}"


@pytest.mark.parametrize("name", [n for n in _PUBLIC if inspect.isfunction(getattr(deep, n))])
def test_functions_have_docstrings_with_shapes_or_returns(name):
    doc = inspect.getdoc(getattr(deep, name)) or ""
    assert doc.splitlines()[0].strip(), name
