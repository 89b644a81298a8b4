"""Stage 3: the oriented watershed transform (contours -> finest regions + boundary strengths)."""

from bottomup.owt.oriented_watershed import BoundaryPieces, oriented_watershed

__all__ = ["BoundaryPieces", "oriented_watershed"]
