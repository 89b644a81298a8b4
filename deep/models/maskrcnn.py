"""Mask R-CNN on EfficientNet-Lite0 with a feature pyramid; RoIs from its RPN or from bottom-up
candidates (SCG/MCG), in torchvision's input and output format.

The parts, each a small pure function or module below:

* box coding (:func:`encode_boxes`, :func:`decode_boxes`), anchors (:func:`cell_anchors`,
  :func:`grid_anchors`), matching (:func:`match_boxes`) and sampling (:func:`sample_balanced`) as in
  Faster R-CNN [3]_; :func:`nms` / :func:`batched_nms` (greedy, pure torch);
* :class:`FPN` over the stride 4, 8, 16 and 32 taps of the backbone, plus a max-pooled stride-64
  level for the RPN only (P2..P6 of [2]_);
* :class:`RPNHead`: objectness and box deltas of 3 anchors (aspect ratios 1:2, 1:1, 2:1) at every
  position of every level, anchors of size 32..512 on P2..P6 [2]_;
* :func:`multiscale_roi_align`: each RoI pooled from the level :func:`assign_fpn_levels` picks
  (Eq. 1 of [2]_) with :func:`deep.ops.roi_align` (``aligned=True``);
* :class:`BoxHead` (two fully connected layers, class scores and per-class box deltas) and
  :class:`MaskHead` (four 3x3 convolutions, a 2x2 transposed convolution, per-class 28x28 mask
  logits) [1]_;
* the losses :func:`rpn_loss`, :func:`fast_rcnn_loss`, :func:`mask_rcnn_loss` [1]_ [3]_;
* inference: per-class NMS, then masks pasted into the image through their boxes.

Coordinates
-----------
Boxes are xyxy floats in *continuous* pixel coordinates: pixel ``(row r, col c)`` covers
``[c, c + 1) x [r, r + 1)``, so a mask's tight box is :func:`deep.ops.masks_to_boxes` plus 1 on
``x2, y2`` (:func:`masks_to_xyxy`), and a bottom-up candidate's half-open ``(r0, c0, r1, c1)`` box
is ``(c0, r0, c1, r1)`` (:func:`candidates_to_proposals`, the one place that converts). RoIAlign
runs with ``aligned=True`` (pixel centres at ``+0.5``), which is the same model.

Classes
-------
As in torchvision, ``num_classes`` counts the background: labels are ``1..num_classes-1`` and 0 is
background. A dataset whose classes are ``0..C-1`` maps class ``c`` to label ``c + 1``.

References
----------
.. [1] K. He, G. Gkioxari, P. Dollar and R. Girshick, "Mask R-CNN", ICCV 2017.
       arXiv:1703.06870
.. [2] T.-Y. Lin, P. Dollar, R. Girshick, K. He, B. Hariharan and S. Belongie, "Feature Pyramid
       Networks for Object Detection", CVPR 2017. arXiv:1612.03144
.. [3] S. Ren, K. He, R. Girshick and J. Sun, "Faster R-CNN: Towards Real-Time Object Detection
       with Region Proposal Networks", NeurIPS 2015. arXiv:1506.01497
.. [4] R. Girshick, "Fast R-CNN", ICCV 2015 (RoI sampling, smooth L1 box loss).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_float_tensor, check_shape, check_tensor
from ..ops.masks import masks_to_boxes
from ..ops.roi import boxes_to_rois, roi_align

__all__ = [
    "MaskRCNN",
    "LoadedMaskRCNN",
    "load_maskrcnn",
    "save_maskrcnn",
    "FPN",
    "RPNHead",
    "BoxHead",
    "MaskHead",
    "box_iou",
    "nms",
    "batched_nms",
    "encode_boxes",
    "decode_boxes",
    "clip_boxes",
    "cell_anchors",
    "grid_anchors",
    "match_boxes",
    "rpn_targets",
    "sample_balanced",
    "assign_fpn_levels",
    "multiscale_roi_align",
    "mask_targets",
    "masks_to_xyxy",
    "candidates_to_proposals",
    "rpn_loss",
    "fast_rcnn_loss",
    "mask_rcnn_loss",
    "BELOW_LOW",
    "BETWEEN",
]

#: :func:`match_boxes` codes: IoU below the low threshold (background) and in between (ignored).
BELOW_LOW = -1
BETWEEN = -2
#: Largest log-scale change :func:`decode_boxes` allows (torchvision's ``log(1000 / 16)``).
DELTA_CLIP = math.log(1000.0 / 16)
#: Taps of the backbone the FPN reads (P2..P5), and the strides of all RPN levels (P2..P6).
TAP_STRIDES = (4, 8, 16, 32)
RPN_STRIDES = (4, 8, 16, 32, 64)


# --------------------------------------------------------------------------------------------
# boxes
# --------------------------------------------------------------------------------------------


def box_iou(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """Intersection over union of every pair of xyxy boxes.

    Parameters
    ----------
    boxes_a : (N, 4) torch.Tensor
    boxes_b : (M, 4) torch.Tensor

    Returns
    -------
    iou : (N, M) torch.Tensor
        0 where the union is empty.

    Examples
    --------
    >>> box_iou(torch.tensor([[0., 0., 2., 2.]]), torch.tensor([[1., 0., 3., 2.]]))
    tensor([[0.3333]])
    """
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    lt = torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    rb = torch.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression (torchvision's ``nms``).

    Parameters
    ----------
    boxes : (N, 4) torch.Tensor
        xyxy.
    scores : (N,) torch.Tensor
    iou_threshold : float
        A box is dropped when its IoU with a kept, higher-scoring box is above this.

    Returns
    -------
    keep : (M,) torch.Tensor of int64
        Indices of the kept boxes, by decreasing score.

    Notes
    -----
    The IoU matrix of the boxes is computed at once (``O(N^2)`` memory, on the boxes' device), then
    the greedy pass runs over the survivors only. :func:`batched_nms` calls it per group, which
    keeps ``N`` to one class or one pyramid level.

    Examples
    --------
    >>> b = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
    >>> nms(b, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist()
    [0, 2]
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros((0,), dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    over = (box_iou(boxes[order], boxes[order]) > iou_threshold).cpu().numpy()
    keep = []
    alive = np.arange(n)
    while alive.size:
        i = alive[0]
        keep.append(i)
        alive = alive[1:][~over[i, alive[1:]]]
    return order[torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)]


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float) -> Tensor:
    """:func:`nms` within each group (class or level) independently.

    Parameters
    ----------
    boxes : (N, 4) torch.Tensor
    scores : (N,) torch.Tensor
    groups : (N,) torch.Tensor of int
        Boxes of different groups never suppress each other.
    iou_threshold : float

    Returns
    -------
    keep : (M,) torch.Tensor of int64
        By decreasing score over all groups.

    Examples
    --------
    >>> b = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
    >>> batched_nms(b, torch.tensor([0.9, 0.8]), torch.tensor([1, 2]), 0.5).tolist()
    [0, 1]
    """
    if boxes.shape[0] == 0:
        return torch.zeros((0,), dtype=torch.int64, device=boxes.device)
    keep = []
    for g in torch.unique(groups):
        idx = (groups == g).nonzero().squeeze(1)
        keep.append(idx[nms(boxes[idx], scores[idx], iou_threshold)])
    keep = torch.cat(keep)
    return keep[torch.argsort(scores[keep], descending=True, stable=True)]


def encode_boxes(reference: Tensor, targets: Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> Tensor:
    """Deltas that move each reference box onto its target (the R-CNN box parametrisation).

    Parameters
    ----------
    reference : (K, 4) torch.Tensor
        xyxy anchors or proposals, with positive sides.
    targets : (K, 4) torch.Tensor
        xyxy boxes they should become.
    weights : 4 floats
        ``(wx, wy, ww, wh)`` multipliers (RPN: 1, 1, 1, 1; box head: 10, 10, 5, 5).

    Returns
    -------
    deltas : (K, 4) torch.Tensor
        ``(wx (gx - px) / pw, wy (gy - py) / ph, ww log(gw / pw), wh log(gh / ph))`` with
        centres ``(x, y)`` and sides ``(w, h)``; Eq. 2 of [3]_ (Faster R-CNN).

    Examples
    --------
    >>> encode_boxes(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[5., 0., 15., 20.]]))
    tensor([[0.5000, 0.5000, 0.0000, 0.6931]])
    """
    wx, wy, ww, wh = weights
    pw = reference[:, 2] - reference[:, 0]
    ph = reference[:, 3] - reference[:, 1]
    px = reference[:, 0] + 0.5 * pw
    py = reference[:, 1] + 0.5 * ph
    gw = targets[:, 2] - targets[:, 0]
    gh = targets[:, 3] - targets[:, 1]
    gx = targets[:, 0] + 0.5 * gw
    gy = targets[:, 1] + 0.5 * gh
    return torch.stack(
        [wx * (gx - px) / pw, wy * (gy - py) / ph, ww * torch.log(gw / pw), wh * torch.log(gh / ph)],
        dim=1,
    )


def decode_boxes(deltas: Tensor, reference: Tensor, weights=(1.0, 1.0, 1.0, 1.0),
                 clip: float = DELTA_CLIP) -> Tensor:
    """Apply deltas to reference boxes: the inverse of :func:`encode_boxes`.

    Parameters
    ----------
    deltas : (K, 4 * J) torch.Tensor
        ``J`` sets of deltas per box (one per class in the box head).
    reference : (K, 4) torch.Tensor
        xyxy.
    weights : 4 floats
        As given to :func:`encode_boxes`.
    clip : float
        The log-scale deltas are clamped to at most this (no overflow of ``exp``).

    Returns
    -------
    boxes : (K, 4 * J) torch.Tensor
        xyxy per set.

    Examples
    --------
    >>> ref = torch.tensor([[0., 0., 10., 10.]])
    >>> decode_boxes(encode_boxes(ref, torch.tensor([[5., 0., 15., 20.]])), ref)
    tensor([[ 5.,  0., 15., 20.]])
    """
    wx, wy, ww, wh = weights
    k = reference.shape[0]
    d = deltas.reshape(k, -1, 4)
    pw = (reference[:, 2] - reference[:, 0])[:, None]
    ph = (reference[:, 3] - reference[:, 1])[:, None]
    px = reference[:, 0][:, None] + 0.5 * pw
    py = reference[:, 1][:, None] + 0.5 * ph
    cx = d[..., 0] / wx * pw + px
    cy = d[..., 1] / wy * ph + py
    w = torch.exp((d[..., 2] / ww).clamp(max=clip)) * pw
    h = torch.exp((d[..., 3] / wh).clamp(max=clip)) * ph
    out = torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)
    return out.reshape(k, -1)


def clip_boxes(boxes: Tensor, size) -> Tensor:
    """Clamp ``(..., 4)`` xyxy boxes into an image of ``size = (H, W)`` (``[0, W] x [0, H]``)."""
    h, w = float(size[0]), float(size[1])
    x = boxes[..., 0::2].clamp(0, w)
    y = boxes[..., 1::2].clamp(0, h)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def masks_to_xyxy(masks: Tensor) -> Tensor:
    """Tight continuous xyxy boxes of ``(K, H, W)`` masks: :func:`deep.ops.masks_to_boxes` + 1 on
    ``x2, y2`` (the box covers the last pixel, see the module notes).

    Examples
    --------
    >>> m = torch.zeros(1, 4, 5, dtype=torch.bool); m[0, 1:3, 2:5] = True
    >>> masks_to_xyxy(m)
    tensor([[2., 1., 5., 3.]])
    """
    b = masks_to_boxes(masks)
    return b + torch.tensor([0.0, 0.0, 1.0, 1.0], device=b.device)


def candidates_to_proposals(candidates, *, with_masks: bool = False, n: int | None = None) -> dict:
    """Bottom-up candidates as the ``proposals`` of :class:`MaskRCNN` (``rois="external"``).

    Parameters
    ----------
    candidates : bottomup.mcg.Candidates
        From :func:`bottomup.mcg.proposals`; boxes half-open ``(r0, c0, r1, c1)``.
    with_masks : bool
        Also return the candidates' masks (for ``mask_prior=True``).
    n : int, optional
        Keep the first (best-ranked) ``n``.

    Returns
    -------
    proposals : dict
        ``{"boxes": (K, 4) float32 xyxy}`` (``(c0, r0, c1, r1)``: the row/col to x/y switch of the
        model happens here only), plus ``"masks": (K, H, W) bool`` with ``with_masks``.
    """
    boxes = np.asarray(candidates.boxes, np.float32).reshape(-1, 4)
    k = boxes.shape[0] if n is None else min(int(n), boxes.shape[0])
    out = {"boxes": torch.from_numpy(np.ascontiguousarray(boxes[:k][:, [1, 0, 3, 2]]))}
    if with_masks:
        if k:
            out["masks"] = torch.from_numpy(np.asarray(candidates.masks(np.arange(k)), bool))
        else:
            out["masks"] = torch.zeros((0, *candidates.leaf_labels.shape), dtype=torch.bool)
    return out


# --------------------------------------------------------------------------------------------
# anchors, matching, sampling, levels
# --------------------------------------------------------------------------------------------


def cell_anchors(size: float, aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0)) -> Tensor:
    """Anchors of one pyramid level, centred on the origin.

    Parameters
    ----------
    size : float
        Square root of every anchor's area (32, 64, 128, 256, 512 on P2..P6 in FPN [2]_).
    aspect_ratios : sequence of float
        Height over width of each anchor (1:2, 1:1, 2:1).

    Returns
    -------
    anchors : (A, 4) torch.Tensor of float32
        xyxy, ``w = size / sqrt(r)``, ``h = size * sqrt(r)``.

    Examples
    --------
    >>> cell_anchors(8, (1.0, 4.0))
    tensor([[-4., -4.,  4.,  4.],
            [-2., -8.,  2.,  8.]])
    """
    r = torch.as_tensor(aspect_ratios, dtype=torch.float64)
    w = size / torch.sqrt(r)
    h = size * torch.sqrt(r)
    return torch.stack([-w / 2, -h / 2, w / 2, h / 2], dim=1).float()


def grid_anchors(cell: Tensor, feature_size, stride: int) -> Tensor:
    """Anchors at every position of a feature map.

    Parameters
    ----------
    cell : (A, 4) torch.Tensor
        :func:`cell_anchors`.
    feature_size : (int, int)
        ``(h, w)`` of the map.
    stride : int
        Image pixels per map cell.

    Returns
    -------
    anchors : (h * w * A, 4) torch.Tensor
        Ordered by row, column, then anchor (the order of the flattened RPN outputs); cell
        ``(i, j)`` is centred on ``((j + 0.5) * stride, (i + 0.5) * stride)``, the centre of the
        image pixels it covers.

    Examples
    --------
    >>> grid_anchors(torch.tensor([[-1., -1., 1., 1.]]), (1, 2), 4)
    tensor([[1., 1., 3., 3.],
            [5., 1., 7., 3.]])
    """
    h, w = int(feature_size[0]), int(feature_size[1])
    ys = (torch.arange(h, dtype=cell.dtype, device=cell.device) + 0.5) * stride
    xs = (torch.arange(w, dtype=cell.dtype, device=cell.device) + 0.5) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    shifts = torch.stack([cx, cy, cx, cy], dim=-1).reshape(-1, 1, 4)
    return (shifts + cell.view(1, -1, 4)).reshape(-1, 4)


def match_boxes(iou: Tensor, high: float, low: float, allow_low_quality: bool = False) -> Tensor:
    """Match each prediction (anchor or proposal) to its best ground-truth box.

    Parameters
    ----------
    iou : (G, N) torch.Tensor
        IoU of ground truth ``g`` with prediction ``n``.
    high, low : float
        IoU ``>= high``: matched (foreground); ``< low``: :data:`BELOW_LOW` (background); in
        between: :data:`BETWEEN` (ignored). RPN: 0.7 / 0.3; box head: 0.5 / 0.5 [3]_.
    allow_low_quality : bool
        Also match every ground truth to the predictions of its highest IoU, even below ``high``
        (the RPN's second positive rule in [3]_, so that every object has an anchor).

    Returns
    -------
    matches : (N,) torch.Tensor of int64
        Index of the matched ground truth, or :data:`BELOW_LOW` / :data:`BETWEEN`. With ``G = 0``
        every prediction is :data:`BELOW_LOW`.

    Examples
    --------
    >>> iou = torch.tensor([[0.8, 0.5, 0.1, 0.2], [0.1, 0.6, 0.2, 0.4]])
    >>> match_boxes(iou, 0.7, 0.3).tolist()
    [0, -2, -1, -2]
    >>> match_boxes(iou, 0.7, 0.3, allow_low_quality=True).tolist()
    [0, 1, -1, -2]
    """
    if iou.shape[0] == 0:
        return torch.full((iou.shape[1],), BELOW_LOW, dtype=torch.int64, device=iou.device)
    vals, matches = iou.max(dim=0)
    out = matches.clone()
    out[vals < low] = BELOW_LOW
    out[(vals >= low) & (vals < high)] = BETWEEN
    if allow_low_quality:
        best = iou.max(dim=1, keepdim=True).values  # (G, 1)
        pred = ((iou == best) & (best > 0)).any(dim=0).nonzero().squeeze(1)
        out[pred] = matches[pred]
    return out


def rpn_targets(anchors: Tensor, gt_boxes: Tensor, fg_iou: float = 0.7,
                bg_iou: float = 0.3) -> tuple[Tensor, Tensor]:
    """Labels and regression targets of every anchor for the RPN (Sec. 3.1.2 of [3]_).

    Parameters
    ----------
    anchors : (A, 4) torch.Tensor
        xyxy.
    gt_boxes : (G, 4) torch.Tensor
        xyxy ground truth of the image (``G = 0``: every anchor is background).
    fg_iou, bg_iou : float
        An anchor is an object if its IoU with some box is ``>= fg_iou`` or if it has the highest
        IoU of some box (:func:`match_boxes` with ``allow_low_quality``), background if its best
        IoU is ``< bg_iou``, ignored otherwise.

    Returns
    -------
    labels : (A,) torch.Tensor of int64
        1 object, 0 background, -1 ignored.
    deltas : (A, 4) torch.Tensor
        :func:`encode_boxes` of each anchor onto its best box (zeros when ``G = 0``).

    Examples
    --------
    >>> a = torch.tensor([[0., 0., 8., 8.], [8., 0., 16., 8.], [16., 0., 24., 8.]])
    >>> rpn_targets(a, torch.tensor([[0., 0., 14., 8.]]))[0].tolist()
    [1, -1, 0]
    """
    m = match_boxes(box_iou(gt_boxes, anchors), fg_iou, bg_iou, allow_low_quality=True)
    labels = torch.where(m >= 0, 1, torch.where(m == BELOW_LOW, 0, -1)).to(torch.int64)
    if gt_boxes.shape[0] == 0:
        return labels, torch.zeros_like(anchors)
    return labels, encode_boxes(anchors, gt_boxes[m.clamp(min=0)])


def sample_balanced(labels: Tensor, batch_size: int, positive_fraction: float,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Draw a mini-batch of positives and negatives (Faster R-CNN's 1:1 RPN, 1:3 RoI batches).

    Parameters
    ----------
    labels : (N,) torch.Tensor of int
        ``>= 1`` positive, ``0`` negative, ``< 0`` ignored.
    batch_size : int
    positive_fraction : float
        At most ``int(batch_size * positive_fraction)`` positives; negatives fill the rest.
    generator : torch.Generator, optional
        On the CPU; default: torch's global generator.

    Returns
    -------
    positives, negatives : (P,) and (Q,) torch.Tensor of int64
        Indices into ``labels``, ``P + Q <= batch_size``, chosen uniformly without replacement.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> pos, neg = sample_balanced(torch.tensor([1, 0, 0, -1, 2, 0]), 4, 0.25, g)
    >>> len(pos), len(neg), pos.item() in (0, 4), sorted(neg.tolist())
    (1, 3, True, [1, 2, 5])
    """
    pos = (labels >= 1).nonzero().squeeze(1)
    neg = (labels == 0).nonzero().squeeze(1)
    n_pos = min(int(batch_size * positive_fraction), pos.numel())
    n_neg = min(batch_size - n_pos, neg.numel())
    p = torch.randperm(pos.numel(), generator=generator)[:n_pos].to(labels.device)
    q = torch.randperm(neg.numel(), generator=generator)[:n_neg].to(labels.device)
    return pos[p], neg[q]


def assign_fpn_levels(boxes: Tensor, k_min: int = 2, k_max: int = 5, canonical_size: float = 224.0,
                      canonical_level: int = 4) -> Tensor:
    """Pyramid level of each RoI: ``k = floor(k0 + log2(sqrt(w h) / 224))``, clamped (FPN Eq. 1).

    Parameters
    ----------
    boxes : (K, 4) torch.Tensor
        xyxy, in the coordinates of the network input.
    k_min, k_max : int
        Levels available (P2..P5: strides ``2 ** k``).
    canonical_size, canonical_level : float, int
        An RoI of ``224 x 224`` (the ImageNet input size) goes to ``P4``, as in [2]_.

    Returns
    -------
    levels : (K,) torch.Tensor of int64
        In ``[k_min, k_max]``.

    Examples
    --------
    >>> b = torch.tensor([[0., 0., 224., 224.], [0., 0., 112., 112.], [0., 0., 111., 112.],
    ...                   [0., 0., 10., 10.], [0., 0., 2000., 2000.]])
    >>> assign_fpn_levels(b).tolist()
    [4, 3, 2, 2, 5]
    """
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=0)
    k = torch.floor(canonical_level + torch.log2(torch.sqrt(area) / canonical_size + 1e-8))
    return k.clamp(k_min, k_max).to(torch.int64)


