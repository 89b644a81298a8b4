"""Keys of on-disk result caches: one rule for every cache of the package and of ``bench/``.

A cached result may be reused only if nothing it depends on has changed. :func:`cache_key` hashes
the three kinds of things a result depends on:

- ``params``: every parameter of the computation (a JSON-serialisable mapping);
- ``files``: the *content* of every file read (the input image or prediction, the ground truth,
  and the shipped model, ranker or arc-scorer file used), so a retrained model or an edited input
  is a miss, while moving the data is not;
- ``code``: the version of the code of the stage, which is the hash of the source files of the
  named packages or modules (:func:`code_version`).

The code version is a hash of the sources rather than a hand-bumped ``STAGE_VERSION`` constant:
a constant has to be remembered at every change of the stage or of anything it calls, and one
forgotten bump makes a cache serve results of old code without a sign. The price is that
any edit of the named sources, a comment included, invalidates the entries, which costs one
recomputation and is never wrong. Stages name whole packages (``"bottomup"``, ``"deep"``) unless a
narrower set is certain to hold everything the result depends on.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["cache_key", "code_version", "file_digest"]


def file_digest(path, algorithm: str = "sha1") -> str:
    """Digest of a file's content (hex), read anew at every call.

    Parameters
    ----------
    path : path-like
    algorithm : str
        A :mod:`hashlib` name: ``"sha1"`` for cache keys, ``"sha256"`` for the provenance records
        of folder jobs.

    Returns
    -------
    digest : str
        40 hex digits for SHA-1, 64 for SHA-256.

    Raises
    ------
    FileNotFoundError
        Naming the file, if it does not exist.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_bytes(b"abc")
    >>> file_digest(p)
    'a9993e364706816aba3e25717850c26c9cd0d89d'
    """
    p = Path(path)
    h = hashlib.new(algorithm)
    try:
        # read every time: a memo keyed by (mtime, size) would miss a same-size rewrite within
        # one tick of the file system's coarse clock
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        raise FileNotFoundError(f"cache key: file not found: {p}") from None
    return h.hexdigest()


def _source_files(module: str) -> list[Path]:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"`code`: no importable module or package named {module!r}")
    if spec.submodule_search_locations:  # a package: every .py file below it
        files = []
        for loc in spec.submodule_search_locations:
            files += [p for p in Path(loc).rglob("*.py") if "__pycache__" not in p.parts]
        return sorted(files)
    return [Path(spec.origin)]


def code_version(*modules: str) -> str:
    """Hash of the source files of packages or modules, by name (``"bottomup"``, ``"deep.contours"``).

    A package contributes every ``.py`` file below it (with its path relative to the package),
    a module its own file. The hash is computed once per process (sources do not change under a
    running program).

    Parameters
    ----------
    *modules : str
        Importable names; their parent packages are imported to find them.

    Returns
    -------
    version : str
        40 hex digits.

    Raises
    ------
    ValueError
        If a name is not importable.

    Examples
    --------
    >>> code_version("bottomup.io") == code_version("bottomup.io")
    True
    >>> code_version("bottomup.io") != code_version("bottomup.metrics")
    True
    """
    return _code_version(tuple(sorted(set(modules))))


@functools.lru_cache(maxsize=64)
def _code_version(modules: tuple[str, ...]) -> str:
    h = hashlib.sha1()
    for m in modules:
        if not isinstance(m, str) or not m:
            raise TypeError(f"`code` must name modules as non-empty strings, got {m!r}")
        files = _source_files(m)
        base = files[0].parent if len(files) == 1 else Path(os.path.commonpath(files))
        h.update(f"module {m}\n".encode())
        for f in files:
            h.update(f"{f.relative_to(base).as_posix()}\n".encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _canonical(params) -> str:
    def default(o):
        if isinstance(o, (tuple, set, frozenset)):
            return sorted(o) if isinstance(o, (set, frozenset)) else list(o)
        if isinstance(o, os.PathLike):
            return os.fspath(o)
        if hasattr(o, "item") and getattr(o, "shape", None) == ():  # numpy scalars
            return o.item()
        raise TypeError(
            f"`params` must be JSON-serialisable (numbers, strings, lists, dicts), got "
            f"{type(o).__name__}: pass what identifies it (a name, a file in `files`)"
        )

    return json.dumps(params, sort_keys=True, default=default, separators=(",", ":"))


def cache_key(stage: str, *, params: Mapping | None = None, files: Iterable = (),
              code: Iterable[str] = ()) -> str:
    """Key of a cached result: stage, parameters, content of the files read, code version.

    Parameters
    ----------
    stage : str
        Name of the computation (``"bsds-eval"``, ``"hierarchy"`` ...): two stages never share keys.
    params : mapping, optional
        Every parameter the result depends on, JSON-serialisable (tuples become lists, the keys
        are sorted). ``None`` values count: ``{"owt": None}`` differs from ``{}``.
    files : iterable of path-like
        Files whose content the result depends on (inputs, shipped models, rankers); their order
        counts (input before ground truth is not ground truth before input).
    code : iterable of str
        Packages or modules whose source is the code of the stage (see :func:`code_version`).

    Returns
    -------
    key : str
        24 hex digits (96 bits), safe in a file name.

    Raises
    ------
    TypeError
        If ``params`` holds something that is not JSON-serialisable.
    FileNotFoundError
        If a file in ``files`` does not exist.

    Examples
    --------
    >>> a = cache_key("demo", params={"n": 1000, "preset": "scg"}, code=["bottomup.io"])
    >>> a == cache_key("demo", params={"preset": "scg", "n": 1000}, code=["bottomup.io"])
    True
    >>> a == cache_key("demo", params={"n": 2000, "preset": "scg"}, code=["bottomup.io"])
    False
    """
    if not isinstance(stage, str) or not stage:
        raise TypeError(f"`stage` must be a non-empty string, got {stage!r}")
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(f"`params` must be a mapping (dict) or None, got {type(params).__name__}")
    h = hashlib.sha1()
    h.update(f"stage {stage}\n".encode())
    h.update(f"params {_canonical(dict(params or {}))}\n".encode())
    for f in files:
        h.update(f"file {file_digest(f)}\n".encode())
    code = list(code)
    if code:
        h.update(f"code {code_version(*code)}\n".encode())
    return h.hexdigest()[:24]
