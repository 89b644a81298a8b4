"""Shared fixtures: where the research data lives, and what happens when it does not.

Without data a test that needs it skips, except in the real-data tiers (tests marked ``slow`` or
``regression``) when ``$CI`` is set (``CI=true``, as CI services set it): there it fails, so that
a CI run whose data went missing cannot pass by skipping every real-data test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The naive reference implementations (tests/naive*.py) import as top-level modules too.
sys.path.insert(0, str(Path(__file__).parent))

#: Markers of the tiers that must not skip for want of data under CI.
REAL_DATA_TIERS = ("slow", "regression")


def data_root() -> Path | None:
    """Return ``$BOTTOMUP_DATA`` as a Path when it points to an existing folder, else None."""
    root = os.environ.get("BOTTOMUP_DATA")
    if not root:
        return None
    path = Path(root)
    return path if path.is_dir() else None


def in_ci() -> bool:
    """True when ``$CI`` is set to anything but empty, ``0``, ``false`` or ``no``."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def data_absent(request, reason: str):
    """Skip the requesting test, or fail it when it is in a real-data tier and ``$CI`` is set."""
    tiers = [m for m in REAL_DATA_TIERS if request.node.get_closest_marker(m) is not None]
    if tiers and in_ci():
        pytest.fail(f"{reason} (CI is set and this is a {'/'.join(tiers)} test: real-data tests "
                    f"must not skip in CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def bsds_root(request) -> Path:
    """The BSDS500 folder of ``$BOTTOMUP_DATA``; skips the test when absent (fails: see module)."""
    root = data_root()
    if root is None or not (root / "bsds500").is_dir():
        data_absent(request, "BSDS500 data not found: set BOTTOMUP_DATA to the folder holding bsds500/")
    return root / "bsds500"


@pytest.fixture
def msrc_root(request) -> Path:
    """The MSRC-v2 folder of ``$BOTTOMUP_DATA``; skips the test when absent (fails: see module)."""
    root = data_root()
    if root is None or not (root / "msrc").is_dir():
        data_absent(request, "MSRC data not found: set BOTTOMUP_DATA to the folder holding msrc/")
    return root / "msrc"


@pytest.fixture
def reference_dir(request) -> Path:
    """``../shared/reference`` beside the data folder; skips when absent (fails: see module)."""
    root = data_root()
    ref = None if root is None else (root.parent / "reference")
    if ref is None or not ref.is_dir():
        data_absent(request, "reference figures not found beside BOTTOMUP_DATA (../reference)")
    return ref
