"""Stage 3: the oriented watershed transform (contours -> finest regions + boundary strengths),
and the learned arc scores that may replace those strengths before the merging."""

from bottomup.owt.arc_scores import ArcScorer, arc_features, load_arc_scorer, rescore_pieces
from bottomup.owt.oriented_watershed import BoundaryPieces, oriented_watershed
from bottomup.owt.ridge import ridge_owt_inputs

__all__ = ["BoundaryPieces", "oriented_watershed", "ArcScorer", "arc_features", "load_arc_scorer",
           "rescore_pieces", "ridge_owt_inputs"]
