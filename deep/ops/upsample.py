"""Upsampling for dense prediction: bilinear, transposed convolution initialised to bilinear
interpolation (FCN), max-unpooling with pooling indices (SegNet / DeconvNet), and shift-and-stitch.

References
----------
.. [1] J. Long, E. Shelhamer and T. Darrell, "Fully Convolutional Networks for Semantic
       Segmentation", CVPR 2015 (bilinear-initialised deconvolution, shift-and-stitch).
.. [2] H. Noh, S. Hong and B. Han, "Learning Deconvolution Network for Semantic Segmentation",
       ICCV 2015 (unpooling with switches).
.. [3] V. Badrinarayanan, A. Kendall and R. Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder
       Architecture for Image Segmentation", TPAMI 39(12), 2017.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_float_tensor, check_shape, check_tensor

__all__ = [
    "bilinear_upsample",
    "BilinearUpsample",
    "bilinear_kernel",
    "bilinear_conv_transpose2d",
    "BilinearConvTranspose2d",
    "max_pool_with_indices",
    "max_unpool",
    "MaxUnpool",
    "shift_and_stitch",
    "ShiftAndStitch",
]


def bilinear_upsample(
    x: Tensor, scale_factor: float | None = None, size=None, *, align_corners: bool = False
) -> Tensor:
    """Bilinear upsampling of ``(N, C, H, W)`` maps to ``size`` or by ``scale_factor``.

    Parameters
    ----------
    x : (N, C, H, W) torch.Tensor of float
    scale_factor : float, optional
    size : (int, int), optional
        Exactly one of ``scale_factor`` and ``size``.
    align_corners : bool
        ``False`` (default) is the pixel-centre model: output pixel ``o`` samples input coordinate
        ``(o + 1/2) / f - 1/2``, clamped at the borders.

    Returns
    -------
    y : (N, C, H', W') torch.Tensor
    """
    check_float_tensor(x, "x")
    check_shape(x, ["N", "C", "H", "W"], "x")
    if (scale_factor is None) == (size is None):
        raise ValueError("give exactly one of `scale_factor` and `size`")
    return F.interpolate(
        x, size=size, scale_factor=scale_factor, mode="bilinear", align_corners=align_corners
    )


class BilinearUpsample(nn.Module):
    """Module form of :func:`bilinear_upsample`.

    Parameters
    ----------
    scale_factor : float, optional
    size : (int, int), optional
        Exactly one of ``scale_factor`` and ``size``.
    align_corners : bool
        As in :func:`bilinear_upsample`.

    Shape:
        - Input: :math:`(N, C, H, W)`
        - Output: :math:`(N, C, H \\cdot f, W \\cdot f)` or ``size``.
    """

    def __init__(
        self, scale_factor: float | None = None, size=None, *, align_corners: bool = False
    ):
        super().__init__()
        if (scale_factor is None) == (size is None):
            raise ValueError("give exactly one of `scale_factor` and `size`")
        self.scale_factor, self.size, self.align_corners = scale_factor, size, align_corners

    def forward(self, x: Tensor) -> Tensor:
        return bilinear_upsample(x, self.scale_factor, self.size, align_corners=self.align_corners)


def bilinear_kernel(
    channels: int, factor: int, *, depthwise: bool = False, dtype=torch.float32, device=None
) -> Tensor:
    """Weights ``(C, C, k, k)`` of a transposed convolution that upsamples bilinearly by ``factor``.

    ``k = 2 f - f mod 2``, centre ``c = f - 1`` (k odd) or ``f - 1/2`` (k even), and
    ``w[i, j] = (1 - |i - c| / f) (1 - |j - c| / f)`` on the channel diagonal, zero elsewhere
    (FCN's ``upsample_filt``). For ``f = 2`` the 1-D taps are ``[1/4, 3/4, 3/4, 1/4]``.

    Parameters
    ----------
    channels : int
        ``C``, channels in and out.
    factor : int
        Upsampling factor ``f`` (the transposed convolution's stride).
    depthwise : bool
        Return only the diagonal, ``(C, 1, k, k)``, for a transposed convolution with
        ``groups=C``: the same result at ``1/C`` of the cost.
    dtype : torch.dtype
        Of the weights (computed in float64, then cast).
    device : torch.device, optional

    Returns
    -------
    weight : (C, C, k, k) or (C, 1, k, k) torch.Tensor

    Examples
    --------
    >>> bilinear_kernel(1, 2)[0, 0, 0]
    tensor([0.0625, 0.1875, 0.1875, 0.0625])
    """
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"`factor` must be a positive integer, but got {factor!r}")
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"`channels` must be a positive integer, but got {channels!r}")
    k = 2 * factor - factor % 2
    c = factor - 1 if k % 2 == 1 else factor - 0.5
    t = 1.0 - (torch.arange(k, dtype=torch.float64) - c).abs() / factor
    filt = (t[:, None] * t[None, :]).to(dtype)
    if depthwise:
        return filt.to(device).expand(channels, 1, k, k).clone()
    w = torch.zeros((channels, channels, k, k), dtype=dtype, device=device)
    idx = torch.arange(channels, device=w.device)
    w[idx, idx] = filt.to(w.device)
    return w


def _bilinear_padding(factor: int) -> int:
    return factor // 2 if factor % 2 == 0 else (factor - 1) // 2


def bilinear_conv_transpose2d(
    x: Tensor, weight: Tensor, factor: int, bias: Tensor | None = None, groups: int = 1
) -> Tensor:
    """Transposed convolution by ``factor`` with the padding that aligns it to ``F.interpolate``.

    With ``weight = bilinear_kernel(C, factor)`` the output, of size ``(H f, W f)``, equals
    ``F.interpolate(x, scale_factor=f, mode="bilinear", align_corners=False)`` away from a
    border of ``f`` pixels (where interpolation clamps and the transposed convolution pads zeros).

    Parameters
    ----------
    x : (N, C, H, W) torch.Tensor
    weight : (C, C_out / groups, k, k) torch.Tensor
        ``k = 2 f - f mod 2``.
    factor : int
    bias : (C_out,) torch.Tensor, optional
    groups : int
        ``C`` with a depthwise kernel (``bilinear_kernel(C, f, depthwise=True)``).

    Returns
    -------
    y : (N, C_out, H f, W f) torch.Tensor
    """
    check_float_tensor(x, "x")
    check_shape(x, ["N", "C", "H", "W"], "x")
    k = 2 * factor - factor % 2
    check_shape(weight, [x.shape[1], "C_out", k, k], "weight")
    if weight.device != x.device:
        raise ValueError(
            f"`weight` is on {weight.device} but `x` is on {x.device}; move it with weight.to(x.device)"
        )
    return F.conv_transpose2d(
        x, weight, bias, stride=factor, padding=_bilinear_padding(factor), groups=groups
    )


class BilinearConvTranspose2d(nn.ConvTranspose2d):
    """Transposed convolution initialised to bilinear upsampling (FCN's learned upsampling).

    Parameters
    ----------
    channels : int
        Channels in and out.
    factor : int
        Upsampling factor (stride).
    learnable : bool
        ``False`` freezes the weights (FCN's final, fixed upsampling); ``True`` lets them train
        (FCN's 2x fusion layers).
    depthwise : bool, optional
        Keep only the channel diagonal (``groups=C``, weights ``(C, 1, k, k)``): each class is
        upsampled on its own. Defaults to ``not learnable``; a learnable layer is full ``C x C``
        as in FCN.

    Shape:
        - Input: :math:`(N, C, H, W)`
        - Output: :math:`(N, C, H f, W f)`
    """

    def __init__(
        self, channels: int, factor: int, learnable: bool = True, depthwise: bool | None = None
    ):
        k = 2 * factor - factor % 2
        depthwise = (not learnable) if depthwise is None else depthwise
        groups = channels if depthwise else 1
        super().__init__(
            channels,
            channels,
            k,
            stride=factor,
            padding=_bilinear_padding(factor),
            bias=False,
            groups=groups,
        )
        self.factor = factor
        with torch.no_grad():
            self.weight.copy_(bilinear_kernel(channels, factor, depthwise=depthwise))
        self.weight.requires_grad_(learnable)

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        return bilinear_conv_transpose2d(x, self.weight, self.factor, groups=self.groups)


def max_pool_with_indices(
    x: Tensor, kernel_size: int = 2, stride: int | None = None, padding: int = 0
) -> tuple[Tensor, Tensor]:
    """Max-pool and return the switches (flat ``H * W`` argmax index of each output).

    Parameters
    ----------
    x : (N, C, H, W) torch.Tensor of float
    kernel_size : int
    stride : int, optional
        Defaults to ``kernel_size``.
    padding : int

    Returns
    -------
    pooled : (N, C, H', W') torch.Tensor
    indices : (N, C, H', W') torch.Tensor of int64
    """
    check_float_tensor(x, "x")
    check_shape(x, ["N", "C", "H", "W"], "x")
    return F.max_pool2d(x, kernel_size, stride, padding, return_indices=True)


def max_unpool(x: Tensor, indices: Tensor, output_size) -> Tensor:
    """Place each value at its recorded argmax, zeros elsewhere (SegNet / DeconvNet unpooling).

    Parameters
    ----------
    x : (N, C, h, w) torch.Tensor of float
        Values to place (pooled features or decoder activations).
    indices : (N, C, h, w) torch.Tensor of int64
        Flat indices into the ``H * W`` plane, as returned by :func:`max_pool_with_indices`.
    output_size : (int, int) or torch.Size
        ``(H, W)`` of the map before pooling (the last two entries are used).

    Returns
    -------
    y : (N, C, H, W) torch.Tensor
        Differentiable in ``x`` (a scatter, pure torch).
    """
    check_float_tensor(x, "x")
    check_shape(x, ["N", "C", "h", "w"], "x")
    check_tensor(indices, "indices")
    if indices.shape != x.shape:
        raise ValueError(
            f"`indices` (shape {tuple(indices.shape)}) must have the shape of `x` "
            f"(shape {tuple(x.shape)})"
        )
    if indices.dtype != torch.int64:
        raise TypeError(f"`indices` must be int64, but got dtype {indices.dtype}")
    h, w = (int(s) for s in tuple(output_size)[-2:])
    n, c = x.shape[:2]
    flat = indices.reshape(n, c, -1)
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= h * w):
        raise ValueError(
            f"`indices` must lie in [0, {h * w}) for output_size {(h, w)}, but got "
            f"values in [{int(flat.min())}, {int(flat.max())}]"
        )
    out = x.new_zeros((n, c, h * w)).scatter(2, flat, x.reshape(n, c, -1))
    return out.view(n, c, h, w)


class MaxUnpool(nn.Module):
    """Module form of :func:`max_unpool` (no parameters; ``forward(x, indices, output_size)``).

    Shape:
        - Input: :math:`(N, C, h, w)` values and int64 indices, and ``output_size``.
        - Output: :math:`(N, C, H, W)`.
    """

    def forward(self, x: Tensor, indices: Tensor, output_size) -> Tensor:
        return max_unpool(x, indices, output_size)


def shift_and_stitch(net: Callable[[Tensor], Tensor], x: Tensor, stride: int) -> Tensor:
    """Dense output of a strided network by running it on ``stride**2`` shifted inputs.

    For each shift ``(dy, dx)`` in ``[0, stride)^2`` the network sees ``x[..., dy:, dx:]`` and its
    output fills the dense positions ``(dy + stride * i, dx + stride * j)``.

    Parameters
    ----------
    net : callable
        Maps ``(N, C, H, W)`` to ``(N, K, H', W')`` with total output stride ``stride``.
    x : (N, C, H, W) torch.Tensor
    stride : int

    Returns
    -------
    y : (N, K, Hd, Wd) torch.Tensor
        ``Hd = max_dy(dy + stride * (h_dy - 1) + 1)``. For a network without padding this equals,
        everywhere, the output of the same network with its strides turned into dilations
        (:func:`deep.ops.stride_to_dilation`); with padding they agree away from the borders.

    References
    ----------
    .. [1] J. Long, E. Shelhamer and T. Darrell, CVPR 2015, section 3.2. Also P. Sermanet et al.,
           "OverFeat", ICLR 2014.
    """
    check_float_tensor(x, "x")
    check_shape(x, ["N", "C", "H", "W"], "x")
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"`stride` must be a positive integer, but got {stride!r}")
    outs = {}
    for dy in range(stride):
        for dx in range(stride):
            outs[dy, dx] = net(x[..., dy:, dx:])
    hd = max(dy + stride * (o.shape[-2] - 1) + 1 for (dy, _), o in outs.items())
    wd = max(dx + stride * (o.shape[-1] - 1) + 1 for (_, dx), o in outs.items())
    o0 = outs[0, 0]
    y = o0.new_zeros(o0.shape[:-2] + (hd, wd))
    for (dy, dx), o in outs.items():
        rows = torch.arange(dy, hd, stride, device=x.device)[: o.shape[-2]]
        cols = torch.arange(dx, wd, stride, device=x.device)[: o.shape[-1]]
        y[..., rows[:, None], cols[None, :]] = o[..., : rows.numel(), : cols.numel()]
    return y


class ShiftAndStitch(nn.Module):
    """Module form of :func:`shift_and_stitch` around a strided network.

    Parameters
    ----------
    net : torch.nn.Module
        The strided network.
    stride : int
        Its total output stride.

    Shape:
        - Input: :math:`(N, C, H, W)`
        - Output: :math:`(N, K, H_d, W_d)`, about ``stride`` times denser than ``net``'s.
    """

    def __init__(self, net: nn.Module, stride: int):
        super().__init__()
        self.net, self.stride = net, stride

    def forward(self, x: Tensor) -> Tensor:
        return shift_and_stitch(self.net, x, self.stride)
