"""Numba kernels of the permutohedral lattice (Adams, Baek & Davis 2010) and the mean-field update.

Private: the public wrappers in :mod:`deep.crf.lattice` and :mod:`deep.crf.dense_crf` validate
inputs and pass only C-contiguous arrays of fixed dtypes (features float64, values float32,
indices int32/int64).

Lattice layout (``d`` feature dimensions, ``d + 1`` vertices per enclosing simplex):

* ``keys``: ``(N, d+1, d+1)`` int32, for each point and each of its ``d + 1`` simplex vertices the
  first ``d`` elevated integer coordinates (the last is implied: they sum to zero) and a *block id*
  (a region label; vertices of different blocks never exchange mass, which is how contours cut
  the kernel).
* ``bary``: ``(N, d+1)`` float32 barycentric weights (sum to one per point).
* ``offsets``: ``(N, d+1)`` int32 vertex index of each point's simplex vertices.
* ``nb_minus`` / ``nb_plus``: ``(d+1, V)`` int32 neighbour of each vertex one step along lattice
  direction ``j`` (``-1`` where the vertex does not exist).

The splat is a serial scatter in point order (3x faster than a parallel gather here: the values
are read sequentially); the blur is serial (cheap, O(V L) per pass); the slice and the mean-field
update are parallel gathers (``prange`` over points, each writing its own row).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# stumpy-style flag set: no nnan/ninf, so NaN and inf stay correct
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, parallel=True)
def _elevate_kernel(feat, block, keys, bary):
    """Enclosing simplex (vertex keys) and barycentric weights of every point (prange)."""
    n, d = feat.shape
    dp1 = d + 1
    inv_std = np.sqrt(2.0 / 3.0) * dp1
    scale = np.empty(dp1)
    for i in range(1, dp1):
        scale[i] = inv_std / np.sqrt((i + 1.0) * i)
    chunk = 4096
    for ch in prange((n + chunk - 1) // chunk):
        # scratch allocated once per chunk, not per point
        elev = np.empty(dp1)
        rem0 = np.empty(dp1)
        rank = np.zeros(dp1, dtype=np.int64)
        b = np.zeros(dp1 + 1)
        for p in range(ch * chunk, min(n, (ch + 1) * chunk)):
            _elevate_point(feat, block, keys, bary, p, d, scale, elev, rem0, rank, b)


@njit(cache=True, inline="always")
def _elevate_point(feat, block, keys, bary, p, d, scale, elev, rem0, rank, b):
    dp1 = d + 1
    rank[:] = 0
    b[:] = 0.0
    # elevate onto the hyperplane sum(x) = 0 (scaled so the blur has unit std per feature)
    sm = 0.0
    for i in range(d, 0, -1):
        cf = feat[p, i - 1] * scale[i]
        elev[i] = sm - i * cf
        sm += cf
    elev[0] = sm
    # nearest remainder-0 point
    s = 0
    for i in range(dp1):
        v = elev[i] / dp1
        up = np.ceil(v) * dp1
        down = np.floor(v) * dp1
        if up - elev[i] < elev[i] - down:
            rem0[i] = up
        else:
            rem0[i] = down
        s += int(rem0[i] / dp1)
    # rank the differential (ties broken by index)
    for i in range(d):
        di = elev[i] - rem0[i]
        for j in range(i + 1, dp1):
            if di < elev[j] - rem0[j]:
                rank[i] += 1
            else:
                rank[j] += 1
    # bring the point back onto the plane
    if s > 0:
        for i in range(dp1):
            if rank[i] >= dp1 - s:
                rem0[i] -= dp1
                rank[i] += s - dp1
            else:
                rank[i] += s
    elif s < 0:
        for i in range(dp1):
            if rank[i] < -s:
                rem0[i] += dp1
                rank[i] += dp1 + s
            else:
                rank[i] += s
    # barycentric coordinates
    for i in range(dp1):
        v = (elev[i] - rem0[i]) / dp1
        b[d - rank[i]] += v
        b[d + 1 - rank[i]] -= v
    b[0] += 1.0 + b[dp1]
    for r in range(dp1):
        bary[p, r] = b[r]
        for i in range(d):
            if rank[i] <= d - r:
                keys[p, r, i] = int(rem0[i]) + r
            else:
                keys[p, r, i] = int(rem0[i]) + r - dp1
        keys[p, r, d] = block[p]


@njit(cache=True)
def _hash_key(key, mask):
    """Multiplicative hash of a key, kept below 2**52 so it never overflows (also without JIT)."""
    h = np.int64(2166136261)
    for k in range(key.shape[0]):
        h = ((h ^ (np.int64(key[k]) & 0xFFFFFFFF)) * 1000003) & 0xFFFFFFFFF
    h ^= h >> 17
    return h & mask


@njit(cache=True)
def _same_key(vkeys, v, key):
    for k in range(key.shape[0]):
        if vkeys[v, k] != key[k]:
            return False
    return True


@njit(cache=True)
def _insert_kernel(keys, table, offsets, vkeys):
    """Insert every simplex vertex in an open-addressing hash table; return the vertex count.

    Returns -1 when the table would become more than half full (the caller retries larger).
    """
    n, dp1, kl = keys.shape
    mask = table.shape[0] - 1
    max_vertices = table.shape[0] // 2
    n_vertices = 0
    for p in range(n):
        for r in range(dp1):
            key = keys[p, r]
            # fast path: the same vertex as the previous point (neighbouring pixels share them)
            if p > 0 and _same_key(vkeys, offsets[p - 1, r], key):
                offsets[p, r] = offsets[p - 1, r]
                continue
            h = _hash_key(key, mask)
            while True:
                v = table[h]
                if v < 0:
                    if n_vertices >= max_vertices:
                        return -1
                    table[h] = n_vertices
                    for k in range(kl):
                        vkeys[n_vertices, k] = key[k]
                    offsets[p, r] = n_vertices
                    n_vertices += 1
                    break
                if _same_key(vkeys, v, key):
                    offsets[p, r] = v
                    break
                h = (h + 1) & mask
    return n_vertices


@njit(cache=True, parallel=True)
def _neighbours_kernel(vkeys, table, nb_minus, nb_plus):
    """Vertex index one lattice step along each of the ``d + 1`` directions (-1 when absent)."""
    n_vertices, kl = vkeys.shape
    d = kl - 1
    mask = table.shape[0] - 1
    for v in prange(n_vertices):
        key = np.empty(kl, dtype=vkeys.dtype)
        for j in range(d + 1):
            for sign in (-1, 1):
                for k in range(d):
                    key[k] = vkeys[v, k] + sign
                if j < d:
                    key[j] = vkeys[v, j] - sign * d
                key[d] = vkeys[v, d]
                h = _hash_key(key, mask)
                found = -1
                while True:
                    u = table[h]
                    if u < 0:
                        break
                    if _same_key(vkeys, u, key):
                        found = u
                        break
                    h = (h + 1) & mask
                if sign < 0:
                    nb_minus[j, v] = found
                else:
                    nb_plus[j, v] = found


@njit(cache=True, fastmath=_FASTMATH)
def _blur_kernel(a, b, nb_minus, nb_plus):
    """Blur ``B = C_0 ... C_d C_d^T ... C_0^T`` in place on ``a`` (``b`` is scratch).

    ``C_j^T x[v] = (x[v] + x[v - e_j]) / 2`` and ``C_j x[v] = (x[v] + x[v + e_j]) / 2``, absent
    neighbours reading zero. Serial: the passes are cheap (O(V L)), and a parallel region per pass
    costs more than it saves on a shared 2-core machine.
    """
    dp1 = nb_minus.shape[0]
    for step in range(2 * dp1):
        if step < dp1:
            nb = nb_minus[step]
        else:
            nb = nb_plus[2 * dp1 - 1 - step]
        src = a if step % 2 == 0 else b
        dst = b if step % 2 == 0 else a
        n_vertices, n_ch = src.shape
        for v in range(n_vertices):
            u = nb[v]
            if u >= 0:
                for c in range(n_ch):
                    dst[v, c] = 0.5 * (src[v, c] + src[u, c])
            else:
                for c in range(n_ch):
                    dst[v, c] = 0.5 * src[v, c]
    # 2 (d + 1) passes: an even count, so the result is back in ``a``


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _slice_kernel(lat, w_slice, offsets, scale, accumulate, out):
    """out[p] (+)= scale * sum_r w_slice[p, r] * lat[offsets[p, r]] (prange over points)."""
    n, dp1 = offsets.shape
    n_ch = lat.shape[1]
    for p in prange(n):
        if not accumulate:
            for c in range(n_ch):
                out[p, c] = 0.0
        for r in range(dp1):
            w = scale * w_slice[p, r]
            v = offsets[p, r]
            for c in range(n_ch):
                out[p, c] += w * lat[v, c]


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _logits_kernel(neg_unary, pairwise, compat, q):
    """q = -unary - pairwise @ compat.T - rowmax; ``compat`` None is Potts (mu = 1 - I: the
    per-point constant drops out, q = -unary + pairwise - rowmax).

    The exponential is left to numpy (SIMD ``np.exp`` on float32 is ~8x faster than a scalar
    numba loop here); :func:`_normalize_rows_kernel` then divides by the row sums.
    """
    n, n_lab = q.shape
    for p in prange(n):
        m = np.float32(-np.inf)
        for a in range(n_lab):
            if compat is None:
                z = neg_unary[p, a] + pairwise[p, a]
            else:
                z = neg_unary[p, a]
                for b in range(n_lab):
                    z -= compat[a, b] * pairwise[p, b]
            q[p, a] = z
            if z > m:
                m = z
        for a in range(n_lab):
            q[p, a] -= m


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _normalize_rows_kernel(q):
    """Divide each row of ``q`` by its sum."""
    n, n_lab = q.shape
    for p in prange(n):
        s = np.float32(0.0)
        for c in range(n_lab):
            s += q[p, c]
        inv = np.float32(1.0) / s
        for c in range(n_lab):
            q[p, c] *= inv


def _softmax_update(neg_unary, pairwise, compat, q):
    """Mean-field update ``q = softmax(-unary - mu(pairwise))`` in place (Potts: compat None)."""
    _logits_kernel(neg_unary, pairwise, compat, q)
    np.exp(q, out=q)
    _normalize_rows_kernel(q)


@njit(cache=True, fastmath=_FASTMATH)
def _splat_scatter_kernel(values, w_splat, offsets, lat):
    """lat[offsets[p, r]] += w_splat[p, r] * values[p] in point order (serial scatter)."""
    n, dp1 = offsets.shape
    n_ch = lat.shape[1]
    lat[:] = 0.0
    for p in range(n):
        for r in range(dp1):
            w = w_splat[p, r]
            v = offsets[p, r]
            for c in range(n_ch):
                lat[v, c] += w * values[p, c]


@njit(cache=True, parallel=True)
def _neg_transpose_kernel(unary, out):
    """out[p, l] = -unary[l, p]: (L, N) energies to (N, L) point-major negatives, in one pass."""
    n_lab, n = unary.shape
    for p in prange(n):
        for c in range(n_lab):
            out[p, c] = -unary[c, p]


@njit(cache=True, parallel=True)
def _transpose_kernel(q, out):
    """out[l, p] = q[p, l]: (N, L) marginals back to the (L, N) label-plane layout."""
    n, n_lab = q.shape
    for c in prange(n_lab):
        for p in range(n):
            out[c, p] = q[p, c]
