"""FCN-32s / 16s / 8s heads: 1x1 score layers, learned 2x upsampling and fusion by summing.

References
----------
.. [1] J. Long, E. Shelhamer and T. Darrell, "Fully Convolutional Networks for Semantic
       Segmentation", CVPR 2015; E. Shelhamer, J. Long and T. Darrell, TPAMI 39(4), 2017.
"""

from __future__ import annotations

from torch import Tensor, nn

from .._checks import check_float_tensor, check_shape
from ..ops.upsample import BilinearConvTranspose2d

__all__ = ["FCN", "FCN_VARIANTS"]

#: Feature strides fused by each variant, coarsest first.
FCN_VARIANTS = {"32s": (32,), "16s": (32, 16), "8s": (32, 16, 8)}


class FCN(nn.Module):
    """Fully convolutional network head on a multi-stride backbone.

    Parameters
    ----------
    backbone : torch.nn.Module
        Has ``forward_features(x) -> {stride: (N, C_s, ceil(H / s), ceil(W / s))}`` and
        ``feature_channels: {stride: C_s}`` for the strides the variant uses
        (e.g. :func:`deep.backbone.efficientnet_lite0`).
    num_classes : int
    variant : {"32s", "16s", "8s"}
        Which skip layers are fused.
    at_once : bool
        Scale the stride-16 features by 0.01 and the stride-8 features by 1e-4 before scoring, as
        the "all-at-once" FCN-8s trained without staging (Shelhamer et al., TPAMI 2017).

    Notes
    -----
    The stride-32 map is scored by a 1x1 convolution; each finer skip is scored by a 1x1
    convolution initialised to **zero** (so a fresh 16s/8s net computes what its coarser parent
    does), and is **summed** with the 2x upsampled coarser score (a transposed convolution
    initialised to bilinear interpolation and learned). The fused score is upsampled to the input
    by a fixed bilinear transposed convolution and cropped.

    Shape:
        - Input: :math:`(N, 3, H, W)`
        - Output: :math:`(N, \\text{num_classes}, H, W)`
    """

    def __init__(
        self, backbone: nn.Module, num_classes: int, variant: str = "8s", at_once: bool = False
    ):
        super().__init__()
        if variant not in FCN_VARIANTS:
            raise ValueError(
                f"`variant` must be one of {sorted(FCN_VARIANTS)}, but got {variant!r}"
            )
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive integer, but got {num_classes!r}")
        self.backbone = backbone
        self.variant = variant
        self.strides = FCN_VARIANTS[variant]
        self.skip_scale = {32: 1.0, 16: 1e-2, 8: 1e-4} if at_once else {32: 1.0, 16: 1.0, 8: 1.0}
        chans = backbone.feature_channels
        self.score = nn.ModuleDict()
        for i, s in enumerate(self.strides):
            conv = nn.Conv2d(chans[s], num_classes, 1)
            if i > 0:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
            self.score[str(s)] = conv
        self.up2 = nn.ModuleList(
            [BilinearConvTranspose2d(num_classes, 2, learnable=True) for _ in self.strides[1:]]
        )
        self.upsample = BilinearConvTranspose2d(num_classes, self.strides[-1], learnable=False)

    def forward(self, x: Tensor) -> Tensor:
        check_float_tensor(x, "x")
        check_shape(x, ["N", 3, "H", "W"], "x")
        taps = self.backbone.forward_features(x)
        y = self.score[str(self.strides[0])](taps[self.strides[0]])
        for up, s in zip(self.up2, self.strides[1:], strict=True):
            skip = self.score[str(s)](taps[s] * self.skip_scale[s])
            y = up(y)[..., : skip.shape[-2], : skip.shape[-1]] + skip
        y = self.upsample(y)
        return y[..., : x.shape[-2], : x.shape[-1]]
