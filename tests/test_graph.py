"""Graph primitives: region adjacency pairs, and the shared heap and union-find kernels."""

from __future__ import annotations

import numpy as np
import pytest

from bottomup.graph import adjacent_pairs
from bottomup.graph._kernels import _find, _heap_grow, _heap_pop, _heap_push, _union


def _naive_pairs(labels):
    """Pair -> number of pixel edges, by looping over every 4-neighbour pair."""
    out = {}
    h, w = labels.shape
    for i in range(h):
        for j in range(w):
            for ii, jj in ((i, j + 1), (i + 1, j)):
                if ii < h and jj < w and labels[i, j] != labels[ii, jj]:
                    key = (min(labels[i, j], labels[ii, jj]), max(labels[i, j], labels[ii, jj]))
                    out[key] = out.get(key, 0) + 1
    return out


def test_adjacent_pairs_hand_computed():
    labels = np.array([[0, 0, 1],
                       [2, 2, 1]])
    pairs, faces, face_pair, counts = adjacent_pairs(labels, return_faces=True, return_counts=True)
    assert pairs.tolist() == [[0, 1], [0, 2], [1, 2]]
    assert counts.tolist() == [1, 2, 1]
    # ucm2 cells: horizontal neighbours (2i+1, 2j+2) first, then vertical ones (2i+2, 2j+1)
    assert faces.tolist() == [[1, 4], [3, 4], [2, 1], [2, 3]]
    assert face_pair.tolist() == [0, 2, 1, 1]
    assert adjacent_pairs(np.zeros((3, 4), int)).shape == (0, 2)


def test_adjacent_pairs_match_naive():
    rng = np.random.default_rng(0)
    for _ in range(5):
        labels = rng.integers(0, 12, (9, 14)) * 3  # sparse labels are fine
        pairs, faces, face_pair, counts = adjacent_pairs(labels, return_faces=True, return_counts=True)
        want = _naive_pairs(labels)
        assert [tuple(p) for p in pairs.tolist()] == sorted(want)
        assert counts.tolist() == [want[k] for k in sorted(want)]
        # every face separates exactly the pair it points to
        r, c = faces[:, 0], faces[:, 1]
        horiz = r % 2 == 1
        i0 = np.where(horiz, (r - 1) // 2, (r - 2) // 2)
        j0 = np.where(horiz, (c - 2) // 2, (c - 1) // 2)
        a, b = labels[i0, j0], labels[i0 + ~horiz, j0 + horiz]
        np.testing.assert_array_equal(np.sort(np.stack([a, b], 1), axis=1), pairs[face_pair])
        assert len(faces) == sum(want.values())


def test_adjacent_pairs_errors():
    with pytest.raises(TypeError, match="`labels` must be an integer"):
        adjacent_pairs(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        adjacent_pairs(np.zeros((2, 2, 2), int))
    with pytest.raises(ValueError, match=">= 0"):
        adjacent_pairs([[0, -1]])


def test_heap_pops_in_lexicographic_key_order():
    rng = np.random.default_rng(1)
    n = 300
    v = rng.integers(0, 5, n).astype(np.float64)  # many equal first keys
    t = rng.permutation(n)  # distinct tie keys: the order is fully determined
    hv, ht, hp = np.empty(4), np.empty(4, np.int64), np.empty(4, np.int64)
    size = 0
    out = []
    for k in range(n):
        if size == hv.shape[0]:
            hv, ht, hp = _heap_grow(hv, ht, hp)
        size = _heap_push(hv, ht, hp, size, v[k], t[k], 1000 + k)
        if k % 3 == 2:  # interleave pops
            out.append(_heap_pop(hv, ht, hp, size)[:3])
            size -= 1
    while size:
        a, b, c, size = _heap_pop(hv, ht, hp, size)
        out.append((a, b, c))
    assert len(out) == n
    popped_while_pushing = n // 3
    tail = out[popped_while_pushing:]
    assert tail == sorted(tail)  # after the last push, strictly in key order
    assert sorted(out) == sorted((v[k], t[k], 1000 + k) for k in range(n))  # nothing lost


def test_heap_int_keys_without_tie_break():
    rng = np.random.default_rng(2)
    d = rng.integers(-5, 5, 200)
    hd, ht, hj = np.empty(200, np.int64), np.zeros(200, np.int64), np.empty(200, np.int64)
    size = 0
    for k in range(200):
        size = _heap_push(hd, ht, hj, size, d[k], 0, k)
    got = []
    while size:
        a, _, j, size = _heap_pop(hd, ht, hj, size)
        got.append((a, j))
    assert [a for a, _ in got] == sorted(d.tolist())
    assert all(d[j] == a for a, j in got)


def test_union_find_matches_connected_components():
    rng = np.random.default_rng(3)
    n = 60
    edges = rng.integers(0, n, (45, 2))
    uf = np.arange(n)
    merged = [bool(_union(uf, int(a), int(b))) for a, b in edges]
    roots = np.array([_find(uf, x) for x in range(n)])
    adj = np.zeros((n, n), bool)
    adj[edges[:, 0], edges[:, 1]] = adj[edges[:, 1], edges[:, 0]] = True
    from scipy.sparse.csgraph import connected_components

    k, comp = connected_components(adj, directed=False)
    # same partition: roots and components determine each other
    assert len(set(zip(roots, comp, strict=True))) == k == len(set(roots))
    assert sum(merged) == n - k  # a union joins two sets exactly when they were apart
