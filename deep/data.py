"""Training data for the deep heads: one simple folder layout, and MSRC-21 as an adapter to it.

Layout (what :class:`SegmentationDataset` reads)::

    ROOT/
      images/<name>.png|.jpg     RGB images (any format bottomup.io.read_image accepts)
      labels/<name>.png          (H, W) uint8 class ids 0..C-1, 255 = void
      instances.json             COCO-style instances (below)
      <split>.txt                image names (file stems), one per line: train.txt, val.txt, ...

``instances.json`` is COCO's object-instance format restricted to what the heads use::

    {"categories": [{"id": 0, "name": "building", "isthing": 0}, ...],   # id = class id in labels/
     "images": [{"id": 7, "file_name": "1_10_s.png", "height": 213, "width": 320}, ...],
     "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0,
                      "segmentation": {"size": [H, W], "counts": "..."}}, ...]}

Segmentations are COCO RLE (:func:`bottomup.masks.masks_to_rle`). Stuff classes (``isthing: 0``)
may have annotations too; instance metrics use thing classes only. Classes are numbered from 0 as
in the label PNGs (COCO allows any integer id).

:func:`msrc_to_layout` writes MSRC-v2 (``images/``, ``groundTruth/<name>_GT.mat``, split lists) in
this layout with the MSRC-21 classes (horse and mountain void; each annotated segment of the
cleaned annotations [1]_ is one instance).

References
----------
.. [1] T. Malisiewicz, A. A. Efros, "Improving Spatial Support for Objects via Multiple
       Segmentations", BMVC 2007 (the cleaned MSRC-v2 object annotations).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "MSRC21_CLASSES",
    "MSRC21_THINGS",
    "Sample",
    "SegmentationDataset",
    "kfold_split",
    "msrc_to_layout",
]

#: MSRC-21 class names in label order (bottomup.io.msrc.MSRC21_IDS).
MSRC21_CLASSES = (
    "building", "grass", "tree", "cow", "sheep", "sky", "aeroplane", "water", "face", "car",
    "bicycle", "flower", "sign", "bird", "book", "chair", "road", "cat", "dog", "body", "boat",
)
#: Thing classes of MSRC-21 (the rest, building grass tree sky water road, are stuff).
MSRC21_THINGS = tuple(i for i, n in enumerate(MSRC21_CLASSES)
                      if n not in ("building", "grass", "tree", "sky", "water", "road"))

VOID = 255


@dataclass(frozen=True)
class Sample:
    """One annotated image.

    Attributes
    ----------
    name : str
    image : (H, W, 3) ndarray of float64 in [0, 1]
    labels : (H, W) ndarray of uint8
        Class ids, 255 void.
    masks : (G, H, W) ndarray of bool
        Instance masks (things and annotated stuff regions).
    classes : (G,) ndarray of int64
    crowd : (G,) ndarray of bool
    """

    name: str
    image: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    classes: np.ndarray
    crowd: np.ndarray

    @property
    def void(self) -> np.ndarray:
        """(H, W) bool: void pixels."""
        return self.labels == VOID

    def thing_instances(self, things) -> tuple[np.ndarray, np.ndarray]:
        """``(masks (T, H, W) bool, classes (T,) int64)``: the instances of the classes in ``things``
        (the ground truth AP^r is scored on)."""
        keep = np.isin(self.classes, np.asarray(list(things), np.int64))
        return self.masks[keep], self.classes[keep]


class SegmentationDataset:
    """Images, label PNGs and COCO instances in the documented layout (see the module notes).

    Parameters
    ----------
    root : path-like
        Folder in the layout.
    split : str
        Reads ``ROOT/<split>.txt``.

    Attributes
    ----------
    names : list of str
    classes : tuple of str
        Class names by id.
    things : tuple of int
        Ids of thing classes.

    Examples
    --------
    >>> import tempfile
    >>> from bottomup.masks import masks_to_rle
    >>> root = Path(tempfile.mkdtemp())
    >>> lab = np.zeros((4, 6), np.uint8); lab[1:3, 2:5] = 1
    >>> write_sample(root, "a", np.zeros((4, 6, 3)), lab, lab[None] == 1, [1])
    >>> write_categories(root, ["grass", "cow"], [1])
    >>> _ = (root / "train.txt").write_text("a\\n")
    >>> ds = SegmentationDataset(root, "train")
    >>> s = ds[0]
    >>> s.masks.shape, s.classes.tolist(), ds.things
    ((1, 4, 6), [1], (1,))
    """

    def __init__(self, root, split: str):
        self.root = Path(root)
        lst = self.root / f"{split}.txt"
        if not lst.is_file():
            raise FileNotFoundError(
                f"split list {lst} not found; the layout needs ROOT/<split>.txt (see deep.data)"
            )
        self.names = lst.read_text().split()
        cats_path = self.root / "categories.json"
        inst_path = self.root / "instances.json"
        if inst_path.is_file():
            doc = json.loads(inst_path.read_text())
            cats = doc["categories"]
        elif cats_path.is_file():
            doc, cats = None, json.loads(cats_path.read_text())
        else:
            raise FileNotFoundError(f"{inst_path} not found (COCO instances of the layout)")
        cats = sorted(cats, key=lambda c: int(c["id"]))
        if [int(c["id"]) for c in cats] != list(range(len(cats))):
            raise ValueError(f"{inst_path}: category ids must be 0..C-1 (the label ids)")
        self.classes = tuple(c["name"] for c in cats)
        self.things = tuple(int(c["id"]) for c in cats if c.get("isthing", 1))
        self._ann: dict[str, list] = {}
        if doc is not None:
            by_id = {im["id"]: Path(im["file_name"]).stem for im in doc["images"]}
            for a in doc["annotations"]:
                self._ann.setdefault(by_id[a["image_id"]], []).append(a)
        else:
            for name in self.names:
                p = self.root / "instances" / f"{name}.json"
                self._ann[name] = json.loads(p.read_text()) if p.is_file() else []

    def __len__(self) -> int:
        return len(self.names)

    def image_path(self, name: str) -> Path:
        for ext in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
            p = self.root / "images" / f"{name}{ext}"
            if p.is_file():
                return p
        raise FileNotFoundError(f"no image for {name!r} in {self.root / 'images'}")

    def __getitem__(self, i: int) -> Sample:
        import cv2

        from bottomup.io import read_image
        from bottomup.masks import rle_to_masks

        name = self.names[i]
        image = read_image(self.image_path(name))
        lab_path = self.root / "labels" / f"{name}.png"
        labels = cv2.imread(str(lab_path), cv2.IMREAD_UNCHANGED)
        if labels is None or labels.ndim != 2 or labels.shape != image.shape[:2]:
            raise ValueError(f"{lab_path}: expected a (H, W) label PNG of the image's size")
        anns = self._ann.get(name, [])
        h, w = labels.shape
        if anns:
            masks = rle_to_masks([a["segmentation"] for a in anns], shape=(h, w)).astype(bool)
        else:
            masks = np.zeros((0, h, w), bool)
        classes = np.array([int(a["category_id"]) for a in anns], np.int64)
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], bool)
        return Sample(name, image, labels.astype(np.uint8), masks, classes, crowd)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def subset(self, names) -> SegmentationDataset:
        """The same layout restricted to (or extended to) the images ``names``, in that order.

        Any image of the layout may be named, so ``subset(train.names + val.names)`` pools two
        splits. Raises ``ValueError`` for a repeated name and ``FileNotFoundError`` for a name
        with no image in the layout.
        """
        import copy

        names = [str(n) for n in names]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"`names` must be unique, got repeated names {dup[:5]}")
        for n in names:
            self.image_path(n)
        out = copy.copy(self)
        out.names = names
        out._ann = dict(self._ann)
        for n in names:  # per-image instance files: read the ones of names outside the split
            p = self.root / "instances" / f"{n}.json"
            if n not in out._ann and p.is_file() and not (self.root / "instances.json").is_file():
                out._ann[n] = json.loads(p.read_text())
        return out

    def present_classes(self) -> list[frozenset]:
        """The classes (non-void) present in each image's label PNG, in the order of ``names``."""
        import cv2

        out = []
        for n in self.names:
            lab = cv2.imread(str(self.root / "labels" / f"{n}.png"), cv2.IMREAD_UNCHANGED)
            if lab is None:
                raise FileNotFoundError(f"{self.root / 'labels' / f'{n}.png'}: missing or unreadable")
            out.append(frozenset(int(c) for c in np.unique(lab) if c != VOID))
        return out


