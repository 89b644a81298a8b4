"""RoIAlign and RoIPool in pure, vectorised, differentiable torch, with torchvision's signatures.

Both follow the arithmetic of torchvision's CPU kernels
(``torchvision/csrc/ops/cpu/roi_*_kernel.cpp``) so that torchvision can serve as a drop-in
oracle; ``tests/deep/naive.py`` holds a plain Python loop of the same arithmetic.

References
----------
.. [1] R. Girshick, "Fast R-CNN", ICCV 2015 (RoIPool).
.. [2] K. He, G. Gkioxari, P. Dollar and R. Girshick, "Mask R-CNN", ICCV 2017 (RoIAlign).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_float_tensor, check_shape

__all__ = ["roi_align", "RoIAlign", "roi_pool", "RoIPool", "boxes_to_rois"]

#: Boxes: a ``(K, 5)`` tensor of ``[batch_index, x1, y1, x2, y2]`` or one ``(L_i, 4)`` per image.
BoxesT = Tensor | Sequence[Tensor]
#: ``PH`` and ``PW``, or one int for both.
SizeT = int | tuple[int, int]

# RoIs RoIPool processes at once (bounds the gathered windows' memory).
_POOL_CHUNK = 64


def _pair(v, name: str) -> tuple[int, int]:
    if isinstance(v, int):
        v = (v, v)
    if (
        not isinstance(v, (tuple, list))
        or len(v) != 2
        or not all(isinstance(i, int) and i > 0 for i in v)
    ):
        raise ValueError(f"`{name}` must be a positive int or a pair of them, but got {v!r}")
    return int(v[0]), int(v[1])


def boxes_to_rois(boxes: BoxesT, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Convert torchvision-style boxes to a ``(K, 5)`` tensor ``[batch_index, x1, y1, x2, y2]``.

    Parameters
    ----------
    boxes : (K, 5) torch.Tensor or list of (L_i, 4) torch.Tensor
        Either RoIs with their batch index in column 0, or one tensor of xyxy boxes per image.
    dtype, device
        Of the returned tensor (the feature map's).

    Returns
    -------
    rois : (K, 5) torch.Tensor
    """
    if isinstance(boxes, (list, tuple)):
        parts = []
        for i, b in enumerate(boxes):
            if not isinstance(b, Tensor):
                raise TypeError(f"`boxes[{i}]` must be a torch.Tensor, but got {type(b).__name__}")
            check_shape(b, ["L", 4], f"boxes[{i}]")
            b = b.to(device=device, dtype=dtype)
            idx = torch.full((b.shape[0], 1), float(i), dtype=dtype, device=device)
            parts.append(torch.cat([idx, b], dim=1))
        if not parts:
            return torch.zeros((0, 5), dtype=dtype, device=device)
        return torch.cat(parts, dim=0)
    if isinstance(boxes, Tensor):
        check_shape(boxes, ["K", 5], "boxes")
        return boxes.to(device=device, dtype=dtype)
    raise TypeError(
        f"`boxes` must be a Tensor[K, 5] or a list of Tensor[L, 4], but got {type(boxes).__name__}"
    )


def _check_roi_inputs(input, boxes, name: str) -> Tensor:
    check_float_tensor(input, "input")
    check_shape(input, ["N", "C", "H", "W"], "input")
    if input.shape[-1] == 0 or input.shape[-2] == 0:
        raise ValueError(f"`input` must have H, W >= 1, but got shape {tuple(input.shape)}")
    # box arithmetic in at least float32: half precision cannot hold coordinates like 300.5
    rois = boxes_to_rois(boxes, torch.promote_types(input.dtype, torch.float32), input.device)
    if rois.shape[0]:
        if not torch.isfinite(rois).all():
            raise ValueError(f"`boxes` of {name} must be finite, but contain NaN or inf")
        idx = rois[:, 0]
        n = input.shape[0]
        if (idx != idx.round()).any() or (idx < 0).any() or (idx >= n).any():
            raise ValueError(
                f"`boxes[:, 0]` (batch index) must be integers in [0, {n}) for an input of batch "
                f"size {n}, but got values in [{idx.min().item()}, {idx.max().item()}]"
            )
        if (rois[:, 3] < rois[:, 1]).any() or (rois[:, 4] < rois[:, 2]).any():
            raise ValueError("`boxes` must be xyxy with x1 <= x2 and y1 <= y2")
    return rois


