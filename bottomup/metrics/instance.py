"""Instance segmentation: AP^r (SDS) and COCO-style mask AP.

A detection is a mask with a class and a score. Per class, detections are ranked by score over
the whole dataset; each is matched greedily, in that order, to the not-yet-matched ground-truth
instance of its class and image with the highest mask IoU, if that IoU reaches the threshold
(true positive); otherwise it is a false positive (duplicates included). Average precision is
then read off the precision/recall curve:

* ``interpolation="voc"``: area under the monotone (upper-envelope) precision curve, the
  VOC 2010+ rule that the SDS code uses for AP^r [1]_ (``VOCap``);
* ``interpolation="coco101"``: COCO's mean of the envelope sampled at recall
  ``0, 0.01, ..., 1`` [2]_, which with ``InstanceParams.coco()`` reproduces
  ``pycocotools.cocoeval.COCOeval(iouType="segm")`` ``stats[0]`` (area range "all",
  ``maxDets=100``).

The matching is COCO's ``evaluateImg`` in both cases (a detection prefers a regular instance to a
crowd one; among instances with the same IoU the later one wins). SDS's own code differs only in
ties and in asking for IoU *strictly* above the threshold; we use ``>=`` as COCO and VOC do.

Crowd and void
--------------
* ``gt_crowd`` marks crowd ground truth (COCO ``iscrowd``; VOC "difficult" can be passed the same
  way). Crowd instances are not counted as positives; their IoU with a detection is
  ``|D ∩ G| / |D|``; a detection whose match is a crowd instance is ignored (neither TP nor FP),
  and a crowd instance may absorb any number of detections. Same rule for AP^r and COCO AP.
* ``void`` marks pixels (VOC's 255 border) left out of every mask area and intersection, as the
  SDS and VOC evaluations do. With ``void=None`` nothing is left out (COCO).

The split follows torchmetrics: ``_validate_args`` checks one image, ``_update`` turns it into
per-class match records (scores, matched and ignored flags per threshold, number of positives:
the sufficient statistics), ``_compute`` ranks the records of all images and integrates.

References
----------
.. [1] B. Hariharan, P. Arbelaez, R. Girshick, J. Malik, "Simultaneous Detection and
       Segmentation", ECCV 2014. :DOI:`10.1007/978-3-319-10584-0_20`
.. [2] T.-Y. Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014.
       :DOI:`10.1007/978-3-319-10602-1_48`
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ..masks import _check_mask_stack, _iou, _mask_overlaps, rle_to_masks
from .semantic import _check_n_classes

__all__ = [
    "InstanceParams",
    "InstanceAPResult",
    "InstanceAP",
    "mask_iou",
]


# --------------------------------------------------------------------------------------------
# protocol
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceParams:
    """The protocol of an instance-segmentation evaluation, frozen (as COCO's ``Params``).

    Parameters
    ----------
    iou_thresholds : sequence of float
        Mask IoU thresholds ``T`` (SDS AP^r: 0.5 and 0.7; AP^r_vol: 0.1..0.9; COCO: 0.5:0.05:0.95).
    interpolation : {"voc", "coco101"}
        How AP integrates the precision/recall curve (see the module notes).
    rec_thresholds : sequence of float, optional
        Recall sampling points for ``"coco101"`` (default ``np.linspace(0, 1, 101)``).
    max_dets : int or None, optional
        Keep only the best ``max_dets`` detections per image and class (COCO: 100; SDS: all).

    Examples
    --------
    >>> InstanceParams.sds().iou_thresholds
    (0.5, 0.7)
    >>> len(InstanceParams.coco().iou_thresholds), InstanceParams.coco().max_dets
    (10, 100)
    """

    iou_thresholds: tuple[float, ...]
    interpolation: str = "voc"
    rec_thresholds: tuple[float, ...] = field(
        default_factory=lambda: tuple(float(x) for x in np.linspace(0.0, 1.00, 101))
    )
    max_dets: int | None = None

    def __post_init__(self):
        thr = np.atleast_1d(np.asarray(self.iou_thresholds, dtype=np.float64))
        if thr.ndim != 1 or thr.size == 0 or not np.all((thr >= 0) & (thr <= 1)):
            raise ValueError(
                f"`iou_thresholds` must be a non-empty list of values in [0, 1], "
                f"got {self.iou_thresholds!r}"
            )
        object.__setattr__(self, "iou_thresholds", tuple(float(x) for x in thr))
        if self.interpolation not in ("voc", "coco101"):
            raise ValueError(
                f"`interpolation` must be 'voc' or 'coco101', got {self.interpolation!r}"
            )
        rec = np.atleast_1d(np.asarray(self.rec_thresholds, dtype=np.float64))
        if rec.ndim != 1 or rec.size == 0 or np.any(np.diff(rec) < 0):
            raise ValueError("`rec_thresholds` must be a non-empty increasing list")
        object.__setattr__(self, "rec_thresholds", tuple(float(x) for x in rec))
        if self.max_dets is not None and (
            isinstance(self.max_dets, bool)
            or not isinstance(self.max_dets, (int, np.integer))
            or self.max_dets < 1
        ):
            raise ValueError(
                f"`max_dets` must be None or a positive integer, got {self.max_dets!r}"
            )

    @classmethod
    def sds(cls, iou_thresholds=(0.5, 0.7)) -> InstanceParams:
        """AP^r of Hariharan et al. [1]_: VOC area under the monotone curve, all detections."""
        return cls(iou_thresholds=iou_thresholds, interpolation="voc", max_dets=None)

    @classmethod
    def sds_vol(cls) -> InstanceParams:
        """AP^r_vol: AP^r averaged over IoU thresholds 0.1, 0.2, ..., 0.9 (take ``.mean``)."""
        return cls.sds(iou_thresholds=tuple(round(0.1 * i, 1) for i in range(1, 10)))

    @classmethod
    def coco(cls) -> InstanceParams:
        """COCO mask AP: IoU 0.5:0.05:0.95, 101 recall points, 100 detections per image."""
        iou = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
        return cls(iou_thresholds=tuple(iou), interpolation="coco101", max_dets=100)


@dataclass(frozen=True)
class InstanceAPResult:
    """Average precision per threshold and class.

    Attributes
    ----------
    params : InstanceParams
    ap : (T, C) ndarray of float64
        NaN for a class without a (non-crowd) ground-truth instance: excluded from the means.
    recall : (T, C) ndarray of float64
        Recall reached with all (kept) detections; NaN as ``ap``.
    n_positives : (C,) ndarray of int64
        Non-crowd ground-truth instances per class.
    """

    params: InstanceParams
    ap: np.ndarray
    recall: np.ndarray
    n_positives: np.ndarray

    @property
    def mean_ap(self) -> np.ndarray:
        """(T,) mean over classes with positives (AP^r at each threshold); NaN if none."""
        ok = self.n_positives > 0
        if not ok.any():
            return np.full(len(self.params.iou_thresholds), np.nan)
        return self.ap[:, ok].mean(axis=1)

    @property
    def mean(self) -> float:
        """Mean over thresholds and classes: COCO ``stats[0]``, or AP^r_vol; NaN if undefined."""
        ok = self.n_positives > 0
        return float(self.ap[:, ok].mean()) if ok.any() else float("nan")


# --------------------------------------------------------------------------------------------
# kernels and helpers
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _match_kernel(ious, gt_ignore, gt_crowd, thresholds):
    # COCO evaluateImg: detections in score order, ground truth with ignored ones last.
    n_t = thresholds.shape[0]
    n_d, n_g = ious.shape
    matched = np.zeros((n_t, n_d), dtype=np.bool_)
    ignored = np.zeros((n_t, n_d), dtype=np.bool_)
    for t in range(n_t):
        taken = np.zeros(n_g, dtype=np.bool_)
        for d in range(n_d):
            best = min(thresholds[t], 1.0 - 1e-10)
            m = -1
            for g in range(n_g):
                if taken[g] and not gt_crowd[g]:
                    continue
                if m > -1 and not gt_ignore[m] and gt_ignore[g]:
                    break
                if ious[d, g] < best:
                    continue
                best = ious[d, g]
                m = g
            if m == -1:
                continue
            matched[t, d] = True
            ignored[t, d] = gt_ignore[m]
            taken[m] = True
    return matched, ignored


def _check_masks(masks, name: str, shape=None, ref: str = "gt_masks") -> np.ndarray:
    if isinstance(masks, (list, tuple)) and all(isinstance(m, dict) for m in masks):
        if masks:  # COCO RLE dicts
            masks = rle_to_masks(list(masks))
        elif shape is not None:
            masks = np.zeros((0, *shape), dtype=bool)
    return _check_mask_stack(masks, name, shape, ref)


def mask_iou(masks_a, masks_b, *, crowd=None, void=None) -> np.ndarray:
    """Pixel IoU of every pair of masks, optionally on non-void pixels and with crowd regions.

    Parameters
    ----------
    masks_a : (M, H, W) array_like of bool
        Detections.
    masks_b : (N, H, W) array_like of bool
        Ground truth.
    crowd : (N,) array_like of bool, optional
        For crowd columns the union is replaced by the area of ``masks_a`` (COCO).
    void : (H, W) array_like of bool, optional
        Pixels left out of every area.

    Returns
    -------
    iou : (M, N) ndarray of float64
        0 where the union is empty (as pycocotools).

    Examples
    --------
    >>> a = np.zeros((1, 2, 2), bool); a[0, 0] = True
    >>> mask_iou(a, np.ones((1, 2, 2), bool)).tolist()
    [[0.5]]
    """
    b = _check_masks(masks_b, "masks_b")
    a = _check_masks(masks_a, "masks_a", b.shape[1:], "masks_b")
    h, w = b.shape[1:]
    valid = np.ones((h, w), bool)
    if void is not None:
        v = np.asarray(void)
        if v.shape != (h, w):
            raise ValueError(f"`void` (shape {v.shape}) must have the masks' shape {(h, w)}")
        valid = ~v.astype(bool)
    n = b.shape[0]
    is_crowd = np.zeros(n, bool) if crowd is None else np.asarray(crowd, dtype=bool).ravel()
    if is_crowd.size != n:
        raise ValueError(
            f"`crowd` must have one entry per mask of `masks_b` ({n}), got {is_crowd.size}"
        )
    if a.shape[0] == 0 or n == 0:
        return np.zeros((a.shape[0], n), dtype=np.float64)
    return _iou(*_mask_overlaps(a, b, valid), is_crowd)


def _check_vector(x, name: str, length: int, kind: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or arr.shape[0] != length:
        raise ValueError(f"`{name}` must have shape ({length},), got {arr.shape}")
    if kind == "int" and arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"`{name}` must hold integer class labels, got dtype {arr.dtype}")
    if kind == "float":
        if arr.size and not (np.issubdtype(arr.dtype, np.number)):
            raise TypeError(f"`{name}` must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(f"`{name}` holds NaN or inf; scores must be finite")
    return arr


def _validate_args(
    n_classes, pred_masks, pred_labels, pred_scores, gt_masks, gt_labels, gt_crowd, void
):
    gt = _check_masks(gt_masks, "gt_masks")
    pred = _check_masks(pred_masks, "pred_masks", gt.shape[1:])
    k, g = pred.shape[0], gt.shape[0]
    pl = _check_vector(pred_labels, "pred_labels", k, "int").astype(np.int64)
    ps = _check_vector(pred_scores, "pred_scores", k, "float")
    gl = _check_vector(gt_labels, "gt_labels", g, "int").astype(np.int64)
    crowd = np.zeros(g, bool) if gt_crowd is None else _check_vector(gt_crowd, "gt_crowd", g, "")
    crowd = np.asarray(crowd).astype(bool)
    for name, lab in (("pred_labels", pl), ("gt_labels", gl)):
        if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
            raise ValueError(
                f"`{name}` must lie in 0..{n_classes - 1} (n_classes={n_classes}), "
                f"got values in [{lab.min()}, {lab.max()}]"
            )
    if void is not None and np.asarray(void).shape != gt.shape[1:]:
        raise ValueError(
            f"`void` (shape {np.asarray(void).shape}) must have the masks' shape {gt.shape[1:]}"
        )
    return pred, pl, ps, gt, gl, crowd, void


@dataclass(frozen=True)
class _ClassRecord:
    """One image, one class: detections in score order and their match flags."""

    scores: np.ndarray  # (D,)
    matched: np.ndarray  # (T, D) bool
    ignored: np.ndarray  # (T, D) bool
    n_positives: int


def _update(params: InstanceParams, pred, pl, ps, gt, gl, crowd, void) -> dict[int, _ClassRecord]:
    thresholds = np.asarray(params.iou_thresholds, dtype=np.float64)
    records = {}
    for c in np.union1d(pl, gl):
        d_idx = np.flatnonzero(pl == c)
        d_idx = d_idx[np.argsort(-ps[d_idx], kind="mergesort")]
        if params.max_dets is not None:
            d_idx = d_idx[: params.max_dets]
        g_idx = np.flatnonzero(gl == c)
        g_idx = g_idx[np.argsort(crowd[g_idx], kind="mergesort")]  # crowd (ignored) last
        g_crowd = np.ascontiguousarray(crowd[g_idx])
        ious = mask_iou(pred[d_idx], gt[g_idx], crowd=g_crowd, void=void)
        matched, ignored = _match_kernel(np.ascontiguousarray(ious), g_crowd, g_crowd, thresholds)
        records[int(c)] = _ClassRecord(ps[d_idx], matched, ignored, int(np.count_nonzero(~g_crowd)))
    return records


def _ap_voc(tp: np.ndarray, fp: np.ndarray, n_pos: int) -> float:
    tp_c, fp_c = np.cumsum(tp), np.cumsum(fp)
    rec = tp_c / n_pos
    prec = tp_c / np.maximum(tp_c + fp_c, 1)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _ap_coco101(tp: np.ndarray, fp: np.ndarray, n_pos: int, rec_thrs: np.ndarray) -> float:
    tp_c, fp_c = np.cumsum(tp).astype(float), np.cumsum(fp).astype(float)
    rc = tp_c / n_pos
    pr = tp_c / (fp_c + tp_c + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1] if pr.size else pr
    inds = np.searchsorted(rc, rec_thrs, side="left")
    q = np.zeros(rec_thrs.size)
    ok = inds < pr.size
    q[ok] = pr[inds[ok]]
    return float(q.mean())


def _compute(
    records: list[dict[int, _ClassRecord]], params: InstanceParams, n_classes: int
) -> InstanceAPResult:
    n_t = len(params.iou_thresholds)
    ap = np.full((n_t, n_classes), np.nan)
    recall = np.full((n_t, n_classes), np.nan)
    n_pos = np.zeros(n_classes, dtype=np.int64)
    rec_thrs = np.asarray(params.rec_thresholds)
    for c in range(n_classes):
        recs = [r[c] for r in records if c in r]
        n_pos[c] = sum(r.n_positives for r in recs)
        if n_pos[c] == 0:
            continue
        scores = np.concatenate([r.scores for r in recs])
        order = np.argsort(-scores, kind="mergesort")  # stable: image order, then rank
        matched = np.concatenate([r.matched for r in recs], axis=1)[:, order]
        ignored = np.concatenate([r.ignored for r in recs], axis=1)[:, order]
        for t in range(n_t):
            keep = ~ignored[t]
            tp = matched[t] & keep
            fp = ~matched[t] & keep
            recall[t, c] = tp.sum() / n_pos[c]
            if params.interpolation == "voc":
                ap[t, c] = _ap_voc(tp[keep], fp[keep], int(n_pos[c]))
            else:
                ap[t, c] = _ap_coco101(tp, fp, int(n_pos[c]), rec_thrs)
    return InstanceAPResult(params, ap, recall, n_pos)


# --------------------------------------------------------------------------------------------
# public accumulator
# --------------------------------------------------------------------------------------------


class InstanceAP:
    """Accumulate instance predictions over images; compute AP^r or COCO-style mask AP.

    Parameters
    ----------
    n_classes : int
        Classes are ``0..n_classes-1`` (no background class).
    params : InstanceParams, optional
        Default ``InstanceParams.sds()`` (AP^r at 0.5 and 0.7). Use ``InstanceParams.coco()``
        for COCO mask AP (``compute().mean``).

    Examples
    --------
    >>> gt = np.zeros((1, 4, 4), bool); gt[0, :2, :2] = True
    >>> pred = np.stack([gt[0], ~gt[0]])
    >>> m = InstanceAP(1)
    >>> m.update(pred, [0, 0], [0.9, 0.8], gt, [0])
    >>> m.compute().mean_ap.tolist()
    [1.0, 1.0]
    """

    def __init__(self, n_classes: int, params: InstanceParams | None = None):
        self.n_classes = _check_n_classes(n_classes)
        self.params = InstanceParams.sds() if params is None else params
        self.reset()

    def reset(self) -> None:
        """Forget every image seen."""
        self._records: list[dict[int, _ClassRecord]] = []

    def update(
        self,
        pred_masks,
        pred_labels,
        pred_scores,
        gt_masks,
        gt_labels,
        *,
        gt_crowd=None,
        void=None,
    ) -> None:
        """Add one image.

        Parameters
        ----------
        pred_masks : (K, H, W) array_like of bool, or list of K COCO RLE dicts
            Detected instance masks (an empty list means no detection).
        pred_labels : (K,) array_like of int
            Their classes, ``0..n_classes-1``.
        pred_scores : (K,) array_like of float
            Their confidences (higher first).
        gt_masks : (G, H, W) array_like of bool, or list of G COCO RLE dicts
            Ground-truth instances (a non-empty RLE list, or an array, fixes ``(H, W)``).
        gt_labels : (G,) array_like of int
            Their classes.
        gt_crowd : (G,) array_like of bool, optional
            Crowd (or "difficult") instances: ignored, see the module notes.
        void : (H, W) array_like of bool, optional
            Pixels left out of every IoU.
        """
        args = _validate_args(
            self.n_classes,
            pred_masks,
            pred_labels,
            pred_scores,
            gt_masks,
            gt_labels,
            gt_crowd,
            void,
        )
        self._records.append(_update(self.params, *args))

    def compute(self) -> InstanceAPResult:
        """AP per threshold and class over all images seen."""
        return _compute(self._records, self.params, self.n_classes)
