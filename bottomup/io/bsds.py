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

from bottomup.io._guard import array_limit, check_mat, check_npy_member, open_regular, resolve_max_pixels
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


def _loadmat(path: str, what: str, names: list, max_pixels) -> dict:
    """Load ``names`` from a MAT file after its headers passed :func:`check_mat`."""
    import scipy.io as sio

    limit = array_limit(resolve_max_pixels(max_pixels))
    with open_regular(path, what) as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise ValueError(f"{what} file {path!r} is empty (0 bytes); expected a MATLAB file")
        check_mat(f, path, what, limit)
        try:
            return sio.loadmat(f, variable_names=names)
        except Exception as exc:  # noqa: BLE001 - scipy raises many types on a damaged file
            raise ValueError(f"cannot read {what} file {path!r} as MATLAB: "
                             f"{type(exc).__name__}: {exc}") from None


def _annotator(cell, field: str, path: str, k: int) -> np.ndarray:
    try:
        arr = np.asarray(cell[field][0, 0])
    except (KeyError, IndexError, ValueError, TypeError):
        raise ValueError(f"ground-truth file {path!r}: annotator {k} has no `{field}`; expected a "
                         "struct with Segmentation and Boundaries") from None
    if arr.ndim != 2 or arr.size == 0 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"ground-truth file {path!r}: annotator {k}'s `{field}` must be a non-empty "
                         f"2-D numeric array, got shape {arr.shape} and dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError(f"ground-truth file {path!r}: annotator {k}'s `{field}` contains NaN or inf")
    return arr


def read_bsds_gt(path: str | os.PathLike, *, max_pixels: int | None = None) -> BSDSGroundTruth:
    """Read a BSDS500 ground-truth ``.mat`` file.

    Parameters
    ----------
    path : str or path-like
        File holding the cell array ``groundTruth``.
    max_pixels : int, optional
        Pixel limit (see :func:`bottomup.io.read_image`); an array in the file claiming more
        than ``9 * max_pixels`` elements is refused from its header, before it is read.

    Returns
    -------
    gt : BSDSGroundTruth

    Raises
    ------
    FileNotFoundError, PermissionError
        If the file is missing or may not be read.
    ValueError
        Naming the file: not a regular file, not a MATLAB file, damaged, no ``groundTruth``,
        annotators without 2-D ``Segmentation``/``Boundaries`` of one shape; ``PixelLimitError``
        (a ``ValueError``) for an array over the limit.
    """
    path = os.fspath(path)
    what = "ground-truth"
    mat = _loadmat(path, what, ["groundTruth"], max_pixels)
    if "groundTruth" not in mat:
        raise ValueError(f"{path!r} has no variable `groundTruth`; is it a BSDS ground-truth file?")
    cells = np.asarray(mat["groundTruth"])
    if cells.dtype != object or cells.size == 0:
        raise ValueError(f"ground-truth file {path!r}: `groundTruth` must be a non-empty cell array of "
                         f"structs, got an array of shape {cells.shape} and dtype {cells.dtype}")
    segs, bdrys = [], []
    for k, cell in enumerate(cells.ravel()):
        seg = _annotator(cell, "Segmentation", path, k)
        bdry = _annotator(cell, "Boundaries", path, k)
        if seg.shape != bdry.shape or seg.shape != (segs[0].shape if segs else seg.shape):
            raise ValueError(f"ground-truth file {path!r}: annotator {k} has Segmentation {seg.shape} "
                             f"and Boundaries {bdry.shape}; every map must have the image's shape "
                             f"{segs[0].shape if segs else seg.shape}")
        _, dense = np.unique(seg, return_inverse=True)
        segs.append(dense.reshape(seg.shape).astype(np.int32))
        bdrys.append(bdry.astype(bool))
    return BSDSGroundTruth(tuple(segs), tuple(bdrys))


def read_ucm2(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Read a ucm2 from ``.mat`` (variable ``ucm2``), ``.npz`` (key ``ucm2``) or 16-bit ``.png``.

    Parameters
    ----------
    path : str or path-like
    max_pixels : int, optional
        Pixel limit (see :func:`bottomup.io.read_image`); a ucm2 (or any array in a ``.mat``)
        claiming more than ``9 * max_pixels`` elements is refused from its header, before it is
        read.

    Returns
    -------
    ucm2 : (2H+1, 2W+1) ndarray of float64
        A PNG is scaled by 1/65535 (8-bit PNGs by 1/255).

    Raises
    ------
    FileNotFoundError, PermissionError
        If the file is missing or may not be read.
    ValueError
        Naming the file: unknown extension, not a regular file, damaged, no ``ucm2``, not the
        (2H+1, 2W+1) layout, NaN; ``PixelLimitError`` (a ``ValueError``) over the limit.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".mat", ".npz", ".png"):
        if not os.path.lexists(path):
            raise FileNotFoundError(f"ucm2 file not found: {path}")
        raise ValueError(f"unknown ucm2 file type {ext!r} for {path!r}; expected .mat, .npz or .png")
    limit = array_limit(resolve_max_pixels(max_pixels))
    if ext == ".mat":
        mat = _loadmat(path, "ucm2", ["ucm2"], max_pixels)
        if "ucm2" not in mat:
            import scipy.io as sio

            try:
                keys = [name for name, *_ in sio.whosmat(path)]
            except Exception:  # noqa: BLE001
                keys = []
            raise ValueError(f"{path!r} has no variable `ucm2` (found {keys})")
        arr = mat["ucm2"]
    elif ext == ".npz":
        with open_regular(path, "ucm2") as f:
            _, dtype = check_npy_member(f, path, "ucm2", "ucm2", limit)
            if dtype.hasobject:
                raise ValueError(f"ucm2 file {path!r}: array `ucm2` holds Python objects ({dtype}); "
                                 "expected numbers")
            try:
                with np.load(f, allow_pickle=False) as z:
                    arr = z["ucm2"]
            except Exception as exc:  # noqa: BLE001 - numpy and zipfile raise many types
                raise ValueError(f"cannot read npz file {path!r}: {type(exc).__name__}: {exc}") from None
    else:
        import cv2

        from bottomup.io.images import _decode

        arr = _decode(path, what="ucm2", max_pixels=limit, flags=cv2.IMREAD_UNCHANGED)
        if arr.ndim != 2:
            raise ValueError(f"{path!r} is not a single-channel PNG ucm2 (got shape {arr.shape})")
        arr = arr.astype(np.float64) / (65535.0 if arr.dtype == np.uint16 else 255.0)
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
