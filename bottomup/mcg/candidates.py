"""``Candidates``: ranked object proposals as leaf sets over a base partition."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Candidates"]


@dataclass(frozen=True)
class Candidates:
    """Ranked object proposals, each a union of regions of a base partition.

    Parameters
    ----------
    leaf_labels : (H, W) ndarray of int32
        Base partition, dense labels ``0..L-1``.
    leaf_sets : (K, L) ndarray of bool
        ``leaf_sets[k, l]``: leaf ``l`` belongs to candidate ``k``; rows in ranked order.
    boxes : (K, 4) ndarray of int64
        Half-open ``(r0, c0, r1, c1)`` bounding boxes (the box layout of :mod:`bottomup.masks`;
        ``bottomup.masks.boxes_to_xyxy`` converts them to torchvision's xyxy).
    scores : (K,) ndarray of float64
        Ranker scores, non-increasing.

    Examples
    --------
    >>> import numpy as np
    >>> c = Candidates(np.array([[0, 1], [0, 1]]), np.array([[True, False]]),
    ...                np.array([[0, 0, 2, 1]]), np.array([0.5]))
    >>> c.masks(0).astype(int).tolist()
    [[1, 0], [1, 0]]
    """

    leaf_labels: NDArray[np.int32]
    leaf_sets: NDArray[np.bool_]
    boxes: NDArray[np.int64]
    scores: NDArray[np.float64]

    def __post_init__(self):
        lab = np.ascontiguousarray(self.leaf_labels, dtype=np.int32)
        sets = np.asarray(self.leaf_sets)
        if lab.ndim != 2:
            raise ValueError(f"`leaf_labels` must be (H, W), got shape {lab.shape}")
        n_leaves = int(lab.max()) + 1 if lab.size else 0
        if sets.ndim != 2 or sets.dtype != bool or sets.shape[1] != n_leaves:
            raise ValueError(
                f"`leaf_sets` must be a bool (K, {n_leaves}) incidence, got {sets.dtype} {sets.shape}"
            )
        k = sets.shape[0]
        boxes = np.asarray(self.boxes, np.int64).reshape(-1, 4) if k else np.zeros((0, 4), np.int64)
        scores = np.asarray(self.scores, np.float64).reshape(-1)
        if boxes.shape != (k, 4) or scores.shape != (k,):
            raise ValueError(
                f"`boxes` must be ({k}, 4) and `scores` ({k},), got {boxes.shape} and {scores.shape}"
            )
        for name, arr in (("leaf_labels", lab), ("leaf_sets", sets), ("boxes", boxes),
                          ("scores", scores)):
            arr = np.array(arr)  # own copy, read-only
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.leaf_sets.shape[0])

    def __repr__(self) -> str:
        """One line: counts, image shape and score range (not the arrays)."""
        scores = "" if not len(self) else (
            f", scores=[{float(self.scores.min()):.3g}, {float(self.scores.max()):.3g}]")
        return f"Candidates(n={len(self)}, shape={self.shape}, n_leaves={self.leaf_sets.shape[1]}{scores})"

    @property
    def shape(self) -> tuple:
        """Image shape ``(H, W)``."""
        return self.leaf_labels.shape

    def leaf_ids(self, index: int) -> NDArray[np.int64]:
        """Leaves of candidate ``index``."""
        return np.flatnonzero(self.leaf_sets[index])

    def masks(self, idx=None) -> NDArray[np.bool_]:
        """Materialise masks.

        Parameters
        ----------
        idx : int, slice or array of int, optional
            Candidates to materialise (default all).

        Returns
        -------
        masks : (H, W) or (K', H, W) ndarray of bool
            One mask for an int ``idx``, a stack otherwise.
        """
        if idx is None:
            idx = slice(None)
        if isinstance(idx, (int, np.integer)) and not isinstance(idx, bool):
            if not -len(self) <= idx < len(self):
                raise IndexError(f"candidate index {idx} out of range for {len(self)} candidates")
            return self.leaf_sets[idx][self.leaf_labels]
        sel = self.leaf_sets[idx]
        return sel[:, self.leaf_labels]

    def to_coco(self, image_id=0, *, category_id: int = 1) -> list[dict]:
        """COCO-style result records: RLE ``segmentation``, ``bbox`` ``[x, y, w, h]`` and ``score``.

        RLE counts are strings (``bottomup.masks.masks_to_rle`` compressed, decoded as ASCII), so
        the records serialise to JSON and decode with ``pycocotools.mask.decode``.
        """
        from bottomup.masks import boxes_to_coco, masks_to_rle

        out = []
        coco_boxes = boxes_to_coco(self.boxes) if len(self) else np.zeros((0, 4))
        for i in range(len(self)):
            rle = masks_to_rle(self.masks(i))
            rle = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            out.append({"image_id": image_id, "category_id": category_id, "segmentation": rle,
                        "bbox": [float(v) for v in coco_boxes[i]], "score": float(self.scores[i])})
        return out
