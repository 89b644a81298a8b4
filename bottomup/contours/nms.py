"""Oriented non-maximum suppression (lib_image ``nonmax_oriented_2D`` of the gPb release)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bottomup.contours._kernels import _nms_kernel
from bottomup.validate import check_map, check_same_shape

__all__ = ["best_orientation", "oriented_nms"]


def oriented_nms(
    pb: NDArray[np.floating], theta: NDArray[np.floating], *, tolerance: float = np.pi / 8
) -> NDArray[np.float64]:
    """Keep the pixels that are strict local maxima across their edge orientation.

    The two neighbours along the normal ``theta + pi / 2`` are interpolated linearly from the
    3x3 neighbourhood; each neighbour's value is first multiplied by
    ``cos(max(0, dtheta - tolerance))``, ``dtheta`` its orientation difference to the centre
    folded into [0, pi/2]. Border pixels are set to 0 (as the gPb release's ``nonmax_oriented_2D``).

    Parameters
    ----------
    pb : (H, W) ndarray of float
        Non-negative edge strength.
    theta : (H, W) ndarray of float
        Edge orientation in [0, pi) (``0`` = vertical edge, the convention of
        :mod:`bottomup.cues.gradients`).
    tolerance : float
        Orientation tolerance (pi / 8 for gPb).

    Returns
    -------
    thin : (H, W) ndarray of float64
        ``pb`` where it is a strict maximum, else 0.

    References
    ----------
    .. [1] J. Canny, "A Computational Approach to Edge Detection", TPAMI 8(6), 1986.
    .. [2] P. Arbelaez et al., "Contour Detection and Hierarchical Image Segmentation",
           TPAMI 33(5), 2011. :DOI:`10.1109/TPAMI.2010.161`

    Examples
    --------
    >>> pb = np.zeros((5, 5)); pb[:, 1] = 0.5; pb[:, 2] = 1.0; pb[:, 3] = 0.5
    >>> oriented_nms(pb, np.zeros((5, 5)))[2].tolist()
    [0.0, 0.0, 1.0, 0.0, 0.0]
    """
    v = check_map(pb, name="pb", lo=0.0, hi=None)
    t = check_map(theta, name="theta", lo=None, hi=None)
    check_same_shape(v, t, "pb", "theta")
    out = np.empty_like(v)
    _nms_kernel(v, np.mod(t, np.pi), float(tolerance), out)
    return out


def best_orientation(oriented: NDArray[np.floating]) -> NDArray[np.float64]:
    """Orientation of the strongest channel of an oriented stack, ``argmax_o * pi / O``.

    Parameters
    ----------
    oriented : (O, H, W) ndarray
        Channel ``o`` holds the strength of edges of orientation ``o pi / O``.

    Returns
    -------
    theta : (H, W) ndarray of float64
        In [0, pi), the ``theta`` that :func:`oriented_nms` takes (ties: the lowest channel).

    Examples
    --------
    >>> bool(best_orientation(np.array([[[0.1]], [[0.2]], [[0.0]], [[0.2]]]))[0, 0] == np.pi / 4)
    True
    """
    oriented = np.asarray(oriented)
    return np.argmax(oriented, axis=0) * (np.pi / oriented.shape[0])
