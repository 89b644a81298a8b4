"""Shared fixtures: where the research data lives, and skips when it does not."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The naive reference implementations (tests/naive*.py) import as top-level modules too.
sys.path.insert(0, str(Path(__file__).parent))


def data_root() -> Path | None:
    """Return ``$BOTTOMUP_DATA`` as a Path when it points to an existing folder, else None."""
    root = os.environ.get("BOTTOMUP_DATA")
    if not root:
        return None
    path = Path(root)
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def bsds_root() -> Path:
    """The BSDS500 folder of ``$BOTTOMUP_DATA``; skips the test when absent."""
    root = data_root()
    if root is None or not (root / "bsds500").is_dir():
        pytest.skip("BSDS500 data not found: set BOTTOMUP_DATA to the folder holding bsds500/")
    return root / "bsds500"


@pytest.fixture(scope="session")
def msrc_root() -> Path:
    """The MSRC-v2 folder of ``$BOTTOMUP_DATA``; skips the test when absent."""
    root = data_root()
    if root is None or not (root / "msrc").is_dir():
        pytest.skip("MSRC data not found: set BOTTOMUP_DATA to the folder holding msrc/")
    return root / "msrc"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference`` beside the data folder; skips when absent."""
    root = data_root()
    ref = None if root is None else (root.parent / "reference")
    if ref is None or not ref.is_dir():
        pytest.skip("reference figures not found beside BOTTOMUP_DATA (../reference)")
    return ref
