"""The whole chain in a few readable lines: image -> contours -> OWT -> UCM hierarchy.

``segment`` composes the stage functions (``bottomup.contours.gpb``, ``bottomup.hierarchy.ucm``) and
is what the ``bottomup segment`` command, the folder jobs and the demo call.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import numpy as np

from bottomup._validate import check_image
from bottomup.hierarchy import Hierarchy, hierarchy_from_pieces

__all__ = [
    "segment", "segment_multiscale", "MULTISCALE", "image_to_contours", "ridge_owt_inputs", "segment_file",
    "CONTOUR_SOURCES", "OWT_MODES",
    "LEARNED_RIDGE", "contour_source", "ARC_MODES", "arc_scorer", "default_arcs", "finest_partition",
]

#: Named contour sources besides the gPb presets: name -> "module:function" taking an image and
#: returning ``(pb (H, W), oriented (O, H, W))``. ``learned`` is the CNN of the ``deep`` package,
#: imported only when asked for (``bottomup`` itself never imports torch).
CONTOUR_SOURCES = {"learned": "deep.contours.api:learned_contours"}


def contour_source(name: str) -> Callable:
    """The function behind a named contour source of :data:`CONTOUR_SOURCES`.

    Raises
    ------
    ValueError
        For an unknown name.
    ImportError
        With the install hint when the source's package (``deep``: torch) is missing.
    """
    if name not in CONTOUR_SOURCES:
        raise ValueError(
            f"`contours` must be None, a callable or one of {sorted(CONTOUR_SOURCES)}, got {name!r}")
    import importlib

    mod, fn = CONTOUR_SOURCES[name].split(":")
    try:
        return getattr(importlib.import_module(mod), fn)
    except ImportError as exc:
        raise ImportError(
            f"contours={name!r} needs the `deep` extra (torch): pip install 'bottomup[deep]' ({exc})"
        ) from exc


def image_to_contours(image, preset: str = "quality", *, contours=None, seed: int = 0):
    """Contour strength and oriented stack of an image.

    Parameters
    ----------
    image : (H, W[, C]) array_like
        Any dtype and channel layout the image contract accepts.
    preset : {"quality", "balanced", "fast", "mcg"}
        gPb preset (see :func:`bottomup.contours.gpb`).
    contours : None, "learned" or callable, optional
        None: gPb. "learned": the CNN contour detector of ``deep`` (needs torch). A callable
        ``f(image) -> (pb, oriented)`` plugs in any edge detector.
    seed : int
        Seed of gPb's texton k-means (the only random step; :func:`bottomup.contours.gpb`'s
        ``rng``). Unused by other contour sources.

    Returns
    -------
    pb : (H, W) ndarray of float64 in [0, 1]
    oriented : (O, H, W) ndarray of float64 or None
    """
    img = check_image(image)
    if contours is None:
        from bottomup.contours import gpb

        c = gpb(img, preset, rng=_check_seed(seed))
        return c.pb, c.oriented
    if isinstance(contours, str):
        contours = contour_source(contours)
    if not callable(contours):
        raise TypeError(f"`contours` must be None, a name or a callable, got {type(contours).__name__}")
    pb, oriented = contours(img)
    return np.asarray(pb, dtype=np.float64), None if oriented is None else np.asarray(oriented, np.float64)


def ridge_owt_inputs(pb, oriented, *, floor: float = 0.3, smooth: float = 0.0,
                     isotropic: bool = False, power: float = 1.0):
    """Watershed input and arc strengths that follow the ridge of a contour map.

    The watershed runs on ``max(nms(p), floor * p)`` where ``p`` is ``pb`` (Gaussian-smoothed by
    ``smooth`` pixels when > 0): the oriented non-maximum suppression
    (:func:`bottomup.contours.nms.oriented_nms`) puts the watershed lines on the ridges of thick
    responses, and the ``floor * p`` term keeps the map free of plateaus between them. Each arc's
    strength is then read on the ridge only, so arcs that wander across a thick response score
    low: from ``oriented`` at the arc's orientation, or, with ``isotropic=True``, from the
    unsmoothed ``pb`` itself in every orientation; raised to ``power``.

    Measured on 20 BSDS val images against the plain ``ucm(pb, oriented)``: gPb ODS 0.654 ->
    0.673 and Covering 0.523 -> 0.563; learned contours ODS 0.692 -> 0.715. Most of that
    plain-OWT loss came from the watershed's raster-order ties (one-pixel tentacles along
    ridges): with ``descent_first=True`` the plain OWT beats this for gPb
    (``segment(owt="steepest")``), while these inputs with ``descent_first=True`` remain the
    better choice for learned contours (see :func:`segment`, which uses
    :data:`LEARNED_RIDGE` for them).

    Parameters
    ----------
    pb : (H, W) ndarray
    oriented : (O, H, W) ndarray or None
        ``None`` uses ``pb`` for every orientation.
    floor : float
        Share of ``pb`` kept off the ridge in the watershed input.
    smooth : float
        Sigma (pixels) of the Gaussian applied to ``pb`` before the NMS and the watershed
        (0: none). Fewer spurious basins on noisy, thick CNN responses.
    isotropic : bool
        Arc strengths from ``pb`` on the ridge, the same in every orientation, instead of
        ``oriented``. For detectors whose oriented stack is ``pb`` times a coarse orientation
        posterior (``deep.contours``), reading it at each arc's orientation under-scores true
        arcs whose orientation bin is wrong (learned UCM ODS .730 -> .760 on BSDS val); gPb's
        oriented gradients are real measurements and lose with it (ODS .706 -> .674).
    power : float
        Exponent applied to the strengths (UCM merges by mean strength along a boundary, so a
        power > 1 lets its strong parts weigh more).

    Returns
    -------
    ws : (H, W) ndarray of float64
    strengths : (O, H, W) ndarray of float64
    """
    from bottomup.contours.nms import best_orientation, oriented_nms

    pb = np.asarray(pb, dtype=np.float64)
    if oriented is None:
        oriented = pb[None].repeat(8, axis=0)
    oriented = np.asarray(oriented, dtype=np.float64)
    if smooth < 0 or floor < 0 or power <= 0:
        raise ValueError(f"`smooth` and `floor` must be >= 0 and `power` > 0, got {smooth}, {floor}, {power}")
    p = pb
    if smooth > 0:
        from scipy.ndimage import gaussian_filter

        p = gaussian_filter(pb, smooth)
    nms = oriented_nms(p, best_orientation(oriented), tolerance=np.pi / 8)
    ridge = nms > 0
    if isotropic:
        strengths = np.broadcast_to((pb * ridge)[None], oriented.shape).copy()
    else:
        strengths = oriented * ridge
    if power != 1.0:
        strengths **= power
    return np.maximum(nms, floor * p), strengths


#: ``ridge_owt_inputs`` settings of ``segment(owt="ridge")`` for contour sources other than gPb
#: (the learned CNN, user callables), selected on BSDS500 val (100 images, ``bench/bsds.py``,
#: 4 test scales): smoothing sigma 0.5 / 1 / 2 gives ODS .766 / .766 / .757 and Covering
#: .629 / .634 / .633; isotropic strengths +.030 ODS and +.060 Covering over oriented ones.
LEARNED_RIDGE = {"smooth": 1.0, "isotropic": True, "power": 2.0}


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
    return int(seed)


def default_multiscale(preset: str, contours=None) -> bool:
    """What ``segment(multiscale=None)`` does: two scales for gPb's ``quality`` preset only."""
    return preset == "quality" and contours is None


