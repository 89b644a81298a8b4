"""numba kernels of :func:`bottomup.interactive.segment`: flat zones of a ucm2 and the fronts on them."""

from __future__ import annotations

import numpy as np
from numba import njit

from bottomup.graph._kernels import _heap_grow, _heap_pop, _heap_push


@njit(cache=True)
def _flat_zones_kernel(u):
    """Flat zones of a grid: 4-connected cells of equal value, numbered in raster order.

    Returns ``zone`` (one id per cell), ``values`` (the value of each zone) and the two ends
    ``(a, b)``, ``a < b``, of every pair of 4-adjacent cells in different zones (with repeats).
    """
    hh, ww = u.shape
    n = hh * ww
    uf = u.ravel()
    zone = np.full(n, -1, np.int32)
    values = np.empty(n, np.float64)
    stack = np.empty(n, np.int32)
    nz = 0
    for s in range(n):
        if zone[s] >= 0:
            continue
        v = uf[s]
        zone[s] = nz
        stack[0] = s
        top = 1
        while top > 0:
            top -= 1
            c = stack[top]
            r = c // ww
            q = c - r * ww
            if r > 0 and zone[c - ww] < 0 and uf[c - ww] == v:
                zone[c - ww] = nz
                stack[top] = c - ww
                top += 1
            if r < hh - 1 and zone[c + ww] < 0 and uf[c + ww] == v:
                zone[c + ww] = nz
                stack[top] = c + ww
                top += 1
            if q > 0 and zone[c - 1] < 0 and uf[c - 1] == v:
                zone[c - 1] = nz
                stack[top] = c - 1
                top += 1
            if q < ww - 1 and zone[c + 1] < 0 and uf[c + 1] == v:
                zone[c + 1] = nz
                stack[top] = c + 1
                top += 1
        values[nz] = v
        nz += 1
    count = 0
    for r in range(hh):
        for q in range(ww):
            c = r * ww + q
            if q < ww - 1 and zone[c] != zone[c + 1]:
                count += 1
            if r < hh - 1 and zone[c] != zone[c + ww]:
                count += 1
    a = np.empty(count, np.int64)
    b = np.empty(count, np.int64)
    k = 0
    for r in range(hh):
        for q in range(ww):
            c = r * ww + q
            if q < ww - 1 and zone[c] != zone[c + 1]:
                a[k] = min(zone[c], zone[c + 1])
                b[k] = max(zone[c], zone[c + 1])
                k += 1
            if r < hh - 1 and zone[c] != zone[c + ww]:
                a[k] = min(zone[c], zone[c + ww])
                b[k] = max(zone[c], zone[c + ww])
                k += 1
    return zone, values[:nz].copy(), a, b


@njit(cache=True)
def _zone_seeds_kernel(pixel_zone, seeds, n_zones):
    """Largest seed label in each zone (0 = none)."""
    out = np.zeros(n_zones, np.int32)
    h, w = seeds.shape
    for i in range(h):
        for j in range(w):
            s = seeds[i, j]
            if s > 0:
                z = pixel_zone[i, j]
                if s > out[z]:
                    out[z] = s
    return out


@njit(cache=True)
def _zone_fronts_kernel(indptr, indices, values, seed_label):
    """The release's ``uvt`` fronts, run on the flat-zone graph: a zone is one node of its level.

    Every cell of a flat zone ends with the same (cost, label) key: the first one to reach it
    floods it at that key (moving inside costs max(key, level) = key), so the zones can be
    settled as single nodes in increasing (cost, -label), the larger label winning ties. Seeded
    zones (level 0, the pixel sites) start at cost 0 with their largest label.
    """
    nz = values.shape[0]
    dist = np.full(nz, np.inf)
    lab = np.zeros(nz, np.int32)
    done = np.zeros(nz, np.uint8)
    # heap of (cost, -label) -> zone (graph._kernels): the cheapest front first, ties to the larger label
    cap = 1024
    hv = np.empty(cap, np.float64)
    ht = np.empty(cap, np.int64)
    hp = np.empty(cap, np.int64)
    size = 0
    for z in range(nz):
        s = seed_label[z]
        if s > 0:
            dist[z] = 0.0
            lab[z] = s
            if size == hv.shape[0]:
                hv, ht, hp = _heap_grow(hv, ht, hp)
            size = _heap_push(hv, ht, hp, size, 0.0, -s, z)
    while size > 0:
        d, t, z, size = _heap_pop(hv, ht, hp, size)
        lc = -t
        if done[z] or d > dist[z] or lc != lab[z]:
            continue
        done[z] = 1
        for e in range(indptr[z], indptr[z + 1]):
            m = indices[e]
            if done[m]:
                continue
            x = values[m]
            nd = d if d > x else x
            if nd < dist[m] or (nd == dist[m] and lc > lab[m]):
                dist[m] = nd
                lab[m] = lc
                if size == hv.shape[0]:
                    hv, ht, hp = _heap_grow(hv, ht, hp)
                size = _heap_push(hv, ht, hp, size, nd, -lc, m)
    return lab
