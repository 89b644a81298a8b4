"""FCN heads, U-Net, DeconvNet, DeepLabv3+: shapes, fusion rules, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deep import ShapeError
from deep.backbone import efficientnet_lite0
from deep.models import ASPP, FCN, DeconvNet, DeepLabV3Plus, UNet, deeplabv3plus_efficientnet_lite0


class _TinyBackbone(nn.Module):
    """Average-pooling pyramid with 1x1 convs: taps at strides 4, 8, 16, 32."""

    feature_channels = {4: 3, 8: 4, 16: 5, 32: 6}

    def __init__(self):
        super().__init__()
        self.proj = nn.ModuleDict(
            {str(s): nn.Conv2d(3, c, 1) for s, c in self.feature_channels.items()}
        )

    def forward_features(self, x):
        out = {}
        for s in self.feature_channels:
            pooled = nn.functional.avg_pool2d(x, s, ceil_mode=True)
            out[s] = self.proj[str(s)](pooled)
        return out


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
@pytest.mark.parametrize("size", [(64, 96), (67, 45)])
def test_fcn_shapes_and_backward(device, variant, size):
    net = FCN(_TinyBackbone(), 5, variant).to(device)
    x = torch.rand((2, 3) + size).to(device)
    y = net(x)
    assert y.shape == (2, 5) + size
    y.square().mean().backward()
    assert net.score["32"].weight.grad.abs().sum() > 0


def test_fcn_skip_layers_start_at_zero(device):
    """Zero-initialised skip scores: a fresh 8s net ignores its stride-8/16 features."""
    torch.manual_seed(0)
    bb = _TinyBackbone().to(device)
    net = FCN(bb, 4, "8s").to(device)
    x = torch.rand(1, 3, 64, 64).to(device)
    y = net(x)
    with torch.no_grad():
        bb.proj["8"].weight.normal_()
        bb.proj["16"].weight.normal_()
    torch.testing.assert_close(net(x), y)
    with torch.no_grad():
        net.score["16"].weight.normal_()
    assert (net(x) - y).abs().max() > 1e-3


def test_fcn_fuses_by_summing(device):
    """With a zero stride-32 score, 16s output = fixed x16 upsampling of the stride-16 score."""
    torch.manual_seed(1)
    bb = _TinyBackbone().to(device)
    net = FCN(bb, 2, "16s").to(device)
    with torch.no_grad():
        for p in net.score["32"].parameters():
            p.zero_()
        nn.init.normal_(net.score["16"].weight)
    x = torch.rand(1, 3, 64, 64).to(device)
    s16 = net.score["16"](bb.forward_features(x)[16])
    torch.testing.assert_close(net(x), net.upsample(s16)[..., :64, :64])


def test_fcn_at_once_scales_skips(device):
    torch.manual_seed(2)
    bb = _TinyBackbone().to(device)
    plain = FCN(bb, 2, "8s").to(device)
    at_once = FCN(bb, 2, "8s", at_once=True).to(device)
    at_once.load_state_dict(plain.state_dict())
    with torch.no_grad():
        for net in (plain, at_once):
            nn.init.normal_(net.score["16"].weight)
            nn.init.zeros_(net.score["16"].bias)
            nn.init.zeros_(net.score["8"].weight)
        at_once.score["16"].weight.copy_(plain.score["16"].weight * 100.0)  # undo the 0.01
    x = torch.rand(1, 3, 64, 64).to(device)
    torch.testing.assert_close(at_once(x), plain(x), rtol=1e-4, atol=1e-5)


def test_fcn_exception():
    with pytest.raises(ValueError, match="variant"):
        FCN(_TinyBackbone(), 3, "4s")
    with pytest.raises(ValueError, match="num_classes"):
        FCN(_TinyBackbone(), 0)
    with pytest.raises(ShapeError):
        FCN(_TinyBackbone(), 3)(torch.zeros(1, 1, 32, 32))


@pytest.mark.parametrize("size", [(32, 48), (37, 29)])
def test_unet(device, size):
    net = UNet(3, 4, base_channels=4, depth=3).to(device)
    x = torch.rand((2, 3) + size).to(device)
    y = net(x)
    assert y.shape == (2, 4) + size
    # fusion by concatenation: the decoder convs read 2x the level's channels
    assert net.fuse[0][0].in_channels == 2 * net.up[0].out_channels
    y.mean().backward()
    assert net.down[0][0].weight.grad is not None
    with pytest.raises(ShapeError):
        net(torch.rand(1, 2, 32, 32).to(device))
    with pytest.raises(ValueError, match="depth"):
        UNet(depth=0)


@pytest.mark.parametrize("transposed", [True, False])
@pytest.mark.parametrize("size", [(32, 40), (35, 27)])
def test_deconvnet(device, transposed, size):
    net = DeconvNet(3, 5, channels=(4, 8, 8), convs_per_stage=(1, 2, 2), transposed=transposed).to(
        device
    )
    x = torch.rand((2, 3) + size).to(device)
    y = net(x)
    assert y.shape == (2, 5) + size
    y.mean().backward()
    assert net.encoder[0][0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="equally long"):
        DeconvNet(channels=(4, 8), convs_per_stage=(1,))


def test_deconvnet_uses_switches(device, monkeypatch):
    """The decoder unpools at the encoder's argmax positions."""
    import deep.models.deconvnet as mod

    calls = []
    real = mod.max_unpool

    def spy(x, idx, size):
        calls.append((idx, tuple(size)))
        return real(x, idx, size)

    monkeypatch.setattr(mod, "max_unpool", spy)
    net = DeconvNet(3, 2, channels=(4, 4), convs_per_stage=(1, 1)).to(device).eval()
    net(torch.rand(1, 3, 17, 18).to(device))
    assert [s for _, s in calls] == [(8, 9), (17, 18)]


