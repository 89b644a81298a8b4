"""Multiscale hierarchies: an image pyramid, alignment of per-scale hierarchies to common
superpixels, and their combination (MCG's multiscale step).

MCG [1]_ (section 3.1 of the TPAMI paper) projects each scale's UCM onto the finest superpixels
(the regions of the largest scale's UCM at threshold 0.1) by majority vote at every level,
averages the aligned UCMs with uniform weights, merges again by mean boundary strength and
applies a sigmoid ``1 / (1 + exp(-8 (u - 0.35)))``.

Here the projection is exact at every level at once: each target superpixel takes the majority
leaf of the scale's hierarchy (its leaf labels resized to the image by nearest neighbour); the
level at which two adjacent superpixels meet in that hierarchy is the altitude of the lowest
common ancestor of their leaves. A cut of the source at any ``t`` labels the superpixels by the
region of their majority leaf, which is what projecting that cut by majority vote gives whenever
the majority leaf's region also holds the majority of the superpixel (always when the superpixel
lies in one leaf; MCG samples 100 levels instead).

References
----------
.. [1] J. Pont-Tuset, P. Arbelaez, J. T. Barron, F. Marques, J. Malik, "Multiscale Combinatorial
       Grouping for Image Segmentation and Object Proposal Generation", TPAMI 39(1), 2017.
       :DOI:`10.1109/TPAMI.2016.2537320`
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bottomup.graph import adjacent_pairs
from bottomup.hierarchy.tree import Hierarchy
from bottomup.hierarchy.ucm import ucm_from_edge_weights

__all__ = ["ALIGN_THRESHOLD", "MULTISCALE_SIGMOID", "image_pyramid", "resize_labels", "finest_superpixels",
           "aligned_levels", "combine_hierarchies", "multiscale_hierarchy"]

#: Smallest side of a pyramid level (gPb's largest half-disc needs 21 px).
_MIN_SIDE = 24


def image_pyramid(image, scales) -> list[NDArray[np.float64]]:
    """Resize an image to each scale (bicubic; anti-aliased when shrinking).

    Parameters
    ----------
    image : (H, W, 3) ndarray of float64
        A validated image (:func:`bottomup.validate.check_image`).
    scales : sequence of float
        Positive factors applied to both sides.

    Returns
    -------
    levels : list of (round(s H), round(s W), 3) ndarray of float64 in [0, 1]
        A scale whose level would be under 24 px on a side is clamped to 24 px.
    """
    from skimage.transform import resize

    img = image
    s = np.asarray(scales, np.float64)
    if s.ndim != 1 or s.size == 0 or not (s > 0).all():
        raise ValueError(f"`scales` must be a non-empty list of positive numbers, got {scales!r}")
    h, w = img.shape[:2]
    out = []
    for f in s:
        shape = (max(_MIN_SIDE, round(f * h)), max(_MIN_SIDE, round(f * w)))
        if shape == (h, w):
            out.append(img)
        else:
            out.append(np.clip(resize(img, shape, order=3, anti_aliasing=f < 1), 0.0, 1.0))
    return out



#: Level of the finest scale's UCM giving the alignment targets: 0, its leaves, the paper's "finest
#: superpixels" (the release cuts its SF-based UCM at 0.1, FACTS B.5 and B.15 item 2; our gPb levels
#: live on another scale, where 0.1 already leaves only about 100 regions).
ALIGN_THRESHOLD = 0.0
#: (slope, threshold) of the sigmoid applied to the combined UCM (FACTS B.6).
MULTISCALE_SIGMOID = (8.0, 0.35)


def resize_labels(labels: NDArray, shape: tuple[int, int]) -> NDArray[np.int32]:
    """Nearest-neighbour resize of a label image (pixel centres mapped to pixel centres)."""
    h, w = labels.shape
    rr = np.minimum(((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(np.int64), h - 1)
    cc = np.minimum(((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(np.int64), w - 1)
    return np.ascontiguousarray(labels[rr[:, None], cc[None, :]], dtype=np.int32)


def finest_superpixels(hierarchy: Hierarchy, shape: tuple[int, int],
                       threshold: float = ALIGN_THRESHOLD) -> NDArray[np.int32]:
    """Regions of ``hierarchy`` cut at ``threshold``, resized to ``shape``, as connected labels."""
    from skimage.measure import label

    cut = resize_labels(hierarchy.cut(threshold), shape)
    return (label(cut + 1, background=0, connectivity=1) - 1).astype(np.int32)


def aligned_levels(hierarchy: Hierarchy, target: NDArray[np.int32], pairs: NDArray[np.int64]):
    """Level at which each adjacent pair of target superpixels meets in ``hierarchy``.

    Parameters
    ----------
    hierarchy : Hierarchy
        At any size (its leaves are resized to the target's shape by nearest neighbour).
    target : (H, W) ndarray of int32
        Target superpixels, dense labels.
    pairs : (E, 2) ndarray of int64
        Adjacent target superpixels.

    Returns
    -------
    levels : (E,) ndarray of float64
        0 when both superpixels take the same leaf.
    """
    leaves = resize_labels(hierarchy.leaf_labels, target.shape)
    k = hierarchy.n_leaves
    n_t = int(target.max()) + 1
    joint = target.ravel().astype(np.int64) * k + leaves.ravel()
    uniq, counts = np.unique(joint, return_counts=True)
    tgt, leaf = uniq // k, uniq % k
    order = np.lexsort((counts, tgt))  # by target, then count ascending: last one is the majority
    major = np.zeros(n_t, np.int64)
    major[tgt[order]] = leaf[order]
    la, lb = major[pairs[:, 0]], major[pairs[:, 1]]
    lca = hierarchy.lowest_common_ancestors(la, lb)
    return np.where(la == lb, 0.0, hierarchy.altitudes[lca])


def combine_hierarchies(hierarchies: list[Hierarchy], shape: tuple[int, int] | None = None, *,
                        threshold: float = ALIGN_THRESHOLD,
                        sigmoid: tuple[float, float] | None = MULTISCALE_SIGMOID,
                        weights=None) -> Hierarchy:
    """Align hierarchies of several scales to the finest one's superpixels and combine them.

    Parameters
    ----------
    hierarchies : list of Hierarchy
        One per scale, each at its own size; the largest is the finest.
    shape : (H, W), optional
        Output size, normally the original image's (default: the first hierarchy's size).
    threshold : float, optional
        UCM level of the finest hierarchy giving the alignment targets (MCG 0.1).
    sigmoid : (slope, threshold) or None
        Applied to the combined levels (MCG (8, 0.35)); None keeps the mean levels.
    weights : sequence of float, optional
        One positive weight per hierarchy for the average of the aligned levels (MCG: uniform,
        the default).

    Returns
    -------
    hierarchy : Hierarchy
        At ``shape``: greedy merging by mean boundary strength of the mean aligned UCM [1]_.
    """
    if not hierarchies or not all(isinstance(h, Hierarchy) for h in hierarchies):
        raise TypeError("`hierarchies` must be a non-empty list of Hierarchy")
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(hierarchies),) or not (np.isfinite(weights).all() and (weights > 0).all()):
            raise ValueError(f"`weights` must be {len(hierarchies)} positive numbers (one per hierarchy), "
                             f"got {weights.tolist()!r}")
    if shape is None:
        shape = hierarchies[0].shape
    finest = max(hierarchies, key=lambda h: h.shape[0] * h.shape[1])
    target = finest_superpixels(finest, shape, threshold)
    if target.max() == 0:
        return Hierarchy([0], [0.0], np.zeros(shape, np.int32))
    pairs, faces, face_pair = adjacent_pairs(target, return_faces=True)
    mean = np.average([aligned_levels(h, target, pairs) for h in hierarchies], axis=0, weights=weights)
    rows, cols = target.shape
    wh, wv = np.zeros((rows, cols - 1)), np.zeros((rows - 1, cols))
    across = faces[:, 0] % 2 == 1  # odd ucm2 rows: faces between horizontal neighbours
    fh, fv = faces[across], faces[~across]
    wh[(fh[:, 0] - 1) // 2, (fh[:, 1] - 2) // 2] = mean[face_pair[across]]
    wv[(fv[:, 0] - 2) // 2, (fv[:, 1] - 1) // 2] = mean[face_pair[~across]]
    h = ucm_from_edge_weights(wh, wv)
    if sigmoid is None:
        return h
    slope, thr = sigmoid
    alt = np.where(h.altitudes > 0, 1.0 / (1.0 + np.exp(-slope * (h.altitudes - thr))), 0.0)
    return Hierarchy(h.parents, alt, h.leaf_labels)


def multiscale_hierarchy(image, hierarchy_of, scales, *, weights=None,
                         sigmoid: tuple[float, float] | None = MULTISCALE_SIGMOID,
                         max_pixels: int | None = None) -> Hierarchy:
    """The hierarchies of an image pyramid, aligned to the finest one's leaves and combined.

    The one multiscale assembler: ``bottomup.segment`` (a source's :class:`Multiscale`, no sigmoid)
    and MCG (scales 2, 1, 0.5, uniform weights, MCG's sigmoid) both call it.

    Parameters
    ----------
    image : (H, W, 3) ndarray of float64
        A validated image.
    hierarchy_of : callable
        ``hierarchy_of(level_image) -> Hierarchy`` for one pyramid level.
    scales : sequence of float
        Positive image scales; the largest gives the leaves.
    weights : sequence of float, optional
        One positive weight per scale (default uniform).
    sigmoid : (slope, threshold) or None
        See :func:`combine_hierarchies`.
    max_pixels : int, optional
        The contour source's size limit: when the largest level would exceed it, the other
        levels are taken relative to the size the source actually works at, so that each level
        keeps its own resolution (the largest level keeps the image's leaves).

    Returns
    -------
    hierarchy : Hierarchy
        At the image's size.
    """
    s = np.asarray(scales, dtype=np.float64)
    if weights is not None and len(tuple(weights)) != s.size:  # before the work
        raise ValueError(f"`weights` must have one entry per scale ({s.size}), got {weights!r}")
    if max_pixels is not None and s.ndim == 1 and s.size and (s > 0).all():
        h, w = image.shape[:2]
        f = min(1.0, float(np.sqrt(max_pixels / (h * w * s.max() ** 2))))
        s = np.where(s == s.max(), s, s * f)
    levels = image_pyramid(image, s)
    return combine_hierarchies([hierarchy_of(level) for level in levels], image.shape[:2],
                               sigmoid=sigmoid, weights=weights)