def multiscale_roi_align(features: Sequence[Tensor], strides: Sequence[int], boxes: Sequence[Tensor],
                         output_size: int, sampling_ratio: int = 2) -> Tensor:
    """RoIAlign of each box from the pyramid level :func:`assign_fpn_levels` gives it.

    Parameters
    ----------
    features : sequence of (N, C, h_l, w_l) torch.Tensor
        The levels, finest first, of strides ``strides`` (powers of 2).
    strides : sequence of int
    boxes : sequence of (K_i, 4) torch.Tensor
        xyxy boxes of each image, in input coordinates.
    output_size : int
        Bins per side (7 for the box head, 14 for the mask head).
    sampling_ratio : int
        Samples per bin per axis (2, as Detectron).

    Returns
    -------
    pooled : (sum K_i, C, output_size, output_size) torch.Tensor
        In the order of the boxes, image by image.
    """
    rois = boxes_to_rois(boxes, features[0].dtype, features[0].device)
    c = features[0].shape[1]
    out = features[0].new_zeros((rois.shape[0], c, output_size, output_size))
    if rois.shape[0] == 0:
        return out
    ks = [int(round(math.log2(s))) for s in strides]
    levels = assign_fpn_levels(rois[:, 1:], min(ks), max(ks))
    for f, s, k in zip(features, strides, ks, strict=True):
        idx = (levels == k).nonzero().squeeze(1)
        if idx.numel():
            out = out.index_copy(0, idx, roi_align(f, rois[idx], output_size, 1.0 / s,
                                                   sampling_ratio, aligned=True))
    return out


