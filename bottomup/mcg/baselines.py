"""Baseline proposals: selective-search-style greedy grouping of Felzenszwalb segments.

A reimplementation of the grouping of selective search [1]_ (not the original code): each
strategy segments the image with Felzenszwalb-Huttenlocher [2]_ in one colour space with one
``k``, then greedily merges the two most similar adjacent regions until one is left. The
similarity is a sum of (any of) four terms in [0, 1] (section 3.2 of [1]_):

* colour: histogram intersection of 25-bin histograms of each channel (L1-normalised);
* texture: histogram intersection of 10-bin histograms of Gaussian derivatives (sigma 1) in 8
  orientations of each channel (L1-normalised);
* size: ``1 - (a_i + a_j) / a_image`` (small regions merge first);
* fill: ``1 - (box(i u j) - a_i - a_j) / a_image`` (regions filling each other's gaps merge first).

Merged histograms are the area-weighted means of the two. The regions of every strategy (its
initial segments and every merge) are pooled and ranked as in [1]_: a region created at step
``t`` of a hierarchy with ``T`` regions has position ``T - t`` (the whole image is position 1),
its value is ``position * u`` with ``u ~ U(0, 1)``, and candidates are sorted by increasing value
with exact duplicates dropped. Masks are returned as leaf sets over the common refinement of
the strategies' segmentations, with their bounding boxes.

References
----------
.. [1] J. R. R. Uijlings, K. E. A. van de Sande, T. Gevers, A. W. M. Smeulders, "Selective
       Search for Object Recognition", IJCV 104(2), 2013. :DOI:`10.1007/s11263-013-0620-5`
.. [2] P. F. Felzenszwalb, D. P. Huttenlocher, "Efficient Graph-Based Image Segmentation",
       IJCV 59(2), 2004. :DOI:`10.1023/B:VISI.0000022288.19776.77`
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bottomup.graph import adjacent_pairs
from bottomup.masks import labels_to_boxes, union_boxes
from bottomup.mcg.candidates import Candidates
from bottomup.validate import check_image

__all__ = ["SS_FAST", "Strategy", "greedy_merge", "region_features", "selective_search",
           "similarity"]

COLOUR_BINS = 25
TEXTURE_BINS = 10
N_ORIENT = 8
_SIM_TERMS = ("colour", "texture", "size", "fill")


@dataclass(frozen=True)
class Strategy:
    """One diversification strategy of [1]_.

    Attributes
    ----------
    colour_space : {"rgb", "hsv", "lab"}
    k : float
        Felzenszwalb ``scale`` (and ``min_size``), sigma 0.8.
    terms : tuple of str
        Similarity terms summed, among ``"colour", "texture", "size", "fill"``.
    """

    colour_space: str = "hsv"
    k: float = 100.0
    terms: tuple = _SIM_TERMS


#: The "fast" mode of [1]_: HSV and Lab, k 50 and 100, C+T+S+F and T+S+F (8 strategies).
SS_FAST = tuple(Strategy(cs, k, t) for cs in ("hsv", "lab") for k in (50.0, 100.0)
                for t in (_SIM_TERMS, _SIM_TERMS[1:]))


def _convert(img: NDArray[np.float64], space: str) -> NDArray[np.float64]:
    """Image in a colour space with every channel scaled to [0, 1]."""
    from skimage import color

    if space == "rgb":
        return img
    if space == "hsv":
        return color.rgb2hsv(img)
    if space == "lab":
        lab = color.rgb2lab(img)
        lo = np.array([0.0, -128.0, -128.0])
        hi = np.array([100.0, 127.0, 127.0])
        return np.clip((lab - lo) / (hi - lo), 0.0, 1.0)
    raise ValueError(f"`colour_space` must be 'rgb', 'hsv' or 'lab', got {space!r}")


@dataclass(frozen=True)
class RegionFeatures:
    """Per-region statistics of a label image (see :func:`region_features`)."""

    area: NDArray[np.float64]      # (R,)
    box: NDArray[np.int64]         # (R, 4) half-open r0, c0, r1, c1
    colour: NDArray[np.float64]    # (R, C * 25), L1-normalised
    texture: NDArray[np.float64]   # (R, C * 8 * 10), L1-normalised
    edges: NDArray[np.int64]       # (E, 2) adjacent pairs i < j


def _histograms(labels, values, n_regions, bins):
    """L1-normalised per-region histograms of ``values`` (H, W, D) in [0, 1]: (R, D * bins)."""
    d = values.shape[-1]
    q = np.minimum((values * bins).astype(np.int64), bins - 1)  # (H, W, D)
    idx = (labels[..., None] * d + np.arange(d)) * bins + q
    h = np.bincount(idx.ravel(), minlength=n_regions * d * bins).astype(np.float64)
    h = h.reshape(n_regions, d * bins)
    return h / np.maximum(h.sum(axis=1, keepdims=True), 1e-12)


def _texture_values(img):
    """Gaussian derivatives (sigma 1) in 8 orientations per channel, scaled to [0, 1]: (H, W, 8C)."""
    from scipy.ndimage import gaussian_filter

    out = []
    for c in range(img.shape[2]):
        gy = gaussian_filter(img[..., c], 1.0, order=(1, 0))
        gx = gaussian_filter(img[..., c], 1.0, order=(0, 1))
        for t in range(N_ORIENT):
            a = 2 * np.pi * t / N_ORIENT
            r = np.maximum(np.cos(a) * gx + np.sin(a) * gy, 0.0)  # one-sided: 8 distinct
            out.append(r / r.max() if r.max() > 0 else r)
    return np.stack(out, axis=-1)


def region_features(labels, image) -> RegionFeatures:
    """Area, box, colour and texture histograms and 4-adjacency of a label image.

    Parameters
    ----------
    labels : (H, W) int array
        Dense labels ``0..R-1``.
    image : (H, W, C) float array in [0, 1]
        The image in the strategy's colour space.
    """
    labels = np.asarray(labels, np.int64)
    n = int(labels.max()) + 1
    area = np.bincount(labels.ravel(), minlength=n).astype(np.float64)
    box = labels_to_boxes(labels, n)
    colour = _histograms(labels, image, n, COLOUR_BINS)
    texture = _histograms(labels, _texture_values(image), n, TEXTURE_BINS)
    return RegionFeatures(area, box, colour, texture, adjacent_pairs(labels))


def similarity(a: dict, b: dict, image_area: float, terms=_SIM_TERMS) -> float:
    """Selective-search similarity of two regions (dicts with area, box, colour, texture)."""
    s = 0.0
    if "colour" in terms:
        s += float(np.minimum(a["colour"], b["colour"]).sum())
    if "texture" in terms:
        s += float(np.minimum(a["texture"], b["texture"]).sum())
    if "size" in terms:
        s += 1.0 - (a["area"] + b["area"]) / image_area
    if "fill" in terms:
        bh = max(a["box"][2], b["box"][2]) - min(a["box"][0], b["box"][0])
        bw = max(a["box"][3], b["box"][3]) - min(a["box"][1], b["box"][1])
        s += 1.0 - (bh * bw - a["area"] - b["area"]) / image_area
    return s


def greedy_merge(feats: RegionFeatures, image_area: float, terms=_SIM_TERMS):
    """Hierarchical grouping of [1]_: merge the most similar adjacent pair until one region.

    Returns
    -------
    merges : (M, 2) int64
        Children of each new region ``R + m`` (regions ``0..R-1`` are the initial ones); ties
        are broken by the smaller pair of ids. M = R - 1 for a connected label image.
    """
    terms = tuple(terms)
    bad = set(terms) - set(_SIM_TERMS)
    if bad or not terms:
        raise ValueError(f"`terms` must be a non-empty subset of {_SIM_TERMS}, got {terms!r}")
    n = feats.area.size
    reg = [{"area": feats.area[i], "box": feats.box[i], "colour": feats.colour[i],
            "texture": feats.texture[i]} for i in range(n)]
    nbrs = [set() for _ in range(n)]
    for i, j in feats.edges:
        nbrs[i].add(int(j))
        nbrs[j].add(int(i))
    alive = [True] * n
    heap = [(-similarity(reg[i], reg[j], image_area, terms), int(i), int(j)) for i, j in feats.edges]
    heapq.heapify(heap)
    merges = []
    while heap:
        _, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue
        a, b = reg[i], reg[j]
        s = a["area"] + b["area"]
        new = {"area": s,
               "box": np.array([min(a["box"][0], b["box"][0]), min(a["box"][1], b["box"][1]),
                                max(a["box"][2], b["box"][2]), max(a["box"][3], b["box"][3])]),
               "colour": (a["area"] * a["colour"] + b["area"] * b["colour"]) / s,
               "texture": (a["area"] * a["texture"] + b["area"] * b["texture"]) / s}
        k = len(reg)
        reg.append(new)
        alive[i] = alive[j] = False
        alive.append(True)
        nk = (nbrs[i] | nbrs[j]) - {i, j}
        nbrs.append(nk)
        for m in nk:
            nbrs[m].discard(i)
            nbrs[m].discard(j)
            nbrs[m].add(k)
            heapq.heappush(heap, (-similarity(reg[m], new, image_area, terms), m, k))
        merges.append((i, j))
    return np.array(merges, np.int64).reshape(-1, 2)


def _leaf_sets_of_hierarchy(n_init: int, merges) -> NDArray[np.bool_]:
    """(R + M, R) membership of initial regions in every region of the merge tree."""
    sets = np.zeros((n_init + len(merges), n_init), bool)
    sets[np.arange(n_init), np.arange(n_init)] = True
    for m, (i, j) in enumerate(merges):
        sets[n_init + m] = sets[i] | sets[j]
    return sets


def selective_search(image, n: int = 1000, strategies=SS_FAST, *, seed: int = 0,
                     sigma: float = 0.8) -> Candidates:
    """Selective-search-style object proposals (masks and boxes) [1]_.

    Parameters
    ----------
    image : (H, W[, C]) array_like
        Any layout the image contract accepts (gray is replicated to 3 channels).
    n : int
        Number of candidates returned at most.
    strategies : sequence of Strategy
        Default :data:`SS_FAST` (the "fast" mode of [1]_).
    seed : int
        Seed of the random factors of the ranking.
    sigma : float
        Gaussian pre-smoothing of Felzenszwalb's segmentation [2]_ (0.8 in [1]_).

    Returns
    -------
    candidates : Candidates
        Leaf sets over the common refinement of the strategies' segmentations, boxes of the
        regions, scores ``-value`` (non-increasing), no two with the same mask.

    Examples
    --------
    >>> img = np.zeros((30, 30, 3)); img[5:20, 5:20] = 1.0
    >>> c = selective_search(img, n=10)
    >>> bool(c.masks()[:, 10, 10].any()), c.masks().shape[1:]
    (True, (30, 30))
    """
    from skimage.segmentation import felzenszwalb

    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"`n` must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"`n` must be >= 0, got {n}")
    strategies = tuple(strategies)
    if not strategies or not all(isinstance(s, Strategy) for s in strategies):
        raise TypeError("`strategies` must be a non-empty sequence of Strategy")
    img = check_image(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    hgt, wid = img.shape[:2]
    rng = np.random.default_rng(seed)
    segs, trees = {}, []
    for st in strategies:
        key = (st.colour_space, st.k)
        conv = _convert(img, st.colour_space)
        if key not in segs:
            lab = felzenszwalb(conv, scale=st.k, sigma=sigma, min_size=int(st.k))
            _, lab = np.unique(lab, return_inverse=True)
            segs[key] = lab.reshape(hgt, wid)
        lab = segs[key]
        feats = region_features(lab, conv)
        merges = greedy_merge(feats, float(hgt * wid), st.terms)
        sets = _leaf_sets_of_hierarchy(feats.area.size, merges)
        total = sets.shape[0]
        position = total - np.arange(total)  # last merge (the whole image) is position 1
        trees.append((key, sets, position * rng.random(total)))
    # common refinement of the distinct segmentations
    keys = list(segs)
    combo = np.zeros((hgt, wid), np.int64)
    for k in keys:
        combo = combo * (int(segs[k].max()) + 1) + segs[k]
    _, first, leaf = np.unique(combo.ravel(), return_index=True, return_inverse=True)
    leaf = leaf.reshape(hgt, wid)
    all_sets, all_vals = [], []
    for key, sets, vals in trees:
        init_of_leaf = segs[key].ravel()[first]  # (L,) initial region of every refinement cell
        all_sets.append(sets[:, init_of_leaf])
        all_vals.append(vals)
    sets = np.concatenate(all_sets)
    vals = np.concatenate(all_vals)
    order = np.argsort(vals, kind="stable")
    sets, vals = sets[order], vals[order]
    _, uniq = np.unique(np.packbits(sets, axis=1), axis=0, return_index=True)
    keep = np.sort(uniq)[:n]
    sets, vals = sets[keep], vals[keep]
    boxes = union_boxes(labels_to_boxes(leaf, sets.shape[1]), sets)
    return Candidates(leaf.astype(np.int32), sets, boxes.reshape(-1, 4), -vals)
