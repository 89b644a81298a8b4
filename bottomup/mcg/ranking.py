"""Ranking of candidates: a random-forest regressor stored as plain arrays, and duplicate removal.

MCG [1]_ (section 5) ranks candidates with a random forest regressing the best Jaccard of each
candidate with a ground-truth object. The forest here is trained with scikit-learn
(``bench/train_ranker.py``) and shipped as arrays in an ``.npz`` (no pickle), so it loads across
library versions; :func:`predict_forest` is a small numpy traversal, tested equal to
``sklearn.ensemble.RandomForestRegressor.predict``.

References
----------
.. [1] J. Pont-Tuset, P. Arbelaez, J. T. Barron, F. Marques, J. Malik, "Multiscale Combinatorial
       Grouping for Image Segmentation and Object Proposal Generation", TPAMI 39(1), 2017.
       :DOI:`10.1109/TPAMI.2016.2537320`
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bottomup.mcg._kernels import _dedup_kernel, _predict_forest_kernel

__all__ = ["Forest", "forest_from_sklearn", "predict_forest", "load_ranker",
           "remove_near_duplicates", "RANKER_FILES", "ranker_path"]

#: (method, ranker family) -> shipped forest (``bench/train_ranker.py``). The family is the contour
#: source's ``ranker`` attribute: ``gpb-plain`` / ``gpb-steepest`` for gPb hierarchies of that OWT
#: rule, ``learned`` for the learned contours (and, by default, any other source). MCG has its own
#: forests (its multiscale hierarchy's features are distributed unlike the single-scale ones);
#: there is no MCG forest for ``gpb-plain``: that pair uses the SCG one.
RANKER_FILES = {("scg", "gpb-plain"): "scg_ranker.npz", ("scg", "gpb-steepest"): "scg_ranker_steepest.npz",
                ("mcg", "gpb-plain"): "scg_ranker.npz", ("mcg", "gpb-steepest"): "mcg_ranker_steepest.npz",
                ("scg", "learned"): "scg_ranker_learned.npz", ("mcg", "learned"): "mcg_ranker_learned.npz"}
#: Folder of the shipped forests.
RANKER_DIR = os.path.join(os.path.dirname(__file__), "data")


def ranker_path(method: str = "scg", family: str = "gpb-steepest") -> str:
    """Path of the shipped ranker for a proposal method and a contour source's ranker family.

    Parameters
    ----------
    method : {"scg", "mcg"}
    family : str
        ``ContourSource.ranker``: ``"gpb-plain"``, ``"gpb-steepest"`` or ``"learned"``.

    Examples
    --------
    >>> os.path.basename(ranker_path("mcg", "learned"))
    'mcg_ranker_learned.npz'
    """
    if (method, family) not in RANKER_FILES:
        raise ValueError(f"no shipped ranker for method={method!r} and ranker family {family!r}; "
                         f"shipped: {sorted(RANKER_FILES)} (train one with bench/train_ranker.py)")
    return os.path.join(RANKER_DIR, RANKER_FILES[(method, family)])


@dataclass(frozen=True)
class Forest:
    """Regression trees concatenated into flat arrays.

    Attributes
    ----------
    left, right : (M,) int64
        Children of each node, global indices; -1 at leaves.
    feature : (M,) int64
        Feature tested at each split node (-1 at leaves).
    threshold : (M,) float64
        Go left when ``x[feature] <= threshold`` (scikit-learn's rule).
    value : (M,) float64
        Prediction of each node (used at leaves).
    roots : (T,) int64
        Root node of each tree.
    """

    left: NDArray[np.int64]
    right: NDArray[np.int64]
    feature: NDArray[np.int64]
    threshold: NDArray[np.float64]
    value: NDArray[np.float64]
    roots: NDArray[np.int64]
    n_features: int

    def save(self, path) -> None:
        """Write the arrays to ``path`` (``.npz``, no pickle)."""
        np.savez_compressed(path, left=self.left, right=self.right, feature=self.feature,
                            threshold=self.threshold, value=self.value, roots=self.roots,
                            n_features=np.int64(self.n_features))

    @classmethod
    def load(cls, path) -> Forest:
        """Read a forest written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            return cls(z["left"].astype(np.int64), z["right"].astype(np.int64),
                       z["feature"].astype(np.int64), z["threshold"].astype(np.float64),
                       z["value"].astype(np.float64), z["roots"].astype(np.int64),
                       int(z["n_features"]))


def forest_from_sklearn(model) -> Forest:
    """Convert a fitted ``RandomForestRegressor`` (single output) to a :class:`Forest`."""
    left, right, feat, thr, val, roots = [], [], [], [], [], []
    offset = 0
    for est in model.estimators_:
        tr = est.tree_
        m = tr.node_count
        lc = tr.children_left.astype(np.int64)
        rc = tr.children_right.astype(np.int64)
        left.append(np.where(lc >= 0, lc + offset, -1))
        right.append(np.where(rc >= 0, rc + offset, -1))
        feat.append(np.where(lc >= 0, tr.feature, -1).astype(np.int64))
        thr.append(tr.threshold.astype(np.float64))
        val.append(tr.value[:, 0, 0].astype(np.float64))
        roots.append(offset)
        offset += m
    return Forest(np.concatenate(left), np.concatenate(right), np.concatenate(feat),
                  np.concatenate(thr), np.concatenate(val), np.asarray(roots, np.int64),
                  int(model.n_features_in_))


def predict_forest(forest: Forest, x) -> NDArray[np.float64]:
    """Mean prediction of the trees of ``forest`` for each row of ``x``.

    Parameters
    ----------
    forest : Forest
    x : (K, F) array_like of float

    Returns
    -------
    y : (K,) ndarray of float64

    Notes
    -----
    A numba loop over samples and trees. scikit-learn compares in float32 (``X`` is cast to
    float32 and thresholds are float64 midpoints between float32 values), so ``x`` is cast to
    float32 as well.
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != forest.n_features:
        raise ValueError(f"`x` must be (K, {forest.n_features}), got shape {x.shape}")
    xf = np.ascontiguousarray(x.astype(np.float32).astype(np.float64))
    if xf.shape[0] == 0:
        return np.zeros(0)
    return _predict_forest_kernel(forest.left, forest.right, forest.feature, forest.threshold,
                                  forest.value, forest.roots, xf)


@functools.lru_cache(maxsize=4)
def load_ranker(path: str) -> Forest:
    """Load (and cache) a shipped ranker."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"ranker file not found: {path}; train one with `python bench/train_ranker.py`"
        )
    return Forest.load(path)


