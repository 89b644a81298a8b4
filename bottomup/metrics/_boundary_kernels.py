"""Numba kernels of the BSDS boundary benchmark: thinning and the exact pixel matcher.

Private: the public functions in :mod:`bottomup.metrics.boundary` validate inputs and call these
with C-contiguous arrays of fixed dtypes.
"""

import numpy as np
from numba import njit

from bottomup.graph._kernels import _heap_pop, _heap_push

# ----------------------------------------------------------------------------------------------
# Thinning (Lam, Lee & Suen 1992, the two-subiteration algorithm of MATLAB's bwmorph 'thin').
# Neighbour bits: 0 E, 1 NE, 2 N, 3 NW, 4 W, 5 SW, 6 S, 7 SE (x1..x8 of the paper).
# ----------------------------------------------------------------------------------------------
_DR = np.array([0, -1, -1, -1, 0, 1, 1, 1], dtype=np.int64)
_DC = np.array([1, 1, 0, -1, -1, -1, 0, 1], dtype=np.int64)


def _thin_luts():
    """Deletion tables of the two subiterations, indexed by the 8-neighbour code."""
    lut1 = np.zeros(256, dtype=np.bool_)
    lut2 = np.zeros(256, dtype=np.bool_)
    for code in range(256):
        x = [(code >> i) & 1 for i in range(8)]
        # G1: crossing number X_H(p) == 1
        xh = 0
        for i in (0, 2, 4, 6):
            if not x[i] and (x[i + 1] or x[(i + 2) % 8]):
                xh += 1
        # G2: 2 <= min(n1, n2) <= 3
        n1 = sum(1 for k in (1, 3, 5, 7) if x[k - 1] or x[k])
        n2 = sum(1 for k in (1, 3, 5, 7) if x[k] or x[(k + 1) % 8])
        g12 = xh == 1 and 2 <= min(n1, n2) <= 3
        # G3: (x2 or x3 or not x8) and x1 == 0 ; G3': (x6 or x7 or not x4) and x5 == 0
        g3 = not ((x[1] or x[2] or not x[7]) and x[0])
        g3p = not ((x[5] or x[6] or not x[3]) and x[4])
        lut1[code] = g12 and g3
        lut2[code] = g12 and g3p
    return lut1, lut2


THIN_LUT1, THIN_LUT2 = _thin_luts()


@njit(cache=True)
def _code(img, r, c, h, w):
    code = 0
    for k in range(8):
        rr = r + _DR[k]
        cc = c + _DC[k]
        if 0 <= rr < h and 0 <= cc < w and img[rr, cc]:
            code |= 1 << k
    return code


@njit(cache=True)
def _thin_kernel(img, lut1, lut2):
    """Thin a boolean image in place to 1-pixel-wide curves (parallel subiterations)."""
    h, w = img.shape
    rows, cols = np.nonzero(img)
    n = rows.shape[0]
    delete = np.empty(n, np.bool_)
    changed = True
    while changed:
        changed = False
        for sub in range(2):
            lut = lut1 if sub == 0 else lut2
            for i in range(n):
                delete[i] = lut[_code(img, rows[i], cols[i], h, w)]
            m = 0
            for i in range(n):
                if delete[i]:
                    img[rows[i], cols[i]] = False
                    changed = True
                else:
                    rows[m] = rows[i]
                    cols[m] = cols[i]
                    m += 1
            n = m
    return img


