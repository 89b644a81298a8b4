"""Oriented watershed transform (OWT) of a contour map.

References
----------
.. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical Image
       Segmentation", TPAMI 33(5):898-916, 2011. :DOI:`10.1109/TPAMI.2010.161`
.. [2] J. Cousty, G. Bertrand, L. Najman, M. Couprie, "Watershed Cuts: Minimum Spanning Forests and
       the Drop of Water Principle", TPAMI 31(8):1362-1374, 2009.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bottomup.owt import _kernels as K
from bottomup.validate import check_map, check_same_shape

__all__ = ["BoundaryPieces", "oriented_watershed", "check_oriented"]

# Recursive subdivision defaults of the gPb release (``subdivide_local``).
SUBDIVIDE_REL_TOL = 0.05
SUBDIVIDE_ABS_TOL = 2.0


@dataclass(frozen=True, eq=False)
class BoundaryPieces:
    """Boundary of a partition cut into nearly straight pieces, each with an oriented strength.

    Every boundary element ("face") lies between two 4-adjacent pixels with different labels, at its
    position on the BSDS double-size grid.

    Attributes
    ----------
    shape : tuple of int
        Image shape ``(H, W)``.
    faces : (M, 2) ndarray of int64
        ``(row, col)`` of each boundary face on the ``(2H+1, 2W+1)`` grid: ``(2i+1, 2j+2)`` between
        pixels ``(i, j)`` and ``(i, j+1)``, ``(2i+2, 2j+1)`` between ``(i, j)`` and ``(i+1, j)``.
    strengths : (M,) ndarray of float64
        Strength of each face, read from the oriented stack at its piece's orientation.
    face_piece : (M,) ndarray of int64
        Piece of each face.
    piece_ends : (P, 2, 2) ndarray of int64
        Both end vertices of each piece on the double-size grid (even coordinates).
    piece_channel : (P,) ndarray of int64
        Orientation channel ``o`` of each piece, ``theta = o * pi / n_orientations``.
    piece_regions : (P, 2) ndarray of int32
        The two regions each piece separates, smaller label first.
    n_orientations : int
        Number of channels of the stack the strengths came from (1 for a plain map).
    """

    shape: tuple
    faces: NDArray[np.int64]
    strengths: NDArray[np.float64]
    face_piece: NDArray[np.int64]
    piece_ends: NDArray[np.int64]
    piece_channel: NDArray[np.int64]
    piece_regions: NDArray[np.int32]
    n_orientations: int

    def __post_init__(self):
        m = self.faces.shape[0]
        if (
            self.faces.shape != (m, 2)
            or self.strengths.shape != (m,)
            or self.face_piece.shape != (m,)
        ):
            raise ValueError("`faces`, `strengths` and `face_piece` must describe the same M faces")
        p = self.piece_channel.shape[0]
        if self.piece_ends.shape != (p, 2, 2) or self.piece_regions.shape != (p, 2):
            raise ValueError(
                "`piece_ends`, `piece_channel` and `piece_regions` must describe P pieces"
            )
        for arr in (
            self.faces,
            self.strengths,
            self.face_piece,
            self.piece_ends,
            self.piece_channel,
            self.piece_regions,
        ):
            arr.setflags(write=False)

    @property
    def n_faces(self) -> int:
        """Number of boundary faces M."""
        return int(self.faces.shape[0])

    @property
    def n_pieces(self) -> int:
        """Number of straight pieces P."""
        return int(self.piece_channel.shape[0])

    def face_pixels(self):
        """The two pixels each face lies between.

        Returns
        -------
        i0, j0, i1, j1 : (M,) ndarrays of int64
            Pixel ``(i0, j0)`` and its right (``(2i+1, 2j+2)`` faces) or lower neighbour
            ``(i1, j1)``.
        """
        r, c = self.faces[:, 0], self.faces[:, 1]
        horiz = (r % 2) == 1  # (2i+1, 2j+2) between (i, j) and (i, j+1); else (2i+2, 2j+1)
        i0 = np.where(horiz, (r - 1) // 2, (r - 2) // 2)
        j0 = np.where(horiz, (c - 2) // 2, (c - 1) // 2)
        return i0, j0, i0 + ~horiz, j0 + horiz

    def region_pairs(self, labels):
        """The faces grouped by the pair of regions of ``labels`` they separate (the arcs).

        Parameters
        ----------
        labels : (H, W) ndarray of int
            The partition these pieces bound, dense labels ``0..K-1``.

        Returns
        -------
        face_pair : (M,) ndarray of int64
            Index of each face's pair in ``pairs``.
        pairs : (A, 2) ndarray of int64
            The region pairs, smaller label first, in increasing order.

        Raises
        ------
        ValueError
            If a face lies inside a region (pieces and labels not built together).
        """
        labels = np.asarray(labels)
        k = int(labels.max()) + 1
        i0, j0, i1, j1 = self.face_pixels()
        a = labels[i0, j0].astype(np.int64)
        b = labels[i1, j1].astype(np.int64)
        lo = np.minimum(a, b)
        hi = np.maximum(a, b)
        if (lo == hi).any():
            raise ValueError(
                "`pieces` has faces inside a region of `labels`; were they built together?"
            )
        uniq, face_pair = np.unique(lo * k + hi, return_inverse=True)
        return face_pair.ravel().astype(np.int64), np.stack([uniq // k, uniq % k], axis=1)

    def to_grid(self) -> NDArray[np.float64]:
        """Return the double-size grid of boundary values (the release's ``ws_wt2``).

        Returns
        -------
        grid : (2H+1, 2W+1) ndarray of float64
            Face strengths at the faces, each vertex the max of its 4 neighbours, pixels 0.
        """
        h, w = self.shape
        g = np.zeros((2 * h + 1, 2 * w + 1))
        g[self.faces[:, 0], self.faces[:, 1]] = self.strengths
        K._complete_vertices(g)
        return g


def check_oriented(oriented, pb: np.ndarray, *, name: str = "oriented") -> np.ndarray:
    """Validate an oriented stack ``(O, H, W)`` against ``pb``; return float64 C-contiguous."""
    arr = np.asarray(oriented)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(
            f"`{name}` must be a numeric (O, H, W) array, got {type(oriented).__name__}"
        )
    if arr.ndim != 3:
        raise ValueError(
            f"`{name}` must be an oriented stack of shape (O, H, W), got shape {arr.shape}; "
            "pass oriented=None to read strengths from `pb`"
        )
    if arr.shape[0] < 1:
        raise ValueError(f"`{name}` needs at least one orientation, got shape {arr.shape}")
    check_same_shape(arr[0], pb, f"{name}[o]", "pb")
    out = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"`{name}` contains NaN or inf; expected finite values")
    if out.min() < 0:
        raise ValueError(f"`{name}` must be >= 0, got minimum {out.min():.4g}")
    return out


def _watershed_edges(
    wh: np.ndarray, wv: np.ndarray, shape: tuple, descent_first: bool = False
) -> tuple[np.ndarray, int]:
    h, w = shape
    labels, k = K._watershed_cut_kernel(wh, wv, h, w, descent_first)
    return labels.reshape(h, w), int(k)


def _pieces(
    labels: np.ndarray, strength_source: np.ndarray, n_or: int, rel_tol: float, abs_tol: float
) -> BoundaryPieces:
    h, w = labels.shape
    fk, fi, fj, arc_fstart, va, vb = K._trace_arcs_kernel(labels)
    parc, pv0, pv1 = K._subdivide_kernel(arc_fstart, va, vb, rel_tol, abs_tol)
    channel, face_piece, strength = K._piece_strengths_kernel(
        fk, fi, fj, arc_fstart, parc, pv0, pv1, va, vb, strength_source
    )
    faces = np.empty((fk.shape[0], 2), np.int64)
    faces[:, 0] = 2 * fi + 1 + fk  # kind 0 (h): 2i+1 ; kind 1 (v): 2i+2
    faces[:, 1] = 2 * fj + 2 - fk  # kind 0 (h): 2j+2 ; kind 1 (v): 2j+1
    ends = np.empty((parc.shape[0], 2, 2), np.int64)
    ends[:, 0, 0] = 2 * va[pv0]
    ends[:, 0, 1] = 2 * vb[pv0]
    ends[:, 1, 0] = 2 * va[pv1]
    ends[:, 1, 1] = 2 * vb[pv1]
    # regions on both sides of each piece's first face
    first_face = pv0 - parc
    ii = fi[first_face]
    jj = fj[first_face]
    kk = fk[first_face]
    r0 = labels[ii, jj]
    r1 = np.where(
        kk == 0, labels[ii, np.minimum(jj + 1, w - 1)], labels[np.minimum(ii + 1, h - 1), jj]
    )
    regions = np.stack([np.minimum(r0, r1), np.maximum(r0, r1)], axis=1).astype(np.int32)
    return BoundaryPieces(
        shape=(h, w),
        faces=faces,
        strengths=strength,
        face_piece=face_piece,
        piece_ends=ends,
        piece_channel=channel,
        piece_regions=regions,
        n_orientations=n_or,
    )


def oriented_watershed(
    pb,
    oriented=None,
    *,
    rel_tol: float = SUBDIVIDE_REL_TOL,
    abs_tol: float = SUBDIVIDE_ABS_TOL,
    descent_first: bool = False,
) -> tuple[NDArray[np.int32], BoundaryPieces]:
    """Oriented watershed transform of a contour map.

    The watershed of ``pb`` gives the finest regions; the boundary between each pair of regions is
    cut into nearly straight pieces and every boundary element of a piece takes its strength from
    the channel of ``oriented`` closest to the piece's orientation [1]_.

    Parameters
    ----------
    pb : (H, W) array_like of float
        Contour strength, finite and ``>= 0`` (gPb is in [0, 1]; any non-negative map works).
    oriented : (O, H, W) array_like of float, optional
        Oriented contour stack, ``theta[o] = o * pi / O``, where orientation ``theta`` means the
        edge runs along ``(row, col) = (cos theta, sin theta)`` (``theta = 0``: a vertical edge).
        None (default) reads the strengths from ``pb`` itself.
    rel_tol, abs_tol : float, optional
        Subdivision tolerances: an arc is split at its farthest point from the chord when that
        distance exceeds both ``rel_tol * chord`` and ``abs_tol`` pixels, or when a point projects
        outside the chord (defaults 0.05 and 2.0, as the release).
    descent_first : bool, optional
        How the watershed resolves ties. False (default): neighbours are visited up, left, right,
        down along every steepest edge, as higra, so a pixel on a ridge may join the basin of the
        ridge pixel above or left of it, and a basin can grow a one-pixel "tentacle" along a
        ridge, leaving a spurious strong boundary on each side of it. True: a pixel first follows
        a steepest edge to a strictly lower neighbour (the lowest one) when it has one, as a drop
        of water runs down the flank of a ridge; plateaus are explored as before. Both are
        watershed cuts [2]_ (one basin per minimum, same minimum spanning forest weight). True
        is what :func:`bottomup.segment` uses (figures: docs/results.md#the-hierarchy-step-alone).

    Returns
    -------
    labels : (H, W) ndarray of int32
        Finest partition, dense labels ``0..K-1`` (numbered in raster order of their minima).
    pieces : BoundaryPieces
        The boundary faces, their straight pieces, orientation channels and strengths;
        ``pieces.to_grid()`` is the double-size grid of boundary values.

    Raises
    ------
    ValueError
        If ``pb`` is not a finite non-negative 2-D map or ``oriented`` does not match it.

    Notes
    -----
    The watershed is a watershed cut [2]_ of the 4-adjacency graph whose edge between pixels ``p``
    and ``q`` weighs ``max(pb[p], pb[q])``, computed by the linear-time "stream" (drop of water)
    algorithm of [2]_ with higra's neighbour order, so that ties and plateaus resolve as in
    higra. Every pixel belongs to a basin and the watershed line is made of the boundary
    elements *between* pixels, i.e. the faces of the double-size (Khalimsky) grid of the BSDS
    ``ucm2`` layout. The release [1]_ instead labels
    8-connected basins with one-pixel ridges, which it places on the vertices of the same grid
    (``contours2ucm.m``); the two differ by where the line sits inside a one-pixel ridge, not in
    which regions they separate. A face's strength is ``max`` of the two pixels it separates, in
    the piece's channel. Boundaries are traced between junctions (vertices with 1, 3 or 4
    boundary faces; closed loops start anywhere) and subdivided recursively. Time and memory are
    linear in the number of pixels.

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical Image
           Segmentation", TPAMI 33(5):898-916, 2011. :DOI:`10.1109/TPAMI.2010.161`
    .. [2] J. Cousty, G. Bertrand, L. Najman, M. Couprie, "Watershed Cuts: Minimum Spanning
           Forests and the Drop of Water Principle", TPAMI 31(8):1362-1374, 2009.

    Examples
    --------
    >>> import numpy as np
    >>> pb = np.zeros((4, 6)); pb[:, 3] = 1.0
    >>> labels, pieces = oriented_watershed(pb)
    >>> labels
    array([[0, 0, 0, 0, 1, 1],
           [0, 0, 0, 0, 1, 1],
           [0, 0, 0, 0, 1, 1],
           [0, 0, 0, 0, 1, 1]], dtype=int32)
    >>> pieces.n_pieces, pieces.strengths.tolist()
    (1, [1.0, 1.0, 1.0, 1.0])
    """
    pb = check_map(pb, name="pb", lo=0.0, hi=None)
    if 2 * pb.size >= 2**31:
        raise ValueError(
            f"`pb` of shape {pb.shape} is too large ({pb.size / 1e6:.0f} megapixels; the limit is "
            "about 1000): downscale it or process it in tiles"
        )
    if not (np.isfinite(rel_tol) and rel_tol >= 0 and np.isfinite(abs_tol) and abs_tol >= 0):
        raise ValueError(
            f"`rel_tol` and `abs_tol` must be finite and >= 0, got {rel_tol!r} and {abs_tol!r}"
        )
    if oriented is not None:
        oriented = check_oriented(oriented, pb)
    wh, wv = K._pixel_to_edge_max_kernel(pb)
    labels, _ = _watershed_edges(wh, wv, pb.shape, bool(descent_first))
    if oriented is None:
        pieces = _pieces(labels, pb[None], 1, float(rel_tol), float(abs_tol))
    else:
        pieces = _pieces(labels, oriented, oriented.shape[0], float(rel_tol), float(abs_tol))
    return labels, pieces
