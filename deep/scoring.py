"""Region scoring on hypercolumns: a per-pixel classifier and a candidate-region scorer.

The scorer follows SDS and Hypercolumns [1]_ [2]_: each bottom-up candidate (an MCG/SCG region) is
described by the backbone's hypercolumns pooled inside its mask (the "region" pathway) and inside
its box but outside the mask (context; the "box" pathway), plus its shape, and a small network
gives its class scores (the classes plus background), its expected overlap with the best
matching object, and the class histogram of its pixels (for semantic labelling).

Pooling is exact and cheap: the dense hypercolumn map is built once at half resolution, summed
per leaf of the candidates' base partition (``index_add``) and per box (integral image), and a
candidate's sum is the sum of its leaves (``leaf_sets @ leaf_sums``).

References
----------
.. [1] B. Hariharan, P. Arbelaez, R. Girshick, J. Malik, "Simultaneous Detection and
       Segmentation", ECCV 2014. :DOI:`10.1007/978-3-319-10584-0_20`
.. [2] B. Hariharan, P. Arbelaez, R. Girshick, J. Malik, "Hypercolumns for Object Segmentation
       and Fine-grained Localization", CVPR 2015. :DOI:`10.1109/CVPR.2015.7298642`
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ._checks import check_float_tensor, check_shape
from .features.hypercolumn import hypercolumns

__all__ = [
    "N_GEOMETRY",
    "PixelClassifier",
    "RegionScorer",
    "candidate_targets",
    "dense_hypercolumns",
    "region_descriptors",
]

#: Shape features appended to each region descriptor (see :func:`region_descriptors`).
N_GEOMETRY = 9


def dense_hypercolumns(levels, shape, stride: int = 2) -> Tensor:
    """Hypercolumns of one image on the grid ``image[::stride, ::stride]``.

    Parameters
    ----------
    levels : sequence of (1, C_l, h_l, w_l) Tensor
        Backbone taps of one image.
    shape : (int, int)
        Image size ``(H, W)``.

    Returns
    -------
    (1, sum C_l, ceil(H / stride), ceil(W / stride)) Tensor
    """
    h, w = int(shape[0]), int(shape[1])
    return hypercolumns(list(levels), (-(-h // stride), -(-w // stride)))


class PixelClassifier(nn.Module):
    """Per-pixel classifier on hypercolumns: standardisation, then a 1x1-conv MLP.

    Parameters
    ----------
    channels : int
        Hypercolumn length.
    n_classes : int
    hidden : int

    Shape:
        - Input: :math:`(N, C, H, W)` hypercolumns, or :math:`(P, C)` samples.
        - Output: logits :math:`(N, K, H, W)`, or :math:`(P, K)`.
    """

    def __init__(self, channels: int, n_classes: int, hidden: int = 256):
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
        self.channels, self.n_classes = channels, n_classes

    def set_normalisation(self, samples: Tensor) -> None:
        """Set the standardisation from ``(P, C)`` training samples."""
        self.mean.copy_(samples.mean(0))
        self.std.copy_(samples.std(0) + 1e-6)

    def forward(self, x: Tensor) -> Tensor:
        check_float_tensor(x, "x")
        if x.ndim == 2:
            return self.mlp((x - self.mean) / self.std)
        check_shape(x, ["N", self.channels, "H", "W"], "x")
        z = self.mlp(((x.movedim(1, -1)) - self.mean) / self.std)
        return z.movedim(-1, 1)


def _as_tensor(a, dtype, device) -> Tensor:
    if isinstance(a, Tensor):
        return a.to(dtype=dtype, device=device)
    return torch.as_tensor(np.array(a), dtype=dtype, device=device)


def region_descriptors(dense: Tensor, leaf_labels, leaf_sets, boxes, scores, stride: int = 2) -> Tensor:
    """Descriptor of each candidate: mask-mean and context-mean hypercolumns and its shape.

    Parameters
    ----------
    dense : (1, C, h, w) Tensor
        Hypercolumns on the grid ``image[::stride, ::stride]`` (:func:`dense_hypercolumns`).
    leaf_labels : (H, W) array_like of int
        Base partition of the candidates, labels ``0..L-1``.
    leaf_sets : (K, L) array_like of bool
        Leaves of each candidate.
    boxes : (K, 4) array_like of int
        Half-open ``(r0, c0, r1, c1)`` boxes (:class:`bottomup.mcg.Candidates` layout).
    scores : (K,) array_like of float
        Ranker scores of the candidates.

    Returns
    -------
    (K, 2 C + N_GEOMETRY) Tensor
        ``[mean in mask, mean in box minus mask, geometry]``; geometry is mask area / image
        area, box area / image area, mask area / box area, the box's four sides normalised by
        the image size, log mask area and the ranker score. A leaf that misses the half-
        resolution grid (a region thinner than the stride) adds nothing to the means.
    """
    check_float_tensor(dense, "dense")
    check_shape(dense, [1, "C", "h", "w"], "dense")
    dev, dt = dense.device, dense.dtype
    lab = _as_tensor(leaf_labels, torch.int64, dev)
    if lab.ndim != 2:
        raise ValueError(f"`leaf_labels` must be (H, W), got shape {tuple(lab.shape)}")
    H, W = lab.shape
    sets = _as_tensor(leaf_sets, dt, dev)
    n_leaves = int(lab.max()) + 1 if lab.numel() else 0
    if sets.ndim != 2 or sets.shape[1] != n_leaves:
        raise ValueError(f"`leaf_sets` must be (K, {n_leaves}), got {tuple(sets.shape)}")
    k = sets.shape[0]
    bx = _as_tensor(boxes, torch.int64, dev).reshape(-1, 4)
    sc = _as_tensor(scores, dt, dev).reshape(-1)
    if bx.shape[0] != k or sc.shape[0] != k:
        raise ValueError(f"`boxes` and `scores` must have {k} rows, got {bx.shape[0]} and {sc.shape[0]}")
    c, h, w = dense.shape[1:]
    if (h, w) != (-(-H // stride), -(-W // stride)):
        raise ValueError(f"`dense` is {h}x{w}, expected the stride-{stride} grid of a {H}x{W} image")
    if k == 0:
        return torch.zeros((0, 2 * c + N_GEOMETRY), dtype=dt, device=dev)
    x = dense[0].reshape(c, -1).T  # (h w, C)
    sub = lab[::stride, ::stride].reshape(-1)
    leaf_sum = torch.zeros((n_leaves, c), dtype=dt, device=dev).index_add_(0, sub, x)
    leaf_cnt = torch.zeros(n_leaves, dtype=dt, device=dev).index_add_(0, sub, torch.ones_like(sub, dtype=dt))
    mask_sum = sets @ leaf_sum
    mask_cnt = sets @ leaf_cnt
    ii = torch.zeros((c, h + 1, w + 1), dtype=dt, device=dev)
    ii[:, 1:, 1:] = dense[0].cumsum(1).cumsum(2)
    r0 = bx[:, 0].div(stride, rounding_mode="floor").clamp(0, h)
    c0 = bx[:, 1].div(stride, rounding_mode="floor").clamp(0, w)
    r1 = (-(-bx[:, 2] // stride)).clamp(0, h)
    c1 = (-(-bx[:, 3] // stride)).clamp(0, w)
    box_sum = (ii[:, r1, c1] - ii[:, r0, c1] - ii[:, r1, c0] + ii[:, r0, c0]).T
    box_cnt = ((r1 - r0) * (c1 - c0)).to(dt)
    inside = mask_sum / mask_cnt.clamp(min=1.0)[:, None]
    ctx_cnt = (box_cnt - mask_cnt).clamp(min=0.0)
    context = (box_sum - mask_sum) / ctx_cnt.clamp(min=1.0)[:, None]
    context = torch.where(ctx_cnt[:, None] > 0, context, torch.zeros_like(context))
    full_cnt = torch.bincount(lab.reshape(-1), minlength=n_leaves).to(dt)
    area = sets @ full_cnt
    barea = ((bx[:, 2] - bx[:, 0]) * (bx[:, 3] - bx[:, 1])).to(dt).clamp(min=1.0)
    geo = torch.stack([
        area / (H * W), barea / (H * W), area / barea,
        bx[:, 0].to(dt) / H, bx[:, 1].to(dt) / W, bx[:, 2].to(dt) / H, bx[:, 3].to(dt) / W,
        torch.log(area.clamp(min=1.0)) / np.log(H * W), sc,
    ], dim=1)
    return torch.cat([inside, context, geo], dim=1)


def candidate_targets(cand_masks: np.ndarray, gt_masks: np.ndarray, gt_classes, labels: np.ndarray,
                      n_classes: int, void: int = 255, iou_threshold: float = 0.5):
    """Training targets of candidates against an image's annotation.

    Parameters
    ----------
    cand_masks : (K, H, W) bool
    gt_masks : (G, H, W) bool
        Annotated instances (things and stuff regions).
    gt_classes : (G,) int
    labels : (H, W) uint8
        Class per pixel, ``void`` excluded from areas.
    n_classes : int
        Background is class ``n_classes``.

    Returns
    -------
    cls : (K,) int64
        Class of the best-overlapping instance if its IoU reaches ``iou_threshold``, else
        background.
    overlap : (K,) float32
        Best IoU with any instance (void pixels excluded).
    hist : (K, n_classes) float32
        Class histogram of the candidate's non-void pixels (rows of an empty mask are zero).
    best : (K,) int64
        Index of the best instance (-1 when there is none).
    """
    from bottomup.metrics.instance import mask_iou

    k = cand_masks.shape[0]
    valid = labels != void
    if gt_masks.shape[0]:
        iou = mask_iou(cand_masks, gt_masks, void=~valid)
        best = iou.argmax(1)
        overlap = iou[np.arange(k), best]
    else:
        best = np.full(k, -1)
        overlap = np.zeros(k)
    cls = np.full(k, n_classes, np.int64)
    ok = overlap >= iou_threshold
    cls[ok] = np.asarray(gt_classes, np.int64)[best[ok]]
    lab = np.where(valid, labels, n_classes).astype(np.int64).reshape(-1)
    onehot = np.zeros((lab.size, n_classes + 1), np.float32)
    onehot[np.arange(lab.size), lab] = 1.0
    counts = cand_masks.reshape(k, -1).astype(np.float32) @ onehot
    hist = counts[:, :n_classes] / np.maximum(counts[:, :n_classes].sum(1, keepdims=True), 1.0)
    best = np.where(overlap > 0, best, -1)
    return cls, overlap.astype(np.float32), hist.astype(np.float32), best.astype(np.int64)


class RegionScorer(nn.Module):
    """Scores of candidate regions from their descriptors (:func:`region_descriptors`).

    Parameters
    ----------
    in_features : int
        Descriptor length (``2 C + N_GEOMETRY``).
    n_classes : int
        Object and stuff classes; the class logits have one more column, background (last).
    hidden : int
    dropout : float

    Returns (forward)
    -----------------
    class_logits : (K, n_classes + 1)
    overlap : (K,) in [0, 1], predicted best IoU with an object
    hist_logits : (K, n_classes), log-histogram of the region's classes (softmax gives it)
    """

    def __init__(self, in_features: int, n_classes: int, hidden: int = 512, dropout: float = 0.3):
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("std", torch.ones(in_features))
        self.body = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Dropout(dropout / 2),
        )
        self.cls = nn.Linear(hidden // 2, n_classes + 1)
        self.iou = nn.Linear(hidden // 2, 1)
        self.hist = nn.Linear(hidden // 2, n_classes)
        self.in_features, self.n_classes = in_features, n_classes

    def set_normalisation(self, samples: Tensor) -> None:
        """Set the standardisation from ``(P, D)`` training descriptors."""
        self.mean.copy_(samples.mean(0))
        self.std.copy_(samples.std(0) + 1e-6)

    def forward(self, x: Tensor):
        check_float_tensor(x, "x")
        check_shape(x, ["K", self.in_features], "x")
        z = self.body((x - self.mean) / self.std)
        return self.cls(z), torch.sigmoid(self.iou(z))[:, 0], self.hist(z)
