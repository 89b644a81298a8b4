"""The whole chain: image -> contours -> oriented watershed -> arcs -> UCM hierarchy.

``segment`` composes the stages and reads like the pipeline of ``DESIGN.md``; everything a
contour source implies (OWT rule, arc scores, sigmoid, scales, size limit) comes from the source
object (:mod:`bottomup.contours.source`), so no step branches on where contours came from.
"""

from __future__ import annotations

import functools
import warnings

from bottomup.contours.source import ARC_RULES, CNN_RIDGE, ContourSource, GPb, Ridge, get_source
from bottomup.hierarchy import Hierarchy, hierarchy_from_pieces
from bottomup.hierarchy.multiscale import multiscale_hierarchy
from bottomup.owt import oriented_watershed, rescore_pieces, ridge_owt_inputs
from bottomup.owt.arc_scores import ArcScorer, load_arc_scorer
from bottomup.validate import check_image

__all__ = ["segment", "finest_partition", "single_scale_hierarchy", "arc_scorer", "legacy_source",
           "model_files"]

#: gPb preset names that ``segment``'s second argument used to take (deprecated spelling).
_LEGACY_PRESETS = ("quality", "balanced", "fast", "mcg", "medium")


def segment(image, contours="gpb", *, arcs=None, **deprecated) -> Hierarchy:
    """Segment an image into a hierarchy of regions (OWT-UCM [1]_ on any contour source).

    Parameters
    ----------
    image : (H, W[, C]) array_like
        Gray, RGB or RGBA; uint8, uint16 or float in [0, 1].
    contours : str, ContourSource or callable
        ``"gpb"`` (default): :class:`bottomup.contours.GPb`, gPb-owt-ucm (its ``quality`` preset
        combines the hierarchies of the image at x1 and x0.5); ``"learned"``: the CNN of ``deep``
        (needs torch), or any name registered in the entry-point group ``bottomup.contours``; a
        :class:`bottomup.contours.ContourSource` (``GPb("fast", seed=1)``, or your detector with
        its policy); a plain callable ``fn(image) -> (pb, oriented)``: exactly
        ``bottomup.ucm(*fn(image))``.
    arcs : None, "mean", "learned", "gpb" or ArcScorer
        How each arc of the finest partition is scored before the greedy merging: ``"mean"``,
        the mean of its contour strengths (OWT-UCM); ``"learned"`` or ``"gpb"``, the shipped
        :class:`bottomup.owt.ArcScorer` fitted on the arcs of the learned contours or of
        ``GPb()`` (``bench/train_arcs.py``); or any scorer. None (default): the source's ``arcs``.
    **deprecated
        ``preset``, ``seed``, ``owt`` and ``multiscale`` (and a gPb preset name as the second
        argument) are attributes of the source now; they still work for one release with a
        :class:`DeprecationWarning` that gives the new spelling.

    Returns
    -------
    hierarchy : Hierarchy
        ``hierarchy.to_ucm2()`` is the BSDS ucm2.

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical
           Image Segmentation", TPAMI 33(5), 2011. :DOI:`10.1109/TPAMI.2010.161`

    Examples
    --------
    >>> from bottomup.contours import GPb
    >>> img = np.zeros((40, 40, 3)); img[:, 20:] = 1.0
    >>> h = segment(img, GPb("fast"))
    >>> int(h.cut(n_regions=2).max())
    1
    """
    source = legacy_source(contours, deprecated, "segment")
    scorer = arc_scorer(source.arcs if arcs is None else arcs)  # checked before any work
    img = check_image(image)
    if source.multiscale is None:
        return single_scale_hierarchy(img, source, scorer)
    level, ms = source.single_scale(), source.multiscale
    return multiscale_hierarchy(img, lambda lv: single_scale_hierarchy(lv, level, scorer), ms.scales,
                                weights=ms.weights, sigmoid=None, max_pixels=source.max_pixels)


def single_scale_hierarchy(img, source: ContourSource, scorer: ArcScorer | None) -> Hierarchy:
    """One scale of :func:`segment`: the finest partition, its arcs scored, greedy merging.

    ``img`` is a validated image (:func:`bottomup.validate.check_image`), ``source`` is used at
    one scale whatever its ``multiscale``, and ``scorer`` is :func:`arc_scorer`'s (None: mean).
    """
    pb, oriented, labels, pieces = _finest_partition(img, source)
    if scorer is not None:
        pieces = rescore_pieces(img, pb, oriented, labels, pieces, scorer)
    return hierarchy_from_pieces(labels, pieces, normalize=source.normalize and scorer is None)


