"""Numba kernels for hierarchies (private; inputs are assumed valid).

Faces of the double-size grid are described as in :mod:`bottomup.owt._kernels`: kind 0 is the
face between pixels ``(i, j)`` and ``(i, j + 1)`` at ``(2i + 1, 2j + 2)``, kind 1 the face between
``(i, j)`` and ``(i + 1, j)`` at ``(2i + 2, 2j + 1)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bottomup.graph._kernels import (
    _boundary_faces_kernel,
    _find,
    _heap_grow,
    _heap_pop,
    _heap_push,
    _union,
)

# ------------------------------------------------------------------------------------------------
# Open-addressing hash map int64 -> int64 (keys >= 0; -1 empty, -2 deleted) in two arrays.


@njit(cache=True, inline="always")
def _hash_home(key, mask):
    x = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    return np.int64(x >> np.uint64(20)) & mask


@njit(cache=True, inline="always")
def _hash_get(hk, hv, key):
    mask = hk.shape[0] - 1
    i = _hash_home(key, mask)
    while hk[i] != -1:
        if hk[i] == key:
            return hv[i]
        i = (i + 1) & mask
    return -1


@njit(cache=True, inline="always")
def _hash_del(hk, key):
    mask = hk.shape[0] - 1
    i = _hash_home(key, mask)
    while hk[i] != -1:
        if hk[i] == key:
            hk[i] = -2
            return
        i = (i + 1) & mask


@njit(cache=True, inline="always")
def _hash_put(hk, hv, key, val):
    """Insert a key known to be absent; returns True when a fresh (never used) slot was taken."""
    mask = hk.shape[0] - 1
    i = _hash_home(key, mask)
    while hk[i] >= 0:
        i = (i + 1) & mask
    fresh = hk[i] == -1
    hk[i] = key
    hv[i] = val
    return fresh


@njit(cache=True)
def _hash_rebuild(hk, hv):
    cap = hk.shape[0]
    nk = np.full(cap, -1, np.int64)
    nv = np.empty(cap, np.int64)
    for i in range(cap):
        if hk[i] >= 0:
            _hash_put(nk, nv, hk[i], hv[i])
    used = 0
    for i in range(cap):
        if nk[i] >= 0:
            used += 1
    return nk, nv, used


@njit(cache=True)
def _greedy_merge_kernel(n_leaves, ea, eb, sums, counts):
    """Merge adjacent regions in order of the mean strength of their common boundary.

    ``ea < eb`` are leaf ids of the region adjacency graph; ``sums`` and ``counts`` hold the sum
    and number of boundary elements of each edge (consumed in place). Returns parents, altitudes.
    """
    n_edges = ea.shape[0]
    n_max = 2 * n_leaves - 1
    parents = np.empty(n_max, np.int64)
    altitudes = np.zeros(n_max, np.float64)
    node = np.arange(n_leaves)
    absorbed = np.zeros(n_leaves, np.bool_)
    head = np.full(n_leaves, -1, np.int64)
    tail = np.full(n_leaves, -1, np.int64)
    nxt = np.full(2 * n_edges, -1, np.int64)
    deg = np.zeros(n_leaves, np.int64)
    alive = np.ones(n_edges, np.bool_)
    ends = np.empty((n_edges, 2), np.int64)
    cap_h = 16
    while cap_h < 4 * n_edges:
        cap_h *= 2
    hk = np.full(cap_h, -1, np.int64)
    hvals = np.empty(cap_h, np.int64)
    used = 0
    # heap of (mean, edge) -> edge, ties to the lowest edge id; an entry is stale when the edge
    # died or its mean changed
    cap = max(16, 2 * n_edges)
    hv = np.empty(cap, np.float64)
    ht = np.empty(cap, np.int64)
    hp = np.empty(cap, np.int64)
    size = 0
    for e in range(n_edges):
        a = ea[e]
        b = eb[e]
        ends[e, 0] = a
        ends[e, 1] = b
        for side in range(2):
            r = ends[e, side]
            s = 2 * e + side
            if head[r] < 0:
                head[r] = s
            else:
                nxt[tail[r]] = s
            tail[r] = s
            deg[r] += 1
        _hash_put(hk, hvals, a * n_leaves + b, e)
        used += 1
        size = _heap_push(hv, ht, hp, size, sums[e] / counts[e], e, e)
    n_nodes = n_leaves
    last = -np.inf
    while size > 0:
        val, _, e, size = _heap_pop(hv, ht, hp, size)
        if not alive[e] or val != sums[e] / counts[e]:
            continue
        # a merged mean is an average of means >= the current level; rounding may put it an ulp
        # below, which must not make the levels decrease
        if val < last:
            val = last
        last = val
        a = ends[e, 0]
        b = ends[e, 1]
        if deg[a] >= deg[b]:
            f = a
            s_ = b
        else:
            f = b
            s_ = a
        new = n_nodes
        n_nodes += 1
        parents[node[a]] = new
        parents[node[b]] = new
        altitudes[new] = val
        node[f] = new
        alive[e] = False
        _hash_del(hk, min(a, b) * n_leaves + max(a, b))
        deg[f] -= 1
        deg[s_] -= 1
        slot = head[s_]
        while slot >= 0:
            nx = nxt[slot]
            e2 = slot >> 1
            if alive[e2]:
                side = slot & 1
                other = ends[e2, 1 - side]
                _hash_del(hk, min(s_, other) * n_leaves + max(s_, other))
                k2 = min(f, other) * n_leaves + max(f, other)
                e3 = _hash_get(hk, hvals, k2)
                if e3 >= 0:
                    sums[e3] += sums[e2]
                    counts[e3] += counts[e2]
                    alive[e2] = False
                    deg[other] -= 1
                    if size == hv.shape[0]:
                        hv, ht, hp = _heap_grow(hv, ht, hp)
                    size = _heap_push(hv, ht, hp, size, sums[e3] / counts[e3], e3, e3)
                else:
                    ends[e2, side] = f
                    if _hash_put(hk, hvals, k2, e2):
                        used += 1
                        if 2 * used > hk.shape[0]:
                            hk, hvals, used = _hash_rebuild(hk, hvals)
                    deg[f] += 1
                    nxt[slot] = -1
                    if head[f] < 0:
                        head[f] = slot
                    else:
                        nxt[tail[f]] = slot
                    tail[f] = slot
            slot = nx
        head[s_] = -1
        tail[s_] = -1
        deg[s_] = 0
        absorbed[s_] = True
    # A disconnected adjacency graph cannot come from a partition of a grid; join any remaining
    # roots at the top level so that the result is still one tree.
    if n_nodes < n_max:
        top = 0.0
        for v in range(n_leaves, n_nodes):
            if altitudes[v] > top:
                top = altitudes[v]
        cur = -1
        for r in range(n_leaves):
            if absorbed[r]:
                continue
            if cur < 0:
                cur = node[r]
            else:
                new = n_nodes
                n_nodes += 1
                parents[cur] = new
                parents[node[r]] = new
                altitudes[new] = top
                cur = new
    parents[n_nodes - 1] = n_nodes - 1
    return parents[:n_nodes], altitudes[:n_nodes]


@njit(cache=True)
def _kruskal_kernel(n_leaves, ea, eb, w):
    """Single-linkage tree of the graph (ea, eb) whose edges come sorted by weight ``w``."""
    n_max = 2 * n_leaves - 1
    parents = np.empty(n_max, np.int64)
    altitudes = np.zeros(n_max, np.float64)
    uf = np.arange(n_leaves)
    node = np.arange(n_leaves)
    n_nodes = n_leaves
    for e in range(ea.shape[0]):
        ra = _find(uf, ea[e])
        rb = _find(uf, eb[e])
        if ra == rb:
            continue
        new = n_nodes
        n_nodes += 1
        parents[node[ra]] = new
        parents[node[rb]] = new
        altitudes[new] = w[e]
        uf[ra] = rb
        node[rb] = new
        if n_nodes == n_max:
            break
    parents[n_nodes - 1] = n_nodes - 1
    return parents[:n_nodes], altitudes[:n_nodes]


@njit(cache=True)
def _lca_kernel(parents, n_leaves, na, nb):
    """Lowest common ancestor of each node pair (na[e], nb[e]) (offline, Tarjan-like).

    Each node stands in for one leaf below it (``pa``, ``pb``); the tree is replayed bottom-up
    with a union-find over leaves, each set keeping a list of its pending pairs, and only the
    smaller lists are scanned at a merge (small-to-large). The leaves' LCA ``l`` gives the nodes'
    LCA as ``max(l, na[e], nb[e])``: nodes on one path to the root are ordered by index.
    """
    n = parents.shape[0]
    n_pairs = na.shape[0]
    out = np.full(n_pairs, -1, np.int64)
    if n_pairs == 0:
        return out
    # a leaf below every node (its smallest), then the leaf pairs
    low = np.empty(n, np.int64)
    for v in range(n):
        low[v] = v if v < n_leaves else n
    for v in range(n - 1):
        if low[v] < low[parents[v]]:
            low[parents[v]] = low[v]
    pa = np.empty(n_pairs, np.int64)
    pb = np.empty(n_pairs, np.int64)
    for e in range(n_pairs):
        pa[e] = low[na[e]]
        pb[e] = low[nb[e]]
        if pa[e] == pb[e]:
            out[e] = pa[e]
    # children in CSR form
    nch = np.zeros(n + 1, np.int64)
    for v in range(n):
        p = parents[v]
        if p != v:
            nch[p + 1] += 1
    for v in range(n):
        nch[v + 1] += nch[v]
    ch = np.empty(max(nch[n], 1), np.int64)
    fill = nch[:n].copy()
    for v in range(n):
        p = parents[v]
        if p != v:
            ch[fill[p]] = v
            fill[p] += 1
    uf = np.arange(n_leaves)
    head = np.full(n_leaves, -1, np.int64)
    cnt = np.zeros(n_leaves, np.int64)
    nxt = np.full(2 * n_pairs, -1, np.int64)
    for e in range(n_pairs):
        if out[e] >= 0:
            continue
        for side in range(2):
            r = pa[e] if side == 0 else pb[e]
            s = 2 * e + side
            nxt[s] = head[r]
            head[r] = s
            cnt[r] += 1
    rep = np.empty(n, np.int64)
    for v in range(n_leaves):
        rep[v] = v
    for v in range(n_leaves, n):
        c0 = nch[v]
        c1 = nch[v + 1]
        big = _find(uf, rep[ch[c0]])
        for t in range(c0 + 1, c1):
            r = _find(uf, rep[ch[t]])
            if cnt[r] > cnt[big]:
                big = r
        for t in range(c0, c1):
            r = _find(uf, rep[ch[t]])
            if r != big:
                uf[r] = big
        for t in range(c0, c1):
            r = rep[ch[t]]
            # r was a root before the unions above; after them its own list is still intact
            if r == big:
                continue
            slot = head[r]
            while slot >= 0:
                nx = nxt[slot]
                e = slot >> 1
                if out[e] < 0:
                    other = pb[e] if (slot & 1) == 0 else pa[e]
                    if _find(uf, other) == big:
                        out[e] = v
                    else:
                        nxt[slot] = head[big]
                        head[big] = slot
                        cnt[big] += 1
                slot = nx
            head[r] = -1
            cnt[r] = 0
        rep[v] = big
    for e in range(n_pairs):
        out[e] = max(out[e], na[e], nb[e])
    return out


@njit(cache=True)
def _cut_nodes_kernel(parents, altitudes, threshold, first_removed):
    """Top node of every node in the cut at ``threshold`` that keeps the nodes < first_removed."""
    n = parents.shape[0]
    rid = np.empty(n, np.int64)
    for v in range(n - 1, -1, -1):
        p = parents[v]
        if p != v and altitudes[p] <= threshold and p < first_removed:
            rid[v] = rid[p]
        else:
            rid[v] = v
    return rid


@njit(cache=True)
def _relabel_raster_kernel(leaf_labels, leaf_region, n_nodes):
    """Dense labels 0..K-1 numbered in raster order of first appearance."""
    h, w = leaf_labels.shape
    new = np.full(n_nodes, -1, np.int64)
    out = np.empty((h, w), np.int32)
    k = 0
    for i in range(h):
        for j in range(w):
            r = leaf_region[leaf_labels[i, j]]
            if new[r] < 0:
                new[r] = k
                k += 1
            out[i, j] = new[r]
    return out, k


@njit(cache=True)
def _ucm2_leaves_kernel(u):
    """Leaves of a ucm2: pixel cells joined by zero faces or zero vertices; dense raster labels."""
    hh, ww = u.shape
    h = (hh - 1) // 2
    w = (ww - 1) // 2
    n = h * w
    uf = np.arange(n)
    for i in range(h):
        for j in range(w - 1):
            if u[2 * i + 1, 2 * j + 2] <= 0.0:
                _union(uf, i * w + j, i * w + j + 1)
    for i in range(h - 1):
        for j in range(w):
            if u[2 * i + 2, 2 * j + 1] <= 0.0:
                _union(uf, i * w + j, (i + 1) * w + j)
    # vertices: a zero vertex 8-connects the cells around it
    for a in range(h + 1):
        for b in range(w + 1):
            if u[2 * a, 2 * b] > 0.0:
                continue
            first = -1
            for di in range(-1, 1):
                for dj in range(-1, 1):
                    ci = a + di
                    cj = b + dj
                    if 0 <= ci < h and 0 <= cj < w:
                        c = ci * w + cj
                        if first < 0:
                            first = c
                        else:
                            _union(uf, first, c)
    labels = np.empty((h, w), np.int32)
    lab = np.full(n, -1, np.int64)
    k = 0
    for p in range(n):
        r = _find(uf, p)
        if lab[r] < 0:
            lab[r] = k
            k += 1
        labels[p // w, p - (p // w) * w] = lab[r]
    return labels, k


@njit(cache=True)
def _ucm2_links_kernel(u, labels):
    """Links between different leaves of a ucm2: faces, plus vertices lower than a neighbour face.

    A vertex whose value is below one of its incident faces 8-connects its cells at that value
    (it never does in a vertex-completed ucm2, where each vertex is the max of its neighbours).
    """
    hh, ww = u.shape
    h, w = labels.shape
    kind, fi, fj, fa, fb = _boundary_faces_kernel(labels)
    m = kind.shape[0]
    cap = 2 * h * w + 16
    la = np.empty(cap, np.int64)
    lb = np.empty(cap, np.int64)
    lw = np.empty(cap, np.float64)
    la[:m] = fa
    lb[:m] = fb
    for f in range(m):
        lw[f] = u[2 * fi[f] + 1 + kind[f], 2 * fj[f] + 2 - kind[f]]
    cells = np.empty(4, np.int64)
    for a in range(h + 1):
        for b in range(w + 1):
            r = 2 * a
            c = 2 * b
            x = u[r, c]
            mx = 0.0
            if r > 0 and u[r - 1, c] > mx:
                mx = u[r - 1, c]
            if r + 1 < hh and u[r + 1, c] > mx:
                mx = u[r + 1, c]
            if c > 0 and u[r, c - 1] > mx:
                mx = u[r, c - 1]
            if c + 1 < ww and u[r, c + 1] > mx:
                mx = u[r, c + 1]
            if not x < mx:
                continue
            nc = 0
            for di in range(-1, 1):
                for dj in range(-1, 1):
                    ci = a + di
                    cj = b + dj
                    if 0 <= ci < h and 0 <= cj < w:
                        cells[nc] = labels[ci, cj]
                        nc += 1
            for s in range(1, nc):
                if cells[s] != cells[0]:
                    if m + 1 >= la.shape[0]:
                        la, lb, lw = _heap_grow(la, lb, lw)
                    la[m] = min(cells[0], cells[s])
                    lb[m] = max(cells[0], cells[s])
                    lw[m] = x
                    m += 1
    return la[:m].copy(), lb[:m].copy(), lw[:m].copy()
