"""Spectral globalisation (sPb): normalised-cut eigenvectors of an intervening-contour graph.

Follows the released gPb code (``spectralPb.m``, ``buildW``): the affinity between pixels within 5 px is
``exp(-(1 - p_same) / 0.1)`` with ``p_same = logistic(1.8682 - 4.1895 IC)``, IC the largest
``mPb_nmax`` value crossed on the straight (digital) line between them; the generalised problem
``(D - W) v = lambda D v`` gives 16 non-trivial vectors, each min-max normalised, divided by
``sqrt(lambda)`` and differentiated at 8 orientations; sPb sums the absolute derivatives.

Two solvers:

* ``"exact"``: ARPACK (``scipy.sparse.linalg.eigsh``) on ``D^-1/2 W D^-1/2`` at full resolution,
  as the release's ``eigs``. Slow on a full BSDS image (tens of seconds).
* ``"dncuts"`` (default): downsampled normalised cuts of MCG (Pont-Tuset et al. 2017):
  the affinity is squared and decimated twice (``A' = B^T D^-1 B``, ``B = A[:, kept]``, keeping
  every other row and column), the 17 vectors are solved on the 16x smaller graph and
  upsampled with ``X <- D^-1 B X``. Not whitened (each vector is min-max normalised anyway).
  The eigenvalues used for the ``1 / sqrt(lambda)`` weights are the Rayleigh quotients of the
  upsampled vectors on the full-resolution graph (after removing the trivial component), so
  they estimate the full-resolution eigenvalues.

Lines between pixels form a tree of digital lines: the path to an offset is the path to its
parent (the previous point of its rounded digital line) plus one step, so each pixel's 80
intervening-contour values cost 80 steps. The release similarly walks Bresenham lines to the
window border and gives each window pixel the running max of the line that best approximates
its direction; the two differ only in which of two nearly equal digital paths is used.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.linalg import eigsh

from bottomup._threads import thread_map
from bottomup.contours._kernels import (
    _band_decimate_kernel,
    _band_degree_kept_kernel,
    _band_rayleigh_sums_kernel,
    _band_upsample_kernel,
    _ic_affinity_band_kernel,
)
from bottomup.cues.filters import derivative_filter

__all__ = [
    "ic_affinity",
    "band_to_sparse",
    "ncut_eigenvectors",
    "spb_from_eigenvectors",
    "spb",
]


@functools.lru_cache(maxsize=8)
def _paths(radius: int) -> tuple:
    """Disc offsets ordered by line length, and the parent of each on its digital line.

    The digital line from 0 to offset (a, b) has points ``round(t (a, b) / n)``, t = 1..n,
    n = max(|a|, |b|) (rounding half up); the parent of (a, b) is its point n - 1.
    """
    r = int(radius)
    offs = [(a, b) for a in range(-r, r + 1) for b in range(-r, r + 1) if a * a + b * b <= r * r]
    offs.sort(key=lambda o: (max(abs(o[0]), abs(o[1])), o))
    index = {o: i for i, o in enumerate(offs)}
    parent = []
    for a, b in offs:
        n = max(abs(a), abs(b))
        if n <= 1:
            parent.append(index[(0, 0)])
            continue
        t = n - 1
        parent.append(index[(int(np.floor(t * a / n + 0.5)), int(np.floor(t * b / n + 0.5)))])
    return np.array(offs, dtype=np.int64).reshape(-1, 2), np.array(parent, dtype=np.int64)


def _affinity_of_ic(ic, sigma):
    """``exp(-(1 - p_same) / sigma)``, ``p_same = logistic(1.8682 - (1.3113 / 0.3130) ic)``."""
    p_same = 1.0 / (1.0 + np.exp(-(1.8682 - (1.3113 / 0.3130) * ic)))
    return np.ascontiguousarray(np.exp(-(1.0 - p_same) / sigma))


def ic_affinity(
    mpb_nmax: NDArray[np.float64], radius: int = 5, sigma: float = 0.1, *, dtype=np.float64
) -> NDArray[np.floating]:
    """Intervening-contour affinity in band form.

    Parameters
    ----------
    mpb_nmax : (H, W) ndarray of float64
        Thinned local contour map in [0, 1]; the dual-lattice crossing between (r, c) and
        (r+1, c) or (r, c+1) carries ``mpb_nmax[r, c]`` (as the release).
    radius : int
        Pixels within this distance are connected (5).
    sigma : float
        Affinity scale (0.1).
    dtype : {numpy.float64, numpy.float32}
        Storage of the band. :func:`spb` uses float32: the band is the largest array of gPb
        (121 values per pixel: 150 MB in float64 on a BSDS image), and the values are
        ``exp`` of a logistic, far from needing 16 digits; every sum over it is accumulated
        in float64.

    Returns
    -------
    band : (H, W, 2R+1, 2R+1) ndarray of ``dtype``
        ``band[r, c, dr + R, dc + R]`` = W between (r, c) and (r + dr, c + dc); 0 outside the
        image or the disc; 1 on the diagonal; symmetric.
    """
    offs, parent = _paths(int(radius))
    m = np.ascontiguousarray(mpb_nmax, dtype=np.float64)
    h, w = m.shape
    if np.dtype(dtype) not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"`dtype` must be float64 or float32, got {np.dtype(dtype)}")
    band = np.zeros((h, w, 2 * radius + 1, 2 * radius + 1), dtype=dtype)
    wm = _affinity_of_ic(m, sigma)
    w0 = float(_affinity_of_ic(np.zeros(1), sigma)[0])
    _ic_affinity_band_kernel(wm, w0, offs, parent, int(radius), band)
    return band


def band_to_sparse(band: NDArray[np.float64]) -> sp.csr_matrix:
    """Convert a band affinity ``(h, w, 2R+1, 2R+1)`` to a sparse ``(h w, h w)`` CSR matrix.

    Parameters
    ----------
    band : (h, w, 2R+1, 2R+1) ndarray of float64 or float32

    Returns
    -------
    A : scipy.sparse.csr_matrix
        Nodes in row-major (scanline) order; explicit zeros removed.
    """
    h, w, k, _ = band.shape
    rad = k // 2
    flat = band.reshape(h * w, k * k)
    rows, offs = np.nonzero(flat)  # row-major: rows ascending, offsets ascending per row
    vals = flat[rows, offs].astype(np.float64)
    cols = rows + (offs // k - rad) * w + (offs % k - rad)
    indptr = np.zeros(h * w + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=h * w), out=indptr[1:])
    return sp.csr_matrix((vals, cols, indptr), shape=(h * w, h * w))


def _solve_normalized(a: sp.spmatrix, n_vec: int, seed: int = 0, tol: float = 0.0):
    """Smallest generalised eigenpairs of (D - A) v = lam D v via eigsh on D^-1/2 A D^-1/2."""
    n = a.shape[0]
    d = np.asarray(a.sum(axis=1)).ravel()
    d = np.maximum(d, 1e-12)
    dih = 1.0 / np.sqrt(d)
    m = sp.diags(dih) @ a @ sp.diags(dih)
    m = (m + m.T) * 0.5
    k = min(n_vec, n - 1)
    if n <= 400:
        mu, u = np.linalg.eigh(m.toarray())
        mu, u = mu[::-1][:k], u[:, ::-1][:, :k]
    else:
        v0 = np.random.default_rng(seed).standard_normal(n)
        mu, u = eigsh(m, k=k, which="LA", v0=v0, tol=tol)
        order = np.argsort(-mu)
        mu, u = mu[order], u[:, order]
    vec = u * dih[:, None]
    # 1 - mu loses digits when mu ~ 1; the Rayleigh quotient of (D - A, D) does not
    lap_vec = d[:, None] * vec - a @ vec
    lam = np.einsum("ij,ij->j", vec, lap_vec) / np.einsum("ij,ij->j", vec, d[:, None] * vec)
    lam = np.clip(lam, 0.0, None)
    return lam, vec


def ncut_eigenvectors(
    band: NDArray[np.float64], n_vec: int = 17, *, method: str = "dncuts", n_levels: int = 2
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Generalised eigenvectors of ``(D - W) v = lambda D v`` with the smallest eigenvalues.

    Parameters
    ----------
    band : (H, W, 2R+1, 2R+1) ndarray of float64 or float32
        Symmetric affinity in band form (:func:`ic_affinity`); sums over it are accumulated in
        float64 and the coarse DNCuts levels are float64.
    n_vec : int
        Number of vectors, the trivial one included (17 in the release).
    method : {"dncuts", "exact"}
        DNCuts (downsampled solve, MCG) or ARPACK at full resolution.
    n_levels : int
        DNCuts decimation levels (2 in MCG: 16x fewer nodes).

    Returns
    -------
    eigenvalues : (K,) ndarray of float64
        Ascending; for DNCuts, Rayleigh quotients on the full graph (first is ~0).
    vectors : (H, W, K) ndarray of float64
        The vectors, in the image layout.

    References
    ----------
    .. [1] J. Shi, J. Malik, "Normalized Cuts and Image Segmentation", TPAMI 22(8), 2000.
    .. [2] J. Pont-Tuset, P. Arbelaez, J. Barron, F. Marques, J. Malik, "Multiscale
           Combinatorial Grouping for Image Segmentation and Object Proposal Generation",
           TPAMI 39(1), 2017. :DOI:`10.1109/TPAMI.2016.2537320`
    """
    h, w, k, _ = band.shape
    rad = k // 2
    if method == "exact" or n_levels == 0:
        lam, vec = _solve_normalized(band_to_sparse(band), n_vec)
        return lam, vec.reshape(h, w, -1)
    if method != "dncuts":
        raise ValueError(f"`method` must be 'dncuts' or 'exact', got {method!r}")
    levels = []
    cur = band
    for _ in range(n_levels):
        ch, cw = cur.shape[:2]
        if ch < 4 or cw < 4:
            break
        deg = np.empty((ch, cw))
        _band_degree_kept_kernel(cur, rad, deg)
        nxt = np.empty((ch // 2, cw // 2, k, k))
        _band_decimate_kernel(cur, deg, rad, nxt)
        levels.append((cur, deg))
        cur = nxt
    ch, cw = cur.shape[:2]
    # the coarse vectors are approximations anyway: a looser ARPACK tolerance (1e-6) suffices
    _, vec_c = _solve_normalized(band_to_sparse(cur), n_vec, tol=1e-6)
    x = np.ascontiguousarray(vec_c.reshape(ch, cw, -1))
    for fine, deg in reversed(levels):
        out = np.empty(fine.shape[:2] + (x.shape[2],))
        _band_upsample_kernel(fine, deg, rad, x, out)
        x = out
    # Rayleigh quotients on the full-resolution graph, trivial component removed.
    kv = x.shape[2]
    row_dsum = np.zeros(h)
    row_dx, row_xdx, row_xwx, row_wxs = (np.zeros((h, kv)) for _ in range(4))
    _band_rayleigh_sums_kernel(band, rad, x, row_dsum, row_dx, row_xdx, row_xwx, row_wxs)
    dsum, dx, xdx, xwx, wxs = (a.sum(axis=0) for a in (row_dsum, row_dx, row_xdx, row_xwx, row_wxs))
    mean = dx / dsum  # D-weighted mean of each vector
    # with xc = x - mean: (D - W) xc = D x - W x (W 1 = d), so
    # num = xc . (D x - W x) and den = xc . D xc
    num = (xdx - xwx) - mean * (dx - wxs)
    den = xdx - mean * mean * dsum
    lam = np.where(den > 1e-300, num / np.maximum(den, 1e-300), 0.0)
    lam[0] = 0.0  # the trivial (constant) vector stays constant through the upsampling
    order = np.argsort(lam, kind="stable")
    return lam[order], x[..., order]


def spb_from_eigenvectors(
    eigenvalues: NDArray[np.float64], vectors: NDArray[np.float64], n_orient: int = 8
) -> NDArray[np.float32]:
    """sPb from eigenvectors: sum over non-trivial v of ``|d_theta (v_norm / sqrt(lambda))|``.

    Parameters
    ----------
    eigenvalues : (K,) ndarray of float64
        Ascending; the first (trivial) vector is skipped.
    vectors : (H, W, K) ndarray of float64
    n_orient : int
        Number of orientations.

    Returns
    -------
    spb : (O, H, W) ndarray of float32
        Channel k responds to edges of orientation ``k pi / O`` (derivative across the edge,
        Gaussian sigma 1 along it, 7x7, mirrored border).
    """
    h, w, k = vectors.shape
    out = np.zeros((n_orient, h, w), dtype=np.float32)
    kernels = [
        np.asarray(derivative_filter(o * np.pi / n_orient), dtype=np.float32)[::-1, ::-1].copy()
        for o in range(n_orient)
    ]
    normalised = []
    for v in range(1, k):
        lam = eigenvalues[v]
        if lam <= 0:
            continue
        x = vectors[..., v]
        lo, hi = x.min(), x.max()
        if hi - lo <= 0:
            continue
        normalised.append(((x - lo) / (hi - lo) / np.sqrt(lam)).astype(np.float32))

    def one(o):  # the vectors are summed in the same order for every orientation
        for xn in normalised:
            out[o] += np.abs(cv2.filter2D(xn, -1, kernels[o], borderType=cv2.BORDER_REFLECT))

    thread_map(one, n_orient)  # one orientation per task (see bottomup._threads)
    return out


def spb(
    mpb_nmax: NDArray[np.float64],
    *,
    n_vec: int = 17,
    radius: int = 5,
    sigma: float = 0.1,
    method: str = "dncuts",
    n_levels: int = 2,
    n_orient: int = 8,
) -> NDArray[np.float32]:
    """Spectral Pb of a thinned local contour map (Arbelaez et al. 2011, Sec. 3.2).

    Parameters
    ----------
    mpb_nmax : (H, W) ndarray of float64
        Thinned mPb in [0, 1] (:func:`bottomup.contours.mpb.mpb_nmax`).
    n_vec : int
        Eigenvectors including the trivial one (17).
    radius : int
        Affinity radius (5).
    sigma : float
        Affinity scale (0.1).
    method : {"dncuts", "exact"}
        Eigen-solver, see :func:`ncut_eigenvectors`.
    n_levels : int
        DNCuts decimation levels.
    n_orient : int
        Orientations.

    Returns
    -------
    spb : (O, H, W) ndarray of float32

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical
           Image Segmentation", TPAMI 33(5), 2011. :DOI:`10.1109/TPAMI.2010.161`
    """
    band = ic_affinity(mpb_nmax, radius, sigma, dtype=np.float32)
    lam, vec = ncut_eigenvectors(band, n_vec, method=method, n_levels=n_levels)
    return spb_from_eigenvectors(lam, vec, n_orient)
