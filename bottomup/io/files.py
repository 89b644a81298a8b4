"""Atomic file writes: write to a temporary file beside the target, then rename it into place."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path

__all__ = ["atomic_path"]


_UMASK_LOCK = threading.Lock()


def _default_mode() -> int:
    # Reading the umask means setting it: without the lock, two threads (Dask worker threads
    # writing outputs) can interleave so that one reads the other's 0 and leaves the umask at 0.
    with _UMASK_LOCK:
        mask = os.umask(0)
        os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary file keeps the target's extension (so writers that look at it work), gets the
    permissions a plain ``open(path, "w")`` would give (``mkstemp`` makes it private), and is
    removed if the block raises, so a half-written file never exists under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
