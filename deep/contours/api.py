"""The learned contour detector as a plain function, for ``bottomup.segment(contours="learned")``."""

from __future__ import annotations

import functools

import numpy as np

from deep.contours.net import load_contour_net, predict_contours

__all__ = ["learned_contours"]


@functools.lru_cache(maxsize=2)
def _net(device: str):
    return load_contour_net(device=device)


#: Test-time scales of :func:`learned_contours` (see its ``scales``).
DEFAULT_SCALES = (0.5, 1.0, 1.5, 2.0)


def learned_contours(image, *, scales=DEFAULT_SCALES, flip: bool = False,
                     ridge_strengths: bool = False, device: str = "cpu"):
    """Boundary probability and oriented stack of the shipped contour network.

    Parameters
    ----------
    image : (H, W[, C]) array_like
        Any image the ``bottomup`` image contract accepts.
    scales : sequence of float
        Test-time scales averaged (RCF's multi-scale testing). Learned UCM on BSDS val
        (``bottomup.segment(image, contours="learned")``, 100 images): ODS .766 / Covering .634
        with ``(0.5, 1.0, 1.5, 2.0)`` (0.84 s per 481x321 image on one CPU core), .762 / .635 with
        ``(0.5, 1.0, 1.5)`` (0.38 s); an earlier arc-strength rule measured ``(1.0,)`` .04 ODS
        below three scales.
    flip : bool
        Average each scale with its mirror image as well (twice the time; +.001 ODS on BSDS val
        with four scales, so off by default).
    ridge_strengths : bool
        Keep the oriented strengths only on the ridge of ``pb`` (its oriented non-maximum
        suppression, :func:`bottomup.contours.nms.oriented_nms`): the watershed still runs on the
        smooth ``pb``, but each arc is then scored by the ridge values it follows, so arcs that
        wander across thick, blurry responses score low (+0.017 UCM ODS on 20 val images).
    device : str
        Torch device.

    Returns
    -------
    pb : (H, W) ndarray of float64 in [0, 1]
        For the watershed.
    oriented : (8, H, W) ndarray of float64 in [0, 1]
        Boundary strength per orientation (``theta[o] = o * pi / 8``), for the arc strengths.
    """
    pb, oriented = predict_contours(_net(device), image, scales=tuple(scales), flip=flip)
    if ridge_strengths:
        from bottomup.contours.nms import best_orientation, oriented_nms

        keep = oriented_nms(pb, best_orientation(oriented), tolerance=np.pi / 8) > 0
        oriented = oriented * keep
    return np.asarray(pb), np.asarray(oriented)
