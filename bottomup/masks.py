"""Binary masks: COCO run-length encoding (RLE), areas, IoU, and mask <-> box helpers.

Formats used in this module
---------------------------
==========  =================================  ===============================================
thing       shape / type                       notes
==========  =================================  ===============================================
mask        (H, W) or (K, H, W) bool           any dtype accepted; nonzero is foreground
RLE         dict ``{"size": [H, W],            COCO layout: runs of the column-major
            "counts": bytes | list[int]}``     (Fortran-order) flattened mask, alternating
                                               background / foreground, starting with the
                                               background count (possibly 0); ``counts`` is
                                               the list of run lengths ("uncompressed") or
                                               COCO's LEB128-like ASCII string ("compressed")
box         (K, 4) int64 ``(r0, c0, r1, c1)``  ``(row, col)`` order, half-open like
                                               ``skimage.measure.regionprops().bbox``:
                                               rows ``r0 <= r < r1``, cols ``c0 <= c < c1``;
                                               ``bottomup.mcg.Candidates.boxes``
xyxy        (K, 4) int64 ``[x1, y1, x2, y2]``  torchvision's convention: min col, min row, max
                                               col, max row (inclusive pixel indices); made by
                                               :func:`masks_to_boxes`, converted to and from
                                               boxes only by :func:`xyxy_to_boxes` and
                                               :func:`boxes_to_xyxy`
COCO box    (K, 4) float64 ``[x, y, w, h]``    ``x = c0, y = r0, w = c1 - c0, h = r1 - r0``;
                                               made only by :func:`boxes_to_coco`
==========  =================================  ===============================================

All functions give the same numbers as ``pycocotools.mask`` (``encode``, ``decode``, ``area``,
``toBbox``, ``iou``) and are tested against it, but nothing here imports pycocotools.

References
----------
.. [1] T.-Y. Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014.
       :DOI:`10.1007/978-3-319-10602-1_48`
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit, prange

__all__ = [
    "masks_to_rle",
    "rle_to_masks",
    "rle_area",
    "rle_to_boxes",
    "rle_iou",
    "rle_counts_to_string",
    "rle_string_to_counts",
    "masks_to_boxes",
    "xyxy_to_boxes",
    "boxes_to_xyxy",
    "labels_to_boxes",
    "union_boxes",
    "boxes_to_coco",
    "coco_to_boxes",
    "box_iou",
]


# --------------------------------------------------------------------------------------------
# numba kernels (kept beside their only callers: this module is the whole "masks" stage)
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _encode_kernel(masks):
    # Run lengths of each (H, W) mask read column-major (background run first, may be 0), found
    # while reading the C-ordered stack row by row: in column-major order, pixel (r, c) follows
    # (r - 1, c), and (0, c) follows (H - 1, c - 1). Pass 1 counts the changes per column, pass 2
    # writes their column-major positions into per-column slots, already sorted.
    k, h, w = masks.shape
    n = h * w
    col = np.zeros((k, w), dtype=np.int64)
    for i in range(k):
        if masks[i, 0, 0]:
            col[i, 0] += 1
        for c in range(1, w):
            if masks[i, 0, c] != masks[i, h - 1, c - 1]:
                col[i, c] += 1
        for r in range(1, h):
            for c in range(w):
                if masks[i, r, c] != masks[i, r - 1, c]:
                    col[i, c] += 1
    offsets = np.zeros(k + 1, dtype=np.int64)
    for i in range(k):
        offsets[i + 1] = offsets[i] + col[i].sum() + 1
    counts = np.empty(offsets[k], dtype=np.int64)
    cursor = np.empty(w, dtype=np.int64)
    pos = np.empty(n + 1, dtype=np.int64)
    for i in range(k):
        n_changes = offsets[i + 1] - offsets[i] - 1
        acc = 0
        for c in range(w):
            cursor[c] = acc
            acc += col[i, c]
        if masks[i, 0, 0]:
            pos[cursor[0]] = 0
            cursor[0] += 1
        for c in range(1, w):
            if masks[i, 0, c] != masks[i, h - 1, c - 1]:
                pos[cursor[c]] = c * h
                cursor[c] += 1
        for r in range(1, h):
            for c in range(w):
                if masks[i, r, c] != masks[i, r - 1, c]:
                    pos[cursor[c]] = c * h + r
                    cursor[c] += 1
        base = offsets[i]
        prev = 0
        for j in range(n_changes):
            counts[base + j] = pos[j] - prev
            prev = pos[j]
        counts[base + n_changes] = n - prev
    return counts, offsets


@njit(cache=True)
def _compress_counts_kernel(counts):
    # COCO's variable-length code: 5 data bits per char, bit 0x20 = "more", chars offset by 48;
    # from the 4th count on, the difference to the count two places back is stored.
    n = counts.shape[0]
    out = np.empty(n * 13 + 1, dtype=np.uint8)
    p = 0
    for i in range(n):
        x = counts[i]
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift on int64, as the C code on `long`
            if c & 0x10:
                more = x != -1
            else:
                more = x != 0
            if more:
                c |= 0x20
            out[p] = c + 48
            p += 1
    return out[:p]


@njit(cache=True)
def _decompress_counts_kernel(chars):
    n = chars.shape[0]
    counts = np.empty(n, dtype=np.int64)
    m = 0
    p = 0
    while p < n:
        x = np.int64(0)
        k = 0
        more = True
        while more:
            if p >= n:
                return counts[:0], False
            c = np.int64(chars[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = (c & 0x20) != 0
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= np.int64(-1) << (5 * k)
        if m > 2:
            x += counts[m - 2]
        counts[m] = x
        m += 1
    return counts[:m], True


@njit(cache=True, parallel=True)
def _rle_intersection_kernel(starts_a, ends_a, offsets_a, starts_b, ends_b, offsets_b):
    # Intersection area of every pair of foreground-interval lists (two-pointer merge).
    na = offsets_a.shape[0] - 1
    nb = offsets_b.shape[0] - 1
    out = np.zeros((na, nb), dtype=np.int64)
    for i in prange(na):
        for j in range(nb):
            p = offsets_a[i]
            pe = offsets_a[i + 1]
            q = offsets_b[j]
            qe = offsets_b[j + 1]
            acc = 0
            while p < pe and q < qe:
                lo = max(starts_a[p], starts_b[q])
                hi = min(ends_a[p], ends_b[q])
                if hi > lo:
                    acc += hi - lo
                if ends_a[p] < ends_b[q]:
                    p += 1
                else:
                    q += 1
            out[i, j] = acc
    return out


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _as_masks(masks, name: str) -> tuple[np.ndarray, bool]:
    """Return ``(K, H, W)`` bool masks and whether the input was a single ``(H, W)`` mask."""
    if masks is None:
        raise TypeError(f"`{name}` must be an array of masks, got None")
    arr = np.asarray(masks)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(
            f"`{name}` must be a bool or numeric array of masks, got dtype {arr.dtype}; "
            "pass a (H, W) or (K, H, W) array"
        )
    if arr.dtype != bool:
        arr = arr != 0
    if arr.ndim == 2:
        return arr[None], True
    if arr.ndim == 3:
        return arr, False
    raise ValueError(f"`{name}` must be a (H, W) mask or a (K, H, W) stack, got shape {arr.shape}")


def _check_mask_stack(masks, name: str, shape=None, ref: str = "gt_masks") -> np.ndarray:
    """Return ``(K, H, W)`` bool masks; with ``shape``, they must have the ``(H, W)`` of ``ref``."""
    arr = np.asarray(masks)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"`{name}` must be a bool (K, H, W) array, got dtype {arr.dtype}")
    if arr.ndim != 3:
        raise ValueError(f"`{name}` must be a (K, H, W) stack of masks, got shape {arr.shape}")
    if shape is not None and arr.shape[1:] != tuple(shape):
        raise ValueError(
            f"`{name}` masks (shape {arr.shape[1:]}) must have the same (H, W) as "
            f"`{ref}` ({tuple(shape)})"
        )
    return arr if arr.dtype == bool else arr != 0


def _check_rle(rle, name: str) -> tuple[int, int, np.ndarray]:
    """Validate one RLE dict; return ``(H, W, counts int64)``."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise TypeError(
            f"`{name}` must be a COCO RLE dict with keys 'size' and 'counts', "
            f"got {type(rle).__name__}"
        )
    size = rle["size"]
    if len(size) != 2:
        raise ValueError(f"`{name}['size']` must be [H, W], got {size!r}")
    h, w = int(size[0]), int(size[1])
    if h < 0 or w < 0:
        raise ValueError(f"`{name}['size']` must be non-negative, got {size!r}")
    counts = rle["counts"]
    if isinstance(counts, (bytes, str)):
        counts = rle_string_to_counts(counts)
    else:
        counts = np.asarray(counts)
        if counts.ndim != 1 or not (np.issubdtype(counts.dtype, np.integer) or counts.size == 0):
            raise ValueError(
                f"`{name}['counts']` must be a 1-D list of integers or a compressed string, "
                f"got an array of shape {counts.shape} and dtype {counts.dtype}"
            )
        counts = counts.astype(np.int64)
    if counts.size and counts.min() < 0:
        raise ValueError(f"`{name}['counts']` holds negative run lengths")
    if int(counts.sum()) != h * w:
        raise ValueError(
            f"`{name}['counts']` sums to {int(counts.sum())} pixels but 'size' {[h, w]} "
            f"has {h * w}; the RLE is corrupt or belongs to another image size"
        )
    return h, w, counts