def mask_targets(gt_masks: Tensor, matched: Tensor, boxes: Tensor, size: int = 28) -> Tensor:
    """Binary ``size x size`` targets: each ground-truth mask cropped to its RoI [1]_.

    Parameters
    ----------
    gt_masks : (G, H, W) torch.Tensor
        Ground-truth masks of one image (any dtype, non-zero inside).
    matched : (K,) torch.Tensor of int64
        Ground truth of each RoI, in ``0..G-1``.
    boxes : (K, 4) torch.Tensor
        xyxy RoIs in the coordinates of ``gt_masks``.
    size : int
        28 in Mask R-CNN.

    Returns
    -------
    targets : (K, size, size) torch.Tensor of float
        1 where the bilinear average of the mask (RoIAlign, ``aligned=True``) is at least 0.5.
    """
    k = boxes.shape[0]
    if k == 0:
        return boxes.new_zeros((0, size, size))
    rois = torch.cat([matched.to(boxes.dtype)[:, None], boxes], 1)
    m = roi_align(gt_masks[:, None].to(boxes.dtype), rois, size, 1.0, 2, aligned=True)[:, 0]
    return (m >= 0.5).to(boxes.dtype)


# --------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------


def rpn_loss(objectness: Tensor, deltas: Tensor, labels: Tensor, target_deltas: Tensor,
             beta: float = 1.0 / 9) -> tuple[Tensor, Tensor]:
    """RPN losses on the sampled anchors of a batch [3]_.

    Parameters
    ----------
    objectness : (S,) torch.Tensor
        Logits of the sampled anchors.
    deltas : (S, 4) torch.Tensor
        Predicted deltas of the same anchors.
    labels : (S,) torch.Tensor
        1 (object) or 0 (background).
    target_deltas : (S, 4) torch.Tensor
        :func:`encode_boxes` of the anchors onto their matched boxes (unused for negatives).
    beta : float
        Smooth L1 transition point.

    Returns
    -------
    loss_objectness, loss_rpn_box_reg : torch.Tensor
        Mean binary cross-entropy; smooth L1 summed over the positives' coordinates and divided
        by ``S`` (torchvision's normalisation). Zeros when ``S = 0``.

    Examples
    --------
    >>> o, b = rpn_loss(torch.zeros(2), torch.zeros(2, 4), torch.tensor([1., 0.]),
    ...                 torch.tensor([[1., 0., 0., 0.], [5., 5., 5., 5.]]))
    >>> round(o.item(), 4), round(b.item(), 4)
    (0.6931, 0.4722)
    """
    s = objectness.shape[0]
    if s == 0:
        z = objectness.sum() * 0 + deltas.sum() * 0
        return z, z
    obj = F.binary_cross_entropy_with_logits(objectness, labels.to(objectness.dtype))
    pos = labels > 0
    box = F.smooth_l1_loss(deltas[pos], target_deltas[pos], beta=beta, reduction="sum") / s
    return obj, box


