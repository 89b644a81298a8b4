"""SLIC superpixels (scikit-image) in the partition contract.

References
----------
.. [1] R. Achanta, A. Shaji, K. Smith, A. Lucchi, P. Fua, S. Suesstrunk, "SLIC Superpixels
       Compared to State-of-the-art Superpixel Methods", TPAMI 34(11):2274-2282, 2012.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bottomup.validate import check_image

__all__ = ["slic", "dense_labels"]


def dense_labels(labels) -> NDArray[np.int32]:
    """Renumber any integer label image to dense ``0..K-1`` (int32), keeping the label order."""
    labels = np.asarray(labels)
    _, inv = np.unique(labels, return_inverse=True)
    return inv.reshape(labels.shape).astype(np.int32)


def slic(
    image,
    n_segments: int = 100,
    compactness: float = 10.0,
    max_num_iter: int = 10,
    sigma: float = 0,
    spacing=None,
    convert2lab: bool | None = None,
    enforce_connectivity: bool = True,
    min_size_factor: float = 0.5,
    max_size_factor: float = 3,
    slic_zero: bool = False,
    *,
    channel_axis: int | None = -1,
) -> NDArray[np.int32]:
    """SLIC superpixels: :func:`skimage.segmentation.slic` returned as a dense partition.

    Parameters
    ----------
    image : (H, W) or (H, W, C) array_like
        Converted to the image contract first (uint8/uint16/float in [0, 1], gray or RGB(A)).
    n_segments, compactness, max_num_iter, sigma, spacing, convert2lab, enforce_connectivity, \
min_size_factor, max_size_factor, slic_zero
        As in :func:`skimage.segmentation.slic` [1]_ (same names and defaults).
    channel_axis : int or None, optional
        Axis of the channels; None for a grayscale image.

    Returns
    -------
    labels : (H, W) ndarray of int32
        Superpixels, dense labels ``0..K-1`` (skimage starts at 1; ``mask`` is not offered
        because every pixel must be labelled).

    Raises
    ------
    ValueError
        If the image holds NaN/inf or values outside [0, 1], or ``n_segments < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((20, 21, 3)); img[:, 10:] = 1.0
    >>> labels = slic(img, n_segments=4, compactness=1)
    >>> labels.dtype, labels.min(), np.intersect1d(labels[:, :10], labels[:, 10:]).size
    (dtype('int32'), np.int32(0), 0)
    """
    from skimage.segmentation import slic as _slic

    img = check_image(image, name="image", channel_axis=channel_axis)
    if not isinstance(n_segments, (int, np.integer)) or n_segments < 1:
        raise ValueError(f"`n_segments` must be a positive integer, got {n_segments!r}")
    labels = _slic(
        img,
        n_segments=int(n_segments),
        compactness=compactness,
        max_num_iter=max_num_iter,
        sigma=sigma,
        spacing=spacing,
        convert2lab=convert2lab,
        enforce_connectivity=enforce_connectivity,
        min_size_factor=min_size_factor,
        max_size_factor=max_size_factor,
        slic_zero=slic_zero,
        start_label=0,
        channel_axis=-1,
    )
    return dense_labels(labels)
