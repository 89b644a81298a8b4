"""Input checks for the public API of :mod:`bottomup`.

Every public function validates its arguments here and nowhere else; kernels assume valid input.
Messages name the argument, what was expected, what came, and the fix.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "check_image",
    "check_map",
    "check_ucm2",
    "check_labels",
    "check_same_shape",
]


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {x.dtype}"
    return f"{type(x).__name__}"


def check_image(image, *, name: str = "image", channel_axis: int | None = -1) -> np.ndarray:
    """Convert an image to the pipeline's contract: ``(H, W, 3)`` float64 in [0, 1].

    Parameters
    ----------
    image : (H, W) or (H, W, C) array_like
        Grayscale, RGB or RGBA; dtype bool, uint8, uint16, any other integer, or float in [0, 1].
        Grayscale is replicated to three channels (as the original gPb does); alpha is dropped.
    name : str
        Argument name used in error messages.
    channel_axis : int or None
        Axis holding the channels; None means the image is grayscale.

    Returns
    -------
    image : (H, W, 3) ndarray of float64
        Values in [0, 1], C-contiguous.

    Raises
    ------
    TypeError
        If ``image`` is not array-like or has a non-numeric dtype.
    ValueError
        If the shape is not an image, it is empty, or it holds NaN/inf or floats outside [0, 1].
    """
    if image is None:
        raise TypeError(f"`{name}` must be an array, got None")
    try:
        arr = np.asarray(image)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"`{name}` must be array-like, got {type(image).__name__}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
    ):
        raise TypeError(f"`{name}` must have a numeric dtype, got {_describe(arr)}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"`{name}` must be real-valued, got {_describe(arr)}")
    if channel_axis is None:
        if arr.ndim != 2:
            raise ValueError(
                f"`{name}` with channel_axis=None must be 2-D (H, W), got {_describe(arr)}"
            )
        arr = arr[..., None]
    else:
        if arr.ndim == 2:
            arr = arr[..., None]
        elif arr.ndim == 3:
            arr = np.moveaxis(arr, channel_axis, -1)
        else:
            raise ValueError(
                f"`{name}` must be (H, W) grayscale or (H, W, C) color, got {_describe(arr)}; "
                "pass one image at a time"
            )
    h, w, c = arr.shape
    if h == 0 or w == 0:
        raise ValueError(f"`{name}` is empty: {_describe(arr)}")
    if c not in (1, 2, 3, 4):
        raise ValueError(
            f"`{name}` must have 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels on "
            f"channel_axis={channel_axis}, got {c}; use channel_axis=None if the image is grayscale"
        )
    if c == 2:
        arr = arr[..., :1]
    elif c == 4:
        arr = arr[..., :3]
    if arr.dtype == bool:
        out = arr.astype(np.float64)
    elif np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        if info.min < 0 and arr.min() < 0:
            raise ValueError(f"`{name}` has negative integer values; expected unsigned intensities")
        out = arr.astype(np.float64) / float(info.max)
    else:
        out = arr.astype(np.float64)
        if not np.isfinite(out).all():
            raise ValueError(f"`{name}` contains NaN or inf; clean or mask it before segmenting")
        lo, hi = float(out.min()), float(out.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"float `{name}` must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
                "divide by 255 (8-bit) or 65535 (16-bit) first"
            )
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return np.ascontiguousarray(out)


def check_map(pb, *, name: str = "pb", lo: float | None = 0.0, hi: float | None = 1.0) -> np.ndarray:
    """Validate a 2-D real-valued map and return it as C-contiguous float64.

    Parameters
    ----------
    pb : (H, W) array_like
        A contour or boundary-strength map.
    name : str
        Argument name used in error messages.
    lo, hi : float or None
        Inclusive bounds the values must respect (None: unbounded).

    Returns
    -------
    pb : (H, W) ndarray of float64
    """
    arr = np.asarray(pb)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"`{name}` must be a numeric array, got {_describe(arr)}")
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D (H, W) map, got {_describe(arr)}")
    if arr.size == 0:
        raise ValueError(f"`{name}` is empty: {_describe(arr)}")
    out = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"`{name}` contains NaN or inf; expected finite values")
    if lo is not None and out.min() < lo:
        raise ValueError(f"`{name}` must be >= {lo}, got minimum {out.min():.4g}")
    if hi is not None and out.max() > hi:
        raise ValueError(f"`{name}` must be <= {hi}, got maximum {out.max():.4g}")
    return out


def check_ucm2(ucm2, *, name: str = "ucm2") -> np.ndarray:
    """Validate an ultrametric contour map in the BSDS double-size layout.

    Parameters
    ----------
    ucm2 : (2H+1, 2W+1) array_like
        Boundary strengths on the double-resolution grid; pixels at ``[1::2, 1::2]``.

    Returns
    -------
    ucm2 : (2H+1, 2W+1) ndarray of float64
    """
    arr = check_map(ucm2, name=name, lo=None, hi=None)
    if arr.shape[0] % 2 == 0 or arr.shape[1] % 2 == 0 or min(arr.shape) < 3:
        raise ValueError(
            f"`{name}` must have the BSDS double-size shape (2H+1, 2W+1) with odd sides >= 3, "
            f"got {arr.shape}; an image-size contour map is a boundary map, not a ucm2"
        )
    return arr


def check_labels(labels, *, name: str = "labels", shape: tuple | None = None) -> np.ndarray:
    """Validate a label image and return it as int64.

    Parameters
    ----------
    labels : (H, W) array_like of int
    shape : tuple, optional
        Expected shape.
    """
    arr = np.asarray(labels)
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise TypeError(f"`{name}` must be an integer label image, got {_describe(arr)}")
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D (H, W), got {_describe(arr)}")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"`{name}` (shape {arr.shape}) must have shape {tuple(shape)}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ValueError unless two arrays have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"`{name_a}` (shape {a.shape}) must have the same shape as `{name_b}` (shape {b.shape})"
        )
