"""Builders of hostile input files (issue 21, item 4), made in a temporary folder, never committed.

``HOSTILE`` lists ``(file name, builder, reader, expected exception, message pattern)``; the tests
run each reader on each file, and ``python tests/hostile_files.py`` prints the table of what each
file gets (for the docs and the closing note).
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np

# --- images -----------------------------------------------------------------------------------


def _pil_bytes(arr, fmt, **kw):
    from PIL import Image

    buf = io.BytesIO()
    (arr if isinstance(arr, Image.Image) else Image.fromarray(arr)).save(buf, fmt, **kw)
    return buf.getvalue()


def noise(h=24, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def jpeg_bytes(arr=None):
    return _pil_bytes(noise() if arr is None else arr, "JPEG", quality=90)


def png_bytes(arr=None):
    return _pil_bytes(noise() if arr is None else arr, "PNG")


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width, height, idat=None):
    """A PNG whose IHDR claims ``width x height`` 8-bit RGB; IDAT holds ``idat`` (default: 100 zeros)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\0" * 100) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def png_bomb(side):
    """A real decompression bomb: a consistent side x side gray PNG of zeros, a few kB on disk."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    z = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def exif_rotated_jpeg(orientation=6):
    """A 20x30 JPEG, white block in its stored top-left corner, EXIF orientation ``orientation``."""
    from PIL import Image

    arr = np.zeros((20, 30, 3), np.uint8)
    arr[:6, :6] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _pil_bytes(arr, "JPEG", quality=95, exif=exif.tobytes())


def cmyk_jpeg(arr=None):
    from PIL import Image

    return _pil_bytes(Image.fromarray(noise() if arr is None else arr).convert("CMYK"), "JPEG", quality=95)


def animated_gif(colors=(30, 220)):
    from PIL import Image

    frames = [Image.fromarray(np.full((10, 12, 3), c, np.uint8)) for c in colors]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buf.getvalue()


def png16_bytes(arr):
    import cv2

    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return buf.tobytes()


# --- MAT / NPZ --------------------------------------------------------------------------------


def mat_bytes(variables, compress=True):
    import scipy.io as sio

    buf = io.BytesIO()
    sio.savemat(buf, variables, do_compression=compress)
    return buf.getvalue()


def gt_cell(segs, bdrys=None):
    cell = np.empty((1, len(segs)), dtype=object)
    for k, s in enumerate(segs):
        b = np.zeros(np.shape(s), np.uint8) if bdrys is None else bdrys[k]
        cell[0, k] = {"Segmentation": s, "Boundaries": b}
    return cell


def small_gt():
    seg = np.ones((4, 5), np.uint16)
    seg[:, 3:] = 2
    return {"groundTruth": gt_cell([seg, seg])}


def patch_dims(raw, old, new):
    """Replace the first int32 dims sub-element ``old`` by ``new`` in an uncompressed MAT file."""
    tag = struct.pack("<II", 5, 4 * len(old)) + struct.pack(f"<{len(old)}i", *old)
    i = raw.find(tag)
    assert i >= 0, "dims not found"
    return raw[:i + 8] + struct.pack(f"<{len(new)}i", *new) + raw[i + 8 + 4 * len(new):]


def mat_claiming_cells(n):
    """A ground-truth MAT whose cell array claims 1 x n annotators (it holds two)."""
    return patch_dims(mat_bytes(small_gt(), compress=False), (1, 2), (1, n))


def mat_ucm2_claiming(h, w):
    """A ucm2 MAT whose 5x7 array claims h x w (compressed again, as savemat writes it)."""
    raw = patch_dims(mat_bytes({"ucm2": np.zeros((5, 7))}, compress=False), (5, 7), (h, w))
    body = raw[128:]
    return raw[:128] + struct.pack("<II", 15, len(zlib.compress(body))) + zlib.compress(body)


def npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def npz_claiming(shape):
    """An .npz whose ``ucm2.npy`` header claims ``shape`` float64 (with 8 bytes of data)."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ucm2.npy", _npy_with_header(shape))
    return buf.getvalue()


def _npy_with_header(shape):
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return out.getvalue() + b"\0" * 8


