"""Shared helpers for the deep tests (kornia BaseTester style).

``naive`` is ``tests/deep/naive.py`` loaded under a private module name, so that it cannot clash
with another ``naive`` module of the test tree (``tests/naive.py`` for ``bottomup``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch


def _load_naive():
    name = "_deep_tests_naive"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("naive.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


naive = _load_naive()


def assert_close(actual, expected, rtol=None, atol=None, *, tol=None):
    """``torch.testing.assert_close`` after moving both to the CPU in float64."""
    if tol is not None:
        rtol, atol = tol
    torch.testing.assert_close(
        actual.detach().cpu().double(), expected.detach().cpu().double(), rtol=rtol, atol=atol
    )


def gradcheck(fn, *inputs, **kwargs) -> bool:
    """``torch.autograd.gradcheck`` with every float tensor input cast to float64.

    ``nondet_tol`` defaults to 1e-10: on CUDA the backward of gather, interpolate and grid_sample
    accumulates with atomics, so two backward passes may differ in the last bits."""
    kwargs.setdefault("nondet_tol", 1e-10)
    cast = [
        i.detach().double().requires_grad_(True)
        if isinstance(i, torch.Tensor) and i.is_floating_point()
        else i
        for i in inputs
    ]
    return torch.autograd.gradcheck(fn, cast, **kwargs)


def torchvision_ops():
    """``torchvision.ops`` as an optional oracle; skip when it is missing or does not import
    (PyPI torchvision fails beside some torch builds with errors other than ImportError)."""
    import pytest

    try:
        import torchvision.ops as ops
    except Exception as err:  # noqa: BLE001 - any import failure means "no oracle"
        pytest.skip(f"torchvision.ops unavailable: {type(err).__name__}: {err}")
    return ops