#: Values of ``segment(owt=...)``.
OWT_MODES = ("steepest", "ridge", "plain")


def segment(image, preset: str = "quality", *, contours: None | str | Callable = None,
            owt: str | None = None, seed: int = 0, multiscale: bool | None = None,
            arcs=None) -> Hierarchy:
    """Segment an image into a hierarchy of regions (gPb-owt-ucm).

    Parameters
    ----------
    image : (H, W[, C]) array_like
        Gray, RGB or RGBA; uint8, uint16 or float in [0, 1].
    preset : {"quality", "balanced", "fast", "mcg"}
        ``quality``: the original gPb cues and spectral globalisation (DNCuts eigenvectors) on
        the image and on its half-size copy, the two hierarchies aligned and combined as MCG
        does (:func:`segment_multiscale`; BSDS500 val, seed 0: ODS / OIS / AP .706 / .735 / .755,
        Covering .581, PRI .801, VI 1.68, 1.8 s per BSDS image on 2 cores); with
        ``multiscale=False`` the image's own hierarchy only (the first gPb row below, 1.4 s);
        ``balanced``: one texton filter scale, every disc sampled every 2 to 8 px, a radius-3
        affinity and 5 eigenvectors (0.48 s); ``fast``: ``balanced`` on the image resized by
        0.75 (0.28 s); ``mcg``: the configuration ``bottomup.mcg``'s rankers were trained on
        (0.87 s). See :data:`bottomup.contours.gpb.PRESETS` and the table below.
    contours : None, "learned" or callable, optional
        Contour source (see :func:`image_to_contours`).
    owt : {None, "steepest", "ridge", "plain"}
        How the oriented watershed is built. ``steepest``: the watershed of the contour map
        itself, strengths from the oriented stack, as the original OWT [1]_, with water on a ridge
        running down its steepest flank (``descent_first=True`` of
        :func:`bottomup.owt.oriented_watershed`), so that no basin sends a one-pixel tentacle
        along a ridge. ``ridge``: the watershed and the arc strengths follow the NMS ridge of the
        contour map (:func:`ridge_owt_inputs`), with the same steepest-flank ties; for contour
        sources other than gPb with :data:`LEARNED_RIDGE` (watershed on the smoothed map, arcs
        scored by the squared map on the ridge in every orientation). ``plain``: the
        watershed of the contour map with raster-order ties (as higra; ``bottomup.mcg`` ships a
        ranker for it and one for ``steepest``, its default, and the shipped deep heads were
        trained on ``plain`` SCG proposals). None (default): ``steepest`` for gPb, ``ridge`` for other contour
        sources, the better of the two for each on BSDS500 val (100 images, ``bench/bsds.py``;
        ODS/OIS/AP, Covering, PRI, VI):

        ======================  ================  =====  =====  =====
        contours, owt           ODS / OIS / AP    Cov    PRI    VI
        ======================  ================  =====  =====  =====
        gPb, ``steepest``       .705/.735/.723    .577   .800   1.69
        gPb, ``plain``          .676/.701/.694    .557   .793   1.79
        gPb, ``ridge``          .691/.723/.712    .555   .788   1.80
        gPb, earlier            .692/.724/.720    .556   .790   1.80
        gPb balanced, steepest  .699/.722/.744    .582   .805   1.71
        gPb fast, ``steepest``  .685/.709/.719    .576   .802   1.73
        gPb mcg, ``steepest``   .701/.732/.748    .581   .804   1.71
        gPb mcg, earlier        .687/.716/.720    .574   .796   1.75
        learned (default)       .776/.804/.820    .649   .836   1.45
        learned, x1 + x0.5      .776/.804/.817    .651   .836   1.44
        learned, mean arcs      .769/.794/.791    .636   .830   1.50
        mean arcs, x1 + x0.5    .769/.793/.793    .641   .831   1.49
        learned before tuning   .767/.792/.795    .631   .829   1.54
        learned, ridge 3 sc.    .764/.787/.788    .636   .830   1.53
        learned, ridge oriented .730/.753/.742    .562   .797   1.86
        learned, ``steepest``   .727/.748/.728    .555   .796   1.89
        learned, earlier        .724/.746/.727    .556   .798   1.89
        original gPb-owt-ucm    .711/.739/.731    .588   .808   1.65
        ======================  ================  =====  =====  =====

        ("earlier": the NMS ridge inputs with raster-order ties, the default before. "learned
        (default)": ``ridge`` and the learned arc scores (``arcs``); the learned rows below it
        score arcs by their mean strength (``arcs="mean"``). Learned
        ``ridge`` uses :data:`LEARNED_RIDGE` and four test scales (the shipped network; "before
        tuning": before its CPU fine-tuning, the network the other learned rows used); "3 sc.":
        the same with three test scales; "ridge oriented": strengths read from the oriented
        stack at each arc's orientation, three test scales, the rule before; the ``steepest``
        and "earlier" learned rows are with three test scales and oriented strengths;
        "x1 + x0.5": ``multiscale=True``.)
    seed : int
        Seed of gPb's texton k-means, its only random step (unused by other contour sources).
        The same seed gives the same ucm2, byte for byte. The gPb rows above are seed 0; the
        k-means draw moves them: the default two-scale quality hierarchy with seeds 0 / 1 / 2
        scores ODS .706 / .708 / .708, Covering .581 / .588 / .589, VI 1.680 / 1.685 / 1.679
        (with a one-solve k-means instead of the release's coarse-to-fine one the spread was
        about twice as large), so report several seeds when comparing against a margin of that
        size.
    multiscale : bool or None
        Combine the preset's hierarchies of the image at x1 and x0.5 (:func:`segment_multiscale`).
        None (default): for the ``quality`` preset of gPb only. With other ``contours`` each
        level runs that source (learned contours: Covering .649 -> .651, VI 1.447 -> 1.441, ODS
        unchanged, see :func:`segment_multiscale`).
    arcs : None, "mean", "learned" or ArcScorer
        How each arc of the finest partition is scored before the greedy merging. ``mean``: the
        mean of its face strengths (the OWT-UCM of [1]_). ``learned``: the shipped
        :class:`bottomup.owt.arc_scores.ArcScorer`, trained on arcs of the learned contours of
        BSDS500 train (``bench/train_arcs.py``); any other scorer may be passed. None (default):
        ``learned`` for ``contours="learned"``, ``mean`` otherwise (see the table). The scorer
        was trained on the learned contours' ``ridge`` arcs (``bottomup.mcg`` uses it for
        learned contours too).

    Returns
    -------
    hierarchy : Hierarchy
        Its ``to_ucm2()`` is the BSDS ucm2, with the learned sigmoid normalisation of the release
        for gPb contours (a monotone map: it changes the levels, not the tree).

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical
           Image Segmentation", TPAMI 33(5), 2011. :DOI:`10.1109/TPAMI.2010.161`

    Examples
    --------
    >>> img = np.zeros((40, 40, 3)); img[:, 20:] = 1.0
    >>> h = segment(img, "fast")
    >>> int(h.cut(n_regions=2).max())
    1
    """
    if multiscale not in (None, True, False):
        raise TypeError(f"`multiscale` must be None, True or False, got {multiscale!r}")
    if multiscale is None:
        multiscale = default_multiscale(preset, contours)
    scorer = arc_scorer(arcs, contours)  # checks `arcs` before any work
    if multiscale:
        return segment_multiscale(image, preset, seed=seed, owt=owt, contours=contours, arcs=arcs)
    img = check_image(image)
    pb, oriented, labels, pieces = finest_partition(img, preset, contours=contours, owt=owt, seed=seed)
    if scorer is not None:
        from bottomup.owt.arc_scores import rescore_pieces

        pieces = rescore_pieces(img, pb, oriented, labels, pieces, scorer)
    return hierarchy_from_pieces(labels, pieces, normalize=contours is None and scorer is None)


