"""numba kernel of :func:`bottomup.interactive.segment` (minimax fronts on the ucm2 grid)."""

from __future__ import annotations

import numpy as np
from numba import njit

from bottomup.owt._kernels import _heap_grow, _heap_sift_down, _heap_sift_up, _heap_swap


@njit(cache=True)
def _uvt_kernel(u, seeds):
    """Minimax-path Voronoi labelling of the ucm2 grid from seeds at the pixel sites (``uvt``).

    The order of the release's front propagation (FACTS A.16): fronts leave every seed at cost 0
    and move between 4-adjacent cells of the ``(2H+1, 2W+1)`` grid; a path costs its largest
    ucm2 value; cells are settled in increasing (cost, -label), so each takes the label of its
    cheapest front and the larger label on ties. Dijkstra with a heap keyed by (cost, -label),
    plus a stack for the cells reached at the key being settled: every cell that a front enters
    without climbing (most of them: the inside of each region) costs O(1) instead of a heap
    push, which is what makes a BSDS image take milliseconds. Returns per-pixel labels (int32).
    """
    hh, ww = u.shape
    h, w = seeds.shape
    n = hh * ww
    uf = u.ravel()
    dist = np.full(n, np.inf)
    lab = np.zeros(n, np.int32)
    done = np.zeros(n, np.uint8)
    stack = np.empty(n, np.int32)
    top = 0
    cap = 1024
    hv = np.empty(cap, np.float64)
    ht = np.empty(cap, np.int64)
    h1 = np.empty(cap, np.int64)
    h2 = np.empty(cap, np.int64)
    size = 0
    for i in range(h):
        for j in range(w):
            s = seeds[i, j]
            if s > 0:
                c = (2 * i + 1) * ww + 2 * j + 1
                dist[c] = 0.0
                lab[c] = s
                if size == hv.shape[0]:
                    hv, ht, h1, h2 = _heap_grow(hv, ht, h1, h2)
                hv[size] = 0.0
                ht[size] = -s
                h1[size] = c
                h2[size] = s
                _heap_sift_up(hv, ht, h1, h2, size)
                size += 1
    cur_d = 0.0
    cur_l = 0
    while True:
        if top > 0:
            top -= 1
            c = stack[top]
            d = cur_d
            lc = cur_l
        elif size > 0:
            d = hv[0]
            c = h1[0]
            lc = h2[0]
            size -= 1
            if size > 0:
                _heap_swap(hv, ht, h1, h2, 0, size)
                _heap_sift_down(hv, ht, h1, h2, size)
            cur_d = d
            cur_l = lc
        else:
            break
        if done[c] or d > dist[c] or lc != lab[c]:
            continue
        done[c] = 1
        r = c // ww
        q = c - r * ww
        for k in range(4):
            if k == 0:
                if r == 0:
                    continue
                m = c - ww
            elif k == 1:
                if q == 0:
                    continue
                m = c - 1
            elif k == 2:
                if q == ww - 1:
                    continue
                m = c + 1
            else:
                if r == hh - 1:
                    continue
                m = c + ww
            if done[m]:
                continue
            x = uf[m]
            nd = d if d > x else x
            if nd < dist[m] or (nd == dist[m] and lc > lab[m]):
                dist[m] = nd
                lab[m] = lc
                if nd == d:  # same key as the one being settled: next in line, no heap needed
                    stack[top] = m
                    top += 1
                else:
                    if size == hv.shape[0]:
                        hv, ht, h1, h2 = _heap_grow(hv, ht, h1, h2)
                    hv[size] = nd
                    ht[size] = -lc
                    h1[size] = m
                    h2[size] = lc
                    _heap_sift_up(hv, ht, h1, h2, size)
                    size += 1
    out = np.empty((h, w), np.int32)
    for i in range(h):
        for j in range(w):
            out[i, j] = lab[(2 * i + 1) * ww + 2 * j + 1]
    return out
