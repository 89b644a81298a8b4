"""Semantic segmentation scores from an accumulated confusion matrix.

Pixel accuracy, mean class accuracy, mean IoU and frequency-weighted IoU, as defined in
Long, Shelhamer & Darrell (FCN) [1]_ and used by the PASCAL VOC segmentation benchmark [2]_.
The split follows torchmetrics: ``_validate_args`` checks one image, ``_update`` turns it into
its sufficient statistic (an ``(N, N)`` confusion matrix, summed over images), and ``_compute``
turns the summed matrix into scores; so dataset figures never average per-image scores.

References
----------
.. [1] J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for Semantic
       Segmentation", CVPR 2015 (Sec. 5, metrics). :DOI:`10.1109/CVPR.2015.7298965`
.. [2] M. Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 88(2),
       2010. :DOI:`10.1007/s11263-009-0275-4`
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validate import check_labels, check_same_shape

__all__ = [
    "SemanticParams",
    "SemanticScores",
    "SemanticSegmentationMetric",
    "confusion_matrix",
    "semantic_scores",
]


def _check_n_classes(n_classes) -> int:
    """``n_classes`` as an int; TypeError / ValueError unless it is a positive integer."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise TypeError(f"Expected argument `n_classes` to be a positive integer, "
                        f"but got {type(n_classes).__name__}")
    if n_classes < 1:
        raise ValueError(f"Expected argument `n_classes` to be a positive integer, but got {n_classes}")
    return int(n_classes)


@dataclass(frozen=True)
class SemanticParams:
    """The protocol of a semantic-segmentation evaluation, frozen.

    Parameters
    ----------
    n_classes : int
        Number of classes ``N``; valid labels are ``0..N-1``.
    ignore_index : int or None, optional
        Void label in the ground truth (VOC: 255). Those pixels are skipped whatever the
        prediction says. None: every ground-truth pixel must be a class.
    """

    n_classes: int
    ignore_index: int | None = 255

    def __post_init__(self):
        _check_n_classes(self.n_classes)
        if self.ignore_index is not None:
            if not isinstance(self.ignore_index, (int, np.integer)):
                raise TypeError(
                    "Expected argument `ignore_index` to be None or an integer, "
                    f"but got {type(self.ignore_index).__name__}"
                )
            if 0 <= self.ignore_index < self.n_classes:
                raise ValueError(
                    f"`ignore_index` ({self.ignore_index}) must not be a class label "
                    f"0..{self.n_classes - 1}; use e.g. 255 or -1"
                )


@dataclass(frozen=True)
class SemanticScores:
    """Scores computed from a confusion matrix.

    Attributes
    ----------
    pixel_accuracy : float
        ``sum_i n_ii / sum_ij n_ij``: fraction of non-void pixels labelled right.
    mean_accuracy : float
        Mean over classes with ground-truth pixels of ``n_ii / t_i``.
    mean_iou : float
        Mean over *present* classes of ``n_ii / (t_i + sum_j n_ji - n_ii)``.
    fw_iou : float
        ``sum_i t_i * IoU_i / sum_i t_i`` (frequency-weighted IoU).
    class_accuracy : (N,) ndarray of float64
        NaN for a class with no ground-truth pixel.
    class_iou : (N,) ndarray of float64
        NaN for a class absent from both ground truth and prediction.
    present : (N,) ndarray of bool
        Classes present in the ground truth or the prediction (the ones averaged by ``mean_iou``).
    confusion : (N, N) ndarray of int64
        ``confusion[i, j]``: pixels of true class ``i`` predicted as ``j``.
    """

    pixel_accuracy: float
    mean_accuracy: float
    mean_iou: float
    fw_iou: float
    class_accuracy: np.ndarray
    class_iou: np.ndarray
    present: np.ndarray
    confusion: np.ndarray


def _validate_args(
    labels_true, labels_pred, params: SemanticParams
) -> tuple[np.ndarray, np.ndarray]:
    true = check_labels(labels_true, name="labels_true")
    pred = check_labels(labels_pred, name="labels_pred")
    check_same_shape(true, pred, "labels_true", "labels_pred")
    n = params.n_classes
    valid = (
        np.ones(true.shape, dtype=bool)
        if params.ignore_index is None
        else (true != params.ignore_index)
    )
    bad_true = valid & ((true < 0) | (true >= n))
    if bad_true.any():
        v = int(true[bad_true][0])
        raise ValueError(
            f"`labels_true` holds label {v} outside 0..{n - 1} that is not the void label "
            f"`ignore_index`={params.ignore_index}"
        )
    pv = pred[valid]
    if pv.size and (pv.min() < 0 or pv.max() >= n):
        v = int(pv.min()) if pv.min() < 0 else int(pv.max())
        raise ValueError(
            f"`labels_pred` holds label {v} outside 0..{n - 1} on a non-void pixel; "
            "a prediction must name a class for every pixel"
        )
    return true, pred


def _update(true: np.ndarray, pred: np.ndarray, params: SemanticParams) -> np.ndarray:
    n = params.n_classes
    if params.ignore_index is not None:
        valid = true != params.ignore_index
        true, pred = true[valid], pred[valid]
    else:
        true, pred = true.ravel(), pred.ravel()
    return np.bincount(true * n + pred, minlength=n * n).reshape(n, n).astype(np.int64)