def _as_rle_list(rles, name: str) -> tuple[list[tuple[int, int, np.ndarray]], bool]:
    if isinstance(rles, dict):
        return [_check_rle(rles, name)], True
    if isinstance(rles, (str, bytes)) or not isinstance(rles, Sequence):
        raise TypeError(
            f"`{name}` must be an RLE dict or a list of RLE dicts, got {type(rles).__name__}"
        )
    return [_check_rle(r, f"{name}[{i}]") for i, r in enumerate(rles)], False


# --------------------------------------------------------------------------------------------
# RLE
# --------------------------------------------------------------------------------------------


def rle_counts_to_string(counts) -> bytes:
    """Compress uncompressed RLE counts into COCO's ASCII string.

    Parameters
    ----------
    counts : (M,) array_like of int
        Run lengths, alternating background / foreground, background first.

    Returns
    -------
    string : bytes
        The compressed form stored in COCO json files (``pycocotools`` ``_toString``).

    Examples
    --------
    >>> rle_counts_to_string([2, 3, 1, 1])
    b'231N'
    """
    arr = np.asarray(counts)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError(f"`counts` must be a 1-D sequence of integers, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    return _compress_counts_kernel(arr).tobytes()


def rle_string_to_counts(string) -> np.ndarray:
    """Decompress COCO's ASCII RLE string into run lengths.

    Parameters
    ----------
    string : bytes or str
        Compressed counts.

    Returns
    -------
    counts : (M,) ndarray of int64

    Examples
    --------
    >>> rle_string_to_counts(b'231N').tolist()
    [2, 3, 1, 1]
    """
    if isinstance(string, str):
        string = string.encode("ascii")
    if not isinstance(string, bytes):
        raise TypeError(f"`string` must be bytes or str, got {type(string).__name__}")
    chars = np.frombuffer(string, dtype=np.uint8)
    if chars.size and (chars.min() < 48 or chars.max() > 48 + 63):
        raise ValueError(
            "`string` holds characters outside COCO's RLE alphabet (chr(48)..chr(111))"
        )
    counts, ok = _decompress_counts_kernel(np.ascontiguousarray(chars))
    if not ok:
        raise ValueError("`string` ends in the middle of a run length: truncated RLE")
    return counts


def masks_to_rle(masks, *, compressed: bool = True):
    """Run-length encode binary masks as COCO does.

    Parameters
    ----------
    masks : (H, W) or (K, H, W) array_like
        Binary masks; nonzero is foreground.
    compressed : bool, optional
        True (default) gives ``counts`` as COCO's compressed ``bytes`` (what
        ``pycocotools.mask.encode`` returns); False gives the plain list of run lengths.

    Returns
    -------
    rle : dict or list of dict
        ``{"size": [H, W], "counts": ...}``; a list of ``K`` dicts for a ``(K, H, W)`` input.

    Notes
    -----
    The mask is flattened column-major. The first count is the number of leading background
    pixels (0 when the first pixel is foreground). A numba kernel reads the C-ordered stack in
    place, row by row, twice (count the run boundaries of each column, then write them).

    Examples
    --------
    >>> m = np.array([[0, 1], [0, 1]], bool)
    >>> masks_to_rle(m, compressed=False)
    {'size': [2, 2], 'counts': [2, 2]}
    """
    arr, single = _as_masks(masks, "masks")
    k, h, w = arr.shape
    out = []
    if h * w == 0:
        per_mask = [np.zeros(1, dtype=np.int64) for _ in range(k)]
    else:
        counts, offsets = _encode_kernel(np.ascontiguousarray(arr))
        per_mask = [counts[offsets[i] : offsets[i + 1]] for i in range(k)]
    for counts in per_mask:
        if compressed:
            c = _compress_counts_kernel(np.ascontiguousarray(counts)).tobytes()
        else:
            c = counts.tolist()
        out.append({"size": [h, w], "counts": c})
    return out[0] if single else out


def rle_to_masks(rles, *, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Decode COCO RLEs into binary masks.

    Parameters
    ----------
    rles : dict or sequence of dict
        One RLE or a list of them (all of the same size), compressed or not.
    shape : (H, W) tuple, optional
        Size to use when ``rles`` is an empty list (the output is then ``(0, H, W)``).

    Returns
    -------
    masks : (H, W) or (K, H, W) ndarray of bool
        ``(H, W)`` for a single dict.

    Raises
    ------
    ValueError
        If the RLEs have different sizes or counts that do not cover ``H * W`` pixels.
    """
    items, single = _as_rle_list(rles, "rles")
    if not items:
        if shape is None:
            raise ValueError("`rles` is empty: pass `shape=(H, W)` to get a (0, H, W) array")
        return np.zeros((0, int(shape[0]), int(shape[1])), dtype=bool)
    h, w = items[0][0], items[0][1]
    for i, (hi, wi, _) in enumerate(items):
        if (hi, wi) != (h, w):
            raise ValueError(
                f"`rles[{i}]` has size {[hi, wi]} but `rles[0]` has {[h, w]}; decode them apart"
            )
    out = np.empty((len(items), w, h), dtype=bool)
    for i, (_, _, counts) in enumerate(items):
        values = np.zeros(counts.size, dtype=bool)
        values[1::2] = True
        out[i] = np.repeat(values, counts).reshape(w, h)
    out = out.transpose(0, 2, 1)
    return np.ascontiguousarray(out[0]) if single else np.ascontiguousarray(out)


def rle_area(rles):
    """Count foreground pixels of COCO RLEs without decoding them.

    Parameters
    ----------
    rles : dict or sequence of dict

    Returns
    -------
    area : int or (K,) ndarray of int64
    """
    items, single = _as_rle_list(rles, "rles")
    areas = np.array([int(c[1::2].sum()) for _, _, c in items], dtype=np.int64)
    return int(areas[0]) if single else areas


def _foreground_intervals(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ends = np.cumsum(counts)
    n_fg = counts.size // 2
    starts = ends[0 : 2 * n_fg : 2]
    stops = ends[1 : 2 * n_fg : 2]
    keep = stops > starts
    return starts[keep], stops[keep]


def rle_to_boxes(rles) -> np.ndarray:
    """Tight bounding boxes of COCO RLEs, in ``(r0, c0, r1, c1)`` half-open form.

    Parameters
    ----------
    rles : dict or sequence of dict

    Returns
    -------
    boxes : (4,) or (K, 4) ndarray of int64
        ``(0, 0, 0, 0)`` for an empty mask (as ``pycocotools.mask.toBbox`` gives ``[0, 0, 0, 0]``).
        Use :func:`boxes_to_coco` for ``[x, y, w, h]``.
    """
    items, single = _as_rle_list(rles, "rles")
    out = np.zeros((len(items), 4), dtype=np.int64)
    for i, (h, _, counts) in enumerate(items):
        starts, stops = _foreground_intervals(counts)
        if starts.size == 0:
            continue
        last = stops - 1
        c_first, r_first = np.divmod(starts, h)
        c_last, r_last = np.divmod(last, h)
        spans = c_last > c_first  # a run crossing a column covers the last and first rows
        r0 = 0 if spans.any() else int(r_first.min())
        r1 = h if spans.any() else int(r_last.max()) + 1
        out[i] = (r0, int(c_first.min()), r1, int(c_last.max()) + 1)
    return out[0] if single else out


def _cat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, np.int64)


def rle_iou(dt, gt, iscrowd=None) -> np.ndarray:
    """Intersection over union of every pair of RLE masks, without decoding them.

    Parameters
    ----------
    dt : dict or sequence of dict
        ``M`` detection RLEs.
    gt : dict or sequence of dict
        ``N`` ground-truth RLEs of the same size.
    iscrowd : (N,) array_like of bool, optional
        For a crowd ground truth the union is replaced by the detection's area
        (COCO's rule: a detection may match any part of a crowd region).

    Returns
    -------
    iou : (M, N) ndarray of float64
        0 where the union is empty (as ``pycocotools.mask.iou``).

    Raises
    ------
    ValueError
        If sizes differ (pycocotools silently returns -1 there) or ``iscrowd`` has the wrong length.

    Notes
    -----
    Each mask becomes its sorted foreground intervals of the column-major index; each pair is a
    two-pointer merge, ``O(runs_a + runs_b)``, in a parallel numba kernel.
    """
    d_items, _ = _as_rle_list(dt, "dt")
    g_items, _ = _as_rle_list(gt, "gt")
    sizes = {(h, w) for h, w, _ in d_items + g_items}
    if len(sizes) > 1:
        raise ValueError(f"`dt` and `gt` must all have one size, got sizes {sorted(sizes)}")
    crowd = np.zeros(len(g_items), dtype=bool)
    if iscrowd is not None:
        crowd = np.asarray(iscrowd).astype(bool).ravel()
        if crowd.size != len(g_items):
            raise ValueError(
                f"`iscrowd` must have one entry per `gt` ({len(g_items)}), got {crowd.size}"
            )

    def pack(items):
        starts, stops, offsets = [], [], [0]
        for _, _, counts in items:
            s, e = _foreground_intervals(counts)
            starts.append(s)
            stops.append(e)
            offsets.append(offsets[-1] + s.size)
        return (
            np.ascontiguousarray(_cat(starts), dtype=np.int64),
            np.ascontiguousarray(_cat(stops), dtype=np.int64),
            np.asarray(offsets, dtype=np.int64),
        )

    sa, ea, oa = pack(d_items)
    sb, eb, ob = pack(g_items)
    inter = _rle_intersection_kernel(sa, ea, oa, sb, eb, ob).astype(np.float64)
    area_d = np.array([c[1::2].sum() for _, _, c in d_items], dtype=np.float64)
    area_g = np.array([c[1::2].sum() for _, _, c in g_items], dtype=np.float64)
    return _iou(inter, area_d, area_g, crowd)


def _iou(inter, area_a, area_b, crowd=None) -> np.ndarray:
    """``(M, N)`` IoU from intersections and areas, 0 where the union is empty; for a ``crowd``
    column the union is the area of ``a`` (COCO)."""
    union = area_a[:, None] + area_b[None, :] - inter
    if crowd is not None:
        union = np.where(crowd[None, :], area_a[:, None], union)
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _mask_overlaps(a, b, valid, chunk_bytes: int = 64 * 2**20):
    """Intersections ``(M, N)`` and areas ``(M,)``, ``(N,)`` (float64) of validated bool masks
    ``a`` and ``b`` on the ``valid`` pixels: one matrix product per chunk of ``a`` (float32, exact
    below ``2**24`` pixels; float64 beyond), so memory stays near ``chunk_bytes``."""
    h, w = valid.shape
    m, n, p = a.shape[0], b.shape[0], h * w
    dtype = np.float32 if p < 2**24 else np.float64
    b_flat = (b & valid).reshape(n, p)
    rhs = np.empty((p, n + 1), dtype=dtype)
    rhs[:, :n] = b_flat.T
    rhs[:, n] = valid.ravel()
    a_flat = a.reshape(m, p)
    step = max(1, chunk_bytes // (p * np.dtype(dtype).itemsize))
    counts = np.empty((m, n + 1), dtype=np.float64)
    for i in range(0, m, step):
        counts[i : i + step] = a_flat[i : i + step].astype(dtype) @ rhs
    return counts[:, :n], counts[:, n], b_flat.sum(axis=1).astype(np.float64)


# --------------------------------------------------------------------------------------------
# boxes
# --------------------------------------------------------------------------------------------


def masks_to_boxes(masks) -> np.ndarray:
    """Tight bounding boxes of binary masks, xyxy as ``torchvision.ops.masks_to_boxes``.

    Parameters
    ----------
    masks : (H, W) or (K, H, W) array_like
        Nonzero is foreground; every mask must have a pixel.

    Returns
    -------
    xyxy : (4,) or (K, 4) ndarray of int64
        ``[x1, y1, x2, y2]``: min col, min row, max col, max row (inclusive pixel indices).
        :func:`xyxy_to_boxes` gives the half-open ``(r0, c0, r1, c1)`` boxes the rest of this
        module (and :class:`bottomup.mcg.Candidates`) uses; :func:`rle_to_boxes` gets those
        straight from RLEs, with ``(0, 0, 0, 0)`` for an empty mask.

    Raises
    ------
    ValueError
        If a mask is empty (it has no box), naming the first ones.

    See Also
    --------
    deep.ops.masks_to_boxes : the same boxes of torch masks (float32, on their device).

    Examples
    --------
    >>> m = np.zeros((4, 5), bool); m[1:3, 2:5] = True
    >>> masks_to_boxes(m).tolist()
    [2, 1, 4, 2]
    """
    arr, single = _as_masks(masks, "masks")
    rows = arr.any(axis=2)  # (K, H)
    cols = arr.any(axis=1)  # (K, W)
    empty = ~rows.any(axis=1)
    if empty.any():
        bad = np.flatnonzero(empty)[:10].tolist()
        raise ValueError(f"`masks` {bad} are empty and have no box; drop them first (or use "
                         "rle_to_boxes, which gives (0, 0, 0, 0) for them)")
    h, w = arr.shape[1], arr.shape[2]
    y1 = np.argmax(rows, axis=1)
    y2 = h - 1 - np.argmax(rows[:, ::-1], axis=1)
    x1 = np.argmax(cols, axis=1)
    x2 = w - 1 - np.argmax(cols[:, ::-1], axis=1)
    xyxy = np.stack([x1, y1, x2, y2], axis=1).astype(np.int64)
    return xyxy[0] if single else xyxy


def xyxy_to_boxes(xyxy) -> np.ndarray:
    """Convert inclusive xyxy boxes (:func:`masks_to_boxes`) to half-open ``(r0, c0, r1, c1)``.

    Parameters
    ----------
    xyxy : (4,) or (K, 4) array_like of int
        ``[x1, y1, x2, y2]``, inclusive pixel indices.

    Returns
    -------
    boxes : (4,) or (K, 4) ndarray of int64
        ``(y1, x1, y2 + 1, x2 + 1)``.

    Examples
    --------
    >>> xyxy_to_boxes([2, 1, 4, 2]).tolist()
    [1, 2, 3, 5]
    """
    b = _as_boxes(xyxy, "xyxy")
    if not np.issubdtype(b.dtype, np.integer):
        raise TypeError(f"`xyxy` must hold integer pixel indices, got dtype {b.dtype}")
    out = np.stack([b[:, 1], b[:, 0], b[:, 3] + 1, b[:, 2] + 1], axis=1).astype(np.int64)
    return out[0] if np.ndim(xyxy) == 1 else out


def boxes_to_xyxy(boxes) -> np.ndarray:
    """Convert half-open ``(r0, c0, r1, c1)`` boxes to inclusive xyxy (the torchvision layout).

    Parameters
    ----------
    boxes : (4,) or (K, 4) array_like of int
        Non-empty boxes (``r1 > r0``, ``c1 > c0``).

    Returns
    -------
    xyxy : (4,) or (K, 4) ndarray of int64
        ``[c0, r0, c1 - 1, r1 - 1]``; add 1 to ``x2, y2`` for the continuous box that covers
        the last pixel (as ``deep.ops.roi_align`` with ``aligned=True`` reads boxes).

    Examples
    --------
    >>> boxes_to_xyxy([1, 2, 3, 5]).tolist()
    [2, 1, 4, 2]
    """
    b = _as_boxes(boxes, "boxes")
    if not np.issubdtype(b.dtype, np.integer):
        raise TypeError(f"`boxes` must hold integer pixel indices, got dtype {b.dtype}")
    out = np.stack([b[:, 1], b[:, 0], b[:, 3] - 1, b[:, 2] - 1], axis=1).astype(np.int64)
    return out[0] if np.ndim(boxes) == 1 else out


def labels_to_boxes(labels, n_labels: int | None = None) -> np.ndarray:
    """Half-open ``(r0, c0, r1, c1)`` box of every label of a label image.

    Parameters
    ----------
    labels : (H, W) array_like of int
        Labels ``0..n_labels-1``.
    n_labels : int, optional
        Number of labels (default ``labels.max() + 1``).

    Returns
    -------
    boxes : (n_labels, 4) ndarray of int64
        ``skimage.measure.regionprops(labels + 1)[l].bbox`` for every label ``l``;
        ``(H, W, 0, 0)`` for a label without pixels.

    Examples
    --------
    >>> labels_to_boxes([[0, 0, 1], [2, 2, 1]]).tolist()
    [[0, 0, 1, 2], [0, 2, 2, 3], [1, 0, 2, 2]]
    """
    lab = np.asarray(labels)
    if not np.issubdtype(lab.dtype, np.integer):
        raise TypeError(f"`labels` must be an integer array, got dtype {lab.dtype}")
    if lab.ndim != 2:
        raise ValueError(f"`labels` must be 2-D (H, W), got shape {lab.shape}")
    h, w = lab.shape
    n = int(lab.max()) + 1 if n_labels is None else int(n_labels)
    flat = lab.ravel()
    rr = np.broadcast_to(np.arange(h)[:, None], (h, w)).ravel()
    cc = np.broadcast_to(np.arange(w)[None, :], (h, w)).ravel()
    box = np.empty((n, 4), np.int64)
    box[:, 0] = h
    box[:, 1] = w
    box[:, 2:] = 0
    np.minimum.at(box[:, 0], flat, rr)
    np.minimum.at(box[:, 1], flat, cc)
    np.maximum.at(box[:, 2], flat, rr + 1)
    np.maximum.at(box[:, 3], flat, cc + 1)
    return box


def union_boxes(boxes, sets) -> np.ndarray:
    """Box of each union of boxes: row ``k`` bounds ``boxes[sets[k]]``.

    Parameters
    ----------
    boxes : (L, 4) array_like of int
        Half-open ``(r0, c0, r1, c1)`` boxes, e.g. of the leaves (:func:`labels_to_boxes`).
    sets : (K, L) array_like of bool
        ``sets[k, l]``: box ``l`` is in union ``k`` (e.g. ``Candidates.leaf_sets``).

    Returns
    -------
    boxes : (K, 4) ndarray of int64
        Half-open ``(r0, c0, r1, c1)``; an empty row gives ``(B, B, 0, 0)`` with
        ``B = iinfo(int64).max // 4``.

    Examples
    --------
    >>> union_boxes([[0, 0, 1, 2], [0, 2, 2, 3], [1, 0, 2, 2]], [[True, False, True]]).tolist()
    [[0, 0, 2, 2]]
    """
    box = np.asarray(boxes, np.int64).reshape(-1, 4)
    sets = np.asarray(sets, bool)
    if sets.ndim != 2 or sets.shape[1] != box.shape[0]:
        raise ValueError(f"`sets` must be (K, {box.shape[0]}) bool (one column per box), "
                         f"got shape {sets.shape}")
    big = np.iinfo(np.int64).max // 4
    return np.stack([
        np.where(sets, box[:, 0], big).min(axis=1, initial=big),
        np.where(sets, box[:, 1], big).min(axis=1, initial=big),
        np.where(sets, box[:, 2], 0).max(axis=1, initial=0),
        np.where(sets, box[:, 3], 0).max(axis=1, initial=0),
    ], axis=1)


def _as_boxes(boxes, name: str) -> np.ndarray:
    arr = np.asarray(boxes)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)):
        raise TypeError(f"`{name}` must be a numeric (K, 4) array, got dtype {arr.dtype}")
    if arr.ndim == 1 and arr.shape[0] == 4:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"`{name}` must have shape (K, 4), got {arr.shape}")
    return arr


def boxes_to_coco(boxes) -> np.ndarray:
    """Convert ``(r0, c0, r1, c1)`` boxes to COCO ``[x, y, w, h]``.

    Parameters
    ----------
    boxes : (K, 4) array_like

    Returns
    -------
    coco : (K, 4) ndarray of float64

    Examples
    --------
    >>> boxes_to_coco([[1, 2, 3, 5]]).tolist()
    [[2.0, 1.0, 3.0, 2.0]]
    """
    b = _as_boxes(boxes, "boxes").astype(np.float64)
    return np.stack([b[:, 1], b[:, 0], b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]], axis=1)


def coco_to_boxes(coco) -> np.ndarray:
    """Convert COCO ``[x, y, w, h]`` boxes to ``(r0, c0, r1, c1)``.

    Parameters
    ----------
    coco : (K, 4) array_like

    Returns
    -------
    boxes : (K, 4) ndarray of float64
    """
    b = _as_boxes(coco, "coco").astype(np.float64)
    return np.stack([b[:, 1], b[:, 0], b[:, 1] + b[:, 3], b[:, 0] + b[:, 2]], axis=1)


def box_iou(boxes_a, boxes_b) -> np.ndarray:
    """Intersection over union of every pair of ``(r0, c0, r1, c1)`` boxes.

    Parameters
    ----------
    boxes_a : (M, 4) array_like
    boxes_b : (N, 4) array_like

    Returns
    -------
    iou : (M, N) ndarray of float64
        Areas are ``(r1 - r0) * (c1 - c0)``: for integer half-open pixel boxes this is the pixel
        count, the same figure as the VOC ``+1`` convention on inclusive boxes and as COCO's
        ``bbIou`` on ``[x, y, w, h]``. 0 where the union is empty.
    """
    a = _as_boxes(boxes_a, "boxes_a").astype(np.float64)
    b = _as_boxes(boxes_b, "boxes_b").astype(np.float64)
    for name, x in (("boxes_a", a), ("boxes_b", b)):
        if np.any(x[:, 2] < x[:, 0]) or np.any(x[:, 3] < x[:, 1]):
            raise ValueError(f"`{name}` must satisfy r1 >= r0 and c1 >= c0 (row, col half-open)")
    return _iou(*_box_overlaps(a, b))


def _box_overlaps(a, b):
    """Intersections ``(M, N)`` and areas ``(M,)``, ``(N,)`` of validated float64 boxes."""
    dr = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    dc = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(dr, 0, None) * np.clip(dc, 0, None)
    return inter, (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
