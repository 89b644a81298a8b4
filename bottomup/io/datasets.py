"""Dataset layouts of ``$BOTTOMUP_DATA``: the images of a split and their proposal-benchmark objects.

Two layouts are read (see the README's data section):

* ``bsds``: BSDS500 as released, ``ROOT/data/images/<split>/<id>.jpg`` and
  ``ROOT/data/groundTruth/<split>/<id>.mat``;
* ``msrc``: MSRC-v2 with the cleaned annotations of Malisiewicz and Efros,
  ``ROOT/images/<name>.png``, ``ROOT/groundTruth/<name>_GT.mat`` and ``ROOT/<split>.txt``
  (names, one per line).

The objects of the proposal benchmark (``bench/proposals.py``, ``bench/train_ranker.py``) are,
for BSDS, every segment of every annotator covering at least 0.1 % of the image, and for MSRC
the labelled segments of the thing classes :data:`MSRC_THINGS`, with the void pixels left out of
every area.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["DATASETS", "MSRC_THINGS", "split_images", "proposal_objects"]

#: Dataset names understood by :func:`split_images` and :func:`proposal_objects`.
DATASETS = ("bsds", "msrc")
#: MSRC-v2 thing classes (1-based MSRC-v2 ids): cow, sheep, aeroplane, face, car, bicycle, flower,
#: sign, bird, book, chair, cat, dog, body, boat.
MSRC_THINGS = (4, 6, 9, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23)
#: Smallest BSDS segment counted as an object, as a fraction of the image.
BSDS_MIN_AREA = 0.001


def _check_dataset(dataset) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"`dataset` must be one of {DATASETS}, got {dataset!r}")


def split_images(dataset: str, root: str | os.PathLike, split: str) -> list[tuple[str, Path]]:
    """``(name, image_path)`` of every image of a split, in the dataset's order.

    Parameters
    ----------
    dataset : {"bsds", "msrc"}
    root : path-like
        The dataset folder (``$BOTTOMUP_DATA/bsds500`` or ``$BOTTOMUP_DATA/msrc``).
    split : str
        ``train``, ``val``, ... (BSDS: a folder of ``data/images``; MSRC: ``<split>.txt``).

    Returns
    -------
    items : list of (str, Path)
        BSDS: sorted by id; MSRC: in the order of the split file.

    Raises
    ------
    ValueError
        For an unknown dataset.
    FileNotFoundError
        When the MSRC split file is missing.
    """
    _check_dataset(dataset)
    root = Path(root)
    if dataset == "bsds":
        d = root / "data" / "images" / split
        return [(p.stem, p) for p in sorted(d.glob("*.jpg"))]
    split_file = root / f"{split}.txt"
    if not split_file.exists():
        raise FileNotFoundError(f"MSRC split file not found: {split_file} (one image name per line)")
    names = split_file.read_text().split()
    return [(n, root / "images" / f"{n}.png") for n in names]


def proposal_objects(dataset: str, root: str | os.PathLike, split: str, name: str):
    """Ground-truth objects of one image for the proposal benchmark.

    Parameters
    ----------
    dataset : {"bsds", "msrc"}
    root : path-like
        The dataset folder, as :func:`split_images`.
    split : str
        BSDS only: the ground-truth folder (MSRC ground truth is not split in folders).
    name : str
        Image id (BSDS) or name (MSRC).

    Returns
    -------
    masks : (G, H, W) ndarray of bool
        One mask per object (``G`` may be 0).
    void : (H, W) ndarray of bool or None
        MSRC: pixels outside every labelled segment, to leave out of every area; BSDS: None.
    """
    _check_dataset(dataset)
    root = Path(root)
    if dataset == "bsds":
        from bottomup.io.bsds import read_bsds_gt

        gt = read_bsds_gt(root / "data" / "groundTruth" / split / f"{name}.mat")
        masks = []
        for seg in gt.segmentations:
            min_area = BSDS_MIN_AREA * seg.size
            for lab in range(int(seg.max()) + 1):
                m = seg == lab
                if m.sum() >= min_area:
                    masks.append(m)
        return np.stack(masks), None
    import scipy.io as sio

    mat = sio.loadmat(root / "groundTruth" / f"{name}_GT.mat")
    seg = mat["newseg"].astype(np.int64)
    labels = mat["newlabels"].ravel().astype(np.int64)
    void = (seg < 1) | (seg > labels.size)
    masks = [seg == i for i in range(1, labels.size + 1)
             if labels[i - 1] in MSRC_THINGS and (seg == i).any()]
    return (np.stack(masks) if masks else np.zeros((0, *seg.shape), bool)), void