def finest_partition(image, preset: str = "quality", *, contours=None, owt: str | None = None,
                     seed: int = 0):
    """The stages of :func:`segment` before the merging: contours, then the oriented watershed.

    Parameters are those of :func:`segment`.

    Returns
    -------
    pb : (H, W) ndarray of float64
    oriented : (O, H, W) ndarray of float64 or None
        The contour source's outputs.
    labels : (H, W) ndarray of int32
        Finest partition.
    pieces : BoundaryPieces
        Its boundary, with the strengths the mean-strength UCM merges by.
    """
    from bottomup.owt import oriented_watershed

    if owt is None:
        owt = "steepest" if contours is None else "ridge"
    if owt not in OWT_MODES:
        raise ValueError(f"`owt` must be None or one of {OWT_MODES}, got {owt!r}")
    pb, oriented = image_to_contours(image, preset, contours=contours, seed=seed)
    ws, strengths = pb, oriented
    if owt == "ridge":
        ws, strengths = ridge_owt_inputs(pb, oriented, **({} if contours is None else LEARNED_RIDGE))
    labels, pieces = oriented_watershed(ws, strengths, descent_first=owt != "plain")
    return pb, oriented, labels, pieces


#: Values of ``segment(arcs=...)`` besides an :class:`bottomup.owt.arc_scores.ArcScorer`.
ARC_MODES = ("mean", "learned")


