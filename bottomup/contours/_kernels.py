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
    """Oriented non-maximum suppression (``nonmax_oriented_2D`` of the gPb release's lib_image)."""
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
def _crossed_min(wm, a, b, sr, sc):
    """Smallest ``wm`` on the dual-lattice edges crossed by the step (sr, sc) from (a, b).

    The crossing between (r, c) and (r + 1, c) or (r, c + 1) carries pixel (r, c) (as ``buildW``);
    a diagonal step crosses the 4 edges around a corner, carried by 3 pixels. With ``wm`` the
    affinity of each pixel's mPb (decreasing in mPb), the min of ``wm`` is the affinity of the
    max of mPb.
    """
    if sr == 0:
        return wm[a, b] if sc > 0 else wm[a, b - 1]
    if sc == 0:
        return wm[a, b] if sr > 0 else wm[a - 1, b]
    ta = a if sr > 0 else a - 1
    tb = b if sc > 0 else b - 1
    x = wm[ta, tb]
    y = wm[ta, tb + 1]
    z = wm[ta + 1, tb]
    if y < x:
        x = y
    if z < x:
        x = z
    return x


@njit(parallel=True, cache=True)
def _ic_affinity_band_kernel(wm, w0, offs, parent, radius, band):
    """Intervening-contour affinity in band form ``band[r, c, dr + R, dc + R]``.

    Offsets are ordered so that each one's ``parent`` (the previous point of its digital line)
    comes first; the intervening contour of offset o is the max of its parent's and of the
    lattice value crossed by the last step, so each pixel's 80 offsets cost one step each (a
    tree of digital lines, like the release's lines to the window border). The affinity is
    decreasing in the intervening contour, so the kernel tracks ``min wm`` (``wm`` = affinity of
    each pixel's value, ``w0`` = affinity of 0) instead of ``max m``: no exp in the loop. The
    directional affinities are then symmetrised by averaging W_ij and W_ji, as the release does.
    """
    h, w = wm.shape
    n_off = offs.shape[0]
    for r in prange(h):
        r = np.int64(r)
        ic = np.zeros(n_off)
        for c in range(w):
            for q in range(n_off):
                dr = offs[q, 0]
                dc = offs[q, 1]
                if dr == 0 and dc == 0:
                    ic[q] = w0
                    band[r, c, radius, radius] = 1.0
                    continue
                rr = r + dr
                cc = c + dc
                if rr < 0 or rr >= h or cc < 0 or cc >= w:
                    continue
                p = parent[q]
                pr = r + offs[p, 0]
                pc = c + offs[p, 1]
                x = _crossed_min(wm, pr, pc, rr - pr, cc - pc)
                if ic[p] < x:
                    x = ic[p]
                ic[q] = x
                band[r, c, dr + radius, dc + radius] = x
    for r in prange(h):
        r = np.int64(r)
        for c in range(w):
            for q in range(n_off):
                dr = offs[q, 0]
                dc = offs[q, 1]
                if dr < 0 or (dr == 0 and dc <= 0):
                    continue
                rr = r + dr
                cc = c + dc
                if rr >= h or cc < 0 or cc >= w:
                    continue
                a = 0.5 * (
                    band[r, c, dr + radius, dc + radius] + band[rr, cc, radius - dr, radius - dc]
                )
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
    ``A'`` is symmetric: the entries with a non-negative coarse offset are accumulated, the
    others mirrored in a second pass.
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
                    fy0 = max(fr, y - radius)
                    fy0 += 1 - fy0 % 2
                    fx0 = max(1, x - radius)
                    fx0 += 1 - fx0 % 2
                    for fy in range(fy0, min(2 * h2 - 1, y + radius) + 1, 2):
                        ap = (fy - 1) // 2
                        fx1 = fx0
                        if fy == fr and fx1 < fc:
                            fx1 = fc
                        for fx in range(fx1, min(2 * w2 - 1, x + radius) + 1, 2):
                            bp = (fx - 1) // 2
                            wkj = band[y, x, fy - y + radius, fx - x + radius]
                            if wkj != 0.0:
                                out[a, b, ap - a + radius, bp - b + radius] += wki * wkj
    for a in prange(h2):
        a = np.int64(a)
        for b in range(w2):
            for da in range(0, radius + 1):
                if a + da >= h2:
                    break
                for db in range(-radius, radius + 1):
                    if da == 0 and db <= 0:
                        continue
                    if b + db < 0 or b + db >= w2:
                        continue
                    out[a + da, b + db, radius - da, radius - db] = out[
                        a, b, radius + da, radius + db
                    ]
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
def _band_rayleigh_sums_kernel(band, radius, x, dsum, dx, xdx, xwx, wxs):
    """Per-row partial sums for the Rayleigh quotients of ``x`` (h, w, k) on a band graph.

    With ``d`` the row sums of A: ``dsum[y] = sum d``, ``dx[y, t] = sum d x_t``,
    ``xdx[y, t] = sum d x_t^2``, ``xwx[y, t] = sum x_t (A x_t)`` and ``wxs[y, t] = sum A x_t``
    over the pixels of row y, without materialising ``A x`` (an (h, w, k) array).
    """
    h, w, k = x.shape
    for y in prange(h):
        y = np.int64(y)
        ax = np.empty(k)
        for c in range(w):
            for t in range(k):
                ax[t] = 0.0
            d = 0.0
            for dr in range(-radius, radius + 1):
                rr = y + dr
                if rr < 0 or rr >= h:
                    continue
                for dc in range(-radius, radius + 1):
                    cc = c + dc
                    if cc < 0 or cc >= w:
                        continue
                    a = np.float64(band[y, c, dr + radius, dc + radius])
                    if a != 0.0:
                        d += a
                        for t in range(k):
                            ax[t] += a * x[rr, cc, t]
            dsum[y] += d
            for t in range(k):
                v = x[y, c, t]
                dx[y, t] += d * v
                xdx[y, t] += d * v * v
                xwx[y, t] += v * ax[t]
                wxs[y, t] += ax[t]
