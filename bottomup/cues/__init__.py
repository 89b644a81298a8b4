"""Local image cues for contour detection: Lab, textons, oriented half-disc gradients (mPb cues).

References
----------
.. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical Image
       Segmentation", TPAMI 33(5), 2011. :DOI:`10.1109/TPAMI.2010.161`
"""

from bottomup.cues.color import is_gray, quantize, rgb_to_gray, rgb_to_lab
from bottomup.cues.filters import derivative_filter, filter_responses, texton_filter_bank
from bottomup.cues.gradients import (
    CUE_NAMES,
    OrientedCues,
    bin_smoothing_kernel,
    disc_slices,
    hist_gradient,
    local_cues,
)
from bottomup.cues.smoothing import parabola_smooth, savgol_kernel
from bottomup.cues.textons import kmeans, textons

__all__ = [
    "CUE_NAMES",
    "OrientedCues",
    "bin_smoothing_kernel",
    "derivative_filter",
    "disc_slices",
    "filter_responses",
    "hist_gradient",
    "is_gray",
    "kmeans",
    "local_cues",
    "parabola_smooth",
    "quantize",
    "rgb_to_gray",
    "rgb_to_lab",
    "savgol_kernel",
    "texton_filter_bank",
    "textons",
]
