"""Dilated (atrous) convolution: the context module, the DeepLab stride-to-dilation conversion, and
depthwise-separable convolution.

References
----------
.. [1] F. Yu and V. Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016.
.. [2] L.-C. Chen et al., "DeepLab: Semantic Image Segmentation with Deep Convolutional Nets,
       Atrous Convolution, and Fully Connected CRFs", TPAMI 40(4), 2018.
.. [3] F. Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_float_tensor, check_shape

__all__ = [
    "CONTEXT_DILATIONS",
    "context_aggregation",
    "ContextModule",
    "identity_init_",
    "stride_to_dilation",
    "separable_conv2d",
    "SeparableConv2d",
]

#: Dilations of the 3x3 layers of Yu & Koltun's basic context module (receptive fields
#: 3, 5, 9, 17, 33, 65, 67), followed by a 1x1 layer.
CONTEXT_DILATIONS = (1, 1, 2, 4, 8, 16, 1)


def context_aggregation(
    x: Tensor,
    weights: Sequence[Tensor],
    biases: Sequence[Tensor | None],
    dilations: Sequence[int] = CONTEXT_DILATIONS,
) -> Tensor:
    """Apply Yu & Koltun's context module with the given weights.

    Parameters
    ----------
    x : (N, C, H, W) torch.Tensor
        Input feature or score maps.
    weights : sequence of torch.Tensor
        ``len(dilations)`` weights of shape ``(C, C, 3, 3)`` then one ``(C, C, 1, 1)``.
    biases : sequence of torch.Tensor or None
        One per weight.
    dilations : sequence of int
        Dilation of each 3x3 layer (padding equals dilation, so the size is kept).

    Returns
    -------
    y : (N, C, H, W) torch.Tensor
        Each 3x3 layer is followed by ``max(., 0)``; the final 1x1 layer is not.
    """
    check_float_tensor(x, "x")
    check_shape(x, ["N", "C", "H", "W"], "x")
    if len(weights) != len(dilations) + 1 or len(biases) != len(weights):
        raise ValueError(
            f"`weights` and `biases` must hold len(dilations) + 1 = {len(dilations) + 1} entries, "
            f"but got {len(weights)} and {len(biases)}"
        )
    for w, b, d in zip(weights[:-1], biases[:-1], dilations, strict=True):
        x = F.relu(F.conv2d(x, w, b, padding=d, dilation=d))
    return F.conv2d(x, weights[-1], biases[-1])


def identity_init_(conv: nn.Conv2d) -> nn.Conv2d:
    """Initialise a convolution to the identity, ``w[b, a, t] = 1[t = 0] 1[a = b]`` (Yu & Koltun).

    The centre tap of the kernel maps each input channel to the same output channel; bias is 0.
    Needs ``in_channels == out_channels``, ``groups == 1`` and an odd kernel.

    Parameters
    ----------
    conv : torch.nn.Conv2d
        Modified in place and returned.
    """
    kh, kw = conv.kernel_size
    if conv.in_channels != conv.out_channels or conv.groups != 1 or kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(
            "identity initialisation needs in_channels == out_channels, groups == 1 and an odd "
            f"kernel, but got {conv.in_channels} -> {conv.out_channels}, groups={conv.groups}, "
            f"kernel {conv.kernel_size}"
        )
    with torch.no_grad():
        conv.weight.zero_()
        idx = torch.arange(conv.in_channels)
        conv.weight[idx, idx, kh // 2, kw // 2] = 1.0
        if conv.bias is not None:
            conv.bias.zero_()
    return conv


class ContextModule(nn.Module):
    """Yu & Koltun's basic context aggregation module with identity initialisation.

    Parameters
    ----------
    channels : int
        ``C``, the number of classes (or feature channels) in and out.
    dilations : sequence of int
        Dilations of the 3x3 layers; ``(1, 1, 2, 4, 8, 16, 1)`` by default.
    identity_init : bool
        Initialise every layer to the identity so that, for non-negative input, the module starts
        as the identity map (the paper's initialisation). Otherwise PyTorch's default.

    Shape:
        - Input: :math:`(N, C, H, W)`
        - Output: :math:`(N, C, H, W)`
    """

    def __init__(
        self,
        channels: int,
        dilations: Sequence[int] = CONTEXT_DILATIONS,
        identity_init: bool = True,
    ):
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"`channels` must be a positive integer, but got {channels!r}")
        self.dilations = tuple(int(d) for d in dilations)
        self.convs = nn.ModuleList(
            [nn.Conv2d(channels, channels, 3, padding=d, dilation=d) for d in self.dilations]
            + [nn.Conv2d(channels, channels, 1)]
        )
        if identity_init:
            for c in self.convs:
                identity_init_(c)

    def forward(self, x: Tensor) -> Tensor:
        return context_aggregation(
            x, [c.weight for c in self.convs], [c.bias for c in self.convs], self.dilations
        )


class _PaddedMaxPool2d(nn.MaxPool2d):
    """Max pooling that pads with -inf itself (``nn.MaxPool2d`` caps padding at half the kernel)."""

    def __init__(self, pool: nn.MaxPool2d, pre_pad: tuple[int, int]):
        super().__init__(
            pool.kernel_size, pool.stride, 0, pool.dilation, pool.return_indices, pool.ceil_mode
        )
        self.pre_pad = pre_pad

    def forward(self, x: Tensor):
        ph, pw = self.pre_pad
        x = F.pad(x, (pw, pw, ph, ph), value=float("-inf"))
        return super().forward(x)


def _two(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def stride_to_dilation(
    model: nn.Module, layer: str, *, factor: int = 2, inplace: bool = False
) -> nn.Module:
    """Remove a layer's stride and dilate every later layer by the same factor (DeepLab).

    Parameters
    ----------
    model : torch.nn.Module
        A network whose leaf modules run in registration order (an ``nn.Sequential``, possibly
        nested).
    layer : str
        Qualified name (as in ``model.named_modules()``) of the ``Conv2d``, ``MaxPool2d`` or
        ``AvgPool2d`` whose stride ``factor`` is set to 1.
    factor : int
        The stride removed (2 in DeepLab).
    inplace : bool
        Modify ``model`` itself instead of a deep copy.

    Returns
    -------
    model : torch.nn.Module
        Same weights; its output is ``factor`` times denser, and
        ``dense[..., ::factor, ::factor]`` equals the strided output when the later layers use
        symmetric zero (or -inf for max-pooling) padding.

    Raises
    ------
    ValueError
        If ``layer`` is missing or has another stride, or a later layer cannot be dilated
        (average pooling, transposed convolution).

    Notes
    -----
    A later layer ``y[i] = sum_t w[t] u[s i + t - p]`` reading ``u = z[factor * .]`` becomes
    ``sum_t w[t] z[s i + factor (t - p)]``: dilation and padding are multiplied by ``factor``,
    its stride kept.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, but got {type(model).__name__}")
    if not isinstance(factor, int) or factor < 2:
        raise ValueError(f"`factor` must be an integer >= 2, but got {factor!r}")
    if not inplace:
        model = copy.deepcopy(model)
    named = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    names = [n for n, _ in named]
    if layer not in names:
        raise ValueError(f"`layer` {layer!r} is not a leaf module of the model; leaves: {names}")
    pos = names.index(layer)
    target = named[pos][1]
    if not isinstance(target, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        raise ValueError(
            f"`layer` {layer!r} must be a Conv2d or a pooling layer, but is {type(target).__name__}"
        )
    stride = _two(target.stride)
    if stride != (factor, factor):
        raise ValueError(f"`layer` {layer!r} must have stride {factor}, but has stride {stride}")
    target.stride = (1, 1) if isinstance(target, nn.Conv2d) else 1
    for name, m in named[pos + 1 :]:
        if isinstance(m, nn.ConvTranspose2d):
            raise ValueError(f"cannot dilate transposed convolution {name!r}")
        if isinstance(m, nn.Conv2d):
            m.dilation = tuple(d * factor for d in _two(m.dilation))
            if not isinstance(m.padding, str):
                m.padding = tuple(p * factor for p in _two(m.padding))
        elif isinstance(m, _PaddedMaxPool2d):
            m.dilation = tuple(d * factor for d in _two(m.dilation))
            m.pre_pad = tuple(p * factor for p in m.pre_pad)
        elif isinstance(m, nn.MaxPool2d):
            dil = tuple(d * factor for d in _two(m.dilation))
            pad = tuple(p * factor for p in _two(m.padding))
            if max(_two(m.kernel_size)) > 1:
                new = _PaddedMaxPool2d(m, pad)
                new.dilation = dil
                parent_name, _, attr = name.rpartition(".")
                parent = model.get_submodule(parent_name) if parent_name else model
                setattr(parent, attr, new)
        elif isinstance(m, nn.AvgPool2d) and max(_two(m.kernel_size)) > 1:
            raise ValueError(
                f"cannot dilate average pooling {name!r} (torch has no dilated "
                "AvgPool2d); use a max-pooling or convolution instead"
            )
    return model


def separable_conv2d(
    x: Tensor,
    depthwise_weight: Tensor,
    pointwise_weight: Tensor,
    bias: Tensor | None = None,
    stride: int = 1,
    dilation: int = 1,
) -> Tensor:
    """Depthwise-separable convolution: a per-channel ``k x k`` (atrous) conv, then a 1x1 conv.

    Parameters
    ----------
    x : (N, C, H, W) torch.Tensor
    depthwise_weight : (C, 1, k, k) torch.Tensor
    pointwise_weight : (C_out, C, 1, 1) torch.Tensor
    bias : (C_out,) torch.Tensor, optional
    stride, dilation : int
        Of the depthwise step; padding ``dilation * (k - 1) // 2`` keeps the size at stride 1.

    Returns
    -------
    y : (N, C_out, H', W') torch.Tensor
    """
    check_float_tensor(x, "x")
    check_shape(x, ["N", "C", "H", "W"], "x")
    c = x.shape[1]
    check_shape(depthwise_weight, [c, 1, "k", "k"], "depthwise_weight")
    check_shape(pointwise_weight, ["C_out", c, 1, 1], "pointwise_weight")
    k = depthwise_weight.shape[-1]
    y = F.conv2d(x, depthwise_weight, None, stride, dilation * (k - 1) // 2, dilation, groups=c)
    return F.conv2d(y, pointwise_weight, bias)


class SeparableConv2d(nn.Module):
    """Module form of :func:`separable_conv2d` (DeepLabv3+ / Xception).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        Of the depthwise step (odd).
    stride, dilation : int
        Of the depthwise step.
    bias : bool
        Bias on the pointwise step.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`
        - Output: :math:`(N, C_{out}, H / stride, W / stride)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        bias: bool = False,
    ):
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels,
            in_channels,
            kernel_size,
            stride,
            dilation * (kernel_size - 1) // 2,
            dilation,
            groups=in_channels,
            bias=False,
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)
        self.stride, self.dilation = stride, dilation

    def forward(self, x: Tensor) -> Tensor:
        return separable_conv2d(
            x,
            self.depthwise.weight,
            self.pointwise.weight,
            self.pointwise.bias,
            self.stride,
            self.dilation,
        )
