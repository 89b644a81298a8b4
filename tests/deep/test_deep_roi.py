"""RoIAlign / RoIPool against a naive loop (tests/deep/naive.py), torchvision when importable."""

from __future__ import annotations

import pytest
import torch
from deep_testing import assert_close, gradcheck, naive, torchvision_ops

from deep import ShapeError
from deep.ops import RoIAlign, RoIPool, boxes_to_rois, masks_to_boxes, roi_align, roi_pool


def _inputs(seed, n=2, c=3, h=9, w=11, k=12, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, h, w, generator=g, dtype=dtype)
    b = torch.randint(0, n, (k, 1), generator=g).to(dtype)
    xy = torch.rand(k, 2, generator=g, dtype=dtype) * (w + 4) - 2
    wh = torch.rand(k, 2, generator=g, dtype=dtype) * 8
    return x, torch.cat([b, xy, xy + wh], dim=1)


class TestRoIAlign:
    def test_smoke(self, device, dtype):
        x, rois = _inputs(0, dtype=dtype)
        out = roi_align(x.to(device), rois.to(device), 3)
        assert out.device.type == device.type and out.dtype == dtype

    @pytest.mark.parametrize("output_size", [(1, 1), (2, 3), (5, 4)])
    @pytest.mark.parametrize("spatial_scale", [1.0, 0.5, 0.25])
    @pytest.mark.parametrize("sampling_ratio", [-1, 1, 2, 3])
    @pytest.mark.parametrize("aligned", [False, True])
    def test_feature_vs_naive(self, device, output_size, spatial_scale, sampling_ratio, aligned):
        x, rois = _inputs(1)
        out = roi_align(
            x.to(device), rois.to(device), output_size, spatial_scale, sampling_ratio, aligned
        )
        ref = naive.roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned)
        assert_close(out, ref, rtol=0, atol=1e-6)

    def test_feature_dtype(self, device, dtype, tol):
        x, rois = _inputs(2, dtype=dtype)
        out = roi_align(x.to(device), rois.to(device), (3, 3), 0.5, -1, True)
        ref = naive.roi_align(x, rois, (3, 3), 0.5, -1, True)
        assert_close(out, ref, tol=tol)

    def test_hand_computed(self, device):
        # one 2x2 bin over a 4x4 ramp, 1 sample in its centre (1, 1): value 1*4 + 1 = 5
        x = torch.arange(16.0).view(1, 1, 4, 4).to(device)
        out = roi_align(
            x, torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]], device=device), 1, sampling_ratio=1
        )
        assert out.item() == 5.0
        # aligned=True shifts by half a pixel: the sample sits at (0.5, 0.5) -> 2.5
        out = roi_align(
            x,
            torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]], device=device),
            1,
            sampling_ratio=1,
            aligned=True,
        )
        assert out.item() == 2.5

    def test_cardinality_and_list_boxes(self, device):
        x, _ = _inputs(3)
        b0 = torch.tensor([[0.0, 0.0, 4.0, 4.0], [1.0, 2.0, 6.0, 8.0]])
        b1 = torch.tensor([[2.0, 1.0, 9.0, 5.0]])
        out_list = roi_align(x.to(device), [b0.to(device), b1.to(device)], (2, 3))
        rois = boxes_to_rois([b0, b1], torch.float64, torch.device("cpu"))
        assert rois[:, 0].tolist() == [0.0, 0.0, 1.0]
        out = roi_align(x.to(device), rois.to(device), (2, 3))
        assert out_list.shape == (3, 3, 2, 3)
        assert_close(out_list, out, rtol=0, atol=0)

    def test_empty_boxes(self, device):
        x, _ = _inputs(4)
        x = x.to(device)
        assert roi_align(x, torch.zeros((0, 5), device=device), (2, 2)).shape == (0, 3, 2, 2)
        assert roi_align(x, [torch.zeros((0, 4))], 2).shape == (0, 3, 2, 2)
        assert roi_align(x, [], 2).shape == (0, 3, 2, 2)

    def test_outside_image_gives_zeros(self, device):
        x, _ = _inputs(5)
        far = torch.tensor([[0.0, 50.0, 50.0, 60.0, 60.0], [1.0, -30.0, -30.0, -20.0, -20.0]])
        assert roi_align(x.to(device), far.to(device), 2).abs().max().item() == 0.0

    def test_exception(self, device):
        x, rois = _inputs(6)
        x, rois = x.to(device), rois.to(device)
        with pytest.raises(ShapeError, match=r"`input` must have shape \[N, C, H, W\]"):
            roi_align(x[0], rois, 2)
        with pytest.raises(ShapeError, match=r"`boxes` must have shape \[K, 5\]"):
            roi_align(x, rois[:, 1:], 2)
        with pytest.raises(TypeError, match="floating-point"):
            roi_align(x.to(torch.int64), rois, 2)
        with pytest.raises(ValueError, match="batch index"):
            roi_align(x, torch.tensor([[2.0, 0, 0, 1, 1]], device=device), 2)
        with pytest.raises(ValueError, match="x1 <= x2"):
            roi_align(x, torch.tensor([[0.0, 3, 0, 1, 1]], device=device), 2)
        with pytest.raises(ValueError, match="finite"):
            roi_align(x, torch.tensor([[0.0, float("nan"), 0, 1, 1]], device=device), 2)
        with pytest.raises(ValueError, match="output_size"):
            roi_align(x, rois, (0, 2))
        with pytest.raises(TypeError, match="boxes"):
            roi_align(x, "boxes", 2)
        with pytest.raises(ValueError, match="H, W >= 1"):
            roi_align(x[..., :0], rois, 2)

    def test_gradcheck(self, device):
        x, rois = _inputs(7, n=1, c=2, h=5, w=6, k=3)
        rois[:, 0] = 0
        assert gradcheck(
            lambda t: roi_align(t, rois.to(device), (2, 2), 1.0, 2, True), x.to(device)
        )

    @pytest.mark.parametrize("seed", range(10))
    def test_backward_vs_naive_grad(self, device, seed):
        """Gradient w.r.t. input equals the naive op's (the adjoint of a linear map)."""
        x, rois = _inputs(seed, n=2, c=2, h=6, w=7, k=4)
        xn = x.transpose(2, 3).contiguous().transpose(2, 3).to(device)  # non-contiguous input
        assert not xn.is_contiguous()
        xn.requires_grad_(True)
        g = torch.rand(
            4, 2, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
        )
        roi_align(xn, rois.to(device), (2, 3), 1.0, -1, False).backward(g.to(device))
        # naive is linear in x: its gradient is sum_k g_k * d out_k / d x, computed by probing
        ref = torch.zeros_like(x)
        for i in range(x.numel()):
            e = torch.zeros(x.numel(), dtype=torch.float64)
            e[i] = 1.0
            ref.view(-1)[i] = (naive.roi_align(e.view_as(x), rois, (2, 3)) * g).sum()
        assert_close(xn.grad, ref, rtol=0, atol=1e-10)

    def test_module(self, device):
        x, rois = _inputs(8)
        m = RoIAlign((2, 3), 0.5, 2, True)
        assert "aligned=True" in repr(m)
        assert_close(
            m(x.to(device), rois.to(device)),
            roi_align(x.to(device), rois.to(device), (2, 3), 0.5, 2, True),
            rtol=0,
            atol=0,
        )

    def test_torchvision_oracle(self, device):
        tv_ops = torchvision_ops()
        x, rois = _inputs(9)
        for aligned in (False, True):
            ref = tv_ops.roi_align(x, rois, (3, 2), 0.5, -1, aligned)
            assert_close(
                roi_align(x.to(device), rois.to(device), (3, 2), 0.5, -1, aligned),
                ref,
                rtol=0,
                atol=1e-6,
            )


