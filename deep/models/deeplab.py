"""DeepLabv3+: atrous spatial pyramid pooling with depthwise-separable convolutions, and a decoder
that fuses stride-4 features.

References
----------
.. [1] L.-C. Chen, G. Papandreou, F. Schroff and H. Adam, "Rethinking Atrous Convolution for
       Semantic Image Segmentation", arXiv:1706.05587, 2017 (DeepLabv3, ASPP with image pooling).
.. [2] L.-C. Chen, Y. Zhu, G. Papandreou, F. Schroff and H. Adam, "Encoder-Decoder with Atrous
       Separable Convolution for Semantic Image Segmentation", ECCV 2018 (DeepLabv3+).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_float_tensor, check_shape
from ..ops.dilation import SeparableConv2d

__all__ = ["ASPP", "DeepLabV3Plus", "deeplabv3plus_efficientnet_lite0"]


def _sep_bn_relu(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        SeparableConv2d(cin, cout, 3, dilation=dilation),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabv3), separable as in DeepLabv3+.

    Parameters
    ----------
    in_channels : int
    out_channels : int
        Channels of every branch and of the output (256 in the paper).
    rates : sequence of int
        Atrous rates of the 3x3 branches: (6, 12, 18) at output stride 16, doubled at 8.
    separable : bool
        Use depthwise-separable 3x3 branches (DeepLabv3+) instead of plain ones (DeepLabv3).

    Notes
    -----
    Branches: one 1x1 conv, one 3x3 atrous conv per rate, and image-level pooling (global average,
    1x1 conv, ReLU, bilinear upsampling); each has ``out_channels`` channels; they are concatenated
    and projected by a 1x1 conv. Every branch has BatchNorm + ReLU except the pooling branch, which
    has a bias instead of BatchNorm so that it also trains with batches of one image.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`
        - Output: :math:`(N, C_{out}, H, W)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        separable: bool = True,
    ):
        super().__init__()
        self.branches = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, bias=False),
                    nn.BatchNorm2d(out_channels),
                    nn.ReLU(inplace=True),
                )
            ]
        )
        for r in rates:
            if separable:
                self.branches.append(_sep_bn_relu(in_channels, out_channels, r))
            else:
                self.branches.append(
                    nn.Sequential(
                        nn.Conv2d(in_channels, out_channels, 3, padding=r, dilation=r, bias=False),
                        nn.BatchNorm2d(out_channels),
                        nn.ReLU(inplace=True),
                    )
                )
        self.pool = nn.Conv2d(in_channels, out_channels, 1)
        self.project = nn.Sequential(
            nn.Conv2d(out_channels * (len(rates) + 2), out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.rates = tuple(rates)

    def forward(self, x: Tensor) -> Tensor:
        outs = [b(x) for b in self.branches]
        g = F.relu(self.pool(F.adaptive_avg_pool2d(x, 1)))
        outs.append(g.expand(-1, -1, x.shape[-2], x.shape[-1]))
        return self.project(torch.cat(outs, dim=1))


class DeepLabV3Plus(nn.Module):
    """DeepLabv3+ on a multi-stride backbone.

    Parameters
    ----------
    backbone : torch.nn.Module
        Has ``forward_features`` and ``feature_channels`` (see :class:`deep.models.FCN`).
    num_classes : int
    high_level, low_level : int
        Keys of the backbone taps fed to ASPP (the encoder output) and to the decoder (stride 4).
    aspp_rates : sequence of int
        (6, 12, 18) for an encoder at output stride 16.
    aspp_channels, low_level_channels, decoder_channels : int
        256, 48 and 256 in the paper.

    Notes
    -----
    Decoder: the ASPP output is upsampled bilinearly to the low-level map's size (x4), concatenated
    with the low-level map reduced to 48 channels by a 1x1 conv, refined by two 3x3 separable convs,
    classified by a 1x1 conv, and upsampled bilinearly to the input.

    Shape:
        - Input: :math:`(N, 3, H, W)`
        - Output: :math:`(N, \\text{num_classes}, H, W)`
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        high_level: int = 32,
        low_level: int = 4,
        aspp_rates: Sequence[int] = (6, 12, 18),
        aspp_channels: int = 256,
        low_level_channels: int = 48,
        decoder_channels: int = 256,
    ):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive integer, but got {num_classes!r}")
        chans = backbone.feature_channels
        for key in (high_level, low_level):
            if key not in chans:
                raise ValueError(f"backbone has no feature tap {key!r}; taps: {sorted(chans)}")
        self.backbone = backbone
        self.high_level, self.low_level = high_level, low_level
        self.aspp = ASPP(chans[high_level], aspp_channels, aspp_rates, separable=True)
        self.reduce = nn.Sequential(
            nn.Conv2d(chans[low_level], low_level_channels, 1, bias=False),
            nn.BatchNorm2d(low_level_channels),
            nn.ReLU(inplace=True),
        )
        self.decoder = nn.Sequential(
            _sep_bn_relu(aspp_channels + low_level_channels, decoder_channels),
            _sep_bn_relu(decoder_channels, decoder_channels),
        )
        self.classifier = nn.Conv2d(decoder_channels, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        check_float_tensor(x, "x")
        check_shape(x, ["N", 3, "H", "W"], "x")
        taps = self.backbone.forward_features(x)
        low = self.reduce(taps[self.low_level])
        high = F.interpolate(
            self.aspp(taps[self.high_level]),
            size=low.shape[-2:],
            mode="bilinear",
            align_corners=False,
        )
        y = self.classifier(self.decoder(torch.cat([high, low], dim=1)))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def deeplabv3plus_efficientnet_lite0(
    num_classes: int, *, output_stride: int = 16, pretrained: bool = True
) -> DeepLabV3Plus:
    """DeepLabv3+ on EfficientNet-Lite0 made atrous to ``output_stride`` (16 or 8).

    Parameters
    ----------
    num_classes : int
    output_stride : {16, 8}
        The ASPP rates are (6, 12, 18) at 16 and (12, 24, 36) at 8; the stride-4 tap feeds the
        decoder.
    pretrained : bool
        Load the ImageNet backbone offline (the head stays randomly initialised).

    Returns
    -------
    model : DeepLabV3Plus
    """
    from ..backbone.efficientnet import efficientnet_lite0

    if output_stride not in (8, 16):
        raise ValueError(f"`output_stride` must be 8 or 16, but got {output_stride!r}")
    backbone = efficientnet_lite0(pretrained, output_stride=output_stride)
    rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
    return DeepLabV3Plus(backbone, num_classes, high_level=32, low_level=4, aspp_rates=rates)
