"""Context module (identity initialisation), DeepLab stride-to-dilation, separable convolution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from deep_testing import assert_close, gradcheck
from torch import nn

from deep import ShapeError
from deep.ops import (
    CONTEXT_DILATIONS,
    ContextModule,
    SeparableConv2d,
    context_aggregation,
    identity_init_,
    separable_conv2d,
    stride_to_dilation,
)


class TestContextModule:
    def test_identity_at_init(self, device, dtype, tol):
        m = ContextModule(5).to(device=device, dtype=dtype)
        x = torch.rand(2, 5, 13, 17, dtype=dtype).to(device)  # non-negative, like class scores
        assert_close(m(x), x, tol=tol)

    def test_truncation_of_negative_input(self, device):
        m = ContextModule(3).to(device)
        x = torch.randn(1, 3, 9, 9).to(device)
        assert_close(m(x), x.clamp(min=0), rtol=0, atol=1e-6)

    def test_not_identity_without_init(self, device):
        torch.manual_seed(0)
        m = ContextModule(3, identity_init=False).to(device)
        x = torch.rand(1, 3, 9, 9).to(device)
        assert (m(x) - x).abs().max() > 1e-2

    def test_cardinality(self, device):
        m = ContextModule(4).to(device)
        assert m.dilations == CONTEXT_DILATIONS and len(m.convs) == 8
        assert [c.dilation[0] for c in m.convs[:-1]] == [1, 1, 2, 4, 8, 16, 1]
        assert m(torch.rand(1, 4, 5, 7).to(device)).shape == (1, 4, 5, 7)

    def test_functional_matches_sequential_convs(self, device):
        torch.manual_seed(1)
        m = ContextModule(2, dilations=(1, 2), identity_init=False).double().to(device)
        x = torch.randn(1, 2, 8, 9, dtype=torch.float64).to(device)
        y = x
        for c in m.convs[:-1]:
            y = F.relu(c(y))
        assert_close(m(x), m.convs[-1](y), rtol=0, atol=1e-12)

    def test_gradcheck(self, device):
        torch.manual_seed(2)
        m = ContextModule(2, dilations=(1, 2), identity_init=False).double().to(device)
        x = torch.randn(1, 2, 6, 6, dtype=torch.float64).to(device)
        assert gradcheck(m, x)

    def test_exception(self, device):
        with pytest.raises(ValueError, match="channels"):
            ContextModule(0)
        with pytest.raises(ValueError, match="identity initialisation"):
            identity_init_(nn.Conv2d(2, 3, 3))
        with pytest.raises(ValueError, match="len\\(dilations\\) \\+ 1"):
            context_aggregation(torch.zeros(1, 1, 4, 4), [torch.zeros(1, 1, 3, 3)], [None], (1,))
        with pytest.raises(ShapeError):
            ContextModule(2)(torch.zeros(2, 4, 4))


def _vgg_like(pad=1, pool_pad=0):
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=pad),
        nn.ReLU(),
        nn.MaxPool2d(3 if pool_pad else 2, 2, padding=pool_pad),
        nn.Conv2d(4, 4, 3, padding=pad),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=pad),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=pad, dilation=1),
        nn.ReLU(),
        nn.MaxPool2d(3, 1, padding=1),
        nn.Conv2d(6, 3, 1),
    )


class TestStrideToDilation:
    @pytest.mark.parametrize("pad,pool_pad", [(1, 0), (0, 0), (1, 1)])
    @pytest.mark.parametrize("size", [(29, 33), (32, 32)])
    def test_dense_equals_strided_at_strided_positions(self, device, pad, pool_pad, size):
        torch.manual_seed(0)
        net = _vgg_like(pad, pool_pad).double().to(device).eval()
        x = torch.randn((1, 2) + size, dtype=torch.float64).to(device)
        strided = net(x)
        dense = stride_to_dilation(net, "2")
        assert net[2].stride == 2 and dense[2].stride == 1  # the original is untouched
        assert dense[3].dilation == (2, 2) and dense[3].padding == (2 * pad, 2 * pad)
        y = dense(x)
        assert y.shape[-1] >= 2 * strided.shape[-1] - 1 and y.shape[-2] >= 2 * strided.shape[-2] - 1
        assert_close(
            y[..., ::2, ::2][..., : strided.shape[-2], : strided.shape[-1]],
            strided,
            rtol=0,
            atol=1e-12,
        )
        # both strides removed: the output is at full resolution, every 4th position matches
        denser = stride_to_dilation(dense, "6")
        y4 = denser(x)
        assert_close(
            y4[..., ::4, ::4][..., : strided.shape[-2], : strided.shape[-1]],
            strided,
            rtol=0,
            atol=1e-12,
        )
        assert_close(y4[..., ::2, ::2][..., : y.shape[-2], : y.shape[-1]], y, rtol=0, atol=1e-12)

    def test_inplace(self):
        net = _vgg_like()
        out = stride_to_dilation(net, "6", inplace=True)
        assert out is net and net[6].stride == (1, 1) and net[8].dilation == (2, 2)

    def test_exception(self):
        net = _vgg_like()
        with pytest.raises(ValueError, match="not a leaf"):
            stride_to_dilation(net, "99")
        with pytest.raises(ValueError, match="must have stride 2"):
            stride_to_dilation(net, "0")
        with pytest.raises(ValueError, match="Conv2d or a pooling"):
            stride_to_dilation(net, "1")
        with pytest.raises(ValueError, match="average pooling"):
            stride_to_dilation(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.AvgPool2d(2)), "0")
        with pytest.raises(ValueError, match="factor"):
            stride_to_dilation(net, "2", factor=1)


class TestSeparableConv:
    def test_equals_two_convs(self, device, dtype, tol):
        torch.manual_seed(0)
        m = SeparableConv2d(4, 6, 3, dilation=2).to(device=device, dtype=dtype)
        x = torch.randn(2, 4, 9, 10, dtype=dtype).to(device)
        assert_close(m(x), m.pointwise(m.depthwise(x)), tol=tol)
        assert m(x).shape == (2, 6, 9, 10)

    def test_stride(self, device):
        m = SeparableConv2d(3, 5, 5, stride=2).to(device)
        assert m(torch.randn(1, 3, 11, 12).to(device)).shape == (1, 5, 6, 6)

    def test_gradcheck(self, device):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(1, 3, 6, 6, generator=g)
        dw = torch.randn(3, 1, 3, 3, generator=g)
        pw = torch.randn(4, 3, 1, 1, generator=g)
        assert gradcheck(
            lambda a, b, c: separable_conv2d(a, b, c, dilation=2),
            x.to(device),
            dw.to(device),
            pw.to(device),
        )

    def test_exception(self):
        with pytest.raises(ShapeError, match="depthwise_weight"):
            separable_conv2d(
                torch.zeros(1, 3, 5, 5), torch.zeros(4, 1, 3, 3), torch.zeros(2, 3, 1, 1)
            )
        with pytest.raises(TypeError, match="floating-point"):
            separable_conv2d(
                torch.zeros(1, 3, 5, 5, dtype=torch.int64),
                torch.zeros(3, 1, 3, 3),
                torch.zeros(2, 3, 1, 1),
            )
