"""Image reading into the image contract of DESIGN.md, safe on hostile files.

The header is read first (Pillow, which parses headers without decoding), so that a file that
claims too many pixels is refused before anything is decoded; the pixels are then decoded by
OpenCV. What each kind of file becomes is listed in :func:`read_image` and ``docs/input-files.md``.
"""

from __future__ import annotations

import os
import re

import numpy as np

from bottomup.io._guard import MAX_PIXELS_ENV, PixelLimitError, open_regular, resolve_max_pixels
from bottomup.validate import check_image

__all__ = ["read_image"]

#: Bytes a file may have per allowed pixel (32-bit float RGBA uncompressed needs 16), plus 16 MiB
#: for metadata (EXIF, ICC profiles): a larger file is refused before it is read into memory.
_BYTES_PER_PIXEL = 32
_BYTES_SLACK = 1 << 24


def _probe(f):
    """``(format, width, height)`` from the header, or None when Pillow does not know the format."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd headers (corrupt EXIF ...)
            with Image.open(f) as im:
                return im.format, int(im.size[0]), int(im.size[1])
    except Image.DecompressionBombError as exc:  # Pillow's own cap (2 x its MAX_IMAGE_PIXELS)
        return "?", exc, None
    except Exception:  # noqa: BLE001 - Pillow raises many types on junk; OpenCV gets a try
        return None
    finally:
        f.seek(0)


def _jpeg_complete(data: bytes) -> bool:
    """True when a JPEG stream reaches its end-of-image marker after the first scan.

    OpenCV before 5 decodes a truncated JPEG into a partly grey image with only a warning; the
    entropy-coded data stuffs every 0xFF byte, so an EOI (FF D9) after the first top-level
    start-of-scan marks a complete stream. Markers are walked by their lengths, so an EXIF
    thumbnail (a JPEG inside APP1) does not count.
    """
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return False
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:  # start of scan
            return data.find(b"\xff\xd9", i + 2) >= 0
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:  # markers without a length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return False


def _decode(path: str, *, what: str, max_pixels: int, flags: int) -> np.ndarray:
    """Decode an image file with ``cv2.imdecode(flags)`` after the header and size checks."""
    import cv2

    with open_regular(path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise ValueError(f"{what} file {path!r} is empty (0 bytes); expected an image")
        if size > _BYTES_PER_PIXEL * max_pixels + _BYTES_SLACK:
            raise PixelLimitError(
                f"{what} file {path!r} is {size} bytes, more than an image of at most {max_pixels} "
                f"pixels needs; refused before reading it (set max_pixels or ${MAX_PIXELS_ENV})"
            )
        probe = _probe(f)
        if probe is not None and probe[0] == "?":  # over Pillow's own cap: its message has the count
            fmt = None
            found = re.search(r"\((\d+) pixels\)", str(probe[1]))
            if found and int(found.group(1)) > max_pixels:
                raise PixelLimitError(
                    f"{what} file {path!r}: its header claims {found.group(1)} pixels, more than the "
                    f"limit of {max_pixels}; refused before decoding (a decompression bomb?). Pass "
                    f"max_pixels= or set ${MAX_PIXELS_ENV} to allow larger images"
                )
        elif probe is not None:
            fmt, w, h = probe
            if w * h > max_pixels:
                raise PixelLimitError(
                    f"{what} file {path!r}: its {fmt} header claims {w} x {h} = {w * h} pixels, more "
                    f"than the limit of {max_pixels}; refused before decoding (a decompression bomb?). "
                    f"Pass max_pixels= or set ${MAX_PIXELS_ENV} to allow larger images"
                )
        else:
            fmt = None
        data = np.frombuffer(f.read(), dtype=np.uint8)
    try:
        arr = cv2.imdecode(data, flags)
    except cv2.error as exc:  # e.g. OpenCV's own pixel cap, on a format Pillow does not know
        msg = str(exc).strip().splitlines()[-1]
        raise ValueError(f"cannot decode {what} file {path!r}: OpenCV refused it ({msg})") from None
    if arr is None or arr.size == 0:
        if fmt is None:
            head = bytes(data[:16])
            raise ValueError(f"cannot decode {what} file {path!r}: not an image format OpenCV or "
                             f"Pillow knows (it starts with {head!r})")
        raise ValueError(f"cannot decode {what} file {path!r}: its header says {fmt}"
                         + (f" {w} x {h}" if w else "") + ", but the data is truncated or corrupt")
    if fmt == "JPEG" and not _jpeg_complete(bytes(data)):
        raise ValueError(f"cannot decode {what} file {path!r}: the JPEG data is truncated (no "
                         "end-of-image marker)")
    if arr.shape[0] * arr.shape[1] > max_pixels:  # a format whose header Pillow could not read
        raise PixelLimitError(f"{what} file {path!r} decodes to {arr.shape[1]} x {arr.shape[0]} "
                              f"pixels, more than the limit of {max_pixels}")
    return arr


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file into the pipeline contract.

    Parameters
    ----------
    path : str or path-like
        Any format OpenCV reads (PNG, JPEG, TIFF, BMP, WebP, PPM/PGM, GIF ...), 8 or 16 bit,
        gray, RGB, RGBA or CMYK.
    max_pixels : int, optional
        Refuse an image whose header claims more pixels (width x height), before decoding it.
        Default ``$BOTTOMUP_MAX_IMAGE_PIXELS`` if set, else 89,478,485 (Pillow's limit).

    Returns
    -------
    image : (H, W, 3) ndarray of float64
        RGB in [0, 1]: 8-bit values / 255, 16-bit values / 65535 (full precision kept);
        grayscale replicated to three channels; alpha dropped (not composited); CMYK JPEG
        converted to RGB by the decoder (libjpeg, no colour profile); EXIF orientation applied
        (as ``cv2.imread`` and ``PIL.ImageOps.exif_transpose`` do), so the array is upright as
        viewers show it; an animated GIF gives its first frame.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    PermissionError
        If it may not be read.
    PixelLimitError
        (a ``ValueError``) If the header claims more than ``max_pixels`` pixels.
    ValueError
        If it is empty, not a regular file (directory, FIFO ...), truncated or not an image;
        the message names the file, says what was expected and what came.
    """
    import cv2

    path = os.fspath(path)
    limit = resolve_max_pixels(max_pixels)
    # ANYCOLOR | ANYDEPTH: gray stays gray, 16 bit stays 16 bit, alpha is dropped, and (unlike
    # IMREAD_UNCHANGED) the EXIF orientation is applied. Same pixels as IMREAD_UNCHANGED otherwise.
    arr = _decode(path, what="image", max_pixels=limit, flags=cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
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
