"""SCG / MCG object proposals: hierarchy -> combinatorial grouping -> features -> ranking.

``proposals`` composes the steps. SCG groups the single-scale hierarchy of the contour source;
MCG groups the hierarchies of an image pyramid (scales :data:`MCG_SCALES`) aligned and combined
(:func:`bottomup.hierarchy.multiscale.multiscale_hierarchy`). The shipped ranker is chosen from
the method and the source's ``ranker`` family (:func:`bottomup.mcg.ranking.ranker_path`).

References
----------
.. [1] P. Arbelaez, J. Pont-Tuset, J. T. Barron, F. Marques, J. Malik, "Multiscale Combinatorial
       Grouping", CVPR 2014. :DOI:`10.1109/CVPR.2014.49`
.. [2] J. Pont-Tuset, P. Arbelaez, J. T. Barron, F. Marques, J. Malik, "Multiscale Combinatorial
       Grouping for Image Segmentation and Object Proposal Generation", TPAMI 39(1), 2017.
       :DOI:`10.1109/TPAMI.2016.2537320`
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bottomup.contours.source import ContourSource, GPb, get_source
from bottomup.hierarchy import Hierarchy
from bottomup.hierarchy.multiscale import multiscale_hierarchy
from bottomup.masks import union_boxes
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
from bottomup.pipeline import arc_scorer, single_scale_hierarchy
from bottomup.validate import check_image

__all__ = ["METHODS", "MCG_SCALES", "PROPOSAL_GPB", "CandidatePool", "candidate_pool", "hierarchy_for",
           "legacy_preset", "proposal_source", "proposals", "rank_pool"]

#: Values of ``proposals(method=...)``.
METHODS = ("scg", "mcg")
#: MCG's image scales: x2, x1, x0.5 of the image side ([2]_, section 3.1).
MCG_SCALES = (2.0, 1.0, 0.5)
#: MMR weight of the score (MCG's ranking with diversity, [2]_ section 5).
THETA = 0.7
#: Leaves kept before grouping (see :func:`proposals`).
MAX_LEAVES = 1000
#: The gPb configuration the shipped gPb rankers were trained on (``contours=None``).
PROPOSAL_GPB = GPb("medium", owt="steepest", multiscale=False)


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
    forest = load_ranker(ranker_path("scg", PROPOSAL_GPB.ranker)) if ranker is None else ranker
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
    return Candidates(h.leaf_labels, sets, union_boxes(pool.stats.box, sets), values)


def hierarchy_for(image, method: str = "scg", contours=None, *, arcs=None) -> Hierarchy:
    """The hierarchy a method groups.

    Parameters
    ----------
    image : (H, W[, C]) array_like
    method : {"scg", "mcg"}
        ``scg``: the single-scale hierarchy of the source (``source.single_scale()``); ``mcg``: the
        hierarchies of the :data:`MCG_SCALES` pyramid (``source.at_level()`` at each) aligned and
        combined with MCG's sigmoid.
    contours : str, ContourSource, callable or None
        As :func:`bottomup.segment`; None (default): :data:`PROPOSAL_GPB`, the gPb configuration
        of the shipped gPb rankers.
    arcs : None, "mean", "learned" or ArcScorer
        As :func:`bottomup.segment`, for every hierarchy (None: the source's).
    """
    _check_method(method)
    return _hierarchy_for(check_image(image), method, proposal_source(contours), arcs)


def _hierarchy_for(img, method: str, source: ContourSource, arcs=None) -> Hierarchy:
    scorer = arc_scorer(source.arcs if arcs is None else arcs)
    if method == "scg":
        return single_scale_hierarchy(img, source.single_scale(), scorer)
    level = source.at_level()
    return multiscale_hierarchy(img, lambda lv: single_scale_hierarchy(lv, level, scorer), MCG_SCALES)


def proposal_source(contours) -> ContourSource:
    """The contour source of :func:`proposals`: :data:`PROPOSAL_GPB` for None, else
    :func:`bottomup.contours.get_source`'s."""
    return PROPOSAL_GPB if contours is None else get_source(contours)


def _check_method(method) -> None:
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")


def legacy_preset(preset: str = "scg", owt: str | None = None) -> tuple[str, ContourSource]:
    """``(method, contours)`` of a proposal preset and ``owt`` of releases before 0.2.

    For files and weights saved with those settings (the deep heads store theirs): ``"scg"`` and
    ``"mcg"`` group gPb ``medium`` hierarchies, ``"scg-quality"`` gPb ``quality`` ones, with the
    given oriented watershed rule (default ``"steepest"``).

    Examples
    --------
    >>> method, source = legacy_preset("scg-quality")
    >>> method, source.preset, source.owt
    ('scg', 'quality', 'steepest')
    """
    if preset not in ("scg", "scg-quality", "mcg"):
        raise ValueError(f"`preset` must be one of ('scg', 'scg-quality', 'mcg'), got {preset!r}")
    source = GPb("quality" if preset == "scg-quality" else "medium", owt=owt or "steepest", multiscale=False)
    return ("mcg" if preset == "mcg" else "scg"), source


def _legacy_proposal_args(method, contours, deprecated: dict):
    """Map the deprecated ``preset`` and ``owt`` keywords to ``method`` and ``contours``."""
    unknown = set(deprecated) - {"preset", "owt"}
    if unknown:
        raise TypeError(f"proposals() got unexpected keyword argument(s) {sorted(unknown)}")
    if not deprecated:
        return method, contours
    preset, owt = deprecated.get("preset"), deprecated.get("owt")
    if contours is None:
        method_, contours = legacy_preset(preset or "scg", owt)
        method = method_ if preset is not None else method
    elif owt is not None:
        raise ValueError(f"`owt` applies to gPb hierarchies; with `contours` it must be None, got {owt!r}")
    elif preset is not None:
        method = legacy_preset(preset)[0]
    warnings.warn(f"proposals(): `preset` and `owt` are deprecated; pass method={method!r}, "
                  f"contours={contours!r}", DeprecationWarning, stacklevel=3)
    return method, contours


def proposals(image, n: int = 1000, method: str = "scg", *, contours=None, hierarchy: Hierarchy | None = None,
              ranker: Forest | None = None, quotas=SCG_QUOTAS, theta: float = THETA,
              max_leaves: int = MAX_LEAVES, **deprecated) -> Candidates:
    """Ranked object proposals of an image (SCG or MCG [1]_ [2]_).

    Parameters
    ----------
    image : (H, W[, C]) array_like
        Any dtype and channel layout the image contract accepts.
    n : int, optional
        Number of proposals to return (fewer when the image has fewer distinct candidates).
    method : {"scg", "mcg"}
        ``scg``: single-scale combinatorial grouping; ``mcg``: the multiscale hierarchy.
    contours : str, ContourSource, callable or None
        Contour source of the hierarchies (see :func:`hierarchy_for`); None: the gPb configuration
        of the shipped rankers. Its ``ranker`` attribute picks the shipped forest.
    hierarchy : Hierarchy, optional
        Group this hierarchy instead of computing one from ``image`` (its shape must match).
    ranker : Forest, optional
        Ranking forest (default: the shipped one for the method and the source).
    quotas : sequence of 4 int, optional
        Singletons, pairs, triplets and 4-tuples explored (:data:`SCG_QUOTAS`).
    theta : float, optional
        Maximal-marginal-relevance weight of the score (MCG 0.7); 1 ranks by score alone.
    max_leaves : int, optional
        The hierarchy is first reduced to its cut into this many regions
        (:func:`bottomup.mcg.grouping.coarsen_leaves`).
    **deprecated
        ``preset`` ("scg", "scg-quality", "mcg") and ``owt``: one more release, with a warning.

    Returns
    -------
    candidates : Candidates
        Ranked by score, no two with IoU above 0.95; masks on demand.

    Raises
    ------
    ValueError
        If ``n`` is negative or ``method`` unknown; TypeError if ``n`` is not an int.

    Examples
    --------
    >>> img = np.zeros((40, 40, 3)); img[10:30, 10:30] = 1.0
    >>> c = proposals(img, n=5)
    >>> len(c) <= 5, c.masks().shape[1:]
    (True, (40, 40))
    """
    method, contours = _legacy_proposal_args(method, contours, deprecated)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"`n` must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"`n` must be >= 0, got {n}")
    if not 0.0 <= theta <= 1.0:
        raise ValueError(f"`theta` must be in [0, 1], got {theta}")
    _check_method(method)
    source = proposal_source(contours)
    img = check_image(image)
    if hierarchy is None:
        hierarchy = _hierarchy_for(img, method, source)
    elif hierarchy.shape != img.shape[:2]:
        raise ValueError(
            f"`hierarchy` (shape {hierarchy.shape}) must have the shape of `image` ({img.shape[:2]})")
    hierarchy = coarsen_leaves(hierarchy, max_leaves)
    if n == 0:
        return rank_pool(candidate_pool(hierarchy, (1, 0, 0, 0)), 0)
    if ranker is None:
        ranker = load_ranker(ranker_path(method, source.ranker))
    return rank_pool(candidate_pool(hierarchy, quotas), int(n), ranker=ranker, theta=theta)
