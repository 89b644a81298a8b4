"""Shared helpers for the deep tests (kornia BaseTester style)."""

from __future__ import annotations

import torch


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
