"""Region adjacency of a label image, as arrays (edges ``(E, 2)`` with ``u < v``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bottomup.graph._kernels import _boundary_faces_kernel
from bottomup.validate import check_labels

__all__ = ["adjacent_pairs"]


def adjacent_pairs(labels, *, return_faces: bool = False, return_counts: bool = False):
    """Pairs of 4-adjacent regions of a label image.

    Parameters
    ----------
    labels : (H, W) array_like of int
        A partition; labels ``>= 0`` (need not be dense or connected).
    return_faces : bool, optional
        Also return the boundary faces and the pair each one separates.
    return_counts : bool, optional
        Also return the number of faces between the two regions of each pair.

    Returns
    -------
    pairs : (E, 2) ndarray of int64
        Every pair ``(a, b)`` of labels with ``a < b`` that meet across a pixel edge, without
        repeats, sorted lexicographically.
    faces : (M, 2) ndarray of int64
        Only with ``return_faces``: the cell of each boundary face in the ``(2H+1, 2W+1)`` ucm2
        grid, ``(2i + 1, 2j + 2)`` between pixels ``(i, j)`` and ``(i, j + 1)``, then
        ``(2i + 2, 2j + 1)`` between ``(i, j)`` and ``(i + 1, j)``; the horizontal neighbours
        first, each kind in raster order.
    face_pair : (M,) ndarray of int64
        Only with ``return_faces``: index in ``pairs`` of each face's two regions.
    counts : (E,) ndarray of int64
        Only with ``return_counts``: faces per pair (the length of the common boundary).

    Raises
    ------
    TypeError
        If ``labels`` is not an integer array.
    ValueError
        If ``labels`` is not 2-D or holds negative labels.

    Examples
    --------
    >>> adjacent_pairs([[0, 0, 1], [2, 2, 1]]).tolist()
    [[0, 1], [0, 2], [1, 2]]
    >>> pairs, counts = adjacent_pairs([[0, 0, 1], [2, 2, 1]], return_counts=True)
    >>> counts.tolist()
    [1, 2, 1]
    """
    lab = check_labels(labels)
    n = int(lab.max()) + 1 if lab.size else 0
    if lab.size and lab.min() < 0:
        raise ValueError(f"`labels` must be >= 0, got minimum {lab.min()}")
    pairs, faces, face_pair, counts = _adjacent_pairs(lab, n)
    out = (pairs,)
    if return_faces:
        out += (faces, face_pair)
    if return_counts:
        out += (counts,)
    return out[0] if len(out) == 1 else out


def _adjacent_pairs(labels: NDArray, n_labels: int):
    """:func:`adjacent_pairs` of valid labels ``0..n_labels-1``: pairs, faces, face_pair, counts."""
    kind, fi, fj, la, lb = _boundary_faces_kernel(np.ascontiguousarray(labels))
    uniq, face_pair, counts = np.unique(la * n_labels + lb, return_inverse=True, return_counts=True)
    pa = uniq // max(n_labels, 1)
    pairs = np.stack([pa, uniq - pa * n_labels], axis=1)
    faces = np.stack([2 * fi + 1 + kind, 2 * fj + 2 - kind], axis=1)
    return pairs, faces, face_pair.reshape(-1), counts.astype(np.int64)
