"""Learned arc scores: the strength of each boundary between two finest regions, from a small model.

The OWT-UCM merges regions by the mean strength of their common boundary, and each boundary
element's strength is read from the contour map. This stage replaces the strengths of each arc
(all the boundary between two adjacent finest regions) by one learned score: the probability that
the two regions belong to different human segments, predicted from the arc's contour statistics
and the two regions' sizes, colours and contexts. The UCM then merges by the mean of these
scores, weighted by arc length, as before. It is the arc-level learning of Ren and
Shakhnarovich [1]_ (region pairs scored by a classifier from boundary and region cues), used
once on the finest partition, as COB [2]_ keeps the mean-strength merging above it.

The shipped scorer was trained on the arcs of 180 BSDS500 train images (``bench/train_arcs.py``),
for the learned contours' ridge OWT; it reads that network's outputs, so retrain it with the
network or for another detector (``bench/train_arcs.py --pb-dir``). Some features (region areas,
arc lengths) depend on the image size. Figures: docs/results.md#learned-arc-scores and
docs/results.md#other-image-sizes.

References
----------
.. [1] Z. Ren, G. Shakhnarovich, "Image Segmentation by Cascaded Region Agglomeration", CVPR 2013.
.. [2] K.-K. Maninis, J. Pont-Tuset, P. Arbelaez, L. Van Gool, "Convolutional Oriented
       Boundaries: From Image Segmentation to High-Level Tasks", TPAMI 40(4), 2018.
       :DOI:`10.1109/TPAMI.2017.2700300`
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from importlib import resources

import numpy as np
from numpy.typing import NDArray

from bottomup.contours.source import ARC_RULES
from bottomup.owt.oriented_watershed import BoundaryPieces

__all__ = ["FEATURES", "ArcFeatures", "ArcScorer", "arc_features", "region_pair_targets",
           "rescore_pieces", "load_arc_scorer", "save_arc_scorer"]

#: Names of the columns of :attr:`ArcFeatures.x`, in order. ``strength``: the face strengths of
#: :class:`BoundaryPieces`; ``pb``: the larger ``pb`` of the two pixels beside each face;
#: ``agreement``: the oriented stack at the face's piece orientation over its maximum over
#: orientations (1: the arc runs the way the detector says the edge runs); ``context``: the
#: arc's mean strength over the strongest mean strength among the other arcs of each region.
FEATURES = (
    "mean_strength", "sqrt_mean_strength", "mean_pb", "max_pb", "min_pb", "std_pb",
    "agreement", "ridge_fraction", "log_length", "log1p_pieces", "log_min_area", "log_max_area",
    "length_over_min_perimeter", "lab_distance", "lab_l_distance", "lab_distance_over_spread",
    "inside_pb_sum", "inside_pb_difference", "context_max", "context_min",
)


@dataclass(frozen=True)
class ArcFeatures:
    """The arcs of a finest partition and their features.

    Attributes
    ----------
    face_arc : (M,) ndarray of int64
        Arc of each face of the :class:`BoundaryPieces` they came from.
    regions : (A, 2) ndarray of int64
        The two regions of each arc, smaller label first.
    length : (A,) ndarray of float64
        Number of faces of each arc.
    x : (A, F) ndarray of float64
        Features, columns named by :data:`FEATURES`.
    """

    face_arc: NDArray[np.int64]
    regions: NDArray[np.int64]
    length: NDArray[np.float64]
    x: NDArray[np.float64]


def arc_features(image, pb, oriented, labels, pieces: BoundaryPieces) -> ArcFeatures:
    """Features of every arc (boundary between two adjacent finest regions).

    Parameters
    ----------
    image : (H, W, 3) ndarray of float in [0, 1]
        The image the contours came from (``bottomup.validate.check_image`` layout).
    pb : (H, W) ndarray of float
        Contour strength.
    oriented : (O, H, W) ndarray of float or None
        Oriented stack (None: ``pb`` in every orientation, agreement 1).
    labels : (H, W) ndarray of int
        Finest partition, dense labels ``0..K-1``.
    pieces : BoundaryPieces
        Its boundary with face strengths (:func:`bottomup.owt.oriented_watershed`, or the ridge
        inputs of :func:`bottomup.pipeline.ridge_owt_inputs`).

    Returns
    -------
    ArcFeatures
        ``A`` arcs; ``A == 0`` (and ``x`` of shape ``(0, F)``) for a single region.
    """
    from skimage.color import rgb2lab

    labels = np.asarray(labels)
    pb = np.asarray(pb, dtype=np.float64)
    if labels.shape != pb.shape or tuple(pieces.shape) != pb.shape or np.shape(image)[:2] != pb.shape:
        raise ValueError(f"`image`, `pb`, `labels` and `pieces` must share one (H, W); got "
                         f"{np.shape(image)[:2]}, {pb.shape}, {labels.shape}, {tuple(pieces.shape)}")
    k = int(labels.max()) + 1
    nf = len(FEATURES)
    if pieces.n_faces == 0:
        return ArcFeatures(np.zeros(0, np.int64), np.zeros((0, 2), np.int64), np.zeros(0), np.zeros((0, nf)))
    i0, j0, i1, j1 = pieces.face_pixels()
    inv, pairs = pieces.region_pairs(labels)
    n = len(pairs)
    ea, eb = pairs[:, 0], pairs[:, 1]
    cnt = np.bincount(inv, minlength=n).astype(np.float64)

    def mean(v):
        return np.bincount(inv, weights=v, minlength=n) / cnt

    s = pieces.strengths
    pbf = np.maximum(pb[i0, j0], pb[i1, j1])
    if oriented is None:
        agree = np.ones_like(pbf)
    else:
        o = np.asarray(oriented, dtype=np.float64)
        ch = pieces.piece_channel[pieces.face_piece] % o.shape[0]
        omax = o.max(axis=0) + 1e-6
        agree = 0.5 * (o[ch, i0, j0] / omax[i0, j0] + o[ch, i1, j1] / omax[i1, j1])
    ms, mp = mean(s), mean(pbf)
    sd = np.sqrt(np.maximum(mean(pbf ** 2) - mp ** 2, 0.0))
    mx = np.full(n, -np.inf)
    np.maximum.at(mx, inv, pbf)
    mn = np.full(n, np.inf)
    np.minimum.at(mn, inv, pbf)
    arc_piece = np.unique(np.stack([inv, np.asarray(pieces.face_piece, np.int64)], 1), axis=0)
    n_pieces = np.bincount(arc_piece[:, 0], minlength=n).astype(np.float64)

    flat = labels.ravel()
    area = np.bincount(flat, minlength=k).astype(np.float64)
    lab = rgb2lab(np.asarray(image, dtype=np.float64)[..., :3]).reshape(-1, 3)
    c_mean = np.stack([np.bincount(flat, lab[:, c], k) for c in range(3)], 1) / area[:, None]
    c_sq = np.stack([np.bincount(flat, lab[:, c] ** 2, k) for c in range(3)], 1) / area[:, None]
    c_sd = np.sqrt(np.maximum(c_sq - c_mean ** 2, 0.0))
    inside = np.bincount(flat, pb.ravel(), k) / area
    dcol = np.linalg.norm(c_mean[ea] - c_mean[eb], axis=1)
    perim = np.bincount(ea, cnt, k) + np.bincount(eb, cnt, k)
    ctx = np.zeros(k)
    np.maximum.at(ctx, ea, ms)
    np.maximum.at(ctx, eb, ms)
    x = np.stack([
        ms, np.sqrt(ms), mp, mx, mn, sd,
        mean(agree), mean((s > 0).astype(np.float64)), np.log(cnt), np.log1p(n_pieces),
        np.log(np.minimum(area[ea], area[eb])), np.log(np.maximum(area[ea], area[eb])),
        cnt / np.minimum(perim[ea], perim[eb]), dcol / 100.0, np.abs(c_mean[ea, 0] - c_mean[eb, 0]) / 100.0,
        dcol / (1.0 + 0.5 * (c_sd[ea].sum(1) + c_sd[eb].sum(1))),
        inside[ea] + inside[eb], np.abs(inside[ea] - inside[eb]),
        ms / (np.maximum(ctx[ea], ctx[eb]) + 1e-6), ms / (np.minimum(ctx[ea], ctx[eb]) + 1e-6),
    ], axis=1)
    return ArcFeatures(inv, pairs, cnt, x)


def region_pair_targets(labels, regions, segmentations) -> NDArray[np.float64]:
    """Share of human segmentations that put the two regions of each arc in different segments.

    Each finest region takes the segment that covers most of its pixels in each human
    segmentation; an arc is a true boundary for that annotator when its two regions take different
    segments.

    Parameters
    ----------
    labels : (H, W) ndarray of int
        Finest partition, dense labels ``0..K-1``.
    regions : (A, 2) ndarray of int
        The arcs' region pairs (:attr:`ArcFeatures.regions`).
    segmentations : sequence of (H, W) ndarray of int
        Human segmentations (any integer labels).

    Returns
    -------
    (A,) ndarray of float64 in [0, 1]
    """
    labels = np.asarray(labels)
    regions = np.asarray(regions, dtype=np.int64).reshape(-1, 2)
    if len(segmentations) == 0:
        raise ValueError("`segmentations` must hold at least one human segmentation")
    k = int(labels.max()) + 1
    flat = labels.ravel().astype(np.int64)
    out = np.zeros(regions.shape[0])
    for seg in segmentations:
        seg = np.asarray(seg)
        if seg.shape != labels.shape:
            raise ValueError(f"each segmentation must have shape {labels.shape}, got {seg.shape}")
        _, g = np.unique(seg.ravel(), return_inverse=True)
        n_seg = int(g.max()) + 1
        major = np.bincount(flat * n_seg + g.ravel(), minlength=k * n_seg).reshape(k, n_seg).argmax(1)
        out += major[regions[:, 0]] != major[regions[:, 1]]
    return out / len(segmentations)


@dataclass(frozen=True)
class ArcScorer:
    """A small multilayer perceptron on standardised arc features (ReLU hidden layers, sigmoid out).

    Attributes
    ----------
    mean, scale : (F,) ndarray of float64
        Standardisation: the network sees ``(x - mean) / scale``.
    weights : tuple of (F_in, F_out) ndarray of float64
    biases : tuple of (F_out,) ndarray of float64
    meta : dict
        Provenance (data, training figures), as stored.
    """

    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    weights: tuple
    biases: tuple
    meta: dict

    def __call__(self, x) -> NDArray[np.float64]:
        """Probability that each arc is a true boundary; ``x`` is ``(A, F)``, returns ``(A,)``."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.mean.size:
            raise ValueError(f"`x` must have shape (A, {self.mean.size}), got {x.shape}")
        h = (x - self.mean) / self.scale
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return 1.0 / (1.0 + np.exp(-h[:, 0]))


