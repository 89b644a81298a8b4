"""Ultrametric contour map (UCM): greedy merging of regions by mean boundary strength.

References
----------
.. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical Image
       Segmentation", TPAMI 33(5):898-916, 2011. :DOI:`10.1109/TPAMI.2010.161`
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bottomup.graph._kernels import _boundary_faces_kernel
from bottomup.hierarchy import _kernels as K
from bottomup.hierarchy.tree import Hierarchy
from bottomup.owt import BoundaryPieces, oriented_watershed
from bottomup.validate import check_labels

__all__ = [
    "UCM_SIGMOID",
    "hierarchy_from_pieces",
    "normalize_ucm",
    "ucm",
    "ucm2_to_labels",
    "ucm_from_edge_weights",
]

#: Learned BSDS normalisation of the gPb release (``contours2ucm.m``):
#: p = 1 / (1 + exp(-(b0 + b1 u))), then (p - p(0)) / (1 - p(0)), clipped to [0, 1].
UCM_SIGMOID = (-2.7487, 11.1189)


def normalize_ucm(values):
    """Apply the release's learned sigmoid to UCM levels (monotone, 0 stays 0).

    Parameters
    ----------
    values : array_like of float
        Altitudes or ucm2 values.

    Returns
    -------
    out : ndarray of float64
        ``(p(u) - p(0)) / (1 - p(0))`` clipped to [0, 1], with
        ``p(u) = 1 / (1 + exp(2.7487 - 11.1189 u))`` (the release's ``contours2ucm.m``).
    """
    b0, b1 = UCM_SIGMOID
    u = np.asarray(values, dtype=np.float64)
    p0 = 1.0 / (1.0 + np.exp(-b0))
    p = 1.0 / (1.0 + np.exp(-(b0 + b1 * u)))
    return np.clip((p - p0) / (1.0 - p0), 0.0, 1.0)


def hierarchy_from_pieces(labels, pieces: BoundaryPieces, *, normalize: bool = False) -> Hierarchy:
    """Greedy merging of adjacent regions by the mean strength of their common boundary.

    Parameters
    ----------
    labels : (H, W) array_like of int
        Finest partition, dense labels ``0..K-1`` (from :func:`bottomup.owt.oriented_watershed`).
    pieces : BoundaryPieces
        Boundary faces of ``labels`` with their strengths.
    normalize : bool, optional
        Map the altitudes through :func:`normalize_ucm` (default False).

    Returns
    -------
    hierarchy : Hierarchy
        Binary tree; the altitude of a merge is the mean strength of the boundary between the two
        regions it joins at that moment (``ucm_mean_pb`` of the gPb release).

    Notes
    -----
    The dissimilarity of two adjacent regions is the sum of the strengths of the boundary elements
    between them divided by their number (vertices not counted). The lowest pair is merged; the
    merged region's boundary sums and counts absorb the smaller region's, and the new means enter
    the priority queue. A merged mean is a weighted average of means that were all at least the
    current level, so levels never decrease and the result is an ultrametric. Cost:
    ``O(E log E)`` for E adjacent pairs (the smaller adjacency list is moved at each merge).
    """
    labels = check_labels(labels, name="labels", shape=pieces.shape)
    k = int(labels.max()) + 1 if labels.size else 0
    if labels.min() < 0 or np.bincount(labels.ravel(), minlength=k).min() == 0:
        raise ValueError("`labels` must be dense labels 0..K-1")
    if pieces.n_faces == 0:
        if k != 1:
            raise ValueError(f"`pieces` has no boundary but `labels` has {k} regions")
        return Hierarchy(np.zeros(1, np.int64), np.zeros(1), labels.astype(np.int32))
    face_pair, pairs = pieces.region_pairs(labels)
    sums = np.bincount(face_pair, weights=pieces.strengths, minlength=len(pairs))
    counts = np.bincount(face_pair, minlength=len(pairs)).astype(np.float64)
    parents, alt = K._greedy_merge_kernel(k, pairs[:, 0], pairs[:, 1], sums, counts)
    if normalize:
        alt = normalize_ucm(alt)
    return Hierarchy(parents, alt, labels.astype(np.int32))


def ucm(pb, oriented=None, *, normalize: bool = False, descent_first: bool = False) -> Hierarchy:
    """Hierarchy of regions of a contour map: oriented watershed, then greedy merging (OWT-UCM).

    Parameters
    ----------
    pb : (H, W) array_like of float
        Contour strength, finite and ``>= 0`` (gPb, a CNN edge map, a gradient magnitude...).
    oriented : (O, H, W) array_like of float, optional
        Oriented stack, ``theta[o] = o * pi / O`` (see :func:`bottomup.owt.oriented_watershed`);
        None reads boundary strengths from ``pb``.
    normalize : bool, optional
        Apply the release's learned sigmoid to the altitudes (:func:`normalize_ucm`). Default False:
        the sigmoid was fit to gPb on BSDS, it is monotone (same tree, same cuts in rank order) and
        on other contour maps it only squashes the scale; the gPb pipeline turns it on.
    descent_first : bool, optional
        Watershed tie rule (see :func:`bottomup.owt.oriented_watershed`): True lets water on a
        ridge run down its steepest flank instead of along the ridge into an earlier basin, which
        removes one-pixel slivers along ridges; :func:`bottomup.segment` uses it by default.
        Default False (higra's order).

    Returns
    -------
    hierarchy : Hierarchy
        Leaves are the watershed basins; ``hierarchy.to_ucm2()`` is the ucm2.

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical Image
           Segmentation", TPAMI 33(5):898-916, 2011. :DOI:`10.1109/TPAMI.2010.161`

    Examples
    --------
    >>> import numpy as np
    >>> pb = np.zeros((4, 7)); pb[:, 2] = 0.3; pb[:, 5] = 0.8
    >>> h = ucm(pb)
    >>> h.n_leaves, h.levels.tolist()
    (3, [0.3, 0.8])
    >>> h.cut(0.5)[0]
    array([0, 0, 0, 0, 0, 0, 1], dtype=int32)
    """
    labels, pieces = oriented_watershed(pb, oriented, descent_first=descent_first)
    return hierarchy_from_pieces(labels, pieces, normalize=normalize)


def ucm2_to_labels(ucm2, threshold: float) -> NDArray[np.int32]:
    """Segmentation of a ucm2 at ``threshold`` (the BSDS rule: components of ``ucm2 <= t``)."""
    return Hierarchy.from_ucm2(ucm2).cut(threshold)


def ucm_from_edge_weights(wh, wv) -> Hierarchy:
    """OWT-UCM of an edge-weighted 4-adjacency pixel graph (no orientation).

    For boundary strengths that live *between* pixels (colour differences, a learned affinity),
    as higra's ``mean_pb_hierarchy`` takes them: the watershed cut of the edge weights gives the
    leaves, and the greedy merging uses the mean edge weight along each boundary.

    Parameters
    ----------
    wh : (H, W-1) array_like of float
        Weight of the edge between pixels ``(i, j)`` and ``(i, j+1)``; finite, ``>= 0``.
    wv : (H-1, W) array_like of float
        Weight of the edge between pixels ``(i, j)`` and ``(i+1, j)``; finite, ``>= 0``.

    Returns
    -------
    hierarchy : Hierarchy
        Same tree as ``higra.mean_pb_hierarchy`` on the same weights (tested on tie-free weights).

    Examples
    --------
    >>> import numpy as np
    >>> wh = np.zeros((2, 3)); wh[:, 1] = 0.5
    >>> wv = np.zeros((1, 4))
    >>> ucm_from_edge_weights(wh, wv).cut(0.1).tolist()
    [[0, 0, 1, 1], [0, 0, 1, 1]]
    """
    from bottomup.validate import check_map

    wh = np.asarray(wh)
    wv = np.asarray(wv)
    if wh.ndim != 2 or wv.ndim != 2:
        raise ValueError(f"`wh` and `wv` must be 2-D, got shapes {wh.shape} and {wv.shape}")
    h, w = wh.shape[0], wv.shape[1]
    if wh.shape != (h, w - 1) or wv.shape != (h - 1, w) or h < 1 or w < 1:
        raise ValueError(
            f"`wh` must have shape (H, W-1) and `wv` (H-1, W) for one (H, W) image, got "
            f"{wh.shape} and {wv.shape}"
        )
    wh = check_map(wh, name="wh", lo=0.0, hi=None) if wh.size else np.zeros(wh.shape)
    wv = check_map(wv, name="wv", lo=0.0, hi=None) if wv.size else np.zeros(wv.shape)
    return _hierarchy_from_edge_weights(wh, wv, (h, w))


def _hierarchy_from_edge_weights(wh: np.ndarray, wv: np.ndarray, shape: tuple) -> Hierarchy:
    """OWT-UCM on an edge-weighted 4-adjacency graph (no orientation); used to compare with higra.

    ``wh (H, W-1)`` weighs the edges between ``(i, j)`` and ``(i, j+1)``, ``wv (H-1, W)`` those
    between ``(i, j)`` and ``(i+1, j)``.
    """
    from bottomup.owt import _kernels as OK
    from bottomup.owt.oriented_watershed import _watershed_edges

    wh = np.ascontiguousarray(wh, dtype=np.float64)
    wv = np.ascontiguousarray(wv, dtype=np.float64)
    labels, _ = _watershed_edges(wh, wv, shape)
    kind, fi, fj, _, _ = _boundary_faces_kernel(labels)
    strengths = OK._faces_from_edges_kernel(kind, fi, fj, wh, wv)
    faces = np.stack([2 * fi + 1 + kind, 2 * fj + 2 - kind], axis=1)
    pieces = BoundaryPieces(
        shape=tuple(shape),
        faces=faces,
        strengths=strengths,
        face_piece=np.zeros(len(strengths), np.int64),
        piece_ends=np.zeros((0, 2, 2), np.int64),
        piece_channel=np.zeros(0, np.int64),
        piece_regions=np.zeros((0, 2), np.int32),
        n_orientations=1,
    )
    return hierarchy_from_pieces(labels, pieces)