def default_arcs(contours=None) -> str:
    """What ``segment(arcs=None)`` does: ``"learned"`` for ``contours="learned"``, else ``"mean"``."""
    return "learned" if isinstance(contours, str) and contours == "learned" else "mean"


def arc_scorer(arcs, contours=None):
    """The scorer behind ``segment(arcs=...)``: None for mean strengths, else an ``ArcScorer``.

    ``arcs=None`` means :func:`default_arcs` of ``contours``.
    """
    from bottomup.owt.arc_scores import ArcScorer

    if arcs is None:
        arcs = default_arcs(contours)
    if isinstance(arcs, ArcScorer):
        return arcs
    if not isinstance(arcs, str):
        raise TypeError(f"`arcs` must be None, a str or an ArcScorer, got {type(arcs).__name__}")
    if arcs not in ARC_MODES:
        raise ValueError(f"`arcs` must be None, one of {ARC_MODES} or an ArcScorer, got {arcs!r}")
    return None if arcs == "mean" else _shipped_arc_scorer()


@functools.lru_cache(maxsize=1)
def _shipped_arc_scorer():
    from bottomup.owt.arc_scores import load_arc_scorer

    return load_arc_scorer()


#: Scales and weights of :func:`segment_multiscale` (selected on BSDS500 val, see there).
MULTISCALE = {"scales": (1.0, 0.5), "weights": (0.75, 0.25)}


