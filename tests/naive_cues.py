"""Slow, obviously-correct references for the cue and contour kernels (pixel loops)."""

from __future__ import annotations

import math

import numpy as np


def half_disc_chi2(labels, radius, n_bins, n_orient=8, bin_sigma=0.0):
    """Per-pixel half-disc histograms as the release describes them (FACTS A.5)."""
    h, w = labels.shape
    r = radius
    pad = np.pad(labels, r, mode="symmetric")
    if bin_sigma > 0:
        half = int(math.ceil(3 * bin_sigma))
        x = np.arange(-half, half + 1)
        g = np.exp(-0.5 * (x / bin_sigma) ** 2)
        g /= g.sum()
    else:
        g = np.ones(1)
    n_sl = 2 * n_orient
    out = np.zeros((n_orient, h, w))
    for i in range(h):
        for j in range(w):
            hist = np.zeros((n_sl, n_bins))
            for dr in range(-r, r + 1):
                for dc in range(-r, r + 1):
                    if dr * dr + dc * dc > r * r:
                        continue
                    phi = math.atan2(dc + 0.5, dr + 0.5)
                    if phi < 0:
                        phi += 2 * math.pi
                    s = min(int(phi // (math.pi / n_orient)), n_sl - 1)
                    hist[s, pad[i + r + dr, j + r + dc]] += 1
            for s in range(n_sl):
                hs = np.convolve(hist[s], g, mode="full")[len(g) // 2 : len(g) // 2 + n_bins]
                tot = hs.sum()
                hist[s] = hs / tot if tot > 0 else hs
            for k in range(n_orient):
                left = sum(hist[(k + t) % n_sl] for t in range(n_orient))
                right = sum(hist[(k + n_orient + t) % n_sl] for t in range(n_orient))
                num = (left - right) ** 2
                den = left + right
                ok = den > 0
                out[k, i, j] = 0.5 * (num[ok] / den[ok]).sum()
    return out


def parabola_fit(z, radius, theta):
    """Constant term of the least-squares fit a + b t + c t^2 at each interior pixel."""
    ra = max(radius, 1.5)
    rb = max(radius / 4, 1.5)
    wr = int(math.floor(max(ra, rb)))
    h, w = z.shape
    out = np.full((h, w), np.nan)
    for i in range(wr, h - wr):
        for j in range(wr, w - wr):
            rows, vals = [], []
            for dr in range(-wr, wr + 1):
                for dc in range(-wr, wr + 1):
                    t = dr * math.sin(theta) - dc * math.cos(theta)
                    s = dr * math.cos(theta) + dc * math.sin(theta)
                    if t * t / ra**2 + s * s / rb**2 <= 1:
                        rows.append([1.0, t, t * t])
                        vals.append(z[i + dr, j + dc])
            coef = np.linalg.lstsq(np.array(rows), np.array(vals), rcond=None)[0]
            out[i, j] = coef[0]
    return out


def ic_affinity_dense(m, radius=5, sigma=0.1):
    """Dense W of the intervening-contour affinity (tree of digital lines, W_ij, W_ji averaged)."""
    h, w = m.shape
    n = h * w

    def crossed(a, b, sr, sc):
        if sr == 0:
            return m[a, b] if sc > 0 else m[a, b - 1]
        if sc == 0:
            return m[a, b] if sr > 0 else m[a - 1, b]
        ta, tb = min(a, a + sr), min(b, b + sc)
        return max(m[ta, tb], m[ta, tb + 1], m[ta + 1, tb])

    def path(du, dv):
        # tree of digital lines: path(o) = path(parent(o)) + [o], parent = previous DDA point
        k = max(abs(du), abs(dv))
        if k == 0:
            return [(0, 0)]
        par = (math.floor((k - 1) * du / k + 0.5), math.floor((k - 1) * dv / k + 0.5))
        return path(*par) + [(du, dv)]

    def ic(a, b, du, dv):
        pts = path(du, dv)
        best = 0.0
        for (p0, p1), (q0, q1) in zip(pts[:-1], pts[1:], strict=True):
            best = max(best, crossed(a + p0, b + p1, q0 - p0, q1 - p1))
        return best

    def aff(x):
        p = 1 / (1 + math.exp(-(1.8682 - 1.3113 / 0.3130 * x)))
        return math.exp(-(1 - p) / sigma)

    W = np.zeros((n, n))
    for a in range(h):
        for b in range(w):
            for du in range(-radius, radius + 1):
                for dv in range(-radius, radius + 1):
                    if du * du + dv * dv > radius * radius:
                        continue
                    c, d = a + du, b + dv
                    if not (0 <= c < h and 0 <= d < w):
                        continue
                    if du == 0 and dv == 0:
                        W[a * w + b, a * w + b] = 1.0
                        continue
                    W[a * w + b, c * w + d] = 0.5 * (
                        aff(ic(a, b, du, dv)) + aff(ic(c, d, -du, -dv))
                    )
    return W


def approx_boundary_f(pbs, gts, thresholds, max_dist=0.0075):
    """Dataset F-measure (ODS-like) of boundary maps with a distance-transform matcher.

    Unlike the official benchmark there is no one-to-one matching (a pixel within the tolerance
    of any ground-truth pixel counts), so figures are higher than BSDS ones; use it only to
    compare two detectors. ``gts`` is a list (per image) of lists of boolean boundary maps.
    """
    from scipy import ndimage as ndi

    tot = np.zeros((len(thresholds), 4))
    for pb, bnds in zip(pbs, gts, strict=True):
        tol = max_dist * np.hypot(*pb.shape)
        union = np.zeros(pb.shape, bool)
        for b in bnds:
            union |= b
        d_union = ndi.distance_transform_edt(~union)
        for i, t in enumerate(thresholds):
            p = pb >= t
            n_p = int(p.sum())
            dp = ndi.distance_transform_edt(~p) if n_p else np.full(pb.shape, np.inf)
            tot[i] += [
                int((p & (d_union <= tol)).sum()),
                n_p,
                sum(int((b & (dp <= tol)).sum()) for b in bnds),
                sum(int(b.sum()) for b in bnds),
            ]
    prec = tot[:, 0] / np.maximum(tot[:, 1], 1)
    rec = tot[:, 2] / np.maximum(tot[:, 3], 1)
    f = 2 * prec * rec / np.maximum(prec + rec, 1e-12)
    return float(f.max())


def kmeans(x, k, max_iter, rng, coarse_to_fine):
    """Plain Lloyd k-means from the first k of a random permutation; optionally solved on the
    first 2k, 4k, ... shuffled samples and then all of them, each stage from the last centres."""
    perm = np.random.default_rng(rng).permutation(len(x))
    centers = x[perm[:k]].astype(np.float64).copy()
    sizes = []
    if coarse_to_fine:
        s = min(len(x), 2 * k)
        while s < len(x):
            sizes.append(s)
            s *= 2
    stages = [x[perm[:s]] for s in sizes] + [x[perm] if coarse_to_fine else x]
    for data in stages:
        for _ in range(max_iter):
            d = ((data[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
            lab = d.argmin(axis=1)
            new = centers.copy()
            for j in range(k):
                if (lab == j).any():
                    new[j] = data[lab == j].mean(axis=0)
            if np.array_equal(new, centers):
                break
            centers = new
    d = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    used = np.bincount(d.argmin(axis=1), minlength=k) > 0
    return centers[used]
