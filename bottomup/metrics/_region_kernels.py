"""Numba kernels of the BSDS region benchmark (Covering, PRI, VI) over the cuts of a ucm2."""

import numpy as np
from numba import njit

from bottomup.graph._kernels import _find


@njit(cache=True)
def _segment_stats(seg, n_seg, gts, n_gt, best_iou, use_log2):
    """Covering, Rand index and VI of one partition against every annotator.

    Parameters
    ----------
    seg : (H, W) int64, dense 0..n_seg-1
    gts : (A, H, W) int64, annotator a dense 0..n_gt[a]-1
    best_iou : (A, max(n_gt)) float64, updated in place with each GT region's best IoU so far

    Returns
    -------
    cnt_r, cnt_p, ri_mean, vi_mean
    """
    h, w = seg.shape
    n_a = gts.shape[0]
    n_pix = h * w
    seg_area = np.zeros(n_seg, np.float64)
    for r in range(h):
        for c in range(w):
            seg_area[seg[r, c]] += 1.0
    seg_best = np.zeros(n_seg, np.float64)
    cnt_r = 0.0
    ri_sum = 0.0
    vi_sum = 0.0
    t1 = n_pix * (n_pix - 1) / 2.0
    for a in range(n_a):
        g_n = n_gt[a]
        table = np.zeros((n_seg, g_n), np.float64)
        g_area = np.zeros(g_n, np.float64)
        for r in range(h):
            for c in range(w):
                gg = gts[a, r, c]
                table[seg[r, c], gg] += 1.0
                g_area[gg] += 1.0
        g_best = np.zeros(g_n, np.float64)
        sum_sq = 0.0
        mi = 0.0
        for s in range(n_seg):
            for g in range(g_n):
                n = table[s, g]
                if n > 0.0:
                    iou = n / (seg_area[s] + g_area[g] - n)
                    if iou > g_best[g]:
                        g_best[g] = iou
                    if iou > seg_best[s]:
                        seg_best[s] = iou
                    sum_sq += n * n
                    pij = n / n_pix
                    q = n * n_pix / (seg_area[s] * g_area[g])
                    mi += pij * (np.log2(q) if use_log2 else np.log(q))
        h_seg = 0.0
        sq_seg = 0.0
        for s in range(n_seg):
            if seg_area[s] > 0:
                p = seg_area[s] / n_pix
                h_seg -= p * (np.log2(p) if use_log2 else np.log(p))
                sq_seg += seg_area[s] * seg_area[s]
        h_gt = 0.0
        sq_gt = 0.0
        for g in range(g_n):
            if g_area[g] > 0:
                p = g_area[g] / n_pix
                h_gt -= p * (np.log2(p) if use_log2 else np.log(p))
                sq_gt += g_area[g] * g_area[g]
            cnt_r += g_area[g] * g_best[g]
            if g_best[g] > best_iou[a, g]:
                best_iou[a, g] = g_best[g]
        if t1 > 0:
            ri_sum += (t1 + sum_sq - 0.5 * (sq_seg + sq_gt)) / t1
        else:
            ri_sum += 1.0
        vi_sum += h_seg + h_gt - 2.0 * mi
    cnt_p = 0.0
    for s in range(n_seg):
        cnt_p += seg_area[s] * seg_best[s]
    return cnt_r, cnt_p, ri_sum / n_a, vi_sum / n_a


@njit(cache=True)
def _ucm2_region_kernel(ucm2, thresholds, gts, n_gt, use_log2):
    """Region counts at every threshold of a ucm2 (cuts = 8-connected components of ucm2 <= t).

    Returns
    -------
    out : (T, 6) float64
        ``cntR, sumR, cntP, sumP, RI, VI`` per threshold.
    cnt_r_best : float
        Sum over GT regions of area x best IoU over all thresholds.
    """
    hh, ww = ucm2.shape
    h = (hh - 1) // 2
    w = (ww - 1) // 2
    n_a = gts.shape[0]
    n_t = thresholds.shape[0]
    n = hh * ww
    flat = ucm2.ravel()
    order = np.argsort(flat, kind="mergesort")
    parent = np.arange(n)
    added = np.zeros(n, np.bool_)
    has_pix = np.zeros(n, np.bool_)
    for r in range(h):
        for c in range(w):
            has_pix[(2 * r + 1) * ww + 2 * c + 1] = True
    max_g = 0
    for a in range(n_a):
        if n_gt[a] > max_g:
            max_g = n_gt[a]
    best_iou = np.zeros((n_a, max_g), np.float64)
    out = np.zeros((n_t, 6), np.float64)
    seg = np.empty((h, w), np.int64)
    root_id = -np.ones(n, np.int64)
    k = 0
    changed = True
    n_pix = float(h * w)
    for t in range(n_t):
        thr = thresholds[t]
        while k < n and flat[order[k]] <= thr:
            e = order[k]
            added[e] = True
            er = e // ww
            ec = e % ww
            for dr in range(-1, 2):
                for dc in range(-1, 2):
                    if dr == 0 and dc == 0:
                        continue
                    rr = er + dr
                    cc = ec + dc
                    if 0 <= rr < hh and 0 <= cc < ww:
                        f = rr * ww + cc
                        if added[f]:
                            ra = _find(parent, e)
                            rb = _find(parent, f)
                            if ra != rb:
                                if has_pix[ra] and has_pix[rb]:
                                    changed = True
                                parent[rb] = ra
                                has_pix[ra] = has_pix[ra] or has_pix[rb]
            k += 1
        if not changed and t > 0:
            out[t] = out[t - 1]
            continue
        changed = False
        n_seg = 0
        for r in range(h):
            for c in range(w):
                e = (2 * r + 1) * ww + 2 * c + 1
                if not added[e]:
                    # a pixel cell above the threshold is a region of its own (ucm2 pixel cells
                    # are 0 in the BSDS layout, so this only happens for foreign inputs)
                    seg[r, c] = n_seg
                    n_seg += 1
                    continue
                root = _find(parent, e)
                if root_id[root] < 0:
                    root_id[root] = n_seg
                    n_seg += 1
                seg[r, c] = root_id[root]
        for r in range(h):
            for c in range(w):
                e = (2 * r + 1) * ww + 2 * c + 1
                if added[e]:
                    root_id[_find(parent, e)] = -1
        cnt_r, cnt_p, ri, vi = _segment_stats(seg, n_seg, gts, n_gt, best_iou, use_log2)
        out[t, 0] = cnt_r
        out[t, 1] = n_pix * n_a
        out[t, 2] = cnt_p
        out[t, 3] = n_pix
        out[t, 4] = ri
        out[t, 5] = vi
    cnt_r_best = 0.0
    for a in range(n_a):
        g_area = np.zeros(n_gt[a], np.float64)
        for r in range(h):
            for c in range(w):
                g_area[gts[a, r, c]] += 1.0
        for g in range(n_gt[a]):
            cnt_r_best += g_area[g] * best_iou[a, g]
    return out, cnt_r_best