def finest_partition(image, contours="gpb"):
    """The stages of :func:`segment` before the merging: contours, then the oriented watershed.

    Parameters
    ----------
    image : (H, W[, C]) array_like
    contours : str, ContourSource or callable
        As :func:`segment` (one scale: the source's ``multiscale`` is not used).

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
    return _finest_partition(check_image(image), get_source(contours))


def _finest_partition(img, source: ContourSource):
    pb, oriented = source.contours(img)
    ws, strengths = pb, oriented
    if source.owt == "ridge":
        ws, strengths = ridge_owt_inputs(pb, oriented, source.ridge or Ridge())
    labels, pieces = oriented_watershed(ws, strengths, descent_first=source.owt != "plain")
    return pb, oriented, labels, pieces


def arc_scorer(arcs) -> ArcScorer | None:
    """The scorer behind ``arcs``: None for ``"mean"`` (mean strengths), else an ``ArcScorer``
    (a rule of :data:`bottomup.contours.ARC_RULES` names a shipped one)."""
    if isinstance(arcs, ArcScorer):
        return arcs
    if not isinstance(arcs, str) or arcs not in ARC_RULES:
        raise (TypeError if not isinstance(arcs, str) else ValueError)(
            f"`arcs` must be None, one of {ARC_RULES} or an ArcScorer, got {arcs!r}")
    return None if arcs == "mean" else _shipped_arc_scorer(arcs)


@functools.cache
def _shipped_arc_scorer(name: str) -> ArcScorer:
    return load_arc_scorer(name)


def legacy_source(contours, deprecated: dict, where: str) -> ContourSource:
    """Resolve ``contours`` and the deprecated keywords of ``segment`` into one source.

    ``preset``, ``seed``, ``owt`` and ``multiscale`` (and a gPb preset name given as
    ``contours``) map to the source's attributes, each with a :class:`DeprecationWarning` that
    names the new spelling; any other keyword is a TypeError.
    """
    unknown = set(deprecated) - {"preset", "seed", "owt", "multiscale"}
    if unknown:
        raise TypeError(f"{where}() got unexpected keyword argument(s) {sorted(unknown)}")
    if isinstance(contours, str) and contours in _LEGACY_PRESETS:
        deprecated = {"preset": contours, **deprecated}
        contours = "gpb"
    if not deprecated:
        return get_source(contours)
    if contours is None or (isinstance(contours, str) and contours == "gpb"):
        kw = {k: deprecated[k] for k in ("preset", "seed", "owt", "multiscale") if k in deprecated}
        if kw.get("owt") is None:
            kw.pop("owt", None)
        source = GPb(**kw)
        new = "GPb(" + ", ".join(f"{k}={v!r}" for k, v in kw.items()) + ")"
    else:
        source = get_source(contours)
        changes = {}
        if deprecated.get("owt") is not None:
            changes["owt"] = deprecated["owt"]
            if deprecated["owt"] == "ridge" and not isinstance(source, GPb):
                # the ridge rule `owt="ridge"` gave every non-gPb source before 0.2
                changes["ridge"] = source.ridge or CNN_RIDGE
        if deprecated.get("multiscale") is not None:
            from bottomup.contours.source import Multiscale

            changes["multiscale"] = Multiscale() if deprecated["multiscale"] else None
        source = source.with_policy(**changes) if changes else source
        new = f"a ContourSource with {changes}" if changes else f"contours={contours!r} alone"
    warnings.warn(f"{where}(): {sorted(deprecated)} are attributes of the contour source now; "
                  f"pass contours={new}", DeprecationWarning, stacklevel=3)
    return source


def model_files(source: ContourSource, arcs=None) -> list:
    """The shipped files a hierarchy of ``source`` reads: its weights (``source.model_files()``)
    and, for learned arcs (``arcs=None``: the source's rule), the arc scorer. Their hashes go into
    cache keys and the records of folder jobs.

    Examples
    --------
    >>> model_files(GPb()), [p.name for p in model_files(GPb(), "learned")]
    ([], ['arcs_learned.npz'])
    """
    from pathlib import Path

    from bottomup.owt.arc_scores import shipped_arc_scorer_path

    files = [Path(p) for p in source.model_files()]
    rule = source.arcs if arcs is None else arcs
    if isinstance(rule, str) and rule != "mean":
        files.append(Path(str(shipped_arc_scorer_path(rule))))
    return files
