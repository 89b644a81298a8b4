"""Multiscale Pb (mPb): weighted sum of the smoothed local cues (Arbelaez et al. 2011; ``multiscalePb.m``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bottomup.contours.nms import oriented_nms
from bottomup.cues.gradients import CUE_NAMES, OrientedCues
from bottomup.cues.smoothing import parabola_smooth

__all__ = [
    "MPB_WEIGHTS_COLOR",
    "MPB_WEIGHTS_GRAY",
    "GPB_WEIGHTS_COLOR",
    "GPB_WEIGHTS_GRAY",
    "smoothed_sum",
    "mpb",
    "mpb_nmax",
]

#: Release weights of mPb in the order of ``CUE_NAMES`` (L3 .. T20), colour and gray images.
MPB_WEIGHTS_COLOR = (0.0146, 0.0145, 0.0163, 0.0210, 0.0243, 0.0287, 0.0166, 0.0185, 0.0204,
                     0.0101, 0.0111, 0.0141)  # fmt: skip
MPB_WEIGHTS_GRAY = (0.0245, 0.0220, 0.0233, 0, 0, 0, 0, 0, 0, 0.0208, 0.0210, 0.0229)
#: Release weights of gPb: the 12 cues then sPb (last), colour and gray images (``globalPb.m``).
GPB_WEIGHTS_COLOR = (0, 0, 0.0039, 0.0050, 0.0058, 0.0069, 0.0040, 0.0044, 0.0049, 0.0024,
                     0.0027, 0.0170, 0.0074)  # fmt: skip
GPB_WEIGHTS_GRAY = (0, 0, 0.0054, 0, 0, 0, 0, 0, 0, 0.0048, 0.0049, 0.0264, 0.0090)


def smoothed_sum(cues: OrientedCues, weights) -> NDArray[np.float32]:
    """``sum_c w_c * parabola_smooth(cue_c, r_c)`` over the cues.

    The parabola fit is linear, so cues that share a radius are summed first and fitted once
    (4 fits per orientation for the release's radii instead of 12).

    Parameters
    ----------
    cues : OrientedCues
        Oriented cue stack (C, O, H, W).
    weights : sequence of float
        One weight per cue (``len(cues.names)``).

    Returns
    -------
    total : (O, H, W) ndarray of float32
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(cues.names),):
        raise ValueError(f"`weights` must have {len(cues.names)} entries, got {w.shape}")
    total = np.zeros(cues.stack.shape[1:], dtype=np.float32)
    for r in sorted(set(cues.radii)):
        idx = [i for i, ri in enumerate(cues.radii) if ri == r and w[i] != 0]
        if not idx:
            continue
        acc = np.zeros(cues.stack.shape[1:], dtype=np.float32)
        for i in idx:
            acc += np.float32(w[i]) * cues.stack[i]
        total += parabola_smooth(acc, r)
    return total


def mpb(cues: OrientedCues, weights=MPB_WEIGHTS_COLOR) -> NDArray[np.float32]:
    """Oriented multiscale Pb: weighted sum of the parabola-smoothed cues.

    Parameters
    ----------
    cues : OrientedCues
        Cues in the order of ``CUE_NAMES``: L, a, b, T, three radii each by increasing radius
        (other radii than the release's are accepted, e.g. scaled ones on a resized image).
    weights : sequence of float
        12 weights (``MPB_WEIGHTS_COLOR`` or ``MPB_WEIGHTS_GRAY``).

    Returns
    -------
    mpb : (O, H, W) ndarray of float32

    References
    ----------
    .. [1] M. Maire, P. Arbelaez, C. Fowlkes, J. Malik, "Using Contours to Detect and Localize
           Junctions in Natural Images", CVPR 2008.
    """
    r = cues.radii
    increasing = len(r) == 12 and all(r[c] < r[c + 1] < r[c + 2] for c in range(0, 12, 3))
    if tuple(n[0] for n in cues.names) != tuple(n[0] for n in CUE_NAMES) or not increasing:
        raise ValueError(f"`cues` must hold the cues {CUE_NAMES} (any increasing radii per channel), "
                         f"got {cues.names}")
    return smoothed_sum(cues, weights)


def mpb_nmax(mpb_orient: NDArray[np.floating]) -> NDArray[np.float64]:
    """Thinned mPb fed to sPb: max over orientations, clamp at 0, NMS (pi/8), ``clip(1.2 x)``.

    Parameters
    ----------
    mpb_orient : (O, H, W) ndarray of float

    Returns
    -------
    mpb_nmax : (H, W) ndarray of float64
        In [0, 1].
    """
    n_orient = mpb_orient.shape[0]
    k = np.argmax(mpb_orient, axis=0)
    y = np.maximum(np.max(mpb_orient, axis=0).astype(np.float64), 0.0)
    theta = k * (np.pi / n_orient)
    return np.clip(1.2 * oriented_nms(y, theta, tolerance=np.pi / 8), 0.0, 1.0)
