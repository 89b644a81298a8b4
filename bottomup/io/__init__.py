"""Reading and writing images, BSDS ground truth and ucm2 files.

Everything that touches the disk lives here; the stages are pure functions.
"""

from bottomup.io.bsds import BSDSGroundTruth, read_bsds_gt, read_ucm2, write_ucm2
from bottomup.io.files import atomic_path
from bottomup.io.images import read_image
from bottomup.io.msrc import read_msrc21

__all__ = ["atomic_path", "BSDSGroundTruth", "read_bsds_gt", "read_image", "read_msrc21", "read_ucm2",
           "write_ucm2"]
