"""``deep.segment``: bottom-up proposals scored and refined by the hypercolumn heads.

Pipeline (SDS / Hypercolumns [1]_ [2]_ on MCG/SCG candidates [3]_):

1. backbone taps of the image (EfficientNet-Lite0, frozen), dense hypercolumns at half resolution;
2. per-pixel class probabilities ``P`` (:class:`deep.scoring.PixelClassifier`);
3. proposals (:func:`bottomup.mcg.proposals`, SCG by default) and their scores
   (:class:`deep.scoring.RegionScorer`): class posterior, expected overlap, class histogram;
4. instances: the best-scoring candidates of the thing classes, refined by
   :class:`deep.refine.MaskRefiner`, then non-maximum suppression on masks;
5. semantic labels, fused per pixel from ``log P``, the leaf-averaged ``P`` (the candidates' base
   partition as superpixels), the overlap-weighted class histograms of the candidates covering
   the pixel, and finally the confident instances pasted in increasing score order.

Step 5 is a small learned layer (:func:`fuse_components`): its few weights live in the weights
file and are fitted by :func:`deep.fusion.fit_fusion` on images the heads were not trained on
(``bench/msrc.py select`` and ``cv``; see the model card for the shipped file).

References
----------
.. [1] B. Hariharan et al., "Simultaneous Detection and Segmentation", ECCV 2014.
.. [2] B. Hariharan et al., "Hypercolumns for Object Segmentation and Fine-grained
       Localization", CVPR 2015.
.. [3] J. Pont-Tuset et al., "Multiscale Combinatorial Grouping for Image Segmentation and Object
       Proposal Generation", TPAMI 2017.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import VOID
from .refine import MaskRefiner, expand_boxes, mask_nms, paste_masks
from .scoring import PixelClassifier, RegionScorer, dense_hypercolumns, region_descriptors

__all__ = ["CRF_KEYS", "DEFAULT_FUSION", "DeepResult", "DeepSegmenter", "FUSE_KEYS", "Instances", "MODELS",
           "MaskRCNNSegmenter", "check_fusion", "fuse_components", "instance_evidence",
           "maskrcnn_weights_path", "overlay", "segment", "segment_file", "weights_path"]

LEVELS = (4, 8, 16, 32)
#: The models of :func:`segment` and ``bottomup deep --model``.
MODELS = ("heads", "maskrcnn")
#: How to train Mask R-CNN weights of one's own.
MASKRCNN_TRAIN = ("python bench/maskrcnn.py train --root $BOTTOMUP_DATA/msrc --split train "
                  "--work out/maskrcnn (writes out/maskrcnn/maskrcnn.ckpt)")
#: Fusion weights used when a weights file has none: ``pixel``, ``leaf`` and ``region`` weigh
#: ``log P``, the leaf-averaged ``log P`` and the log region vote; instances scoring at least
#: ``paste`` overwrite their pixels; ``iou_power`` weighs the votes by overlap ** power; ``flip``
#: averages the per-pixel classifier over the image and its mirror (one more backbone pass);
#: each of the ``n_refine`` best candidates yields an instance for each of its
#: ``classes_per_candidate`` most likely thing classes; ``refine=False`` keeps the candidates'
#: own masks (the ablation without :class:`deep.refine.MaskRefiner`); ``instance`` adds
#: ``instance * score`` to the class of each instance on its pixels (soft evidence).
DEFAULT_FUSION = {"flip": False, "pixel": 1.0, "leaf": 1.0, "region": 1.0, "paste": 0.5, "iou_power": 2.0,
                  "n_refine": 100, "nms": 0.5, "max_instances": 100,
                  "classes_per_candidate": 1, "refine": True, "instance": 0.0}

#: The fusion keys :func:`fuse_components` reads (the rest act on :meth:`DeepSegmenter.components`);
#: :func:`deep.fusion.fit_fusion` fits these.
FUSE_KEYS = ("pixel", "leaf", "region", "iou_power", "paste", "instance")


#: The :func:`deep.crf.dense_crf` parameters a :class:`DeepSegmenter` may carry (its ``crf``,
#: fitted by :func:`deep.fusion.fit_crf`); the ones it does not carry keep dense_crf's defaults.
CRF_KEYS = ("n_iter", "w_appearance", "theta_alpha", "theta_beta", "w_smoothness", "theta_gamma")


def check_crf(crf, *, name: str = "crf") -> dict:
    """Validate dense-CRF parameters: a mapping with keys in :data:`CRF_KEYS` and positive values.

    Returns a copy (empty for None); raises TypeError / ValueError naming ``name``.

    Examples
    --------
    >>> check_crf({"w_appearance": 6.0})
    {'w_appearance': 6.0}
    """
    from collections.abc import Mapping

    if crf is None:
        return {}
    if not isinstance(crf, Mapping):
        raise TypeError(f"`{name}` must be a dict of dense_crf parameters, got {type(crf).__name__}")
    for k, v in crf.items():
        if k not in CRF_KEYS:
            raise ValueError(f"`{name}` has an unknown key {k!r}; the dense_crf parameters a segmenter "
                             f"carries are {list(CRF_KEYS)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(f"`{name}[{k!r}]` must be a positive number, got {v!r}")
        if k == "n_iter" and not float(v).is_integer():
            raise ValueError(f"`{name}['n_iter']` must be a whole number of iterations, got {v!r}")
    return {k: int(v) if k == "n_iter" else float(v) for k, v in crf.items()}


def check_fusion(fusion, *, name: str = "fusion") -> dict:
    """Validate a dict of fusion weights: a mapping whose keys are all in :data:`DEFAULT_FUSION`.

    Parameters
    ----------
    fusion : mapping or None
    name : str
        The argument's name in the error messages.

    Returns
    -------
    dict
        A copy (empty for None).

    Raises
    ------
    TypeError
        If ``fusion`` is not a mapping.
    ValueError
        If a key is not a fusion weight (the message names it and the known keys).
    """
    from collections.abc import Mapping

    if fusion is None:
        return {}
    if not isinstance(fusion, Mapping):
        raise TypeError(f"`{name}` must be a dict of fusion weights, got {type(fusion).__name__}")
    unknown = [k for k in fusion if k not in DEFAULT_FUSION]
    if unknown:
        import difflib

        k = unknown[0]
        near = difflib.get_close_matches(str(k), list(DEFAULT_FUSION), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"`{name}` has an unknown key {k!r}{hint}; the known fusion keys are "
                         f"{sorted(DEFAULT_FUSION)}")
    return dict(fusion)


def backbone_taps(backbone, image: np.ndarray, device=None) -> list:
    """Taps ``(1, C_l, h_l, w_l)`` at strides :data:`LEVELS` of one ``(H, W, 3)`` image."""
    from .backbone.efficientnet import preprocess

    x = preprocess(image, size=None)
    if device is not None:
        x = x.to(device)
    with torch.inference_mode():
        t = backbone.forward_features(x)
    return [t[lv] for lv in LEVELS]


def weights_path() -> str:
    """The shipped MSRC-21 heads: ``deep/weights/heads_msrc21.pt``."""
    return str(Path(__file__).parent / "weights" / "heads_msrc21.pt")


def maskrcnn_weights_path() -> str:
    """The shipped MSRC-21 Mask R-CNN: ``deep/weights/maskrcnn_msrc21.pt`` (float16 weights, written
    by ``bench/maskrcnn.py ship``; see ``deep/weights/MODEL_CARD_maskrcnn.md``)."""
    return str(Path(__file__).parent / "weights" / "maskrcnn_msrc21.pt")


@dataclass(frozen=True)
class Instances:
    """Instance masks with classes and scores, by decreasing score.

    Parameters
    ----------
    masks : (M, H, W) ndarray of bool
    classes : (M,) ndarray of int64
    scores : (M,) ndarray of float64
    boxes : (M, 4) ndarray of float64, optional
        Boxes ``x1, y1, x2, y2`` in continuous pixel coordinates, when the model predicts them
        (Mask R-CNN); None for the region heads, whose boxes are the masks' (``to_coco``).
    """

    masks: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.classes.shape[0])

    def __repr__(self) -> str:
        shape = tuple(self.masks.shape[1:]) if self.masks.ndim == 3 else "?"
        if not len(self):
            return f"Instances(n=0, shape={shape})"
        return (f"Instances(n={len(self)}, shape={shape}, classes={np.unique(self.classes).tolist()}, "
                f"scores=[{float(self.scores.min()):.3g}, {float(self.scores.max()):.3g}])")

    def suppress(self, iou_threshold: float, max_keep: int | None = None) -> Instances:
        """The instances left by greedy per-class mask NMS (:func:`deep.refine.mask_nms`).

        Suppressing at ``t`` the instances computed with ``nms=1.0`` (none suppressed) gives the
        instances computed with ``nms=t``, so :func:`deep.fusion.fit_nms` tries thresholds
        without recomputing the instances.

        Examples
        --------
        >>> m = np.zeros((2, 4, 4), bool); m[0, :2] = True; m[1, :3] = True   # IoU 2/3
        >>> inst = Instances(m, np.array([1, 1]), np.array([.9, .8]))
        >>> len(inst.suppress(0.5)), len(inst.suppress(0.7))
        (1, 2)
        """
        if not 0.0 <= float(iou_threshold) <= 1.0:
            raise ValueError(f"`iou_threshold` must be in [0, 1], got {iou_threshold!r}")
        if len(self) == 0:
            return self
        return self.take(mask_nms(self.masks, self.scores, self.classes, float(iou_threshold),
                                  max_keep=max_keep))

    def take(self, index) -> Instances:
        """The instances at ``index`` (an index array, a boolean mask or a slice), boxes included."""
        return Instances(self.masks[index], self.classes[index], self.scores[index],
                         None if self.boxes is None else self.boxes[index])

    def to_coco(self, image_id=0, class_names=None) -> list[dict]:
        """COCO result records (``segmentation`` as compressed RLE, ``bbox`` xywh)."""
        from bottomup.masks import boxes_to_coco, masks_to_rle, rle_to_boxes

        if len(self) == 0:
            return []
        rles = masks_to_rle(self.masks)
        boxes = boxes_to_coco(rle_to_boxes(rles))
        out = []
        for r, c, s, b in zip(rles, self.classes, self.scores, boxes, strict=False):
            rec = {"image_id": image_id, "category_id": int(c), "score": float(s),
                   "bbox": [float(v) for v in b],
                   "segmentation": {"size": r["size"], "counts": r["counts"].decode("ascii")}}
            if class_names is not None:
                rec["category_name"] = class_names[int(c)]
            out.append(rec)
        return out


@dataclass(frozen=True)
class DeepResult:
    """Output of :meth:`DeepSegmenter.predict`.

    Attributes
    ----------
    labels : (H, W) ndarray of uint8
        Semantic class per pixel.
    probs : (C, H, W) ndarray of float32 or None
        Fused class probabilities (before pasting instances), e.g. the unary of
        :func:`deep.crf.dense_crf`. None for Mask R-CNN (:class:`MaskRCNNSegmenter`), which
        has no per-pixel class distribution.
    instances : Instances
    pixel_probs : (C, H, W) ndarray of float32 or None
        The per-pixel classifier alone (the baseline); None for Mask R-CNN.
    timings : dict
    """

    labels: np.ndarray
    probs: np.ndarray
    instances: Instances
    pixel_probs: np.ndarray
    timings: dict = field(default_factory=dict)


class DeepSegmenter:
    """The trained heads with their backbone; call it on an image.

    Parameters
    ----------
    pixel : PixelClassifier
    scorer : RegionScorer
    refiner : MaskRefiner
    classes : sequence of str
    things : sequence of int
        Classes that form instances.
    fusion : dict, optional
        See :data:`DEFAULT_FUSION`.
    backbone : torch.nn.Module, optional
        Default: ImageNet EfficientNet-Lite0 (offline weights).
    device : str or torch.device
    preset : str
        Proposals (``"scg"``, ``"scg-quality"``, ``"mcg"``; saved with the weights, read by
        :func:`bottomup.mcg.propose.legacy_preset`).
    n_proposals : int
    owt : str, optional
        Oriented watershed of the proposals' gPb hierarchies; the heads should be used with the
        proposals they were trained on (the shipped MSRC-21 heads: ``"plain"``).
    trained_on : sequence of str, optional
        Names of the images the heads were trained on (saved with the weights), so that an
        evaluation can tell held-out images from training images (:meth:`seen`). None: unknown.
    crf : dict, optional
        Parameters of the dense-CRF pass :meth:`crf_labels` (keys :data:`CRF_KEYS`, saved with
        the weights; default: :func:`deep.crf.dense_crf`'s own).
    """

    def __init__(self, pixel: PixelClassifier, scorer: RegionScorer, refiner: MaskRefiner, classes,
                 things, fusion=None, backbone=None, device="cpu", preset: str = "scg",
                 n_proposals: int = 1000, owt: str | None = None, trained_on=None, crf=None):
        if backbone is None:
            from .backbone.efficientnet import efficientnet_lite0

            backbone = efficientnet_lite0(pretrained=True)
        self.device = torch.device(device)
        self.backbone = backbone.eval().to(self.device)
        self.pixel = pixel.eval().to(self.device)
        self.scorer = scorer.eval().to(self.device)
        self.refiner = refiner.eval().to(self.device)
        self.classes = tuple(classes)
        self.things = tuple(int(t) for t in things)
        self.fusion = {**DEFAULT_FUSION, **check_fusion(fusion)}
        self.preset, self.n_proposals, self.owt = preset, int(n_proposals), owt
        self.trained_on = None if trained_on is None else tuple(str(n) for n in trained_on)
        self.crf = check_crf(crf)

    def seen(self, names) -> list[str]:
        """The names among ``names`` that the heads were trained on (sorted; empty when
        :attr:`trained_on` is unknown)."""
        return sorted(set(map(str, names)) & set(self.trained_on or ()))

    # ---- persistence ---------------------------------------------------------------------------
    def state(self) -> dict:
        return {"pixel": self.pixel.state_dict(), "scorer": self.scorer.state_dict(),
                "refiner": self.refiner.state_dict(), "classes": list(self.classes),
                "things": list(self.things), "fusion": dict(self.fusion),
                "dims": {"pixel_in": self.pixel.channels, "scorer_in": self.scorer.in_features,
                         "refiner_levels": list(self.refiner.level_channels),
                         "grid": self.refiner.grid, "size": self.refiner.size},
                "preset": self.preset, "n_proposals": self.n_proposals, "owt": self.owt,
                "trained_on": None if self.trained_on is None else list(self.trained_on),
                "crf": dict(self.crf)}

    def save(self, path) -> None:
        """Write the heads (not the backbone) atomically; float16 weights keep the file small."""
        from bottomup.io.files import atomic_path

        st = self.state()
        for key in ("pixel", "scorer", "refiner"):
            st[key] = {k: (v.half() if v.is_floating_point() else v) for k, v in st[key].items()}
        with atomic_path(path) as tmp:
            torch.save(st, tmp)

    @classmethod
    def load(cls, path=None, device="cpu", **overrides) -> DeepSegmenter:
        """Load heads saved by :meth:`save` (default: the shipped MSRC-21 weights)."""
        path = weights_path() if path is None else os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"deep heads weights not found: {path}; train them with "
                                    f"`python bench/msrc.py train` or pass a path")
        st = torch.load(path, map_location="cpu", weights_only=False)
        d = st["dims"]
        n = len(st["classes"])
        pixel = PixelClassifier(d["pixel_in"], n)
        scorer = RegionScorer(d["scorer_in"], n)
        refiner = MaskRefiner(d["refiner_levels"], grid=d["grid"], size=d["size"])
        for mod, key in ((pixel, "pixel"), (scorer, "scorer"), (refiner, "refiner")):
            mod.load_state_dict({k: v.float() if v.is_floating_point() else v
                                 for k, v in st[key].items()})
        kw = {"fusion": st.get("fusion"), "preset": st.get("preset", "scg"),
              "n_proposals": st.get("n_proposals", 1000), "owt": st.get("owt"),
              "trained_on": st.get("trained_on"), "crf": st.get("crf"), **overrides}
        return cls(pixel, scorer, refiner, st["classes"], st["things"], device=device, **kw)

    # ---- inference -----------------------------------------------------------------------------
    def taps(self, image: np.ndarray):
        return backbone_taps(self.backbone, image, self.device)

    def components(self, image, candidates=None, taps=None, fusion=None) -> dict:
        """Everything but the final fusion (see :meth:`predict` for the arguments).

        Returns a dict with ``logp`` (C, H, W) per-pixel log-probabilities, ``flat`` (H W) leaf
        of each pixel, ``leaf`` (L, C) log of the leaf-averaged probabilities, ``votes``
        {iou_power: (L, C) log region votes} (``fusion["iou_power"]`` may be a list), the
        ``instances`` and ``timings``; :meth:`fuse` turns it into labels, cheaply, so fusion
        weights can be searched without recomputing it.
        """
        import time

        from bottomup.validate import check_image

        img = check_image(image)
        h, w = img.shape[:2]
        fz = check_fusion({**self.fusion, **check_fusion(fusion)}, name="segmenter.fusion")
        tm = {}
        t0 = time.perf_counter()
        candidates = _candidates(self, img, candidates)
        tm["proposals"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with torch.inference_mode():
            levels = self.taps(img) if taps is None else [t.to(self.device).float() for t in taps]
            dense = dense_hypercolumns(levels, (h, w))
            logp_half = F.log_softmax(self.pixel(dense), 1)
            if fz.get("flip", False):  # test-time horizontal flip of the per-pixel classifier
                fl = self.taps(np.ascontiguousarray(img[:, ::-1]))
                logp_flip = F.log_softmax(self.pixel(dense_hypercolumns(fl, (h, w))), 1).flip(-1)
                logp_half = torch.logaddexp(logp_half, logp_flip) - np.log(2.0)
            logp = F.interpolate(logp_half, size=(h, w), mode="bilinear", align_corners=False)[0]
            logp = F.log_softmax(logp, 0)
            n_cls = logp.shape[0]
            lab = torch.as_tensor(np.array(candidates.leaf_labels), dtype=torch.int64,
                                  device=self.device)
            n_leaves = candidates.leaf_sets.shape[1]
            k = len(candidates)
            # leaf-averaged pixel probabilities
            flat = lab.reshape(-1)
            p = logp.exp().reshape(n_cls, -1).T
            leaf_p = torch.zeros((max(n_leaves, 1), n_cls), device=self.device).index_add_(0, flat, p)
            leaf_n = torch.bincount(flat, minlength=max(n_leaves, 1)).float().clamp(min=1)
            leaf_p = leaf_p / leaf_n[:, None]
            powers = fz["iou_power"] if isinstance(fz["iou_power"], (list, tuple)) else [fz["iou_power"]]
            votes = {}
            cls_p = None
            if k:
                desc = region_descriptors(dense, candidates.leaf_labels, candidates.leaf_sets,
                                          candidates.boxes, candidates.scores)
                cls_logits, overlap, hist_logits = self.scorer(desc)
                cls_p = cls_logits.softmax(1)
                sets = torch.as_tensor(np.array(candidates.leaf_sets), dtype=torch.float32,
                                       device=self.device)
                covered = (sets.sum(0) > 0)[:, None]
                for pw in powers:
                    wk = overlap.clamp(min=1e-3) ** pw
                    v = (sets.T @ (wk[:, None] * hist_logits.softmax(1)))
                    v = v / (sets.T @ wk).clamp(min=1e-9)[:, None]
                    votes[pw] = torch.where(covered, v, leaf_p).clamp(min=1e-6).log()
            else:
                votes = {pw: leaf_p.clamp(min=1e-6).log() for pw in powers}
            tm["scoring"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            inst = self._instances(levels, candidates, cls_p, (h, w), fz)
            tm["instances"] = time.perf_counter() - t0
        return {"logp": logp, "flat": flat, "leaf": leaf_p.clamp(min=1e-6).log(), "votes": votes,
                "instances": inst, "timings": tm, "shape": (h, w)}

    def fuse(self, comp: dict, fusion=None):
        """Labels ``(H, W)`` and fused probabilities ``(C, H, W)`` from :meth:`components`."""
        fz = check_fusion({**self.fusion, **check_fusion(fusion)}, name="segmenter.fusion")
        return fuse_components(comp, fz)

    def predict(self, image, candidates=None, taps=None, fusion=None) -> DeepResult:
        """Semantic labels and instances of one image.

        Parameters
        ----------
        image : (H, W[, C]) array_like
            Any image the ``bottomup`` contract accepts.
        candidates : bottomup.mcg.Candidates, optional
            Proposals of the image (default: computed with the segmenter's preset).
        taps : list of Tensor, optional
            Backbone taps (strides 4, 8, 16, 32) if already computed.
        fusion : dict, optional
            Overrides of the fusion weights.

        Returns
        -------
        DeepResult
        """
        comp = self.components(image, candidates, taps, fusion)
        labels, probs = self.fuse(comp, fusion)
        return DeepResult(labels, probs.cpu().numpy().astype(np.float32), comp["instances"],
                          comp["logp"].exp().cpu().numpy().astype(np.float32), comp["timings"])

    def crf_labels(self, result: DeepResult, image, crf=None) -> np.ndarray:
        """Labels ``(H, W)`` uint8 after the dense-CRF pass over a :meth:`predict` result.

        Mean field (:func:`deep.crf.dense_crf`, parameters :attr:`crf` updated by ``crf``) on the
        unary ``-log result.probs`` (the fused probabilities), argmax, then the instances pasted
        as in the fusion (those scoring at least ``paste``, when ``paste <= 1``).

        Examples
        --------
        >>> seg = DeepSegmenter.load()                                   # doctest: +SKIP
        >>> res = seg.predict(image)                                     # doctest: +SKIP
        >>> labels = seg.crf_labels(res, image)                          # doctest: +SKIP
        """
        from bottomup.validate import check_image

        from .crf import dense_crf

        if result.probs is None:
            raise ValueError("`result` has no fused probabilities (a Mask R-CNN result?); the CRF "
                             "pass needs DeepSegmenter.predict's")
        img = check_image(image)
        if img.shape[:2] != result.labels.shape:
            raise ValueError(f"`image` is {img.shape[:2]}, but `result` is for {result.labels.shape}")
        params = {**self.crf, **check_crf(crf)}
        q = dense_crf(-np.log(np.clip(result.probs, 1e-8, 1.0)), img, **params)
        labels = q.argmax(0).astype(np.uint8)
        if self.fusion["paste"] <= 1.0:
            paste_instances(result.instances, labels, self.fusion["paste"])
        return labels

    def _instances(self, levels, candidates, cls_p, shape, fz) -> Instances:
        h, w = shape
        empty = Instances(np.zeros((0, h, w), bool), np.zeros(0, np.int64), np.zeros(0))
        if cls_p is None or not self.things:
            return empty
        things = torch.as_tensor(self.things, device=cls_p.device)
        tp = cls_p[:, things]
        s, arg = tp.max(1)
        order = torch.argsort(s, descending=True)[: int(fz["n_refine"])].cpu().numpy()
        if order.size == 0:
            return empty
        cmask = candidates.masks(order)
        if fz.get("refine", True):
            from bottomup.masks import boxes_to_xyxy

            xy = boxes_to_xyxy(np.asarray(candidates.boxes)[order])
            xy[:, 2:] += 1  # continuous box over the last pixel
            b = torch.as_tensor(xy, dtype=torch.float32, device=self.device)
            b = expand_boxes(b, (h, w))
            cm = torch.as_tensor(cmask, device=self.device)
            logits = self.refiner(levels, b, cm, (h, w))
            soft = paste_masks(torch.sigmoid(logits), b, (h, w))
            masks = (soft >= 0.5).cpu().numpy()
            empty_ref = ~masks.reshape(len(order), -1).any(1)
            masks[empty_ref] = cmask[empty_ref]
        else:  # ablation: the candidates' own masks
            masks = cmask
        m = max(1, min(int(fz.get("classes_per_candidate", 1)), tp.shape[1]))
        top_p, top_c = tp[torch.as_tensor(order, device=tp.device)].topk(m, dim=1)  # (N, m)
        rows = np.repeat(np.arange(len(order)), m)
        masks = masks[rows]
        scores = top_p.reshape(-1).cpu().numpy().astype(np.float64)
        classes = things[top_c.reshape(-1)].cpu().numpy().astype(np.int64)
        return Instances(masks, classes, scores).suppress(fz["nms"], max_keep=int(fz["max_instances"]))

    def __call__(self, image, candidates=None):
        r = self.predict(image, candidates)
        return r.labels, r.instances


def fuse_components(comp: dict, fusion: dict):
    """The fusion layer: labels and probabilities of one image from its components.

    ``score = pixel * log P + (leaf * log leaf-mean P + region * log vote[iou_power])[leaf of pixel]
    + instance * (best score of the instances of each class covering the pixel)``; the
    probabilities are ``softmax(score)`` over classes and the labels their argmax, after which
    instances scoring at least ``paste`` (when ``paste <= 1``) overwrite their pixels in
    increasing score order. The weights are fitted by :func:`deep.fusion.fit_fusion`.

    Parameters
    ----------
    comp : dict
        From :meth:`DeepSegmenter.components`.
    fusion : dict
        Complete fusion weights (:data:`DEFAULT_FUSION` keys; at least :data:`FUSE_KEYS`).

    Returns
    -------
    labels : (H, W) ndarray of uint8
    probs : (C, H, W) torch.Tensor
    """
    with torch.inference_mode():
        return _fuse(comp, fusion)


def instance_evidence(inst: Instances, like: torch.Tensor) -> torch.Tensor:
    """``(C, H, W)``: the best score of the instances of each class covering each pixel (0 elsewhere).

    It depends on the instances only, so :func:`deep.fusion.fit_fusion` computes it once per image
    (``comp["evidence"]``) instead of once per setting tried.
    """
    ev = torch.zeros_like(like)
    for m, c, sc in zip(inst.masks, inst.classes, inst.scores, strict=True):
        mk = torch.from_numpy(m).to(like.device)
        ev[int(c)] = torch.where(mk, torch.clamp(ev[int(c)], min=float(sc)), ev[int(c)])
    return ev


def _fuse(comp, fz):
    h, w = comp["shape"]
    logp = comp["logp"].float()
    n_cls = logp.shape[0]
    pw = fz["iou_power"]
    leaf_term = fz["leaf"] * comp["leaf"] + fz["region"] * comp["votes"][pw]
    score = fz["pixel"] * logp + leaf_term[comp["flat"]].T.reshape(n_cls, h, w)
    inst = comp["instances"]
    if fz.get("instance", 0.0) and len(inst):  # soft evidence of the refined instances
        ev = comp.get("evidence")
        if ev is None:
            ev = instance_evidence(inst, score)
        score = score + fz["instance"] * ev
    probs = F.softmax(score, 0)
    labels = probs.argmax(0).cpu().numpy().astype(np.uint8)
    if fz["paste"] <= 1.0:
        paste_instances(inst, labels, fz["paste"])
    return labels, probs


def _candidates(seg, img, candidates):
    """``candidates`` checked against ``img``, or the segmenter's own proposals of it
    (``seg.preset``, ``seg.owt``, ``seg.n_proposals``)."""
    if candidates is None:
        from bottomup.mcg import proposals
        from bottomup.mcg.propose import legacy_preset

        method, source = legacy_preset(seg.preset, seg.owt)
        return proposals(img, n=seg.n_proposals, method=method, contours=source)
    if tuple(candidates.shape) != img.shape[:2]:
        raise ValueError(f"`candidates` are for a {candidates.shape} image, but `image` is {img.shape[:2]}")
    return candidates


class MaskRCNNSegmenter:
    """A Mask R-CNN checkpoint behind the face of :class:`DeepSegmenter`: ``predict(image)`` gives
    a :class:`DeepResult`, calling it ``(labels, instances)``.

    Instances: every detection of the model (score above its ``box_score_thresh``, at most
    ``detections_per_img``), by decreasing score; masks are its mask probabilities ``>= 0.5``,
    classes the dataset ids (``things[label - 1]``), boxes its xyxy boxes. Semantic labels: every
    pixel :data:`deep.data.VOID` (255: Mask R-CNN says nothing about stuff or background), then
    the instances scoring at least ``paste`` pasted in increasing score order (the best one
    wins where they overlap), as the heads paste theirs. ``probs`` and ``pixel_probs`` are None.

    Parameters
    ----------
    model : deep.models.MaskRCNN
    things : sequence of int
        Dataset class id of each model label (label ``j`` is ``things[j - 1]``).
    classes : sequence of str
        Dataset class names.
    device : str or torch.device
    paste : float
        Score from which an instance is pasted into the labels (the heads' default, 0.5).

    Notes
    -----
    A model trained with ``rois="external"`` needs candidates: given to :meth:`predict`, or
    computed as ``bench/maskrcnn.py`` does by default (SCG, 1000, plain oriented watershed).
    """

    preset, n_proposals, owt = "scg", 1000, "plain"

    def __init__(self, model, things, classes, *, device="cpu", paste: float = 0.5):
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.things = tuple(int(t) for t in things)
        self.classes = tuple(classes)
        self.paste = float(paste)

    @classmethod
    def load(cls, path, device="cpu", **kw) -> MaskRCNNSegmenter:
        """From a checkpoint of ``bench/maskrcnn.py train`` (:func:`deep.models.maskrcnn.load_maskrcnn`)."""
        from .models.maskrcnn import load_maskrcnn

        model, things, classes, _ = load_maskrcnn(path, device)
        return cls(model, things, classes, device=device, **kw)

    def predict(self, image, candidates=None) -> DeepResult:
        """Labels and instances of one image (see the class notes)."""
        from bottomup.validate import check_image

        img = check_image(image)
        h, w = img.shape[:2]
        tm = {}
        props = None
        if candidates is not None and self.model.rois != "external":
            raise ValueError("`candidates` are only used by a Mask R-CNN trained with rois='external'; "
                             "this one has its own RPN")
        if self.model.rois == "external":
            from .models.maskrcnn import candidates_to_proposals

            t0 = time.perf_counter()
            p = candidates_to_proposals(_candidates(self, img, candidates), with_masks=self.model.mask_prior)
            props = [{k: v.to(self.device) for k, v in p.items()}]
            tm["proposals"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().to(self.device)
        with torch.inference_mode():
            out = self.model([x], proposals=props)[0]
        tm["maskrcnn"] = time.perf_counter() - t0
        inst = self.instances(out)
        labels = paste_instances(inst, np.full((h, w), VOID, np.uint8), self.paste)
        return DeepResult(labels, None, inst, None, tm)

    def instances(self, out: dict) -> Instances:
        """:class:`Instances` of one output dict of the model (torchvision's format)."""
        lab = out["labels"].cpu().numpy()
        classes = np.array([self.things[j - 1] for j in lab.tolist()], np.int64)
        return Instances((out["masks"][:, 0] >= 0.5).cpu().numpy(), classes,
                         out["scores"].cpu().numpy().astype(np.float64),
                         out["boxes"].cpu().numpy().astype(np.float64))

    def __call__(self, image, candidates=None):
        r = self.predict(image, candidates)
        return r.labels, r.instances


def paste_instances(inst: Instances, labels: np.ndarray, paste: float = 0.5) -> np.ndarray:
    """Paint the instances scoring at least ``paste`` into ``labels`` ``(H, W)`` (in place, and
    returned) with their class, in increasing score order (ties: the later one in ``inst`` first),
    so the best one wins where they overlap. The heads paste onto their fused labels, Mask R-CNN
    onto void."""
    for i in np.argsort(inst.scores, kind="stable"):
        if inst.scores[i] >= paste:
            labels[inst.masks[i]] = int(inst.classes[i])
    return labels


@functools.lru_cache(maxsize=2)
def _default(device: str) -> DeepSegmenter:
    return DeepSegmenter.load(device=device)


@functools.lru_cache(maxsize=2)
def _loaded(model: str, path: str, stamp, device: str):
    # ``stamp`` (mtime, size) makes a rewritten weights file load again
    if model == "maskrcnn":
        return MaskRCNNSegmenter.load(path, device=device)
    return DeepSegmenter.load(path, device=device)


def _segmenter(model, weights, device):
    """The segmenter of ``model`` with ``weights``, validated (the public faces call this once)."""
    if model not in MODELS:
        raise ValueError(f"`model` must be one of {list(MODELS)}, but got {model!r}")
    if weights is None:
        if model == "heads":
            return _default(str(device))
        weights = maskrcnn_weights_path()
        if not os.path.isfile(weights):
            raise ValueError("`weights` is required for model='maskrcnn': this installation has no "
                             f"shipped Mask R-CNN weights ({weights}); train them with "
                             f"`{MASKRCNN_TRAIN}` and pass weights='out/maskrcnn/maskrcnn.ckpt'")
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"`weights` must be a path, but got {type(weights).__name__}")
    path = os.fspath(weights)
    if not os.path.isfile(path):
        hint = f"train them with `{MASKRCNN_TRAIN}`" if model == "maskrcnn" else \
            "train them with `python bench/msrc.py train`"
        raise FileNotFoundError(f"`weights` file not found: {path!r} (model={model!r}); {hint}")
    st = os.stat(path)
    return _loaded(model, os.path.abspath(path), (st.st_mtime_ns, st.st_size), str(device))


def segment(image, *, model: str = "heads", weights=None, device: str = "cpu", candidates=None):
    """Semantic labels and instances of an image with the shipped MSRC-21 heads or a Mask R-CNN.

    Parameters
    ----------
    image : (H, W[, C]) array_like
        Any image the ``bottomup`` image contract accepts.
    model : {"heads", "maskrcnn"}
        ``"heads"``: bottom-up proposals scored by the region heads (:class:`DeepSegmenter`);
        ``"maskrcnn"``: Mask R-CNN (:class:`MaskRCNNSegmenter`) with RPN RoIs.
    weights : path-like, optional
        The model's weights: heads saved by ``bench/msrc.py train``, or a Mask R-CNN checkpoint of
        ``bench/maskrcnn.py train`` (default: the shipped MSRC-21 weights of ``model``,
        :func:`weights_path` or :func:`maskrcnn_weights_path`).
    device : str
        Torch device (``"cuda"`` when present).
    candidates : bottomup.mcg.Candidates, optional
        Precomputed proposals (heads, default: SCG, 1000; Mask R-CNN with ``rois="external"``).

    Returns
    -------
    labels : (H, W) ndarray of uint8
        Class ids of the weights' class list (MSRC-21: :data:`deep.data.MSRC21_CLASSES`). Mask
        R-CNN labels only its confident instances; every other pixel is 255 (void).
    instances : Instances
        Thing instances (masks, classes, scores; boxes for Mask R-CNN), by decreasing score.

    Raises
    ------
    ValueError
        Unknown ``model``, or ``model="maskrcnn"`` without ``weights`` where no weights are shipped.
    FileNotFoundError
        ``weights`` is not a file.
    """
    return _segmenter(model, weights, device)(image, candidates)


def _palette(n: int) -> np.ndarray:
    """PASCAL VOC colour map (bit interleaving), ``(n, 3)`` uint8."""
    pal = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i + 1, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def overlay(image: np.ndarray, labels: np.ndarray, instances: Instances | None = None,
            alpha: float = 0.5) -> np.ndarray:
    """RGB uint8 picture: class colours blended over the image, instance outlines in white.

    Parameters
    ----------
    image : (H, W, 3) float in [0, 1]
    labels : (H, W) int
    instances : Instances, optional
    """
    import cv2

    pal = _palette(256)
    img = np.clip(np.asarray(image, np.float64) * 255.0, 0, 255)
    out = (1 - alpha) * img + alpha * pal[np.asarray(labels, np.int64)]
    out = out.astype(np.uint8)
    if instances is not None:
        for m in instances.masks:
            cs, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(out, cs, -1, (255, 255, 255), 1)
    return out


def segment_file(in_path, out_path, *, device: str = "cpu", weights=None, min_score: float = 0.0,
                 model: str = "heads") -> dict:
    """The ``deep`` folder-job task: labels, instances and an overlay of one image file.

    ``model`` and ``weights`` are those of :func:`segment` (Mask R-CNN's labels are 255 where no
    confident instance lies).

    Writes, each atomically, ``<stem>_labels.png`` (uint8 class ids), ``<stem>_overlay.jpg`` and
    last ``out_path`` (``<stem>.json``): the instances with ``score >= min_score`` as a COCO
    results list (``image_id`` from :func:`bottomup.jobs.coco_image_id`, ``category_id`` the
    index in the class list, ``category_name``, RLE ``segmentation``, ``bbox``, ``score`` in
    [0, 1]: the class probability), so an existing JSON means the image is complete. The image
    size and the class list are returned (the job keeps them in the output's record).
    """
    import json

    import cv2

    from bottomup.io import read_image
    from bottomup.io.files import atomic_path
    from bottomup.jobs import coco_image_id

    img = read_image(in_path)  # first: a hostile file fails before the model loads
    seg = _segmenter(model, weights, device)
    res = seg.predict(img)
    out_path = Path(out_path)
    stem = out_path.stem
    names = [f"{stem}_labels.png", f"{stem}_overlay.jpg"]
    with atomic_path(out_path.with_name(names[0])) as tmp:
        cv2.imwrite(str(tmp), res.labels)
    with atomic_path(out_path.with_name(names[1])) as tmp:
        cv2.imwrite(str(tmp), overlay(img, res.labels, res.instances)[..., ::-1])
    keep = res.instances.scores >= min_score
    inst = Instances(res.instances.masks[keep], res.instances.classes[keep], res.instances.scores[keep])
    recs = inst.to_coco(image_id=coco_image_id(in_path), class_names=seg.classes)
    with atomic_path(out_path) as tmp:
        Path(tmp).write_text(json.dumps(recs))
    return {"image": Path(in_path).name, "model": model, "image_id": coco_image_id(in_path),
            "height": int(img.shape[0]),
            "width": int(img.shape[1]), "classes": list(seg.classes), "n_instances": len(inst),
            "outputs": names, "seconds": res.timings}


def _segment_file_model_files(*, device="cpu", weights=None, min_score=0.0, model="heads") -> list:
    """The heads (``weights``), the backbone's ImageNet weights and the proposals' ranker; for
    Mask R-CNN its checkpoint (backbone included), and the ranker when it takes SCG RoIs."""
    from bottomup.mcg.propose import legacy_preset
    from bottomup.mcg.ranking import ranker_path

    from .backbone.efficientnet import weights_path as backbone_weights

    if model == "maskrcnn":
        seg = _segmenter(model, weights, device)
        path = maskrcnn_weights_path() if weights is None else os.fspath(weights)
        if seg.model.rois != "external":
            return [path]
        method, source = legacy_preset(seg.preset, seg.owt)
        return [path, ranker_path(method, source.ranker)]
    heads = weights_path() if weights is None else os.fspath(weights)
    st = torch.load(heads, map_location="cpu", weights_only=False)
    method, source = legacy_preset(st.get("preset", "scg"), st.get("owt"))
    return [heads, backbone_weights(), ranker_path(method, source.ranker)]


segment_file.model_files = _segment_file_model_files


def demo_panel(times):
    """The ``bottomup demo`` panel of the deep heads (registered in the entry-point group
    ``bottomup.demo``): the MSRC-21 heads on a second bundled image (skimage's cat, an MSRC-21
    class, which the demo's coffee cup is not): class colours and instance outlines."""
    from skimage import data
    from skimage.transform import resize

    img = np.clip(resize(data.chelsea() / 255.0, (200, 300), anti_aliasing=True), 0, 1)
    t = time.perf_counter()
    seg = DeepSegmenter.load()
    res = seg.predict(img)
    times["deep_heads"] = time.perf_counter() - t
    seg_classes = seg.classes
    counts = np.bincount(res.labels.ravel(), minlength=len(seg_classes))
    top = [seg_classes[c] for c in np.argsort(-counts)[:3] if counts[c] > 0]
    best = res.instances
    title = "deep heads (MSRC-21) on a second image, skimage's cat:\n" + ", ".join(top)
    if len(best):
        plural = "s" if len(best) != 1 else ""
        title += (f"\n{len(best)} instance{plural}, best: {seg_classes[int(best.classes[0])]} "
                  f"{best.scores[0]:.2f}")
    shown = Instances(best.masks[:3], best.classes[:3], best.scores[:3])
    return (title, overlay(img, res.labels, shown) / 255.0, None)