def _axis_weights(start: Tensor, bin_size: Tensor, grid: Tensor, n_bins: int, size: int) -> Tensor:
    """Summed bilinear weights ``(K, n_bins, size)`` of the regular samples in each bin, one axis.

    The sample ``i`` of bin ``p`` sits at ``start + p * bin + (i + 1/2) * bin / grid``; samples
    beyond ``[-1, size]`` weigh nothing, others are clamped to ``[0, size - 1]``.
    """
    k = start.shape[0]
    g_max = max(int(grid.max().item()), 1) if k else 1
    dtype, device = start.dtype, start.device
    p = torch.arange(n_bins, dtype=dtype, device=device).view(1, n_bins, 1)
    i = torch.arange(g_max, dtype=dtype, device=device).view(1, 1, g_max)
    gridf = grid.to(dtype).clamp(min=1).view(k, 1, 1)
    coord = (
        start.view(k, 1, 1)
        + p * bin_size.view(k, 1, 1)
        + (i + 0.5) * bin_size.view(k, 1, 1) / gridf
    )
    used = (i < grid.view(k, 1, 1)) & (coord >= -1.0) & (coord <= size)
    coord = coord.clamp(min=0)
    low = coord.floor().to(torch.int64)
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    high = torch.where(at_end, low, low + 1)
    frac = torch.where(at_end, torch.zeros_like(coord), coord - low.to(dtype))
    w_low = (1.0 - frac) * used
    w_high = frac * used
    out = torch.zeros((k, n_bins, g_max, size), dtype=dtype, device=device)
    out = out.scatter_add(3, low.unsqueeze(-1), w_low.unsqueeze(-1))
    out = out.scatter_add(3, high.unsqueeze(-1), w_high.unsqueeze(-1))
    return out.sum(2)