class TestRoIPool:
    def test_smoke(self, device, dtype):
        x, rois = _inputs(0, dtype=dtype)
        out = roi_pool(x.to(device), rois.to(device), 3)
        assert out.shape == (12, 3, 3, 3) and out.dtype == dtype

    @pytest.mark.parametrize("output_size", [(1, 1), (2, 3), (4, 4)])
    @pytest.mark.parametrize("spatial_scale", [1.0, 0.5, 0.3])
    def test_feature_vs_naive(self, device, dtype, output_size, spatial_scale):
        x, rois = _inputs(1, dtype=dtype)
        out = roi_pool(x.to(device), rois.to(device), output_size, spatial_scale)
        ref = naive.roi_pool(x, rois, output_size, spatial_scale)
        assert_close(out, ref, rtol=0, atol=1e-6)

    def test_round_half_away_from_zero(self, device):
        # 2.5 rounds to 3 in C (torch.round would give 2): the RoI starts at column 3
        x = torch.arange(8.0).view(1, 1, 1, 8).to(device)
        out = roi_pool(x, torch.tensor([[0.0, 2.5, 0.0, 3.4, 0.0]], device=device), 1)
        assert out.item() == 3.0
        ref = naive.roi_pool(x.cpu(), torch.tensor([[0.0, 2.5, 0.0, 3.4, 0.0]]), (1, 1))
        assert ref.item() == 3.0

    def test_hand_computed(self, device):
        x = torch.arange(16.0).view(1, 1, 4, 4).to(device)
        out = roi_pool(x, torch.tensor([[0.0, 0.0, 0.0, 3.0, 3.0]], device=device), 2)
        assert out.cpu().view(-1).tolist() == [5.0, 7.0, 13.0, 15.0]

    def test_empty_and_outside(self, device):
        x, _ = _inputs(2)
        x = x.to(device)
        assert roi_pool(x, torch.zeros((0, 5), device=device), (2, 2)).shape == (0, 3, 2, 2)
        far = torch.tensor([[0.0, 50.0, 50.0, 60.0, 60.0]], device=device)
        assert roi_pool(x, far, 2).abs().max().item() == 0.0

    def test_exception(self, device):
        x, rois = _inputs(3)
        with pytest.raises(ShapeError):
            roi_pool(x.to(device)[None], rois.to(device), 2)
        with pytest.raises(ValueError, match="batch index"):
            roi_pool(x.to(device), torch.tensor([[-1.0, 0, 0, 1, 1]], device=device), 2)

    def test_gradcheck(self, device):
        x, rois = _inputs(4, n=1, c=2, h=5, w=6, k=3)
        rois[:, 0] = 0
        assert gradcheck(lambda t: roi_pool(t, rois.to(device), (2, 2)), x.to(device))

    @pytest.mark.parametrize("seed", range(10))
    def test_backward_seeds_non_contiguous(self, device, seed):
        x, rois = _inputs(seed, n=2, c=2, h=6, w=7, k=4)
        xn = x.transpose(2, 3).contiguous().transpose(2, 3).to(device)
        assert not xn.is_contiguous()
        assert gradcheck(lambda t: roi_pool(t, rois.to(device), (2, 3), 0.5), xn)

    def test_chunking(self, device, monkeypatch):
        import deep.ops.roi as roi_mod

        x, rois = _inputs(5)
        full = roi_pool(x.to(device), rois.to(device), (2, 2))
        monkeypatch.setattr(roi_mod, "_POOL_CHUNK", 2)
        assert_close(roi_pool(x.to(device), rois.to(device), (2, 2)), full, rtol=0, atol=0)

    def test_module(self, device):
        x, rois = _inputs(6)
        assert_close(
            RoIPool(3, 0.5)(x.to(device), rois.to(device)),
            roi_pool(x.to(device), rois.to(device), 3, 0.5),
            rtol=0,
            atol=0,
        )

    def test_torchvision_oracle(self, device):
        tv_ops = torchvision_ops()
        x, rois = _inputs(7)
        assert_close(
            roi_pool(x.to(device), rois.to(device), (3, 2), 0.5),
            tv_ops.roi_pool(x, rois, (3, 2), 0.5),
            rtol=0,
            atol=1e-6,
        )


