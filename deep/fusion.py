"""Fitting the fusion layer of :class:`deep.segmenter.DeepSegmenter` on held-out images.

The fusion (:func:`deep.segmenter.fuse_components`) has a handful of weights: ``leaf``,
``region``, ``iou_power``, ``instance`` and ``paste`` (``pixel`` fixes the scale and stays 1).
:func:`fit_fusion` chooses them on the components of a set of *selection* images, which must be
images the heads were not trained on and that the figures are not reported on (the
cross-validation of ``bench/msrc.py cv`` takes them from the training folds), by coordinate ascent
over a grid (or the whole grid) of the semantic objective ``miou + pixel_acc + mean_class_acc``.
Nothing else is read: the function gets the components and the label maps, no dataset.

The instances have one knob of their own, the threshold of their mask NMS: :func:`fit_nms`
chooses it by the figure it drives, AP^r at IoU 0.5 over the thing classes of the selection
images, before the weights are fitted on the instances it keeps. The dense-CRF pass after the
fusion (:meth:`deep.segmenter.DeepSegmenter.crf_labels`) has its parameters fitted the same way,
on the fused probabilities of the selection images (:func:`fit_crf`). Across the folds of a
cross-validation, each choice is taken key by key as the folds' median (:func:`median_fusion`,
:func:`median_crf`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .segmenter import DEFAULT_FUSION, FUSE_KEYS, check_fusion, fuse_components, instance_evidence

__all__ = ["CRFFit", "DEFAULT_CRF_GRID", "DEFAULT_GRID", "DEFAULT_NMS", "DEFAULT_N_REFINE",
           "DEFAULT_SWITCHES", "FusionFit", "NMSFit", "fit_crf", "fit_fusion", "fit_nms", "median_crf",
           "median_fusion"]

#: Values tried for each fitted weight (the ``bench/msrc.py`` default).
DEFAULT_GRID = {"leaf": (0.0, 0.25, 0.5, 1.0, 2.0), "region": (0.0, 0.5, 1.0, 2.0),
                "iou_power": (1.0, 2.0, 4.0), "instance": (0.0, 1.0, 2.0, 4.0),
                "paste": (0.3, 0.5, 0.7, 0.9, 2.0)}

#: Values tried for each switch of the components (the ``bench/msrc.py`` default): a switch
#: changes :meth:`deep.segmenter.DeepSegmenter.components` itself (``flip``: the per-pixel
#: classifier averaged over the image and its mirror), so the selection computes the components
#: once per value, fits the weights on each (:func:`fit_fusion`) and keeps the value whose fit
#: scores best (ties: the first value).
DEFAULT_SWITCHES = {"flip": (False, True)}

#: Thresholds of the instances' mask NMS tried by :func:`fit_nms` (the ``bench/msrc.py`` default).
DEFAULT_NMS = (0.3, 0.4, 0.5, 0.7)
#: Numbers of best candidates refined into instances tried by :func:`fit_nms` (``n_refine``).
DEFAULT_N_REFINE = (100, 200)


@dataclass(frozen=True)
class FusionFit:
    """Result of :func:`fit_fusion`.

    Attributes
    ----------
    fusion : dict
        The chosen weights (the fitted keys only; merge them into the segmenter's fusion).
    score : float
        The objective at ``fusion`` (``miou + pixel_acc + mean_class_acc``).
    figures : dict
        ``pixel_acc``, ``mean_class_acc``, ``miou`` at ``fusion`` on the selection images.
    tried : tuple of dict
        Every setting evaluated, with its figures, in order.
    n_images : int
    """

    fusion: dict
    score: float
    figures: dict
    tried: tuple = field(repr=False)
    n_images: int = 0


def fit_fusion(components, targets, n_classes: int, *, grid=None, base=None, method: str = "coordinate",
               max_rounds: int = 4) -> FusionFit:
    """Fit the fusion weights on the components of the selection images.

    Parameters
    ----------
    components : sequence of dict
        :meth:`deep.segmenter.DeepSegmenter.components` of each selection image, computed with
        ``fusion={"iou_power": grid["iou_power"]}`` so every power of the grid has its votes.
    targets : sequence of (H, W) ndarray of int
        The ground-truth labels of the same images (255 void).
    n_classes : int
    grid : dict, optional
        ``{key: values}`` over :data:`deep.segmenter.FUSE_KEYS` (default :data:`DEFAULT_GRID`).
    base : dict, optional
        The other weights, and the starting point of the ascent (default
        :data:`deep.segmenter.DEFAULT_FUSION`; a base value not in the grid is not revisited).
    method : {"coordinate", "grid"}
        Coordinate ascent (each key in turn over its values, the others fixed, until a round
        changes nothing or ``max_rounds``), or every combination of the grid.
    max_rounds : int

    Returns
    -------
    FusionFit

    Notes
    -----
    Ties keep the current value (coordinate) or the first setting in grid order (grid), so the
    result is deterministic. The objective sums one confusion matrix over all the images.
    """
    from bottomup.metrics.semantic import confusion_matrix

    grid = dict(DEFAULT_GRID if grid is None else grid)
    check_fusion(grid, name="grid")
    bad = [k for k in grid if k not in FUSE_KEYS]
    if bad:
        raise ValueError(f"`grid` key {bad[0]!r} is not fitted on components; the fittable keys are "
                         f"{list(FUSE_KEYS)}")
    for k, vals in grid.items():
        if len(vals) == 0:
            raise ValueError(f"`grid[{k!r}]` must list at least one value, got {vals!r}")
    if method not in ("coordinate", "grid"):
        raise ValueError(f"`method` must be 'coordinate' or 'grid', got {method!r}")
    components, targets = list(components), list(targets)
    if len(components) != len(targets) or not components:
        raise ValueError(f"`components` and `targets` must be non-empty and of one length, got "
                         f"{len(components)} and {len(targets)}")
    for i, (comp, tgt) in enumerate(zip(components, targets, strict=True)):
        if tuple(np.shape(tgt)) != tuple(comp["shape"]):
            raise ValueError(f"`targets[{i}]` has shape {np.shape(tgt)}, but its components are for "
                             f"{tuple(comp['shape'])}")
        missing = [p for p in grid.get("iou_power", ()) if p not in comp["votes"]]
        if missing:
            raise ValueError(f"`components[{i}]` has no votes for iou_power {missing}; compute them with "
                             f"fusion={{'iou_power': {list(grid['iou_power'])}}}")
    fz0 = {**DEFAULT_FUSION, **check_fusion(base, name="base")}
    if any(v for v in grid.get("instance", ())) or fz0["instance"]:  # once per image, not per setting
        import torch

        with torch.inference_mode():
            components = [{**c, "evidence": instance_evidence(c["instances"], c["logp"].float())}
                          if len(c["instances"]) else c for c in components]
    keys = list(grid)
    cache: dict[tuple, tuple[float, dict]] = {}
    tried: list[dict] = []

    def evaluate(setting: dict) -> tuple[float, dict]:
        sig = tuple(setting[k] for k in keys)
        if sig not in cache:
            fz = {**fz0, **setting}
            conf = np.zeros((n_classes, n_classes), np.int64)
            for comp, tgt in zip(components, targets, strict=True):
                conf += confusion_matrix(tgt, fuse_components(comp, fz)[0], n_classes)
            cache[sig] = _objective(conf)
            tried.append({**setting, **cache[sig][1]})
        return cache[sig]

    current = _search(grid, {k: fz0[k] for k in keys}, lambda st: evaluate(st)[0], method, max_rounds)
    sc, figs = evaluate(current)
    return FusionFit(dict(current), float(sc), figs, tuple(tried), len(components))


def _objective(conf: np.ndarray) -> tuple[float, dict]:
    """``(miou + pixel_acc + mean_class_acc, figures)`` of a confusion matrix: what the fits maximise."""
    from bottomup.metrics.semantic import semantic_scores

    s = semantic_scores(conf)
    figs = {"pixel_acc": float(s.pixel_accuracy), "mean_class_acc": float(s.mean_accuracy),
            "miou": float(s.mean_iou)}
    return figs["miou"] + figs["pixel_acc"] + figs["mean_class_acc"], figs


def _search(grid: dict, start: dict, objective, method: str, max_rounds: int) -> dict:
    """The setting of ``grid`` maximising ``objective(setting)``: every combination (``"grid"``,
    ties to the first in grid order) or coordinate ascent from ``start`` (a start value not in
    the grid is replaced by the key's first value; each key in turn over its values, ties keep
    the current value, until a round changes nothing or ``max_rounds``)."""
    keys = list(grid)
    if method == "grid":
        best = None
        for vals in itertools.product(*(grid[k] for k in keys)):
            setting = dict(zip(keys, vals, strict=True))
            sc = objective(setting)
            if best is None or sc > best[0]:
                best = (sc, setting)
        return best[1]
    current = {k: start[k] if start.get(k) in grid[k] else grid[k][0] for k in keys}
    for _ in range(max_rounds):
        changed = False
        for k in keys:
            best_v, best_s = current[k], objective(current)
            for v in grid[k]:
                sc = objective({**current, k: v})
                if sc > best_s:
                    best_v, best_s = v, sc
            if best_v != current[k]:
                current = {**current, k: best_v}
                changed = True
        if not changed:
            break
    return current


#: Values tried for each dense-CRF parameter by :func:`fit_crf` (the ``bench/msrc.py`` default;
#: DeepLab's values 4 / 121 / 5 iterations are in it).
DEFAULT_CRF_GRID = {"w_appearance": (3.0, 4.0, 6.0), "theta_alpha": (60.0, 121.0), "n_iter": (5, 10)}


@dataclass(frozen=True)
class CRFFit:
    """Result of :func:`fit_crf`: the chosen ``crf`` parameters, the objective and the figures
    there (``pixel_acc``, ``mean_class_acc``, ``miou`` after the CRF), every setting ``tried``
    with its figures, and the figures of the same images without the CRF (``before``)."""

    crf: dict
    score: float
    figures: dict
    before: dict
    tried: tuple = field(repr=False)


def fit_crf(probs, images, targets, n_classes: int, *, grid=None, base=None, method: str = "coordinate",
            max_rounds: int = 3, instances=None, paste: float = 2.0) -> CRFFit:
    """Fit the parameters of the dense-CRF pass (:meth:`deep.segmenter.DeepSegmenter.crf_labels`)
    on selection images, by the semantic objective ``miou + pixel_acc + mean_class_acc``.

    Parameters
    ----------
    probs : sequence of (C, H, W) ndarray
        The fused probabilities of each selection image (``DeepResult.probs``).
    images : sequence of (H, W, 3) ndarray
    targets : sequence of (H, W) ndarray of int
        Ground-truth labels (255 void).
    n_classes : int
    grid : dict, optional
        ``{key: values}`` over :data:`deep.segmenter.CRF_KEYS` (default :data:`DEFAULT_CRF_GRID`).
    base : dict, optional
        Start of the coordinate ascent (default: dense_crf's own parameters).
    method, max_rounds
        As :func:`fit_fusion`.
    instances : sequence of deep.segmenter.Instances, optional
        Pasted after the CRF where they score at least ``paste`` (as the segmenter does).
    paste : float

    Returns
    -------
    CRFFit
    """
    import inspect

    from bottomup.metrics.semantic import confusion_matrix

    from .crf import dense_crf
    from .segmenter import CRF_KEYS, check_crf, paste_instances

    grid = {k: list(v) for k, v in (DEFAULT_CRF_GRID if grid is None else grid).items()}
    for k, vals in grid.items():
        if k not in CRF_KEYS:
            raise ValueError(f"`grid` key {k!r} is not a dense_crf parameter a segmenter carries; those "
                             f"are {list(CRF_KEYS)}")
        if not vals:
            raise ValueError(f"`grid[{k!r}]` must list at least one value, got {vals!r}")
        for v in vals:
            check_crf({k: v}, name=f"grid[{k!r}]")
    probs, images, targets = list(probs), list(images), list(targets)
    if not (len(probs) == len(images) == len(targets)) or not probs:
        raise ValueError(f"`probs`, `images` and `targets` must be non-empty and of one length, got "
                         f"{len(probs)}, {len(images)} and {len(targets)}")
    instances = [None] * len(probs) if instances is None else list(instances)
    defaults = {k: p.default for k, p in inspect.signature(dense_crf).parameters.items() if k in CRF_KEYS}
    start = {**defaults, **check_crf(base, name="base")}
    unaries = [-np.log(np.clip(np.asarray(p, np.float32), 1e-8, 1.0)) for p in probs]
    tried: list[dict] = []
    cache: dict[tuple, tuple[float, dict]] = {}

    def figures(labels_of) -> tuple[float, dict]:
        conf = np.zeros((n_classes, n_classes), np.int64)
        for i, tgt in enumerate(targets):
            lab = labels_of(i)
            if instances[i] is not None and paste <= 1.0:
                paste_instances(instances[i], lab, paste)
            conf += confusion_matrix(tgt, lab, n_classes)
        return _objective(conf)

    def evaluate(setting: dict) -> tuple[float, dict]:
        sig = tuple(setting[k] for k in grid)
        if sig not in cache:
            params = {**start, **setting}
            cache[sig] = figures(lambda i: dense_crf(unaries[i], images[i], **params).argmax(0)
                                 .astype(np.uint8))
            tried.append({**setting, **cache[sig][1]})
        return cache[sig]

    current = _search(grid, start, lambda st: evaluate(st)[0], method, max_rounds)
    sc, figs = evaluate(current)
    _, before = figures(lambda i: np.asarray(probs[i]).argmax(0).astype(np.uint8))
    return CRFFit(check_crf(current), float(sc), figs, before, tuple(tried))


@dataclass(frozen=True)
class NMSFit:
    """Result of :func:`fit_nms`.

    Attributes
    ----------
    nms : float
        The chosen threshold.
    apr50 : float
        AP^r at IoU 0.5 (mean over the thing classes with ground truth) at ``nms``.
    tried : tuple of dict
        ``{"n_refine", "nms", "apr50", "apr70"}`` of every setting, in order.
    n_refine : int or None
        The chosen number of refined candidates (None when not fitted).
    """

    nms: float
    apr50: float
    tried: tuple = field(repr=False)
    n_refine: int | None = None


def fit_nms(instances, truths, things, n_classes: int, *, thresholds=DEFAULT_NMS,
            max_keep: int | None = None, n_refine=None) -> NMSFit:
    """Choose the IoU threshold of the instances' mask NMS (and, optionally, how many candidates
    are refined into instances) by AP^r at 0.5 on selection images.

    Parameters
    ----------
    instances : sequence of deep.segmenter.Instances
        The instances of each selection image before any suppression: computed with
        ``fusion={"nms": 1.0, "max_instances": <at least n_refine * classes_per_candidate>}``
        (and ``n_refine`` at least the largest value of ``n_refine``, ``classes_per_candidate``
        1, so that the first ``n`` instances are those of the ``n`` best candidates).
    truths : sequence of (masks (T, H, W) bool, classes (T,) int, void (H, W) bool)
        The ground-truth thing instances of the same images
        (:meth:`deep.data.Sample.thing_instances` and :attr:`deep.data.Sample.void`).
    things : sequence of int
        The thing classes AP^r is averaged over (those with ground truth).
    n_classes : int
    thresholds : sequence of float
        In [0, 1]; ties keep the first listed.
    max_keep : int, optional
        Instances kept per image after suppression (the segmenter's ``max_instances``).
    n_refine : sequence of int, optional
        Numbers of best candidates to try (each with every threshold); ties keep the first.

    Returns
    -------
    NMSFit

    Examples
    --------
    >>> from deep.segmenter import Instances
    >>> gt = np.zeros((1, 4, 4), bool); gt[0, :2] = True
    >>> dup = np.stack([gt[0], gt[0]]); dup[1, 2, 0] = True          # a near duplicate (IoU 8/9)
    >>> inst = Instances(dup, np.array([1, 1]), np.array([.9, .8]))
    >>> fit_nms([inst], [(gt, np.array([1]), np.zeros((4, 4), bool))], [1], 2,
    ...         thresholds=(0.95, 0.5)).nms    # both are 1.0: the duplicate ranks below the match
    0.95
    """
    from bottomup.metrics.instance import InstanceAP, InstanceParams

    instances, truths = list(instances), list(truths)
    if len(instances) != len(truths) or not instances:
        raise ValueError(f"`instances` and `truths` must be non-empty and of one length, got "
                         f"{len(instances)} and {len(truths)}")
    thresholds = [float(t) for t in thresholds]
    if not thresholds or any(not 0.0 <= t <= 1.0 for t in thresholds):
        raise ValueError(f"`thresholds` must list values in [0, 1], got {thresholds!r}")
    things = sorted(int(c) for c in things)
    if not things:
        raise ValueError("`things` must name at least one class: AP^r is averaged over them")
    counts = [None] if n_refine is None else [int(n) for n in n_refine]
    if not counts or any(n is not None and n < 1 for n in counts):
        raise ValueError(f"`n_refine` must list counts >= 1, got {n_refine!r}")
    tried = []
    for n in counts:
        for t in thresholds:
            apr = InstanceAP(n_classes, InstanceParams.sds())
            for inst, (gm, gc, void) in zip(instances, truths, strict=True):
                kept = inst.take(slice(n)).suppress(t, max_keep=max_keep)
                apr.update(kept.masks, kept.classes, kept.scores, gm, gc, void=void)
            ap = apr.compute().ap[:, things]
            if np.isnan(ap[0]).all():
                raise ValueError("no thing class has a ground-truth instance in `truths`: AP^r is undefined")
            tried.append({"n_refine": n, "nms": t, "apr50": float(np.nanmean(ap[0])),
                          "apr70": float(np.nanmean(ap[1]))})
    best = tried[max(range(len(tried)), key=lambda i: (tried[i]["apr50"], -i))]
    return NMSFit(best["nms"], best["apr50"], tuple(tried), best["n_refine"])


def median_fusion(fusions) -> dict:
    """The fusion chosen by a cross-validation: per weight, the median of the folds' choices.

    Each fold of ``bench/msrc.py cv`` fits its own fusion (:func:`fit_fusion`) on its selection
    fold; the weights a model trained on the whole pool ships with are, key by key, the lower
    median of those choices, so that every weight is a value some fold chose (a grid value) and
    no single fold decides alone. For a switch (``flip``) the lower median is the majority, a
    tie going to False.

    Parameters
    ----------
    fusions : sequence of dict
        The fused weights each fold chose (``{key: value}``, keys of
        :data:`deep.segmenter.FUSE_KEYS`); every dict must name the same keys.

    Returns
    -------
    dict
        ``{key: lower median over the folds}``, in the key order of the first dict.

    Examples
    --------
    >>> median_fusion([{"leaf": 0.0, "instance": 2.0}, {"leaf": 0.5, "instance": 4.0},
    ...                {"leaf": 0.25, "instance": 4.0}])
    {'leaf': 0.25, 'instance': 4.0}
    >>> median_fusion([{"leaf": 0.0}, {"leaf": 1.0}])  # even count: the lower of the middle two
    {'leaf': 0.0}
    >>> median_fusion([{"flip": True}, {"flip": False}, {"flip": True}])
    {'flip': True}
    """
    return _median([check_fusion(f, name=f"fusions[{i}]") for i, f in enumerate(fusions)], "fusions")


def median_crf(crfs) -> dict:
    """The dense-CRF parameters chosen by a cross-validation: per key, the lower median of the
    folds' :func:`fit_crf` choices (as :func:`median_fusion`).

    Examples
    --------
    >>> median_crf([{"w_appearance": 6.0, "n_iter": 10}, {"w_appearance": 4.0, "n_iter": 5},
    ...             {"w_appearance": 6.0, "n_iter": 5}])
    {'w_appearance': 6.0, 'n_iter': 5}
    """
    from .segmenter import check_crf

    return _median([check_crf(c, name=f"crfs[{i}]") for i, c in enumerate(crfs)], "crfs")


def _median(dicts: list, name: str) -> dict:
    if not dicts:
        raise ValueError(f"`{name}` must hold the choice of at least one fold, got none")
    keys = list(dicts[0])
    for i, f in enumerate(dicts[1:], 1):
        if set(f) != set(keys):
            raise ValueError(f"`{name}[{i}]` names the keys {sorted(f)}, expected those of {name}[0]: "
                             f"{sorted(keys)}")
    out = {}
    for k in keys:
        vals = sorted(f[k] for f in dicts)
        out[k] = vals[(len(vals) - 1) // 2]
    return out
