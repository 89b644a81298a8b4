"""BSDS500 ground truth and ucm2 files.

The BSDS ``groundTruth`` ``.mat`` holds a 1xA cell array of structs with ``Segmentation`` (uint16,
regions numbered from 1) and ``Boundaries`` (uint8, 1 on boundary pixels). We convert the
segmentations to the 0-based partition contract here and nowhere else.

References
----------
.. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical Image
       Segmentation", TPAMI 33(5), 2011.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from bottomup.io.files import atomic_path
from bottomup.validate import check_ucm2

__all__ = ["BSDSGroundTruth", "read_bsds_gt", "read_ucm2", "write_ucm2"]


@dataclass(frozen=True)
class BSDSGroundTruth:
    """All annotators' segmentations and boundaries for one image.

    Attributes
    ----------
    segmentations : tuple of (H, W) ndarray of int32
        One partition per annotator, dense 0-based labels (the file's labels minus one, relabelled).
    boundaries : tuple of (H, W) ndarray of bool
        One boundary map per annotator, as drawn in the file.
    """

    segmentations: tuple
    boundaries: tuple

    def __post_init__(self):
        if len(self.segmentations) != len(self.boundaries) or not self.segmentations:
            raise ValueError("ground truth needs the same, non-zero number of segmentations and boundaries")
        shape = self.segmentations[0].shape
        for s, b in zip(self.segmentations, self.boundaries, strict=True):
            if s.shape != shape or b.shape != shape:
                raise ValueError(f"annotator maps disagree in shape: {s.shape}, {b.shape}, {shape}")

    @property
    def shape(self) -> tuple:
        """Image shape ``(H, W)``."""
        return self.segmentations[0].shape

    @property
    def n_annotators(self) -> int:
        """Number of human annotators."""
        return len(self.segmentations)


def _loadmat(path: str) -> dict:
    import scipy.io as sio

    try:
        return sio.loadmat(path)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(f"cannot read MATLAB file {path!r}: {exc}") from exc


def read_bsds_gt(path: str | os.PathLike) -> BSDSGroundTruth:
    """Read a BSDS500 ground-truth ``.mat`` file.

    Parameters
    ----------
    path : str or path-like
        File holding the cell array ``groundTruth``.

    Returns
    -------
    gt : BSDSGroundTruth
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"ground-truth file not found: {path}")
    mat = _loadmat(path)
    if "groundTruth" not in mat:
        raise ValueError(f"{path!r} has no variable `groundTruth`; is it a BSDS ground-truth file?")
    cells = mat["groundTruth"].ravel()
    segs, bdrys = [], []
    for k, cell in enumerate(cells):
        try:
            seg = np.asarray(cell["Segmentation"][0, 0])
            bdry = np.asarray(cell["Boundaries"][0, 0])
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"{path!r}: annotator {k} lacks Segmentation/Boundaries") from exc
        _, dense = np.unique(seg, return_inverse=True)
        segs.append(dense.reshape(seg.shape).astype(np.int32))
        bdrys.append(bdry.astype(bool))
    return BSDSGroundTruth(tuple(segs), tuple(bdrys))


def read_ucm2(path: str | os.PathLike) -> np.ndarray:
    """Read a ucm2 from ``.mat`` (variable ``ucm2``), ``.npz`` (key ``ucm2``) or 16-bit ``.png``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    ucm2 : (2H+1, 2W+1) ndarray of float64
        A PNG is scaled by 1/65535 (8-bit PNGs by 1/255).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"ucm2 file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".mat":
        mat = _loadmat(path)
        if "ucm2" not in mat:
            keys = [k for k in mat if not k.startswith("__")]
            raise ValueError(f"{path!r} has no variable `ucm2` (found {keys})")
        arr = mat["ucm2"]
    elif ext == ".npz":
        try:
            with np.load(path) as f:
                if "ucm2" not in f:
                    raise ValueError(f"{path!r} has no array `ucm2` (found {list(f.keys())})")
                arr = f["ucm2"]
        except ValueError:
            raise
        except Exception as exc:
            raise ValueError(f"cannot read npz file {path!r}: {exc}") from exc
    elif ext == ".png":
        import cv2

        arr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if arr is None or arr.ndim != 2:
            raise ValueError(f"{path!r} is not a single-channel PNG ucm2")
        arr = arr.astype(np.float64) / (65535.0 if arr.dtype == np.uint16 else 255.0)
    else:
        raise ValueError(f"unknown ucm2 file type {ext!r} for {path!r}; expected .mat, .npz or .png")
    try:
        return check_ucm2(arr, name=f"ucm2 in {path!r}")
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from exc


def write_ucm2(path: str | os.PathLike, ucm2: np.ndarray) -> None:
    """Write a ucm2 atomically (temporary file, then rename) as ``.mat``, ``.npz`` or ``.png``.

    Parameters
    ----------
    path : str or path-like
        Target; the extension picks the format. ``.mat`` stores variable ``ucm2`` (BSDS-compatible,
        readable by the official MATLAB benchmark); ``.png`` is 16-bit, values scaled by 65535.
    ucm2 : (2H+1, 2W+1) ndarray
        Values in [0, 1] for PNG.
    """
    path = os.fspath(path)
    ucm2 = check_ucm2(ucm2)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".mat", ".npz", ".png"):
        raise ValueError(f"unknown ucm2 file type {ext!r}; expected .mat, .npz or .png")
    with atomic_path(path) as tmp_path:
        tmp = str(tmp_path)
        if ext == ".mat":
            import scipy.io as sio

            sio.savemat(tmp, {"ucm2": ucm2}, do_compression=True)
        elif ext == ".npz":
            with open(tmp, "wb") as f:
                np.savez_compressed(f, ucm2=ucm2)
        else:
            import cv2

            if ucm2.min() < 0 or ucm2.max() > 1:
                raise ValueError("a PNG ucm2 needs values in [0, 1]")
            if not cv2.imwrite(tmp, np.round(ucm2 * 65535.0).astype(np.uint16)):
                raise OSError(f"OpenCV could not write {path!r}")
