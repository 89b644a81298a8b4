"""Numba kernels of :mod:`bottomup.cues` (private; inputs are validated by the callers)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, inline="always")
def _bin_mass(gk, n_bins):
    """Weight of each bin's smoothing kernel ``gk`` that falls inside ``0 .. n_bins - 1``."""
    half = gk.shape[0] // 2
    mass = np.zeros(n_bins)
    for lab in range(n_bins):
        for t in range(gk.shape[0]):
            b = lab + t - half
            if b >= 0 and b < n_bins:
                mass[lab] += gk[t]
    return mass


@njit(cache=True, inline="always")
def _add_smoothed(labels, ci, cj, rr, cc, ss, sign, hs, z, gk, mass):
    """Add (sign 1.0) or remove (-1.0) the pixels ``(ci + rr, cj + cc)`` smoothed by ``gk``."""
    # hs has len(gk) - 1 guard bins: bin b lives at hs[s, b + half]; guards absorb the tails
    for q in range(rr.shape[0]):
        lab = labels[ci + rr[q], cj + cc[q]]
        row = hs[ss[q]]
        for t in range(gk.shape[0]):
            row[lab + t] += sign * gk[t]
        z[ss[q]] += sign * mass[lab]


@njit(cache=True, inline="always")
def _weights_and_bins(z, cnt, n_orient, iz, sz, act):
    """``iz = 1 / z`` (``sz``: negated on the second half-disc); bins present -> ``act[:na]``."""
    for s in range(z.shape[0]):
        iz[s] = 1.0 / z[s] if z[s] > 0.25 else 0.0
        sz[s] = iz[s] if s < n_orient else -iz[s]
    na = 0
    for b in range(cnt.shape[0]):
        if cnt[b] > 0:
            act[na] = b
            na += 1
    return na


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _hist_gradient_kernel(
    labels, n_bins, n_orient, pad, h, w, step,
    off_r, off_c, off_s, ent_r, ent_c, ent_s, lv_r, lv_c, lv_s, gk, out,
):  # fmt: skip
    """Chi-squared distance between half-disc histograms, sliding along each row.

    ``labels`` (Hp, Wp) int32 is mirror-padded by ``pad`` >= radius. The 2*n_orient slice
    histograms are kept per row and updated with the offsets that enter (``ent_*``, relative to
    the new centre) and leave (``lv_*``, relative to the old centre) when the centre moves one
    column right. Each label adds the bin kernel ``gk`` (histogram smoothing; ``[1.0]`` for
    none). Slice histograms are L1-normalised, half-discs are sums of ``n_orient`` consecutive
    slices, and ``out[k, i // step, j // step] = 0.5 * sum (g - h)^2 / (g + h)`` at the rows
    and columns that are multiples of ``step`` (the histograms still slide over every column).
    """
    n_sl = 2 * n_orient
    half = gk.shape[0] // 2
    mass = _bin_mass(gk, n_bins)
    n_rows = (h + step - 1) // step
    for ii in prange(n_rows):
        i = np.int64(ii) * step
        hs = np.zeros((n_sl, n_bins + 2 * half))
        z = np.zeros(n_sl)
        iz = np.zeros(n_sl)
        v = np.zeros((n_sl, n_bins))
        tot = np.zeros(n_bins)
        inv_tot = np.zeros(n_bins)
        d = np.zeros(n_bins)
        ci = i + pad
        _add_smoothed(labels, ci, pad, off_r, off_c, off_s, 1.0, hs, z, gk, mass)
        for j in range(w):
            cj = j + pad
            if j > 0:
                _add_smoothed(labels, ci, cj, ent_r, ent_c, ent_s, 1.0, hs, z, gk, mass)
                _add_smoothed(labels, ci, cj - 1, lv_r, lv_c, lv_s, -1.0, hs, z, gk, mass)
            if j % step != 0:
                continue
            for s in range(n_sl):
                iz[s] = 1.0 / z[s] if z[s] > 0.25 else 0.0
            for b in range(n_bins):
                tot[b] = 0.0
                d[b] = 0.0
            for s in range(n_sl):
                sg = 1.0 if s < n_orient else -1.0
                for b in range(n_bins):
                    x = hs[s, b + half] * iz[s]
                    v[s, b] = x
                    tot[b] += x
                    d[b] += sg * x
            for b in range(n_bins):
                inv_tot[b] = 1.0 / tot[b] if tot[b] > 1e-12 else 0.0
            for k in range(n_orient):
                acc = 0.0
                for b in range(n_bins):
                    acc += d[b] * d[b] * inv_tot[b]
                out[k, ii, j // step] = 0.5 * acc
                if k < n_orient - 1:
                    for b in range(n_bins):
                        d[b] += 2.0 * (v[k + n_orient, b] - v[k, b])
    return out


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _hist_gradient_smooth_kernel(
    labels, n_bins, n_orient, pad, h, w, step,
    off_r, off_c, off_s, ent_r, ent_c, ent_s, lv_r, lv_c, lv_s, gk, out,
):  # fmt: skip
    """Same result as ``_hist_gradient_kernel`` for smoothed histograms, usually cheaper.

    The slice histograms hold raw counts (one add per entering or leaving pixel). Smoothing is
    linear and commutes with the sums over slices, so with ``z_s = sum_b mass_b h_s[b]`` (the
    sum of the smoothed slice histogram) the smoothed half-disc quantities are ``G T`` and
    ``G D_k`` with ``T = sum_s h_s / z_s`` and ``D_k`` as in the other kernel; ``G x`` is
    accumulated from the bins present in the disc only (``x`` is zero elsewhere), so the cost
    per evaluated pixel is O((O + 1) n_present taps + O n_bins).
    """
    n_sl = 2 * n_orient
    half = gk.shape[0] // 2
    n_tap = gk.shape[0]
    mass = _bin_mass(gk, n_bins)
    n_rows = (h + step - 1) // step
    for ii in prange(n_rows):
        i = np.int64(ii) * step
        hs = np.zeros((n_bins, n_sl))
        z = np.zeros(n_sl)
        iz = np.zeros(n_sl)
        sz = np.zeros(n_sl)
        cnt = np.zeros(n_bins, dtype=np.int64)
        act = np.zeros(n_bins, dtype=np.int64)
        dv = np.zeros(n_bins)
        gt = np.zeros(n_bins + 2 * half)
        gd = np.zeros(n_bins + 2 * half)
        inv = np.zeros(n_bins)
        ci = i + pad
        for q in range(off_r.shape[0]):
            lab = labels[ci + off_r[q], pad + off_c[q]]
            hs[lab, off_s[q]] += 1.0
            z[off_s[q]] += mass[lab]
            cnt[lab] += 1
        for j in range(w):
            cj = j + pad
            if j > 0:
                for q in range(ent_r.shape[0]):
                    lab = labels[ci + ent_r[q], cj + ent_c[q]]
                    hs[lab, ent_s[q]] += 1.0
                    z[ent_s[q]] += mass[lab]
                    cnt[lab] += 1
                for q in range(lv_r.shape[0]):
                    lab = labels[ci + lv_r[q], cj - 1 + lv_c[q]]
                    hs[lab, lv_s[q]] -= 1.0
                    z[lv_s[q]] -= mass[lab]
                    cnt[lab] -= 1
            if j % step != 0:
                continue
            na = _weights_and_bins(z, cnt, n_orient, iz, sz, act)
            for b in range(n_bins + 2 * half):
                gt[b] = 0.0
            for idx in range(na):
                b = act[idx]
                tot = 0.0
                dd = 0.0
                for s in range(n_sl):
                    tot += hs[b, s] * iz[s]
                    dd += hs[b, s] * sz[s]
                dv[idx] = dd
                for t in range(n_tap):
                    gt[b + t] += gk[t] * tot
            for b in range(n_bins):
                x = gt[b + half]
                inv[b] = 1.0 / x if x > 1e-12 else 0.0
            for k in range(n_orient):
                for b in range(n_bins + 2 * half):
                    gd[b] = 0.0
                for idx in range(na):
                    b = act[idx]
                    x = dv[idx]
                    for t in range(n_tap):
                        gd[b + t] += gk[t] * x
                acc = 0.0
                for b in range(n_bins):
                    x = gd[b + half]
                    acc += x * x * inv[b]
                out[k, ii, j // step] = 0.5 * acc
                if k < n_orient - 1:
                    a1 = 2.0 * iz[k + n_orient]
                    a0 = 2.0 * iz[k]
                    for idx in range(na):
                        b = act[idx]
                        dv[idx] += a1 * hs[b, k + n_orient] - a0 * hs[b, k]
    return out


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _hist_gradient_sparse_kernel(
    labels, n_bins, n_orient, pad, h, w, step,
    off_r, off_c, off_s, ent_r, ent_c, ent_s, lv_r, lv_c, lv_s, out,
):  # fmt: skip
    """Unsmoothed histograms (textons): only the bins present in the disc are visited.

    Same result as ``_hist_gradient_kernel`` with ``gk = [1]``. A count per bin over the whole
    disc is kept with the slice histograms; at each evaluated pixel the chi-squared sums run
    over the bins with a non-zero count (about 10-30 of 64 textons for small discs).
    """
    n_sl = 2 * n_orient
    n_rows = (h + step - 1) // step
    for ii in prange(n_rows):
        i = np.int64(ii) * step
        hs = np.zeros((n_bins, n_sl))
        z = np.zeros(n_sl)
        iz = np.zeros(n_sl)
        sz = np.zeros(n_sl)
        cnt = np.zeros(n_bins, dtype=np.int64)
        act = np.zeros(n_bins, dtype=np.int64)
        acc = np.zeros(n_orient)
        ci = i + pad
        for q in range(off_r.shape[0]):
            lab = labels[ci + off_r[q], pad + off_c[q]]
            hs[lab, off_s[q]] += 1.0
            z[off_s[q]] += 1.0
            cnt[lab] += 1
        for j in range(w):
            cj = j + pad
            if j > 0:
                for q in range(ent_r.shape[0]):
                    lab = labels[ci + ent_r[q], cj + ent_c[q]]
                    hs[lab, ent_s[q]] += 1.0
                    cnt[lab] += 1
                for q in range(lv_r.shape[0]):
                    lab = labels[ci + lv_r[q], cj - 1 + lv_c[q]]
                    hs[lab, lv_s[q]] -= 1.0
                    cnt[lab] -= 1
            if j % step != 0:
                continue
            na = _weights_and_bins(z, cnt, n_orient, iz, sz, act)
            for k in range(n_orient):
                acc[k] = 0.0
            for idx in range(na):
                b = act[idx]
                tot = 0.0
                dd = 0.0
                for s in range(n_sl):
                    tot += hs[b, s] * iz[s]
                    dd += hs[b, s] * sz[s]
                if tot <= 1e-12:
                    continue
                it = 1.0 / tot
                for k in range(n_orient):
                    acc[k] += dd * dd * it
                    if k < n_orient - 1:
                        dd += 2.0 * (hs[b, k + n_orient] * iz[k + n_orient] - hs[b, k] * iz[k])
            for k in range(n_orient):
                out[k, ii, j // step] = 0.5 * acc[k]
    return out
