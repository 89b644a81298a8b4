"""Import a script of ``bench/`` as a module, for the tests of its functions.

The bench scripts are not a package (each runs as ``python bench/NAME.py``), so the tests load
them by path. :func:`load_bench` loads each script once per test session, as module
``bench_NAME`` (shared by every test file that asks for it).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_bench(name: str):
    """The module of ``bench/<name>.py`` (loaded on the first call, then reused)."""
    key = f"bench_{name}"
    if key not in sys.modules:
        path = BENCH / f"{name}.py"
        if not path.is_file():
            raise FileNotFoundError(f"no bench script {path}")
        spec = importlib.util.spec_from_file_location(key, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[key] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            del sys.modules[key]
            raise
    return sys.modules[key]
