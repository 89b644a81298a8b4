"""Fixtures for the dense CRF tests: the torch device comes from ``$DEEP_DEVICE`` (default cpu)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

# tests/crf/naive.py, registered under a name that cannot clash with other test folders' naive.py
_spec = importlib.util.spec_from_file_location("crf_naive", Path(__file__).parent / "naive.py")
crf_naive = importlib.util.module_from_spec(_spec)
sys.modules["crf_naive"] = crf_naive
_spec.loader.exec_module(crf_naive)


@pytest.fixture(scope="session")
def device():
    """Torch device for the torch-path tests: ``$DEEP_DEVICE`` or cpu; skips if unavailable."""
    torch = pytest.importorskip("torch")
    name = os.environ.get("DEEP_DEVICE", "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"DEEP_DEVICE={name} but CUDA is not available")
    return torch.device(name)
