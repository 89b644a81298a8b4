"""``bottomup.io.cache_key``: the one rule for cache keys (parameters, file contents, code version)."""

from __future__ import annotations

import numpy as np
import pytest

from bottomup.io import cache as cache_mod
from bottomup.io import cache_key, code_version, file_digest


def test_file_digest_is_sha1_of_the_content(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"")
    assert file_digest(p) == "da39a3ee5e6b4b0d3255bfef95601890afd80709"  # sha1 of nothing
    p.write_bytes(b"abc" * 1000)
    import hashlib

    assert file_digest(p) == hashlib.sha1(b"abc" * 1000).hexdigest()
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        file_digest(tmp_path / "nope.bin")


def test_each_ingredient_changes_the_key(tmp_path, monkeypatch):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    a.write_bytes(b"model 1")
    b.write_bytes(b"ground truth")
    base = dict(params={"n": 1000, "preset": "scg", "owt": None}, files=[a, b], code=["bottomup.io"])
    k = cache_key("stage", **base)
    assert len(k) == 24 and int(k, 16) >= 0
    # unchanged ingredients: the same key (a hit), whatever the order of the params
    assert cache_key("stage", params={"owt": None, "preset": "scg", "n": 1000}, files=[a, b],
                     code=["bottomup.io"]) == k
    changed = [
        cache_key("other-stage", **base),
        cache_key("stage", **{**base, "params": {"n": 2000, "preset": "scg", "owt": None}}),
        cache_key("stage", **{**base, "params": {"n": 1000, "preset": "scg"}}),  # None counts
        cache_key("stage", **{**base, "files": [b, a]}),  # roles of the files
        cache_key("stage", **{**base, "files": [a]}),
        cache_key("stage", **{**base, "code": ["bottomup.metrics"]}),
        cache_key("stage", **{**base, "code": []}),
    ]
    assert k not in changed and len(set(changed)) == len(changed)
    # the content of a file, not its name or time, is what counts
    a.write_bytes(b"model 2")
    assert cache_key("stage", **base) != k
    a.write_bytes(b"model 1")
    assert cache_key("stage", **base) == k
    # and the code version
    monkeypatch.setattr(cache_mod, "code_version", lambda *m: "edited")
    assert cache_key("stage", **base) != k


def test_params_normalisation_and_errors():
    assert cache_key("s", params={"q": (1, 2)}) == cache_key("s", params={"q": [1, 2]})
    assert cache_key("s", params={"t": np.float64(0.5)}) == cache_key("s", params={"t": 0.5})
    assert cache_key("s", params={"t": 0.5}) != cache_key("s", params={"t": 0.50001})
    with pytest.raises(TypeError, match="`params` must be JSON-serialisable.*ndarray"):
        cache_key("s", params={"a": np.zeros(3)})
    with pytest.raises(TypeError, match="`params` must be a mapping"):
        cache_key("s", params=[1, 2])
    with pytest.raises(TypeError, match="`stage`"):
        cache_key("", params={})
    with pytest.raises(ValueError, match="no importable module or package named 'bottomup.nothing'"):
        code_version("bottomup.nothing")


def test_code_version_follows_the_sources(tmp_path, monkeypatch):
    pkg = tmp_path / "cachekey_demo_pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "stage.py").write_text("X = 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))

    def version(*names):
        cache_mod._code_version.cache_clear()
        return code_version(*names)

    v0 = version("cachekey_demo_pkg")
    assert v0 == version("cachekey_demo_pkg")
    assert version("cachekey_demo_pkg.stage") != v0  # one module is not the package
    (pkg / "stage.py").write_text("X = 2\n")  # an edit
    v1 = version("cachekey_demo_pkg")
    assert v1 != v0
    (pkg / "sub" / "kernels.py").write_text("")  # a new file in a subpackage
    v2 = version("cachekey_demo_pkg")
    assert v2 not in (v0, v1)
    (pkg / "sub" / "kernels.py").unlink()
    assert version("cachekey_demo_pkg") == v1
    assert version("cachekey_demo_pkg", "cachekey_demo_pkg") == v1  # names are a set
