"""Bilinear upsampling, bilinear-initialised deconvolution, max-unpooling, shift-and-stitch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from deep_testing import assert_close, gradcheck
from torch import nn

from deep import ShapeError
from deep.ops import (
    BilinearConvTranspose2d,
    BilinearUpsample,
    MaxUnpool,
    ShiftAndStitch,
    bilinear_conv_transpose2d,
    bilinear_kernel,
    bilinear_upsample,
    max_pool_with_indices,
    max_unpool,
    shift_and_stitch,
    stride_to_dilation,
)


class TestBilinear:
    def test_upsample_matches_interpolate(self, device, dtype, tol):
        x = torch.rand(2, 3, 5, 7, dtype=dtype).to(device)
        ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        assert_close(bilinear_upsample(x, 2), ref, tol=tol)
        assert_close(BilinearUpsample(size=(10, 14))(x), ref, tol=tol)
        assert BilinearUpsample(3, align_corners=True)(x).shape == (2, 3, 15, 21)

    def test_hand_computed(self, device):
        x = torch.tensor([[[[0.0, 4.0]]]]).to(device)
        # output pixel o samples (o + 1/2) / 2 - 1/2: -0.25 (clamped), 0.25, 0.75, 1.25 (clamped)
        assert bilinear_upsample(x, 2).cpu()[0, 0, 0].tolist() == [0.0, 1.0, 3.0, 4.0]

    def test_exception(self):
        with pytest.raises(ValueError, match="exactly one"):
            bilinear_upsample(torch.zeros(1, 1, 2, 2))
        with pytest.raises(ShapeError):
            bilinear_upsample(torch.zeros(1, 2, 2), 2)
        with pytest.raises(TypeError):
            bilinear_upsample(torch.zeros(1, 1, 2, 2, dtype=torch.int32), 2)


class TestBilinearKernel:
    def test_taps_factor_2(self):
        taps = bilinear_kernel(1, 2, dtype=torch.float64)[0, 0]
        assert_close(
            taps,
            torch.outer(
                torch.tensor([0.25, 0.75, 0.75, 0.25]), torch.tensor([0.25, 0.75, 0.75, 0.25])
            ).double(),
            rtol=0,
            atol=0,
        )

    def test_odd_factor_and_diagonal(self):
        w = bilinear_kernel(3, 3)
        assert w.shape == (3, 3, 5, 5)
        assert_close(w[0, 0, 2], torch.tensor([1 / 3, 2 / 3, 1.0, 2 / 3, 1 / 3]), rtol=0, atol=1e-7)
        assert w[0, 1].abs().sum() == 0 and w[2, 2].sum() > 0

    @pytest.mark.parametrize("factor", [2, 3, 4, 8])
    def test_deconv_equals_interpolate_in_interior(self, device, dtype, tol, factor):
        x = torch.rand(1, 2, 6, 7, dtype=dtype).to(device)
        w = bilinear_kernel(2, factor, dtype=dtype, device=device)
        y = bilinear_conv_transpose2d(x, w, factor)
        up = BilinearConvTranspose2d(2, factor, learnable=False).to(device)
        assert_close(
            up(x.float()),
            bilinear_conv_transpose2d(x.float(), bilinear_kernel(2, factor, device=device), factor),
            rtol=0,
            atol=1e-6,
        )
        ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
        assert y.shape == ref.shape == (1, 2, 6 * factor, 7 * factor)
        # interior: output pixels whose source coordinate (o + 1/2) / f - 1/2 lies in [0, n - 1]
        lo = next(o for o in range(factor) if (o + 0.5) / factor - 0.5 >= 0)
        hi_h = max(o for o in range(6 * factor) if (o + 0.5) / factor - 0.5 <= 5) + 1
        hi_w = max(o for o in range(7 * factor) if (o + 0.5) / factor - 0.5 <= 6) + 1
        assert_close(y[..., lo:hi_h, lo:hi_w], ref[..., lo:hi_h, lo:hi_w], tol=tol)
        assert (y - ref).abs().max() > 1e-2  # borders differ: zero padding vs clamping

    def test_depthwise_equals_full(self, device):
        x = torch.rand(2, 4, 5, 6, dtype=torch.float64).to(device)
        full = bilinear_conv_transpose2d(x, bilinear_kernel(4, 4, dtype=torch.float64).to(device), 4)
        dw = bilinear_kernel(4, 4, depthwise=True, dtype=torch.float64)
        assert dw.shape == (4, 1, 8, 8)
        assert_close(
            bilinear_conv_transpose2d(x, dw.to(device), 4, groups=4), full, rtol=0, atol=1e-12
        )
        fixed = BilinearConvTranspose2d(4, 4, learnable=False).double().to(device)
        assert fixed.groups == 4 and fixed.weight.shape == (4, 1, 8, 8)
        assert BilinearConvTranspose2d(4, 2).weight.shape == (4, 4, 4, 4)
        assert_close(fixed(x), full, rtol=0, atol=1e-6)

    def test_learnable_flag_and_gradcheck(self, device):
        assert not BilinearConvTranspose2d(2, 2, learnable=False).weight.requires_grad
        m = BilinearConvTranspose2d(2, 2, learnable=True).double().to(device)
        assert m.weight.requires_grad
        x = torch.rand(1, 2, 3, 4, dtype=torch.float64).to(device)
        assert gradcheck(lambda a, w: bilinear_conv_transpose2d(a, w, 2), x, m.weight)

    def test_exception(self):
        with pytest.raises(ValueError, match="factor"):
            bilinear_kernel(2, 0)
        with pytest.raises(ShapeError, match="weight"):
            bilinear_conv_transpose2d(torch.zeros(1, 2, 3, 3), bilinear_kernel(2, 3), 2)


class TestMaxUnpool:
    @pytest.mark.parametrize("size", [(6, 8), (7, 9)])
    def test_matches_torch(self, device, dtype, size):
        x = torch.randn((2, 3) + size, dtype=dtype).to(device)
        p, idx = max_pool_with_indices(x, 2)
        out = max_unpool(p, idx, x.shape)
        assert out.shape == x.shape
        ref = F.max_unpool2d(p, idx, 2, output_size=x.shape[-2:])
        assert_close(out, ref, rtol=0, atol=0)
        assert_close(MaxUnpool()(p, idx, x.shape[-2:]), ref, rtol=0, atol=0)
        # every pooled value sits where it came from in x
        kept = out != 0
        assert_close(out[kept], x[kept], rtol=0, atol=0)

    def test_hand_computed(self, device):
        x = torch.tensor([[[[1.0, 5.0], [3.0, 2.0]]]]).to(device)
        p, idx = max_pool_with_indices(x, 2)
        assert idx.item() == 1
        out = max_unpool(p * 2, idx, (2, 2))
        assert out.cpu().view(-1).tolist() == [0.0, 10.0, 0.0, 0.0]

    def test_gradcheck(self, device):
        x = torch.randn(1, 2, 4, 6, dtype=torch.float64).to(device)
        p, idx = max_pool_with_indices(x, 2)
        assert gradcheck(lambda v: max_unpool(v, idx, (4, 6)), p)

    def test_exception(self):
        p, idx = max_pool_with_indices(torch.randn(1, 1, 4, 4), 2)
        with pytest.raises(ValueError, match="indices"):
            max_unpool(p, idx[..., :1], (4, 4))
        with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
            max_unpool(p, idx, (2, 2))
        with pytest.raises(TypeError, match="int64"):
            max_unpool(p, idx.int(), (4, 4))


def _strided_net(pad):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=pad),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=pad),
        nn.ReLU(),
        nn.Conv2d(4, 3, 3, stride=2, padding=pad),
        nn.ReLU(),
        nn.Conv2d(3, 3, 3, padding=pad),
    ).double()


class TestShiftAndStitch:
    @pytest.mark.parametrize("size", [(29, 33), (32, 36)])
    def test_equals_dilated_network_unpadded(self, device, size):
        """Without padding, shift-and-stitch gives exactly the dense (dilated) output everywhere."""
        net = _strided_net(0).to(device)
        dilated = stride_to_dilation(stride_to_dilation(net, "2"), "5")
        x = torch.randn((1, 2) + size, dtype=torch.float64).to(device)
        dense = dilated(x)
        stitched = shift_and_stitch(net, x, 4)
        assert stitched.shape == dense.shape
        assert_close(stitched, dense, rtol=0, atol=1e-12)
        assert_close(ShiftAndStitch(net, 4)(x), dense, rtol=0, atol=1e-12)

    def test_equals_dilated_network_padded_interior(self, device):
        net = _strided_net(1).to(device)
        dilated = stride_to_dilation(stride_to_dilation(net, "2"), "5")
        x = torch.randn(1, 2, 32, 36, dtype=torch.float64).to(device)
        dense, stitched = dilated(x), shift_and_stitch(net, x, 4)
        assert stitched.shape == dense.shape
        m = 12  # receptive-field radius: padding reaches no further in
        assert_close(stitched[..., m:-m, m:-m], dense[..., m:-m, m:-m], rtol=0, atol=1e-12)

    def test_gradcheck(self, device):
        net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2)).double().to(device)
        x = torch.randn(1, 1, 7, 7, dtype=torch.float64).to(device)
        assert gradcheck(lambda a: shift_and_stitch(net, a, 2), x)

    def test_exception(self):
        with pytest.raises(ValueError, match="stride"):
            shift_and_stitch(nn.Identity(), torch.zeros(1, 1, 4, 4), 0)
        with pytest.raises(ShapeError):
            shift_and_stitch(nn.Identity(), torch.zeros(4, 4), 2)
