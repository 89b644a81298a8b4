"""Pictures to look at: colour-coded labels, boundaries and proposals drawn on the image.

Plain numpy / scikit-image drawing (OpenCV only for the legend's text), no matplotlib, so the
command line writes them without the plotting extra. Every function returns an ``(H, W, 3)``
uint8 RGB array; :func:`write_image` writes one (or a 16-bit label image) atomically as PNG.
``bottomup segment --cut``, ``bottomup interactive`` and ``bottomup proposals --overlay`` use them.

Examples
--------
>>> import numpy as np
>>> labels = np.array([[0, 0, 1], [0, 2, 1]])
>>> color_labels(labels).shape
(2, 3, 3)
>>> bool((color_labels(labels)[0, 0] == palette(3)[0]).all())
True
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["palette", "color_labels", "boundary_mask", "draw_boundaries", "overlay_labels", "draw_proposals",
           "as_rgb8", "write_image"]

#: Colour of drawn boundaries (RGB).
BOUNDARY_COLOR = (255, 40, 40)


def palette(n: int) -> np.ndarray:
    """``n`` distinct, saturated colours, ``(n, 3)`` uint8 RGB; colour ``i`` does not depend on ``n``.

    Hues step by the golden ratio (neighbouring ids get far-apart hues); saturation and value
    cycle through three levels so that ids ``i`` and ``i + 1`` never look alike.
    """
    from skimage.color import hsv2rgb

    if int(n) < 0:
        raise ValueError(f"`n` must be >= 0, got {n}")
    i = np.arange(int(n), dtype=np.float64)
    hsv = np.stack([(i * 0.618033988749895) % 1.0,
                    np.array([0.85, 0.6, 0.95])[i.astype(np.int64) % 3],
                    np.array([0.95, 0.8, 0.65])[(i.astype(np.int64) // 3) % 3]], axis=-1)
    return np.round(hsv2rgb(hsv.reshape(-1, 1, 3)).reshape(-1, 3) * 255).astype(np.uint8)


def _check_labels(labels, shape=None) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 2 or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"`labels` must be an (H, W) integer array, got {lab.dtype} {lab.shape}")
    if lab.size and lab.min() < 0:
        raise ValueError(f"`labels` must be >= 0, got minimum {lab.min()}")
    if shape is not None and lab.shape != tuple(shape):
        raise ValueError(f"`labels` has shape {lab.shape}, the image {tuple(shape)}")
    return lab.astype(np.int64, copy=False)


def as_rgb8(image) -> np.ndarray:
    """An image as ``(H, W, 3)`` uint8 RGB: floats are taken in [0, 1], uint16 scaled, gray
    repeated, alpha dropped."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f"`image` must be (H, W), (H, W, 3) or (H, W, 4), got shape {img.shape}")
    img = img[..., :3] if img.shape[2] == 4 else img
    if img.dtype == np.uint8:
        out = img
    elif img.dtype == np.uint16:
        out = (img // 257).astype(np.uint8)
    elif img.dtype == bool:
        out = img.astype(np.uint8) * 255
    else:
        out = np.round(np.clip(np.asarray(img, np.float64), 0, 1) * 255).astype(np.uint8)
    return np.repeat(out, 3, axis=2) if out.shape[2] == 1 else np.ascontiguousarray(out)


def color_labels(labels, colors=None) -> np.ndarray:
    """Colour-coded labels: ``colors[labels]`` (default :func:`palette`), ``(H, W, 3)`` uint8."""
    lab = _check_labels(labels)
    n = int(lab.max()) + 1 if lab.size else 0
    colors = palette(n) if colors is None else np.asarray(colors, np.uint8).reshape(-1, 3)
    if colors.shape[0] < n:
        raise ValueError(f"{colors.shape[0]} colours for labels up to {n - 1}")
    return colors[lab]


def boundary_mask(labels) -> np.ndarray:
    """One-pixel boundaries of a partition: the pixels whose right or lower neighbour has another
    label (the left/upper side of each change, as BSDS boundary maps mark it), ``(H, W)`` bool."""
    lab = _check_labels(labels)
    b = np.zeros(lab.shape, bool)
    b[:, :-1] |= lab[:, 1:] != lab[:, :-1]
    b[:-1, :] |= lab[1:, :] != lab[:-1, :]
    return b


def draw_boundaries(image, labels, *, color=BOUNDARY_COLOR) -> np.ndarray:
    """The image with the boundaries between regions (:func:`boundary_mask`) drawn in ``color``,
    ``(H, W, 3)`` uint8."""
    out = as_rgb8(image).copy()
    lab = _check_labels(labels, out.shape[:2])
    out[boundary_mask(lab)] = np.asarray(color, np.uint8)
    return out


def overlay_labels(image, labels, *, colors=None, alpha: float = 0.45, boundaries: bool = True,
                   color=BOUNDARY_COLOR) -> np.ndarray:
    """Label colours blended over the image (weight ``alpha``), region boundaries drawn on top."""
    img = as_rgb8(image)
    lab = _check_labels(labels, img.shape[:2])
    if not 0 <= alpha <= 1:
        raise ValueError(f"`alpha` must be in [0, 1], got {alpha}")
    blend = (1 - alpha) * img + alpha * color_labels(lab, colors).astype(np.float64)
    out = np.round(blend).astype(np.uint8)
    if boundaries:
        out[boundary_mask(lab)] = np.asarray(color, np.uint8)
    return out


def _text(canvas, text, org, rgb, scale):
    import cv2

    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, tuple(int(v) for v in rgb), 1,
                cv2.LINE_AA)