def test_aspp(device):
    m = ASPP(8, 16, rates=(2, 4)).to(device)
    assert [b[0].dilation for b in m.branches[1:]] == [2, 4]
    x = torch.rand(1, 8, 9, 11).to(device)
    m.train()
    assert m(x).shape == (1, 16, 9, 11)  # trains with a batch of one (no BN on pooling)
    plain = ASPP(8, 16, rates=(3,), separable=False)
    assert plain.branches[1][0].dilation == (3, 3)


def test_deeplabv3plus(device):
    net = DeepLabV3Plus(
        _TinyBackbone(),
        3,
        aspp_rates=(1, 2),
        aspp_channels=8,
        low_level_channels=4,
        decoder_channels=8,
    ).to(device)
    x = torch.rand(2, 3, 64, 72).to(device)
    y = net(x)
    assert y.shape == (2, 3, 64, 72)
    y.mean().backward()
    assert net.reduce[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="no feature tap"):
        DeepLabV3Plus(_TinyBackbone(), 3, low_level=2)


@pytest.mark.parametrize("output_stride", [16, 8])
def test_deeplabv3plus_lite0(device, output_stride):
    net = (
        deeplabv3plus_efficientnet_lite0(4, output_stride=output_stride, pretrained=False)
        .to(device)
        .eval()
    )
    assert net.aspp.rates == ((6, 12, 18) if output_stride == 16 else (12, 24, 36))
    taps = net.backbone.forward_features(torch.rand(1, 3, 64, 64).to(device))
    assert taps[32].shape[-1] == 64 // output_stride
    assert net(torch.rand(1, 3, 64, 80).to(device)).shape == (1, 4, 64, 80)
    with pytest.raises(ValueError, match="output_stride"):
        deeplabv3plus_efficientnet_lite0(4, output_stride=4, pretrained=False)


def test_fcn_on_lite0(device):
    net = FCN(efficientnet_lite0(pretrained=False), 3, "8s").to(device).eval()
    assert net(torch.rand(1, 3, 50, 70).to(device)).shape == (1, 3, 50, 70)