def roi_align(
    input: Tensor,
    boxes: BoxesT,
    output_size: SizeT,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """Pool each RoI to a fixed grid by averaging bilinearly interpolated samples (RoIAlign).

    Parameters
    ----------
    input : (N, C, H, W) torch.Tensor of float
        Feature maps.
    boxes : (K, 5) torch.Tensor or list of (L_i, 4) torch.Tensor
        ``[batch_index, x1, y1, x2, y2]`` rows, or one tensor of xyxy boxes per image, in input
        image coordinates (multiplied by ``spatial_scale`` to reach the feature map).
    output_size : int or (int, int)
        ``(PH, PW)`` bins per RoI.
    spatial_scale : float
        Feature-map size over image size (1/16 for a stride-16 map).
    sampling_ratio : int
        Samples per bin along each axis; ``<= 0`` takes ``ceil(roi_size / bins)`` per RoI.
    aligned : bool
        Shift the scaled box by -0.5 (pixel-centre model, detectron2's ROIAlignV2). ``False`` is the
        legacy behaviour, which also clamps the RoI size to at least 1.

    Returns
    -------
    output : (K, C, PH, PW) torch.Tensor
        ``K = 0`` gives an empty tensor of that shape. Samples outside ``[-1, H] x [-1, W]``
        count as zero, so a box outside the map yields zeros (torchvision's behaviour).

    Notes
    -----
    Bilinear interpolation is separable, so the sampled mean of each bin is ``A_y X A_x^T`` with
    per-RoI weight matrices ``A_y (PH, H)`` and ``A_x (PW, W)``: two contractions, no gathers,
    differentiable in ``input`` (and in the box coordinates). Cost ``O(K C PH H W)``.

    Examples
    --------
    >>> x = torch.arange(16.).view(1, 1, 4, 4)
    >>> roi_align(x, torch.tensor([[0., 0., 0., 2., 2.]]), 1, sampling_ratio=1)
    tensor([[[[5.]]]])
    """
    ph, pw = _pair(output_size, "output_size")
    if not isinstance(sampling_ratio, int):
        raise TypeError(f"`sampling_ratio` must be an int, but got {type(sampling_ratio).__name__}")
    rois = _check_roi_inputs(input, boxes, "roi_align")
    n, c, h, w = input.shape
    k = rois.shape[0]
    if k == 0:
        return input.new_zeros((0, c, ph, pw))
    offset = 0.5 if aligned else 0.0
    x1 = rois[:, 1] * spatial_scale - offset
    y1 = rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale - offset - x1
    roi_h = rois[:, 4] * spatial_scale - offset - y1
    if not aligned:
        roi_w = roi_w.clamp(min=1.0)
        roi_h = roi_h.clamp(min=1.0)
    bin_h, bin_w = roi_h / ph, roi_w / pw
    if sampling_ratio > 0:
        grid_h = torch.full((k,), sampling_ratio, dtype=torch.int64, device=input.device)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(roi_h.detach() / ph).to(torch.int64)
        grid_w = torch.ceil(roi_w.detach() / pw).to(torch.int64)
    count = (grid_h * grid_w).clamp(min=1).to(rois.dtype)
    # the 1 / count of each RoI is folded into its row weights
    a_y = _axis_weights(y1, bin_h, grid_h, ph, h) / count.view(k, 1, 1)  # (K, PH, H)
    a_y = a_y.to(input.dtype)
    a_x = _axis_weights(x1, bin_w, grid_w, pw, w).to(input.dtype)  # (K, PW, W)
    batch = rois[:, 0].to(torch.int64)
    out = input.new_zeros((k, c, ph, pw))
    for b in torch.unique(batch).tolist():
        sel = (batch == b).nonzero().squeeze(1)
        t = torch.einsum("kqh,chw->kcqw", a_y[sel], input[b])
        out = out.index_copy(0, sel, torch.einsum("kcqw,kpw->kcqp", t, a_x[sel]))
    return out


class RoIAlign(nn.Module):
    """Module form of :func:`roi_align`.

    Parameters
    ----------
    output_size : int or (int, int)
    spatial_scale : float
    sampling_ratio : int
    aligned : bool
        As in :func:`roi_align`.

    Shape:
        - Input: :math:`(N, C, H, W)` and boxes :math:`(K, 5)` or a list of :math:`(L_i, 4)`.
        - Output: :math:`(K, C, PH, PW)`.
    """

    def __init__(
        self,
        output_size: SizeT,
        spatial_scale: float = 1.0,
        sampling_ratio: int = -1,
        aligned: bool = False,
    ):
        super().__init__()
        self.output_size = _pair(output_size, "output_size")
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: Tensor, rois: BoxesT) -> Tensor:
        return roi_align(
            input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
        )

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )


def _round_half_away(x: Tensor) -> Tensor:
    """C's ``round``: halves go away from zero (``torch.round`` rounds them to even)."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def _bin_bounds(start: Tensor, length: Tensor, n_bins: int, size: int) -> tuple[Tensor, Tensor]:
    """First and one-past-last cell ``(K, n_bins)`` of each RoIPool bin along one axis."""
    k = start.shape[0]
    p = torch.arange(n_bins, dtype=torch.float64, device=start.device).view(1, n_bins)
    bin_size = length.to(torch.float64).view(k, 1) / n_bins
    lo = torch.floor(p * bin_size).to(torch.int64) + start.view(k, 1)
    hi = torch.ceil((p + 1) * bin_size).to(torch.int64) + start.view(k, 1)
    return lo.clamp(0, size), hi.clamp(0, size)


def _window(lo: Tensor, hi: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Cell indices ``(K, P, B)`` of each bin, padded to the widest bin ``B``, and validity."""
    width = max(int((hi - lo).max().item()), 1)
    idx = lo.unsqueeze(-1) + torch.arange(width, device=lo.device)
    valid = idx < hi.unsqueeze(-1)
    return idx.clamp(0, max(size - 1, 0)), valid