def kfold_split(names, n_folds: int, *, classes=None, rng=0) -> list[list[str]]:
    """Deterministic K-fold partition of a pool of images, balanced in size and in classes.

    Every name lands in exactly one fold; fold sizes differ by at most one. With ``classes``,
    images are dealt greedily, rarest class first: each image goes, among the folds that still
    have room, to the one holding the fewest images of its rarest class (then of all its
    classes, then the emptiest, then at random), so each rare class is spread over the folds.

    Parameters
    ----------
    names : sequence of str
        The pool (unique names).
    n_folds : int
        ``K``, between 2 and ``len(names)``.
    classes : sequence of iterable of int, optional
        The classes present in each image (e.g. :meth:`SegmentationDataset.present_classes`).
    rng : {numpy.random.Generator, int}, optional
        Pseudo-random number generator, or a seed (default 0): ties and the folds that get the
        extra images.

    Returns
    -------
    folds : list of list of str
        ``K`` lists of names, each in the order of ``names``.

    Examples
    --------
    >>> kfold_split(["a", "b", "c", "d", "e"], 2, rng=0)
    [['a', 'd', 'e'], ['b', 'c']]
    """
    names = [str(n) for n in names]
    n = len(names)
    if len(set(names)) != n:
        raise ValueError("`names` must be unique (one entry per image)")
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or not 2 <= n_folds <= n:
        raise ValueError(f"`n_folds` must be an integer between 2 and len(names) = {n}, got {n_folds!r}")
    k_folds = int(n_folds)
    if classes is not None:
        classes = [frozenset(int(c) for c in cs) for cs in classes]
        if len(classes) != n:
            raise ValueError(f"`classes` must give one set per name ({n}), got {len(classes)}")
    rng = np.random.default_rng(rng)
    cap = np.full(k_folds, n // k_folds)
    cap[rng.permutation(k_folds)[: n % k_folds]] += 1
    if classes is None:
        fold_of = rng.permutation(np.repeat(np.arange(k_folds), cap))
    else:
        freq: dict[int, int] = {}
        for cs in classes:
            for c in cs:
                freq[c] = freq.get(c, 0) + 1
        rarest = [min(cs, key=lambda c: (freq[c], c)) if cs else None for cs in classes]
        tie = rng.random(n)
        order = sorted(range(n), key=lambda i: (freq[rarest[i]] if rarest[i] is not None else n + 1,
                                                tie[i]))
        counts: dict[int, np.ndarray] = {c: np.zeros(k_folds, np.int64) for c in freq}
        size = np.zeros(k_folds, np.int64)
        fold_of = np.empty(n, np.int64)
        for i in order:
            room = np.flatnonzero(size < cap)
            r = rarest[i]
            key_r = counts[r][room] if r is not None else np.zeros(room.size)
            key_all = sum((counts[c][room] / freq[c] for c in classes[i]), np.zeros(room.size))
            pick = np.lexsort((rng.random(room.size), size[room] / cap[room], key_all, key_r))[0]
            k = int(room[pick])
            fold_of[i] = k
            size[k] += 1
            for c in classes[i]:
                counts[c][k] += 1
    return [[names[i] for i in range(n) if fold_of[i] == k] for k in range(k_folds)]


def write_sample(root, name: str, image, labels, masks, classes) -> None:
    """Write one image, its label PNG and its instances (``ROOT/instances/<name>.json``).

    Per-image instance files are merged into ``instances.json`` by :func:`write_categories`.
    Files are written atomically, so an interrupted conversion resumes cleanly.
    """
    import cv2

    from bottomup.io.files import atomic_path
    from bottomup.masks import masks_to_rle

    root = Path(root)
    for sub in ("images", "labels", "instances"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    with atomic_path(root / "images" / f"{name}.png") as tmp:
        cv2.imwrite(str(tmp), np.ascontiguousarray(img[..., ::-1]))
    with atomic_path(root / "labels" / f"{name}.png") as tmp:
        cv2.imwrite(str(tmp), np.asarray(labels, np.uint8))
    rles = masks_to_rle(np.asarray(masks, bool).reshape(-1, *np.shape(labels)))
    anns = [{"category_id": int(c), "iscrowd": 0,
             "segmentation": {"size": r["size"], "counts": r["counts"].decode("ascii")}}
            for r, c in zip(rles, classes, strict=False)]
    with atomic_path(root / "instances" / f"{name}.json") as tmp:
        Path(tmp).write_text(json.dumps(anns))


def write_categories(root, classes, things) -> None:
    """Write ``categories.json`` and merge ``instances/*.json`` into ``instances.json``."""
    import cv2

    from bottomup.io.files import atomic_path

    root = Path(root)
    cats = [{"id": i, "name": n, "isthing": int(i in set(things))} for i, n in enumerate(classes)]
    images, anns = [], []
    inst_dir = root / "instances"
    for k, p in enumerate(sorted(inst_dir.glob("*.json")) if inst_dir.is_dir() else []):
        lab = root / "labels" / f"{p.stem}.png"
        h, w = cv2.imread(str(lab), cv2.IMREAD_UNCHANGED).shape[:2]
        images.append({"id": k, "file_name": f"{p.stem}.png", "height": h, "width": w})
        for a in json.loads(p.read_text()):
            anns.append({"id": len(anns) + 1, "image_id": k, **a})
    with atomic_path(root / "categories.json") as tmp:
        Path(tmp).write_text(json.dumps(cats))
    with atomic_path(root / "instances.json") as tmp:
        Path(tmp).write_text(json.dumps({"categories": cats, "images": images, "annotations": anns}))


def msrc_instances(gt_path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MSRC-21 labels and instances of one ``<name>_GT.mat``.

    Returns
    -------
    labels : (H, W) uint8 (255 void)
    masks : (G, H, W) bool, one per annotated segment with an MSRC-21 class
    classes : (G,) int64
    """
    from bottomup.io.msrc import read_msrc21

    labels, seg = read_msrc21(gt_path, segments=True)
    masks, classes = [], []
    for s in np.unique(seg):
        m = seg == s
        c = labels[m][0]  # a segment has one label
        if c != VOID:
            masks.append(m)
            classes.append(int(c))
    h, w = labels.shape
    return (labels, np.array(masks, bool).reshape(-1, h, w), np.array(classes, np.int64))


def msrc_to_layout(msrc_root, out_root, splits=("train", "val")) -> SegmentationDataset:
    """Convert MSRC-v2 (cleaned annotations) to the layout, as MSRC-21; resumable.

    Parameters
    ----------
    msrc_root : path-like
        Holds ``images/<name>.png`` (or .bmp), ``groundTruth/<name>_GT.mat`` and ``<split>.txt``.
    out_root : path-like
        Output folder (created). Images already converted are skipped.
    splits : sequence of str

    Returns
    -------
    SegmentationDataset
        Of the first split.
    """
    from bottomup.io import read_image

    src, out = Path(msrc_root), Path(out_root)
    out.mkdir(parents=True, exist_ok=True)
    for split in splits:
        names = (src / f"{split}.txt").read_text().split()
        for name in names:
            if (out / "instances" / f"{name}.json").is_file():
                continue
            img_path = next((src / "images" / f"{name}{e}" for e in (".png", ".bmp", ".jpg")
                             if (src / "images" / f"{name}{e}").is_file()), None)
            if img_path is None:
                raise FileNotFoundError(f"no image for {name!r} in {src / 'images'}")
            labels, masks, classes = msrc_instances(src / "groundTruth" / f"{name}_GT.mat")
            write_sample(out, name, read_image(img_path), labels, masks, classes)
        shutil.copyfile(src / f"{split}.txt", out / f"{split}.txt")
    write_categories(out, MSRC21_CLASSES, MSRC21_THINGS)
    return SegmentationDataset(out, splits[0])


def score_results(ds, results, n_classes: int, with_instances: bool = True) -> dict:
    """The figures of ``bench/msrc.py eval`` for predictions on a :class:`SegmentationDataset`.

    Parameters
    ----------
    ds : SegmentationDataset
        Gives the thing classes and the class names.
    results : iterable of (sample, labels, instances)
        A sample of ``ds``, its predicted labels ``(H, W)`` and its ``deep.segmenter.Instances``.
    n_classes : int
    with_instances : bool
        Also score the instances (AP^r at 0.5 and 0.7 over the thing classes, COCO mask AP).

    Returns
    -------
    figures : dict
        ``pixel_acc``, ``mean_class_acc``, ``miou``, ``fw_iou``, ``confusion`` and, with
        instances, ``apr50``, ``apr70``, ``mask_ap``, ``per_class_apr50``.
    """
    from bottomup.metrics.instance import InstanceAP, InstanceParams
    from bottomup.metrics.semantic import SemanticSegmentationMetric

    sem = SemanticSegmentationMetric(n_classes, ignore_index=255)
    apr = InstanceAP(n_classes, InstanceParams.sds())
    coco = InstanceAP(n_classes, InstanceParams.coco())
    things = set(ds.things)
    for sample, labels, inst in results:
        sem.update(sample.labels, labels)
        if with_instances:
            gm, gc = sample.thing_instances(things)
            pk = np.array([c in things for c in inst.classes], bool)
            args = (inst.masks[pk], inst.classes[pk], inst.scores[pk], gm, gc)
            apr.update(*args, void=sample.void)
            coco.update(*args, void=sample.void)
    s = sem.compute()
    out = {"pixel_acc": s.pixel_accuracy, "mean_class_acc": s.mean_accuracy, "miou": s.mean_iou,
           "fw_iou": s.fw_iou}
    if with_instances:
        a = apr.compute()
        c = coco.compute()
        cls = sorted(things)
        out["apr50"] = float(np.nanmean(a.ap[0][cls]))
        out["apr70"] = float(np.nanmean(a.ap[1][cls]))
        out["mask_ap"] = float(np.nanmean(c.ap[:, cls]))
        out["per_class_apr50"] = {ds.classes[k]: float(a.ap[0][k]) for k in cls}
    out["confusion"] = s.confusion.tolist()
    return out
