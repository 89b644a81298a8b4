"""Leaf partitions other than the watershed: cuts of a hierarchy, SLIC, Felzenszwalb.

Every function returns the partition contract: ``(H, W)`` int32, dense labels ``0..K-1``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bottomup.hierarchy import Hierarchy
from bottomup.superpixels.felzenszwalb import felzenszwalb
from bottomup.superpixels.slic import dense_labels, slic

__all__ = ["dense_labels", "felzenszwalb", "slic", "superpixels"]


def superpixels(
    hierarchy: Hierarchy, n_segments: int | None = 100, *, threshold: float | None = None
) -> NDArray[np.int32]:
    """Superpixels as a cut of a hierarchy.

    Parameters
    ----------
    hierarchy : Hierarchy
        For example ``bottomup.hierarchy.ucm(pb)``.
    n_segments : int, optional
        Number of superpixels: the last merges are undone until that many regions remain
        (capped at the number of leaves). Ignored when ``threshold`` is given.
    threshold : float, optional
        Cut at this level instead (regions = components of ``ucm2 <= threshold``).

    Returns
    -------
    labels : (H, W) ndarray of int32
        Dense labels ``0..K-1`` in raster order.

    Examples
    --------
    >>> import numpy as np
    >>> from bottomup.hierarchy import ucm
    >>> pb = np.zeros((4, 9)); pb[:, 2] = 0.3; pb[:, 5] = 0.8
    >>> superpixels(ucm(pb), n_segments=2)[0].tolist()
    [0, 0, 0, 0, 0, 0, 1, 1, 1]
    """
    if not isinstance(hierarchy, Hierarchy):
        raise TypeError(
            f"`hierarchy` must be a bottomup.hierarchy.Hierarchy, got {type(hierarchy).__name__}"
        )
    if threshold is not None:
        return hierarchy.cut(threshold=threshold)
    if n_segments is None:
        raise ValueError("pass `n_segments` or `threshold`")
    if (
        not isinstance(n_segments, (int, np.integer))
        or isinstance(n_segments, bool)
        or n_segments < 1
    ):
        raise ValueError(f"`n_segments` must be a positive integer, got {n_segments!r}")
    return hierarchy.cut(n_regions=int(n_segments))


class _CallableModule(__import__("types").ModuleType):
    """Lets ``bottomup.superpixels(hierarchy, n_segments=...)`` call :func:`superpixels` while
    ``bottomup.superpixels.slic`` and friends stay reachable as module attributes."""

    def __call__(self, hierarchy, n_segments=100, *, threshold=None):
        return superpixels(hierarchy, n_segments, threshold=threshold)


__import__("sys").modules[__name__].__class__ = _CallableModule