def half(b):
    return b[: len(b) // 2]


# --- the table ----------------------------------------------------------------------------------

HOSTILE_IMAGES = [
    # name, bytes builder, expected exception name, message pattern
    ("empty.jpg", lambda: b"", "ValueError", "empty \\(0 bytes\\)"),
    ("truncated.jpg", lambda: half(jpeg_bytes()), "ValueError", "truncated or corrupt|truncated"),
    ("truncated.png", lambda: half(png_bytes()), "ValueError", "truncated or corrupt"),
    ("text.jpg", lambda: b"hello, I am a text file\n" * 4, "ValueError", "not an image format.*hello"),
    ("bomb.png", lambda: png_claiming(40000, 40000), "PixelLimitError", "1600000000 pixels.*before decoding"),
    ("bomb20k.png", lambda: png_claiming(20000, 20000), "PixelLimitError",
     "400000000 pixels.*before decoding"),
    ("bomb.jpg", lambda: _jpeg_claiming(60000, 60000), "PixelLimitError",
     "3600000000 pixels.*before decoding"),
]


def _jpeg_claiming(w, h):
    """A valid small JPEG whose SOF0 header is patched to claim ``w x h``."""
    b = bytearray(jpeg_bytes())
    i = b.find(b"\xff\xc0")
    b[i + 5:i + 9] = struct.pack(">HH", h, w)
    return bytes(b)


HOSTILE_UCM2 = [
    ("empty.mat", lambda: b"", "ValueError", "empty \\(0 bytes\\)"),
    ("junk.mat", lambda: b"MATLAB? no." * 20, "ValueError", "cannot read ucm2 file"),
    ("truncated.mat", lambda: half(mat_bytes({"ucm2": np.random.default_rng(0).random((41, 61))})),
     "ValueError", "not a valid MATLAB file|cannot read"),
    ("other-var.mat", lambda: mat_bytes({"u": np.zeros((5, 7))}), "ValueError", "no variable `ucm2`"),
    ("string.mat", lambda: mat_bytes({"ucm2": "not numbers"}), "ValueError", "numeric|2-D"),
    ("nan.mat", lambda: mat_bytes({"ucm2": np.full((5, 7), np.nan)}), "ValueError", "NaN"),
    ("even.mat", lambda: mat_bytes({"ucm2": np.zeros((4, 6))}), "ValueError", "double-size"),
    ("claims-huge.mat", lambda: mat_ucm2_claiming(80001, 80001), "PixelLimitError",
     "80001 x 80001.*refused before reading"),
    ("empty.npz", lambda: b"", "ValueError", "empty|not a valid .npz"),
    ("junk.npz", lambda: b"PK\x03\x04" + b"\x00" * 40, "ValueError", "not a valid .npz"),
    ("truncated.npz", lambda: half(npz_bytes(ucm2=np.random.default_rng(0).random((41, 61)))),
     "ValueError", "not a valid .npz|cannot read"),
    ("other-key.npz", lambda: npz_bytes(u=np.zeros((5, 7))), "ValueError", "no array `ucm2`"),
    ("pickled.npz", lambda: npz_bytes(ucm2=np.array([{"a": 1}], dtype=object)), "ValueError",
     "Python objects"),
    ("claims-huge.npz", lambda: npz_claiming((80001, 80001)), "PixelLimitError",
     "80001, 80001.*refused before reading"),
    ("truncated16.png", lambda: half(png16_bytes(np.zeros((9, 11), np.uint16))), "ValueError",
     "truncated or corrupt"),
    ("bomb.png", lambda: png_claiming(40000, 40000), "PixelLimitError", "before decoding"),
]

HOSTILE_GT = [
    ("empty.mat", lambda: b"", "ValueError", "empty \\(0 bytes\\)"),
    ("text.mat", lambda: b"groundTruth = {}\n" * 10, "ValueError", "cannot read ground-truth file"),
    ("truncated.mat", lambda: half(mat_bytes(small_gt())), "ValueError",
     "not a valid MATLAB file|cannot read"),
    ("no-gt.mat", lambda: mat_bytes({"seg": np.zeros((4, 5))}), "ValueError", "no variable `groundTruth`"),
    ("numeric-gt.mat", lambda: mat_bytes({"groundTruth": np.zeros((4, 5))}), "ValueError",
     "cell array of structs"),
    ("no-boundaries.mat",
     lambda: mat_bytes({"groundTruth": np.array([[{"Segmentation": np.ones((4, 5), np.uint16)}]],
                                                dtype=object)}),
     "ValueError", "annotator 0 has no `Boundaries`"),
    ("shapes-differ.mat",
     lambda: mat_bytes({"groundTruth": gt_cell([np.ones((4, 5), np.uint16), np.ones((4, 6), np.uint16)])}),
     "ValueError", "annotator 1 has Segmentation \\(4, 6\\)"),
    ("3d-seg.mat", lambda: mat_bytes({"groundTruth": gt_cell([np.ones((2, 3, 4), np.uint16)],
                                                             [np.ones((2, 3, 4))])}),
     "ValueError", "non-empty 2-D numeric array, got shape \\(2, 3, 4\\)"),
    ("claims-2e9-cells.mat", lambda: mat_claiming_cells(2_000_000_000), "PixelLimitError",
     "1 x 2000000000.*refused before reading"),
]


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def table(tmp) -> list[tuple[str, str, str, str]]:
    """Run every reader on every hostile file under ``tmp``: ``(reader, file, exception, message)``."""
    from bottomup.io import read_bsds_gt, read_image, read_ucm2

    rows = []
    for reader, cases, sub in ((read_image, HOSTILE_IMAGES, "img"), (read_ucm2, HOSTILE_UCM2, "ucm2"),
                               (read_bsds_gt, HOSTILE_GT, "gt")):
        d = os.path.join(tmp, sub)
        os.makedirs(d, exist_ok=True)
        for name, build, _, _ in cases:
            path = write(os.path.join(d, name), build())
            try:
                reader(path)
                rows.append((reader.__name__, name, "(no error)", ""))
            except Exception as exc:  # noqa: BLE001
                rows.append((reader.__name__, name, type(exc).__name__, str(exc).replace(tmp, "<tmp>")))
    return rows


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for reader, name, exc, msg in table(tmp):
            print(f"| `{reader}` | `{name}` | `{exc}` | {msg} |")
