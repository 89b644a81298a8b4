"""DeconvNet / SegNet-style encoder-decoder with max-unpooling by the recorded switches.

References
----------
.. [1] H. Noh, S. Hong and B. Han, "Learning Deconvolution Network for Semantic Segmentation",
       ICCV 2015.
.. [2] V. Badrinarayanan, A. Kendall and R. Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder
       Architecture for Image Segmentation", TPAMI 39(12), 2017.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .._checks import check_float_tensor, check_shape
from ..ops.upsample import max_pool_with_indices, max_unpool

__all__ = ["DeconvNet"]


def _block(cin: int, cout: int, n: int, transposed: bool = False, batch_norm: bool = True) -> nn.Sequential:
    """``n`` padded 3x3 (transposed) convolutions, each with BatchNorm (then no bias) and ReLU."""
    conv = nn.ConvTranspose2d if transposed else nn.Conv2d
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(conv(cin if i == 0 else cout, cout, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DeconvNet(nn.Module):
    """Encoder of conv-BN-ReLU blocks and 2x2 max-pooling; mirrored decoder that unpools with the
    pooling indices and densifies with (transposed) 3x3 convolutions.

    Parameters
    ----------
    in_channels : int
    num_classes : int
    channels : sequence of int
        Channels of each encoder stage (VGG-16: 64, 128, 256, 512, 512).
    convs_per_stage : sequence of int
        Convolutions per stage (VGG-16: 2, 2, 3, 3, 3); mirrored in the decoder.
    transposed : bool
        Decoder uses 3x3 stride-1 transposed convolutions ("deconvolution", DeconvNet) instead of
        convolutions (SegNet). Both keep the size.

    Notes
    -----
    Unpooling places each value at the argmax recorded by the matching pooling (zeros elsewhere),
    restoring the pre-pooling size exactly, odd sizes included.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`
        - Output: :math:`(N, \\text{num_classes}, H, W)`
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 21,
        channels: Sequence[int] = (64, 128, 256, 512, 512),
        convs_per_stage: Sequence[int] = (2, 2, 3, 3, 3),
        transposed: bool = True,
    ):
        super().__init__()
        if len(channels) != len(convs_per_stage) or not channels:
            raise ValueError(
                "`channels` and `convs_per_stage` must be non-empty and equally long, "
                f"but got {len(channels)} and {len(convs_per_stage)}"
            )
        self.in_channels = in_channels
        self.encoder = nn.ModuleList()
        cin = in_channels
        for c, n in zip(channels, convs_per_stage, strict=True):
            self.encoder.append(_block(cin, c, n, transposed=False))
            cin = c
        self.decoder = nn.ModuleList()
        outs = list(channels[:-1])[::-1] + [channels[0]]
        for c_in, c_out, n in zip(channels[::-1], outs, convs_per_stage[::-1], strict=True):
            self.decoder.append(_block(c_in, c_out, n, transposed=transposed))
        self.classifier = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        check_float_tensor(x, "x")
        check_shape(x, ["N", self.in_channels, "H", "W"], "x")
        switches = []
        y = x
        for stage in self.encoder:
            y = stage(y)
            size = y.shape[-2:]
            y, idx = max_pool_with_indices(y, 2, 2)
            switches.append((idx, size))
        for stage, (idx, size) in zip(self.decoder, reversed(switches), strict=True):
            y = stage(max_unpool(y, idx, size))
        return self.classifier(y)
