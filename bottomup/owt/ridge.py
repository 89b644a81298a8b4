"""Watershed input and arc strengths that follow the ridge of a thick contour map (``owt="ridge"``)."""

from __future__ import annotations

import numpy as np

from bottomup.contours.nms import best_orientation, oriented_nms
from bottomup.contours.source import Ridge

__all__ = ["ridge_owt_inputs"]


_DEFAULT_RIDGE = Ridge()


def ridge_owt_inputs(pb, oriented, ridge: Ridge = _DEFAULT_RIDGE):
    """Watershed input and arc strengths that follow the ridge of a contour map.

    The watershed runs on ``max(nms(p), floor * p)`` where ``p`` is ``pb`` (Gaussian-smoothed by
    ``ridge.smooth`` pixels when > 0): the oriented non-maximum suppression
    (:func:`bottomup.contours.nms.oriented_nms`) puts the watershed lines on the ridges of thick
    responses, and the ``floor * p`` term keeps the map free of plateaus between them. Each arc's
    strength is then read on the ridge only, so arcs that wander across a thick response score
    low: from ``oriented`` at the arc's orientation, or, with ``ridge.isotropic``, from the
    unsmoothed ``pb`` itself in every orientation; raised to ``ridge.power``. Isotropic strengths
    suit detectors whose oriented stack is ``pb`` times a coarse orientation posterior (the
    learned contours); gPb's oriented gradients are real measurements.

    Parameters
    ----------
    pb : (H, W) ndarray
    oriented : (O, H, W) ndarray or None
        ``None`` uses ``pb`` for every orientation (8 of them).
    ridge : Ridge
        ``floor``, ``smooth``, ``isotropic`` and ``power`` (:class:`bottomup.contours.Ridge`).

    Returns
    -------
    ws : (H, W) ndarray of float64
        Input of :func:`bottomup.owt.oriented_watershed`.
    strengths : (O, H, W) ndarray of float64
        Its oriented strengths.

    Examples
    --------
    >>> pb = np.zeros((9, 9)); pb[:, 3:6] = [0.5, 1.0, 0.5]
    >>> ws, strengths = ridge_owt_inputs(pb, None)
    >>> strengths.max(axis=0)[4].tolist()  # the ridge column only (NMS leaves the border rows)
    [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    """
    if not isinstance(ridge, Ridge):
        raise TypeError(f"`ridge` must be a bottomup.contours.Ridge, got {type(ridge).__name__}")
    pb = np.asarray(pb, dtype=np.float64)
    if oriented is None:
        oriented = pb[None].repeat(8, axis=0)
    oriented = np.asarray(oriented, dtype=np.float64)
    p = pb
    if ridge.smooth > 0:
        from scipy.ndimage import gaussian_filter

        p = gaussian_filter(pb, ridge.smooth)
    nms = oriented_nms(p, best_orientation(oriented), tolerance=np.pi / 8)
    on_ridge = nms > 0
    if ridge.isotropic:
        strengths = np.broadcast_to((pb * on_ridge)[None], oriented.shape).copy()
    else:
        strengths = oriented * on_ridge
    if ridge.power != 1.0:
        strengths **= ridge.power
    return np.maximum(nms, ridge.floor * p), strengths
