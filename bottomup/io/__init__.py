"""Reading and writing images, BSDS ground truth and ucm2 files.

Everything that touches the disk lives here; the stages are pure functions. The readers refuse
hostile files (too many pixels claimed by a header, FIFOs, damaged MAT/NPZ files) with an error
naming the file; see ``docs/input-files.md``. :func:`cache_key` is the
one rule for the keys of on-disk result caches (parameters, content of the files read, code
version of the stage).
"""

from bottomup.io._guard import DEFAULT_MAX_PIXELS, PixelLimitError
from bottomup.io.bsds import BSDSGroundTruth, read_bsds_gt, read_ucm2, write_ucm2
from bottomup.io.cache import cache_key, code_version, file_digest
from bottomup.io.files import atomic_path
from bottomup.io.images import read_image
from bottomup.io.msrc import read_msrc21

__all__ = ["atomic_path", "DEFAULT_MAX_PIXELS", "PixelLimitError", "BSDSGroundTruth", "cache_key",
           "code_version", "file_digest", "read_bsds_gt", "read_image", "read_msrc21", "read_ucm2",
           "write_ucm2"]
