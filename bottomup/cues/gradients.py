"""Oriented half-disc histogram gradients (the Pb/mPb local cues; Martin et al. 2004).

For a label image (quantised L, a, b, or texton ids) and a radius r, the disc of radius r at each
pixel is cut into ``2 * n_orient`` slices of angle ``pi / n_orient``; the angle of an offset
``(dr, dc)`` is ``atan2(dc + 1/2, dr + 1/2)`` (the dividing diameters pass through the pixel corner
``(r - 1/2, c - 1/2)``, as in the release). Each slice histogram is (optionally) smoothed over bins
with a Gaussian and L1-normalised; orientation k compares slices ``k .. k+O-1`` with the other
half by the chi-squared distance. Orientation ``theta_k = k pi / O`` is the direction of the edge
in (row, col): ``theta = 0`` splits the disc into left and right halves, so it detects a
vertical edge (the convention of the gPb release's ``lib_image``).

The histograms are exact (no rectangular approximation): each row is swept once, updating the
slice histograms with the O(r) pixels that enter and leave each slice, so the cost is
O(H W (r + n_bins O)) instead of O(H W r^2). Three equivalent kernels (tested against each
other and a naive loop) are chosen by measured cost: bin smoothing applied per update (small
radii), raw counts smoothed at each evaluated pixel from the bins present (larger radii), and a
sparse-bin kernel for unsmoothed texton histograms. For large radii the gradient can be
evaluated every ``step`` pixels (exact there, bilinear in between).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bottomup.cues._kernels import (
    _hist_gradient_kernel,
    _hist_gradient_smooth_kernel,
    _hist_gradient_sparse_kernel,
)

__all__ = [
    "disc_slices",
    "bin_smoothing_kernel",
    "hist_gradient",
    "local_cues",
    "CUE_NAMES",
    "OrientedCues",
]

#: Cue order of the gPb release (``multiscalePb.m``): brightness, colour a, colour b, texture at 3 radii each.
CUE_NAMES = ("L3", "L5", "L10", "a5", "a10", "a20", "b5", "b10", "b20", "T5", "T10", "T20")


@functools.lru_cache(maxsize=64)
def disc_slices(radius: int, n_orient: int = 8) -> tuple:
    """Offsets of the disc of ``radius`` and the slice of each offset.

    Parameters
    ----------
    radius : int
        Disc radius in pixels; offsets with ``dr^2 + dc^2 <= radius^2``.
    n_orient : int
        Number of orientations; there are ``2 * n_orient`` slices.

    Returns
    -------
    dr, dc, slice : (P,) ndarrays of int64
        Row offset, column offset and slice index in ``0 .. 2 n_orient - 1``, sorted by
        (dr, dc).

    Examples
    --------
    >>> dr, dc, s = disc_slices(1, 8)
    >>> len(dr)
    5
    """
    r = int(radius)
    dr, dc = np.mgrid[-r : r + 1, -r : r + 1]
    inside = dr**2 + dc**2 <= r * r
    dr, dc = dr[inside], dc[inside]
    phi = np.mod(np.arctan2(dc + 0.5, dr + 0.5), 2 * np.pi)
    n_sl = 2 * n_orient
    sl = np.minimum(np.floor(phi / (np.pi / n_orient)).astype(np.int64), n_sl - 1)
    out = tuple(np.ascontiguousarray(a, dtype=np.int64) for a in (dr, dc, sl))
    for a in out:
        a.setflags(write=False)
    return out


@functools.lru_cache(maxsize=64)
def _moves(radius: int, n_orient: int) -> tuple:
    """Offsets entering (relative to the new centre) / leaving (old centre) on a +1 column move."""
    dr, dc, sl = disc_slices(radius, n_orient)
    member = {(int(a), int(b)): int(s) for a, b, s in zip(dr, dc, sl, strict=True)}
    ent, lv = [], []
    for (a, b), s in member.items():
        if member.get((a, b + 1)) != s:  # not in the same slice of the old centre
            ent.append((a, b, s))
        if member.get((a, b - 1)) != s:  # not in the same slice of the new centre
            lv.append((a, b, s))
    ent.sort()
    lv.sort()
    e = np.array(ent, dtype=np.int64).reshape(-1, 3)
    v = np.array(lv, dtype=np.int64).reshape(-1, 3)
    return tuple(
        np.ascontiguousarray(x) for x in (e[:, 0], e[:, 1], e[:, 2], v[:, 0], v[:, 1], v[:, 2])
    )


@functools.lru_cache(maxsize=16)
def bin_smoothing_kernel(sigma: float) -> NDArray[np.float64]:
    """1-D Gaussian over histogram bins, support ``ceil(3 sigma)``, unit L1 (``[1.0]`` if 0).

    Parameters
    ----------
    sigma : float
        Standard deviation in bins (2.5 for L, 1.25 for a and b in the release).

    Returns
    -------
    kernel : (2 ceil(3 sigma) + 1,) ndarray of float64

    Examples
    --------
    >>> bin_smoothing_kernel(2.5).shape
    (17,)
    """
    if sigma <= 0:
        g = np.ones(1)
        g.setflags(write=False)
        return g
    half = int(np.ceil(3 * sigma))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g = g / g.sum()
    g.setflags(write=False)
    return g


def hist_gradient(
    labels: NDArray[np.integer],
    radius: int,
    *,
    n_bins: int | None = None,
    n_orient: int = 8,
    bin_sigma: float = 0.0,
    step: int = 1,
    out: NDArray[np.float32] | None = None,
    _kernel: str | None = None,
) -> NDArray[np.float32]:
    """Oriented half-disc chi-squared gradient of a label image.

    Parameters
    ----------
    labels : (H, W) ndarray of int
        Bin index of each pixel, in ``0 .. n_bins - 1``.
    radius : int
        Disc radius in pixels (>= 1).
    n_bins : int, optional
        Number of bins; default ``labels.max() + 1``.
    n_orient : int
        Number of orientations O; ``theta[k] = k pi / O``.
    bin_sigma : float
        Gaussian smoothing of each slice histogram over bins, in bins (0 = none).
    step : int
        Evaluate exactly at rows and columns that are multiples of ``step`` (histograms of the
        full-resolution labels) and interpolate bilinearly in between. 1 = every pixel. A speed
        option for large radii, whose gradients vary slowly.
    out : (O, H, W) ndarray of float32, optional
        C-contiguous array to write the result into (:func:`local_cues` fills its stack this
        way instead of copying a dozen gradients into it).

    Returns
    -------
    grad : (O, H, W) ndarray of float32
        ``0.5 * sum_i (g_i - h_i)^2 / (g_i + h_i)`` between the two half-disc histograms, each
        the sum of O L1-normalised slice histograms (so values lie in [0, O]); ``out`` when
        given.

    Raises
    ------
    ValueError
        If ``labels`` is not 2-D, has negative values or values >= ``n_bins``, or ``radius < 1``.

    Notes
    -----
    The image is mirror-padded (numpy ``'symmetric'``) by ``radius``, which gives the same
    values as the release's 30-pixel padding. Cost O(H W (r + n_bins O)).

    References
    ----------
    .. [1] D. Martin, C. Fowlkes, J. Malik, "Learning to Detect Natural Image Boundaries Using
           Local Brightness, Color, and Texture Cues", TPAMI 26(5), 2004.
    .. [2] P. Arbelaez et al., "Contour Detection and Hierarchical Image Segmentation",
           TPAMI 33(5), 2011. :DOI:`10.1109/TPAMI.2010.161`

    Examples
    --------
    >>> lab = np.zeros((9, 9), dtype=np.int32); lab[:, 5:] = 1
    >>> g = hist_gradient(lab, 3, n_bins=2)
    >>> int(np.argmax(g[:, 4, 5]))
    0
    """
    lab = np.asarray(labels)
    if lab.ndim != 2 or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(
            f"`labels` must be a 2-D integer array, got shape {lab.shape} and dtype {lab.dtype}"
        )
    if int(radius) < 1:
        raise ValueError(f"`radius` must be >= 1, got {radius}")
    if lab.size and lab.min() < 0:
        raise ValueError("`labels` must be non-negative bin indices")
    nb = int(lab.max()) + 1 if n_bins is None else int(n_bins)
    if lab.size and lab.max() >= nb:
        raise ValueError(f"`labels` has values up to {lab.max()} but `n_bins` is {nb}")
    r = int(radius)
    h, w = lab.shape
    if out is not None and (
        not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != (n_orient, h, w)
        or not out.flags.c_contiguous
    ):
        raise ValueError(
            f"`out` must be a C-contiguous float32 array of shape {(n_orient, h, w)}, got "
            f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}"
        )
    padded = np.ascontiguousarray(np.pad(lab.astype(np.int32), r, mode="symmetric"))
    dr, dc, sl = disc_slices(r, n_orient)
    er, ec, es, lr, lc, ls = _moves(r, n_orient)
    gk = np.array(bin_smoothing_kernel(float(bin_sigma)), dtype=np.float64)
    step = max(1, int(step))
    hs, ws = (h + step - 1) // step, (w + step - 1) // step
    if step == 1 and out is not None:
        small = out
    else:
        small = np.empty((n_orient, hs, ws), dtype=np.float32)
    # Three equivalent kernels: per-update smoothing (reference), raw counts smoothed at each
    # evaluated pixel from the bins present (faster for smoothed histograms except tiny discs),
    # and a sparse-bin kernel for unsmoothed histograms (textons).
    moves = len(er) + len(lr)
    use_pixel = len(gk) > 1 and (moves > 60 or len(gk) <= 9)  # measured on BSDS images
    use_sparse = len(gk) == 1
    if _kernel is not None:  # testing hook: force one of the equivalent kernels
        use_pixel, use_sparse = _kernel == "pixel", _kernel == "sparse"
    if use_sparse:
        _hist_gradient_sparse_kernel(
            padded, nb, n_orient, r, h, w, step, dr, dc, sl, er, ec, es, lr, lc, ls, small
        )
    else:
        kernel = _hist_gradient_smooth_kernel if use_pixel else _hist_gradient_kernel
        kernel(padded, nb, n_orient, r, h, w, step, dr, dc, sl, er, ec, es, lr, lc, ls, gk, small)
    if step == 1:
        return small
    return _upsample(small, step, h, w, out)


def _upsample(small, step, h, w, out=None):
    """Bilinear interpolation from samples at multiples of ``step`` to the full grid."""
    import cv2

    m = np.array([[1.0 / step, 0.0, 0.0], [0.0, 1.0 / step, 0.0]])
    if out is None:
        out = np.empty((small.shape[0], h, w), dtype=np.float32)
    for k in range(small.shape[0]):
        cv2.warpAffine(
            small[k],
            m,
            (w, h),
            dst=out[k],
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return out


@dataclass(frozen=True)
class OrientedCues:
    """The local cues of mPb: one oriented gradient stack per cue and scale.

    Attributes
    ----------
    stack : (C, O, H, W) ndarray of float32
        Half-disc chi-squared gradients, in the order of ``names``.
    names : tuple of str
        Cue names, e.g. ``("L3", "L5", ..., "T20")`` (letter = channel, number = radius).
    radii : tuple of int
        Disc radius of each cue (also the Savitzky-Golay radius).
    """

    stack: NDArray[np.float32]
    names: tuple
    radii: tuple

    def __post_init__(self):
        if self.stack.ndim != 4 or self.stack.shape[0] != len(self.names):
            raise ValueError(
                f"`stack` must be (C, O, H, W) with C = len(names) = {len(self.names)}, "
                f"got shape {self.stack.shape}"
            )
        if len(self.radii) != len(self.names):
            raise ValueError("`radii` must have one radius per cue name")


def local_cues(
    image: NDArray[np.float64],
    *,
    radii_l: tuple = (3, 5, 10),
    radii_ab: tuple = (5, 10, 20),
    radii_t: tuple = (5, 10, 20),
    n_textons: int = 64,
    n_orient: int = 8,
    steps: dict | None = None,
    texton_sigmas: tuple = (2.0, 2.0 * np.sqrt(2.0)),
    texton_coarse_to_fine: bool = False,
    rng=None,
) -> OrientedCues:
    """Brightness, colour and texture half-disc gradients at three scales (mPb cues).

    Parameters
    ----------
    image : (H, W, 3) ndarray of float64
        RGB in [0, 1] (validated by the caller, see :func:`bottomup.validate.check_image`).
    radii_l, radii_ab, radii_t : tuple of int
        Disc radii for L, for a and b, and for textons (release: 3/5/10, 5/10/20, 5/10/20).
    n_textons : int
        Number of textons (64 in the release).
    n_orient : int
        Number of orientations (8).
    steps : dict, optional
        ``{radius: step}``: cues of that radius are evaluated every ``step`` rows and columns
        and interpolated (see :func:`hist_gradient`). None = every pixel.
    texton_sigmas : tuple of float
        Scales of the texton filter bank (the release's 2 and 2 sqrt 2 by default).
    texton_coarse_to_fine : bool
        Fit the texton k-means coarse to fine as the release (:func:`bottomup.cues.textons.kmeans`).
    rng : {numpy.random.Generator, int}, optional
        Pseudo-random number generator for the texton k-means. By default, a PCG64 generator is
        used (see :func:`numpy.random.default_rng`). If `rng` is an int, it is used to seed the
        generator.

    Returns
    -------
    cues : OrientedCues
        ``stack`` (C, O, H, W) with the cues in the order L, a, b, T, each by increasing radius.

    Notes
    -----
    Histogram smoothing over bins: sigma 2.5 bins for L, 1.25 for a and b, none for textons;
    25 bins for L, a and b (as the gPb release). For a gray image (all channels equal) the a and b
    cues are zero, as their weights are zero in the release.
    """
    from bottomup.cues.color import is_gray, quantize, rgb_to_gray, rgb_to_lab
    from bottomup.cues.textons import textons

    h, w = image.shape[:2]
    lab = rgb_to_lab(image)
    gray = is_gray(image)
    tex = textons(rgb_to_gray(image), n_textons, sigmas=texton_sigmas,
                  coarse_to_fine=texton_coarse_to_fine, rng=rng)
    channels = [
        ("L", quantize(lab[..., 0]), 25, 2.5, radii_l),
        ("a", quantize(lab[..., 1]), 25, 1.25, radii_ab),
        ("b", quantize(lab[..., 2]), 25, 1.25, radii_ab),
        ("T", tex, int(tex.max()) + 1, 0.0, radii_t),
    ]
    names, radii = [], []
    stack = np.empty((sum(len(c[4]) for c in channels), n_orient, h, w), dtype=np.float32)
    for letter, labels, nb, sig, rads in channels:
        for r in rads:
            i = len(names)
            names.append(f"{letter}{r}")
            radii.append(int(r))
            if gray and letter in "ab":
                stack[i] = 0.0
            else:
                st = 1 if steps is None else int(steps.get(int(r), 1))
                hist_gradient(labels, r, n_bins=nb, n_orient=n_orient, bin_sigma=sig, step=st,
                              out=stack[i])
    return OrientedCues(stack=stack, names=tuple(names), radii=tuple(radii))