def _compute(confusion: np.ndarray) -> SemanticScores:
    cm = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(cm).astype(np.float64)
    t = cm.sum(axis=1).astype(np.float64)  # ground-truth pixels per class
    p = cm.sum(axis=0).astype(np.float64)  # predicted pixels per class
    total = float(t.sum())
    union = t + p - tp
    present = union > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        class_acc = np.where(t > 0, tp / np.where(t > 0, t, 1), np.nan)
        class_iou = np.where(present, tp / np.where(present, union, 1), np.nan)
    if total == 0:
        nan = float("nan")
        return SemanticScores(nan, nan, nan, nan, class_acc, class_iou, present, cm)
    has_gt = t > 0
    return SemanticScores(
        pixel_accuracy=float(tp.sum() / total),
        mean_accuracy=float(class_acc[has_gt].mean()),
        mean_iou=float(class_iou[present].mean()),
        fw_iou=float((t[has_gt] * class_iou[has_gt]).sum() / total),
        class_accuracy=class_acc,
        class_iou=class_iou,
        present=present,
        confusion=cm,
    )


def confusion_matrix(labels_true, labels_pred, n_classes: int, *, ignore_index: int | None = 255):
    """Confusion matrix of one label map against its ground truth.

    Parameters
    ----------
    labels_true : (H, W) array_like of int
        Ground-truth classes ``0..N-1``, void pixels marked ``ignore_index``.
    labels_pred : (H, W) array_like of int
        Predicted classes ``0..N-1`` (any value on void pixels).
    n_classes : int
        ``N``.
    ignore_index : int or None, optional
        Void label of ``labels_true`` (default 255, as PASCAL VOC).

    Returns
    -------
    confusion : (N, N) ndarray of int64
        ``confusion[i, j]`` counts non-void pixels of true class ``i`` predicted as ``j``.

    Raises
    ------
    ValueError
        If the shapes differ or a label is out of range.

    Examples
    --------
    >>> confusion_matrix([[0, 1], [1, 255]], [[0, 0], [1, 1]], 2).tolist()
    [[1, 0], [1, 1]]
    """
    params = SemanticParams(n_classes, ignore_index)
    true, pred = _validate_args(labels_true, labels_pred, params)
    return _update(true, pred, params)


def semantic_scores(confusion) -> SemanticScores:
    """Pixel accuracy, mean accuracy, mIoU and frequency-weighted IoU of a confusion matrix.

    Parameters
    ----------
    confusion : (N, N) array_like of int
        Summed over a dataset (rows: truth, columns: prediction).

    Returns
    -------
    scores : SemanticScores

    Notes
    -----
    With ``n_ij`` the pixels of class ``i`` predicted ``j`` and ``t_i = sum_j n_ij`` [1]_:
    pixel accuracy ``sum_i n_ii / sum_i t_i``; mean accuracy ``mean_i n_ii / t_i``; mean IoU
    ``mean_i n_ii / (t_i + sum_j n_ji - n_ii)``; frequency-weighted IoU
    ``(sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)``.

    Absent classes: a class with no pixel in the ground truth *and* none in the prediction has an
    undefined IoU (NaN) and is left out of ``mean_iou``; a class predicted but absent from the
    ground truth has IoU 0 and counts. Class accuracy needs ground-truth pixels, so
    ``mean_accuracy`` averages only the classes present in the ground truth. All four scores are
    NaN when no non-void pixel was seen.

    Examples
    --------
    >>> s = semantic_scores([[3, 1], [0, 4]])
    >>> round(s.pixel_accuracy, 4), round(s.mean_iou, 4)
    (0.875, 0.775)
    """
    cm = np.asarray(confusion)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"`confusion` must be a square (N, N) matrix, got shape {cm.shape}")
    if not np.issubdtype(cm.dtype, np.integer):
        raise TypeError(f"`confusion` must hold integer pixel counts, got dtype {cm.dtype}")
    if cm.size and cm.min() < 0:
        raise ValueError("`confusion` must hold non-negative counts")
    return _compute(cm)


class SemanticSegmentationMetric:
    """Accumulate a confusion matrix over images and compute the semantic scores.

    Parameters
    ----------
    n_classes : int
        Number of classes ``N``.
    ignore_index : int or None, optional
        Void label of the ground truth (default 255).

    Attributes
    ----------
    params : SemanticParams
    confusion : (N, N) ndarray of int64
        Running sum.

    Examples
    --------
    >>> m = SemanticSegmentationMetric(2)
    >>> m.update([[0, 1]], [[0, 0]])
    >>> m.update([[1, 255]], [[1, 0]])
    >>> m.compute().confusion.tolist()
    [[1, 0], [1, 1]]
    """

    def __init__(self, n_classes: int, *, ignore_index: int | None = 255):
        self.params = SemanticParams(n_classes, ignore_index)
        self.reset()

    def reset(self) -> None:
        """Forget every image seen."""
        n = self.params.n_classes
        self.confusion = np.zeros((n, n), dtype=np.int64)

    def update(self, labels_true, labels_pred) -> None:
        """Add one image.

        Parameters
        ----------
        labels_true : (H, W) array_like of int
        labels_pred : (H, W) array_like of int
        """
        true, pred = _validate_args(labels_true, labels_pred, self.params)
        self.confusion += _update(true, pred, self.params)

    def compute(self) -> SemanticScores:
        """Scores of all images seen so far (see :func:`semantic_scores`)."""
        return _compute(self.confusion.copy())
