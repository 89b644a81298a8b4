"""Numba kernels of bottomup.mcg (inputs validated and made contiguous by the callers)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _predict_forest_kernel(left, right, feature, threshold, value, roots, x):
    k = x.shape[0]
    out = np.zeros(k)
    for i in range(k):
        acc = 0.0
        for r in range(roots.shape[0]):
            node = roots[r]
            while feature[node] >= 0:
                if x[i, feature[node]] <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            acc += value[node]
        out[i] = acc / roots.shape[0]
    return out


@njit(cache=True)
def _dedup_kernel(indptr, indices, leaf_area, n, threshold):
    """Greedy scan: keep a candidate unless its IoU with a kept one exceeds ``threshold``.

    Candidates are CSR leaf lists (``indices[indptr[c]:indptr[c+1]]``). Intersections with the
    kept candidates come from an inverted index leaf -> kept candidates holding it.
    """
    k = indptr.shape[0] - 1
    n_leaves = leaf_area.shape[0]
    # inverted index, filled as candidates are kept (capacity: total leaf occurrences)
    inv_count = np.zeros(n_leaves, np.int64)
    for c in range(k):
        for p in range(indptr[c], indptr[c + 1]):
            inv_count[indices[p]] += 1
    inv_ptr = np.zeros(n_leaves + 1, np.int64)
    for l in range(n_leaves):
        inv_ptr[l + 1] = inv_ptr[l] + inv_count[l]
    inv_fill = inv_ptr[:-1].copy()
    inv = np.empty(inv_ptr[-1], np.int64)
    kept = np.empty(min(n, k), np.int64)
    kept_area = np.empty(min(n, k))
    inter = np.zeros(min(n, k))
    touched = np.empty(min(n, k), np.int64)
    m = 0
    for c in range(k):
        if m >= n:
            break
        area = 0.0
        for p in range(indptr[c], indptr[c + 1]):
            area += leaf_area[indices[p]]
        if area <= 0:
            continue
        n_touched = 0
        for p in range(indptr[c], indptr[c + 1]):
            l = indices[p]
            a = leaf_area[l]
            for q in range(inv_ptr[l], inv_fill[l]):
                j = inv[q]
                if inter[j] == 0:
                    touched[n_touched] = j
                    n_touched += 1
                inter[j] += a
        dup = False
        for t in range(n_touched):
            j = touched[t]
            iou = inter[j] / (area + kept_area[j] - inter[j])
            if iou > threshold:
                dup = True
            inter[j] = 0.0
        if dup:
            continue
        kept[m] = c
        kept_area[m] = area
        for p in range(indptr[c], indptr[c + 1]):
            l = indices[p]
            inv[inv_fill[l]] = m
            inv_fill[l] += 1
        m += 1
    return kept[:m]
