"""Slow, obviously-correct reference implementations for the BSDS metrics tests."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment


def optimal_match_cost(a, b, max_dist_px, outlier):
    """Optimal objective of the official matcher by a dense assignment (scipy's Hungarian).

    Rows: pixels of ``a``; columns: pixels of ``b`` plus one outlier column per row. A real pair
    costs round(100 d); an unmatched row costs ``outlier``; every unmatched pixel of ``b`` costs
    ``outlier`` too, so that the total equals ``sum w + (n1 + n2 - k) * outlier - n1*0``... we
    return (k, sum of matched costs) of the optimum of ``sum w + outlier * (n1 + n2 - k)``.
    """
    pa = np.argwhere(a)
    pb = np.argwhere(b)
    n1, n2 = len(pa), len(pb)
    if n1 == 0 or n2 == 0:
        return 0, 0
    big = 10**12
    cost = np.full((n1, n2 + n1), big, dtype=np.float64)
    for i, p in enumerate(pa):
        for j, q in enumerate(pb):
            d2 = float(((p - q) ** 2).sum())
            if d2 <= max_dist_px * max_dist_px:
                cost[i, j] = round(math.sqrt(d2) * 100.0) - outlier  # a pair saves one outlier
        cost[i, n2 + i] = 0.0
    rows, cols = linear_sum_assignment(cost)
    k = 0
    total = 0
    for r, c in zip(rows, cols, strict=True):
        if c < n2:
            k += 1
            total += int(cost[r, c] + outlier)
    return k, total


def region_stats_naive(ucm2, segs, thresholds):
    """Covering counts, RI and VI per threshold by scipy labelling and explicit pair counting."""
    out = []
    struct = np.ones((3, 3), bool)
    for t in thresholds:
        lab = ndi.label(ucm2 <= t, structure=struct)[0][1::2, 1::2]
        out.append(flat_stats_naive(lab, segs))
    return out


def flat_stats_naive(lab, segs):
    """(cntR, sumR, cntP, sumP, RI, VI) of one partition against annotators, naively."""
    n = lab.size
    seg_ids = np.unique(lab)
    cnt_r = sum_r = 0.0
    seg_best = {s: 0.0 for s in seg_ids}
    ri_all, vi_all = [], []
    for g in segs:
        for gid in np.unique(g):
            gm = g == gid
            best = 0.0
            for s in seg_ids:
                sm = lab == s
                iou = (gm & sm).sum() / (gm | sm).sum()
                best = max(best, iou)
                seg_best[s] = max(seg_best[s], iou)
            cnt_r += gm.sum() * best
            sum_r += gm.sum()
        # Rand index over pixel pairs
        a = lab.ravel()
        b = g.ravel()
        same_a = a[:, None] == a[None, :]
        same_b = b[:, None] == b[None, :]
        iu = np.triu_indices(n, 1)
        ri_all.append(float((same_a == same_b)[iu].mean()))
        # VI in bits
        def ent(x):
            _, c = np.unique(x, return_counts=True)
            p = c / n
            return -(p * np.log2(p)).sum()

        joint = a.astype(np.int64) * (b.max() + 1) + b
        vi_all.append(2 * ent(joint) - ent(a) - ent(b))
    cnt_p = sum((lab == s).sum() * seg_best[s] for s in seg_ids)
    return cnt_r, sum_r, cnt_p, float(n), float(np.mean(ri_all)), float(np.mean(vi_all))