# ----------------------------------------------------------------------------------------------
# Exact matcher: minimum-cost assignment with outliers, as the official correspondPixels solves.
# ----------------------------------------------------------------------------------------------
@njit(cache=True)
def _match_kernel(bmap1, bmap2, off_r, off_c, off_cost, outlier_cost):
    """Match two boundary maps one-to-one within a radius, at minimum cost with outliers.

    The objective is the official benchmark's (bench/source/match.cc): every matched pair costs its
    distance in pixels x 100, rounded; the solution costs ``outlier_cost`` more for each pair
    fewer (``sum w + (n1 + n2 - k) * outlier_cost`` for k pairs), so the assignment maximises the
    number of matched pairs first and then minimises their total distance. Solved exactly as a
    rectangular assignment problem (rows = the smaller side, columns = the other side plus one
    private outlier column per row at cost ``outlier_cost``) with the successive shortest
    augmenting path algorithm (Dijkstra with potentials, sparse).

    Returns
    -------
    m1 : (H, W) bool
        Pixels of ``bmap1`` that are matched.
    m2 : (H, W) bool
        Pixels of ``bmap2`` that are matched.
    pairs : (n_matched, 4) int64
        ``(r1, c1, r2, c2)`` of each matched pair.
    """
    h, w = bmap1.shape
    n_off = off_r.shape[0]
    # Matchable pixels: within the radius of a pixel of the other map.
    able1 = np.zeros((h, w), np.bool_)
    able2 = np.zeros((h, w), np.bool_)
    for r in range(h):
        for c in range(w):
            if not bmap1[r, c]:
                continue
            for k in range(n_off):
                rr = r + off_r[k]
                cc = c + off_c[k]
                if 0 <= rr < h and 0 <= cc < w and bmap2[rr, cc]:
                    able1[r, c] = True
                    able2[rr, cc] = True
    n1 = np.count_nonzero(able1)
    n2 = np.count_nonzero(able2)
    m1 = np.zeros((h, w), np.bool_)
    m2 = np.zeros((h, w), np.bool_)
    if n1 == 0 or n2 == 0:
        return m1, m2, np.zeros((0, 4), np.int64)
    # Rows are the smaller side.
    if n1 <= n2:
        rmap = able1
        cmap = able2
        swap = False
    else:
        rmap = able2
        cmap = able1
        swap = True
    nr = min(n1, n2)
    nc = max(n1, n2)
    row_pix = np.empty((nr, 2), np.int64)
    col_pix = np.empty((nc, 2), np.int64)
    col_id = -np.ones((h, w), np.int64)
    i = 0
    j = 0
    for r in range(h):
        for c in range(w):
            if rmap[r, c]:
                row_pix[i, 0] = r
                row_pix[i, 1] = c
                i += 1
            if cmap[r, c]:
                col_pix[j, 0] = r
                col_pix[j, 1] = c
                col_id[r, c] = j
                j += 1
    # CSR adjacency: real edges (offsets sorted by cost) then the row's private outlier column.
    ptr = np.zeros(nr + 1, np.int64)
    for i in range(nr):
        r = row_pix[i, 0]
        c = row_pix[i, 1]
        cnt = 1
        for k in range(n_off):
            rr = r + off_r[k]
            cc = c + off_c[k]
            if 0 <= rr < h and 0 <= cc < w and col_id[rr, cc] >= 0:
                cnt += 1
        ptr[i + 1] = ptr[i] + cnt
    adj = np.empty(ptr[nr], np.int64)
    cost = np.empty(ptr[nr], np.int64)
    for i in range(nr):
        r = row_pix[i, 0]
        c = row_pix[i, 1]
        p = ptr[i]
        for k in range(n_off):
            rr = r + off_r[k]
            cc = c + off_c[k]
            if 0 <= rr < h and 0 <= cc < w and col_id[rr, cc] >= 0:
                adj[p] = col_id[rr, cc]
                cost[p] = off_cost[k]
                p += 1
        adj[p] = nc + i
        cost[p] = outlier_cost
    ncol = nc + nr
    u = np.zeros(nr, np.int64)
    v = np.zeros(ncol, np.int64)
    row_match = -np.ones(nr, np.int64)
    col_match = -np.ones(ncol, np.int64)
    # Start: coincident pixels (cost 0) are matched; with zero potentials this is optimal so far.
    for i in range(nr):
        p = ptr[i]
        if cost[p] == 0:
            jj = adj[p]
            if col_match[jj] < 0:
                col_match[jj] = i
                row_match[i] = jj
    big = np.iinfo(np.int64).max
    dist = np.full(ncol, big, np.int64)
    pred = -np.ones(ncol, np.int64)
    done = np.zeros(ncol, np.bool_)
    touched = np.empty(ncol, np.int64)
    final = np.empty(ncol, np.int64)
    # Each push follows a strict decrease along one edge, and each row's edges are scanned at
    # most once per search, so the heap never holds more entries than there are edges.
    # Keys (distance, 0): no tie-break, equal distances leave in the heap's own order (the
    # matching found, hence the counts, depends on it).
    hd = np.empty(ptr[nr] + 1, np.int64)
    ht = np.zeros(ptr[nr] + 1, np.int64)
    hj = np.empty(ptr[nr] + 1, np.int64)
    for s in range(nr):
        if row_match[s] >= 0:
            continue
        n_touched = 0
        n_final = 0
        size = 0
        for p in range(ptr[s], ptr[s + 1]):
            jj = adj[p]
            nd = cost[p] - u[s] - v[jj]
            if nd < dist[jj]:
                if dist[jj] == big:
                    touched[n_touched] = jj
                    n_touched += 1
                dist[jj] = nd
                pred[jj] = s
                size = _heap_push(hd, ht, hj, size, nd, 0, jj)
        free_col = -1
        delta = 0
        while size > 0:
            d, _, jj, size = _heap_pop(hd, ht, hj, size)
            if done[jj] or d > dist[jj]:
                continue
            done[jj] = True
            final[n_final] = jj
            n_final += 1
            rr = col_match[jj]
            if rr < 0:
                free_col = jj
                delta = d
                break
            # the matched edge (rr, jj) has reduced cost 0, so rr is reached at distance d
            for p in range(ptr[rr], ptr[rr + 1]):
                kk = adj[p]
                if done[kk]:
                    continue
                nd = d + cost[p] - u[rr] - v[kk]
                if nd < dist[kk]:
                    if dist[kk] == big:
                        touched[n_touched] = kk
                        n_touched += 1
                    dist[kk] = nd
                    pred[kk] = rr
                    size = _heap_push(hd, ht, hj, size, nd, 0, kk)
        # Potentials of the columns finalised before the free one, and of their rows.
        for t in range(n_final):
            jj = final[t]
            if jj == free_col:
                continue
            dd = delta - dist[jj]
            v[jj] -= dd
            u[col_match[jj]] += dd
        u[s] += delta
        # Augment along the predecessor chain.
        jj = free_col
        while True:
            rr = pred[jj]
            nxt = row_match[rr]
            col_match[jj] = rr
            row_match[rr] = jj
            if rr == s:
                break
            jj = nxt
        for t in range(n_touched):
            kk = touched[t]
            dist[kk] = big
            done[kk] = False
    pairs = np.empty((np.count_nonzero(row_match < nc), 4), np.int64)
    k = 0
    for i in range(nr):
        jj = row_match[i]
        if jj < nc:
            if swap:
                a = col_pix[jj]
                b = row_pix[i]
            else:
                a = row_pix[i]
                b = col_pix[jj]
            m1[a[0], a[1]] = True
            m2[b[0], b[1]] = True
            pairs[k, 0] = a[0]
            pairs[k, 1] = a[1]
            pairs[k, 2] = b[0]
            pairs[k, 3] = b[1]
            k += 1
    return m1, m2, pairs


