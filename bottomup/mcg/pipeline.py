"""SCG / MCG object proposals: hierarchy -> combinatorial grouping -> features -> ranking.

References
----------
.. [1] P. Arbelaez, J. Pont-Tuset, J. T. Barron, F. Marques, J. Malik, "Multiscale Combinatorial
       Grouping", CVPR 2014. :DOI:`10.1109/CVPR.2014.49`
.. [2] J. Pont-Tuset, P. Arbelaez, J. T. Barron, F. Marques, J. Malik, "Multiscale Combinatorial
       Grouping for Image Segmentation and Object Proposal Generation", TPAMI 39(1), 2017.
       :DOI:`10.1109/TPAMI.2016.2537320`
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bottomup._validate import check_image
from bottomup.hierarchy import Hierarchy
from bottomup.mcg.candidates import Candidates
from bottomup.mcg.features import LeafStats, candidate_features, leaf_stats
from bottomup.mcg.grouping import (
    SCG_QUOTAS,
    coarsen_leaves,
    combinatorial_grouping,
    tuples_to_leaf_sets,
)
from bottomup.mcg.ranking import (
    Forest,
    diversify,
    load_ranker,
    predict_forest,
    ranker_path,
    remove_near_duplicates,
)

__all__ = ["PRESETS", "OWT_CHOICES", "DEFAULT_OWT", "CandidatePool", "candidate_pool",
           "hierarchy_for", "proposals", "rank_pool", "proposals_file"]

#: MMR weight of the score (MCG, FACTS B.10 step 5).
THETA = 0.7
#: Leaves kept before grouping (see :func:`proposals`).
MAX_LEAVES = 1000

#: preset -> contour preset of :func:`bottomup.segment` and the grouping quotas. ``mcg`` groups
#: the combined multiscale hierarchy (scales :data:`bottomup.mcg.pyramid.MCG_SCALES`) with the
#: same quotas and its own ranker (:func:`bottomup.mcg.ranking.ranker_path`). The shipped rankers
#: were trained on hierarchies of the gPb preset ``mcg`` (see ``bottomup.contours.gpb.PRESETS``);
#: on the cheaper ``balanced`` ones (with those rankers, MSRC val) SCG scores ABO@1000 .778
#: (recall@0.7 .750) and MCG .799 (ABO@100 .709) against .788 (.774) and .811 (.730), so the
#: proposals stay on ``mcg``.
PRESETS = {"scg": ("mcg", SCG_QUOTAS), "scg-quality": ("quality", SCG_QUOTAS),
           "mcg": ("mcg", SCG_QUOTAS)}

#: Oriented-watershed modes the proposals accept (``owt`` of :func:`bottomup.segment`).
OWT_CHOICES = ("plain", "steepest")
#: Default ``owt`` of the proposal hierarchies (every preset). ``steepest`` with its own ranker
#: (``scg_ranker_steepest.npz``) against ``plain`` with the earlier one, MSRC val thing objects
#: (``bench/proposals.py``): SCG ABO@100 .708 -> .723, ABO@1000 .766 -> .788, recall@0.7 at
#: 1000 .726 -> .774; MCG ABO@1000 .789 -> .805, recall@0.5 .952 -> .988, recall@0.7 .762 (same).
DEFAULT_OWT = "steepest"


def _check_owt(owt, contours=None):
    """The ``owt`` given to :func:`bottomup.segment`: None (its own choice) for non-gPb contours."""
    if contours is not None:
        if owt is not None:
            raise ValueError(
                f"`owt` applies to gPb hierarchies; with `contours` it must be None (the ridge OWT "
                f"of bottomup.segment for learned contours), got {owt!r}")
        return None
    if owt is None:
        return DEFAULT_OWT
    if owt not in OWT_CHOICES:
        raise ValueError(f"`owt` must be None or one of {OWT_CHOICES}, got {owt!r}")
    return owt


@dataclass(frozen=True)
class CandidatePool:
    """Every candidate of a hierarchy before ranking (exact duplicates removed).

    Attributes
    ----------
    hierarchy : Hierarchy
    tuples : (K, 4) int64
        Node ids per candidate, padded with -1.
    leaf_sets : (K, L) bool
    features : (K, F) float64
    stats : LeafStats
    """

    hierarchy: Hierarchy
    tuples: NDArray[np.int64]
    leaf_sets: NDArray[np.bool_]
    features: NDArray[np.float64]
    stats: LeafStats


#: Test-time scales of the learned contours at each level of the ``mcg`` pyramid (the pyramid
#: itself is the multiscale step; the single-scale default's four test scales at the x2 level
#: would cost ~4 s per BSDS image).
MCG_LEARNED_SCALES = (1.0,)


def _learned_single_scale(image):
    from deep.contours.api import learned_contours

    return learned_contours(image, scales=MCG_LEARNED_SCALES)


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"`preset` must be one of {sorted(PRESETS)}, got {preset!r}")


def hierarchy_for(image, preset: str = "scg", *, owt: str | None = None, contours=None,
                  arcs=None) -> Hierarchy:
    """The hierarchy a preset groups.

    ``scg*``: the single-scale gPb-owt-ucm hierarchy (``bottomup.segment`` with the preset's
    contours). ``mcg``: the hierarchies of the image pyramid aligned and combined
    (:func:`bottomup.mcg.align.combine_hierarchies`).

    ``owt`` (``"plain"`` or ``"steepest"``, default :data:`DEFAULT_OWT`) is passed to
    :func:`bottomup.segment` for every hierarchy. ``contours`` (None: gPb; ``"learned"`` or a
    callable, see :func:`bottomup.pipeline.image_to_contours`) replaces gPb at every scale; the
    hierarchies then use ``segment``'s OWT for such contours and ``owt`` must be None.
    ``arcs`` is :func:`bottomup.segment`'s, for every hierarchy; None (default): the learned arc
    scores for ``contours="learned"``, mean strengths otherwise, the hierarchies the shipped
    rankers were trained on.
    """
    _check_preset(preset)
    owt = _check_owt(owt, contours)
    from bottomup.pipeline import default_arcs

    if arcs is None:  # resolved before "learned" becomes a callable below
        arcs = default_arcs(contours)
    if preset == "mcg":
        from bottomup.mcg.align import combine_hierarchies
        from bottomup.mcg.pyramid import hierarchies_at_scales

        img = check_image(image)
        if contours == "learned":
            from bottomup.pipeline import contour_source

            contour_source("learned")  # the clear error here if torch is missing
            contours = _learned_single_scale
        return combine_hierarchies(
            hierarchies_at_scales(img, preset=PRESETS[preset][0], owt=owt, contours=contours, arcs=arcs),
            img.shape[:2])
    from bottomup.pipeline import segment

    return segment(image, PRESETS[preset][0], owt=owt, contours=contours, multiscale=False, arcs=arcs)


def candidate_pool(hierarchy: Hierarchy, quotas=SCG_QUOTAS) -> CandidatePool:
    """Group, materialise leaf sets, drop exact duplicates and compute features.

    Parameters
    ----------
    hierarchy : Hierarchy
    quotas : sequence of 4 int
        Singletons, pairs, triplets and 4-tuples (see :func:`combinatorial_grouping`).

    Returns
    -------
    pool : CandidatePool
    """
    stats = leaf_stats(hierarchy)
    tuples = combinatorial_grouping(hierarchy, quotas, adjacency=stats.edges)
    sets = tuples_to_leaf_sets(hierarchy, tuples)
    if sets.shape[0]:
        packed = np.packbits(sets, axis=1)
        _, first = np.unique(packed, axis=0, return_index=True)
        first = np.sort(first)
        tuples, sets = tuples[first], sets[first]
    feats = candidate_features(hierarchy, tuples, sets, stats)
    return CandidatePool(hierarchy, tuples, sets, feats, stats)


def rank_pool(pool: CandidatePool, n: int, *, ranker: Forest | None = None,
              dedup_threshold: float = 0.95, theta: float = THETA) -> Candidates:
    """Score a pool with the ranker, remove near-duplicates, diversify and keep the first ``n``.

    Candidates are sorted by the ranker's score; those with IoU above ``dedup_threshold`` with a
    better one are dropped (keeping ``2 n``); then :func:`bottomup.mcg.ranking.diversify` picks
    ``n`` by maximal marginal relevance (``theta = 1`` keeps the score order). The returned
    scores are the MMR values (non-increasing).
    """
    h = pool.hierarchy
    if n == 0 or pool.leaf_sets.shape[0] == 0:
        return Candidates(h.leaf_labels, np.zeros((0, h.n_leaves), bool), np.zeros((0, 4), np.int64),
                          np.zeros(0))
    forest = load_ranker(ranker_path(DEFAULT_OWT)) if ranker is None else ranker
    scores = predict_forest(forest, pool.features)
    order = np.argsort(-scores, kind="stable")
    keep = order[remove_near_duplicates(pool.leaf_sets[order], pool.stats.area,
                                        n if theta >= 1 else 2 * n, threshold=dedup_threshold)]
    if theta < 1:
        pick, values = diversify(pool.leaf_sets[keep], pool.stats.area, scores[keep], n,
                                 theta=theta)
        keep = keep[pick]
    else:
        values = scores[keep]
    sets = pool.leaf_sets[keep]
    box = pool.stats.box
    big = np.iinfo(np.int64).max // 4
    boxes = np.stack([
        np.where(sets, box[:, 0], big).min(axis=1),
        np.where(sets, box[:, 1], big).min(axis=1),
        np.where(sets, box[:, 2], 0).max(axis=1),
        np.where(sets, box[:, 3], 0).max(axis=1),
    ], axis=1)
    return Candidates(h.leaf_labels, sets, boxes, values)


def proposals(image, n: int = 1000, preset: str = "scg", *, quotas=None,
              ranker: Forest | None = None, hierarchy: Hierarchy | None = None,
              theta: float = THETA, max_leaves: int = MAX_LEAVES,
              owt: str | None = None, contours=None) -> Candidates:
    """Ranked object proposals of an image (SCG: single-scale combinatorial grouping [1]_ [2]_).

    Parameters
    ----------
    image : (H, W[, C]) array_like
        Any dtype and channel layout the image contract accepts.
    n : int, optional
        Number of proposals to return (fewer when the image has fewer distinct candidates).
    preset : {"scg", "scg-quality", "mcg"}
        ``scg``: gPb contours of the ``mcg`` preset; ``scg-quality``: gPb ``quality`` contours; ``mcg``: the
        multiscale hierarchy (scales 2, 1, 0.5, gPb preset ``mcg``).
    quotas : sequence of 4 int, optional
        Singletons, pairs, triplets and 4-tuples explored (default :data:`SCG_QUOTAS`).
    ranker : Forest, optional
        Ranking forest (default: the shipped one trained on hierarchies of the same preset and
        ``owt``, :func:`bottomup.mcg.ranking.ranker_path`).
    hierarchy : Hierarchy, optional
        Group this hierarchy instead of computing one from ``image`` (its shape must match).
    theta : float, optional
        Maximal-marginal-relevance weight of the score (MCG 0.7); 1 ranks by score alone.
    max_leaves : int, optional
        The hierarchy is first reduced to its cut into this many regions
        (:func:`bottomup.mcg.grouping.coarsen_leaves`; the multiscale hierarchy has thousands of
        leaves, which only widen leaf sets; SCG's usually has fewer than 1 000).
    owt : {None, "plain", "steepest"}, optional
        Oriented watershed of the hierarchies (``owt`` of :func:`bottomup.segment`; default
        :data:`DEFAULT_OWT`). Selects the shipped ranker trained on that kind of hierarchy.
    contours : None, "learned" or callable, optional
        Contour source of the hierarchies (:func:`bottomup.pipeline.image_to_contours`): None is
        gPb; ``"learned"`` the CNN of ``deep`` (needs torch), with its own shipped rankers; a
        callable is ranked with the learned-contour forests. ``owt`` must then be None.

    Returns
    -------
    candidates : Candidates
        Ranked by score, no two with IoU above 0.95; masks on demand.

    Raises
    ------
    ValueError
        If ``n`` is negative or ``preset`` unknown; TypeError if ``n`` is not an int.

    Examples
    --------
    >>> img = np.zeros((40, 40, 3)); img[10:30, 10:30] = 1.0
    >>> c = proposals(img, n=5)
    >>> len(c) <= 5, c.masks().shape[1:]
    (True, (40, 40))
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"`n` must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"`n` must be >= 0, got {n}")
    if not 0.0 <= theta <= 1.0:
        raise ValueError(f"`theta` must be in [0, 1], got {theta}")
    _check_preset(preset)
    owt = _check_owt(owt, contours)
    img = check_image(image)
    if hierarchy is None:
        hierarchy = hierarchy_for(img, preset, owt=owt, contours=contours)
    elif hierarchy.shape != img.shape[:2]:
        raise ValueError(
            f"`hierarchy` (shape {hierarchy.shape}) must have the shape of `image` ({img.shape[:2]})"
        )
    q = PRESETS[preset][1] if quotas is None else quotas
    hierarchy = coarsen_leaves(hierarchy, max_leaves)
    if n == 0:
        return rank_pool(candidate_pool(hierarchy, (1, 0, 0, 0)), 0)
    if ranker is None:
        ranker = load_ranker(ranker_path(owt or DEFAULT_OWT, preset,
                                         contours=None if contours is None else "learned"))
    return rank_pool(candidate_pool(hierarchy, q), int(n), ranker=ranker, theta=theta)


def proposals_file(in_path, out_path, *, n: int = 1000, preset: str = "scg", contours=None) -> dict:
    """Proposals of one image file written atomically as COCO-style JSON (the ``proposals`` job task).

    The file holds ``{"image": name, "height", "width", "preset", "proposals": [records]}`` with
    the records of :meth:`Candidates.to_coco`.
    """
    import json

    from bottomup.io import read_image
    from bottomup.jobs import atomic_path

    img = read_image(in_path)
    cands = proposals(img, n=n, preset=preset, contours=contours)
    name = os.path.splitext(os.path.basename(os.fspath(in_path)))[0]
    doc = {"image": name, "height": int(img.shape[0]), "width": int(img.shape[1]),
           "preset": preset, "contours": contours or "gpb", "proposals": cands.to_coco(image_id=name)}
    with atomic_path(out_path) as tmp:
        with open(tmp, "w") as fh:
            json.dump(doc, fh)
    return {"n": len(cands), "shape": list(img.shape[:2])}
