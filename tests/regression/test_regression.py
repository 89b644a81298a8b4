"""Regression tier: the figures users rely on, recomputed on pinned val subsets (``pytest -m regression``).

Each group of ``bench/pin_figures.py`` (the default ``segment()`` and ``segment(contours="learned")``
under the BSDS benchmark, SCG/MCG proposals with gPb and learned contours, ``deep.segment`` with
the shipped weights and its CRF pass on MSRC) must reproduce ``pins.json`` within the tolerances
that script states (1e-3 on figures in [0, 1]: a regression of .005 ODS or .01 mIoU fails).
Without data it skips, except under ``CI=true``, where it fails (``tests/conftest.py``).
When a deliberate change moves a figure, regenerate the pins with ``bench/pin_figures.py`` and say
why in the commit.
"""

from __future__ import annotations

import json

import pytest
from bench_scripts import load_bench

pytestmark = pytest.mark.regression

pin_figures = load_bench("pin_figures")

PINS = json.loads(pin_figures.PINS.read_text())


#: the deep pass and its CRF are computed once for both groups
_DEEP: dict = {}


@pytest.fixture
def data_root_dir(bsds_root, msrc_root):
    """``$BOTTOMUP_DATA`` holding both data sets (skips, or fails under CI, when absent)."""
    return bsds_root.parent


@pytest.mark.parametrize("group", pin_figures.GROUPS)
def test_figures_hold(group, data_root_dir):
    if group in pin_figures.TORCH_GROUPS:
        pytest.importorskip("torch")
    if group in ("msrc/deep", "msrc/deep_crf"):
        if not _DEEP:
            _DEEP.update(pin_figures.compute(["msrc/deep", "msrc/deep_crf"], data_root_dir)[0])
        figures = _DEEP[group]
    else:
        figures = pin_figures.compute([group], data_root_dir)[0][group]
    moved = pin_figures.compare(PINS["groups"][group], figures)
    assert not moved, (
        f"{group}: figures moved beyond their tolerance:\n  " + "\n  ".join(moved)
        + "\nIf the change is deliberate, rerun bench/pin_figures.py --only "
        f"'{group}' and say why in the commit."
    )
