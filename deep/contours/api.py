"""The learned contour detector as a plain function, for ``bottomup.segment(contours="learned")``."""

from __future__ import annotations

import functools

import numpy as np

from deep.contours.net import load_contour_net, predict_contours

__all__ = ["learned_contours"]


@functools.lru_cache(maxsize=2)
def _net(device: str):
    return load_contour_net(device=device)


def learned_contours(image, *, scales=(1.0,), device: str = "cpu"):
    """Boundary probability and oriented stack of the shipped contour network.

    Parameters
    ----------
    image : (H, W[, C]) array_like
        Any image the ``bottomup`` image contract accepts.
    scales : sequence of float
        Test-time scales averaged (``(0.5, 1.0, 1.5)`` is slower and slightly better).
    device : str
        Torch device.

    Returns
    -------
    pb : (H, W) ndarray of float64 in [0, 1]
    oriented : (8, H, W) ndarray of float64 in [0, 1]
    """
    pb, oriented = predict_contours(_net(device), image, scales=tuple(scales))
    return np.asarray(pb), np.asarray(oriented)
