"""Image pyramid and one hierarchy per scale (MCG's multiscale step, FACTS B.1-B.2).

References
----------
.. [1] J. Pont-Tuset, P. Arbelaez, J. T. Barron, F. Marques, J. Malik, "Multiscale Combinatorial
       Grouping for Image Segmentation and Object Proposal Generation", TPAMI 39(1), 2017.
       :DOI:`10.1109/TPAMI.2016.2537320`
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bottomup._validate import check_image
from bottomup.hierarchy import Hierarchy

__all__ = ["MCG_SCALES", "image_pyramid", "hierarchies_at_scales"]

#: MCG's scales (FACTS B.1): x2, x1, x0.5 of the image side.
MCG_SCALES = (2.0, 1.0, 0.5)

#: Smallest side of a pyramid level (gPb's largest half-disc needs 21 px).
_MIN_SIDE = 24


def image_pyramid(image, scales=MCG_SCALES) -> list[NDArray[np.float64]]:
    """Resize an image to each scale (bicubic; anti-aliased when shrinking).

    Parameters
    ----------
    image : (H, W[, C]) array_like
    scales : sequence of float
        Positive factors applied to both sides.

    Returns
    -------
    levels : list of (round(s H), round(s W), 3) ndarray of float64 in [0, 1]
        A scale whose level would be under 24 px on a side is clamped to 24 px.
    """
    from skimage.transform import resize

    img = check_image(image)
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


def hierarchies_at_scales(image, scales=MCG_SCALES, preset: str = "mcg",
                          owt: str | None = "plain", contours=None, arcs=None) -> list[Hierarchy]:
    """The gPb-owt-ucm hierarchy of each pyramid level (each at its own size).

    ``preset``, ``owt``, ``contours`` and ``arcs`` are those of :func:`bottomup.segment`.
    """
    from bottomup.pipeline import segment

    return [segment(level, preset, owt=owt, contours=contours, multiscale=False, arcs=arcs)
            for level in image_pyramid(image, scales)]