def save_arc_scorer(path, scorer: ArcScorer) -> None:
    """Write an :class:`ArcScorer` to ``path`` (``.npz``), atomically."""
    arrays = {"mean": scorer.mean, "scale": scorer.scale, "features": np.array(FEATURES),
              "meta": np.array(json.dumps(scorer.meta))}
    for i, (w, b) in enumerate(zip(scorer.weights, scorer.biases, strict=True)):
        arrays[f"w{i}"], arrays[f"b{i}"] = w, b
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


#: The shipped scorers by name: the contour source whose arcs each was fitted on
#: (``bench/train_arcs.py --contours NAME``, BSDS500 train; ``data/MODEL_CARD.md``).
SHIPPED_ARC_SCORERS = {rule: f"arcs_{rule}.npz" for rule in ARC_RULES if rule != "mean"}


def shipped_arc_scorer_path(name: str = "learned"):
    """Path of a shipped :class:`ArcScorer` file (``bottomup/owt/data/arcs_{name}.npz``).

    ``name`` is a key of :data:`SHIPPED_ARC_SCORERS`: ``"learned"``, fitted on the arcs of the
    learned contours, or ``"gpb"``, fitted on those of ``GPb()`` at one scale.
    """
    if name not in SHIPPED_ARC_SCORERS:
        raise ValueError(f"no shipped arc scorer {name!r}; shipped: {sorted(SHIPPED_ARC_SCORERS)}")
    return resources.files("bottomup.owt") / "data" / SHIPPED_ARC_SCORERS[name]


