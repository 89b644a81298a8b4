"""Slow, obvious reference implementations for the hierarchy stage (test use only).

Each function is written for clarity on tiny inputs (plain Python loops, dicts, heapq), and is
compared with the numba kernels in ``tests/test_owt.py``, ``test_hierarchy.py`` and
``test_interactive.py``.
"""

from __future__ import annotations

import heapq

import numpy as np
import scipy.ndimage as ndi


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label images describe the same partition (up to renumbering)."""
    a = np.asarray(a).ravel()
    b = np.asarray(b).ravel()
    pairs = {(int(x), int(y)) for x, y in zip(a, b, strict=True)}
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def ucm2_cut(ucm2: np.ndarray, t: float) -> np.ndarray:
    """The BSDS rule: 8-connected components of ``ucm2 <= t`` read at the pixel sites."""
    return ndi.label(ucm2 <= t, structure=np.ones((3, 3)))[0][1::2, 1::2]


def face_pairs(labels: np.ndarray):
    """Yield ``((i, j), (i2, j2), (r, c))``: 4-adjacent pixels and their face on the ucm2 grid."""
    h, w = labels.shape
    for i in range(h):
        for j in range(w):
            if j + 1 < w:
                yield (i, j), (i, j + 1), (2 * i + 1, 2 * j + 2)
            if i + 1 < h:
                yield (i, j), (i + 1, j), (2 * i + 2, 2 * j + 1)


def greedy_mean_merge(labels: np.ndarray, face_strength: dict):
    """ucm_mean_pb written plainly: returns ``{frozenset({a, b}): level}`` for adjacent leaves.

    ``face_strength[(r, c)]`` is the strength of the face at ``(r, c)``. At each step the adjacent
    pair of current regions with the lowest mean boundary strength merges (ties: the pair with the
    smallest sorted member lists). The result maps every pair of adjacent *leaves* to the level at
    which they first lie in one region.
    """
    sums: dict = {}
    cnts: dict = {}
    for p, q, f in face_pairs(labels):
        a, b = int(labels[p]), int(labels[q])
        if a == b:
            continue
        key = frozenset((a, b))
        sums[key] = sums.get(key, 0.0) + face_strength[f]
        cnts[key] = cnts.get(key, 0) + 1
    leaf_pairs = list(sums)
    # adjacency between current regions (frozensets of leaves)
    adj = {frozenset(frozenset([a]) for a in k): (sums[k], cnts[k]) for k in sums}
    level: dict = {}
    while adj:
        best = min(adj, key=lambda k: adj[k][0] / adj[k][1])  # inputs are tie-free in the tests
        s, c = adj.pop(best)
        m = s / c
        r1, r2 = tuple(best)
        merged = r1 | r2
        for lp in leaf_pairs:
            a, b = tuple(lp)
            if lp not in level and ((a in r1 and b in r2) or (a in r2 and b in r1)):
                level[lp] = m
        new_adj = {}
        for k, (s2, c2) in adj.items():
            if r1 in k or r2 in k:
                (other,) = tuple(k - {r1, r2}) or (None,)
                if other is None:
                    continue
                key = frozenset([merged, other])
                os_, oc = new_adj.get(key, (0.0, 0))
                new_adj[key] = (os_ + s2, oc + c2)
            else:
                new_adj[k] = (s2, c2)
        adj = new_adj
    return level


def lca_altitude(parents: np.ndarray, altitudes: np.ndarray, a: int, b: int) -> float:
    """Altitude of the lowest common ancestor of nodes ``a`` and ``b`` by walking up."""
    anc = set()
    v = a
    while True:
        anc.add(v)
        if parents[v] == v:
            break
        v = int(parents[v])
    v = b
    while v not in anc:
        v = int(parents[v])
    return float(altitudes[v])


def uvt(ucm2: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Minimax-path (ultrametric) Voronoi labelling on the ucm2 grid, as the release's ``uvt``.

    Seeds sit at the pixel sites; the front propagates with 4-connectivity over the whole
    double-size grid, the cost of a path is the max of the ucm2 values on it, and ties go to the
    larger label. Returns the label of every pixel.
    """
    hh, ww = ucm2.shape
    dist = np.full((hh, ww), np.inf)
    lab = np.zeros((hh, ww), np.int64)
    heap = []
    for i, j in zip(*np.nonzero(seeds), strict=True):
        r, c = 2 * i + 1, 2 * j + 1
        dist[r, c] = 0.0
        lab[r, c] = max(lab[r, c], int(seeds[i, j]))
    for r, c in zip(*np.nonzero(lab), strict=True):
        heapq.heappush(heap, (0.0, -int(lab[r, c]), int(r), int(c)))
    done = np.zeros((hh, ww), bool)
    while heap:
        d, nl, r, c = heapq.heappop(heap)
        if done[r, c]:
            continue
        done[r, c] = True
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            r2, c2 = r + dr, c + dc
            if 0 <= r2 < hh and 0 <= c2 < ww and not done[r2, c2]:
                nd = max(d, ucm2[r2, c2])
                if nd < dist[r2, c2] or (nd == dist[r2, c2] and -nl > lab[r2, c2]):
                    dist[r2, c2] = nd
                    lab[r2, c2] = -nl
                    heapq.heappush(heap, (nd, nl, r2, c2))
    return lab[1::2, 1::2]


