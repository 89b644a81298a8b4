"""Guards shared by the file readers: a pixel limit, regular files only, MAT/NPZ headers read first.

Every reader opens its file here, so that a hostile file (a FIFO that would block, a directory, a
header that claims 40000 x 40000 pixels, a MAT cell that claims two billion entries) is refused
before anything large is allocated. See ``docs/input-files.md``.
"""

from __future__ import annotations

import contextlib
import os
import stat
import struct
import zlib

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "PixelLimitError",
    "array_limit",
    "check_mat",
    "check_npy_member",
    "open_regular",
    "resolve_max_pixels",
]

#: Default pixel limit of an image (Pillow's ``Image.MAX_IMAGE_PIXELS``: 1 GiB / 4 / 3 ~ 89.5 Mpx).
DEFAULT_MAX_PIXELS = 89_478_485
#: Environment variable that overrides the default limit (read at each call; workers inherit it).
MAX_PIXELS_ENV = "BOTTOMUP_MAX_IMAGE_PIXELS"


class PixelLimitError(ValueError):
    """A file holds (or claims to hold) more pixels or array elements than the pixel limit allows."""


def resolve_max_pixels(max_pixels=None) -> int:
    """The pixel limit: ``max_pixels`` if given, else ``$BOTTOMUP_MAX_IMAGE_PIXELS``, else the default."""
    source = "`max_pixels`"
    if max_pixels is None:
        env = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not env:
            return DEFAULT_MAX_PIXELS
        source = f"${MAX_PIXELS_ENV}"
        try:
            max_pixels = int(env.replace("_", ""))
        except ValueError:
            raise ValueError(f"{source} must be a positive integer, got {env!r}") from None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"{source} must be a positive integer, got {max_pixels!r}")
    return max_pixels


def array_limit(max_pixels: int) -> int:
    """Most elements one array of a ucm2 or ground-truth file may hold: ``9 * max_pixels``.

    A ucm2 of an (H, W) image has (2H+1)(2W+1) <= 9 H W elements.
    """
    return 9 * max_pixels


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


