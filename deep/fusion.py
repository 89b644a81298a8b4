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
images, before the weights are fitted on the instances it keeps.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .segmenter import DEFAULT_FUSION, FUSE_KEYS, check_fusion, fuse_components, instance_evidence

__all__ = ["DEFAULT_GRID", "DEFAULT_NMS", "DEFAULT_SWITCHES", "FusionFit", "NMSFit", "fit_fusion", "fit_nms",
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
    from bottomup.metrics.semantic import confusion_matrix, semantic_scores

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
            s = semantic_scores(conf)
            figs = {"pixel_acc": float(s.pixel_accuracy), "mean_class_acc": float(s.mean_accuracy),
                    "miou": float(s.mean_iou)}
            cache[sig] = (figs["miou"] + figs["pixel_acc"] + figs["mean_class_acc"], figs)
            tried.append({**setting, **figs})
        return cache[sig]

    if method == "grid":
        best = None
        for vals in itertools.product(*(grid[k] for k in keys)):
            setting = dict(zip(keys, vals, strict=True))
            sc, _ = evaluate(setting)
            if best is None or sc > best[0]:
                best = (sc, setting)
        current = best[1]
    else:
        current = {k: fz0[k] if fz0[k] in grid[k] else grid[k][0] for k in keys}
        for _ in range(max_rounds):
            changed = False
            for k in keys:
                best_v, best_s = current[k], evaluate(current)[0]
                for v in grid[k]:
                    sc = evaluate({**current, k: v})[0]
                    if sc > best_s:
                        best_v, best_s = v, sc
                if best_v != current[k]:
                    current = {**current, k: best_v}
                    changed = True
            if not changed:
                break
    sc, figs = evaluate(current)
    return FusionFit(dict(current), float(sc), figs, tuple(tried), len(components))


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
        ``{"nms", "apr50", "apr70"}`` of every threshold, in order.
    """

    nms: float
    apr50: float
    tried: tuple = field(repr=False)


def fit_nms(instances, truths, things, n_classes: int, *, thresholds=DEFAULT_NMS,
            max_keep: int | None = None) -> NMSFit:
    """Choose the IoU threshold of the instances' mask NMS by AP^r at 0.5 on selection images.

    Parameters
    ----------
    instances : sequence of deep.segmenter.Instances
        The instances of each selection image before any suppression: computed with
        ``fusion={"nms": 1.0, "max_instances": <at least n_refine * classes_per_candidate>}``.
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
    tried = []
    for t in thresholds:
        apr = InstanceAP(n_classes, InstanceParams.sds())
        for inst, (gm, gc, void) in zip(instances, truths, strict=True):
            kept = inst.suppress(t, max_keep=max_keep)
            apr.update(kept.masks, kept.classes, kept.scores, gm, gc, void=void)
        ap = apr.compute().ap[:, things]
        if np.isnan(ap[0]).all():
            raise ValueError("no thing class has a ground-truth instance in `truths`: AP^r is undefined")
        tried.append({"nms": t, "apr50": float(np.nanmean(ap[0])), "apr70": float(np.nanmean(ap[1]))})
    best = max(range(len(tried)), key=lambda i: (tried[i]["apr50"], -i))
    return NMSFit(tried[best]["nms"], tried[best]["apr50"], tuple(tried))


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
    fusions = [check_fusion(f, name=f"fusions[{i}]") for i, f in enumerate(fusions)]
    if not fusions:
        raise ValueError("`fusions` must hold the fusion of at least one fold, got none")
    keys = list(fusions[0])
    for i, f in enumerate(fusions[1:], 1):
        if set(f) != set(keys):
            raise ValueError(f"`fusions[{i}]` names the keys {sorted(f)}, expected those of fusions[0]: "
                             f"{sorted(keys)}")
    out = {}
    for k in keys:
        vals = sorted(f[k] for f in fusions)
        out[k] = vals[(len(vals) - 1) // 2]
    return out