def remove_near_duplicates(
    leaf_sets: NDArray[np.bool_], leaf_area, n: int, *, threshold: float = 0.95,
) -> NDArray[np.int64]:
    """Keep candidates in order, dropping any with IoU above ``threshold`` with a kept one.

    Parameters
    ----------
    leaf_sets : (K, L) ndarray of bool
        Candidates in ranked order.
    leaf_area : (L,) array_like of float
        Pixels of each leaf (IoU is computed on pixels, MCG's ranking, TPAMI 2017 section 5).
    n : int
        Number to keep at most.
    threshold : float, optional
        A candidate whose IoU with a kept one is ``> threshold`` is dropped.

    Returns
    -------
    keep : (<= n,) ndarray of int64
    """
    leaf_sets = np.asarray(leaf_sets, bool)
    rows, cols = np.nonzero(leaf_sets)
    indptr = np.zeros(leaf_sets.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=leaf_sets.shape[0]), out=indptr[1:])
    return _dedup_kernel(indptr, cols.astype(np.int64),
                         np.ascontiguousarray(leaf_area, dtype=np.float64), int(n), float(threshold))


def diversify(leaf_sets: NDArray[np.bool_], leaf_area, scores, n: int, *,
              theta: float = 0.7) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Maximal-marginal-relevance re-ranking (MCG's ``mex_max_margin``, TPAMI 2017 section 5).

    Greedily picks the candidate maximising ``theta * score - (1 - theta) * J_max``, with
    ``J_max`` its largest IoU with the candidates picked so far.

    Parameters
    ----------
    leaf_sets : (K, L) ndarray of bool
    leaf_area : (L,) array_like of float
    scores : (K,) array_like of float
    n : int
        Number of candidates to pick (at most K).
    theta : float, optional
        Weight of the score (MCG: 0.7); 1 keeps the score order.

    Returns
    -------
    order : (n',) ndarray of int64
        Indices picked, in order.
    values : (n',) ndarray of float64
        The objective at each pick, made non-increasing (``np.minimum.accumulate``).
    """
    k = leaf_sets.shape[0]
    n = min(int(n), k)
    scores = np.asarray(scores, np.float64)
    weighted = leaf_sets * np.asarray(leaf_area, np.float64)
    c_area = weighted.sum(axis=1)
    jmax = np.zeros(k)
    free = np.ones(k, bool)
    order = np.empty(n, np.int64)
    values = np.empty(n)
    for step in range(n):
        val = np.where(free, theta * scores - (1.0 - theta) * jmax, -np.inf)
        i = int(np.argmax(val))
        order[step], values[step] = i, val[i]
        free[i] = False
        inter = weighted[:, leaf_sets[i]].sum(axis=1)  # leaf sets are sparse
        iou = inter / np.maximum(c_area + c_area[i] - inter, 1e-12)
        np.maximum(jmax, iou, out=jmax)
    return order, np.minimum.accumulate(values)