def fast_rcnn_loss(class_logits: Tensor, box_regression: Tensor, labels: Tensor, target_deltas: Tensor,
                   beta: float = 1.0 / 9) -> tuple[Tensor, Tensor]:
    """Classification and per-class box losses of the sampled RoIs [4]_.

    Parameters
    ----------
    class_logits : (K, C) torch.Tensor
        C classes, background 0 included.
    box_regression : (K, 4 C) torch.Tensor
        Deltas per class.
    labels : (K,) torch.Tensor of int64
        0 background, else the class.
    target_deltas : (K, 4) torch.Tensor
        Deltas of each RoI onto its matched box (used for foreground RoIs only).
    beta : float

    Returns
    -------
    loss_classifier, loss_box_reg : torch.Tensor
        Cross-entropy; smooth L1 of the deltas of the true class of each foreground RoI, summed
        and divided by ``K``.

    Examples
    --------
    >>> c, b = fast_rcnn_loss(torch.zeros(2, 3), torch.zeros(2, 12), torch.tensor([2, 0]),
    ...                       torch.tensor([[0., 0., 1., 0.], [9., 9., 9., 9.]]), beta=1.0)
    >>> round(c.item(), 4), round(b.item(), 4)
    (1.0986, 0.25)
    """
    k = class_logits.shape[0]
    if k == 0:
        z = class_logits.sum() * 0 + box_regression.sum() * 0
        return z, z
    cls = F.cross_entropy(class_logits, labels)
    pos = (labels > 0).nonzero().squeeze(1)
    reg = box_regression.reshape(k, -1, 4)[pos, labels[pos]]
    box = F.smooth_l1_loss(reg, target_deltas[pos], beta=beta, reduction="sum") / k
    return cls, box


def mask_rcnn_loss(mask_logits: Tensor, labels: Tensor, targets: Tensor) -> Tensor:
    """Per-pixel binary cross-entropy on the mask of each RoI's own class only [1]_.

    Parameters
    ----------
    mask_logits : (K, C, S, S) torch.Tensor
    labels : (K,) torch.Tensor of int64
        The class of each (foreground) RoI.
    targets : (K, S, S) torch.Tensor
        Binary targets (:func:`mask_targets`).

    Returns
    -------
    loss_mask : torch.Tensor
        Mean over the ``K S^2`` pixels; 0 (with a gradient path) when ``K = 0``. The other
        classes' masks get no gradient: no competition between classes (Sec. 3 of [1]_).

    Examples
    --------
    >>> lg = torch.zeros(1, 3, 2, 2); lg[0, 1] = 10.0
    >>> float(mask_rcnn_loss(lg, torch.tensor([1]), torch.ones(1, 2, 2))) < 1e-4
    True
    >>> round(float(mask_rcnn_loss(lg, torch.tensor([2]), torch.ones(1, 2, 2))), 4)
    0.6931
    """
    k = mask_logits.shape[0]
    if k == 0:
        return mask_logits.sum() * 0
    sel = mask_logits[torch.arange(k, device=labels.device), labels]
    return F.binary_cross_entropy_with_logits(sel, targets.to(sel.dtype))


# --------------------------------------------------------------------------------------------
# modules
# --------------------------------------------------------------------------------------------


