"""Savitzky-Golay "cylindrical parabola" smoothing of oriented signals (gPb release's ``fitparab``).

Each oriented map ``z`` of orientation ``theta`` is replaced by the constant term ``a`` of the
least-squares fit ``z ~ a + b t + c t^2`` over an elliptical window, where ``t`` is the signed
distance across the edge: ``t = dr sin(theta) - dc cos(theta)``, ``s = dr cos(theta) +
dc sin(theta)`` along it, window ``t^2 / ra^2 + s^2 / rb^2 <= 1`` with ``ra = r``, ``rb = r / 4``
(both at least 1.5). In the interior this fit is a fixed linear filter (the first row of
``M^-1 [1, t, t^2]``, M the moment matrix of the window), applied here with OpenCV.

Border handling differs from the release: the release refits with only the in-image pixels of
the window; here the map is mirror-extended (``cv2.BORDER_REFLECT``, numpy ``'symmetric'``) and
the interior filter is used everywhere. The two agree except within ``r`` pixels of the border.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from numpy.typing import NDArray

from bottomup._threads import thread_map

__all__ = ["savgol_kernel", "parabola_smooth"]


@functools.lru_cache(maxsize=128)
def savgol_kernel(radius: float, theta: float) -> NDArray[np.float64]:
    """Linear filter giving the constant term of the oriented parabola fit.

    Parameters
    ----------
    radius : float
        Window radius across the edge (``ra``); ``rb = radius / 4`` along it.
    theta : float
        Edge orientation in (row, col) as in :mod:`bottomup.cues.gradients`.

    Returns
    -------
    kernel : (2 wr + 1, 2 wr + 1) ndarray of float64
        ``wr = floor(max(ra, rb))``; sums to 1; correlation and convolution agree (the kernel is
        point-symmetric).

    Examples
    --------
    >>> k = savgol_kernel(3, 0.0)
    >>> bool(abs(k.sum() - 1.0) < 1e-12)
    True
    """
    ra = max(float(radius), 1.5)
    rb = max(float(radius) / 4.0, 1.5)
    wr = int(np.floor(max(ra, rb)))
    dr, dc = np.mgrid[-wr : wr + 1, -wr : wr + 1].astype(np.float64)
    t = dr * np.sin(theta) - dc * np.cos(theta)
    s = dr * np.cos(theta) + dc * np.sin(theta)
    inside = (t * t) / (ra * ra) + (s * s) / (rb * rb) <= 1.0
    tt = t[inside]
    basis = np.stack([np.ones_like(tt), tt, tt * tt])  # (3, P)
    moments = basis @ basis.T
    coef = np.linalg.solve(moments, np.array([1.0, 0.0, 0.0]))  # first row of M^-1 (symmetric)
    k = np.zeros_like(t)
    k[inside] = coef @ basis
    k.setflags(write=False)
    return k


def parabola_smooth(stack: NDArray[np.floating], radius: float) -> NDArray[np.float32]:
    """Apply the oriented parabola fit to each orientation of an oriented stack.

    Parameters
    ----------
    stack : (O, H, W) ndarray of float
        Oriented signal; channel k has orientation ``k pi / O``.
    radius : float
        Fit radius across the edge (the cue's disc radius in the release).

    Returns
    -------
    smoothed : (O, H, W) ndarray of float32

    References
    ----------
    .. [1] A. Savitzky, M. Golay, "Smoothing and Differentiation of Data by Simplified Least
           Squares Procedures", Analytical Chemistry 36(8), 1964.
    .. [2] P. Arbelaez et al., "Contour Detection and Hierarchical Image Segmentation",
           TPAMI 33(5), 2011. :DOI:`10.1109/TPAMI.2010.161`

    Examples
    --------
    >>> z = np.ones((8, 6, 7))
    >>> bool(np.allclose(parabola_smooth(z, 3), 1.0, atol=1e-5))
    True
    """
    n_orient = stack.shape[0]
    out = np.empty(stack.shape, dtype=np.float32)

    def one(k):
        kern = np.asarray(savgol_kernel(float(radius), k * np.pi / n_orient), dtype=np.float32)
        src = np.ascontiguousarray(stack[k], dtype=np.float32)
        out[k] = cv2.filter2D(src, -1, kern, borderType=cv2.BORDER_REFLECT)

    thread_map(one, n_orient)  # one orientation per task (see bottomup._threads)
    return out
