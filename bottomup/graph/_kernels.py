"""Shared numba kernels (private; inputs are assumed valid): a binary heap, union-find, boundary faces.

Every stage that needs one of these imports it from here (the oriented watershed, the hierarchy
kernels, the boundary matcher of the metrics); there is no second copy.

Binary min-heap on parallel arrays
----------------------------------
An entry ``i < size`` has the key ``(hv[i], ht[i])`` and the payload ``hp[i]``; ``hv`` may be
float64 or int64, ``ht`` and ``hp`` are int64. Entries leave in increasing lexicographic order
of the key: ``a`` before ``b`` when ``hv[a] < hv[b]``, or ``hv[a] == hv[b]`` and
``ht[a] < ht[b]``. The second key ``ht`` is the explicit tie-break, chosen by each caller, and
the results of the watershed, of the merging and of the matching depend on it:

- greedy UCM merging: ``(mean strength, edge id)``, the lowest edge id first;
- seeded minimax labelling (``uvt``): ``(cost, -label)``, the largest label first;
- the boundary matcher: ``(reduced cost, 0)``, i.e. no tie-break: equal costs leave in the
  order the heap's own layout gives (deterministic for a given sequence of operations).

Entries with equal keys leave in that same layout-determined order. The arrays must have room
for a push (``size < len(hv)``); grow them with :func:`_heap_grow` when they are full.

Union-find
----------
A forest in one int64 array ``uf`` (``uf[x] == x`` for a root), with path halving in
:func:`_find`. Which root absorbs which is the caller's choice (:func:`_union` links the root
of ``a`` under the root of ``b``); the roots reached never depend on the compression.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# ------------------------------------------------------------------------------------------------
# Binary min-heap


@njit(cache=True, inline="always")
def _heap_push(hv, ht, hp, size, v, t, p):
    """Insert the entry ``(v, t) -> p`` into a heap of ``size`` entries; returns ``size + 1``."""
    k = size
    while k > 0:
        par = (k - 1) >> 1
        if v < hv[par] or (v == hv[par] and t < ht[par]):
            hv[k] = hv[par]
            ht[k] = ht[par]
            hp[k] = hp[par]
            k = par
        else:
            break
    hv[k] = v
    ht[k] = t
    hp[k] = p
    return size + 1


@njit(cache=True, inline="always")
def _heap_pop(hv, ht, hp, size):
    """Remove the smallest entry of a non-empty heap; returns ``(v, t, p, size - 1)``."""
    v0 = hv[0]
    t0 = ht[0]
    p0 = hp[0]
    size -= 1
    if size > 0:
        x = hv[size]
        t = ht[size]
        p = hp[size]
        k = 0
        while True:
            c = 2 * k + 1
            if c >= size:
                break
            if c + 1 < size and (hv[c + 1] < hv[c] or (hv[c + 1] == hv[c] and ht[c + 1] < ht[c])):
                c += 1
            if hv[c] < x or (hv[c] == x and ht[c] < t):
                hv[k] = hv[c]
                ht[k] = ht[c]
                hp[k] = hp[c]
                k = c
            else:
                break
        hv[k] = x
        ht[k] = t
        hp[k] = p
    return v0, t0, p0, size


@njit(cache=True)
def _heap_grow(hv, ht, hp):
    """Copies of the heap arrays (or any three parallel arrays) with about twice the room."""
    cap = 2 * hv.shape[0] + 16
    n = hv.shape[0]
    nv = np.empty(cap, hv.dtype)
    nt = np.empty(cap, ht.dtype)
    np_ = np.empty(cap, hp.dtype)
    nv[:n] = hv
    nt[:n] = ht
    np_[:n] = hp
    return nv, nt, np_


# ------------------------------------------------------------------------------------------------
# Union-find


@njit(cache=True, inline="always")
def _find(uf, x):
    """Root of ``x`` in the union-find forest ``uf`` (with path halving)."""
    while uf[x] != x:
        uf[x] = uf[uf[x]]
        x = uf[x]
    return x


@njit(cache=True, inline="always")
def _union(uf, a, b):
    """Join the sets of ``a`` and ``b`` (the root of ``a`` goes under the root of ``b``).

    Returns True when they were apart.
    """
    ra = _find(uf, a)
    rb = _find(uf, b)
    if ra == rb:
        return False
    uf[ra] = rb
    return True


# ------------------------------------------------------------------------------------------------
# Faces between the pixels of a label image


@njit(cache=True)
def _count_faces(labels):
    """Number of faces between 4-adjacent pixels of different labels."""
    h, w = labels.shape
    m = 0
    for i in range(h):
        for j in range(w - 1):
            if labels[i, j] != labels[i, j + 1]:
                m += 1
    for i in range(h - 1):
        for j in range(w):
            if labels[i, j] != labels[i + 1, j]:
                m += 1
    return m


@njit(cache=True)
def _boundary_faces_kernel(labels):
    """All faces between 4-adjacent pixels of different labels: (kind, i, j, label_a, label_b).

    Kind 0 is the face between ``(i, j)`` and ``(i, j + 1)`` (ucm2 cell ``(2i + 1, 2j + 2)``),
    kind 1 the face between ``(i, j)`` and ``(i + 1, j)`` (cell ``(2i + 2, 2j + 1)``); all kind 0
    faces come first, each kind in raster order. ``label_a < label_b``.
    """
    h, w = labels.shape
    m = _count_faces(labels)
    kind = np.empty(m, np.int64)
    fi = np.empty(m, np.int64)
    fj = np.empty(m, np.int64)
    la = np.empty(m, np.int64)
    lb = np.empty(m, np.int64)
    k = 0
    for i in range(h):
        for j in range(w - 1):
            a = labels[i, j]
            b = labels[i, j + 1]
            if a != b:
                kind[k] = 0
                fi[k] = i
                fj[k] = j
                la[k] = min(a, b)
                lb[k] = max(a, b)
                k += 1
    for i in range(h - 1):
        for j in range(w):
            a = labels[i, j]
            b = labels[i + 1, j]
            if a != b:
                kind[k] = 1
                fi[k] = i
                fj[k] = j
                la[k] = min(a, b)
                lb[k] = max(a, b)
                k += 1
    return kind, fi, fj, la, lb
