"""Globalized probability of boundary (gPb): mPb cues plus spectral sPb (Arbelaez et al. 2011)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bottomup._threads import blas_single_thread
from bottomup.contours.mpb import (
    GPB_WEIGHTS_COLOR,
    GPB_WEIGHTS_GRAY,
    MPB_WEIGHTS_COLOR,
    MPB_WEIGHTS_GRAY,
    mpb,
    mpb_nmax,
    smoothed_sum,
)
from bottomup.contours.nms import best_orientation, oriented_nms
from bottomup.contours.spectral import spb
from bottomup.cues.color import is_gray
from bottomup.cues.gradients import local_cues
from bottomup.validate import check_image

__all__ = ["Contours", "PRESETS", "gpb", "check_preset", "preset_image"]

_RELEASE_RADII = dict(radii_l=(3, 5, 10), radii_ab=(5, 10, 20), radii_t=(5, 10, 20))
_TWO_SCALE_BANK = (2.0, 2.0 * np.sqrt(2.0))

#: What each preset runs (all: 8 orientations, the release's weights, parabola fits, exact
#: half-disc histograms at the evaluated pixels, DNCuts eigenvectors as in MCG). Figures and
#: times of each: docs/results.md.
#:
#: ``quality``: the release's radii (L 3/5/10, a, b, T 5/10/20 px), 64 textons of its 34-filter
#: bank fit coarse to fine as the release (``bottomup.cues.textons.kmeans``); cues of radius
#: >= 10 evaluated every 2nd row and column (bilinear in between); DNCuts with 2 levels and 16
#: vectors on the release's radius-5 affinity.
#: ``balanced``: 32 textons from one filter scale (17 filters); radii 3 and 5 evaluated every
#: 2 px, 10 every 4, 20 every 8; a radius-3 affinity and DNCuts with 3 levels and 5 vectors.
#: ``fast``: ``balanced`` on the image resized by 0.75 with the radii scaled alike (L 2/4/8,
#: a, b, T 4/8/15), the outputs resized back.
#: ``medium`` (called ``mcg`` before 0.2): what ``bottomup.mcg``'s shipped gPb rankers were
#: trained on: 32 textons of the 34-filter bank, radius 5 and 10 every 2 px, 20 every 4, DNCuts
#: with 3 levels and 8 vectors on the radius-5 affinity.
PRESETS = {
    "quality": dict(steps={10: 2, 20: 2}, n_textons=64, texton_sigmas=_TWO_SCALE_BANK,
                    texton_coarse_to_fine=True, n_vec=17, n_levels=2, ic_radius=5, scale=1.0,
                    **_RELEASE_RADII),
    "balanced": dict(steps={3: 2, 5: 2, 10: 4, 20: 8}, n_textons=32, texton_sigmas=(2.0,),
                     n_vec=6, n_levels=3, ic_radius=3, scale=1.0, **_RELEASE_RADII),
    "fast": dict(steps={2: 2, 4: 2, 8: 4, 15: 8}, n_textons=32, texton_sigmas=(2.0,),
                 n_vec=6, n_levels=3, ic_radius=3, scale=0.75,
                 radii_l=(2, 4, 8), radii_ab=(4, 8, 15), radii_t=(4, 8, 15)),
    "medium": dict(steps={5: 2, 10: 2, 20: 4}, n_textons=32, texton_sigmas=_TWO_SCALE_BANK,
                n_vec=9, n_levels=3, ic_radius=5, scale=1.0, **_RELEASE_RADII),
}

_R_MAX = 20
#: Default ``max_pixels`` of :func:`gpb`: larger images are processed on a downscaled copy.
DEFAULT_MAX_PIXELS = 500_000


@dataclass(frozen=True)
class Contours:
    """Contour detector output.

    Attributes
    ----------
    pb : (H, W) ndarray of float64
        Boundary strength in [0, 1] (max over orientations, not thinned).
    oriented : (O, H, W) ndarray of float64
        Oriented strength, ``theta[o] = o pi / O`` (edge direction in (row, col); 0 = vertical).
    theta : (H, W) ndarray of float64
        Orientation of the maximum, in [0, pi).
    """

    pb: NDArray[np.float64]
    oriented: NDArray[np.float64]
    theta: NDArray[np.float64]

    def __post_init__(self):
        if self.pb.ndim != 2 or self.oriented.ndim != 3:
            raise ValueError(
                f"`pb` must be (H, W) and `oriented` (O, H, W), got {self.pb.shape} and "
                f"{self.oriented.shape}"
            )
        if self.oriented.shape[1:] != self.pb.shape or self.theta.shape != self.pb.shape:
            raise ValueError(
                f"`oriented` (shape {self.oriented.shape}) and `theta` (shape "
                f"{self.theta.shape}) must match `pb` (shape {self.pb.shape})"
            )
        if self.pb.size and (self.pb.min() < 0 or self.pb.max() > 1):
            raise ValueError("`pb` must lie in [0, 1]")

    def thin(self) -> NDArray[np.float64]:
        """Thinned boundary map: oriented NMS of ``pb`` (tolerance pi/8), values in [0, 1]."""
        return oriented_nms(self.pb, self.theta, tolerance=np.pi / 8)


def gpb(
    image,
    preset: str = "quality",
    *,
    rng=0,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    channel_axis: int | None = -1,
) -> Contours:
    """Detect contours with gPb = weighted local cues + spectral globalisation.

    Parameters
    ----------
    image : (H, W) or (H, W, C) array_like
        Gray, RGB or RGBA (alpha dropped); uint8, uint16 or float in [0, 1]. Gray images use the
        release's gray weights (a and b cues skipped).
    preset : {"quality", "balanced", "fast", "medium"}
        ``quality``: the release's cues (L 3/5/10, a, b, texture 5/10/20 px, 8 orientations,
        64 textons, exact half-disc histograms; radii >= 10 evaluated every 2 px and
        interpolated) with DNCuts (2 levels, 16 vectors) for sPb.
        ``balanced``: 32 textons from one filter scale, every cue sampled every 2 to 8 px, a
        radius-3 affinity, DNCuts with 3 levels and 5 vectors. ``fast``: ``balanced`` on the
        image resized by 0.75. ``medium``: the configuration ``bottomup.mcg``'s gPb rankers
        were trained on (``"mcg"``, its old name, is deprecated). See ``PRESETS``.
    rng : {numpy.random.Generator, int}, optional
        Pseudo-random number generator for the texton k-means. By default, a PCG64 generator
        seeded with 0 is used (so outputs are reproducible). If `rng` is an int, it is used to
        seed the generator.
    max_pixels : int or None
        Larger images are processed on a downscaled copy (area interpolation) with at most this
        many pixels, and the outputs are resized back (bilinear), with a ``UserWarning``. This
        bounds memory (about 1 GB per megapixel) and time; the cue radii are tuned for BSDS-size
        images (0.15 Mpx) anyway. None disables the check.
    channel_axis : int or None
        Axis of the colour channels; None for a 2-D grayscale image.

    Returns
    -------
    contours : Contours
        ``oriented`` is gPb_orient of the release (not thinned), clipped to [0, 1];
        ``pb = max_theta``; ``theta`` its orientation. Use ``contours.thin()`` for a thinned map.

    Raises
    ------
    ValueError
        If the image is smaller than 21 px on a side (the largest disc radius is 20), or
        ``preset`` is unknown.

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical
           Image Segmentation", TPAMI 33(5), 2011. :DOI:`10.1109/TPAMI.2010.161`
    .. [2] J. Pont-Tuset et al., "Multiscale Combinatorial Grouping for Image Segmentation and
           Object Proposal Generation", TPAMI 39(1), 2017. :DOI:`10.1109/TPAMI.2016.2537320`
    """
    preset = check_preset(preset)
    return _gpb(check_image(image, channel_axis=channel_axis), preset, rng, max_pixels)


def _gpb(img, preset: str, rng, max_pixels: int | None) -> Contours:
    """:func:`gpb` of a validated image and a checked preset."""
    h, w = img.shape[:2]
    if min(h, w) < _R_MAX + 1:
        raise ValueError(
            f"`image` (shape {img.shape[:2]}) must be at least {_R_MAX + 1} px on each side: the "
            f"largest half-disc has radius {_R_MAX}; upsample or pad small images first"
        )
    if max_pixels is not None and h * w > max_pixels:
        small = _downscale(img, max_pixels)
        del img  # the full-size float copy is not needed any more
        return _upscale(_gpb(small, preset, rng, None), h, w)
    work = preset_image(img, preset)
    with blas_single_thread():  # see bottomup._threads: spinning BLAS workers slow numba down
        c = _gpb_at_scale(work, PRESETS[preset], rng)
    return c if work is img else _upscale(c, h, w)


def preset_image(image, preset: str):
    """The image a preset computes its cues on: ``image`` itself, or a resized copy.

    Parameters
    ----------
    image : (H, W, 3) ndarray of float64
        RGB in [0, 1] (validated, see :func:`bottomup.validate.check_image`).
    preset : str
        A key of :data:`PRESETS`; its ``scale`` (0.75 for ``fast``, 1 for the others) gives the
        size, never below the preset's largest disc radius + 1 on a side.

    Returns
    -------
    work : (H', W', 3) ndarray of float64
        ``image`` (the same object) at scale 1, else its area-interpolated copy.

    Raises
    ------
    ValueError
        If ``preset`` is unknown.
    """
    cfg = PRESETS[check_preset(preset)]
    h, w = image.shape[:2]
    if cfg["scale"] == 1.0:
        return image
    r_max = max(cfg["radii_l"] + cfg["radii_ab"] + cfg["radii_t"])
    hs, ws = (max(r_max + 1, int(round(n * cfg["scale"]))) for n in (h, w))
    return image if (hs, ws) == (h, w) else _resize_area(image, hs, ws)


def check_preset(preset) -> str:
    """The name of a gPb preset, checked (``"mcg"``, the old name of ``"medium"``, warns)."""
    if preset == "mcg":
        import warnings

        warnings.warn("the gPb preset 'mcg' is called 'medium' now", DeprecationWarning, stacklevel=3)
        return "medium"
    if preset not in PRESETS:
        raise ValueError(f"`preset` must be one of {sorted(PRESETS)}, got {preset!r}")
    return preset


def _gpb_at_scale(img, cfg, rng) -> Contours:
    """gPb of ``img`` (already validated) with the preset's cues at the image's own size."""
    h, w = img.shape[:2]
    gray = is_gray(img)
    cues = local_cues(img, n_textons=cfg["n_textons"], steps=cfg["steps"],
                      texton_sigmas=cfg["texton_sigmas"], radii_l=cfg["radii_l"],
                      radii_ab=cfg["radii_ab"], radii_t=cfg["radii_t"],
                      texton_coarse_to_fine=cfg.get("texton_coarse_to_fine", False), rng=rng)
    m = mpb(cues, MPB_WEIGHTS_GRAY if gray else MPB_WEIGHTS_COLOR)
    # DNCuts levels: the preset's, or more so that the coarse graph keeps <= ~12k nodes (ARPACK
    # slows down sharply on larger graphs; MCG also picks the depth from the image size)
    n_levels = max(cfg["n_levels"], int(np.ceil(np.log(max(h * w / 12_000, 1.0)) / np.log(4.0))))
    s = spb(mpb_nmax(m), n_vec=cfg["n_vec"], n_levels=n_levels, radius=cfg["ic_radius"])
    beta = GPB_WEIGHTS_GRAY if gray else GPB_WEIGHTS_COLOR
    g = smoothed_sum(cues, beta[:-1]).astype(np.float64) + beta[-1] * s.astype(np.float64)
    g = np.clip(g, 0.0, 1.0)
    return Contours(pb=g.max(axis=0), oriented=g, theta=best_orientation(g))


def _resize_area(img, hs, ws):
    """Area-interpolated copy of size ``(hs, ws)``, clipped to [0, 1]."""
    import cv2

    return np.clip(cv2.resize(img, (ws, hs), interpolation=cv2.INTER_AREA), 0.0, 1.0)


def _downscale(img, max_pixels):
    import warnings

    h, w = img.shape[:2]
    f = float(np.sqrt(max_pixels / (h * w)))
    hs, ws = max(_R_MAX + 1, int(h * f)), max(_R_MAX + 1, int(w * f))
    warnings.warn(
        f"`image` has {h * w} pixels > max_pixels={max_pixels}: computing gPb on a {hs}x{ws} "
        "copy and resizing the result back; pass max_pixels=None to run at full size",
        UserWarning,
        stacklevel=3,
    )
    return _resize_area(img, hs, ws)


def _upscale(c, h, w):
    import cv2

    oriented = np.empty((c.oriented.shape[0], h, w))  # filled in place: one full-size copy
    for o in range(oriented.shape[0]):
        oriented[o] = cv2.resize(c.oriented[o], (w, h), interpolation=cv2.INTER_LINEAR)
    np.clip(oriented, 0.0, 1.0, out=oriented)
    return Contours(pb=oriented.max(axis=0), oriented=oriented, theta=best_orientation(oriented))