@njit(cache=True)
def _boundary_counts_kernel(pb, thresholds, gts, off_r, off_c, off_cost, outlier_cost, lut1, lut2,
                            thin):
    """Per-threshold counts (cntR, sumR, cntP, sumP) of one image against all annotators."""
    h, w = pb.shape
    n_t = thresholds.shape[0]
    n_a = gts.shape[0]
    out = np.zeros((n_t, 4), np.int64)
    sum_r = np.count_nonzero(gts)
    prev = np.zeros((h, w), np.bool_)
    for t in range(n_t):
        bmap = pb >= thresholds[t]
        if thin:
            _thin_kernel(bmap, lut1, lut2)
        if t > 0 and np.array_equal(bmap, prev):  # the same map: the same counts
            out[t] = out[t - 1]
            continue
        acc = np.zeros((h, w), np.bool_)  # machine pixels matched to any annotator
        cnt_r = 0
        for a in range(n_a):
            m1, m2, pairs = _match_kernel(bmap, gts[a], off_r, off_c, off_cost, outlier_cost)
            cnt_r += pairs.shape[0]
            acc |= m1
        out[t, 0] = cnt_r
        out[t, 1] = sum_r
        out[t, 2] = np.count_nonzero(bmap & acc)
        out[t, 3] = np.count_nonzero(bmap)
        prev[:, :] = bmap
    return out