class FPN(nn.Module):
    """Feature pyramid: lateral 1x1 convolutions, top-down nearest upsampling, 3x3 smoothing [2]_.

    Parameters
    ----------
    in_channels : sequence of int
        Channels of the input levels, finest first.
    out_channels : int
        Channels of every output level (256 in [2]_).
    extra_pool : bool
        Append a level by max-pooling the coarsest output with stride 2 (P6, for the RPN).

    Shape:
        - Input: a list of :math:`(N, C_l, h_l, w_l)`, finest first, each about half the last.
        - Output: a list of :math:`(N, C_{out}, h_l, w_l)` (plus P6).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, extra_pool: bool = True):
        super().__init__()
        self.lateral = nn.ModuleList([nn.Conv2d(c, out_channels, 1) for c in in_channels])
        self.output = nn.ModuleList([nn.Conv2d(out_channels, out_channels, 3, padding=1)
                                     for _ in in_channels])
        self.extra_pool = extra_pool
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        if len(features) != len(self.lateral):
            raise ValueError(f"`features` must have {len(self.lateral)} levels, got {len(features)}")
        top = self.lateral[-1](features[-1])
        outs = [self.output[-1](top)]
        for f, lat, conv in zip(features[-2::-1], self.lateral[-2::-1], self.output[-2::-1], strict=True):
            lateral = lat(f)
            top = lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")
            outs.insert(0, conv(top))
        if self.extra_pool:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return outs


class RPNHead(nn.Module):
    """Shared 3x3 convolution, then objectness and box deltas of ``A`` anchors per position [3]_.

    Shape:
        - Input: a list of :math:`(N, C, h_l, w_l)`.
        - Output: two lists, :math:`(N, A, h_l, w_l)` logits and :math:`(N, 4A, h_l, w_l)` deltas.
    """

    def __init__(self, channels: int, num_anchors: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(channels, 4 * num_anchors, 1)
        for m in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)

    def forward(self, features: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        logits, deltas = [], []
        for f in features:
            t = F.relu(self.conv(f))
            logits.append(self.cls_logits(t))
            deltas.append(self.bbox_pred(t))
        return logits, deltas


class BoxHead(nn.Module):
    """Two fully connected layers on 7x7 RoI features, then class logits and per-class deltas.

    Shape:
        - Input: :math:`(K, C, 7, 7)`.
        - Output: :math:`(K, \\text{num_classes})` and :math:`(K, 4 \\text{num_classes})`.
    """

    def __init__(self, in_channels: int, num_classes: int, representation_size: int = 1024,
                 resolution: int = 7):
        super().__init__()
        self.fc6 = nn.Linear(in_channels * resolution * resolution, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)
        self.cls_score = nn.Linear(representation_size, num_classes)
        self.bbox_pred = nn.Linear(representation_size, 4 * num_classes)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))
        return self.cls_score(x), self.bbox_pred(x)


class MaskHead(nn.Module):
    """Four 3x3 convolutions and a 2x2 stride-2 transposed convolution, then per-class logits [1]_.

    Parameters
    ----------
    in_channels : int
        RoI feature channels (plus 1 when a candidate mask is stacked on, ``mask_prior``).
    num_classes : int
    channels : int
        Width of the convolutions (256 in [1]_).

    Shape:
        - Input: :math:`(K, C_{in}, 14, 14)`.
        - Output: :math:`(K, \\text{num_classes}, 28, 28)` logits.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: int = 256):
        super().__init__()
        layers, c = [], in_channels
        for _ in range(4):
            layers += [nn.Conv2d(c, channels, 3, padding=1), nn.ReLU(inplace=True)]
            c = channels
        self.convs = nn.Sequential(*layers)
        self.deconv = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.logits = nn.Conv2d(channels, num_classes, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.logits.weight, std=0.001)  # logits start near 0 (Detectron2)

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(F.relu(self.deconv(self.convs(x))))


#: Backbone stages from the output end, for ``trainable_backbone_layers`` (torchvision's knob):
#: the blocks of the stride-32, 16, 8, 4 and 2 taps (``EfficientNetLite0._TAPS``), stem last.
_LITE0_STAGE_STARTS = (11, 5, 3, 1, 0)


def _freeze_backbone(backbone: nn.Module, trainable_layers: int) -> int:
    """Freeze all but the last ``trainable_layers`` stages; return the first trainable block
    (``len(_blocks)`` when frozen entirely, ``-1`` when the stem trains too)."""
    blocks = getattr(backbone, "_blocks", None)
    if blocks is None:  # a user backbone: all or nothing
        for p in backbone.parameters():
            p.requires_grad_(trainable_layers > 0)
        return -1 if trainable_layers > 0 else 1 << 30
    first = len(blocks) if trainable_layers == 0 else _LITE0_STAGE_STARTS[trainable_layers - 1]
    if trainable_layers == 5:
        first = -1
    for name, p in backbone.named_parameters():
        if name.startswith("_blocks."):
            p.requires_grad_(int(name.split(".")[1]) >= first)
        else:  # stem, head conv, classifier: the head is unused, the stem trains only with 5
            p.requires_grad_(trainable_layers == 5 and not name.startswith(("_conv_head", "_bn1", "_fc")))
    return first


def _freeze_bn(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)


