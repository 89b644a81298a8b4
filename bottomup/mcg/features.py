"""Candidate features for ranking (MCG's 16 features plus the number of regions).

References
----------
.. [1] J. Pont-Tuset, P. Arbelaez, J. T. Barron, F. Marques, J. Malik, "Multiscale Combinatorial
       Grouping for Image Segmentation and Object Proposal Generation", TPAMI 39(1), 2017.
       :DOI:`10.1109/TPAMI.2016.2537320`
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bottomup.hierarchy import Hierarchy
from bottomup.masks import labels_to_boxes, union_boxes

__all__ = ["FEATURE_NAMES", "LeafStats", "leaf_stats", "candidate_features"]

#: Column names of :func:`candidate_features` (the MCG code's 16 features in its order, then ``n_regions``).
FEATURE_NAMES = (
    "end_level",        # 1 min over regions of the level where the region disappears
    "start_level",      # 2 min over regions of the level where it appears (0 for leaves)
    "area_balance",     # 3 min area / max area of the regions
    "area_frac",        # 4 area / image area
    "perimeter",        # 5 boundary length (grid elements, image border included)
    "contour_sum",      # 6 sum of UCM strength along the boundary
    "contour_mean",     # 7 (6) / (5)
    "compactness",      # 8 perimeter^2 / area
    "contour_per_sqrt_area",  # 9 (6) / sqrt(area)
    "box_c0", "box_r0", "box_c1", "box_r1",  # 10-13 normalised bounding box
    "box_area",         # 14 bounding-box area (pixels)
    "box_fill",         # 15 area / box area
    "box_aspect",       # 16 box width / height
    "n_regions",        # 17 number of regions in the tuple (1..4)
)


class LeafStats:
    """Per-leaf and per-edge quantities shared by features and masks (computed once per image).

    Attributes
    ----------
    area : (L,) float64
    border : (L,) float64
        Pixels sides of the leaf on the image border.
    box : (L, 4) int64
        Half-open ``(r0, c0, r1, c1)`` of each leaf.
    edges : (E, 2) int64
        Adjacent leaf pairs.
    length : (E,) float64
        Boundary elements between the pair.
    strength : (E,) float64
        UCM level of the pair (altitude of their lowest common ancestor).
    """

    def __init__(self, area, border, box, edges, length, strength):
        self.area, self.border, self.box = area, border, box
        self.edges, self.length, self.strength = edges, length, strength


def leaf_stats(hierarchy: Hierarchy) -> LeafStats:
    """Compute :class:`LeafStats` of a hierarchy's leaves."""
    lab = hierarchy.leaf_labels
    k = hierarchy.n_leaves
    area = np.bincount(lab.ravel(), minlength=k).astype(np.float64)
    border = (np.bincount(lab[0], minlength=k) + np.bincount(lab[-1], minlength=k)
              + np.bincount(lab[:, 0], minlength=k) + np.bincount(lab[:, -1], minlength=k))
    box = labels_to_boxes(lab, k)
    if k > 1:
        edges, lca, length = hierarchy.adjacent_leaves()
        strength = hierarchy.altitudes[lca]
    else:
        edges, length, strength = np.zeros((0, 2), np.int64), np.zeros(0), np.zeros(0)
    return LeafStats(area, border.astype(np.float64), box, edges, length.astype(np.float64),
                     np.asarray(strength, np.float64))


def candidate_features(
    hierarchy: Hierarchy, tuples: NDArray[np.int64], leaf_sets: NDArray[np.bool_],
    stats: LeafStats | None = None,
) -> NDArray[np.float64]:
    """Features of candidates (as MCG, Pont-Tuset et al. 2017), one row per candidate.

    Parameters
    ----------
    hierarchy : Hierarchy
    tuples : (K, 4) ndarray of int64
        Node ids of each candidate's regions, padded with -1.
    leaf_sets : (K, L) ndarray of bool
        Leaf incidence of the candidates (:func:`bottomup.mcg.grouping.tuples_to_leaf_sets`).
    stats : LeafStats, optional
        Precomputed :func:`leaf_stats`.

    Returns
    -------
    features : (K, 17) ndarray of float64
        Columns named in :data:`FEATURE_NAMES`.
    """
    st = leaf_stats(hierarchy) if stats is None else stats
    h, w = hierarchy.shape
    n = hierarchy.n_nodes
    kk = tuples.shape[0]
    alt = hierarchy.altitudes
    parents = hierarchy.parents
    valid = tuples >= 0
    t = np.where(valid, tuples, 0)
    node_area = hierarchy.areas.astype(np.float64)
    end = np.where(valid, alt[parents[t]], np.inf)
    end[t == n - 1] = np.where(valid, alt[t], np.inf)[t == n - 1]  # the root never disappears
    start = np.where(valid, alt[t], np.inf)
    ar = node_area[t]
    amin = np.where(valid, ar, np.inf).min(axis=1)
    amax = np.where(valid, ar, -np.inf).max(axis=1)
    incf = leaf_sets.astype(np.float64)
    area = incf @ st.area
    if st.edges.shape[0]:
        cut = leaf_sets[:, st.edges[:, 0]] ^ leaf_sets[:, st.edges[:, 1]]
        cutf = cut.astype(np.float64)
        perim_in = cutf @ st.length
        contour = cutf @ (st.length * st.strength)
    else:
        perim_in = np.zeros(kk)
        contour = np.zeros(kk)
    perim = perim_in + incf @ st.border
    r0, c0, r1, c1 = union_boxes(st.box, leaf_sets).T
    bh = np.maximum(r1 - r0, 1).astype(np.float64)
    bw = np.maximum(c1 - c0, 1).astype(np.float64)
    safe_area = np.maximum(area, 1.0)
    f = np.empty((kk, len(FEATURE_NAMES)))
    f[:, 0] = end.min(axis=1)
    f[:, 1] = start.min(axis=1)
    f[:, 2] = amin / np.maximum(amax, 1.0)
    f[:, 3] = area / (h * w)
    f[:, 4] = perim
    f[:, 5] = contour
    f[:, 6] = contour / np.maximum(perim_in, 1.0)
    f[:, 7] = perim**2 / safe_area
    f[:, 8] = contour / np.sqrt(safe_area)
    f[:, 9] = c0 / w
    f[:, 10] = r0 / h
    f[:, 11] = c1 / w
    f[:, 12] = r1 / h
    f[:, 13] = bh * bw
    f[:, 14] = area / (bh * bw)
    f[:, 15] = bw / bh
    f[:, 16] = valid.sum(axis=1)
    return f