def segment_multiscale(image, preset: str = "quality", *, scales=MULTISCALE["scales"],
                       weights=MULTISCALE["weights"], seed: int = 0,
                       owt: str | None = None, contours=None, arcs=None) -> Hierarchy:
    """gPb-owt-ucm at several image scales, aligned and averaged as MCG does (two scales).

    Each scale's hierarchy (:func:`segment` of the resized image,
    :func:`bottomup.mcg.pyramid.image_pyramid`) is aligned to the leaves of the finest one and
    their levels are averaged with ``weights`` (:func:`bottomup.mcg.align.combine_hierarchies`,
    no sigmoid, so the levels keep the release's scale); the UCM of that average is returned.

    This is what ``segment(image)`` (the ``quality`` preset) runs. BSDS500 val (100 images,
    ``bench/bsds.py``), ODS / OIS / AP, Covering, PRI, VI: ``quality`` at x1 and x0.5 with
    weights .75 / .25, seed 0: .706 / .735 / .755, .581, .801, 1.680; seeds 1 and 2: .708 /
    .736 / .755, .588, .803, 1.685 and .708 / .734 / .755, .589, .806, 1.679; 1.8 s per
    481x321 image on 2 cores (``bench/speed.py --stage segment_multiscale``). The original
    gPb-owt-ucm: .711 / .739 / .731, .588, .808, 1.653. The x1 hierarchy alone
    (``segment(multiscale=False)``), seed 0: .705 / .735 / .723, .577, .800, 1.694, 1.4 s.
    Weights .5 / .5 gave ODS .702 and VI 1.68 (with the earlier texton k-means); a
    ``balanced`` x0.5 level lost the VI gain (1.70), and so did cheaper second levels made of
    the x1 contours resized (1.70), the x0.5 cues without their own sPb (1.70) or the x1 cues
    with an x0.5 sPb (1.70). The weights were selected on val, not fitted on train.

    With ``contours="learned"`` (opt-in: ``segment(image, contours="learned", multiscale=True)``)
    each level gets the network's own four test scales and the learned arc scores; BSDS500 val:
    .776 / .804 / .817, Covering .651, PRI .836, VI 1.441, against .776 / .804 / .820, .649,
    .836, 1.447 for the x1 hierarchy alone, for ~0.3 s more. With mean-strength arcs
    (``arcs="mean"``) the two scales gave .769 / .793 / .793, Covering .641, VI 1.485 against
    .769 / .794 / .791, .636, 1.504 (weights .5 / .5: ODS .766, Covering .646, VI 1.492).

    Images over gPb's ``max_pixels`` (:data:`bottomup.contours.gpb.DEFAULT_MAX_PIXELS`) get
    their contours on a downscaled copy (with a warning); the smaller scales are then taken
    relative to that copy, so that each level keeps its own resolution (gPb contours only).

    Parameters
    ----------
    image : (H, W[, C]) array_like
        As :func:`segment`.
    preset : str
        gPb preset of every scale.
    scales : sequence of float
        Image scales; the largest gives the leaves.
    weights : sequence of float
        One positive weight per scale.
    seed : int
        As :func:`segment`.
    owt : {None, "steepest", "ridge", "plain"}
        As :func:`segment`, for every scale.
    contours : None, "learned" or callable, optional
        As :func:`segment`: the contour source of every scale, run on each resized image.
    arcs : None, "mean", "learned" or ArcScorer
        As :func:`segment`, for every scale.

    Returns
    -------
    hierarchy : Hierarchy
        At the image's size.

    References
    ----------
    .. [1] J. Pont-Tuset, P. Arbelaez, J. Barron, F. Marques, J. Malik, "Multiscale
           Combinatorial Grouping for Image Segmentation and Object Proposal Generation",
           TPAMI 39(1), 2017. :DOI:`10.1109/TPAMI.2016.2537320`
    """
    from bottomup.contours.gpb import DEFAULT_MAX_PIXELS
    from bottomup.mcg.align import combine_hierarchies
    from bottomup.mcg.pyramid import image_pyramid

    img = check_image(image)
    if len(tuple(weights)) != len(tuple(scales)):  # before the work; combine_hierarchies checks values
        raise ValueError(f"`weights` must have one entry per scale ({len(tuple(scales))}), got {weights!r}")
    s = np.asarray(scales, dtype=np.float64)
    if contours is None and s.ndim == 1 and s.size and (s > 0).all():  # gPb's size limit
        h, w = img.shape[:2]
        f = min(1.0, float(np.sqrt(DEFAULT_MAX_PIXELS / (h * w * s.max() ** 2))))
        s = np.where(s == s.max(), s, s * f)  # the finest level keeps the image's leaves
    levels = image_pyramid(img, s)
    hierarchies = [segment(level, preset, seed=seed, owt=owt, contours=contours, multiscale=False,
                           arcs=arcs) for level in levels]
    return combine_hierarchies(hierarchies, img.shape[:2], sigmoid=None, weights=weights)


def segment_file(in_path, out_path, *, preset: str = "quality", contours=None, seed: int = 0,
                 multiscale: bool | None = None, arcs: str | None = None) -> dict:
    """Segment one image file and write its ucm2 atomically (``.mat``, ``.npz`` or ``.png``).

    The task behind ``bottomup segment`` folder jobs.
    """
    from bottomup.io import read_image, write_ucm2

    img = read_image(in_path)
    h = segment(img, preset, contours=contours, seed=seed, multiscale=multiscale, arcs=arcs)
    write_ucm2(out_path, h.to_ucm2())
    return {"shape": list(img.shape[:2]), "n_leaves": int(h.n_leaves), "pid": os.getpid()}
