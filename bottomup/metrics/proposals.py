"""Object-proposal quality: best overlap per object, average best overlap, recall at IoU.

The measures of MCG [1]_ (and of the proposal literature before it): for each ground-truth
object, the best Jaccard index (IoU) among the first ``N`` candidates; over a dataset, the mean of
those best overlaps over all objects (average best overlap, ABO, MCG's ``J_i``), the fraction
of objects whose best overlap reaches 0.5 / 0.7 / 0.85 (recall), and, given object classes, the
class-level ``J_c`` (pooled pixels of each object's best candidate), each as a function of ``N``.
Masks are compared on non-void pixels only; boxes by box IoU against the objects' boxes. When
several candidates tie for an object's best overlap, the first in rank order is its best.

The split follows torchmetrics: ``_validate_args``, ``_update`` (one image -> its ``(G, n_N)``
best overlaps: the sufficient statistic, concatenated over images) and ``_compute`` (ABO and
recall over every object of the dataset, so an image with many objects weighs more, as in MCG).

References
----------
.. [1] J. Pont-Tuset, P. Arbelaez, J. T. Barron, F. Marques, J. Malik, "Multiscale
       Combinatorial Grouping for Image Segmentation and Object Proposal Generation",
       TPAMI 39(1), 2017. :DOI:`10.1109/TPAMI.2016.2537320`
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..masks import _box_overlaps, _check_mask_stack, _mask_overlaps
from ..validate import check_labels

__all__ = [
    "ProposalParams",
    "ProposalScores",
    "ProposalRecall",
    "best_overlaps_masks",
    "best_overlaps_leaves",
    "best_overlaps_boxes",
    "overlaps_leaves",
    "proposal_scores",
]

#: Bytes of float work memory per chunk of candidates in the mask path.
_CHUNK_BYTES = 64 * 2**20


def _as_int_tuple(values, name: str) -> tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(values))
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"`{name}` must be a non-empty list of positive integers, got {values!r}")
    if arr.min() < 1:
        raise ValueError(f"`{name}` must be positive integers, got {arr.tolist()}")
    return tuple(int(v) for v in arr)


def _as_float_tuple(values, name: str) -> tuple[float, ...]:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0 or not np.all((arr > 0) & (arr <= 1)):
        raise ValueError(f"`{name}` must be a non-empty list of values in (0, 1], got {values!r}")
    return tuple(float(v) for v in arr)


@dataclass(frozen=True)
class ProposalParams:
    """The protocol of a proposal evaluation, frozen (like COCO's ``Params``).

    Parameters
    ----------
    n_candidates : sequence of int, optional
        The ``N`` values: candidates are taken in the given (ranked) order and the first ``N``
        are scored. An image with fewer than ``N`` candidates uses all it has.
    iou_thresholds : sequence of float, optional
        Recall thresholds (MCG: 0.5, 0.7, 0.85).
    """

    n_candidates: tuple[int, ...] = (10, 100, 1000)
    iou_thresholds: tuple[float, ...] = (0.5, 0.7, 0.85)

    def __post_init__(self):
        object.__setattr__(self, "n_candidates", _as_int_tuple(self.n_candidates, "n_candidates"))
        object.__setattr__(
            self, "iou_thresholds", _as_float_tuple(self.iou_thresholds, "iou_thresholds")
        )


@dataclass(frozen=True)
class ProposalScores:
    """Dataset-level proposal scores.

    Attributes
    ----------
    params : ProposalParams
    abo : (n_N,) ndarray of float64
        Average best overlap (MCG ``J_i``, instance level) at each ``N``; NaN with no object.
    recall : (n_T, n_N) ndarray of float64
        Fraction of objects with best overlap ``>=`` each threshold; NaN with no object.
    class_jaccard : (n_N,) ndarray of float64
        MCG's class-level ``J_c``: per class, the best candidate of every object contributes its
        intersection (true positives) and union (TP + FP + FN pixels); the class score is
        ``sum(intersections) / sum(unions)``, then the mean over classes. NaN unless every image
        came with ``gt_labels``.
    best_overlaps : (n_objects, n_N) ndarray of float64
        Each object's best overlap, images concatenated in the order seen.
    """

    params: ProposalParams
    abo: np.ndarray
    recall: np.ndarray
    class_jaccard: np.ndarray
    best_overlaps: np.ndarray = field(repr=False)

    @property
    def n_objects(self) -> int:
        """Number of ground-truth objects scored."""
        return int(self.best_overlaps.shape[0])


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _check_void(void, shape) -> np.ndarray | None:
    if void is None:
        return None
    arr = np.asarray(void)
    if arr.shape != tuple(shape):
        raise ValueError(f"`void` (shape {arr.shape}) must have the image shape {tuple(shape)}")
    return arr.astype(bool)


def _check_n(n_candidates) -> tuple[int, ...]:
    return _as_int_tuple(n_candidates, "n_candidates")


def _best_stats(
    inter: np.ndarray, union: np.ndarray, n_candidates: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(K, G)`` counts -> ``(G, n_N)`` best IoU among the first N candidates, and the
    intersection and union of that best candidate (all 0 when K = 0)."""
    k, g = inter.shape
    shape = (g, len(n_candidates))
    if k == 0 or g == 0:
        return np.zeros(shape), np.zeros(shape), np.zeros(shape)
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    best, ib, ub = np.empty(shape), np.empty(shape), np.empty(shape)
    cols = np.arange(g)
    for j, n in enumerate(n_candidates):
        idx = np.argmax(iou[: min(n, k)], axis=0)  # first best, in rank order
        best[:, j], ib[:, j], ub[:, j] = iou[idx, cols], inter[idx, cols], union[idx, cols]
    return best, ib, ub


def _union(inter, area_c, area_g) -> np.ndarray:
    return area_c[:, None] + area_g[None, :] - inter


# --------------------------------------------------------------------------------------------
# per-image best overlaps (the _update step)
# --------------------------------------------------------------------------------------------


def _validate_masks(gt_masks, candidate_masks, void):
    gt = _check_mask_stack(gt_masks, "gt_masks")
    cand = _check_mask_stack(candidate_masks, "candidate_masks", gt.shape[1:])
    h, w = gt.shape[1:]
    valid = _check_void(void, (h, w))
    valid = np.ones((h, w), bool) if valid is None else ~valid
    return gt, cand, valid


def best_overlaps_masks(gt_masks, candidate_masks, n_candidates, *, void=None) -> np.ndarray:
    """Best IoU of each ground-truth mask among the first ``N`` candidate masks.

    Parameters
    ----------
    gt_masks : (G, H, W) array_like of bool
        Ground-truth objects (they may overlap).
    candidate_masks : (K, H, W) array_like of bool
        Candidates in ranked order.
    n_candidates : sequence of int
        The ``N`` values.
    void : (H, W) array_like of bool, optional
        Pixels left out of every area (VOC's 255 border): IoU on non-void pixels only, as MCG.

    Returns
    -------
    best : (G, n_N) ndarray of float64
        0 where there is no candidate; ``(0, n_N)`` with no object.

    Notes
    -----
    Intersections are one matrix product per chunk of candidates (float32, exact below
    ``2**24`` pixels; float64 beyond), so memory stays near 64 MB for thousands of candidates.
    """
    ns = _check_n(n_candidates)
    gt, cand, valid = _validate_masks(gt_masks, candidate_masks, void)
    return _best_stats(*_counts_masks(gt, cand, valid), ns)[0]


def _counts_masks(gt, cand, valid) -> tuple[np.ndarray, np.ndarray]:
    """Intersections and unions ``(K, G)`` of validated masks on the ``valid`` pixels."""
    k, g = cand.shape[0], gt.shape[0]
    if k == 0 or g == 0:
        return np.zeros((k, g)), np.zeros((k, g))
    inter, area_c, area_g = _mask_overlaps(cand, gt, valid, _CHUNK_BYTES)
    return inter, _union(inter, area_c, area_g)


def _leaf_incidence(leaf_sets, n_leaves: int) -> np.ndarray:
    if isinstance(leaf_sets, np.ndarray) and leaf_sets.ndim == 2 and leaf_sets.dtype == bool:
        if leaf_sets.shape[1] < n_leaves:
            raise ValueError(
                f"`leaf_sets` incidence (shape {leaf_sets.shape}) must have one column per leaf "
                f"of `partition` (at least {n_leaves})"
            )
        return leaf_sets
    if isinstance(leaf_sets, np.ndarray) and leaf_sets.ndim == 2:
        raise TypeError(
            f"`leaf_sets` as a 2-D array must be a bool (K, n_leaves) incidence, "
            f"got dtype {leaf_sets.dtype}"
        )
    if not isinstance(leaf_sets, Sequence):
        raise TypeError(
            "`leaf_sets` must be a bool (K, n_leaves) incidence or a sequence of leaf-id arrays, "
            f"got {type(leaf_sets).__name__}"
        )
    inc = np.zeros((len(leaf_sets), n_leaves), dtype=bool)
    for i, ids in enumerate(leaf_sets):
        ids = np.asarray(ids)
        if ids.size == 0:
            continue
        if not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 1:
            raise ValueError(f"`leaf_sets[{i}]` must be a 1-D array of leaf ids, got {ids!r}")
        if ids.min() < 0 or ids.max() >= n_leaves:
            raise ValueError(
                f"`leaf_sets[{i}]` holds leaf ids outside 0..{n_leaves - 1} of `partition`"
            )
        inc[i, ids] = True
    return inc


def best_overlaps_leaves(gt_masks, partition, leaf_sets, n_candidates, *, void=None) -> np.ndarray:
    """Best IoU of each ground-truth mask among candidates given as unions of leaf regions.

    Parameters
    ----------
    gt_masks : (G, H, W) array_like of bool
        Ground-truth objects.
    partition : (H, W) array_like of int
        Base partition, dense labels ``0..L-1`` (the leaves of the hierarchy).
    leaf_sets : (K, L') ndarray of bool or sequence of (n_k,) int arrays
        Candidate ``k`` is the union of the leaves ``leaf_sets[k]``, in ranked order. An
        incidence matrix may have more columns than ``partition`` has labels (``L' >= L``:
        leaves without pixels).
    n_candidates : sequence of int
        The ``N`` values.
    void : (H, W) array_like of bool, optional
        Pixels left out of every area.

    Returns
    -------
    best : (G, n_N) ndarray of float64
        Equal to :func:`best_overlaps_masks` on the materialised masks.

    Notes
    -----
    Exact and fast: with ``A[g, l]`` the non-void pixels of object ``g`` in leaf ``l`` and
    ``a[l]`` the non-void leaf areas, intersections are ``incidence @ A.T`` and candidate areas
    ``incidence @ a``: ``O(H W + K L G)``, never a candidate mask.
    """
    ns = _check_n(n_candidates)
    return _best_stats(
        *_counts_leaves(*_validate_leaves(gt_masks, partition, leaf_sets, void)), ns
    )[0]


def overlaps_leaves(gt_masks, partition, leaf_sets, *, void=None) -> np.ndarray:
    """IoU of every candidate with every ground-truth mask, candidates given as unions of leaves.

    Parameters
    ----------
    gt_masks, partition, leaf_sets, void
        As :func:`best_overlaps_leaves`.

    Returns
    -------
    iou : (K, G) ndarray of float64
        IoU on non-void pixels (0 where the union is empty); ``iou.max(axis=0)`` is each object's
        best overlap among all candidates.

    Examples
    --------
    >>> part = np.array([[0, 0, 1, 1]])
    >>> gt = np.array([[[True, True, True, False]]])
    >>> overlaps_leaves(gt, part, np.array([[True, False], [True, True]]))
    array([[0.66666667],
           [0.75      ]])
    """
    inter, union = _counts_leaves(*_validate_leaves(gt_masks, partition, leaf_sets, void))
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _validate_leaves(gt_masks, partition, leaf_sets, void):
    gt = _check_mask_stack(gt_masks, "gt_masks")
    labels = check_labels(partition, name="partition", shape=gt.shape[1:])
    if labels.size and labels.min() < 0:
        raise ValueError("`partition` must hold labels 0..L-1, got negative labels")
    n_leaves = int(labels.max()) + 1 if labels.size else 0
    inc = _leaf_incidence(leaf_sets, n_leaves)
    n_leaves = inc.shape[1]
    valid = _check_void(void, labels.shape)
    valid = np.ones(labels.shape, bool) if valid is None else ~valid
    return gt, labels, inc, valid


def _counts_leaves(gt, labels, inc, valid) -> tuple[np.ndarray, np.ndarray]:
    """Intersections and unions ``(K, G)`` through the GT x leaf area table."""
    g, k, n_leaves = gt.shape[0], inc.shape[0], inc.shape[1]
    if k == 0 or g == 0:
        return np.zeros((k, g)), np.zeros((k, g))
    leaf_area = np.bincount(labels[valid], minlength=n_leaves).astype(np.float64)
    table = np.zeros((g, n_leaves), dtype=np.float64)
    for i in range(g):
        table[i] = np.bincount(labels[gt[i] & valid], minlength=n_leaves)
    incf = inc.astype(np.float64)
    inter = incf @ table.T
    area_c = incf @ leaf_area
    return inter, _union(inter, area_c, table.sum(axis=1))


def best_overlaps_boxes(gt_boxes, candidate_boxes, n_candidates) -> np.ndarray:
    """Best box IoU of each ground-truth box among the first ``N`` candidate boxes.

    Parameters
    ----------
    gt_boxes : (G, 4) array_like
        ``(r0, c0, r1, c1)`` half-open (see :mod:`bottomup.masks`): of masks,
        ``xyxy_to_boxes(masks_to_boxes(masks))``; of candidates, ``Candidates.boxes``.
    candidate_boxes : (K, 4) array_like
        Same layout, ranked.
    n_candidates : sequence of int

    Returns
    -------
    best : (G, n_N) ndarray of float64
    """
    ns = _check_n(n_candidates)
    return _best_stats(*_counts_boxes(gt_boxes, candidate_boxes), ns)[0]


def _check_boxes(boxes, name: str) -> np.ndarray:
    arr = np.asarray(boxes)
    if arr.size == 0:
        arr = arr.reshape(0, 4)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"`{name}` must be a numeric (K, 4) array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"`{name}` must have shape (K, 4) as (r0, c0, r1, c1), got {arr.shape}")
    if np.any(arr[:, 2] < arr[:, 0]) or np.any(arr[:, 3] < arr[:, 1]):
        raise ValueError(f"`{name}` must satisfy r1 >= r0 and c1 >= c0 (row, col half-open)")
    return arr


def _counts_boxes(gt_boxes, candidate_boxes) -> tuple[np.ndarray, np.ndarray]:
    gt = _check_boxes(gt_boxes, "gt_boxes")
    cand = _check_boxes(candidate_boxes, "candidate_boxes")
    inter, area_c, area_g = _box_overlaps(cand.astype(np.float64), gt.astype(np.float64))
    return inter, _union(inter, area_c, area_g)


# --------------------------------------------------------------------------------------------
# compute
# --------------------------------------------------------------------------------------------


def _compute(
    best: np.ndarray,
    params: ProposalParams,
    inter: np.ndarray | None = None,
    union: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> ProposalScores:
    n_t, n_n = len(params.iou_thresholds), len(params.n_candidates)
    jc = np.full(n_n, np.nan)
    if best.shape[0] == 0:
        return ProposalScores(params, np.full(n_n, np.nan), np.full((n_t, n_n), np.nan), jc, best)
    thr = np.asarray(params.iou_thresholds)[:, None, None]
    recall = (best[None] >= thr).mean(axis=1)
    if labels is not None:
        per_class = []
        for c in np.unique(labels):
            sel = labels == c
            u = union[sel].sum(axis=0)
            per_class.append(np.where(u > 0, inter[sel].sum(axis=0) / np.where(u > 0, u, 1), 0))
        jc = np.mean(per_class, axis=0)
    return ProposalScores(params, best.mean(axis=0), recall, jc, best)


def proposal_scores(best_overlaps, params: ProposalParams | None = None) -> ProposalScores:
    """ABO and recall from best overlaps of all objects of a dataset.

    Parameters
    ----------
    best_overlaps : (n_objects, n_N) array_like of float
        Rows from the ``best_overlaps_*`` functions, concatenated over images.
    params : ProposalParams, optional
        Must have the same ``n_candidates`` the rows were computed with (default params).

    Returns
    -------
    scores : ProposalScores

    Examples
    --------
    >>> s = proposal_scores([[0.9], [0.6]], ProposalParams(n_candidates=[5]))
    >>> s.abo.tolist(), s.recall[:, 0].tolist()
    ([0.75], [1.0, 0.5, 0.5])
    """
    params = ProposalParams() if params is None else params
    best = np.asarray(best_overlaps, dtype=np.float64)
    if best.ndim != 2 or best.shape[1] != len(params.n_candidates):
        raise ValueError(
            f"`best_overlaps` must be (n_objects, {len(params.n_candidates)}) for n_candidates="
            f"{params.n_candidates}, got shape {best.shape}"
        )
    return _compute(best, params)


class ProposalRecall:
    """Accumulate best overlaps over images; compute ABO, recall and ``J_c`` as functions of ``N``.

    Parameters
    ----------
    params : ProposalParams, optional

    Examples
    --------
    >>> gt = np.zeros((1, 4, 4), bool); gt[0, :2] = True
    >>> cands = np.zeros((2, 4, 4), bool); cands[0, :1] = True; cands[1, :2] = True
    >>> m = ProposalRecall(ProposalParams(n_candidates=[1, 2]))
    >>> m.update_masks(gt, cands)
    >>> m.compute().abo.tolist()
    [0.5, 1.0]
    """

    def __init__(self, params: ProposalParams | None = None):
        self.params = ProposalParams() if params is None else params
        self.reset()

    def reset(self) -> None:
        """Forget every image seen."""
        self._best: list[np.ndarray] = []
        self._inter: list[np.ndarray] = []
        self._union: list[np.ndarray] = []
        self._labels: list[np.ndarray | None] = []

    def _add(self, counts, gt_labels, n_objects: int) -> None:
        labels = None
        if gt_labels is not None:
            labels = np.asarray(gt_labels)
            if labels.shape != (n_objects,) or (
                labels.size and not np.issubdtype(labels.dtype, np.integer)
            ):
                raise ValueError(
                    f"`gt_labels` must be ({n_objects},) integer class labels, one per object, "
                    f"got shape {labels.shape} and dtype {labels.dtype}"
                )
        best, inter, union = _best_stats(*counts, self.params.n_candidates)
        self._best.append(best)
        self._inter.append(inter)
        self._union.append(union)
        self._labels.append(None if labels is None else labels.astype(np.int64))

    def update_masks(self, gt_masks, candidate_masks, *, gt_labels=None, void=None) -> None:
        """Add one image with candidates as masks (see :func:`best_overlaps_masks`).

        Parameters
        ----------
        gt_masks : (G, H, W) array_like of bool
        candidate_masks : (K, H, W) array_like of bool
        gt_labels : (G,) array_like of int, optional
            Object classes, needed for ``class_jaccard``.
        void : (H, W) array_like of bool, optional
        """
        gt, cand, valid = _validate_masks(gt_masks, candidate_masks, void)
        self._add(_counts_masks(gt, cand, valid), gt_labels, gt.shape[0])

    def update_leaves(self, gt_masks, partition, leaf_sets, *, gt_labels=None, void=None) -> None:
        """Add one image with candidates as leaf sets (see :func:`best_overlaps_leaves`).

        Parameters
        ----------
        gt_masks : (G, H, W) array_like of bool
        partition : (H, W) array_like of int
        leaf_sets : (K, L) ndarray of bool or sequence of int arrays
        gt_labels : (G,) array_like of int, optional
        void : (H, W) array_like of bool, optional
        """
        args = _validate_leaves(gt_masks, partition, leaf_sets, void)
        self._add(_counts_leaves(*args), gt_labels, args[0].shape[0])

    def update_boxes(self, gt_boxes, candidate_boxes, *, gt_labels=None) -> None:
        """Add one image with boxes (see :func:`best_overlaps_boxes`).

        Parameters
        ----------
        gt_boxes : (G, 4) array_like
        candidate_boxes : (K, 4) array_like
        gt_labels : (G,) array_like of int, optional
        """
        inter, union = _counts_boxes(gt_boxes, candidate_boxes)
        self._add((inter, union), gt_labels, inter.shape[1])

    def compute(self) -> ProposalScores:
        """ABO, recall and ``J_c`` over every object seen (NaN when none)."""
        n_n = len(self.params.n_candidates)
        if not self._best:
            return _compute(np.zeros((0, n_n)), self.params)
        labels = None
        if all(lab is not None for lab in self._labels):
            labels = np.concatenate(self._labels)
        return _compute(
            np.concatenate(self._best),
            self.params,
            np.concatenate(self._inter),
            np.concatenate(self._union),
            labels,
        )
