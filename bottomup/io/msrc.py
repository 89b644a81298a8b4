"""MSRC-v2 ground truth (cleaned object annotations of Malisiewicz & Efros) as MSRC-21 labels."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["MSRC21_IDS", "MSRC_VOID", "read_msrc21"]

#: MSRC-v2 class ids kept by MSRC-21, in label order 0..20 (horse, 5, and mountain, 8, are void).
MSRC21_IDS = tuple(i for i in range(1, 24) if i not in (5, 8))
#: Label of void pixels.
MSRC_VOID = 255


def read_msrc21(path: str | os.PathLike, *, segments: bool = False, max_pixels: int | None = None):
    """Read an MSRC-v2 ``<name>_GT.mat`` as MSRC-21 labels.

    Parameters
    ----------
    path : path-like
        File with ``newseg`` (H, W) segment ids 1..K and ``newlabels`` (the class of segment i at
        ``newlabels[i - 1]``; segments past its end are void).
    segments : bool, optional
        Also return the segment ids (``newseg``), e.g. to split the labels into instances.
    max_pixels : int, optional
        Pixel limit (see :func:`bottomup.io.read_image`); an array claiming more than
        ``9 * max_pixels`` elements is refused from its header, before it is read.

    Returns
    -------
    labels : (H, W) ndarray of uint8
        Classes 0..20 in :data:`MSRC21_IDS` order, :data:`MSRC_VOID` (255) for void.
    seg : (H, W) ndarray of int64
        Only with ``segments=True``: the annotated segment of each pixel (all of a segment's
        pixels have one label).

    Raises
    ------
    FileNotFoundError, PermissionError
        If the file is missing or may not be read.
    ValueError
        Naming the file: not a MATLAB file, damaged, no ``newseg``/``newlabels``, ``newseg`` not
        a non-empty 2-D array of non-negative integers; ``PixelLimitError`` over the limit.
    """
    from bottomup.io.bsds import _loadmat

    path = os.fspath(path)
    m = _loadmat(path, "MSRC ground-truth", ["newseg", "newlabels"], max_pixels)
    if "newseg" not in m or "newlabels" not in m:
        raise ValueError(f"{path!r} lacks `newseg`/`newlabels`; is it an MSRC-v2 _GT.mat?")
    raw, cls = np.asarray(m["newseg"]), np.asarray(m["newlabels"])
    ok = raw.ndim == 2 and raw.size > 0 and (np.issubdtype(raw.dtype, np.number) or raw.dtype == bool)
    if ok and not np.issubdtype(raw.dtype, np.integer):
        ok = bool(np.isfinite(raw).all() and (raw == np.round(raw)).all())
    if not ok or raw.min() < 0 or not np.issubdtype(cls.dtype, np.number):
        raise ValueError(f"MSRC ground-truth file {path!r}: `newseg` must be a non-empty 2-D array of "
                         f"segment ids >= 0 and `newlabels` numeric, got {raw.shape} {raw.dtype} and "
                         f"{cls.shape} {cls.dtype}")
    seg = raw.astype(np.int64)
    cls = np.nan_to_num(cls.ravel().astype(np.float64), nan=-1).astype(np.int64)
    # label of segment id i: class newlabels[i - 1] in MSRC-21 order; id 0 and ids past the list void
    to21 = {cid: i for i, cid in enumerate(MSRC21_IDS)}
    ids, inv = np.unique(seg, return_inverse=True)  # not a lookup table as long as max(id): ids may be huge
    lut = np.array([to21.get(int(cls[i - 1]), MSRC_VOID) if 1 <= i <= len(cls) else MSRC_VOID
                    for i in ids], np.uint8)
    labels = lut[inv.reshape(seg.shape)]
    return (labels, seg) if segments else labels