class TestMasksToBoxes:
    def test_feature_vs_numpy(self, device):
        import numpy as np

        g = torch.Generator().manual_seed(0)
        masks = torch.rand(6, 9, 13, generator=g) > 0.8
        masks[0] = False
        masks[0, 4, 7] = True
        boxes = masks_to_boxes(masks.to(device))
        for m, b in zip(masks.numpy(), boxes.cpu().numpy(), strict=True):
            rr, cc = np.nonzero(m)
            assert b.tolist() == [cc.min(), rr.min(), cc.max(), rr.max()]
        assert boxes[0].tolist() == [7.0, 4.0, 7.0, 4.0]
        from bottomup.masks import masks_to_boxes as np_masks_to_boxes

        np.testing.assert_array_equal(boxes.cpu().numpy(), np_masks_to_boxes(masks.numpy()))  # one convention

    def test_empty(self, device):
        assert masks_to_boxes(torch.zeros(0, 4, 4, dtype=torch.bool).to(device)).shape == (0, 4)
        m = torch.zeros(2, 4, 4, dtype=torch.bool).to(device)
        m[0, 1, 1] = True
        with pytest.raises(ValueError, match=r"\[1\] are empty"):
            masks_to_boxes(m)
        with pytest.raises(ShapeError):
            masks_to_boxes(m[0])

    def test_torchvision_oracle(self, device):
        tv_ops = torchvision_ops()
        masks = torch.rand(5, 8, 11, generator=torch.Generator().manual_seed(1)) > 0.7
        assert_close(masks_to_boxes(masks.to(device)), tv_ops.masks_to_boxes(masks), rtol=0, atol=0)
