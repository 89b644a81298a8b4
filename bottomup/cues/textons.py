"""Textons: k-means clusters of filter-bank responses (Malik et al. 2001; as the gPb release)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bottomup.cues.filters import filter_responses, texton_filter_bank

__all__ = ["kmeans", "textons"]


def _sq_dist_argmin(x, centers, chunk=4096):
    """Index of the nearest centre for each row of ``x`` (L2), in chunks.

    Small chunks keep the (chunk, K) distance block in cache (timings: docs/results.md#segmentation).
    """
    cn = (centers * centers).sum(axis=1)
    ct = np.ascontiguousarray(centers.T)
    out = np.empty(x.shape[0], dtype=np.int32)
    for i in range(0, x.shape[0], chunk):
        d = x[i : i + chunk] @ ct
        d *= -2.0
        d += cn  # |c|^2 - 2 x.c: the same argmin as |x - c|^2
        out[i : i + chunk] = np.argmin(d, axis=1)
    return out


def kmeans(
    x: NDArray[np.float64], n_clusters: int, *, max_num_iter: int = 10, coarse_to_fine: bool = False,
    rng=None,
) -> NDArray[np.float64]:
    """Lloyd's k-means with centres initialised from a random permutation.

    Parameters
    ----------
    x : (N, D) ndarray of float64
        Samples.
    n_clusters : int
        Number of centres K (``K <= N``).
    max_num_iter : int
        Lloyd iterations (10 in the release), per stage when ``coarse_to_fine``.
    coarse_to_fine : bool
        As the released gPb code: with the samples in the random order, solve on the
        first 2K, then warm-start on the first 4K, 8K, ... and finally all N (about twice the
        work of one solve). Otherwise one solve on all N from the first K samples.
    rng : {numpy.random.Generator, int}, optional
        Pseudo-random number generator. By default, a PCG64 generator is used (see
        :func:`numpy.random.default_rng`). If `rng` is an int, it is used to seed the generator.

    Returns
    -------
    centers : (K', D) ndarray of float64
        The centres; clusters left empty are dropped, so ``K' <= K``.

    Notes
    -----
    The coarse-to-fine solve makes gPb's figures depend less on the seed (figures:
    docs/results.md#the-default-quality-at-two-scales).
    """
    rng = np.random.default_rng(rng)
    n = x.shape[0]
    k = min(int(n_clusters), n)
    perm = rng.permutation(n)
    centers = x[perm[:k]].copy()
    if coarse_to_fine:
        xp = x[perm]
        size = min(n, 2 * k)
        while True:
            _lloyd(xp[:size], centers, max_num_iter)
            if size == n:
                break
            size = min(n, 2 * size)
    else:
        _lloyd(x, centers, max_num_iter)
    lab = _sq_dist_argmin(x, centers)
    used = np.bincount(lab, minlength=centers.shape[0]) > 0
    return centers[used]


def _lloyd(x, centers, max_num_iter):
    """Lloyd iterations on ``x`` from ``centers`` (updated in place); empty clusters stay put."""
    k = centers.shape[0]
    for _ in range(max_num_iter):
        lab = _sq_dist_argmin(x, centers)
        counts = np.bincount(lab, minlength=k)
        sums = np.zeros_like(centers)
        _scatter_sum(sums, lab, x)
        keep = counts > 0
        new = centers.copy()
        new[keep] = sums[keep] / counts[keep, None]
        if np.array_equal(new, centers):
            break
        centers[:] = new


def _scatter_sum(sums, lab, x):
    order = np.argsort(lab, kind="stable")
    xs = x[order]
    ls = lab[order]
    starts = np.searchsorted(ls, np.arange(sums.shape[0]))
    nz = np.bincount(lab, minlength=sums.shape[0]) > 0
    red = np.add.reduceat(xs, np.minimum(starts, len(ls) - 1), axis=0)
    sums[nz] = red[nz]


def textons(
    gray: NDArray[np.float64],
    n_textons: int = 64,
    *,
    sample_fraction: float = 0.1,
    max_num_iter: int = 10,
    pad: int = 30,
    sigmas: tuple = (2.0, 2.0 * np.sqrt(2.0)),
    coarse_to_fine: bool = False,
    rng=None,
) -> NDArray[np.int32]:
    """Texton map: nearest k-means centre of the 34-filter response vector at each pixel.

    The filters run on the gray image mirror-padded by ``pad`` (as the release); centres are fit
    on a random ``sample_fraction`` of the pixels (at least ``n_textons``); every pixel is then
    assigned to its nearest centre and ids are made dense (empty clusters dropped).

    Parameters
    ----------
    gray : (H, W) ndarray of float64
        Gray image in [0, 1] (:func:`bottomup.cues.color.rgb_to_gray`).
    n_textons : int
        Number of k-means centres (64 in the release, 32 in the paper).
    sample_fraction : float
        Fraction of pixels used to fit the centres (0.1).
    max_num_iter : int
        Lloyd iterations (10).
    pad : int
        Mirror padding before filtering.
    sigmas : tuple of float
        Filter-bank scales (:func:`bottomup.cues.filters.texton_filter_bank`): the release's
        two (34 filters) by default; one scale (17 filters) halves the filtering.
    coarse_to_fine : bool
        Fit the centres on growing prefixes of the shuffled sample, as the release
        (:func:`kmeans`).
    rng : {numpy.random.Generator, int}, optional
        Pseudo-random number generator. By default, a PCG64 generator is used (see
        :func:`numpy.random.default_rng`). If `rng` is an int, it is used to seed the generator.

    Returns
    -------
    labels : (H, W) ndarray of int32
        Texton ids in ``0 .. K'-1`` with ``K' <= n_textons``.

    References
    ----------
    .. [1] D. Martin, C. Fowlkes, J. Malik, "Learning to Detect Natural Image Boundaries Using
           Local Brightness, Color, and Texture Cues", TPAMI 26(5), 2004.
    .. [2] P. Arbelaez et al., "Contour Detection and Hierarchical Image Segmentation",
           TPAMI 33(5), 2011. :DOI:`10.1109/TPAMI.2010.161`
    """
    rng = np.random.default_rng(rng)
    h, w = gray.shape
    padded = np.pad(gray, pad, mode="symmetric")
    resp = filter_responses(padded, texton_filter_bank(sigmas=tuple(sigmas)))
    resp = resp[:, pad : pad + h, pad : pad + w]
    x = np.ascontiguousarray(resp.reshape(resp.shape[0], -1).T, dtype=np.float64)
    n = x.shape[0]
    n_sample = min(n, max(int(n_textons), int(round(sample_fraction * n))))
    sample = x[rng.choice(n, size=n_sample, replace=False)]
    centers = kmeans(sample, n_textons, max_num_iter=max_num_iter, coarse_to_fine=coarse_to_fine, rng=rng)
    lab = _sq_dist_argmin(x, centers)
    _, dense = np.unique(lab, return_inverse=True)
    return dense.reshape(h, w).astype(np.int32)
