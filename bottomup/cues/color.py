"""Colour conversion and quantisation as the released gPb code does them.

The BSR release (Arbelaez et al. 2011) converts RGB in [0, 1] to CIE Lab through a gamma of 2.5
(not the sRGB curve), rescales L, a and b to [0, 1] with fixed ranges, and quantises each channel
into 25 bins before building half-disc histograms.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["is_gray", "rgb_to_gray", "rgb_to_lab", "quantize"]

# sRGB / D65 primaries, as the gPb release.
_RGB_TO_XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_WHITE = np.array([0.950456, 1.0, 1.088754])
_THRESH = 0.008856
_GAMMA = 2.5


def is_gray(image: NDArray) -> bool:
    """True when the three channels of an RGB image are equal everywhere (a gray image).

    gPb weighs such an image with its gray weights (the a and b cues are zero); every stage that
    treats gray images apart asks this function.

    Parameters
    ----------
    image : (H, W, 3) ndarray

    Examples
    --------
    >>> img = np.full((2, 2, 3), 0.5)
    >>> is_gray(img)
    True
    >>> img[0, 0, 2] = 0.6
    >>> is_gray(img)
    False
    """
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))


def rgb_to_gray(image: NDArray[np.float64]) -> NDArray[np.float64]:
    """Gray level used for textons: ``0.29894 R + 0.58704 G + 0.11402 B`` (before gamma).

    Parameters
    ----------
    image : (H, W, 3) ndarray of float64
        RGB in [0, 1].

    Returns
    -------
    gray : (H, W) ndarray of float64
    """
    return image[..., 0] * 0.29894 + image[..., 1] * 0.58704 + image[..., 2] * 0.11402


def rgb_to_lab(image: NDArray[np.float64]) -> NDArray[np.float64]:
    """Convert RGB to the release's normalised Lab, each channel in [0, 1].

    Gamma 2.5 on R, G, B; sRGB/D65 matrix to XYZ; CIE Lab with white (0.950456, 1, 1.088754);
    then ``L / 100``, ``(a + 73) / 168``, ``(b + 73) / 168``, clipped to [0, 1].

    Parameters
    ----------
    image : (H, W, 3) ndarray of float64
        RGB in [0, 1].

    Returns
    -------
    lab : (H, W, 3) ndarray of float64
        Normalised L, a, b in [0, 1].

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical
           Image Segmentation", TPAMI 33(5), 2011. :DOI:`10.1109/TPAMI.2010.161`

    Examples
    --------
    >>> lab = rgb_to_lab(np.ones((1, 1, 3)))
    >>> bool(abs(lab[0, 0, 0] - 1.0) < 1e-3)
    True
    """
    rgb = np.power(image, _GAMMA)
    xyz = rgb @ _RGB_TO_XYZ.T
    xyz = xyz / _WHITE
    big = xyz > _THRESH
    f = np.where(big, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    y = xyz[..., 1]
    lum = np.where(big[..., 1], 116.0 * np.cbrt(y) - 16.0, 903.3 * y)
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    out = np.stack([lum / 100.0, (a + 73.0) / 168.0, (b + 73.0) / 168.0], axis=-1)
    return np.clip(out, 0.0, 1.0)


def quantize(values: NDArray[np.float64], n_bins: int = 25) -> NDArray[np.int32]:
    """Quantise values in [0, 1] into ``n_bins`` bins: ``floor(n_bins * v)``, 1.0 -> last bin.

    Parameters
    ----------
    values : ndarray of float64
        Values in [0, 1].
    n_bins : int
        Number of bins (25 in the release).

    Returns
    -------
    bins : ndarray of int32
        Same shape as ``values``, in ``0 .. n_bins - 1``.

    Examples
    --------
    >>> quantize(np.array([0.0, 0.5, 1.0])).tolist()
    [0, 12, 24]
    """
    q = np.floor(values * n_bins).astype(np.int32)
    return np.clip(q, 0, n_bins - 1)
