"""Property tests (hypothesis): RoIAlign / RoIPool equal the naive loops on random small cases."""

from __future__ import annotations

import pytest
import torch
from deep_testing import assert_close, naive

from deep.ops import roi_align, roi_pool

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@st.composite
def _roi_case(draw):
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    k = draw(st.integers(0, 4))
    coords = st.floats(-3.0, 12.0, allow_nan=False, width=32)
    rois = []
    for _ in range(k):
        x1, x2 = sorted((draw(coords), draw(coords)))
        y1, y2 = sorted((draw(coords), draw(coords)))
        rois.append([0.0, x1, y1, x2, y2])
    out = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    scale = draw(st.sampled_from([1.0, 0.5, 0.25, 2.0]))
    return h, w, torch.tensor(rois, dtype=torch.float64).view(-1, 5), out, scale


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(case=_roi_case(), sampling_ratio=st.integers(-1, 3), aligned=st.booleans())
def test_property_roi_align_equals_naive(case, sampling_ratio, aligned):
    h, w, rois, out, scale = case
    x = torch.rand(1, 2, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(h * w))
    got = roi_align(x, rois, out, scale, sampling_ratio, aligned)
    assert got.shape == (rois.shape[0], 2) + out
    assert_close(
        got, naive.roi_align(x, rois, out, scale, sampling_ratio, aligned), rtol=0, atol=1e-6
    )


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(case=_roi_case())
def test_property_roi_pool_equals_naive(case):
    h, w, rois, out, scale = case
    x = torch.randn(1, 2, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(h + w))
    got = roi_pool(x, rois, out, scale)
    assert_close(got, naive.roi_pool(x, rois, out, scale), rtol=0, atol=1e-6)
