"""MSRC-v2 ground truth (cleaned object annotations of Malisiewicz & Efros) as MSRC-21 labels."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["MSRC21_IDS", "MSRC_VOID", "read_msrc21"]

#: MSRC-v2 class ids kept by MSRC-21, in label order 0..20 (horse, 5, and mountain, 8, are void).
MSRC21_IDS = tuple(i for i in range(1, 24) if i not in (5, 8))
#: Label of void pixels.
MSRC_VOID = 255


def read_msrc21(path: str | os.PathLike, *, segments: bool = False):
    """Read an MSRC-v2 ``<name>_GT.mat`` as MSRC-21 labels.

    Parameters
    ----------
    path : path-like
        File with ``newseg`` (H, W) segment ids 1..K and ``newlabels`` (the class of segment i at
        ``newlabels[i - 1]``; segments past its end are void).
    segments : bool, optional
        Also return the segment ids (``newseg``), e.g. to split the labels into instances.

    Returns
    -------
    labels : (H, W) ndarray of uint8
        Classes 0..20 in :data:`MSRC21_IDS` order, :data:`MSRC_VOID` (255) for void.
    seg : (H, W) ndarray of int64
        Only with ``segments=True``: the annotated segment of each pixel (all of a segment's
        pixels have one label).
    """
    import scipy.io as sio

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"MSRC ground-truth file not found: {path}")
    try:
        m = sio.loadmat(path)
        seg = m["newseg"].astype(np.int64)
        cls = np.asarray(m["newlabels"]).ravel().astype(np.int64)
    except KeyError as exc:
        raise ValueError(f"{path!r} lacks `newseg`/`newlabels`; is it an MSRC-v2 _GT.mat?") from exc
    except Exception as exc:
        raise ValueError(f"cannot read MATLAB file {path!r}: {exc}") from exc
    lut = np.full(max(int(seg.max()), len(cls)) + 1, MSRC_VOID, np.uint8)
    to21 = {cid: i for i, cid in enumerate(MSRC21_IDS)}
    for i, c in enumerate(cls, start=1):
        lut[i] = to21.get(int(c), MSRC_VOID)
    return (lut[seg], seg) if segments else lut[seg]