def roi_pool(
    input: Tensor, boxes: BoxesT, output_size: SizeT, spatial_scale: float = 1.0
) -> Tensor:
    """Max-pool each RoI, rounded to feature cells, into a fixed grid of bins (RoIPool).

    Parameters
    ----------
    input : (N, C, H, W) torch.Tensor of float
        Feature maps.
    boxes : (K, 5) torch.Tensor or list of (L_i, 4) torch.Tensor
        As in :func:`roi_align`.
    output_size : int or (int, int)
        ``(PH, PW)`` bins per RoI.
    spatial_scale : float
        Feature-map size over image size.

    Returns
    -------
    output : (K, C, PH, PW) torch.Tensor
        Empty bins (RoI outside the map) give 0; ``K = 0`` gives an empty tensor of that shape.

    Notes
    -----
    Box corners are scaled and rounded half away from zero; the RoI spans
    ``round(x2) - round(x1) + 1`` cells and bin ``p`` covers cells
    ``[floor(p * len / P), ceil((p + 1) * len / P))`` from its start, clipped to the map. The
    maximum of a rectangle is a max over gathered column windows, then over row windows (each
    padded to the widest bin), with RoIs processed in chunks of 64; memory
    ``O(chunk C H (W_roi + PW))``. Gradients flow to the maximum (split evenly between exact ties).

    Examples
    --------
    >>> x = torch.arange(16.).view(1, 1, 4, 4)
    >>> roi_pool(x, torch.tensor([[0., 0., 0., 3., 3.]]), 2)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """
    ph, pw = _pair(output_size, "output_size")
    rois = _check_roi_inputs(input, boxes, "roi_pool")
    n, c, h, w = input.shape
    k = rois.shape[0]
    if k == 0:
        return input.new_zeros((0, c, ph, pw))
    corners = _round_half_away(rois[:, 1:].detach().to(torch.float64) * spatial_scale)
    xs, ys, xe, ye = corners.to(torch.int64).T
    rw = (xe - xs + 1).clamp(min=1)
    rh = (ye - ys + 1).clamp(min=1)
    y_lo, y_hi = _bin_bounds(ys, rh, ph, h)  # (K, PH)
    x_lo, x_hi = _bin_bounds(xs, rw, pw, w)  # (K, PW)
    empty = (y_hi <= y_lo).unsqueeze(2) | (x_hi <= x_lo).unsqueeze(1)  # (K, PH, PW)
    batch = rois[:, 0].to(torch.int64)
    neg = torch.tensor(-math.inf, dtype=input.dtype, device=input.device)
    outs = []
    for s in range(0, k, _POOL_CHUNK):
        sl = slice(s, s + _POOL_CHUNK)
        col, col_ok = _window(x_lo[sl], x_hi[sl], w)  # (k, PW, Bw)
        row, row_ok = _window(y_lo[sl], y_hi[sl], h)  # (k, PH, Bh)
        kk, _, bw = col.shape
        bh = row.shape[-1]
        feats = input[batch[sl]]  # (k, C, H, W)
        a = feats.gather(3, col.view(kk, 1, 1, pw * bw).expand(kk, c, h, pw * bw))
        a = torch.where(col_ok.view(kk, 1, 1, pw, bw), a.view(kk, c, h, pw, bw), neg).amax(-1)
        b = a.gather(2, row.view(kk, 1, ph * bh, 1).expand(kk, c, ph * bh, pw))
        b = torch.where(row_ok.view(kk, 1, ph, bh, 1), b.view(kk, c, ph, bh, pw), neg).amax(3)
        outs.append(b)
    out = torch.cat(outs, dim=0)
    return torch.where(
        empty.unsqueeze(1), torch.zeros((), dtype=input.dtype, device=input.device), out
    )


class RoIPool(nn.Module):
    """Module form of :func:`roi_pool`.

    Parameters
    ----------
    output_size : int or (int, int)
    spatial_scale : float
        As in :func:`roi_pool`.

    Shape:
        - Input: :math:`(N, C, H, W)` and boxes :math:`(K, 5)` or a list of :math:`(L_i, 4)`.
        - Output: :math:`(K, C, PH, PW)`.
    """

    def __init__(self, output_size: SizeT, spatial_scale: float = 1.0):
        super().__init__()
        self.output_size = _pair(output_size, "output_size")
        self.spatial_scale = spatial_scale

    def forward(self, input: Tensor, rois: BoxesT) -> Tensor:
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"
