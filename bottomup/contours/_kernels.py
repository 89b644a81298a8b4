"""Numba kernels of :mod:`bottomup.contours` (private; inputs are validated by the callers)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True)
def _ori_weight(a, b, tol):
    d = abs(a - b) % math.pi
    if d > math.pi / 2:
        d = math.pi - d
    return math.cos(max(0.0, d - tol))


@njit(cache=True)
def _nms_neighbours(th):
    """Offsets (dr, dc) of the two candidates on each side and the mixing weight d."""
    if th == 0.0:
        return -1, 0, -1, 0, 1, 0, 1, 0, 0.0
    if th < math.pi / 4:
        return -1, 0, -1, -1, 1, 0, 1, 1, math.tan(th)
    if th < math.pi / 2:
        return 0, -1, -1, -1, 0, 1, 1, 1, math.tan(math.pi / 2 - th)
    if th == math.pi / 2:
        return 0, -1, 0, -1, 0, 1, 0, 1, 0.0
    if th < 3 * math.pi / 4:
        return 0, -1, 1, -1, 0, 1, -1, 1, math.tan(th - math.pi / 2)
    return 1, 0, 1, -1, -1, 0, -1, 1, math.tan(math.pi - th)


@njit(parallel=True, cache=True)
def _nms_kernel(v, ori, tol, out):
    """Oriented non-maximum suppression (lib_image nonmax_oriented_2D, FACTS A.11)."""
    h, w = v.shape
    for r in prange(h):
        r = np.int64(r)
        for c in range(w):
            out[r, c] = 0.0
            if r == 0 or c == 0 or r == h - 1 or c == w - 1:
                continue
            val = v[r, c]
            o = ori[r, c]
            th = (o + math.pi / 2) % math.pi
            a0r, a0c, b0r, b0c, a1r, a1c, b1r, b1c, d = _nms_neighbours(th)
            s0 = (1.0 - d) * v[r + a0r, c + a0c] * _ori_weight(o, ori[r + a0r, c + a0c], tol)
            s0 += d * v[r + b0r, c + b0c] * _ori_weight(o, ori[r + b0r, c + b0c], tol)
            s1 = (1.0 - d) * v[r + a1r, c + a1c] * _ori_weight(o, ori[r + a1r, c + a1c], tol)
            s1 += d * v[r + b1r, c + b1c] * _ori_weight(o, ori[r + b1r, c + b1c], tol)
            if val > s0 and val > s1:
                out[r, c] = val
    return out


@njit(cache=True)
def _crossed(m, a, b, sr, sc):
    """Largest dual-lattice value crossed by the step (sr, sc) from pixel (a, b) (FACTS A.9)."""
    if sr == 0:
        return m[a, b] if sc > 0 else m[a, b - 1]
    if sc == 0:
        return m[a, b] if sr > 0 else m[a - 1, b]
    ta = a if sr > 0 else a - 1
    tb = b if sc > 0 else b - 1
    x = m[ta, tb]
    y = m[ta, tb + 1]
    z = m[ta + 1, tb]
    if y > x:
        x = y
    if z > x:
        x = z
    return x


@njit(cache=True)
def _path_ic(m, r, c, p0, p1, steps):
    ic = 0.0
    a, b = r, c
    for q in range(p0, p1):
        sr = steps[q, 0]
        sc = steps[q, 1]
        x = _crossed(m, a, b, sr, sc)
        if x > ic:
            ic = x
        a += sr
        b += sc
    return ic


@njit(cache=True)
def _affinity_from_ic(ic, sigma):
    p = 1.0 / (1.0 + math.exp(-(1.8682 - (1.3113 / 0.3130) * ic)))
    return math.exp(-(1.0 - p) / sigma)


@njit(parallel=True, cache=True)
def _ic_affinity_band_kernel(m, offs, neg, starts, steps, radius, sigma, band):
    """Intervening-contour affinity in band form ``band[r, c, dr + R, dc + R]``.

    For each offset ``o`` (``offs[q]``), the path from pixel i to j = i + o and the path of the
    opposite offset (``neg[q]``) from j back to i are walked; the two affinities are averaged
    (the release symmetrises W the same way). Each unordered pair is computed once, by the
    pixel for which ``o`` is positive (dr > 0, or dr == 0 and dc > 0), and written to both
    entries, so rows write disjoint entries. ``band`` must be zero on entry.
    """
    h, w = m.shape
    n_off = offs.shape[0]
    for r in prange(h):
        r = np.int64(r)
        for c in range(w):
            band[r, c, radius, radius] = 1.0
            for q in range(n_off):
                dr = offs[q, 0]
                dc = offs[q, 1]
                if dr < 0 or (dr == 0 and dc <= 0):
                    continue
                rr = r + dr
                cc = c + dc
                if rr >= h or cc < 0 or cc >= w:
                    continue
                ic1 = _path_ic(m, r, c, starts[q], starts[q + 1], steps)
                qn = neg[q]
                ic2 = _path_ic(m, rr, cc, starts[qn], starts[qn + 1], steps)
                a = 0.5 * (_affinity_from_ic(ic1, sigma) + _affinity_from_ic(ic2, sigma))
                band[r, c, dr + radius, dc + radius] = a
                band[rr, cc, radius - dr, radius - dc] = a
    return band


@njit(parallel=True, cache=True)
def _band_degree_kept_kernel(band, radius, out):
    """Row sums of A restricted to the kept columns (odd row and odd column of the grid)."""
    h, w = out.shape
    for r in prange(h):
        r = np.int64(r)
        for c in range(w):
            s = 0.0
            for dr in range(-radius, radius + 1):
                rr = r + dr
                if rr < 0 or rr >= h or rr % 2 == 0:
                    continue
                for dc in range(-radius, radius + 1):
                    cc = c + dc
                    if cc < 0 or cc >= w or cc % 2 == 0:
                        continue
                    s += band[r, c, dr + radius, dc + radius]
            out[r, c] = s + 1e-12
    return out


@njit(parallel=True, cache=True)
def _band_decimate_kernel(band, deg, radius, out):
    """DNCuts step: ``A' = B^T diag(deg)^-1 B`` with ``B = A[:, kept]`` (Fowlkes/Barron, MCG).

    ``band`` (h, w, 2R+1, 2R+1) on the fine grid; kept nodes are (2a+1, 2b+1); ``out``
    (h2, w2, 2R+1, 2R+1) on the kept grid (fine offsets up to 2R become coarse offsets up to R).
    """
    h, w = deg.shape
    h2, w2 = out.shape[0], out.shape[1]
    for a in prange(h2):
        a = np.int64(a)
        for b in range(w2):
            for i in range(2 * radius + 1):
                for j in range(2 * radius + 1):
                    out[a, b, i, j] = 0.0
            fr = 2 * a + 1
            fc = 2 * b + 1
            for y in range(max(0, fr - radius), min(h, fr + radius + 1)):
                for x in range(max(0, fc - radius), min(w, fc + radius + 1)):
                    wki = band[y, x, fr - y + radius, fc - x + radius]
                    if wki == 0.0:
                        continue
                    wki = wki / deg[y, x]
                    # kept nodes j' = (2a'+1, 2b'+1) within radius of (y, x)
                    fy0 = max(1, y - radius)
                    fy0 += 1 - fy0 % 2
                    fx0 = max(1, x - radius)
                    fx0 += 1 - fx0 % 2
                    for fy in range(fy0, min(2 * h2 - 1, y + radius) + 1, 2):
                        ap = (fy - 1) // 2
                        for fx in range(fx0, min(2 * w2 - 1, x + radius) + 1, 2):
                            bp = (fx - 1) // 2
                            wkj = band[y, x, fy - y + radius, fx - x + radius]
                            if wkj != 0.0:
                                out[a, b, ap - a + radius, bp - b + radius] += wki * wkj
    return out


@njit(parallel=True, cache=True)
def _band_upsample_kernel(band, deg, radius, xc, out):
    """``X_fine = C X_coarse`` with ``C = diag(deg)^-1 A[:, kept]``; xc (h2, w2, k)."""
    h, w = deg.shape
    h2, w2, k = xc.shape
    for y in prange(h):
        y = np.int64(y)
        for x in range(w):
            for t in range(k):
                out[y, x, t] = 0.0
            for fy in range(y - radius, y + radius + 1):
                if fy < 0 or fy >= h or fy % 2 == 0:
                    continue
                ap = (fy - 1) // 2
                if ap >= h2:
                    continue
                for fx in range(x - radius, x + radius + 1):
                    if fx < 0 or fx >= w or fx % 2 == 0:
                        continue
                    bp = (fx - 1) // 2
                    if bp >= w2:
                        continue
                    a = band[y, x, fy - y + radius, fx - x + radius]
                    if a != 0.0:
                        for t in range(k):
                            out[y, x, t] += a * xc[ap, bp, t]
            for t in range(k):
                out[y, x, t] /= deg[y, x]
    return out


@njit(parallel=True, cache=True)
def _band_matvec_kernel(band, radius, x, out):
    """``out = A x`` for a band matrix; x (h, w, k)."""
    h, w, k = x.shape
    for y in prange(h):
        y = np.int64(y)
        for c in range(w):
            for t in range(k):
                out[y, c, t] = 0.0
            for dr in range(-radius, radius + 1):
                rr = y + dr
                if rr < 0 or rr >= h:
                    continue
                for dc in range(-radius, radius + 1):
                    cc = c + dc
                    if cc < 0 or cc >= w:
                        continue
                    a = band[y, c, dr + radius, dc + radius]
                    if a != 0.0:
                        for t in range(k):
                            out[y, c, t] += a * x[rr, cc, t]
    return out
