"""U-Net: a contracting path and a symmetric expanding path fused by concatenation.

References
----------
.. [1] O. Ronneberger, P. Fischer and T. Brox, "U-Net: Convolutional Networks for Biomedical Image
       Segmentation", MICCAI 2015. arXiv:1505.04597
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_float_tensor, check_shape
from .deconvnet import _block

__all__ = ["UNet"]


class UNet(nn.Module):
    """U-Net with padded 3x3 convolutions, so the output has the input's size.

    Parameters
    ----------
    in_channels : int
    num_classes : int
    base_channels : int
        Channels of the first level (64 in the paper); each level doubles them.
    depth : int
        Number of 2x2 max-poolings (4 in the paper).
    batch_norm : bool
        Add BatchNorm after each convolution (not in the original paper, usual today).

    Notes
    -----
    Each decoder level upsamples with a 2x2 stride-2 transposed convolution that halves the
    channels, **concatenates** the encoder map of the same level, and applies two 3x3 convs. The
    original uses unpadded convolutions and crops the skip; here convolutions are padded and an
    input whose sides are not multiples of ``2**depth`` is zero-padded at the bottom/right and the
    output cropped back.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`
        - Output: :math:`(N, \\text{num_classes}, H, W)`
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        base_channels: int = 64,
        depth: int = 4,
        batch_norm: bool = True,
    ):
        super().__init__()
        for name, v in (
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("base_channels", base_channels),
            ("depth", depth),
        ):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name}` must be a positive integer, but got {v!r}")
        self.depth = depth
        chans = [base_channels * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_block(in_channels, chans[0], 2, batch_norm=batch_norm)])
        self.down.extend(_block(chans[i], chans[i + 1], 2, batch_norm=batch_norm) for i in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in reversed(range(depth))
        )
        self.fuse = nn.ModuleList(
            _block(2 * chans[i], chans[i], 2, batch_norm=batch_norm) for i in reversed(range(depth))
        )
        self.classifier = nn.Conv2d(chans[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        check_float_tensor(x, "x")
        check_shape(x, ["N", self.down[0][0].in_channels, "H", "W"], "x")
        h, w = x.shape[-2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        skips = []
        y = self.down[0](x)
        for level in self.down[1:]:
            skips.append(y)
            y = level(F.max_pool2d(y, 2))
        for up, fuse, skip in zip(self.up, self.fuse, reversed(skips), strict=True):
            y = fuse(torch.cat([skip, up(y)], dim=1))
        return self.classifier(y)[..., :h, :w]
