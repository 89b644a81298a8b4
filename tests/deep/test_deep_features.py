"""Hypercolumns: dense map, point sampling and region pooling agree with each other."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from deep_testing import assert_close, gradcheck

from deep.backbone import efficientnet_lite0
from deep.features import Hypercolumns, hypercolumns, pool_hypercolumns, sample_hypercolumns


def _features(dtype=torch.float64, n=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(n, 2, 12, 15, generator=g, dtype=dtype),
        torch.randn(n, 3, 6, 8, generator=g, dtype=dtype),
        torch.randn(n, 4, 3, 4, generator=g, dtype=dtype),
        torch.randn(n, 5, 1, 1, generator=g, dtype=dtype),
    ]


def test_dense_is_upsample_and_concat(device, dtype, tol):
    feats = [f.to(device) for f in _features(dtype, n=2)]
    hc = hypercolumns(feats, (24, 30))
    assert hc.shape == (2, 14, 24, 30)
    assert_close(hc[:, 2:5], F.interpolate(feats[1], size=(24, 30), mode="bilinear"), tol=tol)
    # a 1x1 map (an fc layer) is replicated over the image
    assert_close(hc[:, 9:], feats[3].expand(-1, -1, 24, 30), tol=tol)
    assert_close(
        hypercolumns({4: feats[0], 8: feats[1], 16: feats[2], 32: feats[3]}, (24, 30)),
        hc,
        rtol=0,
        atol=0,
    )


def test_sample_equals_dense(device):
    feats = [f.to(device) for f in _features(n=2)]
    size = (23, 31)
    hc = hypercolumns(feats, size)
    g = torch.Generator().manual_seed(1)
    pts = torch.stack(
        [
            torch.randint(0, size[0], (40,), generator=g),
            torch.randint(0, size[1], (40,), generator=g),
        ],
        dim=1,
    )
    pts = torch.cat([pts, torch.tensor([[0, 0], [size[0] - 1, size[1] - 1]])])
    out = sample_hypercolumns(feats, pts.to(device), size)
    assert out.shape == (2, 42, 14)
    assert_close(out, hc[:, :, pts[:, 0], pts[:, 1]].transpose(1, 2), rtol=0, atol=1e-12)


def test_pool_equals_dense_mean(device):
    feats = [f.to(device) for f in _features()]
    size = (20, 26)
    hc = hypercolumns(feats, size)[0]
    g = torch.Generator().manual_seed(2)
    masks = torch.rand(5, *size, generator=g) > 0.6
    masks[3] = False  # empty region
    masks[4] = False
    masks[4, 7:12, 3:20] = True
    pooled = pool_hypercolumns(feats, masks.to(device))
    assert pooled.shape == (5, 14)
    for k in range(5):
        m = masks[k].to(device)
        ref = hc[:, m].mean(1) if m.any() else torch.zeros(14, dtype=hc.dtype, device=device)
        assert_close(pooled[k], ref, rtol=0, atol=1e-12)
    assert pool_hypercolumns(feats, torch.zeros(0, *size, dtype=torch.bool)).shape == (0, 14)
    with torch.inference_mode():
        assert_close(pool_hypercolumns(feats, masks.to(device)), pooled, rtol=0, atol=1e-12)
    # an odd, non-integer ratio of sizes (the interpolation matrix's clamping at both ends)
    hc2 = hypercolumns(feats, (7, 45))[0]
    m2 = torch.rand(3, 7, 45, generator=g) > 0.3
    ref2 = torch.stack([hc2[:, mk.to(device)].mean(1) for mk in m2])
    assert_close(pool_hypercolumns(feats, m2.to(device)), ref2, rtol=0, atol=1e-12)


def test_pool_gradcheck(device):
    feats = [f.to(device) for f in _features()][:2]
    masks = (torch.rand(3, 8, 9, generator=torch.Generator().manual_seed(3)) > 0.5).to(device)
    assert gradcheck(lambda a, b: pool_hypercolumns([a, b], masks), *feats)


def test_sample_gradcheck(device):
    feats = [f.to(device) for f in _features()][:2]
    pts = torch.tensor([[0.0, 0.0], [3.0, 5.0], [7.0, 8.0]]).to(device)
    assert gradcheck(lambda a, b: sample_hypercolumns([a, b], pts, (8, 9)), *feats)


def test_exception():
    feats = _features()
    with pytest.raises(TypeError, match="sequence"):
        hypercolumns(feats[0], (4, 4))
    with pytest.raises(ValueError, match="size"):
        hypercolumns(feats, (0, 4))
    with pytest.raises(ValueError, match="batch size"):
        hypercolumns([feats[0], torch.zeros(2, 1, 3, 3, dtype=torch.float64)], (4, 4))
    with pytest.raises(ValueError, match="one image"):
        pool_hypercolumns(_features(n=2), torch.zeros(1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="points"):
        sample_hypercolumns(feats, torch.zeros(3, 3), (4, 4))


def test_module_on_lite0(device):
    torch.manual_seed(0)
    hc = Hypercolumns(efficientnet_lite0(pretrained=False)).to(device).eval()
    assert hc.channels == 24 + 40 + 112 + 320
    x = torch.rand(1, 3, 40, 56).to(device)
    with torch.no_grad():
        dense = hc(x)
        assert dense.shape == (1, hc.channels, 40, 56)
        assert hc(x, size=(20, 28)).shape == (1, hc.channels, 20, 28)
        pts = torch.tensor([[0, 0], [10, 33], [39, 55]], device=device)
        assert_close(
            hc.sample(x, pts)[0], dense[0, :, pts[:, 0], pts[:, 1]].T, rtol=1e-5, atol=1e-5
        )
        masks = torch.zeros(2, 40, 56, dtype=torch.bool, device=device)
        masks[0, :10] = True
        masks[1, 5:30, 20:50] = True
        assert_close(
            hc.pool(x, masks),
            torch.stack([dense[0][:, m].mean(1) for m in masks]),
            rtol=1e-5,
            atol=1e-5,
        )
    with pytest.raises(ValueError, match="levels"):
        Hypercolumns(efficientnet_lite0(pretrained=False), levels=(3,))