# ------------------------------------------------------------------------------------------------
# higra adapters (the independent oracle); callers importorskip("higra") first


def higra_graph_weights(shape, wh, wv):
    """higra's 4-adjacency graph of ``shape`` and its edge weights taken from ``wh``/``wv``."""
    import higra as hg

    h, w = shape
    g = hg.get_4_adjacency_graph((h, w))
    s, t = g.edge_list()
    si, sj = np.divmod(np.asarray(s), w)
    ti, tj = np.divmod(np.asarray(t), w)
    weights = np.zeros(len(si))
    vert = si != ti
    hor = ~vert
    weights[hor] = wh[si[hor], np.minimum(sj, tj)[hor]]
    weights[vert] = wv[np.minimum(si, ti)[vert], sj[vert]]
    return g, weights, (si, sj, ti, tj)


def higra_mean_pb_ucm2(shape, wh, wv):
    """ucm2 (BSDS layout) of higra's ``mean_pb_hierarchy`` on the given edge weights."""
    import higra as hg

    g, weights, (si, sj, ti, tj) = higra_graph_weights(shape, wh, wv)
    h, w = shape
    u = np.zeros((2 * h + 1, 2 * w + 1))
    if len(np.unique(hg.labelisation_watershed(g, weights))) == 1:
        return u  # higra raises on a single region
    tree, alt = hg.mean_pb_hierarchy(g, weights, shape=(h, w))
    u[si + ti + 1, sj + tj + 1] = hg.saliency(tree, alt)
    p = np.pad(u, 1)
    v = np.maximum.reduce([p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]])
    u[::2, ::2] = v[::2, ::2]
    return u


def higra_watershed(shape, wh, wv):
    """higra's watershed cut labels of the edge-weighted 4-adjacency graph."""
    import higra as hg

    g, weights, _ = higra_graph_weights(shape, wh, wv)
    return np.asarray(hg.labelisation_watershed(g, weights)).reshape(shape)


def watershed_forest_weight(labels: np.ndarray, wh, wv) -> float:
    """Weight of the cheapest spanning forest with one tree per region of ``labels``.

    Every watershed cut is a minimum spanning forest cut relative to the minima (Cousty et al.,
    PAMI 2009, Theorem 2), so two watershed cuts of the same graph give the same value (each
    tree spans a connected region; edges between regions are dropped).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    h, w = labels.shape
    idx = np.arange(h * w).reshape(h, w)
    rows, cols, vals = [], [], []
    for a, b, x in ((idx[:, :-1], idx[:, 1:], wh), (idx[:-1, :], idx[1:, :], wv)):
        same = labels.ravel()[a.ravel()] == labels.ravel()[b.ravel()]
        rows.append(a.ravel()[same])
        cols.append(b.ravel()[same])
        vals.append(np.asarray(x, float).ravel()[same] + 1.0)  # +1: csgraph drops 0 weights
    g = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                   shape=(h * w, h * w))
    t = minimum_spanning_tree(g)
    n_regions = len(np.unique(labels))
    assert t.nnz == h * w - n_regions, "a region is not connected"
    return float(t.sum()) - t.nnz


def naive_lca(parents, a, b):
    """Lowest common ancestor by walking up from ``a`` and then from ``b``."""
    anc = {a}
    while parents[a] != a:
        a = parents[a]
        anc.add(a)
    while b not in anc:
        b = parents[b]
    return b
