"""Mask refinement: a coarse grid of location-specific classifiers over hypercolumns (Hypercolumns [1]_).

For a candidate, its box (enlarged a little so the mask can grow) is divided into a ``K x K`` grid;
grid cell ``g`` has its own figure/ground classifier on the hypercolumn of a pixel, and the
output at a pixel is the bilinear interpolation of the outputs of the classifiers of the nearest
cell centres, as in the paper. The classifiers here share a hidden layer: in the paper's efficient
form, a linear map of a hypercolumn is the sum over layers of upsampled 1x1 convolutions, so the
1x1 convolutions run on each backbone tap first and only their ``hidden`` channels are sampled in
the box (RoIAlign) and summed; the candidate's own mask, sampled in the same box, is an extra
input (SDS's refinement starts from the candidate). Class-agnostic: the detector's class comes
from :class:`deep.scoring.RegionScorer`.

References
----------
.. [1] B. Hariharan, P. Arbelaez, R. Girshick, J. Malik, "Hypercolumns for Object Segmentation
       and Fine-grained Localization", CVPR 2015. :DOI:`10.1109/CVPR.2015.7298642`
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import check_float_tensor, check_shape
from .ops.roi import roi_align

__all__ = ["MaskRefiner", "expand_boxes", "grid_weights", "mask_nms", "paste_masks"]


def grid_weights(grid: int, size: int) -> Tensor:
    """Bilinear interpolation weights of ``grid x grid`` cell centres on a ``size x size`` window.

    Returns
    -------
    (grid * grid, size, size) Tensor
        Non-negative, summing to 1 at each pixel; pixels outside the outermost centres take the
        nearest centres (clamped).
    """
    pos = (torch.arange(size, dtype=torch.float64) + 0.5) / size * grid - 0.5  # in cell units
    pos = pos.clamp(0, grid - 1)
    lo = pos.floor().long().clamp(max=grid - 1)
    hi = (lo + 1).clamp(max=grid - 1)
    frac = pos - lo
    w1 = torch.zeros(size, grid, dtype=torch.float64)
    w1[torch.arange(size), lo] += 1 - frac
    w1[torch.arange(size), hi] += frac
    return torch.einsum("yg,xh->ghyx", w1, w1).reshape(grid * grid, size, size).float()


def expand_boxes(boxes: Tensor, shape, factor: float = 0.1) -> Tensor:
    """Enlarge ``(K, 4)`` xyxy boxes by ``factor`` of their size on each side, clipped to the image."""
    h, w = shape
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    out = torch.stack([boxes[:, 0] - factor * bw, boxes[:, 1] - factor * bh,
                       boxes[:, 2] + factor * bw, boxes[:, 3] + factor * bh], 1)
    lim = torch.tensor([w, h, w, h], dtype=out.dtype, device=out.device)
    return torch.minimum(torch.maximum(out, torch.zeros_like(lim)), lim)


class MaskRefiner(nn.Module):
    """Refined soft masks of candidates from hypercolumns in their boxes.

    Parameters
    ----------
    level_channels : sequence of int
        Channels of the backbone taps (in the order they are passed).
    grid : int
        ``K``: the ``K x K`` location-specific classifiers (the paper uses 5 or 10).
    size : int
        Side of the predicted window (the paper predicts 50 x 50).
    hidden : int

    Shape:
        - levels: sequence of :math:`(1, C_l, h_l, w_l)`, one image.
        - boxes: :math:`(K, 4)` xyxy in image pixels; masks: :math:`(K, H, W)` candidate masks.
        - Output: logits :math:`(K, \\text{size}, \\text{size})` over the boxes.
    """

    def __init__(self, level_channels, grid: int = 10, size: int = 50, hidden: int = 64):
        super().__init__()
        if grid < 1 or size < grid:
            raise ValueError(f"need 1 <= grid <= size, got grid={grid}, size={size}")
        self.level_channels = tuple(int(c) for c in level_channels)
        self.proj = nn.ModuleList([nn.Conv2d(c, hidden, 1) for c in self.level_channels])
        self.mask_proj = nn.Conv2d(1, hidden, 1)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(hidden, grid * grid, 1))
        self.register_buffer("weights", grid_weights(grid, size), persistent=False)
        self.grid, self.size = grid, size

    def forward(self, levels, boxes: Tensor, masks: Tensor, image_shape) -> Tensor:
        check_float_tensor(boxes, "boxes")
        check_shape(boxes, ["K", 4], "boxes")
        _h, w = int(image_shape[0]), int(image_shape[1])
        if len(levels) != len(self.level_channels):
            raise ValueError(f"expected {len(self.level_channels)} feature levels, got {len(levels)}")
        k = boxes.shape[0]
        if k == 0:
            return boxes.new_zeros((0, self.size, self.size))
        acc = None
        for f, conv in zip(levels, self.proj, strict=False):
            check_shape(f, [1, conv.in_channels, "h", "w"], "levels[i]")
            scale = f.shape[-1] / w
            r = roi_align(conv(f.float()), [boxes], self.size, spatial_scale=scale, sampling_ratio=2,
                          aligned=True)
            acc = r if acc is None else acc + r
        m = roi_align(masks.float()[:, None] if masks.ndim == 3 else masks.float(),
                      torch.cat([torch.arange(k, dtype=boxes.dtype, device=boxes.device)[:, None],
                                 boxes], 1),
                      self.size, sampling_ratio=2, aligned=True)
        scores = self.head(acc + self.mask_proj(m * 2 - 1))  # (K, G, S, S)
        return (scores * self.weights).sum(1)


def paste_masks(probs: Tensor, boxes: Tensor, shape) -> Tensor:
    """Put ``(K, S, S)`` window probabilities back into ``(K, H, W)`` images through their boxes.

    The window is resampled bilinearly onto the pixels whose centres fall in the box (the
    RoIAlign pixel-centre model); pixels outside the box get 0.
    """
    h, w = int(shape[0]), int(shape[1])
    k, _s = probs.shape[0], probs.shape[-1]
    if k == 0:
        return probs.new_zeros((0, h, w))
    ys = torch.arange(h, dtype=probs.dtype, device=probs.device) + 0.5
    xs = torch.arange(w, dtype=probs.dtype, device=probs.device) + 0.5
    b = boxes.to(probs.dtype)
    gy = (ys[None] - b[:, 1:2]) / (b[:, 3:4] - b[:, 1:2]).clamp(min=1e-6) * 2 - 1  # (K, H)
    gx = (xs[None] - b[:, 0:1]) / (b[:, 2:3] - b[:, 0:1]).clamp(min=1e-6) * 2 - 1  # (K, W)
    grid = torch.stack([gx[:, None, :].expand(k, h, w), gy[:, :, None].expand(k, h, w)], -1)
    out = F.grid_sample(probs[:, None], grid, mode="bilinear", align_corners=False, padding_mode="border")
    inside = (gy.abs() <= 1)[:, :, None] & (gx.abs() <= 1)[:, None, :]
    return out[:, 0] * inside


def mask_nms(masks: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float = 0.5,
             max_keep: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression on masks, per class.

    Parameters
    ----------
    masks : (K, H, W) bool
    scores : (K,) float
    classes : (K,) int
    iou_threshold : float
        A mask is dropped when its IoU with a kept mask of the same class exceeds this.

    Returns
    -------
    keep : (M,) int64
        Indices of kept masks, by decreasing score.

    Examples
    --------
    >>> m = np.zeros((3, 4, 4), bool); m[0, :2] = True; m[1, :2, :3] = True; m[2, 2:] = True
    >>> mask_nms(m, np.array([.9, .8, .7]), np.array([1, 1, 1])).tolist()
    [0, 2]
    """
    k = masks.shape[0]
    order = np.argsort(-np.asarray(scores), kind="stable")
    flat = masks.reshape(k, -1).astype(np.float32)
    area = flat.sum(1)
    inter = flat @ flat.T
    iou = inter / np.maximum(area[:, None] + area[None] - inter, 1.0)
    keep: list[int] = []
    for i in order:
        if any(classes[j] == classes[i] and iou[i, j] > iou_threshold for j in keep):
            continue
        keep.append(int(i))
        if max_keep is not None and len(keep) >= max_keep:
            break
    return np.array(keep, np.int64)
