"""Felzenszwalb-Huttenlocher graph-based superpixels (scikit-image) in the partition contract.

References
----------
.. [1] P. F. Felzenszwalb, D. P. Huttenlocher, "Efficient Graph-Based Image Segmentation",
       IJCV 59(2):167-181, 2004.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bottomup.superpixels.slic import dense_labels
from bottomup.validate import check_image

__all__ = ["felzenszwalb"]


def felzenszwalb(
    image,
    scale: float = 1,
    sigma: float = 0.8,
    min_size: int = 20,
    *,
    channel_axis: int | None = -1,
) -> NDArray[np.int32]:
    """Felzenszwalb superpixels: :func:`skimage.segmentation.felzenszwalb` as a dense partition.

    Parameters
    ----------
    image : (H, W) or (H, W, C) array_like
        Converted to the image contract first (uint8/uint16/float in [0, 1], gray or RGB(A)).
    scale, sigma, min_size
        As in :func:`skimage.segmentation.felzenszwalb` [1]_ (same names and defaults).
    channel_axis : int or None, optional
        Axis of the channels; None for a grayscale image.

    Returns
    -------
    labels : (H, W) ndarray of int32
        Dense labels ``0..K-1``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((20, 21, 3)); img[:, 10:] = 1.0
    >>> labels = felzenszwalb(img, scale=100)
    >>> labels.dtype, labels.min(), np.intersect1d(labels[:, :10], labels[:, 10:]).size
    (dtype('int32'), np.int32(0), 0)
    """
    from skimage.segmentation import felzenszwalb as _fz

    img = check_image(image, name="image", channel_axis=channel_axis)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"`scale` must be a positive number, got {scale!r}")
    labels = _fz(img, scale=scale, sigma=sigma, min_size=int(min_size), channel_axis=-1)
    return dense_labels(labels)
