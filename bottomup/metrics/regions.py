"""BSDS region benchmark: segmentation Covering, Probabilistic Rand Index and Variation of Information.

Per image, every cut of a hierarchy (``ucm2 <= t``, 8-connected as MATLAB ``bwlabel``) or a flat
segmentation is compared with all annotators, exactly as the official ``evaluation_reg_image``:
Covering counts ``cntR = sum_g |g| max_s IoU(g, s)`` over every annotator's regions g (and the
reverse ``cntP``), the Rand index and VI averaged over annotators (VI in bits). The dataset step
(:func:`collect_regions`) follows ``collect_eval_reg``: Covering ODS/OIS/Best from summed counts,
PRI and VI from per-image values averaged over images.

References
----------
.. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical Image
       Segmentation", TPAMI 33(5), 2011 (Section 3.2).
.. [2] M. Meila, "Comparing clusterings: an axiomatic view", ICML 2005 (VI).
.. [3] R. Unnikrishnan, C. Pantofaru, M. Hebert, "Toward objective evaluation of image
       segmentation algorithms", TPAMI 29(6), 2007 (PRI).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bottomup.metrics import _region_kernels as _k
from bottomup.metrics.boundary import bsds_thresholds
from bottomup.validate import check_labels, check_ucm2

__all__ = [
    "RegionCounts",
    "region_counts",
    "segmentation_counts",
    "collect_regions",
    "rand_index",
    "variation_of_information",
    "covering",
]


@dataclass(frozen=True)
class RegionCounts:
    """Per-image region statistics at each threshold (the per-image step of the benchmark).

    Attributes
    ----------
    thresholds : (T,) ndarray
    counts : (T, 4) ndarray
        Covering counts ``cntR, sumR, cntP, sumP``.
    ri : (T,) ndarray
        Rand index averaged over annotators.
    vi : (T,) ndarray
        Variation of information (bits) averaged over annotators.
    cnt_r_best : float
        ``sum_g |g| * max over thresholds of max_s IoU(g, s)`` (for Covering Best).
    """

    thresholds: np.ndarray
    counts: np.ndarray
    ri: np.ndarray
    vi: np.ndarray
    cnt_r_best: float

    def to_dict(self) -> dict:
        """Plain lists, for JSON caches."""
        return {
            "thresholds": self.thresholds.tolist(),
            "counts": self.counts.tolist(),
            "ri": self.ri.tolist(),
            "vi": self.vi.tolist(),
            "cnt_r_best": float(self.cnt_r_best),
        }

    @classmethod
    def from_dict(cls, d: dict) -> RegionCounts:
        """Inverse of :meth:`to_dict`."""
        return cls(
            np.asarray(d["thresholds"], float),
            np.asarray(d["counts"], float),
            np.asarray(d["ri"], float),
            np.asarray(d["vi"], float),
            float(d["cnt_r_best"]),
        )


def _stack_gt(segmentations, shape, name="segmentations"):
    if len(segmentations) == 0:
        raise ValueError(f"`{name}` is empty: at least one annotator is needed")
    gts, n_gt = [], []
    for k, s in enumerate(segmentations):
        s = check_labels(s, name=f"{name}[{k}]")
        if s.shape != tuple(shape):
            raise ValueError(
                f"`{name}[{k}]` (shape {s.shape}) must have the image shape {tuple(shape)}"
            )
        _, dense = np.unique(s, return_inverse=True)
        dense = dense.reshape(s.shape)
        gts.append(dense)
        n_gt.append(int(dense.max()) + 1)
    return np.ascontiguousarray(np.stack(gts), dtype=np.int64), np.array(n_gt, np.int64)


def region_counts(ucm2, segmentations, thresholds=None) -> RegionCounts:
    """Region statistics of every cut of a ucm2 against all annotators.

    Parameters
    ----------
    ucm2 : (2H+1, 2W+1) array_like of float
        Ultrametric contour map in the BSDS layout.
    segmentations : sequence of (H, W) array_like of int
        One human segmentation per annotator (any integer labels).
    thresholds : (T,) array_like, optional
        Defaults to the 99 benchmark thresholds.

    Returns
    -------
    counts : RegionCounts
    """
    ucm2 = check_ucm2(ucm2)
    shape = ((ucm2.shape[0] - 1) // 2, (ucm2.shape[1] - 1) // 2)
    gts, n_gt = _stack_gt(segmentations, shape)
    t = bsds_thresholds(99) if thresholds is None else np.asarray(thresholds, np.float64)
    out, best = _k._ucm2_region_kernel(ucm2, np.ascontiguousarray(t), gts, n_gt, True)
    return RegionCounts(t, out[:, :4].copy(), out[:, 4].copy(), out[:, 5].copy(), float(best))


def segmentation_counts(labels, segmentations) -> RegionCounts:
    """Region statistics of one flat segmentation (a single 'threshold').

    Parameters
    ----------
    labels : (H, W) array_like of int
        Any integer labels; each distinct value is one region (regions need not be connected).
    segmentations : sequence of (H, W) array_like of int
        One human segmentation per annotator.

    Returns
    -------
    counts : RegionCounts
        With ``T = 1`` and ``thresholds = [nan]``.
    """
    labels = check_labels(labels)
    gts, n_gt = _stack_gt(segmentations, labels.shape)
    _, seg = np.unique(labels, return_inverse=True)
    seg = np.ascontiguousarray(seg.reshape(labels.shape), dtype=np.int64)
    best = np.zeros((len(n_gt), int(n_gt.max())))
    cnt_r, cnt_p, ri, vi = _k._segment_stats(seg, int(seg.max()) + 1, gts, n_gt, best, True)
    n_pix = float(labels.size)
    areas = [np.bincount(g.ravel(), minlength=n) for g, n in zip(gts, n_gt, strict=True)]
    best_total = float(sum((a * best[i, : len(a)]).sum() for i, a in enumerate(areas)))
    counts = np.array([[cnt_r, n_pix * len(n_gt), cnt_p, n_pix]])
    return RegionCounts(np.array([np.nan]), counts, np.array([ri]), np.array([vi]), best_total)


def rand_index(labels, reference) -> float:
    """Rand index between two partitions (fraction of pixel pairs on which they agree).

    Examples
    --------
    >>> rand_index(np.array([[0, 0, 1, 1]]), np.array([[0, 0, 1, 1]]))
    1.0
    """
    return float(segmentation_counts(labels, [reference]).ri[0])


def variation_of_information(labels, reference) -> float:
    """Variation of information ``H(A) + H(B) - 2 I(A; B)`` in bits between two partitions.

    Examples
    --------
    >>> variation_of_information(np.array([[0, 0, 1, 1]]), np.array([[0, 0, 0, 0]]))
    1.0
    """
    return float(segmentation_counts(labels, [reference]).vi[0])


def covering(labels, segmentations) -> float:
    """Segmentation covering of the human regions by ``labels``, over all annotators.

    ``sum_g |g| max_s IoU(g, s) / sum_g |g|`` with g running over every annotator's regions.
    """
    c = segmentation_counts(labels, segmentations).counts[0]
    return float(c[0] / c[1])


def _last_argmax(x, axis=-1):
    x = np.asarray(x)
    flipped = np.flip(x, axis=axis)
    return x.shape[axis] - 1 - np.argmax(flipped, axis=axis)


def collect_regions(per_image) -> dict:
    """Dataset region figures from per-image statistics, as the official ``collect_eval_reg``.

    Parameters
    ----------
    per_image : sequence of RegionCounts
        All with the same thresholds.

    Returns
    -------
    figures : dict
        ``covering_ods, covering_ods_threshold, covering_ois, covering_best, pri_ods,
        pri_ods_threshold, pri_ois, vi_ods, vi_ods_threshold, vi_ois`` and ``region_curves``.
    """
    if len(per_image) == 0:
        raise ValueError("`per_image` is empty")
    t = per_image[0].thresholds
    c = np.stack([p.counts for p in per_image])  # (N, T, 4)
    ri = np.stack([p.ri for p in per_image])
    vi = np.stack([p.vi for p in per_image])
    tot = c.sum(axis=0)
    cov_curve = tot[:, 0] / tot[:, 1]
    k = int(np.argmax(cov_curve))
    per = c[..., 0] / c[..., 1]
    best_t = _last_argmax(per, axis=1)
    sel = c[np.arange(len(c)), best_t]
    cov_ois = sel[:, 0].sum() / sel[:, 1].sum()
    cov_best = sum(p.cnt_r_best for p in per_image) / c[:, 0, 1].sum()
    ri_curve = ri.mean(axis=0)
    vi_curve = vi.mean(axis=0)
    kr = int(np.argmax(ri_curve))
    kv = int(np.argmin(vi_curve))
    return {
        "covering_ods": float(cov_curve[k]),
        "covering_ods_threshold": float(t[k]),
        "covering_ois": float(cov_ois),
        "covering_best": float(cov_best),
        "pri_ods": float(ri_curve[kr]),
        "pri_ods_threshold": float(t[kr]),
        "pri_ois": float(ri.max(axis=1).mean()),
        "vi_ods": float(vi_curve[kv]),
        "vi_ods_threshold": float(t[kv]),
        "vi_ois": float(vi.min(axis=1).mean()),
        "region_curves": {
            "thresh": [float(x) for x in t],
            "covering": cov_curve.tolist(),
            "pri": ri_curve.tolist(),
            "vi": vi_curve.tolist(),
        },
    }