class MaskRCNN(nn.Module):
    """Mask R-CNN [1]_ with an FPN [2]_ on EfficientNet-Lite0; RoIs from the RPN or given.

    Parameters
    ----------
    num_classes : int
        Classes including the background (torchvision's convention: labels ``1..num_classes-1``).
    backbone : nn.Module, optional
        Has ``forward_features(x) -> {stride: (N, C, h, w)}`` with strides 4, 8, 16 and 32 and a
        ``feature_channels`` dict. Default :func:`deep.backbone.efficientnet_lite0`.
    pretrained_backbone : bool
        ImageNet weights for the default backbone (offline).
    rois : {"rpn", "external"}
        Where the RoIs come from: the model's own RPN, or ``proposals`` given to :meth:`forward`
        (bottom-up candidates: the SDS / Fast R-CNN way). With ``"external"`` the RPN is not
        built.
    mask_prior : bool
        ``rois="external"`` only: stack each RoI's candidate mask (RoIAligned to 14x14, in
        ``[-1, 1]``) on the mask head's input as one extra channel.
    fpn_channels, representation_size, mask_channels : int
        Widths of the pyramid, of the box head's two layers and of the mask head's convolutions.
        The defaults (128, 512, 128) are half of the paper's (256, 1024, 256), for a mobile
        backbone trained on the CPU.
    min_size, max_size : int
        Each image is resized so that its short side is ``min_size`` unless its long side would
        exceed ``max_size`` (torchvision: 800, 1333); outputs come back at the input size.
    anchor_sizes : 5 floats
        Anchor sizes on P2..P6.
    aspect_ratios : sequence of float
        Anchor height/width ratios, the same on every level.
    rpn_pre_nms_top_n, rpn_post_nms_top_n : (int, int)
        Proposals kept per level before NMS and per image after it, (training, inference);
        (1000, 500) and (1000, 300) here, torchvision's 320-pixel mobile model uses fewer still at
        inference (150, 150), the ResNet-50 model (2000, 1000) and (2000, 1000).
    rpn_nms_thresh, rpn_fg_iou_thresh, rpn_bg_iou_thresh : float
    rpn_batch_size_per_image, rpn_positive_fraction : int, float
    box_fg_iou_thresh, box_bg_iou_thresh : float
    box_batch_size_per_image, box_positive_fraction : int, float
        RoIs sampled per training image and their positive share (256, 0.25; the paper: 512).
    box_score_thresh, box_nms_thresh : float
    detections_per_img : int
    max_external : int
        At most this many external proposals per image (the best-ranked).
    trainable_backbone_layers : int
        0..5: how many backbone stages, from the stride-32 end, are trained (torchvision's knob;
        3 by default there). The frozen part runs without autograd, which on the CPU saves most
        of the cost of a step (its backward through the high-resolution depthwise convolutions).
    freeze_backbone_bn : bool
        Keep the backbone's BatchNorm statistics and affine terms fixed (as Detectron's
        FrozenBN), the usual choice with a few images per batch.

    Notes
    -----
    ``forward(images, targets=None, proposals=None)``, as torchvision's ``MaskRCNN``:

    * ``images``: list of ``(3, H_i, W_i)`` float tensors in ``[0, 1]`` (RGB);
    * training: ``targets`` is a list of dicts with ``boxes (G, 4)`` float xyxy, ``labels (G,)``
      int64 and ``masks (G, H_i, W_i)`` uint8/bool; returns a dict of losses ``loss_objectness``,
      ``loss_rpn_box_reg`` (RPN only), ``loss_classifier``, ``loss_box_reg``, ``loss_mask``;
    * inference: returns one dict per image with ``boxes (D, 4)`` float32, ``labels (D,)`` int64,
      ``scores (D,)`` float32 and ``masks (D, 1, H_i, W_i)`` float32 probabilities (threshold at
      0.5), by decreasing score;
    * ``proposals`` (``rois="external"``): one entry per image, a ``(K, 4)`` xyxy tensor, a dict
      with ``boxes`` (and ``masks (K, H_i, W_i)`` for ``mask_prior``), or a
      ``bottomup.mcg.Candidates`` (converted by :func:`candidates_to_proposals`).

    Examples
    --------
    >>> _ = torch.manual_seed(0); model = MaskRCNN(3, pretrained_backbone=False, min_size=64,
    ...                                             max_size=64).eval()
    >>> out = model([torch.rand(3, 48, 64)])
    >>> sorted(out[0]), out[0]["masks"].shape[1:]
    (['boxes', 'labels', 'masks', 'scores'], torch.Size([1, 48, 64]))
    """

    def __init__(self, num_classes: int, *, backbone: nn.Module | None = None,
                 pretrained_backbone: bool = True, rois: str = "rpn", mask_prior: bool = False,
                 fpn_channels: int = 128, representation_size: int = 512, mask_channels: int = 128,
                 min_size: int = 320, max_size: int = 512,
                 anchor_sizes: Sequence[float] = (32, 64, 128, 256, 512),
                 aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
                 rpn_pre_nms_top_n: tuple[int, int] = (1000, 500),
                 rpn_post_nms_top_n: tuple[int, int] = (1000, 300),
                 rpn_nms_thresh: float = 0.7, rpn_fg_iou_thresh: float = 0.7,
                 rpn_bg_iou_thresh: float = 0.3, rpn_batch_size_per_image: int = 256,
                 rpn_positive_fraction: float = 0.5, box_fg_iou_thresh: float = 0.5,
                 box_bg_iou_thresh: float = 0.5, box_batch_size_per_image: int = 256,
                 box_positive_fraction: float = 0.25, box_score_thresh: float = 0.05,
                 box_nms_thresh: float = 0.5, detections_per_img: int = 100,
                 max_external: int = 2000, trainable_backbone_layers: int = 3,
                 freeze_backbone_bn: bool = True):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"`num_classes` must be an int >= 2 (background included), but got {num_classes!r}")
        if rois not in ("rpn", "external"):
            raise ValueError(f"`rois` must be 'rpn' or 'external', but got {rois!r}")
        if mask_prior and rois != "external":
            raise ValueError("`mask_prior=True` needs `rois='external'` (candidate masks come with "
                             "the proposals)")
        if len(anchor_sizes) != len(RPN_STRIDES):
            raise ValueError(f"`anchor_sizes` must give {len(RPN_STRIDES)} sizes (P2..P6), but got "
                             f"{len(anchor_sizes)}")
        # everything needed to rebuild the model from a checkpoint (backbone weights are saved)
        self.config = {k: v for k, v in locals().items()
                       if k not in ("self", "backbone", "__class__", "pretrained_backbone")}
        self.config["anchor_sizes"] = tuple(anchor_sizes)
        self.config["aspect_ratios"] = tuple(aspect_ratios)
        if backbone is None:
            from ..backbone.efficientnet import efficientnet_lite0

            backbone = efficientnet_lite0(pretrained=pretrained_backbone)
        for name in ("forward_features", "feature_channels"):
            if not hasattr(backbone, name):
                raise TypeError(f"`backbone` must have `{name}` (see deep.backbone), but "
                                f"{type(backbone).__name__} has not")
        self.backbone = backbone
        self.num_classes = num_classes
        self.rois = rois
        self.mask_prior = bool(mask_prior)
        self.min_size, self.max_size = int(min_size), int(max_size)
        if trainable_backbone_layers not in range(6):
            raise ValueError("`trainable_backbone_layers` must be an int in 0..5, but got "
                             f"{trainable_backbone_layers!r}")
        self._first_trainable = _freeze_backbone(self.backbone, trainable_backbone_layers)
        self.freeze_backbone_bn = freeze_backbone_bn
        if freeze_backbone_bn:
            _freeze_bn(self.backbone)
        self.fpn = FPN([backbone.feature_channels[s] for s in TAP_STRIDES], fpn_channels,
                       extra_pool=rois == "rpn")
        for i, s in enumerate(anchor_sizes):
            self.register_buffer(f"_cell{i}", cell_anchors(s, aspect_ratios), persistent=False)
        self.rpn = RPNHead(fpn_channels, len(aspect_ratios)) if rois == "rpn" else None
        self.box_head = BoxHead(fpn_channels, num_classes, representation_size)
        self.mask_head = MaskHead(fpn_channels + int(self.mask_prior), num_classes, mask_channels)
        self.register_buffer("pixel_mean", torch.tensor([127.0 / 255] * 3).view(3, 1, 1),
                             persistent=False)
        self.register_buffer("pixel_std", torch.tensor([128.0 / 255] * 3).view(3, 1, 1),
                             persistent=False)
        self.box_weights = (10.0, 10.0, 5.0, 5.0)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_backbone_bn:
            _freeze_bn(self.backbone)
        return self

    # ---- input ------------------------------------------------------------------------------
    def _check_inputs(self, images, targets, proposals):
        if not isinstance(images, (list, tuple)) or not images:
            raise TypeError("`images` must be a non-empty list of (3, H, W) float tensors, but got "
                            f"{type(images).__name__}")
        for i, im in enumerate(images):
            check_float_tensor(im, f"images[{i}]")
            check_shape(im, [3, "H", "W"], f"images[{i}]")
        if self.training:
            if targets is None or len(targets) != len(images):
                raise ValueError("training needs `targets`: one dict (boxes, labels, masks) per image")
            for i, (im, t) in enumerate(zip(images, targets, strict=True)):
                for key in ("boxes", "labels", "masks"):
                    if key not in t:
                        raise ValueError(f"`targets[{i}]` must have key {key!r}, but has {sorted(t)}")
                check_shape(t["boxes"], ["G", 4], f"targets[{i}]['boxes']")
                g = t["boxes"].shape[0]
                check_shape(t["labels"], [g], f"targets[{i}]['labels']")
                check_shape(t["masks"], [g, im.shape[1], im.shape[2]], f"targets[{i}]['masks']")
                lab = t["labels"]
                if g and (lab.min() < 1 or lab.max() >= self.num_classes):
                    raise ValueError(f"`targets[{i}]['labels']` must be in 1..{self.num_classes - 1} "
                                     f"(0 is background), but got values in [{int(lab.min())}, "
                                     f"{int(lab.max())}]")
        if self.rois == "external":
            if proposals is None or len(proposals) != len(images):
                raise ValueError("`rois='external'` needs `proposals`: one (K, 4) xyxy tensor, dict "
                                 "or bottomup Candidates per image")
            out = []
            for i, (im, p) in enumerate(zip(images, proposals, strict=True)):
                if hasattr(p, "leaf_sets"):
                    p = candidates_to_proposals(p, with_masks=self.mask_prior, n=self.config["max_external"])
                elif isinstance(p, Tensor):
                    p = {"boxes": p}
                if not isinstance(p, dict) or "boxes" not in p:
                    raise TypeError(f"`proposals[{i}]` must be a (K, 4) tensor, a dict with 'boxes' or "
                                    f"Candidates, but got {type(p).__name__}")
                check_shape(check_tensor(p["boxes"], f"proposals[{i}]['boxes']"), ["K", 4],
                            f"proposals[{i}]['boxes']")
                n = min(p["boxes"].shape[0], self.config["max_external"])
                q = {"boxes": p["boxes"][:n].float()}
                if self.mask_prior:
                    if "masks" not in p:
                        raise ValueError(f"`mask_prior=True` needs `proposals[{i}]['masks']` "
                                         "(K, H, W) candidate masks")
                    check_shape(p["masks"], [p["boxes"].shape[0], im.shape[1], im.shape[2]],
                                f"proposals[{i}]['masks']")
                    q["masks"] = p["masks"][:n]
                out.append(q)
            return out
        return None

    def _scale(self, h: int, w: int) -> float:
        return min(self.min_size / min(h, w), self.max_size / max(h, w))

    def _batch(self, images):
        """Resize, normalise and pad to a multiple of 32: ``(N, 3, Hp, Wp)``, sizes, scales."""
        sizes, scales, resized = [], [], []
        for im in images:
            h, w = im.shape[-2:]
            s = self._scale(h, w)
            nh, nw = max(1, round(h * s)), max(1, round(w * s))
            x = F.interpolate(im[None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
            resized.append((x - self.pixel_mean) / self.pixel_std)
            sizes.append((nh, nw))
            scales.append((nw / w, nh / h))
        hp = int(math.ceil(max(s[0] for s in sizes) / 32) * 32)
        wp = int(math.ceil(max(s[1] for s in sizes) / 32) * 32)
        batch = images[0].new_zeros((len(images), 3, hp, wp))
        for i, x in enumerate(resized):
            batch[i, :, : x.shape[1], : x.shape[2]] = x
        return batch, sizes, scales

    @staticmethod
    def _scale_boxes(boxes: Tensor, scale, inverse: bool = False) -> Tensor:
        sx, sy = scale
        f = boxes.new_tensor([sx, sy, sx, sy])
        return boxes / f if inverse else boxes * f

    # ---- RPN --------------------------------------------------------------------------------
    def _anchors(self, features) -> list[Tensor]:
        return [grid_anchors(getattr(self, f"_cell{i}"), f.shape[-2:], s)
                for i, (f, s) in enumerate(zip(features, RPN_STRIDES, strict=True))]

    def _rpn(self, features, sizes, targets_scaled):
        logits, deltas = self.rpn(features)
        anchors = self._anchors(features)
        n = features[0].shape[0]
        # flatten to (N, sum_l h w A) in (row, col, anchor) order, as grid_anchors
        obj = torch.cat([lg.permute(0, 2, 3, 1).reshape(n, -1) for lg in logits], 1)
        dl = torch.cat([d.view(n, -1, 4, d.shape[-2], d.shape[-1]).permute(0, 3, 4, 1, 2)
                        .reshape(n, -1, 4) for d in deltas], 1)
        all_anchors = torch.cat(anchors)
        level_of = torch.cat([torch.full((a.shape[0],), i, dtype=torch.int64, device=a.device)
                              for i, a in enumerate(anchors)])
        counts = [a.shape[0] for a in anchors]
        starts = [0, *accumulate(counts)][:-1]
        mode = 0 if self.training else 1
        pre, post = self.config["rpn_pre_nms_top_n"][mode], self.config["rpn_post_nms_top_n"][mode]
        props = []
        with torch.no_grad():
            boxes_all = decode_boxes(dl.detach().reshape(-1, 4), all_anchors.repeat(n, 1)).view(n, -1, 4)
            for i in range(n):
                sel = torch.cat([obj[i, s:s + c].detach().topk(min(pre, c)).indices + s
                                 for s, c in zip(starts, counts, strict=True)])
                b = clip_boxes(boxes_all[i, sel], sizes[i])
                s = obj[i, sel].detach()
                ok = ((b[:, 2] - b[:, 0]) >= 1e-3) & ((b[:, 3] - b[:, 1]) >= 1e-3)
                b, s, lv = b[ok], s[ok], level_of[sel][ok]
                keep = batched_nms(b, s, lv, self.config["rpn_nms_thresh"])[:post]
                props.append(b[keep])
        losses = {}
        if self.training:
            labels, tdeltas = zip(*[rpn_targets(all_anchors, t["boxes"], self.config["rpn_fg_iou_thresh"],
                                                self.config["rpn_bg_iou_thresh"]) for t in targets_scaled],
                                  strict=True)
            drawn = [sample_balanced(lab, self.config["rpn_batch_size_per_image"],
                                     self.config["rpn_positive_fraction"]) for lab in labels]
            off = all_anchors.shape[0]  # the anchors of image i start at i * off
            idx = torch.cat([p + i * off for i, (p, _) in enumerate(drawn)]
                            + [q + i * off for i, (_, q) in enumerate(drawn)])
            lab = torch.cat(labels)[idx].clamp(min=0)
            o, b = rpn_loss(obj.reshape(-1)[idx], dl.reshape(-1, 4)[idx], lab,
                            torch.cat(tdeltas)[idx])
            losses = {"loss_objectness": o, "loss_rpn_box_reg": b}
        return props, losses

    # ---- RoI heads --------------------------------------------------------------------------
    def _prior(self, external, source: list[Tensor], boxes: list[Tensor], scales) -> Tensor:
        """The candidate-mask channel ``(K, 1, 14, 14)`` in [-1, 1] of each RoI."""
        parts = []
        for i, (src, b) in enumerate(zip(source, boxes, strict=True)):
            m = external[i]["masks"]
            if b.shape[0] == 0:
                parts.append(b.new_zeros((0, 1, 14, 14)))
                continue
            rois = torch.cat([src.to(b.dtype)[:, None], self._scale_boxes(b, scales[i], True)], 1)
            parts.append(roi_align(m[:, None].to(b.dtype), rois, 14, 1.0, 2, aligned=True))
        return torch.cat(parts) * 2 - 1

    def _mask_logits(self, features, boxes, external, source, scales) -> Tensor:
        x = multiscale_roi_align(features, TAP_STRIDES, boxes, 14)
        if self.mask_prior:
            x = torch.cat([x, self._prior(external, source, boxes, scales)], 1)
        return self.mask_head(x)

    def _roi_train(self, features, proposals, targets_scaled, targets, scales, external):
        cfg = self.config
        boxes, labels, tdeltas, matched, source = [], [], [], [], []
        for p, t in zip(proposals, targets_scaled, strict=True):
            gt = t["boxes"]
            src = torch.arange(p.shape[0], device=p.device)
            if self.rois == "rpn" and gt.shape[0]:
                p = torch.cat([p, gt])  # ground truth joins the proposals (torchvision)
                src = torch.cat([src, torch.full((gt.shape[0],), -1, device=p.device)])
            m = match_boxes(box_iou(gt, p), cfg["box_fg_iou_thresh"], cfg["box_bg_iou_thresh"])
            lab = torch.where(m >= 0, t["labels"][m.clamp(min=0)] if gt.shape[0] else 0,
                              torch.where(m == BELOW_LOW, 0, -1))
            pos, neg = sample_balanced(lab, cfg["box_batch_size_per_image"], cfg["box_positive_fraction"])
            idx = torch.cat([pos, neg])
            boxes.append(p[idx])
            labels.append(lab[idx])
            matched.append(m[idx].clamp(min=0))
            source.append(src[idx])
            if gt.shape[0]:
                tdeltas.append(encode_boxes(p[idx], gt[m[idx].clamp(min=0)], self.box_weights))
            else:
                tdeltas.append(p.new_zeros((idx.numel(), 4)))
        x = multiscale_roi_align(features, TAP_STRIDES, boxes, 7)
        cls, reg = self.box_head(x)
        lab_all = torch.cat(labels)
        loss_cls, loss_box = fast_rcnn_loss(cls, reg, lab_all, torch.cat(tdeltas))
        # mask branch: foreground RoIs only
        fg = [lab > 0 for lab in labels]
        fg_boxes = [b[f] for b, f in zip(boxes, fg, strict=True)]
        fg_src = [s[f] for s, f in zip(source, fg, strict=True)]
        tg = []
        for i, (b, f) in enumerate(zip(fg_boxes, fg, strict=True)):
            masks = targets[i]["masks"]
            tg.append(mask_targets(masks, matched[i][f], self._scale_boxes(b, scales[i], True)))
        if sum(b.shape[0] for b in fg_boxes):
            logits = self._mask_logits(features, fg_boxes, external, fg_src, scales)
            loss_mask = mask_rcnn_loss(logits, lab_all[lab_all > 0], torch.cat(tg))
        else:
            loss_mask = sum(p.sum() * 0 for p in self.mask_head.parameters())
        return {"loss_classifier": loss_cls, "loss_box_reg": loss_box, "loss_mask": loss_mask}

    def _roi_infer(self, features, proposals, sizes, scales, orig_sizes, external):
        cfg = self.config
        n_per = [p.shape[0] for p in proposals]
        x = multiscale_roi_align(features, TAP_STRIDES, proposals, 7)
        cls, reg = self.box_head(x)
        probs = F.softmax(cls, -1)
        c = self.num_classes
        det_boxes, det_scores, det_labels, det_src = [], [], [], []
        for i, (p, pr, rg) in enumerate(zip(proposals, probs.split(n_per), reg.split(n_per), strict=True)):
            k = p.shape[0]
            b = clip_boxes(decode_boxes(rg, p, self.box_weights).view(k, c, 4), sizes[i])[:, 1:]
            s = pr[:, 1:]
            lab = torch.arange(1, c, device=p.device).view(1, -1).expand(k, -1)
            src = torch.arange(k, device=p.device).view(-1, 1).expand(k, c - 1)
            b, s, lab, src = b.reshape(-1, 4), s.reshape(-1), lab.reshape(-1), src.reshape(-1)
            ok = (s > cfg["box_score_thresh"]) & ((b[:, 2] - b[:, 0]) >= 1e-2) & ((b[:, 3] - b[:, 1]) >= 1e-2)
            b, s, lab, src = b[ok], s[ok], lab[ok], src[ok]
            keep = batched_nms(b, s, lab, cfg["box_nms_thresh"])[: cfg["detections_per_img"]]
            det_boxes.append(b[keep])
            det_scores.append(s[keep])
            det_labels.append(lab[keep])
            det_src.append(src[keep])
        n_det = [b.shape[0] for b in det_boxes]
        if sum(n_det):
            logits = self._mask_logits(features, det_boxes, external, det_src, scales)
            lab = torch.cat(det_labels)
            mprob = torch.sigmoid(logits[torch.arange(lab.numel(), device=lab.device), lab])
        else:
            mprob = features[0].new_zeros((0, 28, 28))
        from ..refine import paste_masks

        out = []
        for i, mp in enumerate(mprob.split(n_det)):
            h, w = orig_sizes[i]
            b = clip_boxes(self._scale_boxes(det_boxes[i], scales[i], True), (h, w))
            masks = paste_masks(mp, b, (h, w)) if mp.shape[0] else mp.new_zeros((0, h, w))
            out.append({"boxes": b.float(), "labels": det_labels[i].to(torch.int64),
                        "scores": det_scores[i].float(), "masks": masks[:, None].float()})
        return out

    def _backbone(self, x: Tensor) -> dict:
        """Taps of the backbone; its frozen stages (``trainable_backbone_layers``) without autograd."""
        bb, first = self.backbone, self._first_trainable
        if first < 0 or not hasattr(bb, "_blocks") or not torch.is_grad_enabled():
            return bb.forward_features(x)
        wanted = {v: k for k, v in bb._TAPS.items()}
        taps = {}
        with torch.no_grad():
            y = F.relu6(bb._bn0(bb._conv_stem(x)))
        for i, block in enumerate(bb._blocks):
            with torch.set_grad_enabled(i >= first):  # grad is on here: off for the frozen blocks
                y = block(y)
            if i in wanted:
                taps[wanted[i]] = y
        return taps

    # ---- forward ----------------------------------------------------------------------------
    def forward(self, images: list[Tensor], targets: list[dict] | None = None,
                proposals: list | None = None):
        """Losses (training) or detections (eval); see the class notes for the formats."""
        external = self._check_inputs(images, targets, proposals)
        orig_sizes = [tuple(im.shape[-2:]) for im in images]
        batch, sizes, scales = self._batch(images)
        taps = self._backbone(batch)
        feats = self.fpn([taps[s] for s in TAP_STRIDES])
        roi_feats = feats[: len(TAP_STRIDES)]
        targets_scaled = None
        if self.training:
            targets_scaled = [{"boxes": self._scale_boxes(t["boxes"].to(batch.dtype), scales[i]),
                               "labels": t["labels"].to(torch.int64)} for i, t in enumerate(targets)]
        losses = {}
        if self.rois == "rpn":
            proposals_s, losses = self._rpn(feats, sizes, targets_scaled)
        else:
            proposals_s = [clip_boxes(self._scale_boxes(e["boxes"].to(batch.dtype), scales[i]), sizes[i])
                           for i, e in enumerate(external)]
        if self.training:
            losses.update(self._roi_train(roi_feats, proposals_s, targets_scaled, targets, scales, external))
            return losses
        return self._roi_infer(roi_feats, proposals_s, sizes, scales, orig_sizes, external)


class LoadedMaskRCNN(NamedTuple):
    """What :func:`load_maskrcnn` returns (unpacks as ``model, things, classes, iteration``).

    Attributes
    ----------
    model : MaskRCNN
        In eval mode, on the requested device.
    things : tuple of int
        The dataset class id of each model label: label ``j`` (1..) is class ``things[j - 1]``.
    classes : tuple of str
        The dataset's class names (``classes[things[j - 1]]`` names label ``j``).
    iteration : int
        Training iterations done when the checkpoint was written.
    """

    model: MaskRCNN
    things: tuple
    classes: tuple
    iteration: int


def save_maskrcnn(path, model: MaskRCNN, *, things, classes, iteration: int = 0, half: bool = False,
                  **extra) -> None:
    """Write a Mask R-CNN checkpoint atomically, the format of ``bench/maskrcnn.py train``.

    The file is a ``torch.save`` dict with ``model`` (state dict, backbone included), ``config``
    (:attr:`MaskRCNN.config`, enough to rebuild it), ``things``, ``classes`` and ``iteration``;
    :func:`deep.training.train_maskrcnn` adds ``opt``, ``rng`` and ``history`` (``extra``) to
    resume. ``half=True`` stores the floating-point tensors as float16 (half the size; the shipped
    weights), which :func:`load_maskrcnn` turns back into float32. :func:`load_maskrcnn` reads it.
    """
    from bottomup.io.files import atomic_path

    things = tuple(int(t) for t in things)
    if model.num_classes != len(things) + 1:
        raise ValueError(f"`things` has {len(things)} classes, but the model has {model.num_classes} "
                         f"labels (background included): expected len(things) + 1 == num_classes")
    state = model.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    with atomic_path(path) as tmp:
        torch.save({"model": state, **extra, "iteration": int(iteration),
                    "config": model.config, "things": things, "classes": list(classes)}, tmp)


def load_maskrcnn(path, device="cpu") -> LoadedMaskRCNN:
    """A Mask R-CNN and its classes from a checkpoint of ``bench/maskrcnn.py train``
    (``WORK/maskrcnn.ckpt``) or of :func:`save_maskrcnn`.

    Parameters
    ----------
    path : path-like
    device : str or torch.device

    Returns
    -------
    LoadedMaskRCNN
        ``(model, things, classes, iteration)``, the model in eval mode on ``device``.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file (the message gives the command that trains one).
    ValueError
        If the file is not a Mask R-CNN checkpoint.
    """
    import os

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Mask R-CNN weights not found: {path!r}; train them with "
                                f"`python bench/maskrcnn.py train --root DATA --work W` (writes "
                                f"W/maskrcnn.ckpt)")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    missing = [k for k in ("model", "config", "things", "classes") if not isinstance(ck, dict) or k not in ck]
    if missing:
        raise ValueError(f"{path!r} is not a Mask R-CNN checkpoint of `bench/maskrcnn.py train`: "
                         f"it lacks {missing}")
    cfg = dict(ck["config"])
    num_classes = cfg.pop("num_classes")
    model = MaskRCNN(num_classes, pretrained_backbone=False, **cfg)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()})
    model.eval().to(torch.device(device))
    return LoadedMaskRCNN(model, tuple(int(t) for t in ck["things"]), tuple(ck["classes"]),
                          int(ck.get("iteration", 0)))