def draw_proposals(image, masks, scores, *, alpha: float = 0.5) -> np.ndarray:
    """Ranked masks drawn on the image, each in its colour with its rank at its innermost pixel,
    and a legend (colour, rank, score) in a panel to the right.

    Parameters
    ----------
    image : (H, W[, C]) array_like
    masks : (K, H, W) array_like of bool
        In rank order: mask 0 is rank 1 and is drawn on top.
    scores : (K,) array_like of float
    alpha : float
        Weight of the mask colours.

    Returns
    -------
    picture : (max(H, legend height), W + legend width, 3) ndarray of uint8
    """
    from scipy import ndimage as ndi

    img = as_rgb8(image)
    masks = np.asarray(masks, bool)
    if masks.ndim == 2:
        masks = masks[None]
    scores = np.asarray(scores, np.float64).reshape(-1)
    if masks.ndim != 3 or masks.shape[1:] != img.shape[:2] or scores.shape != (masks.shape[0],):
        raise ValueError(f"`masks` must be (K, {img.shape[0]}, {img.shape[1]}) with K `scores`, got "
                         f"{masks.shape} and {scores.shape}")
    k = masks.shape[0]
    colors = palette(k)
    out = img.astype(np.float64)
    for i in range(k - 1, -1, -1):  # rank 1 last, so on top
        out[masks[i]] = (1 - alpha) * out[masks[i]] + alpha * colors[i]
    out = np.round(out).astype(np.uint8)
    for i in range(k - 1, -1, -1):
        edge = masks[i] & ~ndi.binary_erosion(masks[i])
        out[edge] = colors[i]
    scale = 0.4
    row = 16
    for i in range(k):
        if masks[i].any():
            dist = ndi.distance_transform_edt(np.pad(masks[i], 1))[1:-1, 1:-1]
            r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
            _text(out, str(i + 1), (max(int(c) - 4, 0), min(int(r) + 4, out.shape[0] - 1)), (255, 255, 255),
                  scale)
    width = 104
    height = max(img.shape[0], row * (k + 1) + 4)
    canvas = np.full((height, img.shape[1] + width, 3), 255, np.uint8)
    canvas[: img.shape[0], : img.shape[1]] = out
    x0 = img.shape[1] + 6
    _text(canvas, "rank  score", (x0, row - 3), (255, 255, 255), scale)
    for i in range(k):
        y = row * (i + 1) + 2
        canvas[y: y + row - 4, x0: x0 + 12] = colors[i]
        _text(canvas, f"{i + 1:>3d}  {scores[i]:.3f}", (x0 + 16, y + row - 6), (255, 255, 255), scale)
    return canvas


def write_image(path, picture) -> None:
    """Write an ``(H, W, 3)`` uint8 RGB picture, or an ``(H, W)`` uint8/uint16 gray one (e.g. raw
    label ids), atomically (temporary file, then rename); the extension picks the format (.png)."""
    import cv2

    from bottomup.io.files import atomic_path

    arr = np.asarray(picture)
    if arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8:
        arr = arr[..., ::-1]  # OpenCV writes BGR
    elif not (arr.ndim == 2 and arr.dtype in (np.uint8, np.uint16)):
        raise ValueError(f"`picture` must be (H, W, 3) uint8 or (H, W) uint8/uint16, got {arr.dtype} "
                         f"{arr.shape}")
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(arr)):
            raise OSError(f"OpenCV could not write {path!r} (extension {os.path.splitext(path)[1]!r})")