@contextlib.contextmanager
def open_regular(path: str, what: str):
    """Open ``path`` for binary reading; refuse anything but a regular file, without blocking.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    PermissionError
        If it exists but may not be read.
    ValueError
        If it is a directory, FIFO, socket or device (a FIFO would block a plain ``open``).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file not found: {path}") from None
    except PermissionError:
        raise PermissionError(
            f"{what} file {path!r} cannot be read: permission denied; check the permissions of "
            "the file and of its folders"
        ) from None
    except IsADirectoryError:  # Windows
        raise ValueError(f"{what} file {path!r} is a directory, not a regular file") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((k for test, k in _KINDS if test(mode)), "not a regular file")
            raise ValueError(f"{what} file {path!r} is {kind}; expected a regular file")
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


# --- MAT v5 -----------------------------------------------------------------------------------
# Level 5 MAT-file format (MathWorks, "MAT-File Format", matfile_format.pdf): a 128-byte header,
# then data elements, each an 8-byte tag (type, byte count) and its data padded to 8 bytes. A
# "small" element packs type and count into 4 bytes. miCOMPRESSED holds a zlib stream of one
# element; miMATRIX holds array flags, dimensions, name, then (cell) one miMATRIX per entry or
# (struct, object) field names and one miMATRIX per entry and field.

_MI_INT32, _MI_MATRIX, _MI_COMPRESSED = 5, 14, 15
_CELL, _STRUCT, _OBJECT = 1, 2, 3
_MAX_DEPTH = 32
_CHUNK = 1 << 20


class _Corrupt(Exception):
    pass


class _FileSource:
    def __init__(self, f, end):
        self.f, self.end = f, end

    @property
    def pos(self):
        return self.f.tell()

    def read(self, n):
        if self.pos + n > self.end:
            raise _Corrupt("an element runs past the end of the file")
        return self.f.read(n)

    def skip(self, n):
        if self.pos + n > self.end:
            raise _Corrupt("an element runs past the end of the file")
        self.f.seek(n, os.SEEK_CUR)


class _ZlibSource:
    """The decompressed bytes of one miCOMPRESSED element, read in bounded chunks."""

    def __init__(self, f, n_compressed):
        self.f, self.left = f, n_compressed
        self.d = zlib.decompressobj()
        self.buf = b""
        self.pos = 0

    def _more(self):
        if self.d.unconsumed_tail:
            inp = self.d.unconsumed_tail
        elif self.left > 0 and not self.d.eof:
            inp = self.f.read(min(self.left, 1 << 16))
            if not inp:
                raise _Corrupt("a compressed element runs past the end of the file")
            self.left -= len(inp)
        else:
            raise _Corrupt("a compressed element ends early")
        try:
            return self.d.decompress(inp, _CHUNK)
        except zlib.error as exc:
            raise _Corrupt(f"a compressed element is damaged ({exc})") from None

    def read(self, n):
        while len(self.buf) < n:
            self.buf += self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        self.pos += n
        return out

    def skip(self, n):
        self.pos += n
        while n > 0:
            if not self.buf:
                self.buf = self._more()
            k = min(n, len(self.buf))
            self.buf = self.buf[k:]
            n -= k


def _tag(src, e):
    raw = src.read(8)
    t, n = struct.unpack(e + "II", raw)
    if t >> 16:  # small data element: count in the upper half, data in the tag's second word
        return t & 0xFFFF, t >> 16, raw[4:4 + (t >> 16)]
    return t, n, None


def _sub(src, e, what):
    t, n, small = _tag(src, e)
    if small is not None:
        return t, small
    if n > _CHUNK:
        raise _Corrupt(f"the {what} of an array is {n} bytes long")
    data = src.read(n)
    src.skip(-n % 8)
    return t, data


def _matrix(src, e, nbytes, limit, depth, out, name=None):
    if nbytes == 0:  # an empty entry
        return
    if depth > _MAX_DEPTH:
        raise _Corrupt(f"arrays nested more than {_MAX_DEPTH} deep")
    start = src.pos
    _, flags = _sub(src, e, "flags")
    if len(flags) < 4:
        raise _Corrupt("array flags are too short")
    cls = struct.unpack(e + "I", flags[:4])[0] & 0xFF
    t, raw = _sub(src, e, "dimensions")
    if t != _MI_INT32 or len(raw) < 8 or len(raw) % 4:
        raise _Corrupt("array dimensions are not int32 pairs")
    dims = struct.unpack(f"{e}{len(raw) // 4}i", raw)
    if min(dims) < 0:
        raise _Corrupt(f"negative array dimensions {dims}")
    count = 1
    for d in dims:
        count *= d
    _, vname = _sub(src, e, "name")
    if depth == 0:
        name = vname.decode("latin-1")
        out[name] = dims
    if count > limit:
        shape = " x ".join(map(str, dims))
        raise PixelLimitError(f"variable `{name}` claims an array of {shape} = {count} elements, more "
                              f"than the limit of {limit}")
    if cls == _CELL:
        for _ in range(count):
            t, n, _s = _tag(src, e)
            if t != _MI_MATRIX:
                raise _Corrupt(f"a cell entry of `{name}` is not an array (type {t})")
            _matrix(src, e, n, limit, depth + 1, out, name)
    elif cls in (_STRUCT, _OBJECT):
        if cls == _OBJECT:
            _sub(src, e, "class name")
        t, raw = _sub(src, e, "field name length")
        if t != _MI_INT32 or len(raw) < 4:
            raise _Corrupt("struct field name length is not an int32")
        width = struct.unpack(e + "i", raw[:4])[0]
        _, names = _sub(src, e, "field names")
        if width <= 0 or len(names) % width:
            raise _Corrupt(f"struct field names ({len(names)} bytes) are not a multiple of {width}")
        for _ in range(count * (len(names) // width)):
            t, n, _s = _tag(src, e)
            if t != _MI_MATRIX:
                raise _Corrupt(f"a field of `{name}` is not an array (type {t})")
            _matrix(src, e, n, limit, depth + 1, out, name)
    used = src.pos - start
    if used > nbytes:
        raise _Corrupt(f"an array of `{name}` is longer than its element")
    src.skip(nbytes - used)


def check_mat(f, path: str, what: str, limit: int) -> dict:
    """Walk a MAT file's headers (decompressing in bounded chunks), never building an array.

    Returns ``{variable: dims}`` of a level-5 file (``{}`` for level 4, whose arrays are read
    straight from the file and so bounded by its size; scipy refuses v7.3/HDF5). Raises
    :class:`PixelLimitError` when an array, cell or struct array claims more than ``limit``
    elements, and ``ValueError`` for a damaged file. Leaves ``f`` at the start.
    """
    size = os.fstat(f.fileno()).st_size
    f.seek(0)
    head = f.read(128)
    out: dict = {}
    try:
        if len(head) < 128 or head[126:128] not in (b"IM", b"MI") or head[:4] == b"\0\0\0\0":
            return out  # not level 5; scipy decides (level 4 or an error)
        e = "<" if head[126:128] == b"IM" else ">"
        while f.tell() + 8 <= size:
            src = _FileSource(f, size)
            t, n, small = _tag(src, e)
            if small is not None:
                continue
            if t == _MI_COMPRESSED:
                if f.tell() + n > size:
                    raise _Corrupt("a compressed element runs past the end of the file")
                end = f.tell() + n
                z = _ZlibSource(f, n)
                t2, n2, _s = _tag(z, e)
                if t2 == _MI_MATRIX:
                    _matrix(z, e, n2, limit, 0, out)
                f.seek(end)
            elif t == _MI_MATRIX:
                _matrix(src, e, n, limit, 0, out)
                src.skip(-n % 8)
            else:
                src.skip(n + (-n % 8))
        if f.read().strip(b"\0"):
            raise _Corrupt("the file ends inside an element (truncated?)")
    except PixelLimitError as exc:
        raise PixelLimitError(f"{what} file {path!r}: {exc}; refused before reading it (set "
                              f"max_pixels or ${MAX_PIXELS_ENV} to allow more)") from None
    except (_Corrupt, struct.error) as exc:
        raise ValueError(f"{what} file {path!r} is not a valid MATLAB file: {exc}") from None
    finally:
        f.seek(0)
    return out


def check_npy_member(f, path: str, what: str, key: str, limit: int):
    """Read the header of array ``key`` of an ``.npz`` and refuse it above ``limit`` elements.

    Returns its ``(shape, dtype)``; raises ``ValueError`` (naming the file) for a damaged archive
    or a missing key, :class:`PixelLimitError` for a too large array. Leaves ``f`` at the start.
    """
    import zipfile

    import numpy as np

    try:
        with zipfile.ZipFile(f) as z:
            names = z.namelist()
            member = f"{key}.npy"
            if member not in names:
                found = [n[:-4] if n.endswith(".npy") else n for n in names]
                raise ValueError(f"{what} file {path!r} has no array `{key}` (found {found})")
            with z.open(member) as m:
                version = np.lib.format.read_magic(m)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(m)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(m)
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if path in msg else f"cannot read {what} file {path!r}: {msg}") from None
    except Exception as exc:  # noqa: BLE001 - zipfile and numpy raise many types on a damaged file
        raise ValueError(f"cannot read {what} file {path!r}: not a valid .npz archive "
                         f"({type(exc).__name__}: {exc})") from None
    finally:
        f.seek(0)
    count = 1
    for d in shape:
        count *= int(d)
    if count > limit:
        raise PixelLimitError(
            f"{what} file {path!r}: array `{key}` claims shape {tuple(shape)} = {count} elements, more "
            f"than the limit of {limit}; refused before reading it (set max_pixels or "
            f"${MAX_PIXELS_ENV} to allow more)"
        )
    return tuple(shape), dtype
