"""Image reading into the image contract of DESIGN.md."""

from __future__ import annotations

import os

import numpy as np

from bottomup.validate import check_image


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file into the pipeline contract.

    Parameters
    ----------
    path : str or path-like
        Any format OpenCV reads (PNG, JPEG, TIFF, BMP ...), 8 or 16 bit, gray, RGB or RGBA.

    Returns
    -------
    image : (H, W, 3) ndarray of float64
        RGB in [0, 1] (grayscale replicated, alpha dropped, 16-bit scaled by 1/65535).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file cannot be decoded as an image; the message names the file.
    """
    import cv2

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"image file not found: {path}")
    data = np.fromfile(path, dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if arr is None:
        raise ValueError(f"cannot decode image file {path!r}: not an image OpenCV can read")
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
        elif arr.shape[2] == 3:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    if arr.dtype in (np.float32, np.float64):
        arr = np.clip(np.nan_to_num(arr, nan=0.0), 0.0, 1.0)
    try:
        return check_image(arr, name=f"image {path!r}")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{exc} (file {path})") from exc
