"""bottomup: classical bottom-up image segmentation.

gPb contours, the oriented watershed, ultrametric contour maps (UCM) as a hierarchy, MCG/SCG
proposals, and the BSDS benchmark, on numpy, scipy and numba. ``bottomup`` never imports torch.

Data contracts (written once; see ``DESIGN.md``)
-------------------------------------------------
==============  ==========================  ================================================
thing           shape / dtype               notes
==============  ==========================  ================================================
image           (H, W, 3) float64 in [0,1]  public entry points accept uint8/uint16/float,
                                            gray and RGBA and convert in ``validate``
oriented stack  (O, H, W) float64           ``theta[o] = o * pi / O``, O = 8 by default
contours        pb (H, W) in [0, 1]         plus the oriented stack it came from
partition       (H, W) int32, dense 0..K-1  every pixel labelled
ucm2            (2H+1, 2W+1) float64        BSDS layout: pixels at ``[1::2, 1::2]`` (0),
                                            ``labels = ndi.label(ucm2 <= t)[0][1::2, 1::2]``
Hierarchy       parents (N,) int64,         leaves 0..K-1 first, topological order, root
                altitudes (N,) float64      last with ``parents[root] == root``
BSDS GT         Segmentation 1-based        converted to 0-based in ``bottomup.io.bsds``
==============  ==========================  ================================================

Coordinates are ``(row, col)`` everywhere.

Entry points: ``bottomup.segment(image, contours="gpb") -> Hierarchy`` (OWT-UCM on a contour
source: ``"gpb"``, ``"learned"``, a :class:`ContourSource` or any callable),
``bottomup.ucm(pb, oriented)`` for any contour map, ``bottomup.superpixels(hierarchy, n_segments)`` (also
``bottomup.superpixels.slic`` / ``.felzenszwalb``), ``bottomup.interactive.segment(hierarchy,
seeds)``, ``bottomup.mcg.proposals(image, n, method)`` (SCG/MCG), ``bottomup.metrics`` (BSDS,
proposals, semantic, instance), and the ``bottomup`` command.
"""

__version__ = "0.2.0"

from bottomup import interactive, io, mcg, metrics, superpixels  # noqa: E402  (modules)
from bottomup.contours import ContourSource, GPb, get_source  # noqa: E402
from bottomup.hierarchy import Hierarchy, ucm, ucm2_to_labels  # noqa: E402
from bottomup.io import read_bsds_gt, read_image, read_ucm2, write_ucm2  # noqa: E402
from bottomup.owt import BoundaryPieces, oriented_watershed  # noqa: E402
from bottomup.pipeline import segment  # noqa: E402

__all__ = [
    "__version__",
    "ContourSource",
    "GPb",
    "Hierarchy",
    "BoundaryPieces",
    "get_source",
    "interactive",
    "io",
    "mcg",
    "metrics",
    "oriented_watershed",
    "read_bsds_gt",
    "read_image",
    "read_ucm2",
    "segment",
    "superpixels",
    "ucm",
    "ucm2_to_labels",
    "write_ucm2",
]