def load_arc_scorer(path=None) -> ArcScorer:
    """Read an :class:`ArcScorer` from a file, or a shipped one by name (None: ``"learned"``).

    Examples
    --------
    >>> load_arc_scorer("gpb").meta["contours"]
    'gpb, its own OWT'
    """
    if path is None or (isinstance(path, str) and path in SHIPPED_ARC_SCORERS):
        with resources.as_file(shipped_arc_scorer_path(path or "learned")) as p:
            return _read_scorer(p)
    return _read_scorer(path)


def _read_scorer(path) -> ArcScorer:
    with np.load(path, allow_pickle=False) as d:
        names = tuple(str(s) for s in d["features"])
        if names != FEATURES:
            raise ValueError(f"{path}: scorer features {names} differ from this version's {FEATURES}")
        n = sum(1 for key in d.files if key[0] == "w" and key[1:].isdigit())
        return ArcScorer(d["mean"].astype(np.float64), d["scale"].astype(np.float64),
                         tuple(d[f"w{i}"].astype(np.float64) for i in range(n)),
                         tuple(d[f"b{i}"].astype(np.float64) for i in range(n)),
                         json.loads(str(d["meta"])))


def rescore_pieces(image, pb, oriented, labels, pieces: BoundaryPieces, scorer: ArcScorer) -> BoundaryPieces:
    """``pieces`` with every face's strength replaced by its arc's learned score.

    Feed the result to :func:`bottomup.hierarchy.hierarchy_from_pieces` (or use
    ``bottomup.segment(..., arcs="learned")``). Parameters as :func:`arc_features`.

    Returns
    -------
    BoundaryPieces
        Same faces and pieces; ``strengths`` in (0, 1), constant along each arc.
    """
    f = arc_features(image, pb, oriented, labels, pieces)
    if f.regions.shape[0] == 0:
        return pieces
    return replace(pieces, strengths=scorer(f.x)[f.face_arc])

