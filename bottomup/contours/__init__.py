"""Contours: mPb, spectral globalisation (sPb), gPb and oriented non-maximum suppression.

Contour sources (:mod:`bottomup.contours.source`): :class:`GPb`, :class:`ContourSource` (any
detector with its policy), :func:`get_source`; other packages register named sources.

``gpb(image, preset="quality" | "balanced" | "fast" | "medium") -> Contours`` runs the whole
detector: local cues
(:mod:`bottomup.cues`), mPb with the release's weights, thinned mPb, intervening-contour
affinity, normalised-cut eigenvectors by DNCuts, sPb, and gPb as the release's weighted sum.
``Contours.thin()`` gives the thinned boundary map. Note that ``bottomup.contours.gpb`` is the
function; the module is ``sys.modules["bottomup.contours.gpb"]``.

References
----------
.. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical Image
       Segmentation", TPAMI 33(5), 2011. :DOI:`10.1109/TPAMI.2010.161`
"""

from bottomup.contours.gpb import PRESETS, Contours, gpb
from bottomup.contours.mpb import (
    GPB_WEIGHTS_COLOR,
    GPB_WEIGHTS_GRAY,
    MPB_WEIGHTS_COLOR,
    MPB_WEIGHTS_GRAY,
    mpb,
    mpb_nmax,
    smoothed_sum,
)
from bottomup.contours.nms import oriented_nms
from bottomup.contours.source import (
    ContourSource,
    GPb,
    Multiscale,
    Ridge,
    get_source,
    source_names,
)
from bottomup.contours.spectral import (
    band_to_sparse,
    ic_affinity,
    ncut_eigenvectors,
    spb,
    spb_from_eigenvectors,
)

__all__ = [
    "ContourSource",
    "Contours",
    "GPb",
    "Multiscale",
    "Ridge",
    "get_source",
    "source_names",
    "GPB_WEIGHTS_COLOR",
    "GPB_WEIGHTS_GRAY",
    "MPB_WEIGHTS_COLOR",
    "MPB_WEIGHTS_GRAY",
    "PRESETS",
    "band_to_sparse",
    "gpb",
    "ic_affinity",
    "mpb",
    "mpb_nmax",
    "ncut_eigenvectors",
    "oriented_nms",
    "smoothed_sum",
    "spb",
    "spb_from_eigenvectors",
]
