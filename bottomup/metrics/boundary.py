"""BSDS boundary benchmark: per-image match counts and dataset ODS, OIS, AP and R50.

Reproduces the protocol of the official BSDS500 benchmark (``bench/benchmarks/*.m`` and
``correspondPixels`` of the 2013 release): 99 thresholds, thresholded maps thinned to one pixel,
a maximum match distance of 0.0075 x the image diagonal, and a one-to-one minimum-cost matching
with outliers between machine pixels and each annotator's pixels. The matcher solves the same
assignment problem as the official CSA code, exactly (sparse shortest augmenting paths), instead
of through its random sparse outlier graph.

The split follows torchmetrics: ``boundary_counts`` is the per-image update (sufficient statistics
per threshold) and ``collect_boundaries`` the dataset-level compute, so ODS sums counts over
images and OIS takes each image's best threshold; neither averages per-image F.

References
----------
.. [1] D. Martin, C. Fowlkes, J. Malik, "Learning to Detect Natural Image Boundaries Using Local
       Brightness, Color, and Texture Cues", TPAMI 26(5), 2004.
.. [2] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical Image
       Segmentation", TPAMI 33(5), 2011.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bottomup.metrics import _boundary_kernels as _k
from bottomup.validate import check_map

__all__ = [
    "BoundaryParams",
    "bsds_thresholds",
    "thin",
    "match_boundaries",
    "boundary_counts",
    "collect_boundaries",
    "f_measure",
]


@dataclass(frozen=True)
class BoundaryParams:
    """The frozen protocol of the boundary benchmark (defaults: the official BSDS500 ones).

    Attributes
    ----------
    n_thresholds : int
        Thresholds ``linspace(1/(n+1), 1 - 1/(n+1), n)`` as MATLAB computes them.
    max_dist : float
        Maximum match distance as a fraction of the image diagonal.
    outlier_cost : float
        Cost of an unmatched pixel as a multiple of the maximum distance.
    thin : bool
        Thin each thresholded map to one pixel (MATLAB ``bwmorph(..., 'thin', inf)``).
    """

    n_thresholds: int = 99
    max_dist: float = 0.0075
    outlier_cost: float = 100.0
    thin: bool = True

    def __post_init__(self):
        if not isinstance(self.n_thresholds, (int, np.integer)) or self.n_thresholds < 1:
            raise ValueError(f"`n_thresholds` must be a positive integer, got {self.n_thresholds!r}")
        if not self.max_dist >= 0:
            raise ValueError(f"`max_dist` must be >= 0, got {self.max_dist!r}")
        if not self.outlier_cost > 1:
            raise ValueError(f"`outlier_cost` must be > 1, got {self.outlier_cost!r}")

    @property
    def thresholds(self) -> np.ndarray:
        """The thresholds, shape ``(n_thresholds,)``."""
        return bsds_thresholds(self.n_thresholds)


def bsds_thresholds(n: int = 99) -> np.ndarray:
    """Return the benchmark thresholds exactly as MATLAB's ``linspace`` computes them.

    Parameters
    ----------
    n : int
        Number of thresholds.

    Returns
    -------
    thresholds : (n,) ndarray of float64
        ``d1 + k * (d2 - d1) / (n - 1)`` with ``d1 = 1/(n+1)``, ``d2 = 1 - 1/(n+1)``, last = d2.

    Examples
    --------
    >>> bsds_thresholds(99)[:3]
    array([0.01, 0.02, 0.03])
    """
    d1 = 1.0 / (n + 1)
    d2 = 1.0 - 1.0 / (n + 1)
    if n == 1:
        return np.array([d2])
    t = d1 + np.arange(n, dtype=np.float64) * ((d2 - d1) / (n - 1))
    t[-1] = d2
    return t


def thin(bmap) -> np.ndarray:
    """Thin a binary map to one-pixel-wide curves (MATLAB ``bwmorph(bmap, 'thin', inf)``).

    Parameters
    ----------
    bmap : (H, W) array_like of bool

    Returns
    -------
    thinned : (H, W) ndarray of bool
        Equal to :func:`skimage.morphology.thin` (the same two-subiteration algorithm of Lam, Lee
        and Suen, 1992), several times faster.
    """
    arr = np.asarray(bmap)
    if arr.ndim != 2:
        raise ValueError(f"`bmap` must be a 2-D (H, W) map, got shape {arr.shape}")
    img = np.ascontiguousarray(arr != 0)
    return _k._thin_kernel(img.copy(), _k.THIN_LUT1, _k.THIN_LUT2)


def _offsets(max_dist_px: float):
    """Neighbour offsets within ``max_dist_px`` and their integer costs (distance x 100)."""
    r = int(math.ceil(max_dist_px))
    offs = []
    for dr in range(-r, r + 1):
        for dc in range(-r, r + 1):
            d2 = dr * dr + dc * dc
            if d2 > max_dist_px * max_dist_px:
                continue
            offs.append((int(np.rint(math.sqrt(d2) * 100.0)), dr, dc))
    offs.sort()
    arr = np.array(offs, dtype=np.int64).reshape(-1, 3)
    return (
        np.ascontiguousarray(arr[:, 1]),
        np.ascontiguousarray(arr[:, 2]),
        np.ascontiguousarray(arr[:, 0]),
    )


def _matcher_setup(shape, max_dist: float, outlier_cost: float):
    diag = math.hypot(shape[0], shape[1])
    max_px = max_dist * diag
    off_r, off_c, off_cost = _offsets(max_px)
    ow = int(math.ceil(outlier_cost * max_px * 100.0))
    return off_r, off_c, off_cost, ow


def _as_bool_map(x, name):
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D (H, W) boundary map, got shape {arr.shape}")
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"`{name}` must be a boolean or numeric map, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError(f"`{name}` contains NaN or inf")
    return np.ascontiguousarray(arr != 0)


def match_boundaries(machine, human, *, max_dist: float = 0.0075, outlier_cost: float = 100.0):
    """Match two boundary maps one-to-one, as the official ``correspondPixels``.

    Parameters
    ----------
    machine, human : (H, W) array_like of bool
        Boundary pixels of the two maps.
    max_dist : float
        Maximum match distance as a fraction of the image diagonal.
    outlier_cost : float
        Cost of leaving a pixel unmatched, as a multiple of the maximum distance.

    Returns
    -------
    matched_machine : (H, W) ndarray of bool
        Machine pixels with a partner.
    matched_human : (H, W) ndarray of bool
        Human pixels with a partner.
    pairs : (n_matched, 4) ndarray of int64
        ``(row, col)`` of the machine pixel then of its human partner, for each matched pair.

    Notes
    -----
    Minimises ``sum(d) + outlier_cost * (#unmatched pixels - #pairs)`` over one-to-one matchings
    of pixels closer than ``max_dist * diagonal``, with distances rounded to 1/100 pixel as the
    official code does: the number of pairs is maximal, and among maximum matchings the total
    distance is minimal. Ties between equal-cost matchings are broken arbitrarily (the official
    CSA breaks them arbitrarily too).

    Examples
    --------
    >>> a = np.zeros((200, 200), bool); a[50, 20:36] = True  # max distance 2.1 px
    >>> b = np.roll(a, 1, axis=0)
    >>> len(match_boundaries(a, b)[2])
    16
    """
    m = _as_bool_map(machine, "machine")
    g = _as_bool_map(human, "human")
    if m.shape != g.shape:
        raise ValueError(f"`machine` (shape {m.shape}) and `human` (shape {g.shape}) must agree")
    off_r, off_c, off_cost, ow = _matcher_setup(m.shape, max_dist, outlier_cost)
    return _k._match_kernel(m, g, off_r, off_c, off_cost, ow)


def boundary_counts(pb, human_boundaries, params: BoundaryParams | None = None) -> np.ndarray:
    """Per-threshold boundary counts of one image (the per-image step of the benchmark).

    Parameters
    ----------
    pb : (H, W) array_like of float
        Boundary strength in [0, 1] (for a ucm2 use ``ucm2[2::2, 2::2]``; for an 8-bit PNG,
        ``png / 255``).
    human_boundaries : sequence of (H, W) array_like of bool
        One boundary map per annotator.
    params : BoundaryParams, optional
        The protocol; the official one by default.

    Returns
    -------
    counts : (T, 4) ndarray of int64
        Columns ``cntR, sumR, cntP, sumP`` for each threshold: human pixels matched (summed over
        annotators), human pixels, machine pixels matched to any annotator, machine pixels.
    """
    params = params or BoundaryParams()
    pb = check_map(pb, name="pb", lo=None, hi=None)
    if len(human_boundaries) == 0:
        raise ValueError("`human_boundaries` is empty: at least one annotator is needed")
    gts = np.stack([_as_bool_map(g, "human_boundaries") for g in human_boundaries])
    if gts.shape[1:] != pb.shape:
        raise ValueError(
            f"`pb` (shape {pb.shape}) and `human_boundaries` (shape {gts.shape[1:]}) must agree"
        )
    off_r, off_c, off_cost, ow = _matcher_setup(pb.shape, params.max_dist, params.outlier_cost)
    return _k._boundary_counts_kernel(
        pb, params.thresholds, np.ascontiguousarray(gts), off_r, off_c, off_cost, ow,
        _k.THIN_LUT1, _k.THIN_LUT2, params.thin,
    )


def f_measure(r, p):
    """Harmonic mean ``2PR / (P + R)`` with 0 where ``P + R == 0`` (elementwise)."""
    r = np.asarray(r, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    s = p + r
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(s > 0, 2.0 * p * r / np.where(s > 0, s, 1.0), 0.0)
    return f


def _rp(cnt_r, sum_r, cnt_p, sum_p):
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(sum_r > 0, cnt_r / np.where(sum_r > 0, sum_r, 1), 0.0)
        p = np.where(sum_p > 0, cnt_p / np.where(sum_p > 0, sum_p, 1), 0.0)
    return r, p


def _interp_max_f(thresh, r, p):
    """Best F along the curve with the official linear interpolation between thresholds."""
    if len(thresh) == 1:
        return float(r[0]), float(p[0]), float(f_measure(r[0], p[0])), float(thresh[0])
    d = np.linspace(0.0, 1.0, 100)
    best = (-1.0, 0.0, 0.0, 0.0)
    for i in range(1, len(thresh)):
        rt = r[i] * d + r[i - 1] * (1 - d)
        pt = p[i] * d + p[i - 1] * (1 - d)
        tt = thresh[i] * d + thresh[i - 1] * (1 - d)
        ft = f_measure(rt, pt)
        k = int(np.argmax(ft))
        if ft[k] > best[0]:
            best = (float(ft[k]), float(rt[k]), float(pt[k]), float(tt[k]))
    f, rr, pp, tt = best
    return rr, pp, f, tt


def _average_precision(r, p):
    """Area under the interpolated P(R) at R = 0:0.01:1 (MATLAB ``unique`` keeps the last)."""
    r = np.asarray(r, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    # unique values ascending, index of the LAST occurrence of each
    order = np.argsort(r, kind="stable")
    rs = r[order]
    last = np.r_[rs[1:] != rs[:-1], True]
    ru = rs[last]
    pu = p[order][last]
    if ru.size < 2:
        return 0.0
    ri = np.linspace(0.0, 1.0, 101)
    pi = np.interp(ri, ru, pu, left=np.nan, right=np.nan)
    pi[np.isnan(pi)] = 0.0
    return float(pi.sum() * 0.01)


def _r50(r, p):
    """Recall where the curve crosses precision 0.5 (linear interpolation); 0 if never."""
    best = 0.0
    for i in range(len(r)):
        if p[i] >= 0.5:
            best = max(best, float(r[i]))
    for i in range(1, len(r)):
        lo, hi = p[i - 1], p[i]
        if (lo - 0.5) * (hi - 0.5) < 0:
            a = (0.5 - lo) / (hi - lo)
            best = max(best, float(r[i - 1] + a * (r[i] - r[i - 1])))
    return best


def collect_boundaries(counts, thresholds=None) -> dict:
    """Dataset figures from per-image counts, as the official ``collect_eval_bdry``.

    Parameters
    ----------
    counts : sequence of (T, 4) array_like
        Per-image output of :func:`boundary_counts`.
    thresholds : (T,) array_like, optional
        Defaults to :func:`bsds_thresholds` of length T.

    Returns
    -------
    figures : dict
        ``ods, ods_threshold, ods_recall, ods_precision, ois, ois_recall, ois_precision, ap,
        r50, n_images`` and ``curve`` (``thresh, R, P, F`` lists).
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 3 or c.shape[2] != 4 or c.shape[0] == 0:
        raise ValueError(f"`counts` must be a non-empty (N, T, 4) stack, got shape {c.shape}")
    t = bsds_thresholds(c.shape[1]) if thresholds is None else np.asarray(thresholds, float)
    tot = c.sum(axis=0)
    r, p = _rp(tot[:, 0], tot[:, 1], tot[:, 2], tot[:, 3])
    f = f_measure(r, p)
    ods_r, ods_p, ods_f, ods_t = _interp_max_f(t, r, p)
    # OIS: each image's counts at its first best threshold, summed.
    ri, pi = _rp(c[..., 0], c[..., 1], c[..., 2], c[..., 3])
    fi = f_measure(ri, pi)
    best = np.argmax(fi, axis=1)
    sel = c[np.arange(c.shape[0]), best]
    ois_r, ois_p = _rp(*sel.sum(axis=0))
    return {
        "ods": ods_f,
        "ods_threshold": ods_t,
        "ods_recall": ods_r,
        "ods_precision": ods_p,
        "ois": float(f_measure(ois_r, ois_p)),
        "ois_recall": float(ois_r),
        "ois_precision": float(ois_p),
        "ap": _average_precision(r, p),
        "r50": _r50(r, p),
        "n_images": int(c.shape[0]),
        "curve": {"thresh": t.tolist(), "R": r.tolist(), "P": p.tolist(), "F": f.tolist()},
    }
