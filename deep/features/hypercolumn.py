"""Hypercolumns: features of several layers, upsampled to the image and stacked per pixel, sampled
at points or pooled in regions.

References
----------
.. [1] B. Hariharan, P. Arbelaez, R. Girshick and J. Malik, "Hypercolumns for Object Segmentation
       and Fine-grained Localization", CVPR 2015.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_float_tensor, check_shape, check_tensor

__all__ = ["hypercolumns", "sample_hypercolumns", "pool_hypercolumns", "Hypercolumns"]


def _levels(features) -> list[Tensor]:
    if isinstance(features, Mapping):
        features = list(features.values())
    if isinstance(features, Tensor) or not isinstance(features, Sequence) or not features:
        raise TypeError(
            "`features` must be a non-empty sequence (or mapping) of (N, C, h, w) "
            f"tensors, but got {type(features).__name__}"
        )
    n = None
    for i, f in enumerate(features):
        check_float_tensor(f, f"features[{i}]")
        check_shape(f, ["N", "C", "h", "w"], f"features[{i}]")
        if n is None:
            n = f.shape[0]
        elif f.shape[0] != n:
            raise ValueError(
                f"all features must share the batch size, but features[{i}] has "
                f"{f.shape[0]} and features[0] has {n}"
            )
    return list(features)


def _size(size) -> tuple[int, int]:
    if (
        not isinstance(size, (tuple, list, torch.Size))
        or len(size) != 2
        or not all(int(s) > 0 for s in size)
    ):
        raise ValueError(f"`size` must be (H, W) with positive sides, but got {size!r}")
    return int(size[0]), int(size[1])


def hypercolumns(features, size) -> Tensor:
    """Upsample every feature map bilinearly to ``size`` and concatenate along channels.

    Parameters
    ----------
    features : sequence (or mapping) of (N, C_l, h_l, w_l) torch.Tensor
        Maps of the chosen layers, coarse or fine; 1x1 maps (fc layers) are replicated.
    size : (int, int)
        ``(H, W)`` of the output, normally the image size.

    Returns
    -------
    hc : (N, sum_l C_l, H, W) torch.Tensor
        ``hc[n, :, i, j]`` is the hypercolumn of pixel ``(i, j)``: each map interpolated at the
        pixel centre (``align_corners=False``; clamped at the borders).
    """
    size = _size(size)
    return torch.cat(
        [
            F.interpolate(f, size=size, mode="bilinear", align_corners=False)
            for f in _levels(features)
        ],
        dim=1,
    )


def sample_hypercolumns(features, points: Tensor, size) -> Tensor:
    """Hypercolumns of a set of pixels, without building the full-resolution map.

    Parameters
    ----------
    features : sequence (or mapping) of (N, C_l, h_l, w_l) torch.Tensor
    points : (P, 2) torch.Tensor
        ``(row, col)`` image coordinates (integers give pixel centres; fractions interpolate).
    size : (int, int)
        ``(H, W)`` of the image the points refer to.

    Returns
    -------
    hc : (N, P, sum_l C_l) torch.Tensor
        Equal to ``hypercolumns(features, size)[n, :, row, col]`` at integer points.
    """
    levels = _levels(features)
    h, w = _size(size)
    check_tensor(points, "points")
    check_shape(points, ["P", 2], "points")
    f0 = levels[0]
    pts = points.to(dtype=f0.dtype, device=f0.device)
    n = f0.shape[0]
    # normalised coordinate whose align_corners=False un-normalisation lands on the source pixel
    # (row + 1/2) * h_l / H - 1/2 of every level, as F.interpolate(size=...) computes it
    gy = 2.0 * (pts[:, 0] + 0.5) / h - 1.0
    gx = 2.0 * (pts[:, 1] + 0.5) / w - 1.0
    grid = torch.stack([gx, gy], dim=-1).view(1, 1, -1, 2).expand(n, 1, -1, 2)
    outs = [
        F.grid_sample(f, grid, mode="bilinear", padding_mode="border", align_corners=False)
        for f in levels
    ]
    return torch.cat(outs, dim=1)[:, :, 0, :].transpose(1, 2)


def pool_hypercolumns(features, masks: Tensor) -> Tensor:
    """Mean hypercolumn inside each mask, without building the full-resolution map.

    Parameters
    ----------
    features : sequence (or mapping) of (1, C_l, h_l, w_l) torch.Tensor
        Maps of one image.
    masks : (K, H, W) torch.Tensor of bool (or float weights)
        Regions (candidates, superpixels) at image resolution.

    Returns
    -------
    pooled : (K, sum_l C_l) torch.Tensor
        ``pooled[k] = mean over pixels p in masks[k] of hypercolumns(features, (H, W))[0, :, p]``;
        an empty mask gives zeros; ``K = 0`` gives shape ``(0, sum_l C_l)``.

    Notes
    -----
    Bilinear upsampling is linear and separable, ``U_l = U_y (x) U_x``, so
    ``m^T U_l F_l = (U_y^T m U_x)^T F_l``: the masks are shrunk to each level by the transposed
    interpolation matrices and contracted with its features. Memory ``O(K (H W + h_l w_l))``
    instead of ``O(C H W)`` for the full hypercolumn map; works under ``torch.inference_mode``.
    """
    levels = _levels(features)
    check_tensor(masks, "masks")
    check_shape(masks, ["K", "H", "W"], "masks")
    if levels[0].shape[0] != 1:
        raise ValueError(
            f"`features` must hold one image (batch size 1), but got batch size "
            f"{levels[0].shape[0]}; pool each image separately"
        )
    dtype, device = levels[0].dtype, levels[0].device
    m = masks.to(dtype=dtype, device=device)
    k, h, w = m.shape
    total = sum(f.shape[1] for f in levels)
    if k == 0:
        return torch.zeros((0, total), dtype=dtype, device=device)
    area = m.sum(dim=(1, 2)).clamp(min=1.0)
    outs = []
    for f in levels:
        uy = _interp_matrix(h, f.shape[-2], dtype, device)  # (H, h_l)
        ux = _interp_matrix(w, f.shape[-1], dtype, device)  # (W, w_l)
        adj = torch.einsum("kHW,Hh->khW", m, uy)
        adj = torch.einsum("khW,Ww->khw", adj, ux)  # U_l^T m, (K, h_l, w_l)
        outs.append(torch.einsum("khw,chw->kc", adj, f[0]))
    return torch.cat(outs, dim=1) / area[:, None]


def _interp_matrix(n_out: int, n_in: int, dtype, device) -> Tensor:
    """``(n_out, n_in)`` matrix of 1-D linear interpolation as ``F.interpolate(size=n_out,
    align_corners=False)`` does it: source ``(o + 1/2) n_in / n_out - 1/2`` clamped at 0, upper
    neighbour clamped to ``n_in - 1``."""
    o = torch.arange(n_out, dtype=torch.float64, device=device)
    src = ((o + 0.5) * (n_in / n_out) - 0.5).clamp(min=0.0)
    lo = src.floor().to(torch.int64).clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = src - lo.to(torch.float64)
    mat = torch.zeros((n_out, n_in), dtype=torch.float64, device=device)
    rows = torch.arange(n_out, device=device)
    mat.index_put_((rows, lo), 1.0 - frac, accumulate=True)
    mat.index_put_((rows, hi), frac, accumulate=True)
    return mat.to(dtype)


class Hypercolumns(nn.Module):
    """Hypercolumn extractor on a multi-stride backbone.

    Parameters
    ----------
    backbone : torch.nn.Module, optional
        Has ``forward_features(x) -> {key: (N, C, h, w)}`` and ``feature_channels``. Default:
        :func:`deep.backbone.efficientnet_lite0` with ImageNet weights (loaded offline), in eval
        mode.
    levels : sequence of int
        Keys of the taps to stack (strides 4, 8, 16, 32 by default: 24 + 40 + 112 + 320 = 496
        channels for EfficientNet-Lite0).

    Attributes
    ----------
    channels : int
        Length of a hypercolumn.

    Examples
    --------
    >>> from deep.backbone import efficientnet_lite0
    >>> hc = Hypercolumns(efficientnet_lite0(pretrained=False))
    >>> hc(torch.zeros(1, 3, 32, 48)).shape
    torch.Size([1, 496, 32, 48])

    Region scoring on a ``bottomup`` image (``(H, W, 3)`` float in [0, 1]) and its candidate masks
    ``(K, H, W)`` bool, without building the full ``(496, H, W)`` map:

    >>> import numpy as np
    >>> image = np.random.default_rng(0).random((40, 60, 3))
    >>> masks = torch.zeros(2, 40, 60, dtype=torch.bool); masks[0, :20] = True; masks[1, 20:] = True
    >>> with torch.no_grad():
    ...     pooled = hc.pool(hc.image_to_tensor(image), masks)
    >>> pooled.shape
    torch.Size([2, 496])

    Shape:
        - Input: :math:`(N, 3, H, W)` normalised images (:func:`deep.backbone.preprocess`).
        - Output: :math:`(N, \\text{channels}, H, W)` (or ``size``).
    """

    def __init__(self, backbone: nn.Module | None = None, levels: Sequence[int] = (4, 8, 16, 32)):
        super().__init__()
        if backbone is None:
            from ..backbone.efficientnet import efficientnet_lite0

            backbone = efficientnet_lite0(pretrained=True)
        missing = [lv for lv in levels if lv not in backbone.feature_channels]
        if missing or not levels:
            raise ValueError(
                f"`levels` must be non-empty keys of the backbone's taps "
                f"{sorted(backbone.feature_channels)}, but got {list(levels)}"
            )
        self.backbone = backbone
        self.levels = tuple(levels)
        self.channels = sum(backbone.feature_channels[lv] for lv in self.levels)

    @staticmethod
    def image_to_tensor(image) -> Tensor:
        """Turn a pipeline image into the backbone's input ``(1, 3, H, W)`` float32, full size.

        Parameters
        ----------
        image : (H, W, 3) ndarray
            RGB, float in [0, 1] (the ``bottomup`` contract) or uint8. Normalised as the ImageNet
            weights expect (:func:`deep.backbone.preprocess` with ``size=None``). Move the result
            to the module's device yourself.
        """
        from ..backbone.efficientnet import preprocess

        return preprocess(image, size=None)

    def features(self, x: Tensor) -> list[Tensor]:
        """The chosen backbone maps of ``x``, coarse resolution, in ``levels`` order."""
        check_float_tensor(x, "x")
        check_shape(x, ["N", 3, "H", "W"], "x")
        taps = self.backbone.forward_features(x)
        return [taps[lv] for lv in self.levels]

    def forward(self, x: Tensor, size=None) -> Tensor:
        """Dense hypercolumns ``(N, channels, H, W)`` at ``size`` (default: the input's)."""
        return hypercolumns(self.features(x), tuple(x.shape[-2:]) if size is None else size)

    def sample(self, x: Tensor, points: Tensor) -> Tensor:
        """Hypercolumns ``(N, P, channels)`` at ``(row, col)`` points of the input."""
        return sample_hypercolumns(self.features(x), points, tuple(x.shape[-2:]))

    def pool(self, x: Tensor, masks: Tensor) -> Tensor:
        """Mean hypercolumn ``(K, channels)`` in each of ``masks (K, H, W)`` of one image."""
        check_shape(masks, ["K", x.shape[-2], x.shape[-1]], "masks")
        return pool_hypercolumns(self.features(x), masks)
